package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// TestWorklistSearch checks the worklist's text search through the index:
// orders are indexed when created and after every callout (by jobs, after
// commit), the state filter combines with the text, and `callout reindex`
// rebuilds a lost index from the database.
func TestWorklistSearch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		db := e.URL(t)
		dir := filepath.Join(t.TempDir(), "index")
		env := func(k string) string {
			return map[string]string{"CALLOUT_INDEX_DIR": dir, "CALLOUT_POLL_INTERVAL": "50ms"}[k]
		}
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", db}, env, out, io.Discard) }()
		require.Eventually(t, func() bool { return len(out.String()) > 0 }, 20*time.Second, 10*time.Millisecond)
		srvURL := regexpURL(t, out.String())
		c := newLab(t, db, srvURL)
		bill, ids := c.order("ORD-77")
		c.order("ORD-78")

		search := func(q string, states string) []any {
			status, m := c.do("GET", "/api/v1/worklist?q="+url.QueryEscape(q)+"&critical_values="+states, "")
			require.Equal(t, 200, status, m)
			return m["reports"].([]any)
		}
		require.Eventually(t, func() bool { return len(search("muller ORD-77", "1,2,4")) == 2 }, 20*time.Second, 50*time.Millisecond,
			"a new order is indexed: accent-folded patient name and Order ID")
		require.Eventually(t, func() bool { return len(search("mar gluc", "1,2,4")) == 2 }, 20*time.Second, 50*time.Millisecond,
			"prefixes of patient and test name, both orders")
		require.Empty(t, search("nobody", "1,2,4"))

		c.callout(bill, ids[:1], false, `{"notified_person":"Dr. Rao","is_referral":true}`)
		require.Eventually(t, func() bool { return len(search("ORD-77", "2")) == 1 }, 20*time.Second, 50*time.Millisecond,
			"the callout's sync moves the report to done in the index")
		first := search("ORD-77", "2")[0].(map[string]any)
		require.EqualValues(t, ids[0], first["id"])
		require.Equal(t, "ORD-77", first["lab_bill_id"])
		require.Len(t, search("ORD-77", "1"), 1)

		other := newLab(t, db, srvURL)
		status, m := other.do("GET", "/api/v1/worklist?q=ORD-77", "")
		require.Equal(t, 200, status)
		require.Empty(t, m["reports"], "another lab's search finds nothing")

		cancel()
		<-done

		// Rebuild into an empty directory from the database.
		dir = filepath.Join(t.TempDir(), "rebuilt")
		var stdout, stderr syncBuffer
		code := run(context.Background(), []string{"reindex", "--db", db}, env, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		require.Contains(t, stdout.String(), "indexed 4 reports of 2 orders")
		u2, _ := serveEnv(t, env, db)
		c.url = u2
		require.Len(t, search("ORD-77", "2"), 1, "the rebuilt index has the done state")
		require.Len(t, search("maria", "1,2,4"), 4)
		_ = fmt.Sprint
	})
}
