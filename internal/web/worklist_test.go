package web_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"callout/internal/callout"
	"callout/internal/storetest"
)

func ago(m int) *time.Time {
	t := callout.Now().Add(-time.Duration(m) * time.Minute)
	return &t
}

// report is a critical potassium report resulted minutes ago.
func report(id, name, dept string, minutes int) callout.NewReport {
	return callout.NewReport{TestID: id, TestName: name, Department: dept, ResultedAt: ago(minutes),
		Parameters: []callout.Parameter{storetest.Potassium("7.1")}}
}

func order(id, patient string, reports ...callout.NewReport) callout.NewOrder {
	return callout.NewOrder{LabBillID: id, Patient: callout.Contact{Name: patient},
		Referral: callout.Contact{Name: "Dr. Rao", Email: "rao@clinic.example"}, Reports: reports}
}

func TestWorklist(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		late := b.f.Create(t, order("ORD-LATE", "Peter Novak", report("CBC", "Complete Blood Count", "Haematology", 47),
			report("K", "Potassium", "Biochemistry", 40)))
		b.f.Create(t, order("ORD-WARN", "Aiko Tanaka", report("INR", "Coagulation", "Haematology", 20)))
		fresh := b.f.Create(t, order("ORD-NEW", "Maria Müller", report("GLU", "Glucose", "Biochemistry", 2)))
		done := b.f.Create(t, order("ORD-DONE", "John Okafor", report("TROP", "Troponin I", "Biochemistry", 90)))
		_, err := b.f.Svc.Callout(context.Background(), b.f.Staff, done.ID, storetest.Done(done.Reports[0].ID), nil)
		require.NoError(t, err)
		_, err = b.f.Svc.Callout(context.Background(), b.f.Staff, fresh.ID, storetest.Attempt(fresh.Reports[0].ID), nil)
		require.NoError(t, err)
		br := b.signedIn(t, "asha")

		page := br.get("/")
		require.Equal(t, 200, page.status)
		require.Contains(t, page.body, `Pending <span class="count">3</span>`)
		require.Contains(t, page.body, `Done <span class="count">1</span>`)
		body := page.body
		iLate, iWarn, iNew := strings.Index(body, "ORD-LATE"), strings.Index(body, "ORD-WARN"), strings.Index(body, "ORD-NEW")
		require.True(t, iLate > 0 && iLate < iWarn && iWarn < iNew, "oldest result first")
		require.NotContains(t, body, "ORD-DONE")
		require.Contains(t, body, fmt.Sprintf(`<a class="order" href="/bills/%d">ORD-LATE</a>`, late.ID))
		require.Contains(t, body, `<span class="age late">47 min<span class="sr-only"> — over the target</span></span>`)
		require.Contains(t, body, `<span class="age warn">20 min</span>`)
		require.Contains(t, body, `<span class="age ok">2 min</span>`)
		require.Contains(t, body, "Complete Blood Count")
		require.Contains(t, body, "Glucose <span class=\"badge attempted\">Attempted</span>", "an attempt stays pending, marked")
		require.Contains(t, body, "Target 30 min")
		require.Contains(t, body, `data-refresh-url="/worklist/fragment?tab=pending"`)

		page = br.get("/?tab=done")
		require.Contains(t, page.body, "ORD-DONE")
		require.NotContains(t, page.body, "ORD-LATE")
		require.Contains(t, page.body, `id="tab-done" href="/?tab=done" aria-current="page"`)

		// Search: patient, Order ID, test; the counts follow the search.
		for q, want := range map[string]string{"novak": "ORD-LATE", "ord-warn": "ORD-WARN", "glucose": "ORD-NEW", "Müller": "ORD-NEW"} {
			page = br.get("/?q=" + url.QueryEscape(q))
			require.Contains(t, page.body, want, q)
			require.Contains(t, page.body, `Pending <span class="count">1</span>`, q)
			require.Contains(t, page.body, `value="`+q+`"`, q)
		}
		page = br.get("/?q=" + url.QueryEscape(`50%_<script>`))
		require.Contains(t, page.body, `No order matches “50%_&lt;script&gt;”.`)
		require.NotContains(t, page.body, "<script>")

		// The fragment the page polls is the list without the layout.
		frag := br.get("/worklist/fragment?tab=pending")
		require.Equal(t, 200, frag.status)
		require.Contains(t, frag.body, "ORD-LATE")
		require.NotContains(t, frag.body, "<html")

		// The target comes from the lab's settings.
		sixty := 60
		_, err = b.f.Svc.UpdateSettings(context.Background(), b.f.Admin, callout.SettingsPatch{TargetMinutes: &sixty})
		require.NoError(t, err)
		page = br.get("/")
		require.Contains(t, page.body, `<span class="age warn">47 min</span>`)
		require.Contains(t, page.body, `<span class="age ok">20 min</span>`)
	})
}

func TestWorklistPages(t *testing.T) {
	t.Parallel()
	b := setup(t, storetest.SQLite)
	b.user(t, "asha", callout.RoleStaff)
	for i := range 30 {
		b.f.Create(t, order(fmt.Sprintf("ORD-%02d", i), "Patient", report("K", "Potassium", "Biochemistry", 100-i)))
	}
	br := b.signedIn(t, "asha")
	page := br.get("/")
	require.Contains(t, page.body, `Pending <span class="count">30</span>`)
	require.Contains(t, page.body, "ORD-00")
	require.Contains(t, page.body, "ORD-24")
	require.NotContains(t, page.body, "ORD-25")
	require.Contains(t, page.body, "Page 1 of 2")
	require.Contains(t, page.body, `<a href="/?page=2&amp;tab=pending" rel="next">`)
	page = br.get("/?page=2&tab=pending")
	require.Contains(t, page.body, "ORD-25")
	require.Contains(t, page.body, "ORD-29")
	require.NotContains(t, page.body, "ORD-24")
	require.Contains(t, page.body, "Page 2 of 2")
	page = br.get("/?page=9")
	require.Contains(t, page.body, `Pending <span class="count">30</span>`, "past the end still counts")
}

func TestExport(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		ctx := context.Background()
		a := b.f.Create(t, order("ORD-A", "=HYPERLINK(\"x\")", report("ELEC", "Serum Electrolytes", "Biochemistry", 25),
			report("GLU", "Glucose", "Biochemistry", 20)))
		b.f.Create(t, order("ORD-C", "Aiko Tanaka", report("INR", "Coagulation", "Haematology", 10)))
		_, err := b.f.Svc.Callout(ctx, b.f.Staff, a.ID, storetest.Done(a.Reports[0].ID), nil)
		require.NoError(t, err)
		_, err = b.f.Svc.Callout(ctx, b.f.Staff, a.ID, storetest.Attempt(a.Reports[1].ID), nil)
		require.NoError(t, err)
		br := b.signedIn(t, "asha")

		res := br.get("/export.csv?tab=done")
		require.Equal(t, 200, res.status)
		require.Equal(t, "text/csv; charset=utf-8", res.header.Get("Content-Type"))
		require.Contains(t, res.header.Get("Content-Disposition"), `attachment; filename="callout-done-`)
		rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(res.body, "\ufeff"))).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 2)
		require.Equal(t, []string{"Order ID", "Patient", "Test", "Department", "Critical values", "Resulted at", "Callout status",
			"Called by", "Called at", "To whom", "How", "Read back", "Delay from result to callout (minutes)"}, rows[0])
		done := rows[1]
		require.Equal(t, "ORD-A", done[0])
		require.Equal(t, `'=HYPERLINK("x")`, done[1], "a formula from outside stays text")
		require.Equal(t, "Serum Electrolytes", done[2])
		require.Equal(t, "Potassium 7.1 mmol/L HH (critical <2.5 or >6.5)", done[4])
		require.Equal(t, "Done", done[6])
		require.Equal(t, "Asha", done[7])
		require.NotEmpty(t, done[8])
		require.Equal(t, "Referral — reached Dr. Rao", done[9])
		require.Equal(t, "Phone, Email", done[10])
		require.Equal(t, "Yes", done[11])
		require.Equal(t, "25", done[12])

		// The Pending tab: the attempt (with who and how) and the untouched report.
		res = br.get("/export.csv?tab=pending")
		rows, err = csv.NewReader(strings.NewReader(strings.TrimPrefix(res.body, "\ufeff"))).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 3)
		require.Equal(t, []string{"ORD-A", "Glucose", "Attempted", "Asha", "Referral", "Phone", ""},
			[]string{rows[1][0], rows[1][2], rows[1][6], rows[1][7], rows[1][9], rows[1][10], rows[1][12]})
		require.Equal(t, []string{"ORD-C", "Coagulation", "Pending", "", "", ""},
			[]string{rows[2][0], rows[2][2], rows[2][6], rows[2][7], rows[2][8], rows[2][12]})

		// The search applies too.
		res = br.get("/export.csv?tab=pending&q=tanaka")
		rows, _ = csv.NewReader(strings.NewReader(strings.TrimPrefix(res.body, "\ufeff"))).ReadAll()
		require.Len(t, rows, 2)
		require.Equal(t, "ORD-C", rows[1][0])

		res = br.get("/export.xlsx?tab=done")
		require.Equal(t, 200, res.status)
		require.Equal(t, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", res.header.Get("Content-Type"))
		x, err := excelize.OpenReader(bytes.NewReader([]byte(res.body)))
		require.NoError(t, err)
		defer x.Close()
		xrows, err := x.GetRows("Callouts")
		require.NoError(t, err)
		require.Len(t, xrows, 2)
		require.Equal(t, "Order ID", xrows[0][0])
		require.Equal(t, []string{"ORD-A", `=HYPERLINK("x")`, "Serum Electrolytes", "Biochemistry", "Potassium 7.1 mmol/L HH (critical <2.5 or >6.5)"}, xrows[1][:5])
		require.Equal(t, []string{"Done", "Asha"}, xrows[1][6:8])
		f, err := x.GetCellFormula("Callouts", "B2")
		require.NoError(t, err)
		require.Empty(t, f, "text, never a formula")
		delay, err := x.GetCellValue("Callouts", "M2", excelize.Options{RawCellValue: true})
		require.NoError(t, err)
		require.Equal(t, "25", delay)
		typ, err := x.GetCellType("Callouts", "M2")
		require.NoError(t, err)
		require.NotEqual(t, excelize.CellTypeSharedString, typ, "the delay is a number")

		require.Equal(t, http.StatusSeeOther, b.browser(t).get("/export.csv").status, "signed-in users only")
	})
}

func TestSettings(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		b.user(t, "ravi", callout.RoleAdmin)
		b.f.Create(t, order("ORD-P", "Maria Müller", report("K", "Serum Electrolytes", "Biochemistry", 5)))

		staff := b.signedIn(t, "asha")
		require.NotContains(t, staff.get("/").body, `href="/settings"`)
		res := staff.get("/settings")
		require.Equal(t, http.StatusForbidden, res.status)
		require.Contains(t, res.body, "Only a lab admin")
		before := storetest.Dump(t, b.f.Store.DB)
		res = staff.post("/settings", url.Values{"csrf": {field(t, csrfField, staff.get("/").body)}, "name": {"Hijacked"}, "target_minutes": {"5"}})
		require.Equal(t, http.StatusForbidden, res.status)
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB))

		admin := b.signedIn(t, "ravi")
		page := admin.get("/settings")
		require.Equal(t, 200, page.status)
		require.Contains(t, page.body, `value="North Lab"`)
		require.Contains(t, page.body, "Ask for a read-back of every value.</textarea>")
		require.Contains(t, page.body, `name="preview_order" value="ORD-P"`)
		require.Contains(t, page.body, "The lab uses the built-in template")
		csrf := field(t, csrfField, page.body)

		res = admin.post("/settings", url.Values{"csrf": {csrf}, "name": {"North Lab"}, "target_minutes": {"0"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.status)
		require.Contains(t, res.body, "Settings not saved: The target time in minutes must be between 1 and 1440.")

		res = admin.post("/settings", url.Values{"csrf": {csrf}, "name": {"North Lab 2"}, "target_minutes": {"45"},
			"additional_instruction": {"Page the on-call doctor\r\nafter 15 minutes."}, "mandatory_comments": {"on"}, "hide_patient_name": {"on"}})
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		set, err := b.f.Svc.Settings(context.Background(), b.f.Admin)
		require.NoError(t, err)
		require.Equal(t, callout.Settings{Name: "North Lab 2", TargetMinutes: 45, AdditionalInstruction: "Page the on-call doctor\nafter 15 minutes.",
			MandatoryComments: true, HidePatientName: true, RequireNotifiedPerson: true, Targets: map[string]int{},
			CompliancePercent: 100, ActionPercent: 95, Timezone: "UTC"}, set, "the form keeps what it does not show")
		require.Contains(t, admin.get(res.location).body, "Settings saved.")

		// The preview renders a real order of the lab with the unsaved template.
		res = admin.post("/settings/preview", url.Values{"csrf": {csrf}, "preview_order": {"ORD-P"},
			"template": {"<p>{{ lab_name }}: {% for r in reports %}{{ r.test_name }}{% for p in r.parameters %} {{ p.name }} {{ p.value }}{% endfor %}{% endfor %}</p>"}})
		require.Equal(t, 200, res.status, res.body)
		require.Contains(t, res.header.Get("Content-Security-Policy"), "sandbox")
		require.Contains(t, res.body, "North Lab 2: Serum Electrolytes Potassium 7.1")
		res = admin.post("/settings/preview", url.Values{"csrf": {csrf}, "template": {"{% if %}"}})
		require.Contains(t, res.body, "The template does not parse")
		res = admin.get("/settings/preview")
		require.Contains(t, res.body, "7.1", "the built-in template, with the oldest pending order")
		require.Contains(t, res.body, "ORD-P", "hide_patient_name: the Order ID stands in for the name")
		require.NotContains(t, res.body, "Müller")

		// Saving a broken template is refused with the reason; a good one is kept.
		res = admin.post("/settings/template", url.Values{"csrf": {csrf}, "action": {"save"}, "template": {"<p>{% if %}</p>"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.status)
		require.Contains(t, res.body, "Template not saved: The template does not parse")
		require.Contains(t, res.body, "&lt;p&gt;{% if %}&lt;/p&gt;</textarea>", "the text typed is kept")
		good := "<p>Critical results of {{ lab_name }}</p>"
		res = admin.post("/settings/template", url.Values{"csrf": {csrf}, "action": {"save"}, "template": {good}})
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		src, err := b.f.Svc.EmailTemplate(context.Background(), b.f.Admin)
		require.NoError(t, err)
		require.Equal(t, good, src)
		require.Contains(t, admin.get("/settings").body, "The lab uses its own template.")
		res = admin.post("/settings/template", url.Values{"csrf": {csrf}, "action": {"builtin"}, "template": {good}})
		require.Equal(t, http.StatusSeeOther, res.status)
		src, _ = b.f.Svc.EmailTemplate(context.Background(), b.f.Admin)
		require.Empty(t, src)
	})
}

func TestStatic(t *testing.T) {
	t.Parallel()
	b := setup(t, storetest.SQLite)
	br := b.browser(t)
	for _, name := range []string{"style.css", "app.js"} {
		res := br.get("/static/" + name)
		require.Equal(t, 200, res.status, name)
		require.Contains(t, res.header.Get("Cache-Control"), "max-age")
	}
	require.Equal(t, http.StatusNotFound, br.get("/static/").status)
	require.Equal(t, http.StatusNotFound, br.get("/static/nope.js").status)
	page := br.get("/signin")
	require.Contains(t, page.body, `<label for="name">User name</label>`)
	require.Contains(t, page.body, `<label for="password">Password</label>`)
	require.NotContains(t, page.body, "http://", "no asset from elsewhere")
	require.NotContains(t, page.body, "https://")
}

// indexStub is a search index that finds one order for one word.
type indexStub struct {
	word string
	bill callout.OrderCreated
}

func (s indexStub) SearchWorklist(_ context.Context, _ int64, f callout.WorklistFilter) ([]callout.WorklistItem, error) {
	if !strings.EqualFold(f.Text, s.word) || f.After != nil {
		return nil, nil
	}
	// The index may be behind the database: it reports the state as it was.
	return []callout.WorklistItem{{ID: s.bill.Reports[0].ID, BillID: s.bill.ID, State: callout.StatePending}}, nil
}

func TestSearchGoesThroughTheIndex(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		b.f.Create(t, order("ORD-1", "Maria Müller", report("K", "Potassium", "Biochemistry", 5)))
		found := b.f.Create(t, order("ORD-2", "Peter Novak", report("K", "Potassium", "Biochemistry", 5)))
		_, err := b.f.Svc.Callout(context.Background(), b.f.Staff, found.ID, storetest.Done(found.Reports[0].ID), nil)
		require.NoError(t, err)
		b.f.Svc.Search = indexStub{word: "muller", bill: found} // what the index says, on purpose not what LIKE would
		br := b.signedIn(t, "asha")

		page := br.get("/?q=muller")
		require.NotContains(t, page.body, "ORD-1", "LIKE is not used when there is an index")
		require.Contains(t, page.body, `Pending <span class="count">0</span>`)
		require.Contains(t, page.body, `Done <span class="count">1</span>`, "the state comes from the database, not the index")
		require.Contains(t, br.get("/?tab=done&q=muller").body, "ORD-2")
		require.Contains(t, br.get("/export.csv?tab=done&q=muller").body, "ORD-2")
		require.NotContains(t, br.get("/?q=nothing").body, "ORD-")
		require.Contains(t, br.get("/").body, "ORD-1", "no text: no index")
	})
}
