package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// callouts counts the order's callout records through the API.
func (l browserLab) callouts(bill int64) int {
	l.t.Helper()
	status, m := l.do("GET", fmt.Sprintf("/api/v1/bills/%d/callouts", bill), "")
	require.Equal(l.t, 200, status)
	return len(m["callouts"].([]any))
}

// envMap is a getenv of the given name, value pairs.
func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestBrowserOrderSafety drives the order page's safe defaults in Chromium
// (issue 13 §2): an order with no critical result says so instead of
// showing a form; after "Mark callout done" the Back button shows the order
// as it now is, not the stale pending page; a done order says plainly that
// nothing is pending; and a done report is never selected by default, and
// reopening it needs the page's explicit confirmation.
func TestBrowserOrderSafety(t *testing.T) {
	ctx := newBrowser(t)
	db := storetest.SQLite.URL(t)
	url, _ := serveEnv(t, envMap("CALLOUT_SECURE_COOKIES", "false"), db)
	lab := newBrowserLab(t, db, url)
	lab.user("asha", "asha's long password")
	bill, reports := lab.orderAt("ORD-2001", "Maria Müller", "+1 555 0100", 12, electrolytes+","+glucose)
	plain, _ := lab.orderAt("ORD-2002", "John Okafor", "+1 555 0110", 5, lipids)
	elec := fmt.Sprintf("report-%d", reports[0])

	signIn(t, ctx, url, "asha", "asha's long password")
	js := func(expr string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		require.NoError(t, err)
		return v
	}

	// No critical result: a plain sentence, no form.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(fmt.Sprintf("%s/bills/%d", url, plain)),
		chromedp.WaitVisible(chromedp.ID("nothing-due")),
	))
	require.Contains(t, mainText(t, ctx), "This order has no critical result: there is nothing to call out.")
	require.False(t, js(`!!document.querySelector("button[value=done]")`), "no empty callout form")

	// Mark the order done from the worklist; Back shows it done, not pending.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.ID("worklist")),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.order[href="/bills/%d"]`, bill))),
		chromedp.WaitVisible(chromedp.CSS("button[value=done]")),
	))
	require.True(t, checked(t, ctx, elec))
	require.False(t, js(`!!document.getElementById("nothing-due")`))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("notified_person"), "Dr. Anil Rao, registrar"),
		chromedp.Click(chromedp.CSS("button[value=done]")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	))
	require.Equal(t, 2, lab.callouts(bill))
	// Chromium keeps even a no-store page in its back-forward cache and
	// shows it again without asking the server (no load event: hence
	// history.back() rather than chromedp.NavigateBack, which waits for one).
	_, err := chromedp.Run(ctx, chromedp.Evaluate[any](`history.back()`))
	require.NoError(t, err)
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.WaitVisible(chromedp.ID("nothing-due"))); err != nil {
		shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("Back showed the stale order page: %v\n%s", err, shown)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%s/bills/%d", url, bill), loc, "Back went to the order page as it was opened")
	text := mainText(t, ctx)
	require.Contains(t, text, "Every critical result of this order has been called out. Nothing is pending.")
	require.False(t, js(`!!document.querySelector(".report .badge.pending")`), "no stale pending report after Back")
	require.False(t, checked(t, ctx, elec), "a done report is not selected by default")
	require.Contains(t, text, "Done", "the history shows the callout")

	// Ticking a done report asks to reopen it; without the answer nothing changes.
	require.False(t, js(`document.querySelector(".call-again").open`), "the form to call again is folded away")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(".call-again summary")),
		chromedp.Click(chromedp.ID(elec)),
		chromedp.WaitVisible(chromedp.ID(fmt.Sprintf("reopen-%d", reports[0]))),
	))
	require.Regexp(t, `Reopen Serum Electrolytes, called out as done at \d\d:\d\d\?`, mainText(t, ctx))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("button[value=done]")),
		chromedp.WaitVisible(chromedp.CSS("p.error")),
	))
	require.Contains(t, mainText(t, ctx), "Serum Electrolytes was already called out as done")
	require.Equal(t, 2, lab.callouts(bill), "nothing saved without the confirmation")
	require.True(t, checked(t, ctx, elec), "the form is kept as it was sent")

	// With the confirmation, the report is called out again.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID(fmt.Sprintf("reopen-%d", reports[0]))),
		chromedp.SetValue(chromedp.ID("notified_person"), "Dr. Anil Rao, registrar"),
		chromedp.Click(chromedp.CSS("button[value=done]")),
		chromedp.WaitVisible(chromedp.CSS("p.flash")),
	))
	require.Contains(t, mainText(t, ctx), "Callout marked done.")
	require.Equal(t, 3, lab.callouts(bill))

	// On a 390 px wide phone the order page does not scroll sideways.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(fmt.Sprintf("%s/bills/%d", url, bill)),
		chromedp.WaitVisible(chromedp.ID("nothing-due")),
		chromedp.Click(chromedp.CSS(".call-again summary")),
	))
	// A mobile browser widens its layout viewport to fit what overflows,
	// so both must stay at the device's 390 px.
	w, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	require.NoError(t, err)
	require.Equal(t, []int{390, 390}, w, "no horizontal overflow at 390 px")
	newScreenshots(t).take(ctx, "order-phone.png")
}
