package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
	"callout/internal/web"
)

// clock is a test clock the service reads; tests move it instead of sleeping.
type clock struct{ ns atomic.Int64 }

func newClock(b *testBundle) *clock {
	c := &clock{}
	c.ns.Store(callout.Now().UnixNano())
	b.f.Svc.Now = c.Now
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC().Truncate(time.Microsecond) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (br *browser) signInNext(name, pw, next string) response {
	br.t.Helper()
	page := br.get("/signin")
	require.Equal(br.t, 200, page.status)
	return br.post("/signin", url.Values{"csrf": {field(br.t, csrfField, page.body)}, "name": {name}, "password": {pw}, "next": {next}})
}

// openRedirects are values of next that a browser would follow off the
// site, or that are not plainly a path of this site.
var openRedirects = []string{
	"/\t/evil.example", // the reported one: browsers drop the tab and see //evil.example
	"/\n/evil.example",
	"/\r\n/evil.example",
	"/ /evil.example",
	"/\x00/evil.example",
	"/\x7f/evil.example",
	"//evil.example",
	"///evil.example",
	"/\\evil.example",
	"/\\/evil.example",
	"\\\\evil.example",
	"\\/evil.example",
	"/%2F/evil.example", // encoded variants: a proxy or framework may decode them
	"/%2f%2fevil.example",
	"/%5Cevil.example",
	"/%09/evil.example",
	"/%0a/evil.example",
	"%2F%2Fevil.example",
	"https://evil.example/",
	"http:evil.example",
	"HTTPS://evil.example",
	"javascript:alert(1)",
	"JaVaScRiPt:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	"evil.example",
	" /bills/1",
	"\t/bills/1",
	"/bills/1 ",
	"/bills/\u3000/x",
	"/\u2028/evil.example",
	"",
	"bills/1",
	"../evil.example",
	"/signin?next=//evil.example",
}

func TestSignInRefusesOpenRedirects(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		b.user(t, "asha", callout.RoleStaff)

		// The reported case, as a browser sends it, on the form and when
		// already signed in.
		br := b.browser(t)
		res := br.signInNext("asha", password, "/\t/evil.example")
		require.Equal(t, http.StatusSeeOther, res.status)
		require.Equal(t, "/", res.location)
		res = br.get("/signin?next=%2F%09%2Fevil.example")
		require.Equal(t, http.StatusSeeOther, res.status)
		require.Equal(t, "/", res.location)

		for _, next := range openRedirects {
			res := br.get("/signin?next=" + url.QueryEscape(next))
			require.Equal(t, "/", res.location, "GET next=%q", next)
		}
		// The form carries next through; a post of it is checked again.
		for _, next := range openRedirects[:6] {
			res := b.browser(t).signInNext("asha", password, next)
			require.Equal(t, "/", res.location, "POST next=%q", next)
		}

		// Paths of this site come back as they were.
		for _, next := range []string{"/bills/7", "/bills/7?x=1", "/?tab=done&q=M%C3%BCller", "/settings"} {
			res := br.get("/signin?next=" + url.QueryEscape(next))
			require.Equal(t, next, res.location, "GET next=%q", next)
		}
		res = b.browser(t).signInNext("asha", password, "/bills/7?x=1")
		require.Equal(t, "/bills/7?x=1", res.location)
	})
}

func TestSignInThrottlesUserName(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		clk := newClock(b)
		b.user(t, "asha", callout.RoleStaff)
		br := b.browser(t)

		for i := range 5 {
			res := br.signIn("asha", "wrong password "+strconv.Itoa(i))
			require.Equal(t, http.StatusUnauthorized, res.status, "failure %d", i+1)
		}
		// After five failures even the right password is refused unchecked.
		res := br.signIn("asha", password)
		require.Equal(t, http.StatusTooManyRequests, res.status, res.body)
		require.Equal(t, "1", res.header.Get("Retry-After"))
		require.Contains(t, res.body, "Too many failed sign-ins")
		require.Zero(t, count(t, b, "web_sessions"))

		clk.Advance(time.Second)
		res = br.signIn("asha", password)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, 1, count(t, b, "web_sessions"))
	})
}

// from makes every request of the browser say, through X-Forwarded-For, that
// it comes from addr (believed only when the server trusts 127.0.0.1).
func (br *browser) from(addr string) *browser {
	br.c.Transport = forwardedFor{addr}
	return br
}

type forwardedFor struct{ addr string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return http.DefaultTransport.RoundTrip(r)
}

func trustLoopback(c *web.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

func TestSignInWaitDoubles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		clk := newClock(b)
		b.user(t, "asha", callout.RoleStaff)
		br := b.browser(t)

		for i := range 4 {
			require.Equal(t, http.StatusUnauthorized, br.signIn("asha", "wrong password "+strconv.Itoa(i)).status)
		}
		// Each failure after the fourth makes the next wait twice as long,
		// up to five minutes.
		for _, wait := range []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300} {
			require.Equal(t, http.StatusUnauthorized, br.signIn("asha", "wrong again").status)
			res := br.signIn("asha", password)
			require.Equal(t, http.StatusTooManyRequests, res.status)
			require.Equal(t, strconv.Itoa(wait), res.header.Get("Retry-After"))
			clk.Advance(time.Duration(wait)*time.Second - time.Millisecond)
			res = br.signIn("asha", password)
			require.Equal(t, http.StatusTooManyRequests, res.status, "a millisecond early")
			require.Equal(t, "1", res.header.Get("Retry-After"), "rounded up")
			clk.Advance(time.Millisecond)
		}
		require.Zero(t, count(t, b, "web_sessions"))

		// A success resets the count: four failures pass again unthrottled.
		require.Equal(t, http.StatusSeeOther, br.signIn("asha", password).status)
		require.Zero(t, count(t, b, "signin_throttle"))
		br = b.browser(t)
		for range 4 {
			require.Equal(t, http.StatusUnauthorized, br.signIn("asha", "wrong password").status)
		}
		require.Equal(t, http.StatusSeeOther, br.signIn("asha", password).status)

		// A run of failures is forgotten after a day without one.
		br = b.browser(t)
		for range 5 {
			require.Equal(t, http.StatusUnauthorized, br.signIn("asha", "wrong password").status)
		}
		require.Equal(t, http.StatusTooManyRequests, br.signIn("asha", password).status)
		clk.Advance(callout.SignInForgetAfter + time.Second)
		require.Equal(t, http.StatusUnauthorized, br.signIn("asha", "wrong password").status)
		require.Equal(t, http.StatusSeeOther, br.signIn("asha", password).status, "one failure, not six")
	})
}

func TestSignInThrottlesAddress(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e, trustLoopback)
		newClock(b)
		b.user(t, "asha", callout.RoleStaff)
		b.user(t, "ravi", callout.RoleAdmin)

		// Five failures from one address, each for another name…
		attacker := b.browser(t).from("203.0.113.9")
		for i := range 5 {
			require.Equal(t, http.StatusUnauthorized, attacker.signIn("user"+strconv.Itoa(i), password).status)
		}
		// …refuse that address for any name, even with the right password,
		res := attacker.signIn("ravi", password)
		require.Equal(t, http.StatusTooManyRequests, res.status)
		require.Equal(t, "1", res.header.Get("Retry-After"))
		// while the names it tried and other addresses are not held up.
		require.Equal(t, http.StatusSeeOther, b.browser(t).from("198.51.100.7").signIn("ravi", password).status)
		require.Equal(t, http.StatusUnauthorized, b.browser(t).from("198.51.100.8").signIn("user1", "x").status)

		// One IPv6 host usually holds a whole /64: it is one address here.
		for i := range 5 {
			require.Equal(t, http.StatusUnauthorized, b.browser(t).from("2001:db8:5:6::"+strconv.Itoa(i+1)).signIn("v6user", "x").status)
		}
		require.Equal(t, http.StatusTooManyRequests, b.browser(t).from("2001:db8:5:6:ffff::1").signIn("asha", password).status)
		require.Equal(t, http.StatusSeeOther, b.browser(t).from("2001:db8:5:7::1").signIn("asha", password).status)
	})
}

func TestSignInIgnoresForwardedForByDefault(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e) // no trusted proxies
		newClock(b)
		b.user(t, "asha", callout.RoleStaff)
		// An attacker cannot dodge the address count with a forged header…
		for i := range 5 {
			res := b.browser(t).from("203.0.113."+strconv.Itoa(i)).signIn("user"+strconv.Itoa(i), "x")
			require.Equal(t, http.StatusUnauthorized, res.status)
		}
		require.Equal(t, http.StatusTooManyRequests, b.browser(t).from("198.51.100.1").signIn("asha", password).status)
		// …and what is counted is the connection's address.
		var addr string
		require.NoError(t, b.f.Store.DB.QueryRow(`SELECT value FROM signin_throttle WHERE kind = 'address'`).Scan(&addr))
		require.Equal(t, "127.0.0.1", addr)
	})
}

func TestSignInAudit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e, trustLoopback)
		clk := newClock(b)
		b.user(t, "asha", callout.RoleStaff)
		ctx := context.Background()
		other := b.f.AddLab(t, callout.Settings{Name: "South Lab"})

		require.Equal(t, http.StatusUnauthorized, b.browser(t).from("203.0.113.9").signIn("asha", "wrong password").status)
		require.Equal(t, http.StatusUnauthorized, b.browser(t).from("2001:db8::9").signIn("nobody", "wrong password").status)
		// Names no user can have (a NUL byte that PostgreSQL cannot store,
		// a huge one) are bad input: answered like any wrong name, at once,
		// changing nothing.
		before := storetest.Dump(t, b.f.Store.DB)
		for _, name := range []string{"ev\x00il", strings.Repeat("ä", 5000), "", "asha rao", "asha\u202e"} {
			res := b.browser(t).from("203.0.113.10").signIn(name, "x")
			require.Equal(t, http.StatusUnauthorized, res.status)
			require.Contains(t, res.body, "The user name or password is wrong.")
		}
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB))

		rows, err := b.f.Store.DB.Query(`SELECT created_at, user_name, address, COALESCE(lab_id, 0), reason FROM signin_failures ORDER BY id`)
		require.NoError(t, err)
		type entry struct {
			name, addr, reason string
			lab                int64
		}
		var got []entry
		for rows.Next() {
			var at time.Time
			var en entry
			require.NoError(t, rows.Scan(&at, &en.name, &en.addr, &en.lab, &en.reason))
			require.Equal(t, clk.Now(), at.UTC())
			got = append(got, en)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []entry{
			{"asha", "203.0.113.9", callout.SignInWrongPassword, b.f.Lab},
			{"nobody", "2001:db8::9", callout.SignInUnknownUser, 0},
		}, got)

		// The failure of one of the lab's users is in its activity log, for
		// those who see the whole lab; not for a user limited to departments,
		// and not in another lab's.
		acts, err := b.f.Svc.Activity(ctx, b.f.Admin, callout.ActivityFilter{})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		require.Equal(t, callout.CategorySignIn, acts[0].CategoryID)
		require.Nil(t, acts[0].BillID)
		require.Equal(t, "asha", acts[0].User)
		require.Equal(t, "Sign-in of asha refused (wrong password) from 203.0.113.9", acts[0].Message)
		require.JSONEq(t, `{"address":"203.0.113.9","reason":"wrong_password"}`, string(acts[0].Data))
		limited := b.f.Staff
		limited.Departments = []string{"Haematology"}
		acts, err = b.f.Svc.Activity(ctx, limited, callout.ActivityFilter{})
		require.NoError(t, err)
		require.Empty(t, acts)
		acts, err = b.f.Svc.Activity(ctx, callout.Principal{LabID: other, User: "x", Role: callout.RoleAdmin}, callout.ActivityFilter{})
		require.NoError(t, err)
		require.Empty(t, acts)

		// A throttled attempt is refused before any check and writes nothing.
		for range 4 {
			require.Equal(t, http.StatusUnauthorized, b.browser(t).from("198.51.100.1").signIn("asha", "wrong password").status)
		}
		before = storetest.Dump(t, b.f.Store.DB)
		res := b.browser(t).from("198.51.100.2").signIn("asha", password)
		require.Equal(t, http.StatusTooManyRequests, res.status)
		require.Equal(t, before, storetest.Dump(t, b.f.Store.DB))
	})
}

// TestSignInThrottleSharedByProcesses serves one database from two
// handlers, each with its own store, as two `callout serve` processes
// would: failures counted by one refuse sign-ins at the other.
func TestSignInThrottleSharedByProcesses(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		url := e.URL(t)
		serve := func() (*httptest.Server, *storetest.Fixture) {
			st := storetest.OpenURL(t, url)
			f := &storetest.Fixture{Store: st, Svc: callout.NewService(st, nil)}
			srv := httptest.NewServer(web.New(web.Config{Service: f.Svc, Accounts: st, Worklist: st, Location: time.UTC}))
			t.Cleanup(srv.Close)
			return srv, f
		}
		one, f := serve()
		two, _ := serve()
		f.Lab = f.AddLab(t, callout.Settings{Name: "North Lab"})
		b := &testBundle{f: f, srv: one}
		b.user(t, "asha", callout.RoleStaff)

		for range 5 {
			require.Equal(t, http.StatusUnauthorized, b.browser(t).signIn("asha", "wrong password").status)
		}
		b.srv = two
		res := b.browser(t).signIn("asha", password)
		require.Equal(t, http.StatusTooManyRequests, res.status)
		require.Equal(t, "1", res.header.Get("Retry-After"))
	})
}
