package hl7

import (
	"bytes"
	"fmt"
	"strconv"
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
	charset                            string  // MSH-18 to echo, encoded; "" for none
	cs                                 charset // how to write the ACK's bytes
}

// maxMSA3 is the length of MSA-3 (text message) in HL7 v2.3 to v2.5.1:
// receivers written for those versions may not take more.
const maxMSA3 = 80

// maxERR8 is the length of ERR-8 (user message) in HL7 v2.5.1; a longer
// message is cut there and given whole (up to maxERR7) in ERR-7.
const (
	maxERR8 = 250
	maxERR7 = 2048
)

// maxErrSegments bounds the ERR segments of one ACK; further issues are
// summed up in one last ERR of severity I.
const maxErrSegments = 25

// Ack is an original-mode acknowledgement to build: the MSA-1 code, the
// MSA-3 text and one ERR segment per issue.
type Ack struct {
	Code string // MSA-1: AckAccept, AckError or AckReject
	// Text is MSA-3, kept for v2.3 and v2.4 receivers that do not read ERR;
	// it is cut to 80 bytes (at a character boundary).
	Text string
	// Issues become ERR segments in this order; put the error that decided
	// the code first and warnings after it. Each ERR carries:
	//
	//	ERR-1  segment^sequence^field^code&text&HL70357 (ELD, for v2.3/v2.4)
	//	ERR-2  segment^sequence^field^repetition^component^subcomponent (ERL)
	//	ERR-3  code^text^HL70357 from table 0357
	//	ERR-4  severity E, W or I
	//	ERR-7  the whole message when it is longer than ERR-8 allows
	//	ERR-8  the message for people, at most 250 bytes
	Issues []Issue
}

// Build returns the acknowledgement of req with DefaultDelims:
//
//   - MSH-3/4 and MSH-5/6 are the request's receiving and sending
//     application/facility, swapped;
//   - MSH-7 is now, MSH-9 is ACK^<request trigger>^ACK (just ACK when the
//     request has no trigger), MSH-10 a new control id unique within the
//     process, MSH-11 and MSH-12 echo the request (P and 2.5.1 by default);
//   - the ACK is written in the character set the request was read with,
//     and MSH-18 echoes the request's when that is the declared one;
//   - MSA-1 is a.Code, MSA-2 the request's MSH-10, MSA-3 a.Text;
//   - one ERR per issue (see Ack).
//
// Every value is escaped, so texts may contain any character. req may be nil.
func (a Ack) Build(req *Message, now time.Time) []byte {
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
		// Answer in the character set the request was read with, and say so
		// when it is the one the request declared.
		h.cs = req.cs
		if req.cs.declared {
			h.charset = encodeField(msh.field(18), DefaultDelims)
		}
	}
	return buildACK(h, a, now)
}

// BuildRaw returns the acknowledgement of input that may not parse. When
// raw parses it is a.Build of the parsed message; otherwise it looks for an
// MSH line and echoes whatever control id, applications, trigger and
// version it can find there.
func (a Ack) BuildRaw(raw []byte, now time.Time) []byte {
	if m, err := Parse(raw); err == nil {
		return a.Build(m, now)
	}
	return buildACK(guessHeader(raw), a, now)
}

// NewACK builds an ACK with at most one ERR, for callers that have no
// detail to give: unless code is AA (or CA), the ERR says 207 (application
// internal error), severity E, with errDetail (or text) as its message. It
// suits a handler that failed; use Ack to report anything about the
// message itself.
func NewACK(req *Message, code, text, errDetail string, now time.Time) []byte {
	return legacyAck(code, text, errDetail).Build(req, now)
}

// NewRejectACK builds an AR acknowledgement for input that could not be
// parsed: its ERR gives the location and table 0357 code of the parse
// error, and text as its message. If raw does parse, the ERR says 207 as
// NewACK's does.
func NewRejectACK(raw []byte, text string, now time.Time) []byte {
	a := legacyAck(AckReject, text, text)
	if _, err := Parse(raw); err != nil {
		if is, ok := IssueOf(err); ok {
			is.Message = text
			a.Issues = []Issue{is}
		}
	}
	return a.BuildRaw(raw, now)
}

func legacyAck(code, text, errDetail string) Ack {
	a := Ack{Code: code, Text: text}
	if code != AckAccept && code != "CA" {
		if errDetail == "" {
			errDetail = text
		}
		a.Issues = []Issue{{Code: CodeApplicationInternalError, Severity: SeverityError, Message: errDetail}}
	}
	return a
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

func buildACK(h ackHeader, a Ack, now time.Time) []byte {
	msgType := "ACK"
	if h.trigger != "" {
		msgType = "ACK^" + Escape(h.trigger) + "^ACK"
	}
	var b strings.Builder
	writeSegment(&b, "MSH", DefaultDelims.EncodingChars(), h.sendApp, h.sendFac, h.recvApp, h.recvFac,
		now.Format("20060102150405-0700"), "", msgType, newControlID(now), h.processingID, h.version,
		"", "", "", "", "", h.charset)
	writeSegment(&b, "MSA", Escape(a.Code), Escape(h.controlID), escapeCut(a.Text, maxMSA3))
	issues := a.Issues
	if len(issues) > maxErrSegments {
		more := len(issues) - (maxErrSegments - 1)
		issues = append(issues[:maxErrSegments-1:maxErrSegments-1], Issue{Code: issues[maxErrSegments-1].Code, Severity: SeverityInformation,
			Message: fmt.Sprintf("%d more issues are not listed", more)})
	}
	for _, is := range issues {
		writeERR(&b, is)
	}
	return h.cs.encode(b.String())
}

// writeERR writes one ERR segment for is (see Ack for the fields).
func writeERR(b *strings.Builder, is Issue) {
	l := is.Location
	code := strconv.Itoa(int(is.Code))
	codeText := Escape(is.Code.Text())
	var eld, erl string
	if l.Segment != "" {
		rep := l.Repetition
		if l.Field > 0 && rep == 0 {
			rep = 1 // ERL: the first repetition when the field is named
		}
		seq := num(max(l.Sequence, 1))
		eld = joinComponents(Escape(l.Segment), seq, num(l.Field), code+"&"+codeText+"&HL70357")
		erl = joinComponents(Escape(l.Segment), seq, num(l.Field), num(rep), num(l.Component), num(l.Subcomponent))
	} else {
		eld = joinComponents("", "", "", code+"&"+codeText+"&HL70357")
	}
	severity := is.Severity
	if severity == "" {
		severity = SeverityError
	}
	diag := ""
	if len(Escape(is.Message)) > maxERR8 {
		diag = escapeCut(is.Message, maxERR7)
	}
	writeSegment(b, "ERR", eld, erl, code+"^"+codeText+"^HL70357", Escape(string(severity)),
		"", "", diag, escapeCut(is.Message, maxERR8))
}

// num writes a positive number, or nothing.
func num(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// joinComponents joins encoded components, dropping trailing empty ones.
func joinComponents(parts ...string) string {
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, "^")
}

// escapeCut escapes s with DefaultDelims and cuts it so the result is at
// most n bytes, never inside a character or an escape sequence.
func escapeCut(s string, n int) string {
	e := Escape(s)
	if len(e) <= n {
		return e
	}
	var b strings.Builder
	for _, r := range s {
		part := Escape(string(r))
		if b.Len()+len(part) > n {
			break
		}
		b.WriteString(part)
	}
	return b.String()
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
