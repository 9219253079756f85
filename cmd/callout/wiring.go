package main

import (
	"context"
	"fmt"
	"net/mail"
	"path/filepath"
	"strings"
	"time"

	"callout/internal/callout"
	"callout/internal/jobs"
	"callout/internal/notify"
	"callout/internal/search"
	"callout/internal/sqlstore"
)

// runtime is the wired service: store, use cases and job queue.
type runtime struct {
	store *sqlstore.Store
	svc   *callout.Service
	queue *jobs.Queue
	index search.Engine
}

func (r *runtime) Close() error {
	if r.index != nil {
		r.index.Close()
	}
	return r.store.Close()
}

// indexDir is where the embedded search index lives: beside the SQLite
// file, or CALLOUT_INDEX_DIR (default callout.index) with PostgreSQL.
func indexDir(e *env, st *sqlstore.Store, url string) string {
	if d := e.getenv("CALLOUT_INDEX_DIR"); d != "" {
		return d
	}
	if st.Engine == sqlstore.SQLite {
		if url == "" {
			url = sqlstore.DefaultURL
		}
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		return strings.TrimSuffix(path, filepath.Ext(path)) + ".index"
	}
	return "callout.index"
}

// openIndex opens the search index: Elasticsearch or OpenSearch when
// CALLOUT_SEARCH_URL is set, else the embedded Bleve index, which one
// process at a time may hold.
func openIndex(ctx context.Context, e *env, st *sqlstore.Store, url string) (search.Engine, error) {
	if u := e.getenv("CALLOUT_SEARCH_URL"); u != "" {
		var opts []search.ElasticOption
		if e.getenv("CALLOUT_SEARCH_OPENSEARCH") != "" {
			opts = append(opts, search.WithOpenSearch())
		}
		es, err := search.NewElastic(u, opts...)
		if err != nil {
			return nil, fmt.Errorf("CALLOUT_SEARCH_URL: %w", err)
		}
		if err := es.EnsureIndex(ctx); err != nil {
			return nil, fmt.Errorf("prepare the search index: %w", err)
		}
		return es, nil
	}
	dir := indexDir(e, st, url)
	b, err := search.OpenBleve(dir)
	if err != nil {
		return nil, fmt.Errorf("open the search index %s (another callout process may hold it; set CALLOUT_SEARCH_URL to share an index between processes): %w", dir, err)
	}
	return b, nil
}

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
// work, this process also runs the delivery workers; with holdIndex it opens
// the search index (serving searches and working the index queue).
func newRuntime(ctx context.Context, e *env, url string, work, holdIndex bool, baseURL string) (*runtime, error) {
	st, err := openStore(ctx, e, url)
	if err != nil {
		return nil, err
	}
	rt := &runtime{store: st, svc: callout.NewService(st, e.log)}
	cfg := jobs.Config{DB: st.DB, Engine: jobs.Engine(st.Engine), Log: e.log, Work: work}
	if holdIndex {
		if rt.index, err = openIndex(ctx, e, st, url); err != nil {
			st.Close()
			return nil, err
		}
		sync := &search.Sync{Store: st, Index: rt.index}
		rt.svc.Search, cfg.Indexer = sync, sync
	}
	if st.Engine == sqlstore.Postgres {
		cfg.URL = url
	}
	fail := func(err error) (*runtime, error) {
		rt.Close()
		return nil, err
	}
	if cfg.RetryBase, err = durationEnv(e, "CALLOUT_RETRY_BASE"); err != nil {
		return fail(err)
	}
	if cfg.JobTimeout, err = durationEnv(e, "CALLOUT_JOB_TIMEOUT"); err != nil {
		return fail(err)
	}
	if cfg.PollEvery, err = durationEnv(e, "CALLOUT_POLL_INTERVAL"); err != nil {
		return fail(err)
	}
	if work {
		d, err := deliverer(e, st, baseURL)
		if err != nil {
			return fail(err)
		}
		cfg.Deliverer = d
	}
	if rt.queue, err = jobs.New(ctx, cfg); err != nil {
		return fail(err)
	}
	st.Jobs = rt.queue
	return rt, nil
}

// deliverer configures email and fax from CALLOUT_SMTP_URL, CALLOUT_SMTP_FROM
// and CALLOUT_FAX_GATEWAY. Without an SMTP URL, deliveries fail visibly
// (and can be retried once it is set) rather than vanish.
func deliverer(e *env, st *sqlstore.Store, baseURL string) (*jobs.Deliverer, error) {
	d := &jobs.Deliverer{Store: st, BaseURL: baseURL, Log: e.log}
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
		if loopbackURL(d.BaseURL) {
			// The email's "View the order" link would lead an outside
			// doctor to their own computer.
			e.log.Warn("CALLOUT_BASE_URL is a loopback address while email is configured: order links in emails will not work outside this machine; set it to the address people reach Callout at",
				"base_url", d.BaseURL)
		}
		if gw := strings.TrimSpace(e.getenv("CALLOUT_FAX_GATEWAY")); gw != "" {
			d.Fax = &jobs.GatewayFax{Mailer: m, Gateway: gw}
		}
	} else {
		e.log.Warn("CALLOUT_SMTP_URL is not set: email and fax copies will fail until it is")
	}
	return d, nil
}
