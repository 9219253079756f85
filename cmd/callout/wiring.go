package main

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"callout/internal/callout"
	"callout/internal/jobs"
	"callout/internal/notify"
	"callout/internal/sqlstore"
)

// runtime is the wired service: store, use cases and job queue.
type runtime struct {
	store *sqlstore.Store
	svc   *callout.Service
	queue *jobs.Queue
}

func (r *runtime) Close() error { return r.store.Close() }

// durationEnv reads a duration from the environment, e.g. CALLOUT_RETRY_BASE=500ms.
func durationEnv(e *env, name string) (time.Duration, error) {
	v := e.getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration such as 2s", name, v)
	}
	return d, nil
}

// newRuntime opens and migrates the database and wires the job queue. With
// work, this process also runs the workers.
func newRuntime(ctx context.Context, e *env, url string, work bool, baseURL string) (*runtime, error) {
	st, err := openStore(ctx, e, url)
	if err != nil {
		return nil, err
	}
	rt := &runtime{store: st, svc: callout.NewService(st, e.log)}
	cfg := jobs.Config{DB: st.DB, Engine: jobs.Engine(st.Engine), Log: e.log, Work: work}
	if st.Engine == sqlstore.Postgres {
		cfg.URL = url
	}
	if cfg.RetryBase, err = durationEnv(e, "CALLOUT_RETRY_BASE"); err != nil {
		st.Close()
		return nil, err
	}
	if cfg.JobTimeout, err = durationEnv(e, "CALLOUT_JOB_TIMEOUT"); err != nil {
		st.Close()
		return nil, err
	}
	if cfg.PollEvery, err = durationEnv(e, "CALLOUT_POLL_INTERVAL"); err != nil {
		st.Close()
		return nil, err
	}
	if work {
		d, err := deliverer(e, st, baseURL)
		if err != nil {
			st.Close()
			return nil, err
		}
		cfg.Deliverer = d
	}
	if rt.queue, err = jobs.New(ctx, cfg); err != nil {
		st.Close()
		return nil, err
	}
	st.Jobs = rt.queue
	return rt, nil
}

// deliverer configures email and fax from CALLOUT_SMTP_URL, CALLOUT_SMTP_FROM
// and CALLOUT_FAX_GATEWAY. Without an SMTP URL, deliveries fail visibly
// (and can be retried once it is set) rather than vanish.
func deliverer(e *env, st *sqlstore.Store, baseURL string) (*jobs.Deliverer, error) {
	d := &jobs.Deliverer{Store: st, FaxGateway: strings.TrimSpace(e.getenv("CALLOUT_FAX_GATEWAY")), BaseURL: baseURL, Log: e.log}
	if v := e.getenv("CALLOUT_BASE_URL"); v != "" {
		d.BaseURL = v
	}
	from := e.getenv("CALLOUT_SMTP_FROM")
	if from == "" {
		from = "callout@localhost"
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("CALLOUT_SMTP_FROM=%q is not an email address", from)
	}
	d.Domain = addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]
	if u := e.getenv("CALLOUT_SMTP_URL"); u != "" {
		m, err := notify.NewMailer(notify.SMTPConfig{URL: u, From: from})
		if err != nil {
			return nil, fmt.Errorf("CALLOUT_SMTP_URL: %w", err)
		}
		d.Mailer = m
	} else {
		e.log.Warn("CALLOUT_SMTP_URL is not set: email and fax copies will fail until it is")
	}
	return d, nil
}
