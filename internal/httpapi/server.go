// Package httpapi is Callout's JSON API under /api/v1: routes on one screen,
// one error-to-status map, bearer-token authentication, body limits and
// idempotent POSTs.
package httpapi

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callout/internal/callout"
	"callout/internal/notify"
)

// Server serves the API.
type Server struct {
	svc      *callout.Service
	validate callout.TemplateValidator
	log      *slog.Logger
	ping     func(context.Context) error
	metrics  *Metrics
	mux      *http.ServeMux

	mu     sync.Mutex
	tokens map[string]cachedPrincipal
}

// Config wires a Server.
type Config struct {
	Service *callout.Service
	// ValidateTemplate checks a lab's email template before it is stored.
	ValidateTemplate callout.TemplateValidator
	Log              *slog.Logger
	// Ping checks the database for /healthz.
	Ping func(context.Context) error
	// Metrics, when set, records request latencies; see NewMetrics.
	Metrics *Metrics
}

// route is one endpoint. The list in routes is the whole API; the OpenAPI
// test checks it against openapi.json.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// New returns the API server.
func New(cfg Config) *Server {
	s := &Server{svc: cfg.Service, validate: cfg.ValidateTemplate, log: cfg.Log, ping: cfg.Ping, metrics: cfg.Metrics, tokens: map[string]cachedPrincipal{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.validate == nil {
		s.validate = notify.ValidateTemplate
	}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, rt.handler)
	}
	return s
}

func (s *Server) routes() []route {
	return []route{
		{"GET /healthz", s.healthz},
		{"GET /api/v1/openapi.json", s.openAPI},
		{"POST /api/v1/orders", s.auth(s.createOrder)},
		{"GET /api/v1/bills", s.auth(s.findBills)},
		{"GET /api/v1/bills/{id}", s.auth(s.getBill)},
		{"POST /api/v1/bills/{id}/callouts", s.auth(s.createCallout)},
		{"GET /api/v1/bills/{id}/callouts", s.auth(s.listCallouts)},
		{"GET /api/v1/bills/{id}/attempts", s.auth(s.listAttempts)},
		{"GET /api/v1/activity", s.auth(s.listActivity)},
		{"GET /api/v1/worklist", s.auth(s.worklist)},
		{"GET /api/v1/lab/settings", s.auth(s.getSettings)},
		{"PATCH /api/v1/lab/settings", s.auth(s.patchSettings)},
		{"GET /api/v1/lab/critical-limits", s.auth(s.getLimits)},
		{"PUT /api/v1/lab/critical-limits", s.auth(s.putLimits)},
		{"GET /api/v1/lab/templates/email", s.auth(s.getEmailTemplate)},
		{"PUT /api/v1/lab/templates/email", s.auth(s.putEmailTemplate)},
		{"GET /api/v1/bills/{id}/deliveries", s.auth(s.billDeliveries)},
		{"GET /api/v1/deliveries", s.auth(s.listDeliveries)},
		{"POST /api/v1/deliveries/{id}/retry", s.auth(s.retryDelivery)},
	}
}

// Routes lists the method and path of every endpoint, for documentation tests.
func (s *Server) Routes() []string {
	var out []string
	for _, rt := range s.routes() {
		out = append(out, rt.pattern)
	}
	return out
}

// Handle adds a handler beside the API (the web UI, /metrics).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves a request, timing it and turning a panic into a 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK, jsonErrors: strings.HasPrefix(r.URL.Path, "/api/")}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			switch {
			case sw.wrote:
			case strings.HasPrefix(r.URL.Path, "/fhir/"):
				// FHIR clients read OperationOutcome, whatever failed.
				sw.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
				sw.WriteHeader(http.StatusInternalServerError)
				sw.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception","diagnostics":"internal error"}]}` + "\n"))
			default:
				writeJSON(sw, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "internal", "message": "internal error"}})
			}
		}
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		elapsed := time.Since(start)
		if s.metrics != nil {
			s.metrics.observe(pattern, sw.status, elapsed)
		}
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "route", pattern,
			"status", sw.status, "duration", elapsed)
	}()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	// jsonErrors turns the mux's own plain-text 404 and 405 answers under
	// /api/ into the API's error shape; swallow drops their text.
	jsonErrors, swallow bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.status, w.wrote = code, true
	if w.jsonErrors && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.swallow = true
		msg := "no such endpoint; see /api/v1/openapi.json"
		kind := callout.KindNotFound
		if code == http.StatusMethodNotAllowed {
			msg = "this endpoint does not take that method; allowed: " + w.Header().Get("Allow")
			kind = "method_not_allowed"
		}
		w.Header().Del("X-Content-Type-Options")
		var body errorBody
		body.Error.Code, body.Error.Message = string(kind), msg
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.ResponseWriter.WriteHeader(code)
		w.ResponseWriter.Write(b)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Metrics are the API's Prometheus collectors.
type Metrics struct {
	latency *prometheus.HistogramVec
}

// NewMetrics registers the request latency histogram in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "callout_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "status"})}
	reg.MustRegister(m.latency)
	return m
}

func (m *Metrics) observe(route string, status int, d time.Duration) {
	m.latency.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// Authentication. Token lookups are cached briefly: a callout must not pay a
// database round trip to learn who is calling.

type cachedPrincipal struct {
	p       callout.Principal
	expires time.Time
}

const tokenCacheTTL = 30 * time.Second

func (s *Server) auth(next func(http.ResponseWriter, *http.Request, callout.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, r, p)
	}
}

// Authenticate returns the principal of the request's bearer token, or a
// callout.KindUnauthorized error; the FHIR endpoints answer it in their own
// error shape.
func (s *Server) Authenticate(r *http.Request) (callout.Principal, error) {
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return callout.Principal{}, callout.Errorf(callout.KindUnauthorized, "send an API token: Authorization: Bearer <token>")
	}
	s.mu.Lock()
	c, hit := s.tokens[token]
	s.mu.Unlock()
	if !hit || time.Now().After(c.expires) {
		p, err := s.svc.Authenticate(r.Context(), token)
		if err != nil {
			return callout.Principal{}, err
		}
		c = cachedPrincipal{p: p, expires: time.Now().Add(tokenCacheTTL)}
		s.mu.Lock()
		if len(s.tokens) > 10000 {
			clear(s.tokens)
		}
		s.tokens[token] = c
		s.mu.Unlock()
	}
	return c.p, nil
}

// bearerToken returns the token of an Authorization header that uses the
// Bearer scheme. The scheme is case-insensitive and separated from the
// token by one or more spaces (RFC 7235 section 2.1, RFC 6750 section 2.1);
// the token itself has no spaces.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ping(ctx); err != nil {
			s.log.Error("health check failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "unreachable"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	writeRaw(w, http.StatusOK, openAPIDoc)
}

// pathID reads the {id} path value as a positive integer. An id that is not
// one cannot name an order, so it answers 404 like any unknown order.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, callout.Errorf(callout.KindNotFound, "order %q not found", r.PathValue("id"))
	}
	return id, nil
}

// idempotent runs a POST at most once per Idempotency-Key: a retry with the
// same key and body gets the first answer, and the same key with another
// body is refused. The key is stored by do's transaction, with its writes.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, p callout.Principal, body []byte,
	do func(*callout.Idempotency) (any, error)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		res, err := do(nil)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, res)
		return
	}
	if len(key) > 255 {
		s.writeError(w, r, invalid("Idempotency-Key is longer than 255 characters"))
		return
	}
	sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
	idem := &callout.Idempotency{Key: key, Hash: hex.EncodeToString(sum[:])}
	if s.replay(w, r, p, idem) {
		return
	}
	res, err := do(idem)
	if errors.Is(err, callout.ErrIdempotencyRace) && s.replay(w, r, p, idem) {
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// replay answers from the stored response of idem's key, if there is one.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, p callout.Principal, idem *callout.Idempotency) bool {
	stored, err := s.svc.Replay(r.Context(), p, idem.Key)
	if err != nil {
		s.writeError(w, r, err)
		return true
	}
	if stored == nil {
		return false
	}
	if stored.Hash != idem.Hash {
		s.writeError(w, r, callout.Errorf(callout.KindUnprocessable,
			"Idempotency-Key %q was already used for a different request; use a new key", idem.Key))
		return true
	}
	w.Header().Set("Idempotent-Replayed", "true")
	writeRaw(w, stored.Status, stored.Body)
	return true
}
