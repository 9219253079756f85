// Package jobs runs Callout's side effects — email and fax copies, search
// index sync — as River jobs. Jobs are inserted in the callout's own
// transaction (River's InsertTx), so a committed callout always gets them
// and a rolled-back one never does; failed jobs retry with backoff and stay
// visible when they give up.
package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// DeliverArgs is the job that sends one delivery (an email or a fax).
type DeliverArgs struct {
	LabID      int64 `json:"lab_id"`
	DeliveryID int64 `json:"delivery_id"`
}

// Kind names the job in the queue.
func (DeliverArgs) Kind() string { return "deliver" }

// InsertOpts gives deliveries their retry budget: with the default backoff
// they keep trying for about an hour and a half before they give up.
func (DeliverArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 15} }

// IndexBillArgs is the job that syncs an order's reports to the search index.
type IndexBillArgs struct {
	LabID  int64 `json:"lab_id"`
	BillID int64 `json:"bill_id"`
}

// Kind names the job in the queue.
func (IndexBillArgs) Kind() string { return "index_bill" }

// QueueIndex is the queue of index syncs. It is worked only by processes
// that hold the index: the embedded index belongs to one process (`serve`),
// while deliveries may be worked anywhere.
const QueueIndex = "index"

// InsertOpts puts index syncs on their own queue and lets them retry
// quickly; the next sync of the order, or `callout reindex`, repairs one
// that gave up.
func (IndexBillArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, Queue: QueueIndex}
}

// Engine names the database the queue lives in, as sqlstore does.
type Engine string

// Config configures a Queue.
type Config struct {
	DB     *sql.DB
	Engine Engine // "sqlite" or "postgres"
	// URL is the PostgreSQL URL; with it, workers on other machines are woken
	// by LISTEN/NOTIFY instead of waiting for the next poll.
	URL string
	Log *slog.Logger
	// Work starts workers; without it the queue only inserts jobs (a web
	// node whose deliveries run in `callout worker` processes).
	Work       bool
	Deliverer  *Deliverer
	Indexer    Indexer
	MaxWorkers int           // default 10
	RetryBase  time.Duration // first retry delay, doubling up to RetryCap; default 2s
	RetryCap   time.Duration // default 10m
	// JobTimeout bounds one attempt of a job: its context ends then, which
	// aborts an SMTP conversation (notify.Mailer closes the connection).
	// Every process of one database must use the same value: a job still
	// marked running JobTimeout + RescueMargin after it began is taken for a
	// dead process's and run again by any of them.
	JobTimeout time.Duration // default DefaultJobTimeout
	PollEvery  time.Duration // default 500ms
}

// Job timing. A process killed in the middle of a job leaves it marked
// running; a job marked running longer than any live process lets it run
// belongs to a dead one, and each working process puts such jobs back in
// the queue (see rescue). With the defaults, a delivery interrupted by a
// crash is sent again at most DefaultJobTimeout + RescueMargin + RescueEvery
// (22 s) after its attempt began, so well within 30 s of the restart.
const (
	// DefaultJobTimeout bounds one attempt. A delivery is one SMTP
	// conversation with the lab's relay (a second or two; an attempt cut
	// short is retried with the same message); an index sync writes one
	// order's documents.
	DefaultJobTimeout = 15 * time.Second
	// RescueMargin is how long past its timeout a job may still be marked
	// running before it is run again. A live process's attempt has ended
	// by its timeout (its context is cancelled; every step of a delivery
	// honours it), so the margin only covers the moment between River
	// marking a job running and starting its clock, the worker returning,
	// and clock differences between machines. River's own completion
	// record may lag longer (a slow database); the job then runs again,
	// but never beside itself: the first attempt is over, and a delivery
	// already marked sent is not sent again.
	RescueMargin = 5 * time.Second
	// RescueEvery is how often each working process looks for such jobs.
	RescueEvery = 2 * time.Second
)

// Queue inserts and (optionally) works the jobs.
type Queue struct {
	working bool
	client  *river.Client[*sql.Tx]
	exec    riverdriver.Executor
	pool    *pgxpool.Pool
	log     *slog.Logger
	// rescueAfter is how long a job may be marked running before it is
	// taken for a dead process's: JobTimeout + RescueMargin.
	rescueAfter time.Duration
	stopRescue  context.CancelFunc
	rescueDone  chan struct{}
}

func driver(ctx context.Context, cfg Config) (riverdriver.Driver[*sql.Tx], *pgxpool.Pool, error) {
	switch cfg.Engine {
	case "sqlite":
		return riversqlite.New(cfg.DB), nil, nil
	case "postgres":
		if cfg.URL == "" || (!cfg.Work && cfg.Indexer == nil) {
			return riverdatabasesql.New(cfg.DB), nil, nil
		}
		pcfg, err := pgxpool.ParseConfig(cfg.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("parse PostgreSQL URL for the job listener: %w", err)
		}
		pcfg.MinConns, pcfg.MaxConns = 0, 2
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, nil, fmt.Errorf("connect the job listener: %w", err)
		}
		return riverdatabasesql.NewWithPgxListener(cfg.DB, pool), pool, nil
	}
	return nil, nil, fmt.Errorf("unknown engine %q", cfg.Engine)
}

// Migrate brings River's own tables up to date in db.
func Migrate(ctx context.Context, db *sql.DB, engine Engine) error {
	var m interface {
		Migrate(context.Context, rivermigrate.Direction, *rivermigrate.MigrateOpts) (*rivermigrate.MigrateResult, error)
	}
	var err error
	switch engine {
	case "sqlite":
		m, err = rivermigrate.New(riversqlite.New(db), nil)
	case "postgres":
		m, err = rivermigrate.New(riverdatabasesql.New(db), nil)
	default:
		return fmt.Errorf("unknown engine %q", engine)
	}
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate job queue: %w", err)
	}
	return nil
}

// New returns a queue over cfg.DB. Call Start to run workers.
func New(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	drv, pool, err := driver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rc := &river.Config{
		Logger:      cfg.Log.With("component", "jobs"),
		PollOnly:    pool == nil,
		RetryPolicy: &backoff{base: or(cfg.RetryBase, 2*time.Second), limit: or(cfg.RetryCap, 10*time.Minute)},
		JobTimeout:  or(cfg.JobTimeout, DefaultJobTimeout),
		// Discarded jobs are kept a month: a delivery that gave up is also
		// recorded on its delivery row, but the job shows why in detail.
		DiscardedJobRetentionPeriod: 30 * 24 * time.Hour,
	}
	// Jobs of dead processes are put back by our own rescue, every
	// RescueEvery in every working process. River's rescuer runs only every
	// 30 s, only on the elected leader (up to ~15 s after a restart), and
	// schedules the retry with backoff through the leader's scheduler:
	// together often more than a minute. It stays as a backstop at its
	// default hour.
	rc.RescueStuckJobsAfter = max(time.Hour, rc.JobTimeout+RescueMargin)
	rc.FetchPollInterval = or(cfg.PollEvery, 500*time.Millisecond)
	if rc.FetchCooldown > rc.FetchPollInterval || rc.FetchCooldown == 0 {
		rc.FetchCooldown = min(river.FetchCooldownDefault, rc.FetchPollInterval)
	}
	if cfg.Work || cfg.Indexer != nil {
		workers := river.NewWorkers()
		rc.Queues = map[string]river.QueueConfig{}
		if cfg.Work && cfg.Deliverer != nil {
			river.AddWorker(workers, cfg.Deliverer)
			rc.Queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: or(cfg.MaxWorkers, 10)}
		}
		if cfg.Indexer != nil {
			river.AddWorker(workers, &indexWorker{index: cfg.Indexer})
			rc.Queues[QueueIndex] = river.QueueConfig{MaxWorkers: 2}
		}
		rc.Workers = workers
		// This process may insert kinds it does not work itself (a
		// --no-workers server inserts deliveries for `callout worker`).
		rc.SkipUnknownJobCheck = true
	}
	client, err := river.NewClient(drv, rc)
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, fmt.Errorf("create job queue: %w", err)
	}
	return &Queue{client: client, exec: drv.GetExecutor(), pool: pool, log: cfg.Log, working: rc.Workers != nil,
		rescueAfter: rc.JobTimeout + RescueMargin}, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Working reports whether this queue runs workers (Start does anything).
func (q *Queue) Working() bool { return q.working }

// Start runs the workers until ctx ends or Stop is called; an insert-only
// queue has nothing to start.
func (q *Queue) Start(ctx context.Context) error {
	if !q.working {
		return nil
	}
	if err := q.client.Start(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	q.stopRescue, q.rescueDone = cancel, make(chan struct{})
	go q.rescueLoop(rctx)
	return nil
}

// Stop lets running jobs finish (within ctx) and stops the workers.
func (q *Queue) Stop(ctx context.Context) error {
	var err error
	if q.stopRescue != nil {
		q.stopRescue()
		<-q.rescueDone
	}
	if q.working {
		err = q.client.Stop(ctx)
	}
	if q.pool != nil {
		q.pool.Close()
	}
	return err
}

// rescueLoop runs rescue now and every RescueEvery until ctx ends: at once,
// so that a restarted process resumes its predecessor's jobs as soon as
// they qualify.
func (q *Queue) rescueLoop(ctx context.Context) {
	defer close(q.rescueDone)
	tick := time.NewTicker(RescueEvery)
	defer tick.Stop()
	for {
		n, err := q.rescue(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			q.log.Warn("putting back jobs of stopped processes", "err", err)
		case n > 0:
			q.log.Info("jobs of a stopped process put back in the queue", "jobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// rescue makes every job that has been marked running for longer than
// JobTimeout + RescueMargin available to run again at once, and returns how
// many it found. Its attempt keeps counting toward the job's MaxAttempts;
// one past them still runs, and a delivery that then fails is recorded as
// failed for good. River's own query guards the update (still running,
// still started before the horizon), so processes rescuing at the same
// time cannot take a job that has just started again.
func (q *Queue) rescue(ctx context.Context, now time.Time) (int, error) {
	horizon := now.Add(-q.rescueAfter)
	total := 0
	for after := int64(0); ; {
		stuck, err := q.exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{AfterID: after, Max: 100, StuckHorizon: horizon})
		if err != nil {
			return total, fmt.Errorf("find jobs of stopped processes: %w", err)
		}
		if len(stuck) == 0 {
			return total, nil
		}
		p := &riverdriver.JobRescueManyParams{StuckHorizon: horizon}
		for _, j := range stuck {
			began := horizon
			if j.AttemptedAt != nil {
				began = *j.AttemptedAt
			}
			msg, err := json.Marshal(rivertype.AttemptError{At: now.UTC(), Attempt: max(j.Attempt, 0),
				Error: fmt.Sprintf("the process running this attempt stopped: still marked running %s after it began; run again",
					now.Sub(began).Round(time.Second))})
			if err != nil {
				return total, err
			}
			p.ID = append(p.ID, j.ID)
			p.Error = append(p.Error, msg)
			p.FinalizedAt = append(p.FinalizedAt, nil)
			p.ScheduledAt = append(p.ScheduledAt, now.UTC())
			p.State = append(p.State, string(rivertype.JobStateAvailable))
		}
		if _, err := q.exec.JobRescueMany(ctx, p); err != nil {
			return total, fmt.Errorf("put back jobs of stopped processes: %w", err)
		}
		total += len(stuck)
		after = stuck[len(stuck)-1].ID
	}
}

// EnqueueCallout inserts, in tx, the index sync of the order and one job per
// delivery.
func (q *Queue) EnqueueCallout(ctx context.Context, tx *sql.Tx, labID, billID int64, deliveryIDs []int64) error {
	params := []river.InsertManyParams{{Args: IndexBillArgs{LabID: labID, BillID: billID}}}
	for _, id := range deliveryIDs {
		params = append(params, river.InsertManyParams{Args: DeliverArgs{LabID: labID, DeliveryID: id}})
	}
	_, err := q.client.InsertManyTx(ctx, tx, params)
	return err
}

// EnqueueDelivery inserts, in tx, one more attempt at a delivery.
func (q *Queue) EnqueueDelivery(ctx context.Context, tx *sql.Tx, labID, deliveryID int64) error {
	_, err := q.client.InsertTx(ctx, tx, DeliverArgs{LabID: labID, DeliveryID: deliveryID}, nil)
	return err
}

// EnqueueIndex inserts an index sync of one order outside any callout (for
// example after results changed).
func (q *Queue) EnqueueIndex(ctx context.Context, tx *sql.Tx, labID, billID int64) error {
	_, err := q.client.InsertTx(ctx, tx, IndexBillArgs{LabID: labID, BillID: billID}, nil)
	return err
}

// backoff doubles the wait after each failure, from base up to limit, with
// ±10% jitter so that a burst of failures does not retry in lockstep.
type backoff struct{ base, limit time.Duration }

func (b *backoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := b.base
	for i := 1; i < job.Attempt && d < b.limit; i++ {
		d *= 2
	}
	d = min(d, b.limit)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return time.Now().Add(d + jitter)
}
