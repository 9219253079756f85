package callout

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestTextRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		line, multi string // "" accepted, else the expected message after "f "
	}{
		{"", "", ""},
		{"Maria Müller", "", ""},
		{"Dr. O'Neil-Smith, MD", "", ""},
		{"山田 太郎", "", ""},
		{"محمد", "", ""},                     // right-to-left letters need no control
		{"\u200fمحمد\u200e (MRN 7)", "", ""}, // implicit marks are allowed
		{"a\u00a0b", "", ""},                 // no-break space
		{"😀", "", ""},
		{"a\x00b", "contains a control character (U+0000)", "contains a control character (U+0000)"},
		{"EVIL-1\r\nBcc: x", "contains a control character (U+000D)", "contains a control character (U+000D)"},
		{"a\nb", "contains a control character (U+000A)", ""},
		{"a\tb", "contains a control character (U+0009)", ""},
		{"a\vb", "contains a control character (U+000B)", "contains a control character (U+000B)"},
		{"a\fb", "contains a control character (U+000C)", "contains a control character (U+000C)"},
		{"a\x1bb", "contains a control character (U+001B)", "contains a control character (U+001B)"},
		{"a\x1fb", "contains a control character (U+001F)", "contains a control character (U+001F)"},
		{"a\x7fb", "contains a control character (U+007F)", "contains a control character (U+007F)"},
		{"a\u0080b", "contains a control character (U+0080)", "contains a control character (U+0080)"},
		{"a\u0085b", "contains a control character (U+0085)", "contains a control character (U+0085)"},
		{"a\u009fb", "contains a control character (U+009F)", "contains a control character (U+009F)"},
		{"a\u00a0\u00a1", "", ""},
		{"\u202aa", "contains a bidirectional control character (U+202A)", "contains a bidirectional control character (U+202A)"},
		{"txt.\u202eexe", "contains a bidirectional control character (U+202E)", "contains a bidirectional control character (U+202E)"},
		{"a\u2066b", "contains a bidirectional control character (U+2066)", "contains a bidirectional control character (U+2066)"},
		{"a\u2069b", "contains a bidirectional control character (U+2069)", "contains a bidirectional control character (U+2069)"},
		{"a\u2065b", "", ""}, // unassigned, next to the isolates
		{"a\u202fb", "", ""}, // narrow no-break space, next to the overrides
		{"a\u2028b", "contains a line separator (U+2028)", ""},
		{"a\u2029b", "contains a paragraph separator (U+2029)", ""},
		{"a\xffb", "is not valid UTF-8", "is not valid UTF-8"},
		{"a\xed\xa0\x80b", "is not valid UTF-8", "is not valid UTF-8"}, // a UTF-16 surrogate
		{"line 1\n\tline 2\x00", "contains a control character (U+000A)", "contains a control character (U+0000)"},
	}
	for _, tc := range tests {
		for _, c := range []struct {
			check func(string, string) error
			want  string
		}{{CheckLine, tc.line}, {CheckMultiline, tc.multi}} {
			err := c.check("f", tc.in)
			if c.want == "" {
				require.NoError(t, err, "%q", tc.in)
				continue
			}
			require.Error(t, err, "%q", tc.in)
			require.Equal(t, KindUnprocessable, ErrorKind(err))
			require.Equal(t, "f "+c.want, ErrorMessage(err), "%q", tc.in)
		}
	}
}

func TestCheckDocument(t *testing.T) {
	t.Parallel()
	require.NoError(t, checkDocument("template", "<p>\r\n\t{{ lab_name }}\u202e</p>\n"), "a template file as saved on Windows")
	require.EqualError(t, checkDocument("template", "<p>\x00</p>"), "template contains a control character (U+0000)")
	require.EqualError(t, checkDocument("template", "<p>\x1b</p>"), "template contains a control character (U+001B)")
	require.EqualError(t, checkDocument("template", "<p>\xc3</p>"), "template is not valid UTF-8")
}

// FuzzCheckLine checks the rules against their definition on any input: what
// passes is valid UTF-8 with no control, bidi control or line separator, and
// what passes CheckLine passes CheckMultiline.
func FuzzCheckLine(f *testing.F) {
	for _, s := range []string{"", "Maria", "a\x00b", "x\r\ny", "\u202e", "a\tb\nc", "\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line, multi := CheckLine("f", s), CheckMultiline("f", s)
		if line == nil {
			require.NoError(t, multi, "%q", s)
			require.True(t, utf8.ValidString(s))
			require.False(t, strings.ContainsFunc(s, func(r rune) bool {
				return r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x2028 || r == 0x2029
			}), "%q", s)
		}
		if multi == nil {
			require.True(t, utf8.ValidString(s))
			require.False(t, strings.ContainsFunc(s, func(r rune) bool {
				return r != '\n' && r != '\t' && (r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069))
			}), "%q", s)
		}
		for _, err := range []error{line, multi} {
			if err != nil {
				require.Equal(t, KindUnprocessable, ErrorKind(err))
				require.True(t, utf8.ValidString(err.Error()), "a message never repeats the bad bytes")
				require.False(t, strings.ContainsAny(err.Error(), "\x00\r\n"))
			}
		}
	})
}
