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

	"callout/internal/callout"
	"callout/internal/hl7"
)

// TestRun runs a tiny benchmark of every set and checks only that it works:
// every cell completed callouts (or HL7 messages) without errors, every
// email arrived and the tables show every cell. Speed is measured by hand
// and quoted in the README, never asserted here.
func TestRun(t *testing.T) {
	cfg := Config{
		Engines:    []string{EngineSQLite},
		Sizes:      []int{1, 3},
		EmailSizes: []int{1},
		HL7Conns:   []int{2},
		Clients:    2,
		Duration:   300 * time.Millisecond,
		EmailWait:  30 * time.Second,
		Orders:     4,
		Dir:        t.TempDir(),
	}
	if url := os.Getenv("CALLOUT_TEST_POSTGRES_URL"); url != "" {
		cfg.Engines = append(cfg.Engines, EnginePostgres)
		cfg.PostgresURL = url
	}
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	rep, err := Run(context.Background(), cfg, &out, log)
	require.NoError(t, err)
	t.Log("\n" + out.String())

	engines := len(cfg.Engines)
	require.Len(t, rep.Core, engines*len(cfg.Sizes)*2)
	require.Len(t, rep.Email, engines*len(cfg.EmailSizes))
	require.Len(t, rep.HL7, engines*len(cfg.HL7Conns)*2)
	for _, r := range rep.Results() {
		assert.Positive(t, r.Done, "%s, %d reports, %d clients, %s: nothing completed", r.Engine, r.Reports, r.Clients, r.Mode)
		assert.Zero(t, r.Errors, "%s, %d reports, %d clients, %s: errors", r.Engine, r.Reports, r.Clients, r.Mode)
		assert.Positive(t, r.PerSecond)
	}
	for _, e := range rep.Email {
		assert.Equal(t, ModeAPI, e.Core.Mode)
		assert.Equal(t, ModeQueue, e.Queue.Mode)
		assert.Equal(t, ModeEmail, e.Email.Mode)
		assert.Equal(t, emailsPerCallout*e.Email.Done, e.Expected, "%s: emails enqueued", e.Engine)
		assert.Equal(t, e.Expected, e.Arrived, "%s: every email arrives", e.Engine)
		assert.Positive(t, e.DeliveryPerSecond)
	}

	// The three tables, each under its heading; rows are checked per table
	// since their first columns look alike.
	sections := strings.Split(out.String(), "### ")
	require.Len(t, sections, 4, "core, email and hl7 sections")
	row := func(section int, prefix string, pipes int) {
		t.Helper()
		found := false
		for _, l := range strings.Split(sections[section], "\n") {
			if strings.HasPrefix(l, prefix) {
				found = true
				assert.NotContains(t, l, "–", "row %q lacks a measurement", l)
				assert.Equal(t, pipes, strings.Count(l, "|"), "row %q", l)
			}
		}
		assert.True(t, found, "no row %q in %q", prefix, sections[section])
	}
	assert.True(t, strings.HasPrefix(sections[1], "Core"))
	assert.True(t, strings.HasPrefix(sections[2], "Email"))
	assert.True(t, strings.HasPrefix(sections[3], "HL7"))
	for _, e := range cfg.Engines {
		for _, n := range cfg.Sizes {
			row(1, fmt.Sprintf("| %s | %d | ", e, n), 11)
		}
		for _, n := range cfg.EmailSizes {
			row(2, fmt.Sprintf("| %s | %d | ", e, n), 17)
		}
		for _, n := range cfg.HL7Conns {
			row(3, fmt.Sprintf("| %s | %d | ", e, n), 11)
		}
	}
}

// TestRunSignIn runs a tiny signin set and checks only that it works: the
// worklist answered alone and during the storm, sign-ins succeeded, and the
// table shows the cell. The latency goal is checked by hand, not here.
func TestRunSignIn(t *testing.T) {
	cfg := Config{Engines: []string{EngineSQLite}, Sets: []string{SetSignIn}, SignInClients: 2,
		Duration: 300 * time.Millisecond, Orders: 4, Dir: t.TempDir()}
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out, slog.New(slog.NewTextHandler(t.Output(), nil)))
	require.NoError(t, err)
	t.Log("\n" + out.String())
	require.Len(t, rep.SignIn, 1)
	for _, r := range rep.Results() {
		assert.Positive(t, r.Done, "%s: nothing completed", r.Mode)
		assert.Zero(t, r.Errors, "%s: errors", r.Mode)
	}
	assert.Equal(t, 2, rep.SignIn[0].SignIn.Clients)
	assert.Contains(t, out.String(), "### Sign-in storm")
	assert.Contains(t, out.String(), "| sqlite | 2 | ")
}

// TestRunBigOrder runs a tiny bigorder set on both engines and checks only
// that it works: lab B's callouts answered alone and while lab A posted
// orders of the largest size allowed, which were stored, and the table
// shows each cell. The latency goal is checked by hand, not here.
func TestRunBigOrder(t *testing.T) {
	cfg := Config{Engines: []string{EngineSQLite}, Sets: []string{SetBigOrder}, Clients: 2,
		Duration: 300 * time.Millisecond, Orders: 4, Dir: t.TempDir()}
	if url := os.Getenv("CALLOUT_TEST_POSTGRES_URL"); url != "" {
		cfg.Engines = append(cfg.Engines, EnginePostgres)
		cfg.PostgresURL = url
	}
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out, slog.New(slog.NewTextHandler(t.Output(), nil)))
	require.NoError(t, err)
	t.Log("\n" + out.String())
	require.Len(t, rep.BigOrder, len(cfg.Engines))
	for _, r := range rep.Results() {
		assert.Positive(t, r.Done, "%s %s: nothing completed", r.Engine, r.Mode)
		assert.Zero(t, r.Errors, "%s %s: errors", r.Engine, r.Mode)
	}
	body, err := bigOrderBody("X")
	require.NoError(t, err)
	for _, r := range rep.BigOrder {
		assert.Equal(t, ModeBigOrder, r.BigOrders.Mode)
		assert.Equal(t, []int{callout.MaxReportsPerOrder, callout.MaxParametersPerOrder, 1}, []int{r.Reports, r.Parameters, r.BigOrders.Clients})
		assert.InDelta(t, len(body), r.Bytes, 100)
		assert.Contains(t, out.String(), fmt.Sprintf("| %s | 500 × 45, %d KB | 1 | ", r.Engine, r.Bytes/1000))
	}
	assert.Contains(t, out.String(), "### Big orders")
}

// TestORUMessage checks the bench's message maps to one new order with one
// report of five results, one of them critical, as the floor assumes.
func TestORUMessage(t *testing.T) {
	fm, err := newFloorMessage()
	require.NoError(t, err)
	assert.Equal(t, "ORD-0", fm.order.LabBillID)
	assert.Equal(t, "Maria Mueller", fm.order.Patient.Name)
	assert.Equal(t, "maria@example.org", fm.order.Patient.Email)
	assert.Equal(t, "Dr. Anil Rao", fm.order.Referral.Name)
	assert.Len(t, fm.report.Parameters, 5)
	assert.Equal(t, "Biochemistry", fm.report.Department, "OBR-24 CH")
	assert.Equal(t, "Comprehensive metabolic panel", fm.report.TestName)
	assert.Equal(t, callout.StatePending, fm.state, "one critical result")
	require.NoError(t, checkACK(hl7.NewACK(mustParse(t, oruMessage("C-1", "O-1", time.Now())), hl7.AckAccept, "stored", "", time.Now())))
}

func mustParse(t *testing.T, raw []byte) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse(raw)
	require.NoError(t, err)
	return m
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

// TestScale loads a small history on each engine and checks that every
// listing answered without errors and that the loaded shape is the one the
// README describes: the speed itself is read from `callout bench --mode
// scale`, never asserted.
func TestScale(t *testing.T) {
	cfg := Config{Engines: []string{EngineSQLite}, Sets: []string{SetScale}, ScaleReports: 1000, ScaleRuns: 3, Dir: t.TempDir()}
	if url := os.Getenv("CALLOUT_TEST_POSTGRES_URL"); url != "" {
		cfg.Engines = append(cfg.Engines, EnginePostgres)
		cfg.PostgresURL = url
	}
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out, slog.New(slog.NewTextHandler(t.Output(), nil)))
	require.NoError(t, err)
	t.Log("\n" + out.String())
	require.Len(t, rep.Scale, len(cfg.Engines))
	for _, r := range rep.Scale {
		assert.Equal(t, 1000, r.Reports)
		assert.Equal(t, 400, r.Orders)
		require.NotEmpty(t, r.Rows)
		for _, row := range r.Rows {
			assert.Zero(t, row.Errors, "%s %s: %s", r.Engine, row.Name, row.FirstErr)
			assert.Positive(t, row.P50ms, "%s %s", r.Engine, row.Name)
		}
	}
	assert.Contains(t, out.String(), "GET /api/v1/worklist")
}

// TestScaleShape checks the loaded history's proportions: exact report
// count, 2% critical, one in eight critical ones still open.
func TestScaleShape(t *testing.T) {
	s := newScaleShape(10000, time.Now())
	rows := s.rows(1, 0, s.orders)
	require.Len(t, rows.bills, 4000)
	require.Len(t, rows.reports, 10000)
	counts := map[int]int{}
	for i, r := range rows.reports {
		require.Equal(t, int64(i+1), r[0], "report ids are consecutive")
		counts[r[6].(int)]++
	}
	assert.Equal(t, 200, counts[int(callout.StatePending)]+counts[int(callout.StateDone)]+counts[int(callout.StateAttempted)])
	assert.Equal(t, 25, counts[int(callout.StatePending)]+counts[int(callout.StateAttempted)])
	assert.Equal(t, 16000, len(rows.params))
}
