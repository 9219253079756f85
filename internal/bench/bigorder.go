package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"callout/internal/callout"
	"callout/internal/httpapi"
	"callout/internal/sqlstore"
)

// BigOrderResult is one cell of the bigorder set: one lab's callouts
// through the API with nothing else running (the floor, measured in the same
// run), and again while another lab posts orders of the largest size an
// order may have, back to back.
type BigOrderResult struct {
	Engine string
	// Reports and Parameters per big order (every report has
	// Parameters/Reports of them); Bytes is its request body.
	Reports, Parameters, Bytes int
	// Idle: lab B's done callouts (Config.Clients clients), alone.
	Idle Result
	// Loaded: the same, while BigOrders runs.
	Loaded Result
	// BigOrders: lab A's POST /api/v1/orders of big orders
	// (Config.BigOrderClients clients), during Loaded.
	BigOrders Result
}

// ModeBigOrder names lab A's big orders; lab B's callouts are ModeAPI.
const ModeBigOrder = "bigorder"

// bigOrderBody is the JSON of an order of the largest size allowed:
// MaxReportsPerOrder reports sharing MaxParametersPerOrder results, with
// short texts as a lab system sends them (the case: 500 × 45 in
// about 870 KB). The first result of every report is flagged critical, so
// every report is pending. Its Order ID is billID.
func bigOrderBody(billID string) ([]byte, error) {
	type param struct {
		Name  string `json:"name"`
		Value string `json:"value"`
		Unit  string `json:"unit,omitempty"`
		Flag  string `json:"flag,omitempty"`
	}
	type report struct {
		TestID     string  `json:"test_id"`
		TestName   string  `json:"test_name"`
		Parameters []param `json:"parameters"`
	}
	o := struct {
		LabBillID string          `json:"lab_bill_id"`
		Patient   callout.Contact `json:"patient"`
		Reports   []report        `json:"reports"`
	}{LabBillID: billID, Patient: callout.Contact{Name: "Maria Müller", Email: "maria@example.org"}}
	per := callout.MaxParametersPerOrder / callout.MaxReportsPerOrder
	for i := range callout.MaxReportsPerOrder {
		r := report{TestID: fmt.Sprintf("T%d", i+1), TestName: fmt.Sprintf("Panel %d", i+1)}
		for j := range per {
			p := param{Name: fmt.Sprintf("A%d", j+1), Value: strconv.Itoa(100 + j)}
			if j%3 == 0 {
				p.Unit = "mg/dL"
			}
			if j == 0 {
				p.Flag = "HH"
			}
			r.Parameters = append(r.Parameters, p)
		}
		o.Reports = append(o.Reports, r)
	}
	return json.Marshal(o)
}

// runBigOrderCell measures one engine on a fresh database: lab B's
// callouts alone, then the same while lab A posts big orders.
func runBigOrderCell(ctx context.Context, cfg Config, engine string, log *slog.Logger) (BigOrderResult, error) {
	res := BigOrderResult{Engine: engine}
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
	log.Info("bench: preparing", "engine", engine, "mode", ModeBigOrder, "orders", cfg.Orders)
	svc := callout.NewService(st, nil)
	_, orders, tokenB, err := seed(ctx, svc, cfg.Orders, 1)
	if err != nil {
		return res, fmt.Errorf("create orders: %w", err)
	}
	labA, err := svc.CreateLab(ctx, callout.Settings{Name: "Big Lab"})
	if err != nil {
		return res, err
	}
	tokenA, err := svc.CreateToken(ctx, labA, "integrator", callout.RoleStaff)
	if err != nil {
		return res, err
	}
	const marker = "BIG-ORDER-ID"
	body, err := bigOrderBody(marker)
	if err != nil {
		return res, err
	}
	if len(body) > httpapi.MaxBody {
		return res, fmt.Errorf("the big order is %d bytes, over the API's %d", len(body), httpapi.MaxBody)
	}
	res.Reports, res.Parameters, res.Bytes = callout.MaxReportsPerOrder, callout.MaxParametersPerOrder, len(body)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
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
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: (cfg.Clients + cfg.BigOrderClients) * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}

	callouts := func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			base+"/api/v1/bills/"+strconv.FormatInt(orders[i].billID, 10)+"/callouts", bytes.NewReader(orders[i].body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tokenB)
		req.Header.Set("Content-Type", "application/json")
		return expect(client, req, http.StatusCreated)
	}
	var n atomic.Int64
	bigOrders := func(ctx context.Context, _ int) error {
		id := fmt.Sprintf("BIG-%09d", n.Add(1))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/orders",
			bytes.NewReader(bytes.Replace(body, []byte(marker), []byte(id), 1)))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tokenA)
		req.Header.Set("Content-Type", "application/json")
		return expect(client, req, http.StatusCreated)
	}

	labels := func(mode string) pprof.LabelSet { return pprof.Labels("engine", engine, "mode", mode) }
	var idle stats
	pprof.Do(ctx, labels(ModeAPI), func(ctx context.Context) {
		idle = load(ctx, cfg.Clients, cfg.Duration, len(orders), callouts)
	})
	res.Idle = idle.result(engine, 1, cfg.Clients, ModeAPI)
	logResult(log, res.Idle, idle.firstErr)

	var loaded, big stats
	var wg sync.WaitGroup
	wg.Go(func() {
		pprof.Do(ctx, labels(ModeBigOrder), func(ctx context.Context) {
			big = load(ctx, cfg.BigOrderClients, cfg.Duration, cfg.BigOrderClients, bigOrders)
		})
	})
	pprof.Do(ctx, labels(ModeAPI), func(ctx context.Context) {
		loaded = load(ctx, cfg.Clients, cfg.Duration, len(orders), callouts)
	})
	wg.Wait()
	res.Loaded = loaded.result(engine, 1, cfg.Clients, ModeAPI)
	res.BigOrders = big.result(engine, res.Reports, cfg.BigOrderClients, ModeBigOrder)
	logResult(log, res.Loaded, loaded.firstErr)
	logResult(log, res.BigOrders, big.firstErr)
	return res, ctx.Err()
}
