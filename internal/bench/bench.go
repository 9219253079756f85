// Package bench is Callout's load tool. It runs up to three sets of
// measurements, each on fresh databases, all on 127.0.0.1:
//
//   - core: done callouts per second through the real HTTP API (no job
//     queue) and, on the same database in the same run, the "floor" — the
//     same reads and writes sent straight to the database by the simplest
//     hand-written loop. The ratio of the two says how much the service
//     (HTTP, JSON, domain rules, database/sql) costs on top of the SQL.
//   - email: the API wired as `callout serve` wires it — River queue and
//     workers in-process, a Bleve index in a temporary directory, SMTP to an
//     in-process sink — once without email (each callout enqueues only its
//     index-sync job) and once with every callout emailing the patient and
//     the referral, beside the bare API (no queue) measured again in the
//     same cell; plus the rate at which the sink accepted the emails.
//   - hl7: ORU^R01 messages over MLLP into the real listener and ingester
//     (wired the same way), over one and over several connections, beside a
//     floor of the same inserts sent straight to the database.
//
// Every goroutine of a measurement carries the pprof labels engine, reports
// and mode, so a CPU profile of a whole run can be narrowed to the API half
// with `go tool pprof -tagfocus mode=api`.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"callout/internal/callout"
	"callout/internal/httpapi"
	"callout/internal/sqlstore"
)

// Config says what to measure. Zero fields take the defaults noted.
type Config struct {
	Engines     []string      // "sqlite", "postgres"; default sqlite only
	PostgresURL string        // server for the postgres engine; each cell gets a schema of its own
	Sizes       []int         // critical reports per order; default 1, 10, 100
	Clients     int           // concurrent clients; default 8
	Duration    time.Duration // per measurement (API and floor each); default 5s
	Orders      int           // orders per size, so clients spread over many orders; default 200
	Dir         string        // directory for SQLite files and search indexes; default a temporary one, removed after

	Sets       []string      // SetCore, SetEmail, SetHL7; default all three
	EmailSizes []int         // critical reports per order in the email set; default 1, 10
	EmailWait  time.Duration // how long to wait after the load for the emails to arrive; default 60s
	HL7Conns   []int         // MLLP connections in the hl7 set; default 1, 4

	SignInClients int // parallel sign-in clients in the signin set; default 8

	BigOrderClients int // clients posting big orders in the bigorder set; default 1
	ScaleReports    int // reports loaded in the scale set; default 20,000
	ScaleRuns       int // sequential requests per listing in the scale set (exports a quarter); default 40
}

// The sets of measurements.
const (
	SetCore  = "core"
	SetEmail = "email"
	SetHL7   = "hl7"
	// SetSignIn is the API worklist's latency during a sign-in storm; it
	// runs only when asked for.
	SetSignIn = "signin"
	// SetBigOrder is one lab's callout latency while another lab posts
	// orders of the largest size allowed; it runs only when asked for.
	SetBigOrder = "bigorder"
)

// Result is one measurement: one engine, order size (or connection count)
// and mode.
type Result struct {
	Engine    string
	Reports   int    // critical reports per order, all of them called out each time; 1 for hl7 (one OBR per message)
	Clients   int    // concurrent HTTP clients, or MLLP connections / floor loops for hl7
	Mode      string // ModeAPI, ModeFloor, ModeQueue, ModeEmail, ModeHL7 or ModeHL7Floor
	Done      int    // callouts completed (201), or HL7 messages stored (AA ACK)
	PerSecond float64
	P50ms     float64
	P99ms     float64
	Errors    int // failures: non-201 answers, non-AA ACKs, transport or SQL errors
}

// The modes.
const (
	ModeAPI      = "api"             // core: HTTP API, no job queue
	ModeFloor    = "floor"           // core: the callout's SQL straight to the database
	ModeQueue    = "api+queue"       // email set: API with queue and workers, callouts without email (ModeAPI: no queue)
	ModeEmail    = "api+queue+email" // email set: the same, each callout emails patient and referral
	ModeHL7      = "hl7"             // MLLP listener and ingester with queue and workers
	ModeHL7Floor = "hl7-floor"       // the ingest's inserts straight to the database
)

// Report is what a run measured.
type Report struct {
	Core  []Result      // ModeAPI and ModeFloor, per engine and size
	Email []EmailResult // per engine and size
	HL7   []Result      // ModeHL7 and ModeHL7Floor, per engine and connection count
	// SignIn is the signin set, per engine.
	SignIn []SignInResult
	// BigOrder is the bigorder set, per engine.
	BigOrder []BigOrderResult
	// Scale is the scale set, per engine.
	Scale []ScaleResult
}

// Results lists every measurement of the report.
func (r Report) Results() []Result {
	out := slices.Clone(r.Core)
	for _, e := range r.Email {
		out = append(out, e.Core, e.Queue, e.Email)
	}
	out = append(out, r.HL7...)
	for _, s := range r.SignIn {
		out = append(out, s.Idle, s.Storm, s.SignIn)
	}
	for _, b := range r.BigOrder {
		out = append(out, b.Idle, b.Loaded, b.BigOrders)
	}
	return out
}

// The engines.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

func (c *Config) defaults() {
	if len(c.Engines) == 0 {
		c.Engines = []string{EngineSQLite}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{1, 10, 100}
	}
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Orders <= 0 {
		c.Orders = 200
	}
	if len(c.Sets) == 0 {
		c.Sets = []string{SetCore, SetEmail, SetHL7}
	}
	if len(c.EmailSizes) == 0 {
		c.EmailSizes = []int{1, 10}
	}
	if c.EmailWait <= 0 {
		c.EmailWait = time.Minute
	}
	if len(c.HL7Conns) == 0 {
		c.HL7Conns = []int{1, 4}
	}
	if c.SignInClients <= 0 {
		c.SignInClients = 8
	}
	if c.BigOrderClients <= 0 {
		c.BigOrderClients = 1
	}
	if c.ScaleReports <= 0 {
		c.ScaleReports = 20000
	}
	if c.ScaleRuns <= 0 {
		c.ScaleRuns = 40
	}
}

// Run measures every set, engine and size, writes the tables to out and
// returns the results. Progress goes to log. It stops by itself — after
// about 2·Duration per core cell, 3·Duration plus at most EmailWait per
// email cell and 2·Duration per hl7 cell, plus setup — or when ctx ends.
func Run(ctx context.Context, cfg Config, out io.Writer, log *slog.Logger) (Report, error) {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, e := range cfg.Engines {
		switch e {
		case EngineSQLite:
		case EnginePostgres:
			if cfg.PostgresURL == "" {
				return Report{}, errors.New("bench: the postgres engine needs PostgresURL")
			}
		default:
			return Report{}, fmt.Errorf("bench: unknown engine %q (want sqlite or postgres)", e)
		}
	}
	for _, set := range cfg.Sets {
		if !slices.Contains([]string{SetCore, SetEmail, SetHL7, SetSignIn, SetBigOrder, SetScale}, set) {
			return Report{}, fmt.Errorf("bench: unknown mode %q (want core, email, hl7, signin, bigorder or scale)", set)
		}
	}
	for _, n := range slices.Concat(cfg.Sizes, cfg.EmailSizes) {
		if n < 1 || n > callout.MaxReportsPerOrder {
			return Report{}, fmt.Errorf("bench: order size %d is outside 1…%d", n, callout.MaxReportsPerOrder)
		}
	}
	for _, n := range cfg.HL7Conns {
		if n < 1 || n > 64 {
			return Report{}, fmt.Errorf("bench: %d MLLP connections is outside 1…64", n)
		}
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "callout-bench-")
		if err != nil {
			return Report{}, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}

	var rep Report
	do := func() error {
		for _, engine := range cfg.Engines {
			if slices.Contains(cfg.Sets, SetCore) {
				for _, size := range cfg.Sizes {
					rs, err := runCell(ctx, cfg, engine, size, log)
					rep.Core = append(rep.Core, rs...)
					if err != nil {
						return fmt.Errorf("bench core %s, %d reports per order: %w", engine, size, err)
					}
				}
			}
			if slices.Contains(cfg.Sets, SetEmail) {
				for _, size := range cfg.EmailSizes {
					r, err := runEmailCell(ctx, cfg, engine, size, log)
					if err != nil {
						return fmt.Errorf("bench email %s, %d reports per order: %w", engine, size, err)
					}
					rep.Email = append(rep.Email, r)
				}
			}
			if slices.Contains(cfg.Sets, SetHL7) {
				for _, conns := range cfg.HL7Conns {
					rs, err := runHL7Cell(ctx, cfg, engine, conns, log)
					rep.HL7 = append(rep.HL7, rs...)
					if err != nil {
						return fmt.Errorf("bench hl7 %s, %d connections: %w", engine, conns, err)
					}
				}
			}
			if slices.Contains(cfg.Sets, SetSignIn) {
				r, err := runSignInCell(ctx, cfg, engine, log)
				rep.SignIn = append(rep.SignIn, r)
				if err != nil {
					return fmt.Errorf("bench signin %s: %w", engine, err)
				}
			}
			if slices.Contains(cfg.Sets, SetBigOrder) {
				r, err := runBigOrderCell(ctx, cfg, engine, log)
				rep.BigOrder = append(rep.BigOrder, r)
				if err != nil {
					return fmt.Errorf("bench bigorder %s: %w", engine, err)
				}
			}
			if slices.Contains(cfg.Sets, SetScale) {
				r, err := runScaleCell(ctx, cfg, engine, log)
				rep.Scale = append(rep.Scale, r)
				if err != nil {
					return fmt.Errorf("bench scale %s: %w", engine, err)
				}
			}
		}
		return nil
	}
	err := do()
	WriteTables(out, rep)
	return rep, err
}

// order is a stored order as the clients see it.
type order struct {
	billID    int64
	reports   []int64
	body      []byte // the API request: a done callout of every report
	emailBody []byte // the same, emailing the patient and the referral
}

// runCell measures one engine and size on a fresh database: API, then floor.
func runCell(ctx context.Context, cfg Config, engine string, size int, log *slog.Logger) ([]Result, error) {
	dbURL, drop, err := freshDatabase(ctx, cfg, engine)
	if err != nil {
		return nil, err
	}
	defer drop()

	log.Info("bench: preparing", "engine", engine, "reports", size, "orders", cfg.Orders)
	st, err := sqlstore.Open(ctx, dbURL, nil)
	if err != nil {
		return nil, err
	}
	stClosed := false
	defer func() {
		if !stClosed {
			st.Close()
		}
	}()
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	svc := callout.NewService(st, nil)
	lab, orders, token, err := seed(ctx, svc, cfg.Orders, size)
	if err != nil {
		return nil, fmt.Errorf("create orders: %w", err)
	}

	labels := func(mode string) pprof.LabelSet {
		return pprof.Labels("engine", engine, "reports", strconv.Itoa(size), "mode", mode)
	}
	var results []Result

	var api stats
	pprof.Do(ctx, labels(ModeAPI), func(ctx context.Context) {
		api, err = runAPI(ctx, cfg, nil, st, svc, token, orders, false)
	})
	if err != nil {
		return nil, err
	}
	results = append(results, api.result(engine, size, cfg.Clients, ModeAPI))
	logResult(log, results[len(results)-1], api.firstErr)
	stClosed = true
	if err := st.Close(); err != nil {
		return results, err
	}

	fdb, err := openFloor(ctx, engine, dbURL)
	if err != nil {
		return results, err
	}
	defer fdb.close()
	q := floorQueries(engine, size)
	var floor stats
	pprof.Do(ctx, labels(ModeFloor), func(ctx context.Context) {
		floor = load(ctx, cfg.Clients, cfg.Duration, len(orders), func(ctx context.Context, i int) error {
			return floorCallout(ctx, fdb, q, lab, orders[i])
		})
	})
	results = append(results, floor.result(engine, size, cfg.Clients, ModeFloor))
	logResult(log, results[len(results)-1], floor.firstErr)
	return results, ctx.Err()
}

func logResult(log *slog.Logger, r Result, firstErr error) {
	args := []any{"engine", r.Engine, "reports", r.Reports, "clients", r.Clients, "mode", r.Mode, "done", r.Done,
		"per_second", fmt.Sprintf("%.0f", r.PerSecond), "p50_ms", fmt.Sprintf("%.2f", r.P50ms),
		"p99_ms", fmt.Sprintf("%.2f", r.P99ms), "errors", r.Errors}
	if firstErr != nil {
		log.Warn("bench: measured with errors", append(args, "first_error", firstErr.Error())...)
		return
	}
	log.Info("bench: measured", args...)
}

// freshDatabase returns the URL of a new, empty database and a function that
// removes it: a SQLite file in cfg.Dir, or a PostgreSQL schema bench_<random>.
func freshDatabase(ctx context.Context, cfg Config, engine string) (string, func(), error) {
	name := "bench_" + randomHex()
	if engine == EngineSQLite {
		path := filepath.Join(cfg.Dir, name+".db")
		return path, func() {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
		}, nil
	}
	conn, err := pgx.Connect(ctx, cfg.PostgresURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", name, err)
	}
	drop := func() {
		// The run's context may be over; dropping must still happen.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, cfg.PostgresURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
	}
	u, err := url.Parse(cfg.PostgresURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seed creates the lab, a staff token and n orders of size critical reports
// each, through the service (untimed).
func seed(ctx context.Context, svc *callout.Service, n, size int) (int64, []order, string, error) {
	lab, err := svc.CreateLab(ctx, callout.Settings{Name: "Bench Lab"})
	if err != nil {
		return 0, nil, "", err
	}
	token, err := svc.CreateToken(ctx, lab, "bench", callout.RoleStaff)
	if err != nil {
		return 0, nil, "", err
	}
	p := callout.Principal{LabID: lab, User: "bench", Role: callout.RoleStaff}
	orders := make([]order, 0, n)
	for i := range n {
		c, err := svc.CreateOrder(ctx, p, newOrder(fmt.Sprintf("BENCH-%06d", i+1), size), nil)
		if err != nil {
			return 0, nil, "", err
		}
		o := order{billID: c.ID}
		for _, r := range c.Reports {
			o.reports = append(o.reports, r.ID)
		}
		o.body, err = json.Marshal(callout.Request{LabReportIDs: o.reports, Payload: callout.Payload{
			IsReferral: true, Comment: "Informed Dr. Rao by phone", NotifiedPerson: "Dr. Rao, referring physician"}})
		if err != nil {
			return 0, nil, "", err
		}
		o.emailBody, err = json.Marshal(callout.Request{LabReportIDs: o.reports, Payload: callout.Payload{
			SendEmail: true, IsPatient: true, IsReferral: true, Comment: "Informed Dr. Rao by phone", NotifiedPerson: "Dr. Rao, referring physician"}})
		if err != nil {
			return 0, nil, "", err
		}
		orders = append(orders, o)
	}
	return lab, orders, token, nil
}

func f64(v float64) *float64 { return &v }

// newOrder is an order with n critical reports (potassium 7.1 beside a normal
// sodium), like storetest.Order.
func newOrder(billID string, n int) callout.NewOrder {
	o := callout.NewOrder{
		LabBillID:       billID,
		AccessionNumber: "ACC-" + billID,
		Patient:         callout.Contact{Name: "Maria Müller", Email: "maria@example.org", Phone: "+1 555 0100"},
		Referral:        callout.Contact{Name: "Dr. Rao", Email: "rao@clinic.example", Fax: "+1 555 0199", Phone: "+1 555 0101"},
		Organization:    callout.Contact{Name: "St. Mary Clinic", Email: "lab@stmary.example", Fax: "+1 555 0198", Phone: "+1 555 0102"},
	}
	for i := 1; i <= n; i++ {
		o.Reports = append(o.Reports, callout.NewReport{
			TestID: fmt.Sprintf("T%d", i), TestName: fmt.Sprintf("Electrolytes %d", i), Department: "Biochemistry",
			Parameters: []callout.Parameter{
				{Name: "Potassium", Value: "7.1", Unit: "mmol/L", NormalLow: f64(3.5), NormalHigh: f64(5.1), CriticalLow: f64(2.5), CriticalHigh: f64(6.5)},
				{Name: "Sodium", Value: "140", Unit: "mmol/L", NormalLow: f64(135), NormalHigh: f64(145)},
			},
		})
	}
	return o
}

// runAPI serves the real API on ln (nil: a new loopback port) and drives it
// with cfg.Clients HTTP clients for cfg.Duration; with email, every callout
// emails the patient and the referral.
func runAPI(ctx context.Context, cfg Config, ln net.Listener, st *sqlstore.Store, svc *callout.Service, token string, orders []order, email bool) (stats, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return stats{}, err
		}
	}
	srv := &http.Server{Handler: httpapi.New(httpapi.Config{Service: svc, Ping: st.DB.PingContext}),
		ReadHeaderTimeout: 10 * time.Second}
	var served sync.WaitGroup
	served.Go(func() { _ = srv.Serve(ln) })
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		served.Wait()
	}()

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Clients * 2,
		MaxIdleConnsPerHost: cfg.Clients * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "http://" + ln.Addr().String() + "/api/v1/bills/"
	urls := make([]string, len(orders))
	for i, o := range orders {
		urls[i] = base + strconv.FormatInt(o.billID, 10) + "/callouts"
	}
	auth := "Bearer " + token

	s := load(ctx, cfg.Clients, cfg.Duration, len(orders), func(ctx context.Context, i int) error {
		body := orders[i].body
		if email {
			body = orders[i].emailBody
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, urls[i], bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("POST %s: %s: %s", req.URL.Path, resp.Status, bytes.TrimSpace(msg))
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	})
	return s, nil
}
