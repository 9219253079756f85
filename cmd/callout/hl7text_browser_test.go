package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
	"callout/internal/storetest"
)

// TestBrowserShowsTextResultLines opens, in headless Chromium, the order
// page of a text result sent as HL7 TX lines (an ABG narrative) and checks
// that the lines are shown as lines, and the lab's reference range text as
// the normal range.
func TestBrowserShowsTextResultLines(t *testing.T) {
	ctx := newBrowser(t)
	smtp := smtptest.Start(t)
	db := storetest.SQLite.URL(t)
	url, _ := serveEnv(t, deliveryEnv(smtp, "CALLOUT_SECURE_COOKIES", "false"), db)
	lab := newBrowserLab(t, db, url)
	lab.user("asha", "asha's long password")
	bill, _ := lab.orderAt("ORD-ABG", "Piotr Kowalczyk", "+1 555 0140", 5, `{"test_id":"ABG","test_name":"Blood gas","department":"ICU","resulted_at":"AT","parameters":[
	  {"name":"pH","value":"7.12","normal_low":7.35,"normal_high":7.45,"reference_range_text":"7.35-7.45","flag":"LL"},
	  {"name":"Interpretation","value":"ARTERIAL BLOOD GAS: interpretation\nAcute respiratory acidosis.\n\nResults telephoned to ICU.","reference_range_text":"see text"}]}`)

	signIn(t, ctx, url, "asha", "asha's long password")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(fmt.Sprintf("%s/bills/%d", url, bill)),
		chromedp.WaitVisible(chromedp.CSS("table.params")),
	))
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.params td")].map(td => td.innerText)`))
	require.NoError(t, err)
	require.Contains(t, cells, "ARTERIAL BLOOD GAS: interpretation\nAcute respiratory acidosis.\n\nResults telephoned to ICU.",
		"the rendered text keeps its lines (the test data avoids \"AT\", which orderAt replaces by the time)")
	require.Contains(t, cells, "7.35-7.45")
	require.Contains(t, cells, "see text")
}
