package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
	"callout/internal/storetest"
)

// client talks to a running program's API as one lab's user.
type client struct {
	t     *testing.T
	url   string
	token string
}

func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	require.NoError(c.t, json.Unmarshal(raw, &m), string(raw))
	return res.StatusCode, m
}

// deliveryEnv is the environment of a program that mails through smtp.
func deliveryEnv(smtp *smtptest.Server, extra ...string) func(string) string {
	env := map[string]string{
		"CALLOUT_SMTP_URL":      smtp.URL(),
		"CALLOUT_SMTP_FROM":     "Callout <callout@lab.example>",
		"CALLOUT_FAX_GATEWAY":   "fax.example.org",
		"CALLOUT_BASE_URL":      "https://callout.lab.example",
		"CALLOUT_POLL_INTERVAL": "50ms",
		"CALLOUT_RETRY_BASE":    "100ms",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return func(k string) string { return env[k] }
}

// newLab creates a lab and an admin token with the CLI and returns a client
// for a server started on db.
func newLab(t *testing.T, db, url string, flags ...string) client {
	t.Helper()
	code, out, stderr := runCmd(t, append([]string{"lab", "create", "--db", db, "--name", "North Lab"}, flags...)...)
	require.Equal(t, 0, code, stderr)
	code, tok, stderr := runCmd(t, "token", "create", "--db", db, "--lab", strings.TrimSpace(out), "--user", "Asha", "--role", "admin")
	require.Equal(t, 0, code, stderr)
	return client{t: t, url: url, token: strings.TrimSpace(tok)}
}

const orderJSON = `{"lab_bill_id":%q,"accession_number":"ACC-%s",
 "patient":{"name":"Maria Müller","email":"maria@example.org","phone":"555 0100"},
 "referral":{"name":"Dr. Rao","email":"rao@clinic.example","fax":"+1 (555) 0199","phone":"555 0101"},
 "organization":{"name":"St. Mary Clinic","email":"lab@stmary.example","fax":"","phone":""},
 "reports":[
  {"test_id":"ELEC","test_name":"Serum Electrolytes","department":"Biochemistry","parameters":[
    {"name":"Potassium","value":"7.1","unit":"mmol/L","normal_low":3.5,"normal_high":5.1,"critical_low":2.5,"critical_high":6.5}]},
  {"test_id":"GLU","test_name":"Glucose","department":"Biochemistry","parameters":[
    {"name":"Glucose","value":"35","unit":"mg/dL","normal_low":70,"normal_high":99,"critical_low":40,"critical_high":450}]}]}`

// order creates an order and returns its bill id and report ids.
func (c client) order(billID string) (int64, []int64) {
	c.t.Helper()
	status, m := c.do("POST", "/api/v1/orders", fmt.Sprintf(orderJSON, billID, billID))
	require.Equal(c.t, 201, status, m)
	var ids []int64
	for _, r := range m["reports"].([]any) {
		ids = append(ids, int64(r.(map[string]any)["id"].(float64)))
	}
	return int64(m["id"].(float64)), ids
}

func (c client) callout(bill int64, ids []int64, draft bool, payload string) map[string]any {
	c.t.Helper()
	b, _ := json.Marshal(ids)
	status, m := c.do("POST", fmt.Sprintf("/api/v1/bills/%d/callouts", bill),
		fmt.Sprintf(`{"lab_report_ids":%s,"is_draft":%v,"callout_payload":%s}`, b, draft, payload))
	require.Equal(c.t, 201, status, m)
	return m
}

func (c client) deliveries(bill int64) []map[string]any {
	c.t.Helper()
	status, m := c.do("GET", fmt.Sprintf("/api/v1/bills/%d/deliveries", bill), "")
	require.Equal(c.t, 200, status, m)
	var out []map[string]any
	for _, d := range m["deliveries"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// waitStatus waits until every delivery of the bill has the status.
func (c client) waitStatus(bill int64, n int, status string) []map[string]any {
	c.t.Helper()
	var ds []map[string]any
	require.Eventually(c.t, func() bool {
		ds = c.deliveries(bill)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d["status"] != status {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "deliveries of bill %d: %v", bill, ds)
	return ds
}

func parts(t *testing.T, m smtptest.Message) (html, text string, attachments []smtptest.Part) {
	t.Helper()
	ps, err := m.Parts()
	require.NoError(t, err)
	for _, p := range ps {
		switch {
		case p.ContentType == "text/html":
			html = string(p.Body)
		case p.ContentType == "text/plain":
			text = string(p.Body)
		default:
			attachments = append(attachments, p)
		}
	}
	return html, text, attachments
}

func TestDelivery(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("EmailAndFaxToEachRecipient", func(t *testing.T) {
			t.Parallel()
			smtp := smtptest.Start(t)
			db := e.URL(t)
			url, _ := serveEnv(t, deliveryEnv(smtp), db)
			c := newLab(t, db, url, "--share-comment")
			bill, ids := c.order("ORD-1")

			// An attempt sends nothing.
			c.callout(bill, ids, true, `{"sendEmail":true,"is_referral":true}`)
			res := c.callout(bill, ids, false, `{"notified_person":"Dr. Rao","sendEmail":true,"sendFax":true,"is_patient":true,"is_referral":true,
				"comment":"Informed Dr. Rao, read back","notified_person":"Dr. Rao","read_back":true,
				"notify_to_others":{"name":"Dr. Covering","email":"cover@hospital.example","fax":"","contactNumber":"555"}}`)
			calloutIDs := res["callouts"].([]any)
			require.Len(t, calloutIDs, 2)

			ds := c.waitStatus(bill, 4, "sent")
			got := map[string]map[string]any{}
			for _, d := range ds {
				got[d["channel"].(string)+" "+d["recipient"].(string)] = d
				require.NotEmpty(t, d["sent_at"])
				require.EqualValues(t, 1, d["attempts"])
				require.Len(t, d["callout_ids"], 2)
			}
			require.Equal(t, "maria@example.org", got["email Patient"]["address"])
			require.Equal(t, "rao@clinic.example", got["email Referral"]["address"])
			require.Equal(t, "+1 (555) 0199", got["fax Referral"]["address"])
			require.Equal(t, "cover@hospital.example", got["email Other"]["address"])

			msgs := smtp.WaitFor(4, 10*time.Second)
			require.Len(t, msgs, 4)
			byRcpt := map[string]smtptest.Message{}
			ids4 := map[string]bool{}
			for _, m := range msgs {
				require.Len(t, m.Rcpts, 1, "recipients never see each other's addresses")
				byRcpt[m.Rcpts[0]] = m
				ids4[m.MessageID] = true
				require.Equal(t, "Critical Results Alert from North Lab for Order ID - ORD-1", m.Subject)
				require.NotContains(t, m.Header.Get("Cc")+m.Header.Get("Bcc"), "@")
			}
			require.Len(t, ids4, 4, "one Message-ID per recipient")
			require.Contains(t, byRcpt, "15550199@fax.example.org")

			html, text, att := parts(t, byRcpt["rao@clinic.example"])
			require.Empty(t, att)
			for _, body := range []string{html, text} {
				require.Contains(t, body, "Potassium")
				require.Contains(t, body, "7.1")
				require.Contains(t, body, "mmol/L")
				require.Contains(t, body, "Glucose")
				require.Contains(t, body, "35")
				require.Contains(t, body, "2 reports", "two reports render the multi-report layout (is_bulk)")
				require.Contains(t, body, "Informed Dr. Rao, read back", "share_comment is on")
				require.Contains(t, body, fmt.Sprintf("https://callout.lab.example/bills/%d", bill))
			}
			require.Contains(t, text, "3.5–5.1")

			_, _, att = parts(t, byRcpt["15550199@fax.example.org"])
			require.Len(t, att, 1)
			require.Equal(t, "application/pdf", att[0].ContentType)
			require.True(t, strings.HasPrefix(string(att[0].Body), "%PDF"))

			// A done callout without sendEmail sends nothing more.
			bill2, ids2 := c.order("ORD-2")
			c.callout(bill2, ids2[:1], false, `{"notified_person":"Dr. Rao","sendEmail":false,"is_referral":true}`)
			time.Sleep(300 * time.Millisecond)
			require.Len(t, smtp.Messages(), 4)
			require.Empty(t, c.deliveries(bill2))
		})

		t.Run("SingleReportCommentHiddenAndNameHidden", func(t *testing.T) {
			t.Parallel()
			smtp := smtptest.Start(t)
			db := e.URL(t)
			url, _ := serveEnv(t, deliveryEnv(smtp), db)
			c := newLab(t, db, url, "--hide-patient-name")
			bill, ids := c.order("ORD-9")
			c.callout(bill, ids[:1], false, `{"notified_person":"Dr. Rao","sendEmail":true,"is_patient":true,"comment":"private note"}`)
			c.waitStatus(bill, 1, "sent")
			m := smtp.WaitFor(1, 10*time.Second)[0]
			html, text, _ := parts(t, m)
			for _, body := range []string{html, text} {
				require.Contains(t, body, "Potassium")
				require.NotContains(t, body, "Glucose", "only the included report")
				require.NotContains(t, body, "2 reports", "one report: the single layout")
				require.NotContains(t, body, "private note", "share_comment is off")
				require.NotContains(t, body, "Müller", "hide_patient_name replaces the name")
				require.Contains(t, body, "ACC-ORD-9")
			}
		})

		t.Run("FailedDeliveryIsVisibleAndRetryable", func(t *testing.T) {
			t.Parallel()
			smtp := smtptest.Start(t)
			smtp.SetReject(550, "5.1.1 User unknown")
			db := e.URL(t)
			url, _ := serveEnv(t, deliveryEnv(smtp), db)
			c := newLab(t, db, url)
			bill, ids := c.order("ORD-3")
			c.callout(bill, ids, false, `{"notified_person":"Dr. Rao","sendEmail":true,"is_referral":true}`)
			ds := c.waitStatus(bill, 1, "failed")
			require.Contains(t, ds[0]["last_error"], "550")
			id := int64(ds[0]["id"].(float64))

			status, m := c.do("GET", "/api/v1/deliveries?status=failed", "")
			require.Equal(t, 200, status)
			require.Len(t, m["deliveries"], 1)
			status, m = c.do("GET", fmt.Sprintf("/api/v1/activity?bill_id=%d", bill), "")
			require.Equal(t, 200, status)
			require.Contains(t, m["entries"].([]any)[0].(map[string]any)["message"], "Email to Referral (rao@clinic.example) failed")

			smtp.SetReject(0, "")
			status, m = c.do("POST", fmt.Sprintf("/api/v1/deliveries/%d/retry", id), "")
			require.Equal(t, 202, status, m)
			ds = c.waitStatus(bill, 1, "sent")
			require.EqualValues(t, 2, ds[0]["attempts"])
			require.Len(t, smtp.WaitFor(1, 5*time.Second), 1)

			status, m = c.do("POST", fmt.Sprintf("/api/v1/deliveries/%d/retry", id), "")
			require.Equal(t, 409, status, "a sent delivery is not retried")
			require.Contains(t, m["error"].(map[string]any)["message"], "only a failed delivery")
			status, _ = c.do("POST", "/api/v1/deliveries/999999/retry", "")
			require.Equal(t, 404, status)
		})

		t.Run("SMTPOutageDelaysButLosesNothing", func(t *testing.T) {
			t.Parallel()
			smtp := smtptest.Start(t)
			db := e.URL(t)
			url, _ := serveEnv(t, deliveryEnv(smtp), db)
			c := newLab(t, db, url)
			smtp.Stop()
			var bills []int64
			for i := range 5 {
				bill, ids := c.order(fmt.Sprintf("OUT-%d", i))
				c.callout(bill, ids, false, `{"notified_person":"Dr. Rao","sendEmail":true,"is_patient":true,"is_referral":true}`)
				bills = append(bills, bill)
			}
			// Attempts fail while the server is down; nothing gives up.
			require.Eventually(t, func() bool {
				for _, d := range c.deliveries(bills[0]) {
					if d["attempts"].(float64) < 2 {
						return false
					}
				}
				return true
			}, 20*time.Second, 50*time.Millisecond)
			for _, b := range bills {
				for _, d := range c.deliveries(b) {
					require.Equal(t, "queued", d["status"])
				}
			}
			smtp.Restart()
			for _, b := range bills {
				c.waitStatus(b, 2, "sent")
			}
			msgs := smtp.WaitFor(10, 10*time.Second)
			ids := map[string]int{}
			for _, m := range msgs {
				ids[m.MessageID]++
			}
			require.Len(t, ids, 10, "every queued email arrived")
		})

		t.Run("LabEmailTemplate", func(t *testing.T) {
			t.Parallel()
			smtp := smtptest.Start(t)
			db := e.URL(t)
			url, _ := serveEnv(t, deliveryEnv(smtp), db)
			c := newLab(t, db, url)
			status, m := c.do("PUT", "/api/v1/lab/templates/email", `{"template":"<p>{{ lab_name }}</p>\n{% if is_bulk %}\n<p>x</p>"}`)
			require.Equal(t, 422, status)
			require.Regexp(t, `line \d+`, m["error"].(map[string]any)["message"])
			status, m = c.do("GET", "/api/v1/lab/templates/email", "")
			require.Equal(t, 200, status)
			require.Equal(t, true, m["builtin"])
			status, m = c.do("PUT", "/api/v1/lab/templates/email", `{"template":"<h1>ALERT {{ lab_bill_id }}</h1>{% for r in reports %}<p>{{ r.test_name }}</p>{% endfor %}"}`)
			require.Equal(t, 200, status, m)
			bill, ids := c.order("ORD-T")
			c.callout(bill, ids, false, `{"notified_person":"Dr. Rao","sendEmail":true,"is_referral":true}`)
			html, _, _ := parts(t, smtp.WaitFor(1, 10*time.Second)[0])
			require.Contains(t, html, "<h1>ALERT ORD-T</h1>")
		})
	})
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func newRequest(ctx context.Context, method, url, body string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
}

// TestSeparateWorker runs the API with --no-workers and a `callout worker`
// beside it on the same database: the worker sends the email, and the
// server, which holds the embedded index, keeps the index in step.
func TestSeparateWorker(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		smtp := smtptest.Start(t)
		db := e.URL(t)
		env := deliveryEnv(smtp)
		url, _ := serveEnv(t, env, db, "--no-workers")
		c := newLab(t, db, url)

		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"worker", "--db", db}, env, out, io.Discard) }()
		t.Cleanup(func() { cancel(); <-done })
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "worker running") }, 20*time.Second, 10*time.Millisecond)

		bill, ids := c.order("ORD-W")
		c.callout(bill, ids, false, `{"notified_person":"Dr. Rao","sendEmail":true,"is_referral":true}`)
		c.waitStatus(bill, 1, "sent")
		require.Len(t, smtp.WaitFor(1, 5*time.Second), 1)
		require.Eventually(t, func() bool {
			status, m := c.do("GET", "/api/v1/worklist?critical_values=2&q=ORD-W", "")
			return status == 200 && len(m["reports"].([]any)) == 2
		}, 20*time.Second, 50*time.Millisecond, "the server's index follows the callout")
	})
}
