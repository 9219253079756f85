package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"callout/internal/callout"
	"callout/internal/fhir"
	"callout/internal/httpapi"
	"callout/internal/web"
)

func serveCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "serve", "serve [--addr 127.0.0.1:8080] [--demo] [--db URL]")
	defAddr := e.getenv("CALLOUT_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:8080"
	}
	addr := fs.String("addr", defAddr, "address to listen on (env CALLOUT_ADDR); port 0 picks a free one")
	demo := fs.Bool("demo", false, "load a demo lab with orders and print an API token")
	noWork := fs.Bool("no-workers", false, "do not run background workers here (run `callout worker` elsewhere)")
	if err := parse(fs, args); err != nil {
		return err
	}
	tlsConfig, err := serverTLS(e, "CALLOUT_TLS_CERT", "CALLOUT_TLS_KEY")
	if err != nil {
		return err
	}
	mllp, err := mllpServer(e)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	url := "http://" + ln.Addr().String()
	if tlsConfig != nil {
		url = "https://" + ln.Addr().String()
	}
	rt, err := newRuntime(ctx, e, *db, !*noWork, true, url)
	if err != nil {
		ln.Close()
		return err
	}
	defer rt.Close()
	st, svc := rt.store, rt.svc
	if err := rt.queue.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	defer stopQueue(e, rt)

	var demoToken, demoPassword string
	if *demo {
		if demoToken, err = loadDemo(ctx, svc); err != nil {
			return fmt.Errorf("load demo data: %w", err)
		}
		if demoPassword, err = demoUser(ctx, st); err != nil {
			return fmt.Errorf("create the demo user: %w", err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "callout_db_queries_total",
		Help: "Statements sent to the database, BEGIN and COMMIT included.",
	}, func() float64 { return float64(st.Queries.Load()) }))
	api := httpapi.New(httpapi.Config{Service: svc, Log: e.log, Ping: st.DB.PingContext, Metrics: httpapi.NewMetrics(reg)})
	baseURL, err := publicURL(e.getenv("CALLOUT_BASE_URL"), url)
	if err != nil {
		return err
	}
	fhir.Mount(api, st, baseURL, e.log)
	secure, err := secureCookies(e.getenv("CALLOUT_SECURE_COOKIES"), baseURL)
	if err != nil {
		return err
	}
	proxies, err := web.ParseTrustedProxies(e.getenv("CALLOUT_TRUSTED_PROXIES"))
	if err != nil {
		return fmt.Errorf("CALLOUT_TRUSTED_PROXIES: %w (want addresses and CIDR prefixes, comma-separated)", err)
	}
	web.New(web.Config{Service: svc, Accounts: st, Worklist: st, Log: e.log, BaseURL: baseURL, SecureCookies: secure,
		TrustedProxies: proxies}).Mount(api)

	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, TLSConfig: tlsConfig}
	if mllp != nil {
		addr, err := serveMLLP(ctx, e, rt, mllp, reg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "HL7 v2 (MLLP) on %s\n", addr)
	}
	fmt.Fprintf(e.stdout, "Callout is listening on %s (database: %s)\n", url, st.Engine)
	if demoToken != "" {
		fmt.Fprintf(e.stdout, "Demo API token (admin): %s\n", demoToken)
		fmt.Fprintf(e.stdout, "Try: curl -H 'Authorization: Bearer %s' %s/api/v1/worklist\n", demoToken, url)
		fmt.Fprintf(e.stdout, "Demo user: demo / %s (sign in at %s/)\n", demoPassword, url)
	}
	errc := make(chan error, 2)
	if a := e.getenv("CALLOUT_METRICS_ADDR"); a != "" {
		maddr, stop, err := serveMetrics(a, reg, errc)
		if err != nil {
			return err
		}
		defer stop(context.Background())
		fmt.Fprintf(e.stdout, "Metrics on http://%s/metrics\n", maddr)
	}
	e.log.Info("serving", "addr", ln.Addr().String(), "engine", st.Engine)

	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	e.log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// publicURL reads CALLOUT_BASE_URL, the address users and integrators reach
// the service at (default the listen address): links in emails and FHIR
// bundles are built from it, never from a request's Host header.
func publicURL(v, listen string) (string, error) {
	if v == "" {
		return listen, nil
	}
	u, err := neturl.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("CALLOUT_BASE_URL=%q is not an http:// or https:// address such as https://callout.lab.example", v)
	}
	return strings.TrimRight(v, "/"), nil
}

// loopbackURL reports whether u's host is this machine only (localhost,
// 127.0.0.0/8, ::1), an address nobody else can open.
func loopbackURL(u string) bool {
	p, err := neturl.Parse(u)
	if err != nil {
		return false
	}
	host := p.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// secureCookies reads CALLOUT_SECURE_COOKIES: whether the session cookie is
// sent over HTTPS only. By default it is when the base URL is https.
func secureCookies(v, baseURL string) (bool, error) {
	if v == "" {
		return strings.HasPrefix(baseURL, "https://"), nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("CALLOUT_SECURE_COOKIES=%q is not true or false", v)
	}
	return on, nil
}

// DemoLabName names the lab --demo creates once and reuses after.
const DemoLabName = "Callout Demo Lab"

// loadDemo creates the demo lab and its orders on first use and returns a
// fresh admin token for it (tokens are stored hashed, so an old one cannot
// be shown again).
func loadDemo(ctx context.Context, svc *callout.Service) (string, error) {
	lab, err := svc.Store.FindLab(ctx, DemoLabName)
	if callout.ErrorKind(err) == callout.KindNotFound {
		lab, err = svc.CreateLab(ctx, callout.Settings{Name: DemoLabName, ShareComment: true,
			AdditionalInstruction: "Ask the receiver to read back every critical value."})
		if err != nil {
			return "", err
		}
		p := callout.Principal{LabID: lab, User: "demo", Role: callout.RoleAdmin}
		for _, o := range demoOrders(time.Now().UTC()) {
			if _, err := svc.CreateOrder(ctx, p, o, nil); err != nil {
				return "", err
			}
		}
	} else if err != nil {
		return "", err
	}
	return svc.CreateToken(ctx, lab, "demo", callout.RoleAdmin)
}

func f64(v float64) *float64 { return &v }

func demoOrders(now time.Time) []callout.NewOrder {
	ago := func(m int) *time.Time { t := now.Add(-time.Duration(m) * time.Minute); return &t }
	param := func(name, value, unit string, nl, nh, cl, ch float64) callout.Parameter {
		return callout.Parameter{Name: name, Value: value, Unit: unit, NormalLow: f64(nl), NormalHigh: f64(nh), CriticalLow: f64(cl), CriticalHigh: f64(ch)}
	}
	clinic := callout.Contact{Name: "St. Mary Clinic", Email: "lab@stmary.example", Fax: "+1 555 0198", Phone: "+1 555 0102"}
	return []callout.NewOrder{
		{
			LabBillID: "ORD-1001", AccessionNumber: "ACC-88121",
			Patient:      callout.Contact{Name: "Maria Müller", Email: "maria.mueller@example.org", Phone: "+1 555 0100"},
			Referral:     callout.Contact{Name: "Dr. Anil Rao", Email: "rao@stmary.example", Fax: "+1 555 0199", Phone: "+1 555 0101"},
			Organization: clinic,
			Reports: []callout.NewReport{
				{TestID: "ELEC", TestName: "Serum Electrolytes", Department: "Biochemistry", ResultedAt: ago(12), Parameters: []callout.Parameter{
					param("Potassium", "7.1", "mmol/L", 3.5, 5.1, 2.5, 6.5), param("Sodium", "138", "mmol/L", 135, 145, 120, 160)}},
				{TestID: "GLU", TestName: "Glucose, fasting", Department: "Biochemistry", ResultedAt: ago(9), Parameters: []callout.Parameter{
					param("Glucose", "35", "mg/dL", 70, 99, 40, 450)}},
				{TestID: "LIPID", TestName: "Lipid profile", Department: "Biochemistry", ResultedAt: ago(9), Parameters: []callout.Parameter{
					param("Cholesterol", "240", "mg/dL", 0, 200, 0, 1000)}},
			},
		},
		{
			LabBillID: "ORD-1002", AccessionNumber: "ACC-88122",
			Patient:      callout.Contact{Name: "John Okafor", Phone: "+1 555 0110"},
			Referral:     callout.Contact{Name: "Dr. Lena Park", Email: "park@stmary.example", Phone: "+1 555 0111"},
			Organization: clinic,
			Reports: []callout.NewReport{
				{TestID: "CBC", TestName: "Complete Blood Count", Department: "Haematology", ResultedAt: ago(47), Parameters: []callout.Parameter{
					param("Haemoglobin", "5.9", "g/dL", 13, 17, 7, 20), param("Platelets", "18", "10^9/L", 150, 400, 20, 1000)}},
			},
		},
		{
			LabBillID: "ORD-1003",
			Patient:   callout.Contact{Name: "Aiko Tanaka", Email: "aiko@example.org", Phone: "+1 555 0120"},
			Referral:  callout.Contact{Name: "Dr. Samuel Reyes", Fax: "+1 555 0129", Phone: "+1 555 0121"},
			Reports: []callout.NewReport{
				{TestID: "COAG", TestName: "Coagulation (PT/INR)", Department: "Haematology", ResultedAt: ago(3), Parameters: []callout.Parameter{
					param("INR", "6.2", "", 0.8, 1.2, 0, 5)}},
				{TestID: "TROP", TestName: "Troponin I", Department: "Biochemistry", ResultedAt: ago(3), Parameters: []callout.Parameter{
					{Name: "Troponin I", Value: "2.8", Unit: "ng/mL", Flag: "HH"}}},
			},
		},
		{
			LabBillID: "ORD-1004",
			Patient:   callout.Contact{Name: "Peter Novak", Phone: "+1 555 0130"},
			Referral:  callout.Contact{Name: "Dr. Anil Rao", Email: "rao@stmary.example", Fax: "+1 555 0199", Phone: "+1 555 0101"},
			Reports: []callout.NewReport{
				{TestID: "TSH", TestName: "Thyroid panel", Department: "Biochemistry", ResultedAt: ago(30), Parameters: []callout.Parameter{
					param("TSH", "2.1", "mIU/L", 0.4, 4.0, 0.01, 50)}},
			},
		},
	}
}

// stopQueue lets running jobs finish for a while; what is cut short is
// retried by the next process (a job is done only when it is marked done).
func stopQueue(e *env, rt *runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.queue.Stop(ctx); err != nil {
		e.log.Warn("stopping workers", "err", err)
	}
}

func workerCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "worker", "worker [--db URL]")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The embedded index belongs to `serve`; a worker works index syncs
	// only with a shared index (Elasticsearch or OpenSearch).
	rt, err := newRuntime(ctx, e, *db, true, e.getenv("CALLOUT_SEARCH_URL") != "", e.getenv("CALLOUT_BASE_URL"))
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := rt.queue.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	fmt.Fprintf(e.stdout, "Callout worker running (database: %s)\n", rt.store.Engine)
	<-ctx.Done()
	stopQueue(e, rt)
	return nil
}
