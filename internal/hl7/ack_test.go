package hl7

import (
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var ackTime = time.Date(2024, 3, 15, 14, 30, 5, 0, time.FixedZone("", -5*3600))

func TestNewACKAccept(t *testing.T) {
	req := mustParse(t, readTestdata(t, "oru_v251_multi.hl7"))
	raw := NewACK(req, AckAccept, "stored", "", ackTime)
	ack := mustParse(t, raw)
	msh, msa := ack.First("MSH"), ack.First("MSA")

	require.Equal(t, DefaultDelims, ack.Delims)
	require.Equal(t, "CALLOUT", msh.Field(3))
	require.Equal(t, "NORTH CLINIC", msh.Field(4))
	require.Equal(t, "LABSYS^2.16.840.1.113883.3.72.5.20^ISO", msh.Text(5, 1), "components of the request's HD are kept")
	require.Equal(t, "ACME LAB^2.16.840.1.113883.3.72.5.21^ISO", msh.Text(6, 1))
	require.Equal(t, "20240315143005-0500", msh.Field(7))
	require.Equal(t, "ACK^R01^ACK", msh.Text(9, 1))
	require.Len(t, msh.Field(10), 19)
	require.True(t, strings.HasPrefix(msh.Field(10), "A240315193005"), msh.Field(10))
	require.Equal(t, "P", msh.Field(11))
	require.Equal(t, "2.5.1", msh.Field(12))
	require.Equal(t, "AA", msa.Field(1))
	require.Equal(t, "CTRL-20240315-0042", msa.Field(2))
	require.Equal(t, "stored", msa.Field(3))
	require.Nil(t, ack.First("ERR"))
	require.True(t, strings.HasSuffix(string(raw), "\r"))
	require.NotContains(t, string(raw), "\n")

	again := mustParse(t, NewACK(req, AckAccept, "stored", "", ackTime))
	require.NotEqual(t, msh.Field(10), again.Get("MSH", 10), "control ids are unique")
}

func TestNewACKErrorEscapesText(t *testing.T) {
	tests := []struct {
		name, code, text, detail, wantERR8 string
	}{
		{"AE with detail", AckError, "db down | retry", "dial tcp: refused ^ & ~ \\", "dial tcp: refused ^ & ~ \\"},
		{"AR text only", AckReject, "not ORU^R01", "", "not ORU^R01"},
		{"newlines", AckError, "line1\nline2\r\nline3", "", "line1\nline2\r\nline3"},
	}
	req := mustParse(t, readTestdata(t, "oru_escapes.hl7"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := NewACK(req, tt.code, tt.text, tt.detail, ackTime)
			require.NoError(t, WriteFrame(io.Discard, raw))
			ack := mustParse(t, raw)
			require.Len(t, ack.Segments, 3, "MSH, MSA, ERR")
			require.Equal(t, tt.code, ack.Get("MSA", 1))
			require.Equal(t, "ESC|001", ack.Get("MSA", 2), "control id with an escaped | round trips")
			require.Equal(t, tt.text, ack.Get("MSA", 3))
			require.Equal(t, "R&D LAB", ack.Get("MSH", 6))
			require.Equal(t, "2.5", ack.Get("MSH", 12))
			errSeg := ack.First("ERR")
			require.Equal(t, "207^Application internal error^HL70357", errSeg.Text(3, 1))
			require.Equal(t, "207", errSeg.Sub(1, 4, 1))
			require.Equal(t, "E", errSeg.Field(4))
			require.Equal(t, tt.wantERR8, errSeg.Field(8))
		})
	}
	raw := string(NewACK(req, AckError, "a|b", "", ackTime))
	require.Contains(t, raw, `MSA|AE|ESC\F\001|a\F\b`)
}

func TestNewACKWithoutRequest(t *testing.T) {
	ack := mustParse(t, NewACK(nil, AckReject, "no message", "", ackTime))
	require.Equal(t, "ACK", ack.Get("MSH", 9))
	require.Equal(t, "P", ack.Get("MSH", 11))
	require.Equal(t, defaultVersion, ack.Get("MSH", 12))
	require.Equal(t, "", ack.Get("MSA", 2))
	require.Equal(t, "no message", ack.Get("ERR", 8))
}

func TestNewACKFromCustomDelimiters(t *testing.T) {
	req := mustParse(t, readTestdata(t, "oru_crlf_custom_delims.hl7"))
	raw := NewACK(req, AckAccept, "", "", ackTime)
	require.True(t, strings.HasPrefix(string(raw), `MSH|^~\&|CALLOUT|CLINIC|LAB|SITE|`), string(raw))
	ack := mustParse(t, raw)
	require.Equal(t, "ACK^R01^ACK", ack.First("MSH").Text(9, 1))
	require.Equal(t, "CD-1", ack.Get("MSA", 2))
	require.Equal(t, 2, ack.First("MSA").FieldCount(), "trailing empty MSA-3 is omitted")
}

func TestNewRejectACK(t *testing.T) {
	tests := []struct {
		name                  string
		raw                   string
		ctrl, recvApp, trig   string
		version, processingID string
	}{
		{"garbage", "hello world", "", "", "", defaultVersion, "P"},
		{"empty", "", "", "", "", defaultVersion, "P"},
		{"bad segment after good MSH", "MSH|^~\\&|SA|SF|RA|RF|2024||ORU^R01|CTL9|T|2.3\rpid|1\r",
			"CTL9", "SA", "R01", "2.3", "T"},
		{"duplicate delimiters", "MSH|^^\\&|SA|SF|RA|RF|2024||ORU^R01^X|CTL^8|P|2.4\r", "CTL", "SA", "R01", "2.4", "P"},
		{"MLLP bytes and junk in MSH", "\x0bjunk MSH|^~\\&|S\x0bA|SF|RA|RF|2024||ORU^R\x1c01|C\r", "", "SA", "R", defaultVersion, "P"},
		{"valid message is acked AR", string(readTestdata(t, "adt_a01.hl7")), "MSG00001", "ADT1", "A01", "2.8", "P"},
		{"MSH with letter separator", "MSHA^~\\&A", "", "", "", defaultVersion, "P"},
		{"overlong control id", "MSH|^~\\&|A|B|C|D|E||F|" + strings.Repeat("9", 500) + "\rbad\r", strings.Repeat("9", maxEchoLen), "A", "", defaultVersion, "P"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := NewRejectACK([]byte(tt.raw), "cannot parse | at all", ackTime)
			require.NoError(t, WriteFrame(io.Discard, raw))
			ack := mustParse(t, raw)
			require.Equal(t, AckReject, ack.Get("MSA", 1))
			require.Equal(t, tt.ctrl, ack.Get("MSA", 2))
			require.Equal(t, "cannot parse | at all", ack.Get("MSA", 3))
			require.Equal(t, "cannot parse | at all", ack.Get("ERR", 8))
			require.Equal(t, tt.recvApp, ack.Get("MSH", 5))
			require.Equal(t, tt.trig, ack.First("MSH").Component(9, 2))
			require.Equal(t, tt.version, ack.Get("MSH", 12))
			require.Equal(t, tt.processingID, ack.Get("MSH", 11))
		})
	}
}

func TestAckERRSegments(t *testing.T) {
	req := mustParse(t, readTestdata(t, "oru_v251_multi.hl7"))
	a := Ack{Code: AckReject, Text: "bad value", Issues: []Issue{
		{Location: Location{Segment: "OBX", Sequence: 3, Field: 5, Position: 12}, Code: CodeDataType, Severity: SeverityError, Message: `OBX-5 "see note" is not a number`},
		{Location: Location{Segment: "PID", Sequence: 1, Field: 7}, Code: CodeDataType, Severity: SeverityWarning, Message: "birth date ignored"},
		{Location: Location{Segment: "PV1", Sequence: 1, Field: 2, Repetition: 2, Component: 1, Subcomponent: 3}, Code: CodeTableValueNotFound, Severity: SeverityWarning, Message: "class"},
		{Location: Location{Segment: "OBR"}, Code: CodeSegmentSequence, Severity: SeverityInformation, Message: "segment only"},
		{Code: CodeApplicationInternalError, Message: "no location, no severity"},
	}}
	ack := mustParse(t, a.Build(req, ackTime))
	errs := ack.All("ERR")
	require.Len(t, errs, 5, "one ERR per issue, in order")
	tests := []struct {
		erl, eld, code, severity, msg string
	}{
		{"OBX^3^5^1", "OBX^3^5^102&Data type error&HL70357", "102^Data type error^HL70357", "E", `OBX-5 "see note" is not a number`},
		{"PID^1^7^1", "PID^1^7^102&Data type error&HL70357", "102^Data type error^HL70357", "W", "birth date ignored"},
		{"PV1^1^2^2^1^3", "PV1^1^2^103&Table value not found&HL70357", "103^Table value not found^HL70357", "W", "class"},
		{"OBR^1", "OBR^1^^100&Segment sequence error&HL70357", "100^Segment sequence error^HL70357", "I", "segment only"},
		{"", "^^^207&Application internal error&HL70357", "207^Application internal error^HL70357", "E", "no location, no severity"},
	}
	for i, tt := range tests {
		e := errs[i]
		require.Equal(t, tt.erl, e.Text(2, 1), "ERR-2 of %d", i+1)
		require.Equal(t, tt.eld, encodeField(e.field(1), DefaultDelims), "ERR-1 of %d", i+1)
		require.Equal(t, tt.code, e.Text(3, 1), "ERR-3 of %d", i+1)
		require.Equal(t, tt.severity, e.Field(4), "ERR-4 of %d", i+1)
		require.Equal(t, tt.msg, e.Field(8), "ERR-8 of %d", i+1)
		require.Empty(t, e.Field(7))
	}
	require.Equal(t, "bad value", ack.Get("MSA", 3))
}

func TestAckLengthLimits(t *testing.T) {
	long := strings.Repeat("é|", 300) // 900 bytes of UTF-8, delimiters to escape
	ack := mustParse(t, Ack{Code: AckError, Text: long, Issues: []Issue{{Code: CodeDataType, Severity: SeverityError, Message: long}}}.Build(nil, ackTime))
	msa3 := ack.First("MSA")
	require.LessOrEqual(t, len(encodeField(msa3.field(3), DefaultDelims)), 80, "MSA-3 as written is at most 80 bytes")
	require.True(t, strings.HasPrefix(long, ack.Get("MSA", 3)), "cut, never garbled: %q", ack.Get("MSA", 3))
	require.True(t, utf8.ValidString(ack.Get("MSA", 3)))
	e := ack.First("ERR")
	require.LessOrEqual(t, len(encodeField(e.field(8), DefaultDelims)), 250)
	require.True(t, strings.HasPrefix(long, e.Field(8)))
	require.Equal(t, long, e.Field(7), "the whole message in ERR-7 (diagnostic information)")

	var many []Issue
	for i := range 40 {
		many = append(many, Issue{Location: Location{Segment: "OBX", Sequence: i + 1, Field: 14}, Code: CodeDataType, Severity: SeverityWarning, Message: "bad time"})
	}
	ack = mustParse(t, Ack{Code: AckAccept, Text: "stored", Issues: many}.Build(nil, ackTime))
	errs := ack.All("ERR")
	require.Len(t, errs, maxErrSegments)
	require.Equal(t, "OBX^24^14^1", errs[23].Text(2, 1))
	last := errs[maxErrSegments-1]
	require.Equal(t, "I", last.Field(4))
	require.Equal(t, "16 more issues are not listed", last.Field(8))
}

func TestNewRejectACKLocatesTheParseError(t *testing.T) {
	ack := mustParse(t, NewRejectACK([]byte("MSH|^~\\&|SA|SF|RA|RF|2024||ORU^R01|C7|P|2.5\rPID|1\rpv1|x\r"), "cannot parse", ackTime))
	e := ack.First("ERR")
	require.Equal(t, "100", e.Component(3, 1))
	require.Equal(t, "cannot parse", e.Field(8))
	ack = mustParse(t, NewRejectACK([]byte("MSH|^~\\^|SA|SF|RA|RF|2024||ORU^R01|C7|P|2.5\r"), "bad delimiters", ackTime))
	require.Equal(t, "MSH^1^2^1", ack.First("ERR").Text(2, 1))
	require.Equal(t, "102", ack.First("ERR").Component(3, 1))
}
