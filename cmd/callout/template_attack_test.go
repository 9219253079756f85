package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
	"callout/internal/storetest"
)

// rssBytes is the resident set size of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err, "the process is gone")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// putTemplate sends a template as lab c's admin and returns the status and
// the error message; a transport error (the process died) fails the test.
func putTemplate(t *testing.T, c client, src string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"template": src})
	req, err := http.NewRequest("PUT", c.url+"/api/v1/lab/templates/email", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "PUT of a hostile template: the process must stay up")
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m.Error.Message
}

// TestHostileTemplates runs issue 8 §1's attacks (and more) against the
// real program, run as a child process so that a crash shows as a failed
// request, not a dead test runner, on both engines. Each PUT is refused
// with 422 naming the construct; the process stays up, its memory grows by
// less than 100 MB, and another lab's callout made during each attempt
// answers in its usual time. Templates that pass the PUT check but go past
// a bound on a real order fail their delivery for good with the bound
// named, and render again after the template is fixed and the delivery
// retried.
func TestHostileTemplates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the program; skipped with -short")
	}
	bin, err := buildBinary()
	require.NoError(t, err)
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		smtp := smtptest.Start(t)
		db := e.URL(t)
		env := []string{"CALLOUT_INDEX_DIR=" + t.TempDir(), "CALLOUT_SMTP_URL=" + smtp.URL(), "CALLOUT_SMTP_FROM=callout@lab.example",
			"CALLOUT_POLL_INTERVAL=50ms", "CALLOUT_RETRY_BASE=100ms", "CALLOUT_LOG_LEVEL=error"}
		p := startProcess(t, bin, db, env)
		attacker := newLab(t, db, p.url)
		code, out, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "South Lab")
		require.Equal(t, 0, code, stderr)
		code, tok, stderr := runCmd(t, "token", "create", "--db", db, "--lab", strings.TrimSpace(out), "--user", "Bo", "--role", "admin")
		require.Equal(t, 0, code, stderr)
		victim := client{t: t, url: p.url, token: strings.TrimSpace(tok)}

		// The victim's usual callout time: the slowest of a few, idle.
		n := 0
		victimCallout := func() time.Duration {
			n++
			bill, ids := victim.order(fmt.Sprintf("V-%d", n))
			start := time.Now()
			victim.callout(bill, ids, false, `{"sendEmail":false,"is_referral":true,"notified_person":"Dr. Rao"}`)
			return time.Since(start)
		}
		var usual time.Duration
		for range 5 {
			usual = max(usual, victimCallout())
		}
		// Generous against a loaded 2-core machine, far below what a
		// stall (seconds) or a crash would show.
		allowed := 5*usual + time.Second
		rss0 := rssBytes(t, p.cmd.Process.Pid)
		t.Logf("%s: usual callout %s, RSS %d MB", e.Name, usual, rss0>>20)

		attacks := []struct{ name, src, want string }{
			{"recursive macro", `{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}`, "macros may not call macros"},
			{"recursion behind a condition", `{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{% if lab_name != "Sample Lab" %}{{ f(0) }}{% endif %}`, "macros may not call macros"},
			{"range loop", `{% for i in range(10000000) %}x{% endfor %}`, "range"},
			{"nested range loops", `{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}`, "range"},
			{"safe behind a condition", `{% if lab_name != "Sample Lab" %}{{ patient_name|safe }}{% endif %}`, "|safe"},
			{"include", `{% include "/email.html" %}`, "{% include %}"},
			{"extends", `{% extends "/email.html" %}`, "{% extends %}"},
			{"string repetition", `{{ "x" * 2000000000 }}`, "* operator"},
			{"filter that builds big strings", `{{ lab_name|center(2000000000) }}`, "|center"},
			{"deep nesting", "{{ " + strings.Repeat("(", 50000) + "1" + strings.Repeat(")", 50000) + " }}", "nested deeper"},
			{"deep blocks", strings.Repeat("{% if true %}", 5000) + strings.Repeat("{% endif %}", 5000), "nested deeper"},
			{"huge literal printed in loops", strings.Repeat("{% for r in reports %}", 6) + strings.Repeat("z", 200<<10) + strings.Repeat("{% endfor %}", 6), "1024 KiB"},
			{"loops that spin", strings.Repeat("{% for r in reports %}", 30) + strings.Repeat("{% endfor %}", 30), "CPU time"},
		}
		for _, a := range attacks {
			var (
				wg     sync.WaitGroup
				status int
				msg    string
			)
			wg.Go(func() { status, msg = putTemplate(t, attacker, a.src) })
			took := victimCallout()
			wg.Wait()
			require.Equal(t, 422, status, "%s: %s", a.name, msg)
			require.Contains(t, msg, a.want, a.name)
			require.Less(t, took, allowed, "%s: the other lab's callout took %s (usual %s)", a.name, took, usual)
			rss := rssBytes(t, p.cmd.Process.Pid)
			require.Less(t, rss-rss0, int64(100<<20), "%s: RSS grew from %d MB to %d MB", a.name, rss0>>20, rss>>20)
			t.Logf("%s: %s: 422 %q; other lab's callout %s; RSS %d MB", e.Name, a.name, msg, took.Round(time.Millisecond), rss>>20)
		}

		// Past a bound only on the real order: accepted at PUT, then the delivery fails for good.
		sendFails := func(src, want string, order string) map[string]any {
			status, msg := putTemplate(t, attacker, src)
			require.Equal(t, 200, status, msg)
			bill, ids := attacker.order(order)
			start := time.Now()
			victimDone := make(chan time.Duration, 1)
			attacker.callout(bill, ids, false, `{"sendEmail":true,"is_referral":true,"notified_person":"Dr. Rao"}`)
			go func() { victimDone <- victimCallout() }()
			ds := attacker.waitStatus(bill, 1, "failed")
			require.Less(t, <-victimDone, allowed, "the other lab's callout during the delivery")
			require.Contains(t, ds[0]["last_error"], want)
			require.EqualValues(t, 1, ds[0]["attempts"], "no retry loop")
			rss := rssBytes(t, p.cmd.Process.Pid)
			require.Less(t, rss-rss0, int64(100<<20), "RSS grew from %d MB to %d MB", rss0>>20, rss>>20)
			t.Logf("%s: delivery failed after %s: %s; RSS %d MB", e.Name, time.Since(start).Round(time.Millisecond), ds[0]["last_error"], rss>>20)
			return ds[0]
		}
		// The sample order's Order ID is ORD-1 in every trial render.
		cond := func(body string) string { return `{% if lab_bill_id != "ORD-1" %}` + body + `{% endif %}` }
		slow := sendFails(cond(strings.Repeat("{% for r in reports %}", 30)+strings.Repeat("{% endfor %}", 30)), "CPU time", "A-1")
		big := sendFails(cond(strings.Repeat("{% for r in reports %}", 5)+strings.Repeat("w", 100<<10)+strings.Repeat("{% endfor %}", 5)), "1024 KiB", "A-2")

		// Fixed: back to the built-in template; a retry renders again.
		status, msg := putTemplate(t, attacker, "")
		require.Equal(t, 200, status, msg)
		for _, d := range []map[string]any{slow, big} {
			status, m := attacker.do("POST", fmt.Sprintf("/api/v1/deliveries/%v/retry", d["id"]), "")
			require.Equal(t, 202, status, m)
			attacker.waitStatus(int64(d["bill_id"].(float64)), 1, "sent")
		}
		require.Len(t, smtp.WaitFor(2, 10*time.Second), 2)
	})
}
