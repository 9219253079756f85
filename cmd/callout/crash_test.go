package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
	"callout/internal/sqlstore"
	"callout/internal/storetest"
)

// buildBinary builds the program once for the tests that run it as a
// separate process (to kill it).
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "callout-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "callout")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is `callout serve` running as a child process.
type process struct {
	cmd *exec.Cmd
	url string
}

func startProcess(t *testing.T, bin, db string, env []string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`listening on (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case p.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	return p
}

// TestKillDuringCallouts kills the service with SIGKILL while callouts with
// email are in flight and emails are being sent, restarts it, and checks
// that nothing acknowledged was lost and nothing was doubled: every callout
// answered 201 is stored with its records and activity, each of its emails
// reached the SMTP server under one Message-ID (a repeat of the same message
// is allowed, a different message is not), and no email exists for a
// callout that did not commit. The emails that were being sent when the
// process died are sent again within 30 s of the restart, with the default
// job timing.
func TestKillDuringCallouts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the service; skipped with -short")
	}
	bin, err := buildBinary()
	require.NoError(t, err)
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		smtp := smtptest.Start(t)
		db := e.URL(t)
		env := []string{"CALLOUT_INDEX_DIR=" + t.TempDir(), "CALLOUT_SMTP_URL=" + smtp.URL(), "CALLOUT_SMTP_FROM=callout@lab.example",
			"CALLOUT_POLL_INTERVAL=50ms", "CALLOUT_RETRY_BASE=200ms", "CALLOUT_LOG_LEVEL=warn"}
		p := startProcess(t, bin, db, env)
		c := newLab(t, db, p.url)
		// A slow mail server: the emails being sent are in the middle of
		// their SMTP conversation when the process dies.
		smtp.Hold()

		const n = 40
		type order struct {
			bill int64
			ids  []int64
		}
		orders := make([]order, n)
		for i := range orders {
			orders[i].bill, orders[i].ids = c.order(fmt.Sprintf("K-%d", i))
		}

		// Fire the callouts from 4 clients; kill the process once a third
		// of them were answered, while the rest are in flight.
		acked := make(chan int64, n)
		var wg sync.WaitGroup
		next := make(chan int, n)
		for i := range n {
			next <- i
		}
		close(next)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					o := orders[i]
					b, _ := json.Marshal(o.ids)
					body := fmt.Sprintf(`{"lab_report_ids":%s,"callout_payload":{"notified_person":"Dr. Rao","sendEmail":true,"is_patient":true,"is_referral":true,"is_organization":true}}`, b)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					status, err := post(ctx, c, fmt.Sprintf("/api/v1/bills/%d/callouts", o.bill), body)
					cancel()
					if err == nil && status == 201 {
						acked <- o.bill
					}
				}
			}()
		}
		require.Eventually(t, func() bool { return len(acked) >= n/3 }, 30*time.Second, time.Millisecond)
		smtp.WaitHeld(5, 30*time.Second)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
		_ = p.cmd.Wait()
		smtp.Release()
		wg.Wait()
		close(acked)
		var answered []int64
		for b := range acked {
			answered = append(answered, b)
		}
		t.Logf("%s: %d of %d callouts answered before the kill; %d emails had arrived", e.Name, len(answered), n, len(smtp.Messages()))
		require.NotEmpty(t, answered)

		restart := time.Now()
		p2 := startProcess(t, bin, db, env)
		c.url = p2.url
		for _, bill := range answered {
			status, m := c.do("GET", fmt.Sprintf("/api/v1/bills/%d/callouts", bill), "")
			require.Equal(t, 200, status)
			require.Len(t, m["callouts"], 2, "bill %d: one record per report", bill)
			status, m = c.do("GET", fmt.Sprintf("/api/v1/activity?bill_id=%d", bill), "")
			require.Equal(t, 200, status)
			require.Len(t, m["entries"], 1, "bill %d: its activity entry", bill)
		}
		// Every delivery of every committed callout, answered or not, ends
		// sent, those whose sending the kill interrupted included: within
		// 30 s of the restart (the job timeout, 15 s, plus 5 s before a
		// running job is taken for a dead process's, plus the 2 s rescue
		// check, after the attempt began), not the 90 s it took when a job
		// had a minute.
		st := storetest.OpenURL(t, db)
		require.Eventually(t, func() bool {
			var pending int
			require.NoError(t, st.DB.QueryRow(`SELECT count(*) FROM deliveries WHERE status <> 'sent'`).Scan(&pending))
			return pending == 0
		}, 30*time.Second-time.Since(restart), 200*time.Millisecond, "deliveries not sent 30 s after the restart")
		t.Logf("%s: every delivery sent %s after the restart", e.Name, time.Since(restart).Round(100*time.Millisecond))

		msgIDs := deliveryMessageIDs(t, st)
		for _, bill := range answered {
			var k int
			require.NoError(t, st.DB.QueryRow(`SELECT count(*) FROM deliveries WHERE bill_id = $1`, bill).Scan(&k))
			require.Equal(t, 3, k, "bill %d: patient, referral and organization", bill)
		}
		received := map[string][]smtptest.Message{}
		for _, m := range smtp.Messages() {
			received[m.MessageID] = append(received[m.MessageID], m)
		}
		for id := range msgIDs {
			require.NotEmpty(t, received["<"+id+">"], "delivery %s never reached the server", id)
		}
		repeats := 0
		for id, copies := range received {
			require.True(t, msgIDs[id[1:len(id)-1]], "email %s belongs to no committed callout", id)
			first, _, _ := parts(t, copies[0])
			for _, other := range copies[1:] {
				html, _, _ := parts(t, other)
				require.Equal(t, first, html, "a repeat of %s must be the same message", id)
				require.Equal(t, copies[0].Subject, other.Subject)
				require.Equal(t, copies[0].Rcpts, other.Rcpts)
				repeats++
			}
		}
		t.Logf("%s: %d deliveries, %d messages received, %d repeats of the same message", e.Name, len(msgIDs), len(smtp.Messages()), repeats)
	})
}

func post(ctx context.Context, c client, path, body string) (int, error) {
	req, err := newRequest(ctx, "POST", c.url+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func deliveryMessageIDs(t *testing.T, st *sqlstore.Store) map[string]bool {
	t.Helper()
	rows, err := st.DB.Query(`SELECT message_id FROM deliveries`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id sql.NullString
		require.NoError(t, rows.Scan(&id))
		require.NotEmpty(t, id.String)
		out[id.String] = true
	}
	return out
}
