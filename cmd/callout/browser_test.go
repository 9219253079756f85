package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
	"callout/internal/storetest"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browserLab creates a lab, an admin API token and web users with the CLI,
// as an operator would.
type browserLab struct {
	client
	lab, db string
}

func newBrowserLab(t *testing.T, db, url string) browserLab {
	t.Helper()
	code, out, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "North Lab", "--share-comment",
		"--additional-instruction", "Ask the receiver to read back every critical value.")
	require.Equal(t, 0, code, stderr)
	lab := strings.TrimSpace(out)
	code, tok, stderr := runCmd(t, "token", "create", "--db", db, "--lab", lab, "--user", "lis", "--role", "admin")
	require.Equal(t, 0, code, stderr)
	return browserLab{client: client{t: t, url: url, token: strings.TrimSpace(tok)}, lab: lab, db: db}
}

// user runs `callout user create … --password-stdin` with the password on stdin.
func (l browserLab) user(name, password string, flags ...string) {
	l.t.Helper()
	var out, errOut strings.Builder
	e := &env{getenv: noEnv, stdout: &out, stderr: &errOut}
	args := append([]string{"--db", l.db, "--lab", l.lab, "--name", name, "--password-stdin"}, flags...)
	require.NoError(l.t, createUser(context.Background(), e, args, strings.NewReader(password+"\n")), errOut.String())
	require.Regexp(l.t, `^\d+\n$`, out.String(), "prints the new user's id alone")
}

// orderAt posts an order whose reports were resulted minutes ago.
func (l browserLab) orderAt(id, patient, phone string, minutes int, reports string) (int64, []int64) {
	l.t.Helper()
	at := time.Now().UTC().Add(-time.Duration(minutes) * time.Minute).Format(time.RFC3339)
	body := fmt.Sprintf(`{"lab_bill_id":%q,"accession_number":"ACC-%s",
	  "patient":{"name":%q,"email":"patient@example.org","phone":%q},
	  "referral":{"name":"Dr. Anil Rao","email":"rao@clinic.example","fax":"+1 555 0199","phone":"+1 555 0101"},
	  "organization":{"name":"St. Mary Clinic","email":"lab@stmary.example","fax":"+1 555 0198","phone":"+1 555 0102"},
	  "reports":[%s]}`, id, id, patient, phone, strings.ReplaceAll(reports, "AT", at))
	status, m := l.do("POST", "/api/v1/orders", body)
	require.Equal(l.t, 201, status, m)
	var ids []int64
	for _, r := range m["reports"].([]any) {
		ids = append(ids, int64(r.(map[string]any)["id"].(float64)))
	}
	return int64(m["id"].(float64)), ids
}

const (
	electrolytes = `{"test_id":"ELEC","test_name":"Serum Electrolytes","department":"Biochemistry","resulted_at":"AT","parameters":[
	  {"name":"Potassium","value":"7.1","unit":"mmol/L","normal_low":3.5,"normal_high":5.1,"critical_low":2.5,"critical_high":6.5},
	  {"name":"Sodium","value":"138","unit":"mmol/L","normal_low":135,"normal_high":145,"critical_low":120,"critical_high":160}]}`
	glucose = `{"test_id":"GLU","test_name":"Glucose, fasting","department":"Biochemistry","resulted_at":"AT","parameters":[
	  {"name":"Glucose","value":"35","unit":"mg/dL","normal_low":70,"normal_high":99,"critical_low":40,"critical_high":450}]}`
	lipids = `{"test_id":"LIPID","test_name":"Lipid profile","department":"Biochemistry","resulted_at":"AT","parameters":[
	  {"name":"Cholesterol","value":"240","unit":"mg/dL","normal_low":0,"normal_high":200}]}`
	bloodCount = `{"test_id":"CBC","test_name":"Complete Blood Count","department":"Haematology","resulted_at":"AT","parameters":[
	  {"name":"Haemoglobin","value":"5.9","unit":"g/dL","normal_low":13,"normal_high":17,"critical_low":7,"critical_high":20},
	  {"name":"Platelets","value":"18","unit":"10^9/L","normal_low":150,"normal_high":400,"critical_low":20,"critical_high":1000}]}`
	troponin = `{"test_id":"TROP","test_name":"Troponin I","department":"Biochemistry","resulted_at":"AT","parameters":[
	  {"name":"Troponin I","value":"2.8","unit":"ng/mL","flag":"HH"}]}`
)

// screenshots keeps PNGs of the pages: always in the test's artifacts
// directory (CALLOUT_ARTIFACTS, or a temporary one), and in docs/screenshots
// for the README when CALLOUT_SCREENSHOTS=1.
type screenshots struct {
	t    *testing.T
	dirs []string
}

func newScreenshots(t *testing.T) screenshots {
	dir := os.Getenv("CALLOUT_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	s := screenshots{t: t, dirs: []string{dir}}
	if os.Getenv("CALLOUT_SCREENSHOTS") == "1" {
		s.dirs = append(s.dirs, filepath.Join("..", "..", "docs", "screenshots"))
	}
	return s
}

func (s screenshots) take(ctx context.Context, name string) {
	s.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(s.t, err)
	dirs := s.dirs
	if !readmeShots[name] {
		dirs = dirs[:1]
	}
	for _, dir := range dirs {
		require.NoError(s.t, os.MkdirAll(dir, 0o755))
		require.NoError(s.t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
	}
	s.t.Logf("screenshot %s in %s", name, strings.Join(dirs, ", "))
}

// readmeShots are the screenshots the README shows.
var readmeShots = map[string]bool{"worklist.png": true, "order.png": true, "worklist-rows.png": true, "order-phone.png": true}

// newBrowser starts headless Chromium for one test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser tests need Chromium at %s (Debian: apt-get install chromium; .ci/run installs it)", chromiumPath)
	}
	// 3 minutes: the shared CI machine can be loaded (load average 25+).
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900)))
	return bctx
}

// mainText is the text of the page's main element.
func mainText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	return s
}

func checked(t *testing.T, ctx context.Context, id string) bool {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById(%q).checked`, id)))
	require.NoError(t, err)
	return v
}

func signIn(t *testing.T, ctx context.Context, url, name, password string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password+"\n"), // Enter submits, as people do
		chromedp.WaitVisible(chromedp.ID("worklist")),
	))
}

// TestBrowser drives the real program in headless Chromium: sign in, open an
// order from the worklist, save an attempt, see it restored, mark the
// callout done with an email copy, see the copy sent and the order leave the
// Pending tab, and a user of another department not see it.
func TestBrowser(t *testing.T) {
	ctx := newBrowser(t)
	shots := newScreenshots(t)
	smtp := smtptest.Start(t)
	db := storetest.SQLite.URL(t)
	url, _ := serveEnv(t, deliveryEnv(smtp, "CALLOUT_SECURE_COOKIES", "false"), db)
	lab := newBrowserLab(t, db, url)
	lab.user("asha", "asha's long password", "--departments", "Biochemistry")
	lab.user("hema", "hema's long password", "--departments", "Haematology")
	lab.user("ravi", "ravi's long password", "--role", "admin")

	bill, reports := lab.orderAt("ORD-1001", "Maria Müller", "+1 555 0100", 12, electrolytes+","+glucose+","+lipids)
	lab.orderAt("ORD-1002", "John Okafor", "+1 555 0110", 47, bloodCount)
	lab.orderAt("ORD-1003", "Aiko Tanaka", "+1 555 0120", 3, troponin)
	lab.orderAt("ORD-1004", "Peter Novak", "+1 555 0130", 22, glucose)
	elec, glu := fmt.Sprintf("report-%d", reports[0]), fmt.Sprintf("report-%d", reports[1])

	// Sign in; the worklist shows the user's department only.
	signIn(t, ctx, url, "asha", "asha's long password")
	text := mainText(t, ctx)
	require.Contains(t, text, "ORD-1001")
	require.Contains(t, text, "ORD-1003")
	require.NotContains(t, text, "ORD-1002", "Haematology is not asha's")

	// Open the order from the worklist: both critical reports preselected.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.order[href="/bills/%d"]`, bill))),
		chromedp.WaitVisible(chromedp.CSS("button[value=attempt]")),
	))
	require.True(t, checked(t, ctx, elec))
	require.True(t, checked(t, ctx, glu))
	text = mainText(t, ctx)
	require.Contains(t, text, "+1 555 0101", "the referral's phone")
	require.Contains(t, text, "Ask the receiver to read back every critical value.")

	// Save an attempt for the electrolytes only.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID(glu)),
		chromedp.SendKeys(chromedp.ID("notified_person"), "Ward 3 nurse"),
		chromedp.SendKeys(chromedp.ID("comment"), "Dr. Rao in theatre, no answer"),
		chromedp.Click(chromedp.CSS("button[value=attempt]")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	))
	require.Contains(t, mainText(t, ctx), "Attempt saved.")

	// Reopen it from the worklist: the attempt's selection is restored.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.ID("worklist")),
	))
	require.Contains(t, mainText(t, ctx), "Attempted")

	// Meanwhile an admin, who sees every department, looks at the
	// worklist on a laptop and on a tablet (a browser context of its own:
	// other cookies).
	admin, cancelAdmin := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelAdmin()
	require.NoError(t, chromedp.Do(admin, chromedp.EmulateViewport(1280, 800)))
	signIn(t, admin, url, "ravi", "ravi's long password")
	text = mainText(t, admin)
	for _, id := range []string{"ORD-1001", "ORD-1002", "ORD-1003", "ORD-1004"} {
		require.Contains(t, text, id)
	}
	shots.take(admin, "worklist.png")
	require.NoError(t, chromedp.Do(admin, chromedp.EmulateViewport(820, 1180, chromedp.EmulatePortrait)))
	shots.take(admin, "worklist-tablet.png")
	require.NoError(t, chromedp.Do(admin,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.order[href="/bills/%d"]`, bill))),
		chromedp.WaitVisible(chromedp.CSS("button[value=done]")),
	))
	shots.take(admin, "order-tablet.png")

	// The settings page previews the email of a real order in a frame
	// (sandboxed by its own policy, so the test cannot read into it: the
	// screenshot shows it; internal/web's tests check its content).
	require.NoError(t, chromedp.Do(admin,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Click(chromedp.CSS(`a[href="/settings"]`)),
		chromedp.WaitVisible(chromedp.ID("template-src")),
		chromedp.WaitVisible(chromedp.CSS("iframe.preview")),
		chromedp.Sleep(500*time.Millisecond),
	))
	shots.take(admin, "settings.png")
	cancelAdmin()

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.order[href="/bills/%d"]`, bill))),
		chromedp.WaitVisible(chromedp.CSS("button[value=done]")),
	))
	require.True(t, checked(t, ctx, elec))
	require.False(t, checked(t, ctx, glu), "restored from the attempt, not the default")
	require.Contains(t, mainText(t, ctx), "Attempt saved by asha")
	shots.take(ctx, "order.png")

	// Mark it done for both, with an email copy; a double click makes one callout.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID(glu)),
		chromedp.Click(chromedp.CSS("input[name=send_email]")),
		chromedp.Click(chromedp.CSS("input[name=read_back]")),
		chromedp.SetValue(chromedp.ID("notified_person"), "Dr. Anil Rao, registrar"),
		chromedp.DoubleClick(chromedp.CSS("button[value=done]")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	))
	require.Contains(t, mainText(t, ctx), "Callout marked done.")
	status, m := lab.do("GET", fmt.Sprintf("/api/v1/bills/%d/callouts", bill), "")
	require.Equal(t, 200, status)
	recs := m["callouts"].([]any)
	require.Len(t, recs, 2, "one done record per report, from one callout")

	// The history reloads itself until the email copy is sent.
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#history .badge.sent"))))
	require.Contains(t, mainText(t, ctx), "rao@clinic.example")
	require.Len(t, smtp.WaitFor(1, 10*time.Second), 1)

	// The order left the Pending tab and is on the Done tab.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/"]`)),
		chromedp.WaitVisible(chromedp.ID("worklist")),
	))
	text = mainText(t, ctx)
	require.NotContains(t, text, "ORD-1001")
	require.Contains(t, text, "ORD-1004")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("tab-done")),
		chromedp.WaitVisible(chromedp.CSS(`#tab-done[aria-current="page"]`)),
	))
	require.Contains(t, mainText(t, ctx), "ORD-1001")

	// Search reaches the order through the search index.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("tab-pending")),
		chromedp.WaitVisible(chromedp.CSS(`#tab-pending[aria-current="page"]`)),
		chromedp.SendKeys(chromedp.ID("q"), "novak\n"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/?tab=pending"].button`)),
	))
	text = mainText(t, ctx)
	require.Contains(t, text, "ORD-1004")
	require.NotContains(t, text, "ORD-1003")

	// Sign out; a Haematology user never sees the Biochemistry order.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("header form button")),
		chromedp.WaitVisible(chromedp.ID("password")),
	))
	signIn(t, ctx, url, "hema", "hema's long password")
	text = mainText(t, ctx)
	require.Contains(t, text, "ORD-1002")
	require.NotContains(t, text, "ORD-1001")
	require.NotContains(t, text, "ORD-1004")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("tab-done")), chromedp.WaitVisible(chromedp.CSS(`#tab-done[aria-current="page"]`))))
	require.NotContains(t, mainText(t, ctx), "ORD-1001")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%s/bills/%d", url, bill)), chromedp.WaitVisible(chromedp.CSS("p.error"))))
	require.Contains(t, mainText(t, ctx), "There is no such order, or none of its results belong to your departments.")
}
