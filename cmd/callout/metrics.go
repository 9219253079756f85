package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics serves GET /metrics from reg on addr (CALLOUT_METRICS_ADDR),
// a listener of its own. The metrics are never served on the public
// address: they tell anyone who asks the request rate of every route and
// the process's internals, so they belong on an address only the
// monitoring system reaches (a private interface, or 127.0.0.1 with a
// local scraper). It returns the address it listens on and a function that
// stops it.
func serveMetrics(addr string, reg *prometheus.Registry, errc chan<- error) (net.Addr, func(context.Context), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("CALLOUT_METRICS_ADDR: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics listener: %w", err)
		}
	}()
	return ln.Addr(), func(ctx context.Context) { _ = srv.Shutdown(ctx) }, nil
}
