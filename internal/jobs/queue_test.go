package jobs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/jobs"
	"callout/internal/storetest"
)

// TestCalloutStatementsWithJobs checks, with the job queue wired as in
// production, that a callout's statement count does not grow with the
// order's size, and that a rolled-back callout leaves no job behind.
func TestCalloutStatementsWithJobs(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		fx := storetest.NewFixture(t, e, callout.Settings{})
		require.NoError(t, jobs.Migrate(ctx, fx.Store.DB, jobs.Engine(fx.Store.Engine)))
		q, err := jobs.New(ctx, jobs.Config{DB: fx.Store.DB, Engine: jobs.Engine(fx.Store.Engine)})
		require.NoError(t, err)
		fx.Store.Jobs = q

		orders := 0
		count := func(n int) int64 {
			orders++
			c := fx.Create(t, storetest.Order(fmt.Sprintf("N%d", orders), n))
			req := storetest.Done(storetest.ReportIDs(c)...)
			req.Payload.IsPatient = true // two email deliveries
			before := fx.Store.Queries.Load()
			_, err := fx.Svc.Callout(ctx, fx.Staff, c.ID, req, nil)
			require.NoError(t, err)
			return fx.Store.Queries.Load() - before
		}
		count(1) // River asks the database about itself on its first insert
		// River follows a job insert with a notification statement when
		// the queue's last one is older than its fetch cooldown (100 ms):
		// a matter of the clock, not of the order's size, and a loaded
		// machine takes longer than that over a 100-report order. So a
		// callout counts as constant when 100 reports take at most that
		// one statement more than 1 report.
		one, hundred := count(1), count(100)
		// River follows an insert with a notification to the queue's
		// listeners, rate-limited by time (at most one per queue and
		// interval), so either callout may carry that one statement. A
		// statement per report would add 99 here.
		require.InDelta(t, one, hundred, 1, "statements for 1 report vs 100 reports")
		t.Logf("%s: %d statements per done callout with 2 deliveries, jobs included", e.Name, one)

		jobCount := func() int {
			var n int
			require.NoError(t, fx.Store.DB.QueryRow(`SELECT count(*) FROM river_job`).Scan(&n))
			return n
		}
		// The idempotency key is the transaction's last write, after the
		// jobs: a key already used makes the callout roll back after its
		// jobs were inserted.
		used := fx.Create(t, storetest.Order("USED", 1))
		_, err = fx.Svc.Callout(ctx, fx.Staff, used.ID, storetest.Done(used.Reports[0].ID), &callout.Idempotency{Key: "k", Hash: "h"})
		require.NoError(t, err)
		before := jobCount()
		c := fx.Create(t, storetest.Order("RB", 1))
		created := jobCount()
		require.Equal(t, before+1, created, "a new order enqueues its index sync")
		_, err = fx.Svc.Callout(ctx, fx.Staff, c.ID, storetest.Done(c.Reports[0].ID), &callout.Idempotency{Key: "k", Hash: "other"})
		require.ErrorIs(t, err, callout.ErrIdempotencyRace)
		require.Equal(t, created, jobCount(), "a rolled-back callout leaves no job")
	})
}
