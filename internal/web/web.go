// Package web is Callout's browser interface: the worklist of critical
// results, the order page where a technician calls out an order, the lab's
// settings and the worklist export. Pages are rendered on the server with
// html/template; templates, CSS and the little JavaScript there is are
// embedded in the binary, so the pages work on a closed lab network.
//
// Everything a page changes goes through callout.Service with the signed-in
// user's Principal, so a user limited to departments sees and calls out only
// their reports, exactly as an API token limited to them would.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"callout/internal/callout"
)

// Accounts is what signing in needs from storage: users, throttle
// counters and audit (callout.SignInStore), and sessions.
type Accounts interface {
	callout.SignInStore
	CreateSession(ctx context.Context, s callout.Session) error
	// Session returns the unexpired session whose cookie hashes to
	// tokenHash, or an error of kind unauthorized.
	Session(ctx context.Context, tokenHash string, now time.Time) (callout.Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
}

// Worklist finds the orders the worklist page shows and exports, by order
// rather than by report. Text search comes from the search index through
// callout.Service (as the orders it found); a store without an index matches
// f.Text itself.
type Worklist interface {
	// WorklistOrders returns the reports of one page of orders (f.Limit
	// orders from offset) having reports in f's states and departments,
	// among bills when it is not nil, matching f.Text; the orders in page
	// order, and how many orders match. With f.Limit 0 it only counts.
	WorklistOrders(ctx context.Context, labID int64, f callout.WorklistFilter, bills []int64, offset int, newestFirst bool) ([]callout.WorklistItem, int, error)
	// WorklistExport returns the reports WorklistOrders would list grouped
	// in their orders, with parameters, and every callout record of those
	// orders.
	WorklistExport(ctx context.Context, labID int64, f callout.WorklistFilter, bills []int64) ([]callout.Bill, []callout.Record, error)
	// FindBill returns the id of the lab's order with an Order ID.
	FindBill(ctx context.Context, labID int64, labBillID string) (int64, error)
	// WorklistRows reads what the rows of one worklist page show beyond
	// WorklistOrders, for those orders and reports only.
	WorklistRows(ctx context.Context, labID int64, bills, reports []int64) (callout.WorklistRows, error)
}

// Config wires the pages.
type Config struct {
	Service  *callout.Service
	Accounts Accounts
	Worklist Worklist
	Log      *slog.Logger
	// BaseURL is the address people reach the service at; the email
	// preview links to orders under it.
	BaseURL string
	// SecureCookies marks the session cookie Secure: browsers then send it
	// over HTTPS only. Turn it on whenever the service is served over HTTPS.
	SecureCookies bool
	// Location is the time zone pages show times in (default time.Local).
	Location *time.Location
	// SessionLength is how long a sign-in lasts (default 12 hours, a shift).
	SessionLength time.Duration
	// Refresh is how often the worklist reloads itself (default 10 seconds).
	Refresh time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, for sign-in throttling. Empty: the connection's peer is
	// the client and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// PasswordChecks bounds the sign-in password checks (bcrypt) running at
	// once (default callout.DefaultPasswordChecks).
	PasswordChecks int
}

// Handler serves the pages.
type Handler struct {
	svc      *callout.Service
	accounts Accounts
	worklist Worklist
	log      *slog.Logger
	baseURL  string
	secure   bool
	loc      *time.Location
	session  time.Duration
	refresh  time.Duration
	pages    *pages
	mux      *http.ServeMux
	signIn   *callout.SignIn
	proxies  []netip.Prefix
}

// New returns the pages' handler.
func New(cfg Config) *Handler {
	h := &Handler{svc: cfg.Service, accounts: cfg.Accounts, worklist: cfg.Worklist, log: cfg.Log,
		baseURL: cfg.BaseURL, secure: cfg.SecureCookies, loc: cfg.Location, session: cfg.SessionLength, refresh: cfg.Refresh}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.loc == nil {
		h.loc = time.Local
	}
	if h.session <= 0 {
		h.session = 12 * time.Hour
	}
	if h.refresh <= 0 {
		h.refresh = 10 * time.Second
	}
	h.signIn = callout.NewSignIn(cfg.Accounts, func() time.Time { return h.svc.Now() }, h.log, cfg.PasswordChecks)
	h.proxies = cfg.TrustedProxies
	h.pages = loadPages(h.loc)
	h.mux = http.NewServeMux()
	h.Mount(h.mux)
	return h
}

// route is one page or action. The list in routes is the whole UI.
type route struct {
	pattern string
	handler http.Handler
}

func (h *Handler) routes() []route {
	return []route{
		{"GET /{$}", h.page(h.worklistPage)},
		{"GET /worklist/fragment", h.fragment(h.worklistFragment)},
		{"GET /export.csv", h.page(h.exportCSV)},
		{"GET /export.xlsx", h.page(h.exportXLSX)},
		{"GET /signin", http.HandlerFunc(h.signinPage)},
		{"POST /signin", http.HandlerFunc(h.signin)},
		{"POST /signout", h.form(h.signout)},
		{"GET /bills/{id}", h.page(h.billPage)},
		{"GET /bills/{id}/history", h.fragment(h.historyFragment)},
		{"POST /bills/{id}/callouts", h.form(h.postCallout)},
		{"POST /deliveries/{id}/retry", h.form(h.retryDelivery)},
		{"GET /settings", h.page(h.admin(h.settingsPage))},
		{"POST /settings", h.form(h.admin(h.saveSettings))},
		{"POST /settings/template", h.form(h.admin(h.saveTemplate))},
		{"GET /settings/preview", h.page(h.admin(h.previewSaved))},
		{"POST /settings/preview", h.form(h.admin(h.previewDraft))},
		{"GET /static/", staticHandler()},
	}
}

// Routes lists the pattern of every page and action.
func (h *Handler) Routes() []string {
	var out []string
	for _, rt := range h.routes() {
		out = append(out, rt.pattern)
	}
	return out
}

// Mount registers every page on mux, for example the API server's, so one
// listener serves both and each request is timed under its own pattern.
func (h *Handler) Mount(mux interface{ Handle(string, http.Handler) }) {
	cop := http.NewCrossOriginProtection()
	for _, rt := range h.routes() {
		mux.Handle(rt.pattern, cop.Handler(headers(rt.handler)))
	}
}

// ServeHTTP serves the pages on their own (in tests, or without the API).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// contentPolicy allows nothing from elsewhere: no CDN, no inline script.
const contentPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// headers sets the security headers every page carries; a handler may
// loosen them (the email preview is framed by the settings page).
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
