package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"callout/internal/callout"
	"callout/internal/httpapi"
	"callout/internal/sqlstore"
	"callout/internal/web"
)

// SignInResult is one cell of the signin set: the API worklist's latency
// with nothing else running, and again while clients sign in to the web
// pages as fast as they can (the right password each time, so every
// attempt costs a full bcrypt check at the real cost).
type SignInResult struct {
	Engine string
	// Idle: GET /api/v1/worklist by one client, alone.
	Idle Result
	// Storm: the same, while SignIn runs.
	Storm Result
	// SignIn: the sign-ins (GET /signin, then POST /signin) of
	// Config.SignInClients parallel clients during Storm.
	SignIn Result
}

// ModeWorklist and ModeSignIn name the measurements of the signin set.
const (
	ModeWorklist = "worklist" // GET /api/v1/worklist, one client
	ModeSignIn   = "signin"   // GET + POST /signin with the right password
)

// runSignInCell measures one engine on a fresh database: the worklist
// alone, then the worklist during a sign-in storm.
func runSignInCell(ctx context.Context, cfg Config, engine string, log *slog.Logger) (SignInResult, error) {
	res := SignInResult{Engine: engine}
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
	log.Info("bench: preparing", "engine", engine, "mode", ModeSignIn, "orders", cfg.Orders)
	svc := callout.NewService(st, nil)
	lab, _, token, err := seed(ctx, svc, cfg.Orders, 1)
	if err != nil {
		return res, fmt.Errorf("create orders: %w", err)
	}
	const userName = "bench-signin"
	password := randomPassword()
	u, err := callout.NewUser(lab, userName, password, callout.RoleStaff, nil, callout.Now())
	if err != nil {
		return res, err
	}
	if _, err := st.CreateUser(ctx, u); err != nil {
		return res, err
	}

	// Served as `callout serve` serves them: the web pages on the API's mux.
	api := httpapi.New(httpapi.Config{Service: svc, Ping: st.DB.PingContext})
	web.New(web.Config{Service: svc, Accounts: st, Worklist: st, Location: time.UTC}).Mount(api)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	var served sync.WaitGroup
	served.Go(func() { _ = srv.Serve(ln) })
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		served.Wait()
	}()
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: cfg.SignInClients * 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}

	worklist := func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/worklist", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		return expect(client, req, http.StatusOK)
	}
	signIn := func(ctx context.Context, _ int) error {
		return signInOnce(ctx, tr, base, userName, password)
	}

	labels := func(mode string) pprof.LabelSet { return pprof.Labels("engine", engine, "mode", mode) }
	pprof.Do(ctx, labels(ModeWorklist), func(ctx context.Context) {
		res.Idle = load(ctx, 1, cfg.Duration, 1, worklist).result(engine, 0, 1, ModeWorklist)
	})
	logResult(log, res.Idle, nil)

	var storm, signins stats
	var wg sync.WaitGroup
	wg.Go(func() {
		pprof.Do(ctx, labels(ModeSignIn), func(ctx context.Context) {
			signins = load(ctx, cfg.SignInClients, cfg.Duration, cfg.SignInClients, signIn)
		})
	})
	pprof.Do(ctx, labels(ModeWorklist), func(ctx context.Context) {
		storm = load(ctx, 1, cfg.Duration, 1, worklist)
	})
	wg.Wait()
	res.Storm = storm.result(engine, 0, 1, ModeWorklist)
	res.SignIn = signins.result(engine, 0, cfg.SignInClients, ModeSignIn)
	logResult(log, res.Storm, storm.firstErr)
	logResult(log, res.SignIn, signins.firstErr)
	return res, ctx.Err()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInOnce signs in as a new browser would: the form (and its
// double-submit cookie), then the post, which must answer 303.
func signInOnce(ctx context.Context, tr http.RoundTripper, base, name, password string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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
	return expect(c, req, http.StatusSeeOther)
}

// expect sends req and checks the answer's status.
func expect(c *http.Client, req *http.Request, status int) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(msg)))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func randomPassword() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
