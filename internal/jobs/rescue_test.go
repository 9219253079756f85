package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/jobs"
	"callout/internal/notify"
	"callout/internal/notify/smtptest"
	"callout/internal/sqlstore"
	"callout/internal/storetest"
)

// rescueBundle is a store with a working queue that mails through an
// in-process SMTP server.
type rescueBundle struct {
	fx   *storetest.Fixture
	smtp *smtptest.Server
	q    *jobs.Queue
}

func rescueSetup(t *testing.T, e storetest.Engine, timeout time.Duration) *rescueBundle {
	t.Helper()
	ctx := context.Background()
	fx := storetest.NewFixture(t, e, callout.Settings{})
	require.NoError(t, jobs.Migrate(ctx, fx.Store.DB, jobs.Engine(fx.Store.Engine)))
	srv := smtptest.Start(t)
	m, err := notify.NewMailer(notify.SMTPConfig{URL: srv.URL(), From: "callout@lab.example"})
	require.NoError(t, err)
	q, err := jobs.New(ctx, jobs.Config{DB: fx.Store.DB, Engine: jobs.Engine(fx.Store.Engine), Work: true,
		Deliverer:  &jobs.Deliverer{Store: fx.Store, Mailer: m, Domain: "lab.example"},
		JobTimeout: timeout, PollEvery: 50 * time.Millisecond, RetryBase: 100 * time.Millisecond})
	require.NoError(t, err)
	fx.Store.Jobs = q
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(stop)
	})
	return &rescueBundle{fx: fx, smtp: srv, q: q}
}

// emailCallout makes a done callout with one email copy (to the referral)
// and returns its delivery.
func (b *rescueBundle) emailCallout(t *testing.T) callout.Delivery {
	t.Helper()
	c := b.fx.Create(t, storetest.Order("R1", 1))
	_, err := b.fx.Svc.Callout(context.Background(), b.fx.Staff, c.ID, storetest.Done(c.Reports[0].ID), nil)
	require.NoError(t, err)
	ds, err := b.fx.Store.Deliveries(context.Background(), b.fx.Lab, callout.DeliveryFilter{BillID: &c.ID, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ds[0]
}

func (b *rescueBundle) status(t *testing.T, id int64) string {
	t.Helper()
	ds, err := b.fx.Store.Deliveries(context.Background(), b.fx.Lab, callout.DeliveryFilter{ID: &id, Limit: 1})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ds[0].Status
}

// take does, through River's own driver, what a process does when it takes
// the delivery job to work it, as if it had done so at began, and returns
// the job.
func take(t *testing.T, st *sqlstore.Store, began time.Time) *rivertype.JobRow {
	t.Helper()
	ctx := context.Background()
	var exec riverdriver.Executor
	if st.Engine == sqlstore.SQLite {
		exec = riversqlite.New(st.DB).GetExecutor()
	} else {
		exec = riverdatabasesql.New(st.DB).GetExecutor()
	}
	res, err := exec.JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{
		ClientID: "other-process", MaxToLock: 10, MaxAttemptedBy: 100, Queue: "default"})
	require.NoError(t, err)
	require.Len(t, res.Jobs, 1)
	require.Equal(t, "deliver", res.Jobs[0].Kind)
	j, err := exec.JobUpdateFull(ctx, &riverdriver.JobUpdateFullParams{ID: res.Jobs[0].ID, AttemptedAtDoUpdate: true, AttemptedAt: &began})
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateRunning, j.State)
	return j
}

func TestRescue(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("AJobOfADeadProcessRunsAgain", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := rescueSetup(t, e, 0)
			d := b.emailCallout(t)

			// Another process took the job and died: it stays marked
			// running, begun longer ago than a live process lets it run.
			taken := take(t, b.fx.Store, time.Now().Add(-(jobs.DefaultJobTimeout + jobs.RescueMargin + time.Second)))

			require.NoError(t, b.q.Start(ctx))
			msgs := b.smtp.WaitFor(1, 10*time.Second)
			require.Contains(t, msgs[0].MessageID, ".referral.email.")
			require.Eventually(t, func() bool { return b.status(t, d.ID) == callout.DeliverySent },
				10*time.Second, 20*time.Millisecond)
			var errs string
			require.NoError(t, b.fx.Store.DB.QueryRow(`SELECT CAST(errors AS TEXT) FROM river_job WHERE id = $1`, taken.ID).Scan(&errs))
			require.Contains(t, errs, "the process running this attempt stopped")
		})

		t.Run("ARecentRunningJobIsLeftAlone", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := rescueSetup(t, e, 0)
			b.emailCallout(t)
			// Taken by a process that may well be alive: its attempt may
			// still be running for a few seconds.
			taken := take(t, b.fx.Store, time.Now().Add(-(jobs.DefaultJobTimeout - jobs.RescueMargin)))
			require.NoError(t, b.q.Start(ctx))
			// An observation window: the rescue runs when the queue starts
			// and again RescueEvery later.
			time.Sleep(jobs.RescueEvery + time.Second)
			var state string
			require.NoError(t, b.fx.Store.DB.QueryRow(`SELECT state FROM river_job WHERE id = $1`, taken.ID).Scan(&state))
			require.Equal(t, "running", state)
			require.Empty(t, b.smtp.Messages())
		})

		t.Run("ARunningJobIsNeverRunTwiceAtOnce", func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// Every attempt hangs in the SMTP conversation until its 1 s
			// timeout ends it; River retries it again and again. Over
			// longer than the rescue horizon, no attempt may start while
			// another is still talking to the server.
			const timeout = time.Second
			b := rescueSetup(t, e, timeout)
			b.smtp.Hold()
			d := b.emailCallout(t)
			require.NoError(t, b.q.Start(ctx))
			b.smtp.WaitHeld(1, 10*time.Second)
			// An observation window, not a synchronisation: a rescue of a
			// live attempt would happen within it.
			time.Sleep(timeout + jobs.RescueMargin + 2*jobs.RescueEvery)
			require.Equal(t, 1, b.smtp.MostHeldAtOnce(), "one message was being sent twice at once")
			b.smtp.Release()
			b.smtp.WaitFor(1, 10*time.Second)
			require.Eventually(t, func() bool { return b.status(t, d.ID) == callout.DeliverySent },
				10*time.Second, 20*time.Millisecond)
		})
	})
}
