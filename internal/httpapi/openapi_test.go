package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/fhir"
	"callout/internal/httpapi"
	"callout/internal/storetest"
)

// openAPI is the parsed openapi.json.
type openAPI struct {
	doc map[string]any
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	return openAPI{doc}
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// resolve follows a local $ref.
func (o openAPI) resolve(s map[string]any) map[string]any {
	for s != nil {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		cur := any(o.doc)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cur = obj(cur)[part]
		}
		s = obj(cur)
	}
	return s
}

// conforms reports how v departs from schema s: a field the schema does not
// document, a documented required field missing, a wrong type or a value
// outside an enum. Objects with documented properties are closed: an
// undocumented field is a difference unless additionalProperties is true
// (the FHIR resources, whose elements the R4 schema checks in
// internal/fhir).
func (o openAPI) conforms(s map[string]any, v any, at string) error {
	s = o.resolve(s)
	if s == nil {
		return nil
	}
	for _, key := range []string{"oneOf", "anyOf"} {
		if alts, ok := s[key].([]any); ok {
			var errs []string
			for _, alt := range alts {
				err := o.conforms(obj(alt), v, at)
				if err == nil {
					errs = nil
					break
				}
				errs = append(errs, err.Error())
			}
			if errs != nil {
				return fmt.Errorf("%s: matches no alternative: %s", at, strings.Join(errs, " | "))
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, part := range all {
			if err := o.conforms(obj(part), v, at); err != nil {
				return err
			}
		}
	}
	if types := typesOf(s); len(types) > 0 && !slices.Contains(types, jsonType(v)) &&
		!(jsonType(v) == "integer" && slices.Contains(types, "number")) {
		return fmt.Errorf("%s: is %s, documented %v", at, jsonType(v), types)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %v is not in the documented enum %v", at, v, enum)
	}
	switch x := v.(type) {
	case map[string]any:
		props := obj(s["properties"])
		for _, r := range asList(s["required"]) {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: documented required field %q is missing", at, r)
			}
		}
		if props == nil {
			if ap := obj(s["additionalProperties"]); ap != nil {
				for k, fv := range x {
					if err := o.conforms(ap, fv, at+"."+k); err != nil {
						return err
					}
				}
			}
			return nil
		}
		open := s["additionalProperties"] == true // FHIR resources: checked against the R4 schema elsewhere
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k]
			if !ok && open {
				continue
			}
			if !ok {
				return fmt.Errorf("%s: field %q is not documented", at, k)
			}
			if err := o.conforms(obj(ps), x[k], at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, it := range x {
			if err := o.conforms(obj(s["items"]), it, at+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func typesOf(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		return asList(t)
	}
	return nil
}

func asList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	}
	return "object"
}

// check requires that the answer's status is documented for the
// operation, with its content type, and that its body matches the
// documented schema exactly; documented response headers are compared too.
func (o openAPI) check(t *testing.T, route string, a answer) {
	t.Helper()
	method, path, _ := strings.Cut(route, " ")
	op := obj(obj(obj(o.doc["paths"])[path])[strings.ToLower(method)])
	require.NotNil(t, op, "%s is not documented", route)
	responses := obj(op["responses"])
	status := strconv.Itoa(a.status)
	resp := obj(responses[status])
	if resp == nil {
		resp = obj(responses[status[:1]+"XX"])
	}
	require.NotNil(t, resp, "%s answered %d, which is not documented: %s", route, a.status, a.body)
	resp = o.resolve(resp)
	if a.header.Get("Idempotent-Replayed") != "" {
		require.Contains(t, obj(resp["headers"]), "Idempotent-Replayed", "%s %d", route, a.status)
	}
	content := obj(resp["content"])
	if len(a.body) == 0 {
		return
	}
	mt, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	require.NoError(t, err, "%s: %s", route, a.header.Get("Content-Type"))
	media := obj(content[mt])
	require.NotNil(t, media, "%s %d answers %s, documented %v", route, a.status, mt, content)
	if !strings.HasSuffix(mt, "json") {
		return
	}
	var v any
	require.NoError(t, json.Unmarshal(a.body, &v), "%s: %s", route, a.body)
	require.NoError(t, o.conforms(obj(media["schema"]), v, "body"), "%s %d: %s", route, a.status, a.body)
}

// TestOpenAPIMatchesAnswers sends real requests to every route and checks
// each answer against openapi.json: the status is documented, and the body
// has exactly the documented fields and types.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		doc := loadOpenAPI(t)
		api := httpapi.New(httpapi.Config{Service: b.fx.Svc, Ping: b.fx.Store.DB.PingContext, Metrics: httpapi.NewMetrics(prometheus.NewRegistry())})
		fhir.Mount(api, b.fx.Store, "https://callout.example", nil)
		api.Handle("GET /metrics", promhttp.Handler())
		b.srv.Config.Handler = api

		bill := strconv.FormatInt(b.billID, 10)
		done := calloutBody(b.ids[:1], false, referralEmail)
		order := `{"lab_bill_id":"ORD-9","patient":{"name":"Jane Roe","mrn":"MRN-9","birth_date":"1990-01-31"},
			"reports":[{"test_id":"K","test_name":"Potassium","parameters":[{"name":"Potassium","value":"7.1","critical_high":6.5}]}]}`
		type call struct {
			route, path, token, body string
			status                   int
			header                   []string
		}
		calls := []call{
			{"GET /healthz", "/healthz", "", "", 200, nil},
			{"GET /api/v1/openapi.json", "/api/v1/openapi.json", "", "", 200, nil},
			{"GET /metrics", "/metrics", "", "", 200, nil},
			{"POST /api/v1/orders", "/api/v1/orders", b.staff, order, 201, []string{"Idempotency-Key", "k1"}},
			{"POST /api/v1/orders", "/api/v1/orders", b.staff, order, 201, []string{"Idempotency-Key", "k1"}},
			{"POST /api/v1/orders", "/api/v1/orders", b.staff, order, 409, nil},
			{"POST /api/v1/orders", "/api/v1/orders", b.staff, `{"lab_bill_id":`, 400, nil},
			{"POST /api/v1/orders", "/api/v1/orders", "", order, 401, nil},
			{"POST /api/v1/orders", "/api/v1/orders", b.staff, `{"lab_bill_id":"X","patient":{"name":""},"reports":[]}`, 422, nil},
			{"POST /api/v1/orders", "/api/v1/orders", b.staff, `{"lab_bill_id":"` + strings.Repeat("x", 2<<20) + `"}`, 413, nil},
			{"POST /api/v1/bills/{id}/callouts", "/api/v1/bills/" + bill + "/callouts", b.staff, done, 201, []string{"Idempotency-Key", "c1"}},
			{"POST /api/v1/bills/{id}/callouts", "/api/v1/bills/" + bill + "/callouts", b.staff, done, 201, []string{"Idempotency-Key", "c1"}},
			{"POST /api/v1/bills/{id}/callouts", "/api/v1/bills/" + bill + "/callouts", b.staff, `{`, 400, nil},
			{"POST /api/v1/bills/{id}/callouts", "/api/v1/bills/999999/callouts", b.staff, done, 404, nil},
			{"POST /api/v1/bills/{id}/callouts", "/api/v1/bills/" + bill + "/callouts", b.staff, calloutBody(nil, false, referralEmail), 422, nil},
			{"GET /api/v1/bills/{id}/callouts", "/api/v1/bills/" + bill + "/callouts", b.staff, "", 200, nil},
			{"GET /api/v1/bills/{id}/callouts", "/api/v1/bills/999999/callouts", b.staff, "", 404, nil},
			{"GET /api/v1/bills/{id}/attempts", "/api/v1/bills/" + bill + "/attempts", b.staff, "", 200, nil},
			{"GET /api/v1/bills/{id}/attempts", "/api/v1/bills/999999/attempts", b.staff, "", 404, nil},
			{"GET /api/v1/bills/{id}", "/api/v1/bills/" + bill, b.staff, "", 200, nil},
			{"GET /api/v1/bills/{id}", "/api/v1/bills/999999", b.staff, "", 404, nil},
			{"GET /api/v1/bills/{id}", "/api/v1/bills/" + bill, b.other, "", 404, nil},
			{"GET /api/v1/bills/{id}", "/api/v1/bills/" + bill, "", "", 401, nil},
			{"GET /api/v1/bills", "/api/v1/bills?lab_bill_id=ORD-9", b.staff, "", 200, nil},
			{"GET /api/v1/activity", "/api/v1/activity", b.staff, "", 200, nil},
			{"GET /api/v1/activity", "/api/v1/activity?limit=0", b.staff, "", 400, nil},
			{"GET /api/v1/worklist", "/api/v1/worklist", b.staff, "", 200, nil},
			{"GET /api/v1/worklist", "/api/v1/worklist?limit=x", b.staff, "", 400, nil},
			{"GET /api/v1/lab/settings", "/api/v1/lab/settings", b.staff, "", 200, nil},
			{"PATCH /api/v1/lab/settings", "/api/v1/lab/settings", b.admin, `{"target_minutes":20}`, 200, nil},
			{"PATCH /api/v1/lab/settings", "/api/v1/lab/settings", b.staff, `{"target_minutes":20}`, 403, nil},
			{"PATCH /api/v1/lab/settings", "/api/v1/lab/settings", b.admin, `{"target_minutes":-1}`, 422, nil},
			{"GET /api/v1/lab/critical-limits", "/api/v1/lab/critical-limits", b.staff, "", 200, nil},
			{"PUT /api/v1/lab/critical-limits", "/api/v1/lab/critical-limits", b.admin, `{"limits":[{"name":"Potassium","unit":"mmol/L","critical_low":2.5,"critical_high":6.5}]}`, 200, nil},
			{"PUT /api/v1/lab/critical-limits", "/api/v1/lab/critical-limits", b.staff, `{"limits":[]}`, 403, nil},
			{"PUT /api/v1/lab/critical-limits", "/api/v1/lab/critical-limits", b.admin, `{}`, 400, nil},
			{"GET /api/v1/lab/templates/email", "/api/v1/lab/templates/email", b.staff, "", 200, nil},
			{"PUT /api/v1/lab/templates/email", "/api/v1/lab/templates/email", b.staff, `{"template":"x"}`, 403, nil},
			{"PUT /api/v1/lab/templates/email", "/api/v1/lab/templates/email", b.admin, `{"template":"{% if %}"}`, 422, nil},
			{"GET /api/v1/bills/{id}/deliveries", "/api/v1/bills/" + bill + "/deliveries", b.staff, "", 200, nil},
			{"GET /api/v1/deliveries", "/api/v1/deliveries", b.staff, "", 200, nil},
			{"POST /api/v1/deliveries/{id}/retry", "/api/v1/deliveries/999999/retry", b.staff, "", 404, nil},
			{"GET /fhir/r4/metadata", "/fhir/r4/metadata", "", "", 200, nil},
			{"GET /fhir/r4/metadata", "/fhir/r4/metadata?_format=xml", "", "", 406, nil},
		}
		for _, typ := range []string{"Communication", "Patient", "ServiceRequest", "DiagnosticReport", "Observation", "Practitioner", "Organization"} {
			calls = append(calls,
				call{"GET /fhir/r4/" + typ, "/fhir/r4/" + typ, b.staff, "", 200, nil},
				call{"GET /fhir/r4/" + typ, "/fhir/r4/" + typ + "?_count=x", b.staff, "", 400, nil},
				call{"GET /fhir/r4/" + typ, "/fhir/r4/" + typ, "", "", 401, nil},
				call{"GET /fhir/r4/" + typ, "/fhir/r4/" + typ, b.staff, "", 406, []string{"Accept", "application/fhir+xml"}},
				call{"GET /fhir/r4/" + typ + "/{id}", "/fhir/r4/" + typ + "/999999", b.staff, "", 404, nil},
				call{"GET /fhir/r4/" + typ + "/{id}", "/fhir/r4/" + typ + "/1", "", "", 401, nil},
			)
		}
		for _, read := range []string{"Communication/1", "ServiceRequest/" + bill, "DiagnosticReport/" + strconv.FormatInt(b.ids[0], 10),
			"Practitioner/referral-" + bill, "Organization/org-" + bill, "Patient/order-" + bill} {
			typ, _, _ := strings.Cut(read, "/")
			calls = append(calls, call{"GET /fhir/r4/" + typ + "/{id}", "/fhir/r4/" + read, b.staff, "", 200, nil})
		}

		exercised := map[string]bool{}
		for _, c := range calls {
			method, _, _ := strings.Cut(c.route, " ")
			a := b.do(t, c.token, method, c.path, c.body, c.header...)
			require.Equal(t, c.status, a.status, "%s %s: %s", method, c.path, a.body)
			doc.check(t, c.route, a)
			exercised[c.route] = true
		}
		// Every route documented was answered for real at least once.
		for path, ops := range obj(doc.doc["paths"]) {
			for method := range obj(ops) {
				route := strings.ToUpper(method) + " " + path
				require.True(t, exercised[route], "%s is documented but not checked against a real answer", route)
			}
		}
	})
}

// TestOpenAPIOperations: every operation has an operationId (unique), a tag
// and a summary; the document names its servers.
func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	require.NotEmpty(t, doc.doc["servers"])
	ids := map[string]bool{}
	for path, ops := range obj(doc.doc["paths"]) {
		for method, op := range obj(ops) {
			o := obj(op)
			id, _ := o["operationId"].(string)
			require.NotEmpty(t, id, "%s %s", method, path)
			require.False(t, ids[id], "operationId %s twice", id)
			ids[id] = true
			require.NotEmpty(t, o["tags"], "%s %s", method, path)
			require.NotEmpty(t, o["summary"], "%s %s", method, path)
		}
	}
}

// TestFHIRPanicIsAnOperationOutcome: even a handler that panics under
// /fhir/ answers as FHIR clients read errors.
func TestFHIRPanicIsAnOperationOutcome(t *testing.T) {
	t.Parallel()
	fx := storetest.NewFixture(t, storetest.SQLite, callout.Settings{})
	api := httpapi.New(httpapi.Config{Service: fx.Svc})
	api.Handle("GET /fhir/r4/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	srv := httptest.NewServer(api)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/fhir/r4/boom")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.Equal(t, "application/fhir+json; charset=utf-8", res.Header.Get("Content-Type"))
	var o struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct{ Code string }
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&o))
	require.Equal(t, "OperationOutcome", o.ResourceType)
	require.Equal(t, "exception", o.Issue[0].Code)
}
