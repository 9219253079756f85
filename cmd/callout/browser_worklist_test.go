package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// TestBrowserWorklistRows checks in Chromium what a worklist row tells a
// technologist (issue 13 §1): the critical values themselves, the
// department, the referral's phone, the due time against the lab's target
// with a legend for the colours; on the Done tab who called whom, when and
// how it ended; and a badge on the row when an email copy failed.
func TestBrowserWorklistRows(t *testing.T) {
	ctx := newBrowser(t)
	shots := newScreenshots(t)
	db := storetest.SQLite.URL(t)
	// No mail server: an email copy fails, visibly.
	url, _ := serveEnv(t, envMap("CALLOUT_SECURE_COOKIES", "false", "CALLOUT_POLL_INTERVAL", "50ms"), db)
	lab := newBrowserLab(t, db, url)
	lab.user("asha", "asha's long password")
	bill, reports := lab.orderAt("ORD-3001", "Maria Müller", "+1 555 0100", 12, electrolytes+","+glucose)
	lab.orderAt("ORD-3002", "John Okafor", "+1 555 0110", 47, bloodCount)

	signIn(t, ctx, url, "asha", "asha's long password")
	text := mainText(t, ctx)
	for _, s := range []string{"K 7.1 HH", "Glu 35 LL", "Hb 5.9 LL", "Plt 18 LL", "Biochemistry", "Haematology",
		"+1 555 0101"} {
		require.Contains(t, text, s)
	}
	// 30 min target: resulted 12 and 47 minutes ago (and a few seconds).
	require.Regexp(t, `due in 1[78] min`, text)
	require.Regexp(t, `overdue 1[78] min`, text)
	require.Regexp(t, regexp.MustCompile(`due\s+first half of the target · due soon\s+second half · overdue\s+past the target`), text, "the colours have a legend")
	shots.take(ctx, "worklist-rows.png")

	// Done through the API with an email copy, which fails without a mail server.
	status, m := lab.do("POST", fmt.Sprintf("/api/v1/bills/%d/callouts", bill), fmt.Sprintf(
		`{"lab_report_ids":[%d,%d],"is_draft":false,"callout_payload":{"sendEmail":true,"is_referral":true,"notified_person":"Dr. Rao","read_back":true}}`,
		reports[0], reports[1]))
	require.Equal(t, 201, status, m)
	require.Eventually(t, func() bool {
		_, d := lab.do("GET", fmt.Sprintf("/api/v1/bills/%d/deliveries", bill), "")
		ds, _ := d["deliveries"].([]any)
		return len(ds) == 1 && ds[0].(map[string]any)["status"] == "failed"
	}, 20*time.Second, 50*time.Millisecond)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("tab-done")),
		chromedp.WaitVisible(chromedp.CSS(`#tab-done[aria-current="page"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.badge.failed`)),
	))
	text = mainText(t, ctx)
	require.Contains(t, text, "ORD-3001")
	require.Regexp(t, `(?i)ORD-3001 1 copy failed`, text, "the badge on the row")
	require.Regexp(t, `lis told Referral \(Dr\. Rao\)\s+\d\d \w{3} \d{4} \d\d:\d\d · read back`, text, "who called whom, when, how it ended")
}
