package hl7

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

func mustParse(t testing.TB, data []byte) *Message {
	t.Helper()
	m, err := Parse(data)
	require.NoError(t, err)
	return m
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file      string
		segments  []string
		controlID string
		delims    Delims
	}{
		{"oru_v23_basic.hl7", []string{"MSH", "PID", "PV1", "OBR", "OBX", "OBX", "OBX", "OBX"}, "MSG00001", DefaultDelims},
		{"oru_v251_multi.hl7", []string{"MSH", "SFT", "PID", "NTE", "PV1", "ORC", "OBR", "OBX", "OBX", "OBX", "NTE", "OBX",
			"ORC", "OBR", "OBX", "OBX", "OBX", "OBX", "ZXX", "SPM", "OBX"}, "CTRL-20240315-0042", DefaultDelims},
		{"oru_escapes.hl7", []string{"MSH", "PID", "OBR", "OBX", "OBX", "OBX", "ZPI"}, "ESC|001", DefaultDelims},
		{"oru_lf.hl7", []string{"MSH", "PID", "ORC", "OBR", "OBX", "ZQA"}, "LF-0001", DefaultDelims},
		{"oru_crlf_custom_delims.hl7", []string{"MSH", "PID", "OBR", "OBX", "OBX"}, "CD-1",
			Delims{Field: '!', Component: '@', Repetition: '~', Escape: '\\', Subcomponent: '$'}},
		{"adt_a01.hl7", []string{"MSH", "EVN", "PID", "NK1", "PV1"}, "MSG00001", DefaultDelims},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := mustParse(t, readTestdata(t, tt.file))
			var names []string
			for _, s := range m.Segments {
				names = append(names, s.Name)
			}
			require.Equal(t, tt.segments, names)
			require.Equal(t, tt.controlID, m.Get("MSH", 10))
			require.Equal(t, tt.delims, m.Delims)
			require.Equal(t, string(tt.delims.Field), m.Get("MSH", 1))
			require.Equal(t, tt.delims.EncodingChars(), m.Get("MSH", 2))
		})
	}
}

func TestParseLineEndingsAgree(t *testing.T) {
	cr := readTestdata(t, "oru_v23_basic.hl7")
	want := mustParse(t, cr)
	for name, sep := range map[string]string{"LF": "\n", "CRLF": "\r\n", "LFCR": "\n\r", "blank lines": "\r\n\r\n"} {
		t.Run(name, func(t *testing.T) {
			data := strings.ReplaceAll(string(cr), "\r", sep)
			got := mustParse(t, []byte("\uFEFF \n"+data))
			require.Equal(t, want, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"empty", "", "hl7: empty message"},
		{"blank", " \r\n\r\n\t", "hl7: empty message"},
		{"not MSH", "PID|1||X\rMSH|^~\\&|A", `hl7: segment 1: first segment must be MSH, got "PID"`},
		{"batch header", "FHS|^~\\&|A\rMSH|^~\\&|A", `first segment must be MSH, got "FHS"`},
		{"MSH only", "MSH", "segment 1 (MSH-1): MSH too short to hold delimiters"},
		{"MSH no encoding chars", "MSH|", `MSH too short to hold delimiters: MSH-2 "" has 0 encoding characters`},
		{"MSH short encoding chars", "MSH|^~\\|A|B", `MSH-2 "^~\\" has 3 encoding characters, need 4`},
		{"too many encoding chars", "MSH|^~\\&#!|A", `has 6 encoding characters, want 4 or 5`},
		{"duplicate delimiter", "MSH|^~\\^|A", `bad delimiter set in MSH-1/MSH-2 "|^~\\^": component separator and subcomponent separator are both '^'`},
		{"alphanumeric delimiter", "MSHA^~\\&A", `field separator 'A' is not printable ASCII punctuation`},
		{"NUL truncation character", "MSH!\"#$%\x00", `truncation character '\x00' is not printable ASCII punctuation`},
		{"space delimiter", "MSH|^ \\&|", `repetition separator ' ' is not printable ASCII punctuation`},
		{"lowercase segment", "MSH|^~\\&|A\rPID|1\rpv1|1", `hl7: segment 3: invalid segment name "pv1"`},
		{"long segment name", "MSH|^~\\&|A\rPIDX|1", `segment 2: invalid segment name "PIDX"`},
		{"short segment name", "MSH|^~\\&|A\rPI|1", `segment 2: invalid segment name "PI"`},
		{"digit first", "MSH|^~\\&|A\r1AB|1", `segment 2: invalid segment name "1AB"`},
		{"indented segment", "MSH|^~\\&|A\r PID|1", `segment 2: invalid segment name " PID"`},
		{"second MSH", "MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B", "segment 3 (MSH[2]): unexpected second MSH segment"},
		{"MLLP framed", "\x0bMSH|^~\\&|A\r\x1c\r", `first segment must be MSH, got "\vMS"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.input))
			require.Nil(t, m)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := Parse(nil)
	require.ErrorIs(t, err, ErrEmpty)
}

func TestSegmentAccessors(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|APP^FAC&SUB|X\r"+
		"PID|1||A1^^^H1^MR~B2^^^H2^SS||DOE&VAN&DER^JOHN^Q~ALIAS^J||||||||^NET^Internet^j@x.org||\r"+
		"OBX|1|TX|N||a^b&c~~d\r"+
		"NTE\r"))
	pid, obx, nte := m.First("PID"), m.First("OBX"), m.First("NTE")
	var missing *Segment = m.First("ZZZ")

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"Field", pid.Field(3), "A1"},
		{"Field joins subcomponents", pid.Field(5), "DOE&VAN&DER"},
		{"Field absent", pid.Field(99), ""},
		{"Field zero", pid.Field(0), ""},
		{"Field negative", pid.Field(-1), ""},
		{"Component", pid.Component(5, 2), "JOHN"},
		{"Component absent", pid.Component(5, 9), ""},
		{"ComponentAt", pid.ComponentAt(3, 2, 4), "H2"},
		{"ComponentAt absent rep", pid.ComponentAt(3, 3, 1), ""},
		{"Sub", pid.Sub(5, 1, 2), "VAN"},
		{"Sub absent", pid.Sub(5, 1, 4), ""},
		{"SubAt", m.First("MSH").SubAt(3, 1, 2, 2), "SUB"},
		{"Repetitions", pid.Repetitions(3), 2},
		{"Repetitions single", pid.Repetitions(1), 1},
		{"Repetitions empty", pid.Repetitions(2), 0},
		{"Repetitions absent", pid.Repetitions(50), 0},
		{"Repetitions empty reps", obx.Repetitions(5), 3},
		{"Values", obx.Values(5), []string{"a", "", "d"}},
		{"Values absent", pid.Values(4), []string(nil)},
		{"Text", obx.Text(5, 1), "a^b&c"},
		{"Text absent", obx.Text(5, 9), ""},
		{"FieldCount", pid.FieldCount(), 15},
		{"FieldCount no fields", nte.FieldCount(), 0},
		{"MSH-1", m.Get("MSH", 1), "|"},
		{"MSH-2", m.Get("MSH", 2), `^~\&`},
		{"MSH-3", m.Get("MSH", 3), "APP"},
		{"nil segment Field", missing.Field(1), ""},
		{"nil segment Sub", missing.SubAt(1, 1, 1, 1), ""},
		{"nil segment Repetitions", missing.Repetitions(1), 0},
		{"nil segment Values", missing.Values(1), []string(nil)},
		{"nil segment FieldCount", missing.FieldCount(), 0},
		{"Get missing segment", m.Get("ZZZ", 1), ""},
		{"All", len(m.All("PID")), 1},
		{"nil message", (*Message)(nil).Get("MSH", 1), ""},
		{"nil message All", (*Message)(nil).All("MSH"), []*Segment(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.got)
		})
	}
}

func TestHandBuiltSegmentUsesDefaultDelims(t *testing.T) {
	s := &Segment{Name: "ZZZ", Fields: []Field{{{{"a", "b"}, {"c"}}}}}
	require.Equal(t, "a&b", s.Field(1))
	require.Equal(t, "a&b^c", s.Text(1, 1))
}

func TestUnescape(t *testing.T) {
	d := DefaultDelims
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\F\b`, `a|b`},
		{`a\S\b`, `a^b`},
		{`a\T\b`, `a&b`},
		{`a\R\b`, `a~b`},
		{`a\E\b`, `a\b`},
		{`\E\\E\`, `\\`},
		{`\X0D0A\`, "\r\n"},
		{`\xff\`, `\xff\`},          // lowercase x is not the hex escape
		{`\X4a4B\`, `JK`},           // hex digits in either case
		{`\X0G\`, `\X0G\`},          // invalid hex kept
		{`\X123\`, `\X123\`},        // odd length kept
		{`\X\`, ``},                 // empty hex
		{`one\.br\two`, "one\ntwo"}, // line break
		{`one\.sp\two`, "one\ntwo"},
		{`one\.sp 2\two`, "one\n\ntwo"}, // end the line, skip 2 lines
		{`one\.sp 999999999\two`, "one" + strings.Repeat("\n", maxFormatRepeat) + "two"},
		{`one\.sp x\two`, "onetwo"},     // a bad number: the command is dropped
		{`\.ce\centered`, "\ncentered"}, // end the line; the next one is centred
		{`a\.sk 3\b`, "a   b"},          // skip 3 spaces to the right
		{`\.ti 2\b`, "  b"},             // indent this line
		{`\.ti -2\b`, "b"},              // a negative indent cannot be shown
		{`\.in 4\a\.fi\\.nf\b`, "ab"},   // indentation and fill mode dropped
		{`\.br2\x`, "x"},                // not a command
		{`\XE9\`, "é"},                  // a byte that is not UTF-8: ISO 8859/1
		{`\H\bold\N\`, `bold`},
		{`\Zlocal\x`, `x`},
		{`\C2842\x\M2442\`, `x`},
		{`\P\`, `\P\`}, // no truncation character declared
		{`\Q\`, `\Q\`},
		{`\\`, `\\`},
		{`a\b`, `a\b`},       // unterminated
		{`a\F\b\c`, `a|b\c`}, // sequence then unterminated
		{`\`, `\`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, d.UnescapeText(tt.in))
		})
	}
	trunc := DefaultDelims
	trunc.Truncation = '#'
	require.Equal(t, "a#b", trunc.UnescapeText(`a\P\b`))
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a|b^c&d~e\\f", `a\F\b\S\c\T\d\R\e\E\f`},
		{"line1\r\nline2", `line1\X0D\\X0A\line2`},
		{"tab\tok", "tab\tok"},
		{"\x0bframe\x1c", `\X0B\frame\X1C\`},
		{"ünïcödé", "ünïcödé"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Escape(tt.in)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, DefaultDelims.UnescapeText(got))
		})
	}
	trunc := DefaultDelims
	trunc.Truncation = '#'
	require.Equal(t, `a\P\b`, trunc.EscapeText("a#b"))
	require.Equal(t, "a#b", Escape("a#b"))
}

func TestEscapedDelimitersDoNotSplit(t *testing.T) {
	m := mustParse(t, []byte("MSH|^~\\&|A\rOBX|1|ST|X||a\\F\\b\\S\\c\\R\\d\\T\\e|u"))
	obx := m.First("OBX")
	require.Equal(t, "a|b^c~d&e", obx.Field(5))
	require.Equal(t, 1, obx.Repetitions(5))
	require.Equal(t, "u", obx.Field(6))
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, file := range []string{"oru_v23_basic.hl7", "oru_v251_multi.hl7", "oru_escapes.hl7",
		"oru_lf.hl7", "oru_crlf_custom_delims.hl7", "adt_a01.hl7"} {
		t.Run(file, func(t *testing.T) {
			m := mustParse(t, readTestdata(t, file))
			again := mustParse(t, m.Encode())
			require.Equal(t, m, again)
		})
	}
	raw := "MSH|^~\\&|A|B\rPID|1||X^^^Y~Z||\rNTE\r"
	require.Equal(t, raw, string(mustParse(t, []byte(raw)).Encode()))
}
