package notify

import (
	"bytes"
	"compress/zlib"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testContent returns a two-report order; tests trim it as needed.
func testContent() Content {
	return Content{
		LabName:         "Acme Diagnostics",
		LabBillID:       "ORD-2024-0042",
		AccessionNumber: "ACC-778899",
		PatientName:     "Jane Roe",
		Organization:    "City Clinic",
		Referral:        "Dr. Alan Smith",
		Reports: []Report{
			{TestID: "KFT-1", TestName: "Kidney Function Test", Department: "Biochemistry", Parameters: []Parameter{
				{Name: "Potassium", Value: "6.8", Unit: "mmol/L", NormalRange: "3.5–5.1", CriticalRange: ">6.0", Flag: "HH"},
				{Name: "Creatinine", Value: "412", Unit: "µmol/L", NormalRange: "62–106", Flag: "H"},
			}},
			{TestID: "CBC-9", TestName: "Complete Blood Count", Department: "Haematology", Parameters: []Parameter{
				{Name: "Platelet count", Value: "14", Unit: "10^3/µL", NormalRange: "150–410", Flag: "Critical Low"},
			}},
		},
		Comment:        "Sample slightly haemolysed.",
		OrderURL:       "https://callout.example/orders/42?lab=7&x=1",
		CalledBy:       "Tech Tara",
		NotifiedPerson: "Nurse Nina",
		CalledAt:       time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC),
		RecipientName:  "Dr. Alan Smith",
		RecipientType:  RecipientReferral,
	}
}

func singleReport(c Content) Content {
	c.Reports = c.Reports[:1]
	return c
}

// pdfText extracts the text of a PDF: with pdftotext when installed,
// otherwise by inflating the content streams and collecting the string
// operands of the text operators (enough for fpdf's core-font output).
func pdfText(t *testing.T, data []byte) string {
	t.Helper()
	if path, err := exec.LookPath("pdftotext"); err == nil {
		cmd := exec.Command(path, "-layout", "-", "-")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		require.NoError(t, err)
		return string(out)
	}
	var text strings.Builder
	streams := regexp.MustCompile(`(?s)stream\r?\n(.*?)\r?\nendstream`).FindAllSubmatch(data, -1)
	literal := regexp.MustCompile(`\(((?:\\.|[^\\)])*)\)`)
	for _, s := range streams {
		zr, err := zlib.NewReader(bytes.NewReader(s[1]))
		if err != nil {
			continue // not a deflated stream (fonts etc.)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			continue
		}
		for _, m := range literal.FindAllSubmatch(raw, -1) {
			text.WriteString(cp1252ToUTF8(unescapePDF(m[1])))
			text.WriteByte('\n')
		}
	}
	return text.String()
}

func unescapePDF(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
			switch b[i] {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			default:
				out = append(out, b[i])
			}
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// cp1252ToUTF8 decodes the cp1252 bytes fpdf writes for core fonts; only
// the characters the tests use outside Latin-1 are mapped.
func cp1252ToUTF8(b []byte) string {
	special := map[byte]rune{0x80: '€', 0x96: '–', 0x97: '—', 0x91: '‘', 0x92: '’', 0x93: '“', 0x94: '”'}
	var s strings.Builder
	for _, c := range b {
		if r, ok := special[c]; ok {
			s.WriteRune(r)
		} else {
			s.WriteRune(rune(c))
		}
	}
	return s.String()
}
