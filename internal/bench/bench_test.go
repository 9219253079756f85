package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun runs a tiny benchmark and checks only that it works: every cell
// completed callouts without errors and the table shows every cell. Speed is
// measured by hand and quoted in the README, never asserted here.
func TestRun(t *testing.T) {
	cfg := Config{
		Engines:  []string{EngineSQLite},
		Sizes:    []int{1, 3},
		Clients:  2,
		Duration: 300 * time.Millisecond,
		Orders:   4,
		Dir:      t.TempDir(),
	}
	if url := os.Getenv("CALLOUT_TEST_POSTGRES_URL"); url != "" {
		cfg.Engines = append(cfg.Engines, EnginePostgres)
		cfg.PostgresURL = url
	}
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	results, err := Run(context.Background(), cfg, &out, log)
	require.NoError(t, err)
	t.Log("\n" + out.String())

	require.Len(t, results, len(cfg.Engines)*len(cfg.Sizes)*2)
	for _, r := range results {
		assert.Positive(t, r.Callouts, "%s, %d reports, %s: no callout completed", r.Engine, r.Reports, r.Mode)
		assert.Zero(t, r.Errors, "%s, %d reports, %s: errors", r.Engine, r.Reports, r.Mode)
		assert.Positive(t, r.PerSecond)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2+len(cfg.Engines)*len(cfg.Sizes), "header, rule and one row per cell")
	for _, e := range cfg.Engines {
		for _, n := range cfg.Sizes {
			prefix := fmt.Sprintf("| %s | %d |", e, n)
			found := false
			for _, l := range lines {
				if strings.HasPrefix(l, prefix) {
					found = true
					assert.NotContains(t, l, "–", "row %q lacks a measurement", l)
					assert.Equal(t, 10, strings.Count(l, "|"), "row %q", l)
				}
			}
			assert.True(t, found, "no row for %s", prefix)
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	assert.Equal(t, time.Duration(5), percentile(lat, 0.5))
	assert.Equal(t, time.Duration(10), percentile(lat, 0.99))
	assert.Equal(t, time.Duration(0), percentile(nil, 0.5))
}

func TestOwnOrders(t *testing.T) {
	assert.Equal(t, []int{1, 4, 7}, ownOrders(1, 3, 9))
	assert.Equal(t, []int{1}, ownOrders(5, 8, 4), "more clients than orders share")
}

// TestFull is the benchmark the README quotes, off unless CALLOUT_BENCH=1:
//
//	CALLOUT_BENCH=1 CALLOUT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//	    go test ./internal/bench -run TestFull -v -timeout 30m [-cpuprofile cpu.out]
//
// With -cpuprofile, `go tool pprof -tagfocus mode=api` keeps the API half.
func TestFull(t *testing.T) {
	if os.Getenv("CALLOUT_BENCH") != "1" {
		t.Skip("the full benchmark runs only with CALLOUT_BENCH=1")
	}
	cfg := Config{Engines: []string{EngineSQLite}, Dir: t.TempDir()}
	if url := os.Getenv("CALLOUT_TEST_POSTGRES_URL"); url != "" {
		cfg.Engines = append(cfg.Engines, EnginePostgres)
		cfg.PostgresURL = url
	}
	var out bytes.Buffer
	_, err := Run(context.Background(), cfg, &out, slog.New(slog.NewTextHandler(t.Output(), nil)))
	require.NoError(t, err)
	t.Log("\n" + out.String())
}
