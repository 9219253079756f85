package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// badText is a character no text field may hold, with the code point the
// refusal names. NUL is what PostgreSQL cannot store; the others forge
// lines (CR, LF, U+2028) or hide what a text says (bidi overrides).
type badText struct {
	name, char, code string
}

var lineBreakers = []badText{
	{"NUL", "\x00", "U+0000"},
	{"CR LF", "\r\n", "U+000D"},
	{"LF", "\n", "U+000A"},
	{"TAB", "\t", "U+0009"},
	{"ESC", "\x1b", "U+001B"},
	{"DEL", "\x7f", "U+007F"},
	{"C1 NEL", "\u0085", "U+0085"},
	{"bidi override", "\u202e", "U+202E"},
	{"bidi embedding", "\u202a", "U+202A"},
	{"bidi isolate", "\u2066", "U+2066"},
	{"pop isolate", "\u2069", "U+2069"},
	{"line separator", "\u2028", "U+2028"},
}

// multilineBad is what multi-line fields (comment, additional
// instruction, a result's value) refuse: every control character but LF and
// TAB, and the bidi controls.
var multilineBad = []badText{
	{"NUL", "\x00", "U+0000"},
	{"CR LF", "\r\n", "U+000D"},
	{"ESC", "\x1b", "U+001B"},
	{"DEL", "\x7f", "U+007F"},
	{"C1 NEL", "\u0085", "U+0085"},
	{"bidi override", "\u202e", "U+202E"},
	{"bidi isolate", "\u2067", "U+2067"},
}

// validOrder is an order the API accepts, as decoded JSON, so that a test
// can spoil one field of it.
func validOrder(id string) map[string]any {
	var m map[string]any
	err := json.Unmarshal([]byte(`{"lab_bill_id":"`+id+`","accession_number":"A-1",
		"patient":{"name":"Jane Roe","email":"jane@example.org","phone":"555 0100","fax":"555 0109"},
		"referral":{"name":"Dr. Who","email":"who@example.org","fax":"555 0111","phone":"555 0112"},
		"organization":{"name":"Clinic","email":"desk@clinic.example","fax":"555 0121","phone":"555 0122"},
		"reports":[{"test_id":"K","test_name":"Potassium","department":"Biochemistry","parameters":[
		  {"name":"Potassium","value":"7.1","unit":"mmol/L","critical_high":6.5,"flag":"HH"}]}]}`), &m)
	if err != nil {
		panic(err)
	}
	return m
}

// set replaces the value at a dotted path ("reports.0.parameters.0.unit").
func set(m map[string]any, path string, v any) {
	var cur any = m
	parts := strings.Split(path, ".")
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = v
				return
			}
			if c[p] == nil {
				c[p] = map[string]any{}
			}
			cur = c[p]
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil {
				panic(path)
			}
			if last {
				c[n] = v
				return
			}
			cur = c[n]
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// refusal is one request that must be refused with 422, a message naming
// the field, and no row changed.
type refusal struct {
	name, token, method, path, body string
	header                          []string
	want                            string // the message names this
}

func (b *testBundle) refuseAll(t *testing.T, cases []refusal) {
	t.Helper()
	before := storetest.Dump(t, b.fx.Store.DB)
	for _, tc := range cases {
		a := b.do(t, tc.token, tc.method, tc.path, tc.body, tc.header...)
		require.Equal(t, 422, a.status, "%s: %s", tc.name, a.body)
		e := a.json(t)["error"].(map[string]any)
		require.Equal(t, "unprocessable", e["code"], tc.name)
		require.Contains(t, e["message"], tc.want, tc.name)
		require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "%s changed rows", tc.name)
	}
}

// TestTextRulesRefuseBadCharacters sends every text field the API stores
// with each character it must refuse. On PostgreSQL a NUL used to answer
// 500 (invalid byte sequence), and CR LF in an Order ID was stored and
// forged a line in the plain-text email.
func TestTextRulesRefuseBadCharacters(t *testing.T) {
	singleOrder := []string{"lab_bill_id", "accession_number",
		"patient.name", "patient.email", "patient.phone", "patient.fax",
		"referral.name", "referral.email", "referral.phone", "referral.fax",
		"organization.name", "organization.email", "organization.phone", "organization.fax",
		"reports.0.test_id", "reports.0.test_name", "reports.0.department",
		"reports.0.parameters.0.name", "reports.0.parameters.0.unit", "reports.0.parameters.0.flag"}
	// fieldName is how a message names a dotted path: reports[0].parameters[0].unit.
	fieldName := func(path string) string {
		var out strings.Builder
		for i, p := range strings.Split(path, ".") {
			if _, err := strconv.Atoi(p); err == nil {
				out.WriteString("[" + p + "]")
				continue
			}
			if i > 0 {
				out.WriteString(".")
			}
			out.WriteString(p)
		}
		return out.String()
	}
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("Orders", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			var cases []refusal
			for _, f := range singleOrder {
				for _, bad := range lineBreakers {
					o := validOrder("ORD-9")
					set(o, f, "A"+bad.char+"B")
					cases = append(cases, refusal{name: f + " " + bad.name, token: b.staff, method: "POST", path: "/api/v1/orders",
						body: mustJSON(o), want: fieldName(f) + " contains " + describe(bad)})
				}
			}
			for _, bad := range multilineBad {
				o := validOrder("ORD-9")
				set(o, "reports.0.parameters.0.value", "7"+bad.char+"1")
				cases = append(cases, refusal{name: "value " + bad.name, token: b.staff, method: "POST", path: "/api/v1/orders",
					body: mustJSON(o), want: "reports[0].parameters[0].value contains " + describe(bad)})
			}
			b.refuseAll(t, cases)

			// A textual result keeps its lines and tabs.
			o := validOrder("ORD-TEXT")
			set(o, "reports.0.parameters.0.value", "see comment:\n\tsample haemolysed")
			a := b.do(t, b.staff, "POST", "/api/v1/orders", mustJSON(o))
			require.Equal(t, 201, a.status, string(a.body))
		})

		t.Run("CalloutsSettingsLimitsTemplate", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			calloutPath := fmt.Sprintf("/api/v1/bills/%d/callouts", b.billID)
			payload := func(field, v string) string {
				p := map[string]any{"sendEmail": false, "is_referral": true, "comment": "told", "notified_person": "Dr. Rao",
					"notify_to_others": map[string]any{"name": "Dr. Cover", "email": "cover@example.org", "fax": "555 1", "contactNumber": "555 2"}}
				set(p, field, v)
				return calloutBody(b.ids[:1], false, mustJSON(p))
			}
			var cases []refusal
			for _, f := range []string{"notified_person", "notify_to_others.name", "notify_to_others.email", "notify_to_others.fax", "notify_to_others.contactNumber"} {
				for _, bad := range lineBreakers {
					cases = append(cases, refusal{name: f + " " + bad.name, token: b.staff, method: "POST", path: calloutPath,
						body: payload(f, "A"+bad.char+"B"), want: f + " contains " + describe(bad)})
				}
			}
			for _, bad := range lineBreakers {
				cases = append(cases,
					refusal{name: "lab name " + bad.name, token: b.admin, method: "PATCH", path: "/api/v1/lab/settings",
						body: mustJSON(map[string]any{"name": "North" + bad.char + "Lab"}), want: "name contains " + describe(bad)},
					refusal{name: "limit name " + bad.name, token: b.admin, method: "PUT", path: "/api/v1/lab/critical-limits",
						body: mustJSON(map[string]any{"limits": []any{map[string]any{"name": "K" + bad.char, "critical_high": 6.5}}}),
						want: "limits[0].name contains " + describe(bad)},
					refusal{name: "limit unit " + bad.name, token: b.admin, method: "PUT", path: "/api/v1/lab/critical-limits",
						body: mustJSON(map[string]any{"limits": []any{map[string]any{"name": "K", "unit": "mmol" + bad.char, "critical_high": 6.5}}}),
						want: "limits[0].unit contains " + describe(bad)},
				)
			}
			for _, bad := range multilineBad {
				cases = append(cases,
					refusal{name: "comment " + bad.name, token: b.staff, method: "POST", path: calloutPath,
						body: payload("comment", "told"+bad.char+"him"), want: "comment contains " + describe(bad)},
					refusal{name: "attempt comment " + bad.name, token: b.staff, method: "POST", path: calloutPath,
						body: calloutBody(b.ids[:1], true, mustJSON(map[string]any{"is_referral": true, "comment": "no" + bad.char + "answer"})),
						want: "comment contains " + describe(bad)},
					refusal{name: "instruction " + bad.name, token: b.admin, method: "PATCH", path: "/api/v1/lab/settings",
						body: mustJSON(map[string]any{"additional_instruction": "Ask" + bad.char + "twice"}), want: "additional_instruction contains " + describe(bad)},
				)
			}
			cases = append(cases,
				refusal{name: "template NUL", token: b.admin, method: "PUT", path: "/api/v1/lab/templates/email",
					body: mustJSON(map[string]any{"template": "<p>{{ lab_name }}\x00</p>"}), want: "template contains a control character (U+0000)"},
				refusal{name: "raw template NUL", token: b.admin, method: "PUT", path: "/api/v1/lab/templates/email",
					body: "<p>{{ lab_name }}\x00</p>", header: []string{"Content-Type", "text/html"}, want: "template contains a control character (U+0000)"},
				refusal{name: "raw template not UTF-8", token: b.admin, method: "PUT", path: "/api/v1/lab/templates/email",
					body: "<p>{{ lab_name }}\xff</p>", header: []string{"Content-Type", "text/plain"}, want: "template is not valid UTF-8"},
			)
			b.refuseAll(t, cases)

			// What multi-line fields keep: LF and TAB.
			a := b.do(t, b.staff, "POST", calloutPath, payload("comment", "Told Dr. Rao:\n\tK 7.1 read back"))
			require.Equal(t, 201, a.status, string(a.body))
			a = b.do(t, b.admin, "PATCH", "/api/v1/lab/settings", `{"additional_instruction":"Ask for:\n\t1. a read-back"}`)
			require.Equal(t, 200, a.status, string(a.body))
			a = b.do(t, b.admin, "PUT", "/api/v1/lab/templates/email", "<p>{{ lab_name }}</p>\r\n\t<p>x</p>", "Content-Type", "text/html")
			require.Equal(t, 200, a.status, "a template file with CR LF and tabs is fine: %s", a.body)
		})

		t.Run("HeadersAndQueries", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			order := mustJSON(validOrder("ORD-KEY"))
			var cases []refusal
			// Go's HTTP server already refuses CR, LF and NUL in headers;
			// bytes above 0x7F and TAB come through.
			for name, key := range map[string]string{"not UTF-8": "key-\xff\xfe", "TAB": "key\t1", "bidi": "key-\u202e1"} {
				cases = append(cases, refusal{name: "Idempotency-Key " + name, token: b.staff, method: "POST", path: "/api/v1/orders",
					body: order, header: []string{"Idempotency-Key", key}, want: "Idempotency-Key"})
			}
			for _, bad := range []string{"%00", "%0D%0ABcc:x", "%E2%80%AE", "%FF", "%09"} {
				cases = append(cases,
					refusal{name: "lab_bill_id " + bad, token: b.staff, method: "GET", path: "/api/v1/bills?lab_bill_id=ORD" + bad + "X", want: "lab_bill_id"},
					refusal{name: "q " + bad, token: b.staff, method: "GET", path: "/api/v1/worklist?q=Jane" + bad + "Roe", want: "q "},
				)
			}
			b.refuseAll(t, cases)
		})

		t.Run("CursorsOutOfRange", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			before := storetest.Dump(t, b.fx.Store.DB)
			for _, c := range []string{
				`{"t":"0000-01-01T00:00:00Z","id":1}`,
				`{"t":"9999-12-31T23:59:59.999999999-23:59","id":1}`,
				`{"t":"2026-01-01T00:00:00+23:59","id":9223372036854775807}`,
			} {
				cur := base64.RawURLEncoding.EncodeToString([]byte(c))
				a := b.do(t, b.staff, "GET", "/api/v1/worklist?cursor="+url.QueryEscape(cur), "")
				require.Contains(t, []int{200, 400, 422}, a.status, "cursor %s: %s", c, a.body)
			}
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
		})
	})
}

// describe is how a refusal names a bad character.
func describe(bad badText) string {
	switch {
	case bad.code >= "U+202A" && bad.code <= "U+202E", bad.code >= "U+2066" && bad.code <= "U+2069":
		return "a bidirectional control character (" + bad.code + ")"
	case bad.code == "U+2028":
		return "a line separator (" + bad.code + ")"
	}
	return "a control character (" + bad.code + ")"
}
