package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"callout/internal/bench"
)

// benchCmd runs the load benchmark (internal/bench) on fresh databases and
// prints its Markdown tables: core API vs floor, email, HL7 ingest. All
// load goes to 127.0.0.1; it stops by itself.
func benchCmd(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	engines := fs.String("engines", "sqlite", "engines to measure, comma-separated: sqlite,postgres")
	defPG := e.getenv("CALLOUT_BENCH_POSTGRES_URL")
	if defPG == "" {
		defPG = e.getenv("CALLOUT_TEST_POSTGRES_URL")
	}
	pgURL := fs.String("postgres-url", defPG, "PostgreSQL server for the postgres engine; each cell gets a schema of its own, dropped after (env CALLOUT_BENCH_POSTGRES_URL or CALLOUT_TEST_POSTGRES_URL)")
	modes := fs.String("modes", "core,email,hl7", "sets to run, comma-separated: core (API vs floor), email, hl7, signin (worklist latency during a sign-in storm), scale (listings over --reports of history vs the minimal indexed query), bigorder (callout latency while another lab posts maximum-size orders)")
	mode := fs.String("mode", "", "the same as --modes (callout bench --mode scale --reports 1000000)")
	sizes := fs.String("sizes", "1,10,100", "critical reports per order in the core set, comma-separated")
	emailSizes := fs.String("email-sizes", "1,10", "critical reports per order in the email set, comma-separated")
	conns := fs.String("hl7-conns", "1,4", "MLLP connections in the hl7 set, comma-separated")
	clients := fs.Int("clients", 8, "concurrent HTTP clients")
	signInClients := fs.Int("signin-clients", 8, "parallel sign-in clients in the signin set")
	bigOrderClients := fs.Int("bigorder-clients", 1, "clients posting maximum-size orders in the bigorder set")
	duration := fs.Duration("duration", 5*time.Second, "length of each measurement")
	orders := fs.Int("orders", 200, "orders per cell, so clients spread over many orders")
	emailWait := fs.Duration("email-wait", time.Minute, "how long to wait after the load for the emails to arrive")
	reports := fs.Int("reports", 20000, "reports loaded in the scale mode (2% critical, two years, 2.5 per order); 1000000 for the issue's figures")
	scaleRuns := fs.Int("scale-runs", 40, "sequential requests per listing in the scale mode (exports: a quarter, at least 3)")
	timeout := fs.Duration("timeout", 30*time.Minute, "stop the whole run after this long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here (goroutines carry pprof labels engine, reports, mode)")
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: callout bench [--engines sqlite,postgres] [--postgres-url URL] [--modes core,email,hl7] [--sizes 1,10,100] [--clients 8] [--duration 5s]\n\nFlags:\n")
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *mode != "" {
		*modes = *mode
	}
	cfg := bench.Config{Engines: splitList(*engines), PostgresURL: *pgURL, Sets: splitList(*modes),
		Clients: *clients, Duration: *duration, Orders: *orders, EmailWait: *emailWait, SignInClients: *signInClients,
		BigOrderClients: *bigOrderClients, ScaleReports: *reports, ScaleRuns: *scaleRuns}
	var err error
	if cfg.Sizes, err = intList("sizes", *sizes); err != nil {
		return err
	}
	if cfg.EmailSizes, err = intList("email-sizes", *emailSizes); err != nil {
		return err
	}
	if cfg.HL7Conns, err = intList("hl7-conns", *conns); err != nil {
		return err
	}
	if *clients < 1 || *signInClients < 1 || *bigOrderClients < 1 || *orders < 1 || *duration <= 0 || *emailWait <= 0 || *timeout <= 0 ||
		*reports < 10 || *reports > 10_000_000 || *scaleRuns < 1 {
		return fmt.Errorf("--clients, --signin-clients, --bigorder-clients, --scale-runs and --orders must be at least 1, --reports 10…10000000, --duration, --email-wait and --timeout positive: %w", errUsage)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	_, err = bench.Run(ctx, cfg, e.stdout, e.log)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopped after --timeout %s: %w", *timeout, err)
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(name, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--%s: %q is not a positive whole number: %w", name, f, errUsage)
		}
		out = append(out, n)
	}
	return out, nil
}
