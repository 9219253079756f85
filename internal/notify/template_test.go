package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func render(t *testing.T, c Content) Rendered {
	t.Helper()
	r, err := NewRenderer(context.Background(), "")
	require.NoError(t, err)
	out, err := r.Render(context.Background(), c)
	require.NoError(t, err)
	return out
}

func TestRenderSingleAndBulk(t *testing.T) {
	tests := []struct {
		name       string
		content    Content
		wantBulk   bool
		wantAbsent []string
	}{
		{"single report", singleReport(testContent()), false, []string{"Report 1 of", "Platelet count"}},
		{"bulk", testContent(), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, tt.content)
			for _, body := range []string{out.HTML, out.Text} {
				for _, rep := range tt.content.Reports {
					require.Contains(t, body, rep.TestName)
					for _, p := range rep.Parameters {
						for _, s := range []string{p.Name, p.Value, p.Unit, p.NormalRange, p.Flag} {
							require.Contains(t, body, s)
						}
					}
				}
				require.Contains(t, body, "ORD-2024-0042")
				require.Contains(t, body, "Jane Roe")
				require.Contains(t, body, "Dear Dr. Alan Smith")
				require.Contains(t, body, "Read back required")
				for _, s := range tt.wantAbsent {
					require.NotContains(t, body, s)
				}
			}
			// The URL's & is escaped in HTML, verbatim in text.
			require.Contains(t, out.HTML, `href="https://callout.example/orders/42?lab=7&amp;x=1"`)
			require.Contains(t, out.Text, "https://callout.example/orders/42?lab=7&x=1")
			if tt.wantBulk {
				require.Contains(t, out.HTML, "Report 1 of 2: Kidney Function Test")
				require.Contains(t, out.HTML, "Report 2 of 2: Complete Blood Count")
				require.Contains(t, out.Text, "== Report 2 of 2: Complete Blood Count (Haematology) ==")
				require.Contains(t, out.HTML, "2 reports</strong>")
			} else {
				require.Contains(t, out.HTML, "<h2")
				require.Contains(t, out.Text, "== Kidney Function Test (Biochemistry) ==")
			}
			// Critical rows are highlighted, abnormal ones are not.
			require.Contains(t, out.HTML, `<tr style="background:#fef3f2;color:#b42318;font-weight:bold;">
    <td style="padding:6px 8px;border:1px solid #d0d5dd;">Potassium</td>`)
			require.Contains(t, out.Text, "!! Potassium: 6.8 mmol/L  [HH]")
			require.Contains(t, out.Text, "-  Creatinine: 412 µmol/L  [H]")
		})
	}
}

func TestRenderComment(t *testing.T) {
	with := testContent()
	with.Comment = "Repeat <sample> & call"
	out := render(t, with)
	require.Contains(t, out.HTML, "Comment from the lab")
	require.Contains(t, out.HTML, "Repeat &lt;sample&gt; &amp; call")
	require.Contains(t, out.Text, "Comment from the lab:\nRepeat <sample> & call")

	without := testContent()
	without.Comment = ""
	out = render(t, without)
	require.NotContains(t, out.HTML, "Comment from the lab")
	require.NotContains(t, out.Text, "Comment from the lab")
}

func TestHiddenPatientName(t *testing.T) {
	tests := []struct {
		name      string
		accession string
		want      string
	}{
		{"replaced by accession", "ACC-778899", "ACC-778899"},
		{"replaced by order id without accession", "", "ORD-2024-0042"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testContent()
			c.HidePatientName = true
			c.AccessionNumber = tt.accession
			// The name leaks in through every free-text field it could.
			c.RecipientName, c.RecipientType = "Jane Roe", RecipientPatient
			c.Comment = "Told JANE  ROE's husband to come in."
			c.NotifiedPerson = "husband of Jane Roe"
			out := render(t, c)
			pdf, err := FaxSheet(c)
			require.NoError(t, err)
			pdfTxt := pdfText(t, pdf)
			for name, body := range map[string]string{"html": out.HTML, "text": out.Text, "pdf": pdfTxt, "subject": out.Subject} {
				require.NotContains(t, strings.ToLower(body), "roe", name)
				if name != "subject" {
					require.Contains(t, body, tt.want, name)
				}
			}
			require.Contains(t, out.Text, "Patient:       "+tt.want)
			require.Contains(t, out.Text, "Hello,")
		})
	}
}

func TestRenderEscapesCustomTemplate(t *testing.T) {
	r, err := NewRenderer(context.Background(), `<p>{{ patient_name }}</p><p>{{ reports[0].parameters[0].name }}</p>{% if is_bulk %}bulk{% endif %}`)
	require.NoError(t, err)
	c := testContent()
	c.PatientName = `<script>alert("x")</script>`
	c.Reports[0].Parameters[0].Name = `<b onmouseover='x'>K</b>`
	out, err := r.Render(context.Background(), c)
	require.NoError(t, err)
	require.NotContains(t, out.HTML, "<script>")
	require.Contains(t, out.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	require.Contains(t, out.HTML, "&lt;b onmouseover=&#39;x&#39;&gt;K&lt;/b&gt;")
	require.True(t, strings.HasSuffix(out.HTML, "bulk"))
	// The text part always comes from the built-in template, unescaped.
	require.Contains(t, out.Text, `Patient:       <script>alert("x")</script>`)
}

func TestDefaultTemplateEscapes(t *testing.T) {
	c := testContent()
	c.LabName = `Lab <img src=x onerror=alert(1)>`
	out := render(t, c)
	require.NotContains(t, out.HTML, "<img")
	require.Contains(t, out.HTML, "Lab &lt;img src=x onerror=alert(1)&gt;")
}

func TestValidateTemplate(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		wantLine int
		wantMsg  string
	}{
		{"unclosed if", "<p>a</p>\n{% if comment %}\n<p>{{ comment }}</p>\n", 3, `expected tag elif or else or endif. (unclosed "if" block opened on line 2)`},
		{"unclosed if one line", "{% if x %}", 1, "Unexpected EOF"},
		{"broken call", "<p>\n{{ foo( }}\n</p>", 2, "expected either a number, string, keyword or identifier"},
		{"unclosed variable", "<p>{{ lab_name </p>", 1, ""},
		{"stray endfor", "a\nb\nc\n{% endfor %}", 4, "endfor"},
		{"unknown filter", "<p>\n\n{{ lab_name | shout }}</p>", 3, `the |shout filter is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTemplate(context.Background(), tt.src)
			require.Error(t, err)
			var te *TemplateError
			require.True(t, errors.As(err, &te), "%T %v", err, err)
			require.Equal(t, tt.wantLine, te.Line, te.Error())
			require.Contains(t, te.Message, tt.wantMsg)
			require.True(t, strings.HasPrefix(te.Error(), fmt.Sprintf("line %d: ", tt.wantLine)), te.Error())

			_, err = NewRenderer(context.Background(), tt.src)
			require.True(t, errors.As(err, &te), "NewRenderer must reject it too: %v", err)
		})
	}
	// Whole lists and maps are printed escaped like any other value.
	for _, src := range []string{"{% for r in reports %}{{ r }}{% endfor %}", "{{ reports }}"} {
		require.NoError(t, ValidateTemplate(context.Background(), src), src)
	}
	require.NoError(t, ValidateTemplate(context.Background(), DefaultHTMLTemplate()))
	require.NoError(t, ValidateTemplate(context.Background(), "<p>{{ patient_name }}</p>"))
}

func TestTemplateCannotReadFiles(t *testing.T) {
	err := ValidateTemplate(context.Background(), `{% include "/etc/passwd" %}`)
	require.Error(t, err)
}

func TestRenderConcurrent(t *testing.T) {
	r, err := NewRenderer(context.Background(), "")
	require.NoError(t, err)
	want, err := r.Render(context.Background(), testContent())
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := r.Render(context.Background(), testContent())
				if err != nil || got != want {
					t.Errorf("concurrent render differs: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestReadBackLine: the message asks for a read-back only when the callout
// did not confirm one; critical limits read as limits.
func TestReadBackLine(t *testing.T) {
	for _, confirmed := range []bool{false, true} {
		c := testContent()
		c.ReadBack = confirmed
		c.Reports[0].Parameters[0].CriticalRange = "<2.5 or >6.5"
		out := render(t, c)
		pdf, err := FaxSheet(c)
		require.NoError(t, err)
		for _, body := range []string{out.HTML, out.Text, flat(pdfText(t, pdf))} {
			require.Equal(t, !confirmed, strings.Contains(body, "Read back required"), "read back confirmed: %v", confirmed)
		}
		require.Contains(t, out.Text, "critical limits: <2.5 or >6.5")
		require.Contains(t, out.HTML, "&lt;2.5 or &gt;6.5")
	}
}
