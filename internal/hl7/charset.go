package hl7

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// charset is how the bytes of one message become UTF-8 and back.
type charset struct {
	name     string            // the HL7 table 0211 name (or the label the sender used)
	enc      encoding.Encoding // nil for UTF-8
	declared bool              // MSH-18 named this set (it was not a fallback)
}

// utf8Charset is the default: undeclared, ASCII and UNICODE UTF-8.
var utf8Charset = charset{name: "UNICODE UTF-8"}

// latin1 reads ISO 8859/1. Windows-1252 is used, as the WHATWG encoding
// standard does for every "iso-8859-1" label: it agrees with ISO 8859-1 on
// every printable character (the only ones HL7 table 0211 allows) and reads
// the 0x80-0x9F bytes Windows senders produce (€, ‘ ’, –) instead of
// turning them into C1 control characters.
var latin1 = charset{name: "8859/1", enc: charmap.Windows1252}

// charsets maps the names of HL7 table 0211 (MSH-18), and the DICOM-style
// "ISO IR nnn" names some senders use, to encodings. Names are looked up
// after normalizeCharsetName.
var charsets = map[string]encoding.Encoding{
	"ASCII": nil, "ISO IR6": nil, "UNICODE": nil, "UNICODE UTF-8": nil, "ISO IR192": nil,
	"8859/1": charmap.Windows1252, "ISO IR100": charmap.Windows1252,
	"8859/2": charmap.ISO8859_2, "ISO IR101": charmap.ISO8859_2,
	"8859/3": charmap.ISO8859_3, "ISO IR109": charmap.ISO8859_3,
	"8859/4": charmap.ISO8859_4, "ISO IR110": charmap.ISO8859_4,
	"8859/5": charmap.ISO8859_5, "ISO IR144": charmap.ISO8859_5,
	"8859/6": charmap.ISO8859_6, "ISO IR127": charmap.ISO8859_6,
	"8859/7": charmap.ISO8859_7, "ISO IR126": charmap.ISO8859_7,
	"8859/8": charmap.ISO8859_8, "ISO IR138": charmap.ISO8859_8,
	"8859/9": charmap.ISO8859_9, "ISO IR148": charmap.ISO8859_9,
	"8859/10": charmap.ISO8859_10, "8859/13": charmap.ISO8859_13, "8859/14": charmap.ISO8859_14,
	"8859/15": charmap.ISO8859_15, "ISO IR203": charmap.ISO8859_15, "8859/16": charmap.ISO8859_16,
	"BIG-5":         traditionalchinese.Big5,
	"GB 18030-2000": simplifiedchinese.GB18030, "GB18030": simplifiedchinese.GB18030,
	"KS X 1001": korean.EUCKR,
	// Japanese HL7 (JAHIS) declares JIS X 0208/0212/0201 and switches to them
	// with ISO 2022 escape sequences: that is ISO-2022-JP.
	"ISO IR87": japanese.ISO2022JP, "ISO IR159": japanese.ISO2022JP, "ISO IR14": japanese.ISO2022JP,
}

// normalizeCharsetName upper-cases a name and writes "ISO_IR 100",
// "ISO IR 100" and "ISO IR100" alike.
func normalizeCharsetName(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(strings.ToUpper(s), "_", " ")), " ")
	if rest, ok := strings.CutPrefix(s, "ISO IR "); ok && allDigits(rest) {
		s = "ISO IR" + rest
	}
	return s
}

// lookupCharset finds the encoding for an MSH-18 name: table 0211 first,
// then the labels of the WHATWG encoding standard ("UTF-8", "ISO-8859-2",
// "windows-1250", "Shift_JIS", ...) that non-conforming senders write.
// Encodings that cannot be read byte by byte with ASCII delimiters (UTF-16,
// UTF-32) are not found.
func lookupCharset(name string) (charset, bool) {
	norm := normalizeCharsetName(name)
	if enc, ok := charsets[norm]; ok {
		return charset{name: norm, enc: enc}, true
	}
	enc, err := htmlindex.Get(strings.TrimSpace(name))
	if err != nil {
		return charset{}, false
	}
	canonical, _ := htmlindex.Name(enc)
	switch canonical {
	case "utf-8":
		return charset{name: strings.TrimSpace(name)}, true
	case "utf-16be", "utf-16le", "replacement", "x-user-defined":
		return charset{}, false
	}
	return charset{name: strings.TrimSpace(name), enc: enc}, true
}

// mshCharsetNames returns the repetitions of MSH-18 in the raw message,
// each cut at its first component. MSH-18 must be read before the message
// is decoded; HL7 requires MSH to be written in ASCII, so its delimiters
// and MSH-18 itself can be found in the raw bytes.
func mshCharsetNames(data []byte) []string {
	if !bytes.HasPrefix(data, []byte("MSH")) || len(data) < 8 {
		return nil
	}
	line := data
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	parts := bytes.Split(line, line[3:4])
	if len(parts) < 18 || len(parts[1]) < 2 {
		return nil
	}
	comp, rep := parts[1][0], parts[1][1]
	var names []string
	for _, r := range bytes.Split(parts[17], []byte{rep}) {
		if i := bytes.IndexByte(r, comp); i >= 0 {
			r = r[:i]
		}
		names = append(names, string(bytes.TrimSpace(r)))
	}
	return names
}

// mshCharsetLoc is where warnings about the character set point.
var mshCharsetLoc = Location{Segment: "MSH", Sequence: 1, Field: 18, Position: 1}

// decodeMessage turns data (with any byte order mark and leading white
// space removed) into UTF-8 text as MSH-18 says:
//
//   - undeclared, ASCII, UNICODE and UNICODE UTF-8: read as UTF-8;
//   - a name of table 0211 (or a WHATWG label) that golang.org/x/text
//     knows: decoded with it;
//   - any other name: read as UTF-8, with a warning.
//
// Text read as UTF-8 that is not valid UTF-8 is read as ISO 8859/1 instead,
// with a warning, so no message is refused for its bytes.
func decodeMessage(data []byte) (string, charset, warnings) {
	var warns warnings
	names := mshCharsetNames(data)
	cs, declared := utf8Charset, ""
	if len(names) > 0 {
		declared = names[0]
	}
	if declared != "" {
		found, ok := lookupCharset(declared)
		if ok {
			cs = found
			cs.declared = true
		} else {
			warns.add(mshCharsetLoc.At(18, 1), CodeTableValueNotFound,
				"character set %q (MSH-18) is not supported; the message was read as UTF-8", clip(declared, 40))
		}
	}
	if cs.name == "ASCII" || cs.name == "ISO IR6" || declared == "" {
		// ASCII by default; Japanese senders then list, in the following
		// repetitions, the sets they switch to with ISO 2022 escapes.
		for _, alt := range names[min(1, len(names)):] {
			if enc := charsets[normalizeCharsetName(alt)]; enc == japanese.ISO2022JP {
				cs = charset{name: normalizeCharsetName(alt), enc: enc, declared: true}
				break
			}
		}
	}
	if cs.enc == nil {
		if utf8.Valid(data) {
			return string(data), cs, warns
		}
		warns.add(mshCharsetLoc, CodeDataType,
			"the message is not valid UTF-8 (%s); it was read as ISO 8859/1 (declare the character set in MSH-18)", describeDeclared(declared))
		cs = latin1
	}
	out, err := cs.enc.NewDecoder().Bytes(data)
	if err != nil { // x/text decoders replace bad input rather than fail; be safe anyway
		out = []byte(strings.ToValidUTF8(string(data), "\uFFFD"))
	}
	if bytes.ContainsRune(out, utf8.RuneError) {
		warns.add(mshCharsetLoc, CodeDataType, "bytes that are not valid in character set %s were replaced by U+FFFD", cs.name)
	}
	return string(out), cs, warns
}

func describeDeclared(declared string) string {
	if declared == "" {
		return "MSH-18 is empty"
	}
	return "MSH-18 is " + clip(declared, 40)
}

// decodeBytes decodes bytes produced by a \Xhh\ escape, which are in the
// message's character set, into valid UTF-8.
func (cs charset) decodeBytes(b []byte) string {
	if cs.enc == nil {
		if utf8.Valid(b) {
			return string(b)
		}
		cs = latin1
	}
	out, err := cs.enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(out)
}

// encode writes UTF-8 text s in the character set, replacing characters the
// set cannot hold.
func (cs charset) encode(s string) []byte {
	if cs.enc == nil {
		return []byte(s)
	}
	out, err := encoding.ReplaceUnsupported(cs.enc.NewEncoder()).Bytes([]byte(s))
	if err != nil {
		return []byte(s)
	}
	return out
}
