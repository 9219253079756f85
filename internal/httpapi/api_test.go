package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/httpapi"
	"callout/internal/storetest"
)

type testBundle struct {
	fx     *storetest.Fixture
	srv    *httptest.Server
	staff  string // token
	admin  string
	other  string // a token of another lab
	billID int64
	ids    []int64
}

func setup(t *testing.T, e storetest.Engine) *testBundle {
	t.Helper()
	fx := storetest.NewFixture(t, e, callout.Settings{})
	api := httpapi.New(httpapi.Config{Service: fx.Svc, Ping: fx.Store.DB.PingContext, Metrics: httpapi.NewMetrics(prometheus.NewRegistry())})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	b := &testBundle{fx: fx, srv: srv}
	var err error
	b.staff, err = fx.Svc.CreateToken(ctx, fx.Lab, "Asha", callout.RoleStaff)
	require.NoError(t, err)
	b.admin, err = fx.Svc.CreateToken(ctx, fx.Lab, "Ravi", callout.RoleAdmin)
	require.NoError(t, err)
	otherLab := fx.AddLab(t, callout.Settings{Name: "Other Lab"})
	b.other, err = fx.Svc.CreateToken(ctx, otherLab, "Eve", callout.RoleAdmin)
	require.NoError(t, err)
	c := fx.Create(t, storetest.Order("ORD-1", 3))
	b.billID, b.ids = c.ID, storetest.ReportIDs(c)
	return b
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), string(a.body))
	return m
}

func (b *testBundle) do(t *testing.T, token, method, path, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return answer{res.StatusCode, res.Header, raw}
}

func calloutBody(ids []int64, draft bool, payload string) string {
	b, _ := json.Marshal(ids)
	return fmt.Sprintf(`{"lab_report_ids":%s,"is_draft":%v,"callout_payload":%s}`, b, draft, payload)
}

const referralEmail = `{"sendEmail":true,"sendFax":false,"is_patient":false,"is_referral":true,"is_organization":false,"comment":"Informed Dr. Rao","notified_person":"Dr. Rao","read_back":true}`

// keys returns m's keys, sorted.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("OrderCalloutAndReads", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			a := b.do(t, b.staff, "POST", "/api/v1/orders", `{"lab_bill_id":"ORD-2","accession_number":"A2",
				"patient":{"name":"Jane Roe","email":"jane@example.org","phone":"555"},
				"referral":{"name":"Dr. Who","email":"who@example.org","fax":"555 1","phone":"555 2"},
				"organization":{"name":"Clinic","email":"","fax":"","phone":""},
				"reports":[{"test_id":"K","test_name":"Potassium","department":"Biochemistry","parameters":[
				  {"name":"Potassium","value":"7.1","unit":"mmol/L","normal_low":3.5,"normal_high":5.1,"critical_low":2.5,"critical_high":6.5,"flag":""}]},
				  {"test_id":"G","test_name":"Glucose","dismissed":true,"parameters":[{"name":"Glucose","value":"35","flag":"LL"}]},
				  {"test_id":"N","test_name":"Sodium","parameters":[{"name":"Sodium","value":"140","normal_low":135,"normal_high":145}]}]}`)
			require.Equal(t, 201, a.status, string(a.body))
			created := a.json(t)
			require.Equal(t, "ORD-2", created["lab_bill_id"])
			reports := created["reports"].([]any)
			require.Len(t, reports, 3)
			require.EqualValues(t, 1, reports[0].(map[string]any)["critical_values"])
			require.EqualValues(t, 0, reports[2].(map[string]any)["critical_values"])
			billID := int64(created["id"].(float64))
			kID := int64(reports[0].(map[string]any)["id"].(float64))

			a = b.do(t, b.staff, "POST", fmt.Sprintf("/api/v1/bills/%d/callouts", billID), calloutBody([]int64{kID}, true, `{"is_referral":true,"comment":"no answer"}`))
			require.Equal(t, 201, a.status, string(a.body))
			require.Equal(t, "attempted", a.json(t)["status"])

			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/bills/%d", billID), "")
			require.Equal(t, 200, a.status)
			bill := a.json(t)
			require.Equal(t, "Jane Roe", bill["patient"].(map[string]any)["name"])
			draft := bill["draft"].(map[string]any)
			require.Equal(t, []any{"K"}, draft["callout_for"])
			require.Equal(t, []any{float64(kID)}, draft["lab_report_ids"])
			require.Equal(t, []any{"Referral"}, draft["recipients"])
			require.Equal(t, []any{}, draft["methods"])
			require.Equal(t, "no answer", draft["comment"])
			rs := bill["reports"].([]any)
			require.Equal(t, true, rs[0].(map[string]any)["can_callout"])
			require.Equal(t, false, rs[1].(map[string]any)["can_callout"], "a dismissed report is never offered")
			require.Equal(t, true, rs[1].(map[string]any)["dismissed"])
			require.Contains(t, bill, "additional_instruction")

			a = b.do(t, b.staff, "POST", fmt.Sprintf("/api/v1/bills/%d/callouts", billID), calloutBody([]int64{kID}, false, referralEmail))
			require.Equal(t, 201, a.status, string(a.body))
			res := a.json(t)
			require.Equal(t, "done", res["status"])
			require.Len(t, res["callouts"], 1)
			require.EqualValues(t, kID, res["callouts"].([]any)[0].(map[string]any)["lab_report_id"])
			require.EqualValues(t, 2, res["reports"].([]any)[0].(map[string]any)["critical_values"])
			require.NotEmpty(t, res["reports"].([]any)[0].(map[string]any)["last_updated"])

			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/bills/%d", billID), "")
			require.Nil(t, a.json(t)["draft"])

			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/bills/%d/callouts", billID), "")
			require.Equal(t, 200, a.status)
			recs := a.json(t)["callouts"].([]any)
			require.Len(t, recs, 1, "the done callout replaced the draft")
			rec := recs[0].(map[string]any)
			for _, k := range []string{"id", "lab_report_id", "status", "methods", "recipients", "comment", "notified_person", "read_back", "created_by", "created_at", "meta", "snapshot"} {
				require.Contains(t, rec, k)
			}
			require.Equal(t, []any{"Email"}, rec["methods"])
			require.Equal(t, "Asha", rec["created_by"])
			require.Equal(t, true, rec["read_back"])
			snap := rec["snapshot"].([]any)[0].(map[string]any)
			require.Equal(t, "Potassium", snap["name"])
			require.Equal(t, "7.1", snap["value"])

			// The attempt log keeps the attempt the done callout replaced.
			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/bills/%d/attempts", billID), "")
			require.Equal(t, 200, a.status, string(a.body))
			require.Equal(t, []string{"attempts"}, keys(a.json(t)))
			rows := a.json(t)["attempts"].([]any)
			require.Len(t, rows, 2)
			for i, row := range rows {
				r := row.(map[string]any)
				require.Equal(t, []string{"attempt_number", "back_entry_reason", "called_at", "comment", "critical_values", "id", "kind",
					"lab_report_id", "notified_person", "outcome", "read_back", "recipients", "recorded_at", "user"}, keys(r))
				require.EqualValues(t, i+1, r["attempt_number"])
				require.EqualValues(t, kID, r["lab_report_id"])
				require.Equal(t, "Asha", r["user"])
				require.Equal(t, "Potassium", r["critical_values"].([]any)[0].(map[string]any)["name"])
			}
			require.Equal(t, "attempt", rows[0].(map[string]any)["kind"])
			require.Equal(t, "no_answer", rows[0].(map[string]any)["outcome"])
			require.Equal(t, "no answer", rows[0].(map[string]any)["comment"])
			require.Equal(t, "done", rows[1].(map[string]any)["kind"])
			require.Equal(t, "read_back_confirmed", rows[1].(map[string]any)["outcome"])
			require.Equal(t, []any{map[string]any{"recipient": "Referral", "name": "Dr. Who", "phone": "555 2", "email": "who@example.org"}},
				rows[1].(map[string]any)["recipients"])
			a = b.do(t, b.other, "GET", fmt.Sprintf("/api/v1/bills/%d/attempts", billID), "")
			require.Equal(t, 404, a.status, "another lab's order")

			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/activity?bill_id=%d", billID), "")
			require.Equal(t, 200, a.status)
			entries := a.json(t)["entries"].([]any)
			require.Len(t, entries, 2)
			first := entries[0].(map[string]any)
			require.EqualValues(t, 648, first["category_id"])
			require.Equal(t, "Callout done by - Asha, Callout for - Potassium, Method - Email, Recipients - Referral, Outcome - read back confirmed, Comment - Informed Dr. Rao", first["message"])
			require.Contains(t, entries[1].(map[string]any)["message"], "Callout Attempted by - Asha")
			data := first["data"].(map[string]any)
			for _, k := range []string{"bill_id", "lab_report_ids", "callout_for", "method", "recipients", "comment", "transitions"} {
				require.Contains(t, data, k)
			}
			require.NotContains(t, data, "is_draft")
			require.Equal(t, true, entries[1].(map[string]any)["data"].(map[string]any)["is_draft"])
		})

		t.Run("Worklist", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			a := b.do(t, b.staff, "GET", "/api/v1/worklist?critical_values=1,4&limit=2", "")
			require.Equal(t, 200, a.status, string(a.body))
			page := a.json(t)
			require.Len(t, page["reports"], 2)
			first := page["reports"].([]any)[0].(map[string]any)
			require.Equal(t, "ORD-1", first["lab_bill_id"])
			require.Equal(t, "Maria Müller", first["patient_name"])
			require.Contains(t, first, "age_seconds")
			cursor := page["next_cursor"].(string)
			a = b.do(t, b.staff, "GET", "/api/v1/worklist?critical_values=1,4&limit=2&cursor="+cursor, "")
			require.Equal(t, 200, a.status)
			page = a.json(t)
			require.Len(t, page["reports"], 1)
			require.Nil(t, page["next_cursor"])
			for _, bad := range []string{"critical_values=x", "critical_values=0", "critical_values=3", "limit=0", "limit=abc", "limit=501", "cursor=bm9wZQ"} {
				a = b.do(t, b.staff, "GET", "/api/v1/worklist?"+bad, "")
				require.Contains(t, []int{400, 422}, a.status, bad)
				require.NotEmpty(t, a.json(t)["error"].(map[string]any)["message"])
			}
			a = b.do(t, b.other, "GET", "/api/v1/worklist", "")
			require.Empty(t, a.json(t)["reports"], "another lab sees nothing")
		})

		t.Run("BadInputChangesNothing", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			calloutPath := fmt.Sprintf("/api/v1/bills/%d/callouts", b.billID)
			// A draft exists, so a refused request could wrongly remove it.
			a := b.do(t, b.staff, "POST", calloutPath, calloutBody(b.ids[:1], true, `{"is_referral":true}`))
			require.Equal(t, 201, a.status)
			// A done callout with email leaves a queued delivery (no workers here).
			a = b.do(t, b.staff, "POST", calloutPath, calloutBody(b.ids[2:], false, referralEmail))
			require.Equal(t, 201, a.status)
			a = b.do(t, b.staff, "POST", calloutPath, calloutBody(b.ids[:1], true, `{"is_referral":true}`))
			require.Equal(t, 201, a.status)
			huge := `{"lab_bill_id":"X","patient":{"name":"` + strings.Repeat("a", httpapi.MaxBody) + `"},"reports":[]}`
			cases := []struct {
				name, token, method, path, body string
				status                          int
				code                            string
			}{
				{"no token", "", "POST", calloutPath, calloutBody(b.ids[:1], false, referralEmail), 401, "unauthorized"},
				{"unknown token", "co_nope", "POST", calloutPath, calloutBody(b.ids[:1], false, referralEmail), 401, "unauthorized"},
				{"malformed JSON", b.staff, "POST", calloutPath, `{"lab_report_ids":[1,`, 400, "invalid"},
				{"wrong type", b.staff, "POST", calloutPath, `{"lab_report_ids":"1","callout_payload":{}}`, 400, "invalid"},
				{"wrong nested type", b.staff, "POST", calloutPath, `{"lab_report_ids":[1],"callout_payload":{"sendEmail":"yes"}}`, 400, "invalid"},
				{"unknown field", b.staff, "POST", calloutPath, `{"lab_report_ids":[1],"callout_payload":{},"surprise":1}`, 400, "invalid"},
				{"two values", b.staff, "POST", calloutPath, calloutBody(b.ids[:1], false, referralEmail) + `{}`, 400, "invalid"},
				{"empty body", b.staff, "POST", calloutPath, ``, 400, "invalid"},
				{"too large", b.staff, "POST", "/api/v1/orders", huge, 413, "too_large"},
				{"order of another lab", b.other, "POST", calloutPath, calloutBody(b.ids[:1], false, referralEmail), 404, "not_found"},
				{"order that does not exist", b.staff, "POST", "/api/v1/bills/999999/callouts", calloutBody(b.ids[:1], false, referralEmail), 404, "not_found"},
				{"id that is no number", b.staff, "POST", "/api/v1/bills/abc/callouts", calloutBody(b.ids[:1], false, referralEmail), 404, "not_found"},
				{"empty selection", b.staff, "POST", calloutPath, calloutBody(nil, false, referralEmail), 422, "unprocessable"},
				{"report not in order", b.staff, "POST", calloutPath, calloutBody([]int64{999999}, false, referralEmail), 422, "unprocessable"},
				{"no recipient", b.staff, "POST", calloutPath, calloutBody(b.ids[:1], false, `{"sendEmail":true}`), 422, "unprocessable"},
				{"fax to patient", b.staff, "POST", calloutPath, calloutBody(b.ids[:1], false, `{"sendFax":true,"is_patient":true}`), 422, "unprocessable"},
				{"duplicate order id", b.staff, "POST", "/api/v1/orders", `{"lab_bill_id":"ORD-1","patient":{"name":"X"},"reports":[{"test_id":"A","parameters":[]}]}`, 409, "conflict"},
				{"order without reports", b.staff, "POST", "/api/v1/orders", `{"lab_bill_id":"ORD-9","patient":{"name":"X"},"reports":[]}`, 422, "unprocessable"},
				{"order with bad range", b.staff, "POST", "/api/v1/orders", `{"lab_bill_id":"ORD-9","patient":{"name":"X"},"reports":[{"test_id":"A","parameters":[{"name":"K","value":"1","normal_low":5,"normal_high":1}]}]}`, 422, "unprocessable"},
				{"order with bad email", b.staff, "POST", "/api/v1/orders", `{"lab_bill_id":"ORD-9","patient":{"name":"X","email":"nope"},"reports":[{"test_id":"A","parameters":[]}]}`, 422, "unprocessable"},
				{"staff changes settings", b.staff, "PATCH", "/api/v1/lab/settings", `{"share_comment":true}`, 403, "forbidden"},
				{"settings unknown field", b.admin, "PATCH", "/api/v1/lab/settings", `{"color":"red"}`, 400, "invalid"},
				{"settings empty name", b.admin, "PATCH", "/api/v1/lab/settings", `{"name":""}`, 422, "unprocessable"},
				{"settings wrong type", b.admin, "PATCH", "/api/v1/lab/settings", `{"mandatory_comments":"yes"}`, 400, "invalid"},
				{"activity of another lab's order", b.other, "GET", fmt.Sprintf("/api/v1/activity?bill_id=%d", b.billID), "", 404, "not_found"},
				{"bill of another lab", b.other, "GET", fmt.Sprintf("/api/v1/bills/%d", b.billID), "", 404, "not_found"},
				{"unknown endpoint", b.staff, "GET", "/api/v1/nothing", "", 404, "not_found"},
				{"retry a queued delivery", b.staff, "POST", "/api/v1/deliveries/1/retry", "", 409, "conflict"},
				{"retry an unknown delivery", b.staff, "POST", "/api/v1/deliveries/999/retry", "", 404, "not_found"},
				{"retry another lab's delivery", b.other, "POST", "/api/v1/deliveries/1/retry", "", 404, "not_found"},
				{"deliveries in a bad status", b.staff, "GET", "/api/v1/deliveries?status=lost", "", 400, "invalid"},
				{"template by staff", b.staff, "PUT", "/api/v1/lab/templates/email", `{"template":"<p>{{ lab_name }}</p>"}`, 403, "forbidden"},
				{"template that does not parse", b.admin, "PUT", "/api/v1/lab/templates/email", `{"template":"{% if x %}<p>"}`, 422, "unprocessable"},
				{"template body without the field", b.admin, "PUT", "/api/v1/lab/templates/email", `{}`, 400, "invalid"},
				{"template with a recursive macro", b.admin, "PUT", "/api/v1/lab/templates/email", `{"template":"{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}"}`, 422, "unprocessable"},
				{"template looping over range", b.admin, "PUT", "/api/v1/lab/templates/email", `{"template":"{% for i in range(10000000) %}x{% endfor %}"}`, 422, "unprocessable"},
				{"template marking data safe", b.admin, "PUT", "/api/v1/lab/templates/email", `{"template":"{% if lab_name %}{{ patient_name|safe }}{% endif %}"}`, 422, "unprocessable"},
				{"limits by staff", b.staff, "PUT", "/api/v1/lab/critical-limits", `{"limits":[]}`, 403, "forbidden"},
				{"limits with low above high", b.admin, "PUT", "/api/v1/lab/critical-limits", `{"limits":[{"name":"K","critical_low":7,"critical_high":2}]}`, 422, "unprocessable"},
				{"limits without a bound", b.admin, "PUT", "/api/v1/lab/critical-limits", `{"limits":[{"name":"K"}]}`, 422, "unprocessable"},
				{"limits listed twice", b.admin, "PUT", "/api/v1/lab/critical-limits", `{"limits":[{"name":"K","critical_high":6},{"name":"k","critical_high":7}]}`, 422, "unprocessable"},
				{"find bills without an Order ID", b.staff, "GET", "/api/v1/bills", "", 400, "invalid"},
				{"search text too long", b.staff, "GET", "/api/v1/worklist?q=" + strings.Repeat("x", 201), "", 422, "unprocessable"},
				{"wrong method", b.staff, "DELETE", "/api/v1/orders", "", 405, "method_not_allowed"},
			}
			for _, tc := range cases {
				before := storetest.Dump(t, b.fx.Store.DB)
				a := b.do(t, tc.token, tc.method, tc.path, tc.body)
				require.Equal(t, tc.status, a.status, "%s: %s", tc.name, a.body)
				e := a.json(t)["error"].(map[string]any)
				require.Equal(t, tc.code, e["code"], tc.name)
				require.NotEmpty(t, e["message"], tc.name)
				require.NotContains(t, e["message"], "sql", tc.name)
				require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "%s changed rows", tc.name)
			}
		})

		t.Run("BearerSchemeIsCaseInsensitive", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			// RFC 7235 section 2.1: the scheme is case-insensitive and is
			// followed by one or more spaces.
			cases := []struct {
				header string
				status int
			}{
				{"Bearer " + b.staff, 200},
				{"bearer " + b.staff, 200},
				{"BEARER " + b.staff, 200},
				{"bEaReR " + b.staff, 200},
				{"Bearer   " + b.staff, 200},
				{"Bearer " + b.staff + " ", 200},
				{"Basic " + b.staff, 401},
				{"Bearer" + b.staff, 401},
				{"Bearer", 401},
				{"Bearer ", 401},
				{"bearer co_nope", 401},
				{"Bearer " + b.staff + " extra", 401},
				{"Bearer\t" + b.staff, 401},
			}
			for _, tc := range cases {
				a := b.do(t, "", "GET", "/api/v1/worklist", "", "Authorization", tc.header)
				require.Equal(t, tc.status, a.status, "%q: %s", tc.header, a.body)
			}
		})

		t.Run("OutcomesAndNotifiedPerson", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			path := fmt.Sprintf("/api/v1/bills/%d/callouts", b.billID)
			before := storetest.Dump(t, b.fx.Store.DB)
			for _, tc := range []struct {
				draft   bool
				payload string
				want    string
			}{
				{false, `{"is_referral":true,"read_back":true}`, "notified_person"},
				{false, `{"is_referral":true,"notified_person":"Dr. Rao","outcome":"read_back_confirmed"}`, "read_back: true"},
				{false, `{"is_referral":true,"notified_person":"Dr. Rao","read_back":true,"outcome":"reached_no_read_back"}`, "contradicts"},
				{false, `{"is_referral":true,"notified_person":"Dr. Rao","outcome":"no_answer"}`, "done callout must be one of"},
				{true, `{"is_referral":true,"outcome":"voicemail"}`, "attempt must be one of"},
				{true, `{"is_referral":true,"outcome":"other"}`, "needs a comment"},
			} {
				a := b.do(t, b.staff, "POST", path, calloutBody(b.ids[:1], tc.draft, tc.payload))
				require.Equal(t, 422, a.status, "%s: %s", tc.payload, a.body)
				require.Contains(t, string(a.body), tc.want, tc.payload)
			}
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "refused callouts change nothing")

			a := b.do(t, b.staff, "POST", path, calloutBody(b.ids[:1], true, `{"is_referral":true,"outcome":"left_message"}`))
			require.Equal(t, 201, a.status, string(a.body))
			a = b.do(t, b.staff, "POST", path, calloutBody(b.ids[:1], false, `{"is_referral":true,"notified_person":"Dr. Rao, ward 3"}`))
			require.Equal(t, 201, a.status, string(a.body))
			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/bills/%d/attempts", b.billID), "")
			rows := a.json(t)["attempts"].([]any)
			require.Equal(t, "left_message", rows[0].(map[string]any)["outcome"])
			require.Equal(t, "reached_no_read_back", rows[1].(map[string]any)["outcome"])
			a = b.do(t, b.staff, "GET", fmt.Sprintf("/api/v1/activity?bill_id=%d", b.billID), "")
			entries := a.json(t)["entries"].([]any)
			require.Contains(t, entries[0].(map[string]any)["message"], "Outcome - reached, no read-back, Comment - ")
			require.Contains(t, entries[1].(map[string]any)["message"], "Outcome - left message, Comment - ")

			// The lab may turn the notified person rule off.
			a = b.do(t, b.admin, "PATCH", "/api/v1/lab/settings", `{"require_notified_person":false}`)
			require.Equal(t, 200, a.status, string(a.body))
			require.Equal(t, false, a.json(t)["require_notified_person"])
			a = b.do(t, b.staff, "POST", path, calloutBody(b.ids[1:2], false, `{"is_referral":true}`))
			require.Equal(t, 201, a.status, string(a.body))
		})

		t.Run("CommentOfACalloutOnOtherDepartmentsIsCut", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			hema, err := b.fx.Svc.CreateToken(context.Background(), b.fx.Lab, "Hema", callout.RoleStaff, "Haematology")
			require.NoError(t, err)
			c := b.fx.Create(t, storetest.Order("ORD-MIX", 1, callout.NewReport{TestID: "CBC", TestName: "Blood count",
				Department: "Haematology", Parameters: []callout.Parameter{{Name: "Hb", Value: "5.1", Flag: "LL"}}}))
			ids := storetest.ReportIDs(c)
			const secret = "HIV screen positive, told Dr. Rao"
			a := b.do(t, b.staff, "POST", fmt.Sprintf("/api/v1/bills/%d/callouts", c.ID),
				calloutBody(ids, true, `{"is_referral":true,"comment":"`+secret+`"}`))
			require.Equal(t, 201, a.status, string(a.body))

			for _, path := range []string{"/api/v1/bills/%d/callouts", "/api/v1/bills/%d", "/api/v1/activity?bill_id=%d", "/api/v1/bills/%d/attempts"} {
				a = b.do(t, hema, "GET", fmt.Sprintf(path, c.ID), "")
				require.Equal(t, 200, a.status, string(a.body))
				require.NotContains(t, string(a.body), secret, path)
				require.Contains(t, string(a.body), `"restricted":true`, path)
				a = b.do(t, b.staff, "GET", fmt.Sprintf(path, c.ID), "")
				require.Contains(t, string(a.body), secret, "unlimited: %s", path)
				require.NotContains(t, string(a.body), `"restricted"`, "unlimited: %s", path)
			}
		})

		t.Run("MandatoryComments", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			a := b.do(t, b.admin, "PATCH", "/api/v1/lab/settings", `{"mandatory_comments":true,"additional_instruction":"Read back"}`)
			require.Equal(t, 200, a.status, string(a.body))
			set := a.json(t)
			require.Equal(t, true, set["mandatory_comments"])
			require.Equal(t, "City Lab", set["name"])
			before := storetest.Dump(t, b.fx.Store.DB)
			a = b.do(t, b.staff, "POST", fmt.Sprintf("/api/v1/bills/%d/callouts", b.billID), calloutBody(b.ids[:1], false, `{"is_referral":true}`))
			require.Equal(t, 422, a.status)
			require.Contains(t, a.json(t)["error"].(map[string]any)["message"], "comment")
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
			a = b.do(t, b.staff, "GET", "/api/v1/lab/settings", "")
			require.Equal(t, "Read back", a.json(t)["additional_instruction"])
		})

		t.Run("IdempotentRetries", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			path := fmt.Sprintf("/api/v1/bills/%d/callouts", b.billID)
			body := calloutBody(b.ids[:2], false, referralEmail)
			first := b.do(t, b.staff, "POST", path, body, "Idempotency-Key", "retry-1")
			require.Equal(t, 201, first.status)
			before := storetest.Dump(t, b.fx.Store.DB)
			again := b.do(t, b.staff, "POST", path, body, "Idempotency-Key", "retry-1")
			require.Equal(t, 201, again.status)
			require.JSONEq(t, string(first.body), string(again.body))
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "a retry writes nothing")
			other := b.do(t, b.staff, "POST", path, calloutBody(b.ids[:1], false, referralEmail), "Idempotency-Key", "retry-1")
			require.Equal(t, 422, other.status)
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))

			order := `{"lab_bill_id":"ORD-7","patient":{"name":"X"},"reports":[{"test_id":"A","parameters":[{"name":"K","value":"9","flag":"HH"}]}]}`
			o1 := b.do(t, b.staff, "POST", "/api/v1/orders", order, "Idempotency-Key", "order-7")
			require.Equal(t, 201, o1.status)
			o2 := b.do(t, b.staff, "POST", "/api/v1/orders", order, "Idempotency-Key", "order-7")
			require.Equal(t, 201, o2.status, "a retried order is not a conflict")
			require.JSONEq(t, string(o1.body), string(o2.body))

			// Concurrent retries of one request: one callout, the same answer.
			path3 := fmt.Sprintf("/api/v1/bills/%d/callouts", b.billID)
			body3 := calloutBody(b.ids[2:], false, referralEmail)
			answers := make(chan answer, 6)
			for range 6 {
				go func() { answers <- b.do(t, b.staff, "POST", path3, body3, "Idempotency-Key", "race") }()
			}
			var bodies []string
			for range 6 {
				a := <-answers
				require.Equal(t, 201, a.status, string(a.body))
				bodies = append(bodies, string(a.body))
			}
			for _, x := range bodies[1:] {
				require.JSONEq(t, bodies[0], x)
			}
			recs, err := b.fx.Store.Records(context.Background(), b.fx.Lab, b.billID)
			require.NoError(t, err)
			n := 0
			for _, r := range recs {
				if r.LabReportID != nil && *r.LabReportID == b.ids[2] {
					n++
				}
			}
			require.Equal(t, 1, n, "six concurrent retries made one callout")
		})

		t.Run("HealthAndOpenAPI", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			a := b.do(t, "", "GET", "/healthz", "")
			require.Equal(t, 200, a.status)
			a = b.do(t, "", "GET", "/api/v1/openapi.json", "")
			require.Equal(t, 200, a.status)
			var doc struct {
				OpenAPI string                               `json:"openapi"`
				Paths   map[string]map[string]map[string]any `json:"paths"`
			}
			require.NoError(t, json.Unmarshal(a.body, &doc))
			require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))
			api := httpapi.New(httpapi.Config{Service: b.fx.Svc})
			documented := map[string]bool{}
			for path, ops := range doc.Paths {
				for method, op := range ops {
					documented[strings.ToUpper(method)+" "+path] = true
					require.Contains(t, op, "responses", "%s %s", method, path)
				}
			}
			served := map[string]bool{}
			for _, r := range api.Routes() {
				served[r] = true
				require.True(t, documented[r], "route %s is not in openapi.json", r)
			}
			// Served beside the API by other packages, documented here too.
			served["GET /metrics"], served["GET /fhir/r4/metadata"] = true, true
			for _, typ := range []string{"Communication", "Patient", "ServiceRequest", "DiagnosticReport", "Observation", "Practitioner", "Organization"} {
				served["GET /fhir/r4/"+typ], served["GET /fhir/r4/"+typ+"/{id}"] = true, true
			}
			for d := range documented {
				require.True(t, served[d], "openapi.json documents %s, which is not served", d)
			}
		})
	})
}

func TestDecodeNeverPanics(t *testing.T) {
	t.Parallel()
	fx := storetest.NewFixture(t, storetest.SQLite, callout.Settings{})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Service: fx.Svc}))
	defer srv.Close()
	tok, err := fx.Svc.CreateToken(context.Background(), fx.Lab, "x", callout.RoleStaff)
	require.NoError(t, err)
	for _, body := range []string{`null`, `[]`, `"x"`, `{"reports":null}`, `{"lab_report_ids":[null]}`, `{"lab_report_ids":[1.5]}`, `{"callout_payload":null}`, "\xff\xfe"} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/bills/1/callouts", bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Less(t, res.StatusCode, 500, body)
	}
}
