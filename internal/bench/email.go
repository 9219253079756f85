package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/pprof"
	"strconv"
	"time"
)

// EmailResult is one cell of the email set: the API with the job queue and
// workers wired as in production, without and with email, beside the bare
// API measured in the same cell (so all three see the same machine load).
type EmailResult struct {
	Engine  string
	Reports int
	// Core: the API as the core set measures it: no job queue at all.
	Core Result
	// Queue: callouts without email; each still enqueues (in its
	// transaction) the index-sync job the workers then run, as in production.
	Queue Result
	// Email: every callout also emails the patient and the referral, so two
	// delivery jobs more per callout.
	Email Result
	// Expected is the number of emails the Email run's callouts enqueued
	// (2 per completed callout); Arrived how many the SMTP sink accepted
	// before the wait ended.
	Expected, Arrived int
	// Span runs from the first callout of the Email run to the last email
	// the sink accepted; DeliveryPerSecond is Arrived / Span.
	Span              time.Duration
	DeliveryPerSecond float64
}

// emailsPerCallout: the bench orders' patient and referral both have an
// email address and the email body chooses both.
const emailsPerCallout = 2

// runEmailCell measures one engine and size, each run on a fresh database:
// the bare API (as in the core set), the API with queue and workers without
// email, then with email.
func runEmailCell(ctx context.Context, cfg Config, engine string, size int, log *slog.Logger) (EmailResult, error) {
	res := EmailResult{Engine: engine, Reports: size}
	for _, mode := range []string{ModeAPI, ModeQueue, ModeEmail} {
		var err error
		pprof.Do(ctx, pprof.Labels("engine", engine, "reports", strconv.Itoa(size), "mode", mode), func(ctx context.Context) {
			err = runQueued(ctx, cfg, engine, size, mode, &res, log)
		})
		if err != nil {
			return res, err
		}
	}
	return res, ctx.Err()
}

// runQueued is one run of the email set on a fresh database: mode is
// ModeAPI (no queue), ModeQueue or ModeEmail.
func runQueued(ctx context.Context, cfg Config, engine string, size int, mode string, res *EmailResult, log *slog.Logger) error {
	dbURL, drop, err := freshDatabase(ctx, cfg, engine)
	if err != nil {
		return err
	}
	defer drop()
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.close()

	log.Info("bench: preparing", "engine", engine, "reports", size, "orders", cfg.Orders, "mode", mode)
	srv, err := openServer(ctx, cfg, dbURL)
	if err != nil {
		return err
	}
	defer srv.close()
	_, orders, token, err := seed(ctx, srv.svc, cfg.Orders, size)
	if err != nil {
		return fmt.Errorf("create orders: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if mode != ModeAPI {
		if err := srv.start(ctx, dbURL, sink.URL(), "http://"+ln.Addr().String(), log); err != nil {
			ln.Close()
			return err
		}
	}

	s, err := runAPI(ctx, cfg, ln, srv.st, srv.svc, token, orders, mode == ModeEmail)
	if err != nil {
		return err
	}
	r := s.result(engine, size, cfg.Clients, mode)
	logResult(log, r, s.firstErr)
	switch mode {
	case ModeAPI:
		res.Core = r
		return nil
	case ModeQueue:
		res.Queue = r
		return nil
	}
	res.Email = r
	res.Expected = emailsPerCallout * s.ok
	got, last := sink.waitFor(ctx, res.Expected, cfg.EmailWait)
	res.Arrived = got
	if got > 0 {
		res.Span = last.Sub(s.start)
		res.DeliveryPerSecond = float64(got) / res.Span.Seconds()
	}
	args := []any{"engine", engine, "reports", size, "expected", res.Expected, "arrived", got,
		"span", res.Span.Round(time.Millisecond), "per_second", fmt.Sprintf("%.0f", res.DeliveryPerSecond)}
	if got < res.Expected {
		log.Warn("bench: not every email arrived in time", append(args, "waited", cfg.EmailWait)...)
	} else {
		log.Info("bench: emails delivered", args...)
	}
	return nil
}
