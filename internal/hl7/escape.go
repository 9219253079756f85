package hl7

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Escape escapes s for use as a field value with DefaultDelims.
func Escape(s string) string {
	return DefaultDelims.EscapeText(s)
}

// EscapeText returns s with every delimiter of d replaced by its HL7 escape
// sequence (\F\ \S\ \T\ \R\ \E\, and \P\ when d has a truncation character)
// and control characters other than tab written as \Xhh\. Escaping "\r" and
// "\n" keeps a value from ending its segment, and escaping 0x0B and 0x1C
// keeps it from breaking MLLP framing.
func (d Delims) EscapeText(s string) string {
	if !d.needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if code := d.escapeCode(c); code != 0 {
			b.WriteByte(d.Escape)
			b.WriteByte(code)
			b.WriteByte(d.Escape)
			continue
		}
		if isControl(c) {
			fmt.Fprintf(&b, "%cX%02X%c", d.Escape, c, d.Escape)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (d Delims) needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if d.escapeCode(s[i]) != 0 || isControl(s[i]) {
			return true
		}
	}
	return false
}

// escapeCode returns the escape letter for delimiter c, or 0 when c is not a
// delimiter of d. The zero check keeps an undeclared truncation character
// from matching NUL bytes.
func (d Delims) escapeCode(c byte) byte {
	switch {
	case c == 0:
		return 0
	case c == d.Field:
		return 'F'
	case c == d.Component:
		return 'S'
	case c == d.Subcomponent:
		return 'T'
	case c == d.Repetition:
		return 'R'
	case c == d.Escape:
		return 'E'
	case c == d.Truncation:
		return 'P'
	}
	return 0
}

func isControl(c byte) bool {
	return c < 0x20 && c != '\t' || c == 0x7f
}

// UnescapeText decodes the HL7 escape sequences in one leaf value (a
// subcomponent) of a UTF-8 message. See the package documentation for
// which sequences are decoded, dropped or kept verbatim.
func (d Delims) UnescapeText(s string) string {
	return d.unescape(s, utf8Charset)
}

// unescape is UnescapeText for a message in character set cs, which the
// bytes of \Xhh\ escapes are in.
func (d Delims) unescape(s string, cs charset) string {
	if d.Escape == 0 || strings.IndexByte(s, d.Escape) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		start := strings.IndexByte(s, d.Escape)
		if start < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[start+1:], d.Escape)
		if end < 0 {
			// No closing escape character: not an escape sequence, keep it.
			b.WriteString(s)
			return b.String()
		}
		end += start + 1
		b.WriteString(s[:start])
		b.WriteString(d.decodeSequence(s[start+1:end], s[start:end+1], cs))
		s = s[end+1:]
	}
}

// decodeSequence translates the text between two escape characters; whole
// is the sequence including them, returned when seq is not recognised.
func (d Delims) decodeSequence(seq, whole string, cs charset) string {
	switch seq {
	case "F":
		return string(d.Field)
	case "S":
		return string(d.Component)
	case "T":
		return string(d.Subcomponent)
	case "R":
		return string(d.Repetition)
	case "E":
		return string(d.Escape)
	case "P":
		if d.Truncation != 0 {
			return string(d.Truncation)
		}
		return whole
	case "H", "N":
		return "" // highlighting on/off: presentation only
	case "":
		return whole
	}
	switch seq[0] {
	case 'X':
		if raw, err := hex.DecodeString(seq[1:]); err == nil {
			return cs.decodeBytes(raw)
		}
		return whole
	case '.':
		return formatCommand(seq[1:])
	case 'Z', 'C', 'M':
		return "" // locally defined or character-set switches, not supported
	}
	return whole
}

// maxFormatRepeat bounds the line breaks or spaces one formatting command
// may produce, so "\.sp 99999999\" cannot blow a value up.
const maxFormatRepeat = 20

// formatCommand renders a formatted-text (FT) command, the text after the
// dot, as plain text: the commands that end a line become "\n", those that
// move right become spaces, and the rest (fill mode, indentation of the
// lines that follow) are dropped because plain text cannot keep them.
//
//	.br        line break
//	.sp [n]    end the line and skip n lines (default 1): n line breaks
//	.ce        end the line (the next one is centred)
//	.sk n      skip n spaces to the right
//	.ti n      indent this line by n spaces
//	.in n .fi .nf and anything else: dropped
func formatCommand(cmd string) string {
	name, arg := cmd, ""
	if len(cmd) > 2 {
		name, arg = cmd[:2], strings.TrimSpace(cmd[2:])
	}
	n := 1
	if arg != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(arg, "+"))
		if err != nil {
			return ""
		}
		n = max(0, min(v, maxFormatRepeat))
	}
	switch name {
	case "br", "ce":
		if arg != "" {
			return ""
		}
		return "\n"
	case "sp":
		return strings.Repeat("\n", max(n, 1))
	case "sk", "ti":
		if arg == "" {
			return ""
		}
		return strings.Repeat(" ", n)
	}
	return ""
}
