package hl7

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Acknowledgement codes for MSA-1 (original mode).
const (
	AckAccept = "AA" // message accepted
	AckError  = "AE" // application error; the sender may resend
	AckReject = "AR" // rejected; resending the same message will not help
)

// defaultVersion is written to MSH-12 when the request's version is unknown.
const defaultVersion = "2.5.1"

// maxEchoLen bounds values copied from unparseable input into an ACK.
const maxEchoLen = 199

// ackSeq makes control ids unique within the process even when two ACKs
// are built in the same second.
var ackSeq atomic.Uint64

// ackHeader holds the request values an ACK echoes. The app and facility
// fields are already encoded with DefaultDelims.
type ackHeader struct {
	sendApp, sendFac, recvApp, recvFac string
	trigger, controlID                 string
	processingID, version              string
}

// NewACK builds an original-mode ACK for req with DefaultDelims:
//
//   - MSH-3/4 and MSH-5/6 are the request's receiving and sending
//     application/facility, swapped;
//   - MSH-7 is now, MSH-9 is ACK^<request trigger>^ACK (just ACK when the
//     request has no trigger), MSH-10 a new control id unique within the
//     process, MSH-11 and MSH-12 echo the request (P and 2.5.1 by default);
//   - MSA-1 is code (AA, AE or AR), MSA-2 the request's MSH-10, MSA-3 text;
//   - unless code is AA (or CA), an ERR segment follows with ERR-3
//     207^Application internal error^HL70357, ERR-4 severity E and ERR-8
//     errDetail, or text when errDetail is empty. ERR-1 carries the same
//     code for receivers still on HL7 v2.3/v2.4.
//
// Every value is escaped, so text may contain any character. req may be nil.
func NewACK(req *Message, code, text, errDetail string, now time.Time) []byte {
	h := ackHeader{processingID: "P", version: defaultVersion}
	if msh := req.First("MSH"); msh != nil {
		// The request's receiver is the ACK's sender and vice versa.
		h.sendApp = encodeField(msh.field(5), DefaultDelims)
		h.sendFac = encodeField(msh.field(6), DefaultDelims)
		h.recvApp = encodeField(msh.field(3), DefaultDelims)
		h.recvFac = encodeField(msh.field(4), DefaultDelims)
		h.trigger = msh.Component(9, 2)
		h.controlID = msh.Field(10)
		if msh.Repetitions(11) > 0 {
			h.processingID = encodeField(msh.field(11)[:1], DefaultDelims)
		}
		if msh.Repetitions(12) > 0 {
			h.version = encodeField(msh.field(12)[:1], DefaultDelims)
		}
	}
	return buildACK(h, code, text, errDetail, now)
}

// NewRejectACK builds an AR acknowledgement for input that could not be
// parsed. When raw still parses it is the same as NewACK(m, "AR", text,
// text, now). Otherwise it looks for an MSH line and echoes whatever
// control id, applications, trigger and version it can find there.
func NewRejectACK(raw []byte, text string, now time.Time) []byte {
	if m, err := Parse(raw); err == nil {
		return NewACK(m, AckReject, text, text, now)
	}
	return buildACK(guessHeader(raw), AckReject, text, text, now)
}

// guessHeader reads MSH fields from raw without trusting its structure:
// each value is cut at the first encoding character, stripped of control
// characters, shortened and escaped.
func guessHeader(raw []byte) ackHeader {
	h := ackHeader{processingID: "P", version: defaultVersion}
	i := bytes.Index(raw, []byte("MSH"))
	if i < 0 || i+4 >= len(raw) || !isDelimChar(raw[i+3]) {
		return h
	}
	line := raw[i:]
	if end := bytes.IndexAny(line, "\r\n\x1c"); end >= 0 {
		line = line[:end]
	}
	parts := strings.Split(string(line), string(raw[i+3]))
	enc := ""
	if len(parts) > 1 {
		enc = parts[1]
	}
	get := func(n int) string { // MSH-n is parts[n-1] for n >= 2
		if n-1 >= len(parts) {
			return ""
		}
		return Escape(sanitize(parts[n-1], enc))
	}
	h.sendApp, h.sendFac, h.recvApp, h.recvFac = get(5), get(6), get(3), get(4)
	h.controlID = sanitize(at(parts, 9), enc)
	if n := len(parts); n > 8 && len(enc) > 0 {
		if _, trig, ok := strings.Cut(parts[8], enc[:1]); ok {
			h.trigger = sanitize(trig, enc)
		}
	}
	if v := get(11); v != "" {
		h.processingID = v
	}
	if v := get(12); v != "" {
		h.version = v
	}
	return h
}

func at(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// sanitize keeps the part of s before any encoding character, without
// control characters, and at most maxEchoLen bytes long.
func sanitize(s, enc string) string {
	if i := strings.IndexAny(s, enc); enc != "" && i >= 0 {
		s = s[:i]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > maxEchoLen {
		s = strings.ToValidUTF8(s[:maxEchoLen], "")
	}
	return s
}

func buildACK(h ackHeader, code, text, errDetail string, now time.Time) []byte {
	msgType := "ACK"
	if h.trigger != "" {
		msgType = "ACK^" + Escape(h.trigger) + "^ACK"
	}
	var b strings.Builder
	writeSegment(&b, "MSH", DefaultDelims.EncodingChars(), h.sendApp, h.sendFac, h.recvApp, h.recvFac,
		now.Format("20060102150405-0700"), "", msgType, newControlID(now), h.processingID, h.version)
	writeSegment(&b, "MSA", Escape(code), Escape(h.controlID), Escape(text))
	if code != AckAccept && code != "CA" {
		if errDetail == "" {
			errDetail = text
		}
		writeSegment(&b, "ERR", "^^^207&Application internal error&HL70357", "",
			"207^Application internal error^HL70357", "E", "", "", "", Escape(errDetail))
	}
	return []byte(b.String())
}

// writeSegment writes already-encoded fields, dropping trailing empty ones
// as HL7 recommends.
func writeSegment(b *strings.Builder, fields ...string) {
	for len(fields) > 1 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	b.WriteString(strings.Join(fields, "|"))
	b.WriteByte('\r')
}

// newControlID returns a 19-character id: "A", the UTC time to the second
// and a per-process sequence number.
func newControlID(now time.Time) string {
	return fmt.Sprintf("A%s%06d", now.UTC().Format("060102150405"), ackSeq.Add(1)%1_000_000)
}
