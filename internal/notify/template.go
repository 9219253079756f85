package notify

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"
)

//go:embed templates/*
var templateFS embed.FS

// Names of the embedded default templates.
const (
	defaultHTMLTemplate = "templates/email.html"
	defaultTextTemplate = "templates/email.txt"
)

// DefaultHTMLTemplate returns the source of the built-in HTML email template,
// e.g. as a starting point for a lab's custom template.
func DefaultHTMLTemplate() string {
	return mustReadTemplate(defaultHTMLTemplate)
}

func mustReadTemplate(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		// The file is embedded at build time: failing here is a build bug.
		panic(fmt.Sprintf("notify: embedded template %s missing: %v", name, err))
	}
	return string(b)
}

// Rendered is a message rendered for one recipient.
type Rendered struct {
	Subject string
	HTML    string
	Text    string
}

// Renderer renders Content into an email. It is safe for concurrent use.
type Renderer struct {
	html *exec.Template
	text *exec.Template
}

// NewRenderer compiles the HTML template (the built-in one when htmlTemplate
// is "") and the built-in plain-text template. A custom template is also
// checked like ValidateTemplate does, so that a template that became invalid
// (stored before a rule existed) or errors only detectable at render time
// (unknown filter, unescaped output) surface now rather than when a critical
// result has to go out. The HTML template is rendered with autoescape on;
// the text template with autoescape off.
func NewRenderer(ctx context.Context, htmlTemplate string) (*Renderer, error) {
	htmlSrc := htmlTemplate
	if htmlSrc == "" {
		htmlSrc = mustReadTemplate(defaultHTMLTemplate)
	}
	html, err := compileHTML(htmlSrc)
	if err != nil {
		return nil, fmt.Errorf("html template: %w", err)
	}
	text, err := compile("email.txt", mustReadTemplate(defaultTextTemplate), false)
	if err != nil {
		return nil, fmt.Errorf("built-in text template: %w", err)
	}
	r := &Renderer{html: html, text: text}
	if htmlTemplate != "" {
		if err := trialRender(ctx, html); err != nil {
			return nil, fmt.Errorf("html template: %w", err)
		}
	}
	return r, nil
}

// Render renders the subject, HTML and plain-text bodies for c. Each body is
// bounded (MaxRenderCPU, MaxRenderOutput) and stops when ctx is cancelled:
// past a bound the error is a *LimitError, on cancellation ctx's error.
func (r *Renderer) Render(ctx context.Context, c Content) (Rendered, error) {
	v := prepare(c)
	// Each execution gets its own context maps: gonja contexts are mutable,
	// so the two templates must not share one.
	html, err := renderBounded(ctx, r.html, templateContext(v))
	if err != nil {
		return Rendered{}, fmt.Errorf("render html for order %s: %w", c.LabBillID, err)
	}
	text, err := renderBounded(ctx, r.text, templateContext(v))
	if err != nil {
		return Rendered{}, fmt.Errorf("render text for order %s: %w", c.LabBillID, err)
	}
	return Rendered{
		Subject: Subject(c.LabName, c.LabBillID),
		HTML:    html,
		Text:    tidyText(text),
	}, nil
}

// TemplateError is a template syntax or render error with the line it was
// found on, suitable for showing to the lab admin editing the template.
type TemplateError struct {
	Line    int // 1-based; 0 when gonja did not report a position
	Column  int // 1-based; 0 when unknown
	Message string
}

// Error formats the error as "line N: message".
func (e *TemplateError) Error() string {
	if e.Line <= 0 {
		return e.Message
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Message)
}

// ValidateTemplate checks a custom HTML template: it must use only what the
// whitelist allows (see sandbox.go), parse, render within the bounds and
// without error against sample single-report and multi-report content, and
// not print data unescaped. The error is a *TemplateError carrying the line
// (0 when unknown), a *LimitError, or ctx's error when ctx is cancelled.
func ValidateTemplate(ctx context.Context, src string) error {
	tpl, err := compileHTML(src)
	if err != nil {
		return err
	}
	return trialRender(ctx, tpl)
}

func compileHTML(src string) (*exec.Template, error) {
	return compile("email.html", src, true)
}

// compile checks src against the whitelist, parses it with its own loader
// and environment, and instruments it for bounded rendering. The in-memory
// loader holds only this template, and include is not even a known
// statement, so a custom template cannot read files from the server.
func compile(name, src string, autoescape bool) (tpl *exec.Template, err error) {
	defer func() {
		// A bug in gonja's parser must not take the process down with it.
		if p := recover(); p != nil {
			tpl, err = nil, &TemplateError{Message: fmt.Sprintf("the template cannot be parsed: %v", p)}
		}
	}()
	cfg := config.New()
	cfg.AutoEscape = autoescape
	// Block tags on their own line then leave no blank lines behind, which
	// keeps the templates readable without whitespace-control clutter.
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	if err := scanTemplate(src, cfg); err != nil {
		return nil, err
	}
	id := "/" + name
	loader, err := loaders.NewMemoryLoader(map[string]string{id: src})
	if err != nil {
		return nil, fmt.Errorf("template loader: %w", err)
	}
	tpl, err = exec.NewTemplate(id, cfg, loader, newEnvironment())
	if err != nil {
		return nil, parseError(src, err)
	}
	if err := checkTemplate(tpl.Root()); err != nil {
		return nil, err
	}
	instrument(tpl.Root(), autoescape)
	return tpl, nil
}

// parseError converts a gonja parse error into a *TemplateError. gonja
// returns a *parser.SyntaxError with the position for most errors; some
// (e.g. a malformed for tag) are plain errors without a position.
func parseError(src string, err error) *TemplateError {
	var se *parser.SyntaxError
	if errors.As(err, &se) {
		msg := se.Message
		if se.Raw != "" {
			msg = fmt.Sprintf("%s (near %q)", msg, se.Raw)
		}
		if strings.Contains(se.Message, "Unexpected EOF") {
			// gonja reports where the file ended; the author needs the
			// block that was left open.
			if name, line := unclosedBlock(src); name != "" {
				msg += fmt.Sprintf(" (unclosed %q block opened on line %d)", name, line)
			}
		}
		return &TemplateError{Line: se.Line, Column: se.Column, Message: msg}
	}
	// gonja prefixes the message with the whole template source: drop it.
	msg := strings.TrimPrefix(err.Error(), "failed to parse template '"+src+"': ")
	return &TemplateError{Message: msg}
}

// blockTag matches a statement tag and captures its name and arguments.
var blockTag = regexp.MustCompile(`\{%[-+]?\s*(\w+)(.*?)[-+]?%\}`)

// pairedTags are the statements that need an end tag. "set" only does in
// its block form ({% set x %}...{% endset %}), handled below.
var pairedTags = map[string]bool{
	"if": true, "for": true, "macro": true, "block": true, "filter": true,
	"with": true, "call": true, "autoescape": true, "raw": true,
}

// unclosedBlock returns the innermost block tag of src left without its end
// tag, and the line it starts on. It is a best-effort hint for error
// messages: it ignores tags inside {% raw %} or comments.
func unclosedBlock(src string) (name string, line int) {
	type open struct {
		name string
		line int
	}
	var stack []open
	for _, m := range blockTag.FindAllStringSubmatchIndex(src, -1) {
		tag, args := src[m[2]:m[3]], src[m[4]:m[5]]
		switch {
		case pairedTags[tag] || (tag == "set" && !strings.Contains(args, "=")):
			stack = append(stack, open{tag, strings.Count(src[:m[0]], "\n") + 1})
		case strings.HasPrefix(tag, "end") && len(stack) > 0 && stack[len(stack)-1].name == tag[3:]:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) == 0 {
		return "", 0
	}
	top := stack[len(stack)-1]
	return top.name, top.line
}

// renderLine finds the line gonja mentions in render errors ("Unable to
// render expression at line 7: ..."); the last one is the innermost node.
var renderLine = regexp.MustCompile(`at line (\d+)`)

// tokenDump matches the Go struct dump of a token gonja puts in some
// messages ("&{<Token[Name] Val='shout' ...> shout [] map[]}").
var tokenDump = regexp.MustCompile(`&\{<Token[^>]*> (\S+)[^}]*\}`)

// renderError converts a gonja execution error into a *TemplateError with
// the innermost line and without gonja's internal noise.
func renderError(err error) *TemplateError {
	msg := err.Error()
	te := &TemplateError{}
	if m := renderLine.FindAllStringSubmatchIndex(msg, -1); len(m) > 0 {
		last := m[len(m)-1]
		te.Line, _ = strconv.Atoi(msg[last[2]:last[3]])
		msg = strings.TrimPrefix(msg[last[1]:], ": ")
	}
	te.Message = tokenDump.ReplaceAllString(strings.TrimPrefix(msg, "unable to execute template: "), "$1")
	return te
}

// trialRender renders tpl against sample content (single and bulk, with and
// without comment) to catch errors gonja only detects at render time.
func trialRender(ctx context.Context, tpl *exec.Template) error {
	single := sampleContent()
	single.Reports = single.Reports[:1]
	bulk := sampleContent()
	bulk.Comment = ""
	// The three renders share one CPU allowance: the whole check, like
	// any render, takes at most MaxRenderCPU.
	left := MaxRenderCPU
	for _, c := range []Content{single, bulk} {
		_, used, err := renderWithin(ctx, tpl, templateContext(prepare(c)), left)
		if err != nil {
			return err
		}
		left -= used
	}
	// gonja escapes only string values: {{ reports }} prints a list's repr
	// raw, and |safe switches escaping off. Planting markup in the text
	// fields shows whether any of it comes out unescaped.
	out, _, err := renderWithin(ctx, tpl, templateContext(prepare(probeContent())), left)
	if err != nil {
		return err
	}
	if strings.Contains(strings.ToLower(out), strings.ToLower(escapeProbe)) {
		return &TemplateError{Message: "template prints data without HTML escaping " +
			"(remove |safe, and print fields such as {{ p.name }} rather than whole lists or maps)"}
	}
	return nil
}

// escapeProbe is markup planted in sample data by trialRender.
const escapeProbe = "<xprobe>"

// probeContent is sampleContent with escapeProbe appended to the free-text
// fields. Values, units and ranges stay clean in case a template does
// arithmetic on them.
func probeContent() Content {
	c := sampleContent()
	for _, f := range []*string{&c.LabName, &c.PatientName, &c.Organization, &c.Referral, &c.Comment,
		&c.CalledBy, &c.NotifiedPerson, &c.RecipientName} {
		*f += escapeProbe
	}
	for i := range c.Reports {
		c.Reports[i].TestName += escapeProbe
		c.Reports[i].Department += escapeProbe
		for j := range c.Reports[i].Parameters {
			c.Reports[i].Parameters[j].Name += escapeProbe
		}
	}
	return c
}

// sampleContent is the order custom templates are trial-rendered with.
func sampleContent() Content {
	return Content{
		LabName: "Sample Lab", LabBillID: "ORD-1", AccessionNumber: "ACC-1",
		PatientName: "Sample Patient", Organization: "Sample Clinic", Referral: "Dr. Sample",
		Reports: []Report{
			{TestID: "T1", TestName: "Electrolytes", Department: "Biochemistry", Parameters: []Parameter{
				{Name: "Potassium", Value: "6.9", Unit: "mmol/L", NormalRange: "3.5–5.1", CriticalRange: ">6.5", Flag: "HH"},
				{Name: "Sodium", Value: "139", Unit: "mmol/L", NormalRange: "135–145"},
			}},
			{TestID: "T2", TestName: "Haemogram", Department: "Haematology", Parameters: []Parameter{
				{Name: "Platelets", Value: "12", Unit: "10^3/µL", NormalRange: "150–400", Flag: "LL"},
			}},
		},
		Comment:  "Sample comment",
		OrderURL: "https://example.org/orders/1", CalledBy: "Tech", NotifiedPerson: "Nurse",
		CalledAt:      time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC),
		RecipientName: "Dr. Sample", RecipientType: RecipientReferral,
	}
}

// templateContext builds the variables available to the templates. Maps are
// used rather than structs so the names are the snake_case ones documented
// for template authors.
func templateContext(v view) map[string]any {
	reports := make([]map[string]any, 0, len(v.Reports))
	for _, r := range v.Reports {
		params := make([]map[string]any, 0, len(r.Parameters))
		hasCritRange := false
		for _, p := range r.Parameters {
			hasCritRange = hasCritRange || p.CriticalRange != ""
			params = append(params, map[string]any{
				"name":           p.Name,
				"value":          p.Value,
				"unit":           p.Unit,
				"normal_range":   p.NormalRange,
				"critical_range": p.CriticalRange,
				"flag":           p.Flag,
				"is_critical":    IsCriticalFlag(p.Flag),
				"is_abnormal":    strings.TrimSpace(p.Flag) != "",
			})
		}
		reports = append(reports, map[string]any{
			"test_id":            r.TestID,
			"test_name":          r.TestName,
			"department":         r.Department,
			"parameters":         params,
			"has_critical_range": hasCritRange,
		})
	}
	return map[string]any{
		"lab_name":            v.LabName,
		"lab_bill_id":         v.LabBillID,
		"accession_number":    v.AccessionNumber,
		"patient_name":        v.PatientDisplay,
		"patient_name_hidden": v.HidePatientName,
		"organization":        v.Organization,
		"referral":            v.Referral,
		"reports":             reports,
		"is_bulk":             len(reports) > 1,
		"comment":             v.Comment,
		"order_url":           v.OrderURL,
		"called_by":           v.CalledBy,
		"notified_person":     v.NotifiedPerson,
		"read_back":           v.ReadBack,
		"called_at":           v.CalledAtText,
		"recipient_name":      v.RecipientName,
		"recipient_type":      v.RecipientType,
	}
}

var blankRuns = regexp.MustCompile(`\n{3,}`)

// tidyText normalises the plain-text body: no trailing spaces, at most one
// blank line in a row, CRLF-free (the mailer handles line endings).
func tidyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	s = blankRuns.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.TrimSpace(s) + "\n"
}
