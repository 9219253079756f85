package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"callout/internal/callout"
	"callout/internal/fhir"
	"callout/internal/httpapi"
	"callout/internal/sqlstore"
	"callout/internal/web"
)

// The scale set: years of one lab's history loaded straight into the schema
// (COPY on PostgreSQL, multi-row INSERTs in large transactions on SQLite),
// then every listing endpoint read one request at a time through the real
// HTTP server, beside the "floor" — the minimal indexed query (one page of
// pending reports straight from the worklist index) — measured in the same
// run on the same database.

// SetScale is the scale set; it runs only when asked for.
const SetScale = "scale"

// ScaleResult is one engine's scale cell.
type ScaleResult struct {
	Engine  string
	Reports int // reports loaded
	Orders  int
	Load    time.Duration // time to load them
	Rows    []ScaleRow
}

// ScaleRow is one listing: its latency over Config.ScaleRuns sequential
// requests and, for exports, how much the process's peak RSS grew.
type ScaleRow struct {
	Name         string
	P50ms, P95ms float64
	Errors       int
	FirstErr     string
	RSSGrowthMB  float64 // peak RSS during the requests minus RSS before; exports only
	IsFloor      bool
}

// scaleShape is the shape of the loaded history: 2.5 reports per order,
// 1.6 parameters per report, 2% of reports critical and of those one in
// eight still open (pending or attempted), over two years, four departments.
type scaleShape struct {
	reports, orders int
	start           time.Time
	step            time.Duration // between orders
}

var scaleDepartments = []string{"Biochemistry", "Haematology", "Microbiology", "Immunology"}

func newScaleShape(reports int, now time.Time) scaleShape {
	orders := max(1, reports*2/5)
	span := 2 * 365 * 24 * time.Hour
	return scaleShape{reports: reports, orders: orders, start: now.Add(-span), step: span / time.Duration(orders)}
}

// reportsOf is how many reports order o has (3, 2, 3, 2, …), the last
// order taking what remains so the total is exact.
func (s scaleShape) reportsOf(o int) int {
	if o == s.orders-1 {
		return s.reports - s.firstReport(o)
	}
	return 2 + (o+1)%2
}

// firstReport is the 0-based index of order o's first report.
func (s scaleShape) firstReport(o int) int { return o/2*5 + (o%2)*3 }

// stateOf is report k's state: every 50th is critical; of those, every
// eighth is still open (pending, or attempted every other time), the rest
// done; of the others one in five is abnormal.
func stateOf(k int) callout.State {
	if k%50 == 0 {
		if (k/50)%8 == 0 {
			if (k/400)%2 == 0 {
				return callout.StatePending
			}
			return callout.StateAttempted
		}
		return callout.StateDone
	}
	if k%5 == 1 {
		return callout.StateAbnormal
	}
	return callout.StateNormal
}

// scaleRows produces the rows of orders [from, to) table by table.
type scaleRows struct {
	bills, reports, params, records [][]any
}

func (s scaleShape) rows(lab int64, from, to int) scaleRows {
	var out scaleRows
	for o := from; o < to; o++ {
		bill := int64(o + 1)
		created := s.start.Add(time.Duration(o) * s.step).Truncate(time.Microsecond)
		id := fmt.Sprintf("ORD-%07d", o+1)
		out.bills = append(out.bills, []any{bill, lab, id, "ACC-" + id,
			fmt.Sprintf("Patient %c%c %d", 'A'+o%26, 'a'+o/26%26, o%997), "Dr. Rao", "rao@clinic.example", created})
		first := s.firstReport(o)
		for j := range s.reportsOf(o) {
			k := first + j
			rid := int64(k + 1)
			st := stateOf(k)
			resulted := created.Add(time.Hour + time.Duration(j)*time.Minute)
			updated := resulted
			if st == callout.StateDone || st == callout.StateAttempted {
				updated = resulted.Add(20 * time.Minute)
			}
			out.reports = append(out.reports, []any{rid, lab, bill, "T" + strconv.Itoa(j+1),
				[]string{"Electrolytes", "Blood count", "Culture", "Troponin"}[j%4], scaleDepartments[(o+j)%4],
				int(st), resulted, updated})
			critical := st == callout.StatePending || st == callout.StateDone || st == callout.StateAttempted
			value := "4.2"
			if critical {
				value = "7.1"
			}
			out.params = append(out.params, []any{rid, bill, 0, "Potassium", value, "mmol/L", 3.5, 5.1, 2.5, 6.5})
			if k%5 < 3 {
				out.params = append(out.params, []any{rid, bill, 1, "Sodium", "140", "mmol/L", 135.0, 145.0, nil, nil})
			}
			switch st {
			case callout.StateDone, callout.StateAttempted:
				status := "done"
				if st == callout.StateAttempted {
					status = "attempted"
				}
				out.records = append(out.records, []any{lab, bill, rid, status, `["Phone"]`, `["Referral"]`,
					"Informed Dr. Rao by phone", "Dr. Rao", "bench", updated,
					`[{"test_id":"T` + strconv.Itoa(j+1) + `","name":"Potassium","value":"7.1"}]`})
			}
		}
	}
	return out
}

var scaleColumns = struct{ bills, reports, params, records []string }{
	bills:   []string{"id", "lab_id", "lab_bill_id", "accession_number", "patient_name", "referral_name", "referral_email", "created_at"},
	reports: []string{"id", "lab_id", "bill_id", "test_id", "test_name", "department", "critical_values", "resulted_at", "last_updated"},
	params:  []string{"lab_report_id", "bill_id", "position", "name", "value", "unit", "normal_low", "normal_high", "critical_low", "critical_high"},
	records: []string{"lab_id", "bill_id", "lab_report_id", "status", "methods", "recipients", "comment", "notified_person", "created_by", "created_at", "snapshot"},
}

// loadScale writes the shape's history for lab into the database.
func loadScale(ctx context.Context, st *sqlstore.Store, dbURL string, lab int64, s scaleShape, log *slog.Logger) error {
	const ordersPerBatch = 20000
	if st.Engine == sqlstore.Postgres {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		for from := 0; from < s.orders; from += ordersPerBatch {
			rs := s.rows(lab, from, min(from+ordersPerBatch, s.orders))
			for _, t := range []struct {
				table string
				cols  []string
				rows  [][]any
			}{{"bills", scaleColumns.bills, rs.bills}, {"lab_reports", scaleColumns.reports, rs.reports},
				{"report_parameters", scaleColumns.params, rs.params}, {"critical_callouts", scaleColumns.records, rs.records}} {
				if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
					return fmt.Errorf("copy %s: %w", t.table, err)
				}
			}
			log.Info("bench: loaded", "engine", st.Engine, "orders", min(from+ordersPerBatch, s.orders), "of", s.orders)
		}
		// COPY set the ids itself; move the identity sequences past them,
		// and leave the tables as autovacuum leaves years of history: with
		// statistics for the planner and the visibility map set (which
		// lets index-only scans skip the heap). Without the VACUUM every
		// row loaded a moment ago would still be checked in the heap.
		for _, t := range []string{"bills", "lab_reports", "report_parameters", "critical_callouts"} {
			if _, err := conn.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM `+t+`), false)`); err != nil {
				return fmt.Errorf("advance %s ids: %w", t, err)
			}
		}
		_, err = conn.Exec(ctx, "VACUUM ANALYZE")
		return err
	}
	for from := 0; from < s.orders; from += ordersPerBatch {
		rs := s.rows(lab, from, min(from+ordersPerBatch, s.orders))
		tx, err := st.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, t := range []struct {
			table string
			cols  []string
			rows  [][]any
		}{{"bills", scaleColumns.bills, rs.bills}, {"lab_reports", scaleColumns.reports, rs.reports},
			{"report_parameters", scaleColumns.params, rs.params}, {"critical_callouts", scaleColumns.records, rs.records}} {
			if err := insertRows(ctx, tx, t.table, t.cols, t.rows); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		log.Info("bench: loaded", "engine", st.Engine, "orders", min(from+ordersPerBatch, s.orders), "of", s.orders)
	}
	return nil
}

// insertRows writes rows in multi-row INSERTs of up to 500 rows.
func insertRows(ctx context.Context, tx *sql.Tx, table string, cols []string, rows [][]any) error {
	const per = 500
	head := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `
	var stmt *sql.Stmt
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	args := make([]any, 0, per*len(cols))
	for i := 0; i < len(rows); i += per {
		chunk := rows[i:min(i+per, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		var err error
		if len(chunk) == per {
			if stmt == nil {
				if stmt, err = tx.PrepareContext(ctx, head+sqlPlaceholders(per, len(cols))); err != nil {
					return fmt.Errorf("insert %s: %w", table, err)
				}
			}
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, head+sqlPlaceholders(len(chunk), len(cols)), args...)
		}
		if err != nil {
			return fmt.Errorf("insert %s: %w", table, err)
		}
	}
	return nil
}

func sqlPlaceholders(rows, cols int) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString("$" + strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// runScaleCell loads cfg.ScaleReports reports into a fresh database of the
// engine and measures every listing against the floor.
func runScaleCell(ctx context.Context, cfg Config, engine string, log *slog.Logger) (ScaleResult, error) {
	res := ScaleResult{Engine: engine, Reports: cfg.ScaleReports}
	dbURL, drop, err := freshDatabase(ctx, cfg, engine)
	if err != nil {
		return res, err
	}
	defer drop()
	st, err := sqlstore.Open(ctx, dbURL, nil)
	if err != nil {
		return res, err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return res, err
	}
	svc := callout.NewService(st, nil)
	lab, err := svc.CreateLab(ctx, callout.Settings{Name: "Scale Lab"})
	if err != nil {
		return res, err
	}
	token, err := svc.CreateToken(ctx, lab, "bench", callout.RoleStaff)
	if err != nil {
		return res, err
	}
	const userName = "bench-scale"
	password := randomPassword()
	u, err := callout.NewUser(lab, userName, password, callout.RoleStaff, nil, callout.Now())
	if err != nil {
		return res, err
	}
	if _, err := st.CreateUser(ctx, u); err != nil {
		return res, err
	}
	shape := newScaleShape(cfg.ScaleReports, callout.Now())
	res.Orders = shape.orders
	log.Info("bench: loading", "engine", engine, "reports", shape.reports, "orders", shape.orders)
	t0 := time.Now()
	if err := loadScale(ctx, st, dbURL, lab, shape, log); err != nil {
		return res, fmt.Errorf("load %d reports: %w", shape.reports, err)
	}
	res.Load = time.Since(t0)
	log.Info("bench: loaded", "engine", engine, "reports", shape.reports, "seconds", res.Load.Seconds())

	// Served as `callout serve` serves them: API, web pages and FHIR on one mux.
	api := httpapi.New(httpapi.Config{Service: svc, Ping: st.DB.PingContext})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	base := "http://" + ln.Addr().String()
	fhir.Mount(api, st, base, nil)
	web.New(web.Config{Service: svc, Accounts: st, Worklist: st, Location: time.UTC, BaseURL: base}).Mount(api)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	var served sync.WaitGroup
	served.Go(func() { _ = srv.Serve(ln) })
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		served.Wait()
	}()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Transport: tr, Jar: jar, Timeout: 5 * time.Minute}
	if err := signInWith(ctx, client, base, userName, password); err != nil {
		return res, fmt.Errorf("sign in: %w", err)
	}

	fdb, err := openFloor(ctx, engine, dbURL)
	if err != nil {
		return res, err
	}
	defer fdb.close()

	get := func(path string, bearer bool) func(context.Context, int) error {
		return func(ctx context.Context, _ int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if err != nil {
				return err
			}
			if bearer {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			return expect(client, req, http.StatusOK)
		}
	}
	// The order page's records, of orders spread over the whole history.
	rnd := rand.New(rand.NewPCG(1, 2))
	orderCallouts := func(ctx context.Context, _ int) error {
		return get("/api/v1/bills/"+strconv.Itoa(1+rnd.IntN(shape.orders))+"/callouts", true)(ctx, 0)
	}
	floor := func(ctx context.Context, _ int) error {
		tx, err := fdb.begin(ctx)
		if err != nil {
			return err
		}
		defer tx.rollback(ctx)
		_, err = tx.rows(ctx, `SELECT r.id, r.bill_id, r.test_id, r.test_name, r.department, r.critical_values,
			r.resulted_at, r.last_updated FROM lab_reports r
			WHERE r.lab_id = $1 AND r.critical_values = 1 AND r.dismissed = false AND r.sample_collected = true
			ORDER BY r.resulted_at, r.id LIMIT 50`, lab)
		return err
	}
	measures := []struct {
		name   string
		do     func(context.Context, int) error
		rss    bool
		floor  bool
		factor int // fewer runs for the slow exports
	}{
		{name: "floor: one page of pending reports from the worklist index (SQL only)", do: floor, floor: true, factor: 1},
		{name: "GET /api/v1/worklist (default states, first page)", do: get("/api/v1/worklist", true), factor: 1},
		{name: "GET /worklist/fragment?tab=pending (with counts)", do: get("/worklist/fragment?tab=pending", false), factor: 1},
		{name: "GET /?tab=done", do: get("/?tab=done", false), factor: 1},
		{name: "GET /fhir/r4/Communication", do: get("/fhir/r4/Communication", true), factor: 1},
		{name: "GET /api/v1/bills/{id}/callouts (random order)", do: orderCallouts, factor: 1},
		{name: "GET /export.csv?tab=done", do: get("/export.csv?tab=done", false), rss: true, factor: 4},
		{name: "GET /export.xlsx?tab=done", do: get("/export.xlsx?tab=done", false), rss: true, factor: 4},
		{name: "floor again (after the listings)", do: floor, floor: true, factor: 1},
	}
	for _, m := range measures {
		runs := max(3, cfg.ScaleRuns/m.factor)
		var before int64
		if m.rss {
			before = resetPeakRSS()
		}
		lat := make([]time.Duration, 0, runs)
		row := ScaleRow{Name: m.name, IsFloor: m.floor}
		for i := range runs {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			t := time.Now()
			if err := m.do(ctx, i); err != nil {
				row.Errors++
				if row.FirstErr == "" {
					row.FirstErr = err.Error()
				}
				continue
			}
			lat = append(lat, time.Since(t))
		}
		slices.Sort(lat)
		row.P50ms, row.P95ms = ms(percentile(lat, 0.5)), ms(percentile(lat, 0.95))
		if m.rss && before > 0 {
			row.RSSGrowthMB = float64(peakRSS()-before) / (1 << 20)
		}
		log.Info("bench: measured", "engine", engine, "listing", m.name, "p50_ms", fmt.Sprintf("%.2f", row.P50ms),
			"p95_ms", fmt.Sprintf("%.2f", row.P95ms), "errors", row.Errors, "first_error", row.FirstErr)
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// signInWith signs client (with a cookie jar) in through the web form.
func signInWith(ctx context.Context, client *http.Client, base, name, password string) error {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/signin", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	m := csrfField.FindSubmatch(page)
	if m == nil {
		return fmt.Errorf("GET /signin: %s without a form token", resp.Status)
	}
	form := url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {password}, "next": {"/"}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/signin", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return expect(&c, req, http.StatusSeeOther)
}

// resetPeakRSS resets the kernel's peak-RSS mark of this process (Linux
// clear_refs 5) and returns the current RSS in bytes, 0 where unknown.
func resetPeakRSS() int64 {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return procStatus("VmRSS:")
}

// peakRSS is the process's peak RSS in bytes since the last reset.
func peakRSS() int64 { return procStatus("VmHWM:") }

func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// writeScale prints the scale results: one row per listing, both engines
// side by side when both ran, each with its ratio to the floor of its run.
func writeScale(b *strings.Builder, rs []ScaleResult) {
	for _, r := range rs {
		fmt.Fprintf(b, "%s: %d reports in %d orders, loaded in %.1f s\n\n", r.Engine, r.Reports, r.Orders, r.Load.Seconds())
		floor := 0.0
		for _, row := range r.Rows {
			if row.IsFloor && floor == 0 {
				floor = row.P50ms
			}
		}
		b.WriteString("| listing | median ms | p95 ms | × floor (median) | peak RSS growth | errors |\n|---|---:|---:|---:|---:|---:|\n")
		for _, row := range r.Rows {
			ratio, rss := "", ""
			if floor > 0 {
				ratio = fmt.Sprintf("%.1f×", row.P50ms/floor)
			}
			if row.RSSGrowthMB != 0 {
				rss = fmt.Sprintf("%+.0f MB", row.RSSGrowthMB)
			}
			fmt.Fprintf(b, "| %s | %.2f | %.2f | %s | %s | %d |\n", row.Name, row.P50ms, row.P95ms, ratio, rss, row.Errors)
		}
		b.WriteString("\n")
	}
}
