package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"callout/internal/callout"
	"callout/internal/storetest"
	"callout/internal/web"
)

func TestMain(m *testing.M) {
	// Sign-ins in tests need not be slow; the cost is checked on its own.
	callout.PasswordCost = bcrypt.MinCost
	os.Exit(m.Run())
}

const password = "correct horse battery"

// testBundle is a lab with the web pages served over it.
type testBundle struct {
	f   *storetest.Fixture
	srv *httptest.Server
}

func setup(t *testing.T, e storetest.Engine, cfg ...func(*web.Config)) *testBundle {
	t.Helper()
	f := storetest.NewFixture(t, e, callout.Settings{Name: "North Lab", AdditionalInstruction: "Ask for a read-back of every value."})
	c := web.Config{Service: f.Svc, Accounts: f.Store, Worklist: f.Store, Location: time.UTC}
	for _, fn := range cfg {
		fn(&c)
	}
	srv := httptest.NewServer(web.New(c))
	t.Cleanup(srv.Close)
	return &testBundle{f: f, srv: srv}
}

// user creates a user of the fixture's lab.
func (b *testBundle) user(t *testing.T, name string, role callout.Role, departments ...string) {
	t.Helper()
	u, err := callout.NewUser(b.f.Lab, name, password, role, departments, callout.Now())
	require.NoError(t, err)
	_, err = b.f.Store.CreateUser(context.Background(), u)
	require.NoError(t, err)
}

// order creates an order with n critical Biochemistry reports plus extra.
func (b *testBundle) order(t *testing.T, id string, n int, extra ...callout.NewReport) callout.OrderCreated {
	t.Helper()
	return b.f.Create(t, storetest.Order(id, n, extra...))
}

// browser is one person's browser: a cookie jar that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (b *testBundle) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: b.srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (br *browser) do(req *http.Request) response {
	br.t.Helper()
	res, err := br.c.Do(req)
	require.NoError(br.t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header}
}

func (br *browser) get(path string) response {
	br.t.Helper()
	req, err := http.NewRequest("GET", br.base+path, nil)
	require.NoError(br.t, err)
	return br.do(req)
}

func (br *browser) post(path string, form url.Values) response {
	br.t.Helper()
	req, err := http.NewRequest("POST", br.base+path, strings.NewReader(form.Encode()))
	require.NoError(br.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br.do(req)
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	idemField = regexp.MustCompile(`name="idem" value="([^"]+)"`)
)

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	require.NotNil(t, m, "no %s in %s", re, body)
	return m[1]
}

// signIn signs in through the form and returns the page's CSRF token.
func (br *browser) signIn(name, pw string) response {
	br.t.Helper()
	page := br.get("/signin")
	require.Equal(br.t, 200, page.status)
	return br.post("/signin", url.Values{"csrf": {field(br.t, csrfField, page.body)}, "name": {name}, "password": {pw}, "next": {"/"}})
}

func (b *testBundle) signedIn(t *testing.T, name string) *browser {
	t.Helper()
	br := b.browser(t)
	res := br.signIn(name, password)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	return br
}

// calloutForm is the order page's form as a browser would send it.
func (br *browser) calloutForm(billID int64) url.Values {
	br.t.Helper()
	page := br.get(fmt.Sprintf("/bills/%d", billID))
	require.Equal(br.t, 200, page.status, page.body)
	return url.Values{"csrf": {field(br.t, csrfField, page.body)}, "idem": {field(br.t, idemField, page.body)}}
}

func ids(vs ...int64) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

func ids64(rs []callout.CreatedReport) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func count(t *testing.T, b *testBundle, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.f.Store.DB.QueryRow("SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

func TestSignIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		br := b.browser(t)

		res := br.get("/bills/1?x=1")
		require.Equal(t, http.StatusSeeOther, res.status)
		require.Equal(t, "/signin?next=%2Fbills%2F1%3Fx%3D1", res.location, "a page sends strangers to sign in, and back afterwards")
		require.Equal(t, http.StatusUnauthorized, br.get("/worklist/fragment").status)

		for _, bad := range [][2]string{{"asha", "wrong password!!"}, {"nobody", password}, {"", ""}} {
			res = br.signIn(bad[0], bad[1])
			require.Equal(t, http.StatusUnauthorized, res.status)
			require.Contains(t, res.body, "The user name or password is wrong.")
			require.Zero(t, count(t, b, "web_sessions"))
		}

		// The sign-in form itself is protected: a post without its token is refused.
		res = br.post("/signin", url.Values{"name": {"asha"}, "password": {password}})
		require.Equal(t, http.StatusForbidden, res.status)
		require.Zero(t, count(t, b, "web_sessions"))

		page := br.get("/signin?next=/bills/7")
		res = br.post("/signin", url.Values{"csrf": {field(t, csrfField, page.body)}, "name": {"asha"}, "password": {password}, "next": {"/bills/7"}})
		require.Equal(t, http.StatusSeeOther, res.status)
		require.Equal(t, "/bills/7", res.location)
		var cookie string
		for _, c := range res.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "callout_session=") {
				cookie = c
			}
		}
		require.Contains(t, cookie, "HttpOnly")
		require.Contains(t, cookie, "SameSite=Lax")
		require.Contains(t, cookie, "Path=/")
		require.NotContains(t, cookie, "Secure", "not configured")
		token := strings.TrimPrefix(strings.Split(cookie, ";")[0], "callout_session=")
		var stored string
		require.NoError(t, b.f.Store.DB.QueryRow("SELECT token_hash FROM web_sessions").Scan(&stored))
		require.Equal(t, callout.HashToken(token), stored, "only the cookie's hash is stored")

		res = br.get("/")
		require.Equal(t, 200, res.status)
		require.Contains(t, res.body, "<h1>Worklist</h1>")
		require.Contains(t, res.body, "North Lab")
		require.Equal(t, "no-store", res.header.Get("Cache-Control"))
		require.Contains(t, res.header.Get("Content-Security-Policy"), "script-src 'self'")

		// Open redirects are refused.
		page = b.browser(t).get("/signin")
		br2 := b.browser(t)
		page = br2.get("/signin")
		res = br2.post("/signin", url.Values{"csrf": {field(t, csrfField, page.body)}, "name": {"asha"}, "password": {password}, "next": {"//evil.example/"}})
		require.Equal(t, "/", res.location)

		// Sign out ends the session on the server, not only in the browser.
		csrf := field(t, csrfField, br.get("/").body)
		res = br.post("/signout", url.Values{"csrf": {csrf}})
		require.Equal(t, http.StatusSeeOther, res.status)
		require.Equal(t, http.StatusSeeOther, br.get("/").status)
		require.Equal(t, 1, count(t, b, "web_sessions"), "only the second browser's session is left")
	})
}

func TestSecureCookie(t *testing.T) {
	t.Parallel()
	b := setup(t, storetest.SQLite, func(c *web.Config) { c.SecureCookies = true })
	b.user(t, "asha", callout.RoleStaff)
	res := b.browser(t).signIn("asha", password)
	require.Contains(t, strings.Join(res.header.Values("Set-Cookie"), "\n"), "Secure")
}

func TestCSRF(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "ravi", callout.RoleAdmin)
		o := b.order(t, "ORD-1", 1)
		br := b.signedIn(t, "ravi")
		form := br.calloutForm(o.ID)
		form.Set("action", "done")
		form.Set("is_referral", "on")
		form["report"] = ids(o.Reports[0].ID)
		form.Set("notified_person", "Dr. Rao, referring physician")
		before := storetest.Dump(t, b.f.Store.DB)

		for name, tamper := range map[string]func(url.Values){
			"no token":    func(v url.Values) { v.Del("csrf") },
			"wrong token": func(v url.Values) { v.Set("csrf", "x"+v.Get("csrf")) },
		} {
			v := url.Values{}
			for k, vs := range form {
				v[k] = vs
			}
			tamper(v)
			for _, path := range []string{fmt.Sprintf("/bills/%d/callouts", o.ID), "/settings", "/settings/template", "/signout"} {
				res := br.post(path, v)
				require.Equal(t, http.StatusForbidden, res.status, "%s %s", name, path)
				require.Contains(t, res.body, "did not come from this site", name)
			}
		}
		// Another site's page posting with the user's cookies is refused
		// before the token is even looked at.
		req, _ := http.NewRequest("POST", b.srv.URL+fmt.Sprintf("/bills/%d/callouts", o.ID), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, br.do(req).status)
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB), "a refused form changes nothing")

		res := br.post(fmt.Sprintf("/bills/%d/callouts", o.ID), form)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, callout.StateDone, b.f.States(t, o.ID)[o.Reports[0].ID])
	})
}

func TestCallout(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		o := b.order(t, "ORD-7", 2, callout.NewReport{TestID: "TSH", TestName: "Thyroid panel", Department: "Biochemistry",
			Parameters: []callout.Parameter{{Name: "TSH", Value: "2.1", Unit: "mIU/L"}}})
		r1, r2 := o.Reports[0].ID, o.Reports[1].ID
		br := b.signedIn(t, "asha")
		path := fmt.Sprintf("/bills/%d", o.ID)

		page := br.get(path)
		require.Equal(t, 200, page.status)
		for _, want := range []string{
			"Maria Müller", `<a href="tel:&#43;15550101">&#43;1 555 0101</a>`, "rao@clinic.example", "&#43;1 555 0199",
			"Ask for a read-back of every value.",
			fmt.Sprintf(`id="report-%d" checked`, r1), fmt.Sprintf(`id="report-%d" checked`, r2),
			`<tr class="critical">`, "&lt;2.5 or &gt;6.5", "HH",
			"Other tests of this order (1)", "Thyroid panel",
			`name="is_referral" checked`, "Mark callout done", "Save attempt",
		} {
			require.Contains(t, page.body, want)
		}

		// An attempt on the first report only; the page restores it.
		form := br.calloutForm(o.ID)
		form["report"] = ids(r1)
		form.Set("action", "attempt")
		form.Set("is_organization", "on")
		form.Set("send_fax", "on")
		form.Set("notified_person", "Nurse Joy <ward 3>")
		form.Set("comment", "No answer from Dr. Rao")
		res := br.post(path+"/callouts", form)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, path+"?saved=attempt", res.location)
		require.Equal(t, map[int64]callout.State{r1: callout.StateAttempted, r2: callout.StatePending, o.Reports[2].ID: callout.StateNormal}, b.f.States(t, o.ID))

		page = br.get(res.location)
		require.Contains(t, page.body, "Attempt saved.")
		require.Contains(t, page.body, "Attempt saved by asha")
		require.Contains(t, page.body, fmt.Sprintf(`id="report-%d" checked`, r1))
		require.Contains(t, page.body, fmt.Sprintf(`id="report-%d">`, r2), "the draft's selection, not the pending default")
		require.Contains(t, page.body, `name="is_organization" checked`)
		require.Contains(t, page.body, `name="is_referral">`)
		require.Contains(t, page.body, `name="send_fax" checked`)
		require.Contains(t, page.body, `value="Nurse Joy &lt;ward 3&gt;"`, "escaped")
		require.Contains(t, page.body, "No answer from Dr. Rao</textarea>")
		require.Contains(t, page.body, "Callout Attempted by - asha")

		// A rule broken: the service's message, in the page, the form kept.
		before := storetest.Dump(t, b.f.Store.DB)
		form = br.calloutForm(o.ID)
		form["report"] = ids(r1, r2)
		form.Set("action", "done")
		form.Set("comment", "typed and kept")
		res = br.post(path+"/callouts", form)
		require.Equal(t, http.StatusUnprocessableEntity, res.status)
		require.Contains(t, res.body, "Not saved: Choose who was told: patient, referral or organization.")
		require.Contains(t, res.body, "typed and kept</textarea>")
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB))

		form = br.calloutForm(o.ID)
		form["report"] = ids(r1, r2)
		form.Set("action", "done")
		form.Set("is_referral", "on")
		form.Set("send_email", "on")
		form.Set("read_back", "on")
		form.Set("notified_person", "Dr. Rao")
		res = br.post(path+"/callouts", form)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, path+"?saved=done", res.location)
		require.Equal(t, callout.StateDone, b.f.States(t, o.ID)[r1])
		require.Equal(t, callout.StateDone, b.f.States(t, o.ID)[r2])

		page = br.get(res.location)
		require.Contains(t, page.body, "Callout marked done.")
		require.Contains(t, page.body, `<span class="badge queued">queued</span>`, "the email copy to the referral")
		require.Contains(t, page.body, "rao@clinic.example")
		hist := br.get(path + "/history")
		require.Equal(t, 200, hist.status)
		require.Contains(t, hist.body, `data-refresh-ms="2000"`, "a queued copy makes the history reload quickly")
		require.NotContains(t, hist.body, "<html")
		// The attempt log, numbered per report: the attempt the done
		// callout replaced is still there.
		for _, want := range []string{
			o.Reports[0].TestName + " — attempt 1 of 2, no answer, <time",
			o.Reports[0].TestName + " — done 2 of 2, read back confirmed, <time",
			o.Reports[1].TestName + " — done 1 of 1, read back confirmed, <time",
		} {
			require.Contains(t, hist.body, want)
		}

		// A failed copy offers Retry, which queues it again.
		ds, err := b.f.Svc.Deliveries(context.Background(), b.f.Staff, o.ID)
		require.NoError(t, err)
		require.Len(t, ds, 1)
		require.NoError(t, b.f.Store.MarkDeliveryFailed(context.Background(), ds[0].ID, 1, "550 5.1.1 User unknown", true, callout.Now()))
		page = br.get(path)
		require.Contains(t, page.body, "550 5.1.1 User unknown")
		require.Contains(t, page.body, fmt.Sprintf(`action="/deliveries/%d/retry"`, ds[0].ID))
		res = br.post(fmt.Sprintf("/deliveries/%d/retry", ds[0].ID), url.Values{"csrf": {field(t, csrfField, page.body)}, "bill": {fmt.Sprint(o.ID)}})
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		page = br.get(res.location)
		require.Contains(t, page.body, "The delivery was queued again.")
		require.Contains(t, page.body, `<span class="badge queued">queued</span>`)
		res = br.post(fmt.Sprintf("/deliveries/%d/retry", ds[0].ID), url.Values{"csrf": {field(t, csrfField, page.body)}, "bill": {fmt.Sprint(o.ID)}})
		require.Equal(t, http.StatusConflict, res.status)
		require.Contains(t, res.body, "only a failed delivery can be retried")

		require.Equal(t, http.StatusNotFound, br.get("/bills/999999").status)
		require.Equal(t, http.StatusNotFound, br.get("/bills/abc").status)
	})
}

func TestDoubleSubmit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		o := b.order(t, "ORD-2", 2)
		br := b.signedIn(t, "asha")
		form := br.calloutForm(o.ID)
		form["report"] = ids(o.Reports[0].ID, o.Reports[1].ID)
		form.Set("action", "done")
		form.Set("is_referral", "on")
		form.Set("notified_person", "Dr. Rao")
		path := fmt.Sprintf("/bills/%d/callouts", o.ID)

		// A double click: the same form twice at once, then once more.
		var wg sync.WaitGroup
		results := make([]response, 3)
		for i := range 2 {
			wg.Go(func() { results[i] = br.post(path, form) })
		}
		wg.Wait()
		results[2] = br.post(path, form)
		for _, res := range results {
			require.Equal(t, http.StatusSeeOther, res.status, res.body)
			require.Equal(t, fmt.Sprintf("/bills/%d?saved=done", o.ID), res.location, "every submit looks like the first")
		}
		require.Equal(t, 2, count(t, b, "critical_callouts"), "one callout: one record per report")
		require.Equal(t, 1, count(t, b, "activity_log"))

		// The same key with other choices is refused, not applied.
		form.Set("action", "attempt")
		res := br.post(path, form)
		require.Equal(t, http.StatusConflict, res.status)
		require.Contains(t, res.body, "already sent with other choices")
		require.Equal(t, 1, count(t, b, "activity_log"))

		// A new page load gives a new key: a second callout is possible on
		// purpose, once the page's reopen question is answered.
		form = br.calloutForm(o.ID)
		form["report"] = ids(o.Reports[0].ID)
		form.Set("action", "done")
		form.Set("is_referral", "on")
		form.Set("notified_person", "Dr. Rao")
		res = br.post(path, form)
		require.Equal(t, http.StatusConflict, res.status)
		require.Contains(t, res.body, "already called out as done")
		require.Equal(t, 1, count(t, b, "activity_log"), "nothing reopened without the confirmation")
		form.Set("reopen", strconv.FormatInt(o.Reports[0].ID, 10))
		require.Equal(t, http.StatusSeeOther, br.post(path, form).status)
		require.Equal(t, 2, count(t, b, "activity_log"))
	})
}

func TestDepartments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "hema", callout.RoleStaff, "Haematology")
		b.user(t, "all", callout.RoleStaff)
		bio := b.order(t, "ORD-BIO", 1)
		mixed := b.f.Create(t, callout.NewOrder{LabBillID: "ORD-MIX", Patient: callout.Contact{Name: "John Okafor"},
			Referral: callout.Contact{Name: "Dr. Park", Email: "park@example.org"},
			Reports: []callout.NewReport{
				{TestID: "CBC", TestName: "Complete Blood Count", Department: "Haematology", Parameters: []callout.Parameter{
					{Name: "Haemoglobin", Value: "5.9", Unit: "g/dL", Flag: "LL"}}},
				{TestID: "K", TestName: "Potassium", Department: "Biochemistry", Parameters: []callout.Parameter{storetest.Potassium("7.4")}},
			}})
		hema := b.signedIn(t, "hema")

		page := hema.get("/")
		require.Contains(t, page.body, "ORD-MIX")
		require.Contains(t, page.body, "Complete Blood Count")
		require.NotContains(t, page.body, "ORD-BIO")
		require.NotContains(t, page.body, "Electrolytes")
		require.NotContains(t, page.body, ">Potassium<")
		require.Contains(t, page.body, `Pending <span class="count">1</span>`)
		require.NotContains(t, hema.get("/?q=M%C3%BCller").body, "ORD-BIO", "search does not reach other departments")

		res := hema.get(fmt.Sprintf("/bills/%d", bio.ID))
		require.Equal(t, http.StatusNotFound, res.status, "an order with nothing of the user's departments does not exist for them")
		require.Contains(t, res.body, "There is no such order, or none of its results belong to your departments.")
		require.Equal(t, http.StatusNotFound, hema.get(fmt.Sprintf("/bills/%d/history", bio.ID)).status)
		page = hema.get(fmt.Sprintf("/bills/%d", mixed.ID))
		require.Equal(t, 200, page.status)
		require.Contains(t, page.body, "Complete Blood Count")
		require.NotContains(t, page.body, "7.4")

		// Calling out another department's report is refused, and changes nothing.
		before := storetest.Dump(t, b.f.Store.DB)
		form := hema.calloutForm(mixed.ID)
		form["report"] = ids(mixed.Reports[1].ID)
		form.Set("action", "done")
		form.Set("is_referral", "on")
		res = hema.post(fmt.Sprintf("/bills/%d/callouts", mixed.ID), form)
		require.Equal(t, http.StatusUnprocessableEntity, res.status)
		require.Contains(t, res.body, "is not part of order ORD-MIX")
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB))
		res = hema.post(fmt.Sprintf("/bills/%d/callouts", bio.ID), url.Values{"csrf": {field(t, csrfField, page.body)},
			"idem": {"abcdefghijklmnopqrstuvwxyz"}, "action": {"done"}, "is_referral": {"on"}, "report": ids(bio.Reports[0].ID)})
		require.Equal(t, http.StatusNotFound, res.status)
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB))

		// Someone without limits attempts both reports: hema sees the attempt
		// on her report, never the other department's test.
		// Its comment may speak of the other test: it is cut from the
		// history as from the activity entry.
		_, err := b.f.Svc.Callout(context.Background(), b.f.Staff, mixed.ID,
			callout.Request{LabReportIDs: ids64(mixed.Reports), IsDraft: true,
				Payload: callout.Payload{IsReferral: true, Comment: "K+ repeated, HIV screen pending"}}, nil)
		require.NoError(t, err)
		page = hema.get(fmt.Sprintf("/bills/%d", mixed.ID))
		require.Contains(t, page.body, "Callout attempted by Asha for tests including other departments&#39; (not shown)")
		require.Contains(t, page.body, `<p class="tests-line">Complete Blood Count</p>`)
		require.NotContains(t, page.body, "Potassium")
		require.NotContains(t, page.body, "HIV screen pending", "the record's comment, or the restored form's")
		require.Contains(t, page.body, "Comment not shown: this callout also concerned other departments&#39; reports.")
		require.NotContains(t, hema.get(fmt.Sprintf("/bills/%d/history", mixed.ID)).body, "HIV screen pending")
		require.Contains(t, b.signedIn(t, "all").get(fmt.Sprintf("/bills/%d", mixed.ID)).body, "HIV screen pending")

		csv := hema.get("/export.csv")
		require.Equal(t, 200, csv.status)
		require.Contains(t, csv.body, "Complete Blood Count")
		require.NotContains(t, csv.body, "ORD-BIO")
		require.NotContains(t, csv.body, "Potassium")

		// Someone without limits sees both.
		all := b.signedIn(t, "all")
		page = all.get("/")
		require.Contains(t, page.body, "ORD-BIO")
		require.Contains(t, page.body, "ORD-MIX")
		require.Contains(t, page.body, `Pending <span class="count">2</span>`)
	})
}

func TestSessionExpires(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		now := callout.Now()
		b.f.Svc.Now = func() time.Time { return now }
		br := b.signedIn(t, "asha")
		require.Equal(t, 200, br.get("/").status)
		now = now.Add(11*time.Hour + 59*time.Minute)
		require.Equal(t, 200, br.get("/").status, "a shift long")
		now = now.Add(2 * time.Minute)
		require.Equal(t, http.StatusSeeOther, br.get("/").status, "then sign in again")

		// A new sign-in sweeps the expired session away.
		b.signedIn(t, "asha")
		require.Equal(t, 1, count(t, b, "web_sessions"))
	})
}

// TestOrderPageShowsPatientIdentity: the order page names the patient's
// MRN and date of birth (issue 10 §2).
func TestOrderPageShowsPatientIdentity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)
		o := storetest.Order("ORD-ID", 1)
		o.Patient.MRN, o.Patient.BirthDate = "MRN-5521", "1985-12-02"
		c := b.f.Create(t, o)
		page := b.signedIn(t, "asha").get(fmt.Sprintf("/bills/%d", c.ID))
		require.Equal(t, 200, page.status)
		require.Contains(t, page.body, `<span class="mrn">MRN MRN-5521</span>`)
		require.Contains(t, page.body, `<span class="dob">Date of birth 1985-12-02</span>`)
	})
}
