package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostileTemplates are the attacks of issue 8 §1 and others found since,
// each with what the refusal must name. Every one crashed, stalled or
// exhausted the process, or leaked markup, before the whitelist.
var hostileTemplates = []struct {
	name, src, want string
}{
	{"recursive macro", `{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}`, "macros may not call macros"},
	{"recursion behind a condition", `{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{% if lab_name != "Sample Lab" %}{{ f(0) }}{% endif %}`, "macros may not call macros"},
	{"mutual recursion", `{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}`, "macros may not call macros"},
	{"macro passed as a value", `{% macro g(h) %}{{ h(h) }}{% endmacro %}{{ g(g) }}`, "not allowed"},
	{"macro through a parameter", `{% macro g(x) %}{{ x(x) }}{% endmacro %}{{ g(patient_name) }}`, "calling x() is not allowed"},
	{"range loop", `{% for i in range(10000000) %}x{% endfor %}`, "range"},
	{"nested range loops", `{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}`, "range"},
	{"loop over a literal", `{% for i in [1,2,3] %}x{% endfor %}`, "may only loop over reports"},
	{"recursive loop", `{% for r in reports recursive %}{{ loop(reports) }}{% endfor %}`, "recursive loops"},
	{"safe behind a condition", `{% if lab_name != "Sample Lab" %}{{ patient_name|safe }}{% endif %}`, "|safe filter is not allowed"},
	{"autoescape off", `{% autoescape false %}{{ patient_name }}{% endautoescape %}`, "{% autoescape %} is not allowed"},
	{"include", `{% include "/etc/passwd" %}`, "{% include %} is not allowed"},
	{"self include", `{% include "email.html" %}`, "{% include %} is not allowed"},
	{"extends itself", `{% extends "email.html" %}`, "{% extends %} is not allowed"},
	{"import", `{% import "email.html" as m %}`, "{% import %} is not allowed"},
	{"set doubling", `{% for r in reports %}{% set s = s ~ s %}{% endfor %}`, "{% set %} is not allowed"},
	{"string repetition", `{{ "x" * 1000000000 }}`, "the * operator is not allowed"},
	{"filter that builds big strings", `{{ lab_name|center(2000000000) }}`, "|center filter is not allowed"},
	{"replace amplifies", `{{ comment|replace("", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") }}`, "|replace filter is not allowed"},
	{"format width", `{{ "%999999999d"|format(1) }}`, "|format filter is not allowed"},
	{"method call", `{{ lab_name.upper() }}`, "calling lab_name.upper() is not allowed"},
	{"loop cycle call", `{% for r in reports %}{{ loop.cycle("a", "b") }}{% endfor %}`, "calling loop.cycle() is not allowed"},
	{"lipsum", `{{ lipsum(100000, false, 100000, 100000) }}`, "lipsum"},
	{"macro inside a loop", `{% for r in reports %}{% macro m() %}x{% endmacro %}{% endfor %}`, "only be defined at the top level"},
	{"macro output copied", `{% macro m() %}x{% endmacro %}{{ m() ~ m() }}`, "whole of a {{ }}"},
	{"computed macro argument", `{% macro m(x) %}{{ x }}{% endmacro %}{{ m(comment ~ comment) }}`, "arguments may only be"},
	{"deep brackets", "{{ " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + " }}", "nested deeper than 32"},
	{"deep brackets in a short tag", "{{ " + strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40) + " }}", "nested deeper than 32"},
	{"deep blocks", strings.Repeat("{% if true %}", 5000) + strings.Repeat("{% endif %}", 5000), "blocks nested deeper than 32"},
	{"long expression", "{{ comment" + strings.Repeat(" ~ comment", 200) + " }}", "a tag longer than 100 tokens"},
	{"budget variable", `{{ __callout_budget }}`, "not allowed"},
	{"private attribute", `{{ reports.__class__ }}`, "not allowed"},
	{"with", `{% with x = 1 %}{% endwith %}`, "{% with %} is not allowed"},
	{"call block", `{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}x{% endcall %}`, "not allowed"},
}

func TestHostileTemplatesRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileTemplates {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTemplate(context.Background(), tt.src)
			var te *TemplateError
			require.True(t, errors.As(err, &te), "want a *TemplateError, got %T %v", err, err)
			require.Contains(t, te.Message, tt.want)
			_, err = NewRenderer(context.Background(), tt.src)
			require.True(t, errors.As(err, &te), "NewRenderer must refuse it too: %v", err)
		})
	}
}

// bigContent is an order of n reports of m parameters.
func bigContent(n, m int) Content {
	c := testContent()
	c.Reports = nil
	for i := range n {
		r := Report{TestID: fmt.Sprint("T", i), TestName: "Test", Department: "Dept"}
		for j := range m {
			r.Parameters = append(r.Parameters, Parameter{Name: fmt.Sprint("P", j), Value: "1", Flag: "HH"})
		}
		c.Reports = append(c.Reports, r)
	}
	return c
}

func TestRenderBounds(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 64<<10)
	tests := []struct {
		name  string
		src   string
		c     Content
		bound string
	}{
		{"output of nested loops", `{% for r in reports %}{% for p in r.parameters %}` + big + `{% endfor %}{% endfor %}`, bigContent(10, 10), BoundOutput},
		{"output of a macro", `{% macro m() %}{% for r in reports %}{% for p in r.parameters %}` + big + `{% endfor %}{% endfor %}{% endmacro %}{{ m() }}`, bigContent(10, 10), BoundOutput},
		{"output of escaping", `{% for r in reports %}{{ "` + strings.Repeat("<", 30<<10) + `" }}{% endfor %}`, bigContent(10, 1), BoundOutput},
		{"loops that print nothing", strings.Repeat(`{% for r in reports %}`, 8) + strings.Repeat(`{% endfor %}`, 8), bigContent(100, 1), BoundCPU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sample content is small: the template passes the PUT check,
			// and the real order is what goes past the bound.
			r, err := NewRenderer(context.Background(), tt.src)
			require.NoError(t, err)
			_, err = r.Render(context.Background(), tt.c)
			var le *LimitError
			require.True(t, errors.As(err, &le), "want a *LimitError, got %T %v", err, err)
			require.Equal(t, tt.bound, le.Bound)
			require.Contains(t, err.Error(), map[string]string{BoundCPU: "CPU time", BoundOutput: "1024 KiB"}[tt.bound])
		})
	}
}

// TestTrialRenderBounded: a template whose sample render already goes past
// a bound is refused at PUT time with the bound named.
func TestTrialRenderBounded(t *testing.T) {
	t.Parallel()
	src := strings.Repeat(`{% for r in reports %}`, 4) + strings.Repeat("y", 200<<10) + strings.Repeat(`{% endfor %}`, 4)
	err := ValidateTemplate(context.Background(), src)
	var le *LimitError
	require.True(t, errors.As(err, &le), "%T %v", err, err)
	require.Equal(t, BoundOutput, le.Bound)
}

func TestRenderStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	src := strings.Repeat(`{% for r in reports %}`, 8) + strings.Repeat(`{% endfor %}`, 8)
	r, err := NewRenderer(context.Background(), src)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = r.Render(ctx, bigContent(100, 1))
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, ValidateTemplate(ctx, DefaultHTMLTemplate()), context.Canceled)
}

// TestPrintedDataAlwaysEscaped: escaping no longer depends on the sample
// data taking the path: whatever is printed, on whichever branch, is
// escaped.
func TestPrintedDataAlwaysEscaped(t *testing.T) {
	t.Parallel()
	src := `{% if lab_name != "Sample Lab" %}<p>{{ patient_name }}</p><p>{{ reports }}</p><p>{{ patient_name if true else 1 }}</p><p>{{ comment|e }}</p>{% endif %}`
	r, err := NewRenderer(context.Background(), src)
	require.NoError(t, err)
	c := testContent()
	c.PatientName = `<script>alert(1)</script>`
	c.Comment = `<b>c</b>`
	c.Reports[0].TestName = `<img src=x>`
	out, err := r.Render(context.Background(), c)
	require.NoError(t, err)
	require.NotContains(t, out.HTML, "<script")
	require.NotContains(t, out.HTML, "<img")
	require.NotContains(t, out.HTML, "<b>")
	require.Contains(t, out.HTML, "&lt;script&gt;")
	require.Contains(t, out.HTML, "&lt;b&gt;c&lt;/b&gt;")
}

// TestAllowedConstructs: what a lab reasonably writes still works.
func TestAllowedConstructs(t *testing.T) {
	t.Parallel()
	src := `{% macro row(p, label="x") %}<tr><td>{{ p.name|upper }}</td><td>{{ label }}</td></tr>{% endmacro %}
{% for r in reports if r.test_name %}{% if loop.first %}<h1>{{ lab_name|title }}</h1>{% endif %}
{% for p in r.parameters %}{{ row(p, label=r.test_name) }}{% if loop.index % 2 == 0 %}even{% endif %}{% else %}none{% endfor %}
{{ loop.index }}/{{ reports|length }} {{ r.department|default("-") }} {{ comment|truncate(20) }}{% if p is defined %}{% endif %}
{% endfor %}{% raw %}{{ not rendered }}{% endraw %}{{ "a" ~ lab_name ~ "b" }}{{ 1 + 2 - 1 }}{{ (loop_free or "y") }}`
	r, err := NewRenderer(context.Background(), src)
	require.NoError(t, err)
	out, err := r.Render(context.Background(), testContent())
	require.NoError(t, err)
	require.Contains(t, out.HTML, "<td>POTASSIUM</td><td>Kidney Function Test</td>")
	require.Contains(t, out.HTML, "{{ not rendered }}")
	require.Contains(t, out.HTML, "aAcme Diagnosticsb")
}

// FuzzValidateTemplate: no template text makes the checker or a render of
// an accepted template panic, hang or go past the bounds; whatever the
// checker accepts renders real-sized content within them.
func FuzzValidateTemplate(f *testing.F) {
	f.Add(DefaultHTMLTemplate())
	for _, tt := range hostileTemplates {
		f.Add(tt.src)
	}
	f.Add(`{% for r in reports %}{% for p in r.parameters %}{{ p.name ~ r.test_name }}{% endfor %}{% endfor %}`)
	f.Add(`{% macro m(a) %}{{ a }}{% endmacro %}{{ m(lab_name) }}{{ m }}`)
	c := bigContent(20, 5)
	f.Fuzz(func(t *testing.T, src string) {
		r, err := NewRenderer(context.Background(), src)
		if err != nil {
			return
		}
		_, err = r.Render(context.Background(), c)
		var le *LimitError
		var te *TemplateError
		if err != nil && !errors.As(err, &le) && !errors.As(err, &te) {
			t.Fatalf("render of an accepted template: unexpected error %T %v", err, err)
		}
	})
}
