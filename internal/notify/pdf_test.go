package notify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFaxSheet(t *testing.T) {
	tests := []struct {
		name    string
		content Content
	}{
		{"single", singleReport(testContent())},
		{"bulk", testContent()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdf, err := FaxSheet(tt.content)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(pdf), "%PDF"))
			// Table cells wrap: compare with whitespace collapsed.
			text := flat(pdfText(t, pdf))
			for _, s := range []string{
				"Acme Diagnostics", "CRITICAL RESULTS", "ORD-2024-0042", "ACC-778899", "Jane Roe",
				"City Clinic", "Dr. Alan Smith (Referral)", "Sample slightly haemolysed.",
				"Tech Tara", "05 Mar 2024 14:30 UTC", "Read back required: please call the lab",
			} {
				require.Contains(t, text, s)
			}
			for _, r := range tt.content.Reports {
				require.Contains(t, text, r.TestName)
				for _, p := range r.Parameters {
					for _, s := range []string{p.Name, p.Value, p.Unit, p.NormalRange, p.Flag} {
						require.Contains(t, text, flat(s))
					}
				}
			}
			if len(tt.content.Reports) > 1 {
				require.Contains(t, text, "Report 2 of 2: Complete Blood Count")
			}
		})
	}
}

func TestFaxSheetNoComment(t *testing.T) {
	c := testContent()
	c.Comment = ""
	pdf, err := FaxSheet(c)
	require.NoError(t, err)
	require.NotContains(t, pdfText(t, pdf), "Comment from the lab")
}

func TestFaxSheetManyPages(t *testing.T) {
	c := testContent()
	for i := range 120 {
		c.Reports[1].Parameters = append(c.Reports[1].Parameters,
			Parameter{Name: fmt.Sprintf("Param %03d with a rather long name that wraps", i), Value: "1", Unit: "g/L", NormalRange: "≥ 2", Flag: "L"})
	}
	pdf, err := FaxSheet(c)
	require.NoError(t, err)
	text := pdfText(t, pdf)
	require.Contains(t, text, "Param 119")
	require.Contains(t, text, ">= 2") // not representable in cp1252: spelled out
	require.Contains(t, text, "page 3 of")
}

func flat(s string) string { return strings.Join(strings.Fields(s), " ") }
