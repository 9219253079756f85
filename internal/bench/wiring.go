package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"callout/internal/callout"
	"callout/internal/jobs"
	"callout/internal/notify"
	"callout/internal/search"
	"callout/internal/sqlstore"
)

// server is the service wired as `callout serve` wires it (cmd/callout
// newRuntime with workers): the store, the use cases, the River queue with
// its workers in this process and the embedded Bleve index in a directory
// of its own.
type server struct {
	st    *sqlstore.Store
	svc   *callout.Service
	queue *jobs.Queue
	index *search.Bleve
	dir   string
}

// benchFrom is the sender of the bench's emails; its domain ends every
// Message-ID, as CALLOUT_SMTP_FROM's does.
const (
	benchFrom   = "Callout Bench <callout@bench.localhost>"
	benchDomain = "bench.localhost"
)

// openServer opens and migrates the database at dbURL (the store's and
// River's tables) and opens the index. The queue is not wired yet: seed
// first (so the measurement starts with an empty queue), then call start.
func openServer(ctx context.Context, cfg Config, dbURL string) (*server, error) {
	st, err := sqlstore.Open(ctx, dbURL, nil)
	if err != nil {
		return nil, err
	}
	s := &server{st: st, svc: callout.NewService(st, nil)}
	if err := st.Migrate(ctx); err != nil {
		s.close()
		return nil, err
	}
	if err := jobs.Migrate(ctx, st.DB, jobs.Engine(st.Engine)); err != nil {
		s.close()
		return nil, err
	}
	if s.dir, err = os.MkdirTemp(cfg.Dir, "index-"); err != nil {
		s.close()
		return nil, err
	}
	if s.index, err = search.OpenBleve(s.dir); err != nil {
		s.close()
		return nil, fmt.Errorf("open the search index: %w", err)
	}
	return s, nil
}

// start wires the job queue into the store (so callouts and ingested
// results enqueue their jobs in their own transaction) and starts the
// workers: index sync, and deliveries to the SMTP server at smtpURL ("" for
// none). Job logs below Warn are dropped.
func (s *server) start(ctx context.Context, dbURL, smtpURL, baseURL string, log *slog.Logger) error {
	jlog := slog.New(minLevel{log.Handler(), slog.LevelWarn})
	sync := &search.Sync{Store: s.st, Index: s.index}
	s.svc.Search = sync
	d := &jobs.Deliverer{Store: s.st, BaseURL: baseURL, Domain: benchDomain, Log: jlog}
	if smtpURL != "" {
		m, err := notify.NewMailer(notify.SMTPConfig{URL: smtpURL, From: benchFrom})
		if err != nil {
			return err
		}
		d.Mailer = m
	}
	jcfg := jobs.Config{DB: s.st.DB, Engine: jobs.Engine(s.st.Engine), Log: jlog, Work: true, Deliverer: d, Indexer: sync}
	if s.st.Engine == sqlstore.Postgres {
		jcfg.URL = dbURL
	}
	q, err := jobs.New(ctx, jcfg)
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	s.queue = q
	s.st.Jobs = q
	return nil
}

// close stops the workers (letting running jobs finish for a while), then
// closes the index and the store and removes the index.
func (s *server) close() error {
	var errs []error
	if s.queue != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		errs = append(errs, s.queue.Stop(ctx))
		cancel()
	}
	if s.index != nil {
		errs = append(errs, s.index.Close())
	}
	errs = append(errs, s.st.Close())
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
