package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"callout/internal/callout"
)

// Router is where Mount adds the endpoints; *httpapi.Server is one.
type Router interface {
	// Handle serves h.
	Handle(pattern string, h http.Handler)
	// Authenticate returns the principal of the request's bearer token,
	// or a callout.KindUnauthorized error.
	Authenticate(r *http.Request) (callout.Principal, error)
}

// Prefix is the base path of the FHIR endpoints.
const Prefix = "/fhir/r4"

// served lists the resource types this server reads and searches, in the
// CapabilityStatement's order.
var served = []string{"Communication", "Patient", "ServiceRequest", "DiagnosticReport", "Observation", "Practitioner", "Organization"}

// Mount adds the FHIR R4 endpoints to r, reading from st. baseURL is the
// service's public address (CALLOUT_BASE_URL, e.g.
// "https://callout.lab.example"): every fullUrl and link starts with
// baseURL + Prefix, whatever Host the request names. Internal errors are
// logged to log (nil: discarded) and answered 500 without detail.
func Mount(r Router, st Store, baseURL string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{st: st, auth: r.Authenticate, log: log, base: strings.TrimRight(baseURL, "/") + Prefix}
	r.Handle("GET "+Prefix+"/metadata", h.open(h.metadata))
	for _, typ := range served {
		r.Handle("GET "+Prefix+"/"+typ+"/{id}", h.authed(h.read))
		r.Handle("GET "+Prefix+"/"+typ, h.authed(h.search))
	}
	r.Handle(Prefix+"/", http.HandlerFunc(h.unsupported))
	r.Handle(Prefix, http.HandlerFunc(h.unsupported))
}

type handler struct {
	st   Store
	auth func(*http.Request) (callout.Principal, error)
	log  *slog.Logger
	// base is the FHIR base URL of fullUrl and links. It is configured,
	// never taken from the request: a Host or X-Forwarded-* header is the
	// client's to choose, and a link built from it could send the next
	// request, with its token, to another site.
	base string
}

// open serves h after checking that the client accepts JSON.
func (h *handler) open(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := acceptable(r); err != nil {
			h.fail(w, r, err)
			return
		}
		next(w, r)
	})
}

// authed serves h with the caller's principal. A missing or unknown token
// is answered 401 with an OperationOutcome like every other failure here.
func (h *handler) authed(next func(http.ResponseWriter, *http.Request, callout.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := h.auth(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if err := acceptable(r); err != nil {
			h.fail(w, r, err)
			return
		}
		next(w, r, p)
	})
}

// typeOf is the resource type of a request's path: /fhir/r4/{type}[/{id}].
func typeOf(r *http.Request) string {
	typ, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, Prefix+"/"), "/")
	return typ
}

func (h *handler) read(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	typ, id := typeOf(r), r.PathValue("id")
	if err := readParams(r); err != nil {
		h.fail(w, r, err)
		return
	}
	if typ == "Communication" {
		if rest, ok := strings.CutPrefix(id, AttemptPrefix); ok {
			h.readAttempt(w, r, p, rest)
			return
		}
		h.readCommunication(w, r, p, id)
		return
	}
	s := search{typ: typ, count: 1, rq: ResourceQuery{Kind: kinds[typ]}}
	if !s.ids([]string{id}) || s.none {
		h.fail(w, r, notFound(typ, id))
		return
	}
	res, _, err := h.find(r.Context(), p, s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if len(res) == 0 {
		h.fail(w, r, notFound(typ, id))
		return
	}
	write(w, http.StatusOK, res[0].resource)
}

func (h *handler) readCommunication(w http.ResponseWriter, r *http.Request, p callout.Principal, raw string) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, notFound("Communication", raw))
		return
	}
	e, err := h.st.CalloutRecord(r.Context(), p.LabID, id)
	if callout.ErrorKind(err) == callout.KindNotFound || err == nil && !visible(p, e) {
		h.fail(w, r, notFound("Communication", raw))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := NewCommunication(e, p)
	w.Header().Set("ETag", `W/"`+c.Meta.VersionID+`"`)
	w.Header().Set("Last-Modified", e.Record.CreatedAt.UTC().Format(http.TimeFormat))
	write(w, http.StatusOK, c)
}

// readAttempt serves Communication/attempt-{id}, a row of the attempt log.
func (h *handler) readAttempt(w http.ResponseWriter, r *http.Request, p callout.Principal, rest string) {
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, notFound("Communication", r.PathValue("id")))
		return
	}
	e, err := h.st.CalloutAttempt(r.Context(), p.LabID, id)
	if callout.ErrorKind(err) == callout.KindNotFound {
		h.fail(w, r, notFound("Communication", r.PathValue("id")))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c, ok := NewAttemptCommunication(e, p)
	if !ok {
		h.fail(w, r, notFound("Communication", r.PathValue("id")))
		return
	}
	w.Header().Set("ETag", `W/"`+c.Meta.VersionID+`"`)
	w.Header().Set("Last-Modified", e.Attempt.RecordedAt.UTC().Format(http.TimeFormat))
	write(w, http.StatusOK, c)
}

// found is one resource of a search with its id.
type found struct {
	id       string
	cursor   int64 // the row id the next page starts after
	resource any
}

func (h *handler) search(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	typ := typeOf(r)
	s, err := parseSearch(typ, r.URL.Query(), p.LabID, strict(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var res []found
	total := 0
	if !s.none {
		res, total, err = h.find(r.Context(), p, s)
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	self := base(h.base, typ, s.used)
	b := Bundle{ResourceType: "Bundle", Type: "searchset", Total: total, Link: []BundleLink{{Relation: "self", URL: self}}}
	if len(res) > s.count {
		res = res[:s.count]
		next := url.Values{}
		for k, v := range s.used {
			next[k] = v
		}
		next.Set("_cursor", strconv.FormatInt(res[len(res)-1].cursor, 10))
		b.Link = append(b.Link, BundleLink{Relation: "next", URL: base(h.base, typ, next)})
	}
	for _, f := range res {
		b.Entry = append(b.Entry, BundleEntry{FullURL: h.base + "/" + typ + "/" + f.id, Resource: f.resource,
			Search: &EntrySearch{Mode: "match"}})
	}
	write(w, http.StatusOK, b)
}

func base(b, typ string, v url.Values) string { return b + "/" + typ + query(v) }

// find runs a parsed search for p: at most s.count+1 resources (one more
// tells whether a next page exists) and the total.
func (h *handler) find(ctx context.Context, p callout.Principal, s search) ([]found, int, error) {
	limit := 0
	if s.count > 0 {
		limit = s.count + 1
	}
	if s.typ == "Communication" {
		q := s.q
		q.Departments = p.Departments
		q.Limit = limit
		entries, total, err := h.st.SearchCalloutRecords(ctx, p.LabID, q)
		if err != nil {
			return nil, 0, err
		}
		var out []found
		for _, e := range entries {
			if !visible(p, e) {
				// The store filters by department already; this guards the rule.
				h.log.Error("FHIR search returned a record the caller may not see", "record", e.Record.ID, "lab", p.LabID)
				continue
			}
			c := NewCommunication(e, p)
			out = append(out, found{id: c.ID, cursor: e.Record.ID, resource: c})
		}
		return out, total, nil
	}

	q := s.rq
	q.Departments = p.Departments
	q.Limit = limit
	rows, total, err := h.st.FindResources(ctx, p.LabID, q)
	if err != nil {
		return nil, 0, err
	}
	var billIDs, patientIDs []int64
	for _, f := range rows {
		if !slices.Contains(billIDs, f.BillID) {
			billIDs = append(billIDs, f.BillID)
		}
		if q.Kind == KindPatient {
			patientIDs = append(patientIDs, f.ID)
		}
	}
	bills, err := h.st.Orders(ctx, p.LabID, billIDs)
	if err != nil {
		return nil, 0, err
	}
	byID := map[int64]callout.Bill{}
	for _, b := range bills {
		if v, ok := p.Visible(b); ok {
			byID[b.ID] = v
		}
	}
	patients := map[int64]*PatientRow{}
	if len(patientIDs) > 0 {
		ps, err := h.st.Patients(ctx, p.LabID, patientIDs)
		if err != nil {
			return nil, 0, err
		}
		for i := range ps {
			patients[ps[i].ID] = &ps[i]
		}
	}
	var out []found
	for _, f := range rows {
		b, ok := byID[f.BillID]
		if !ok {
			// Gone since it was found, or not visible: the store
			// filters by department already; this guards the rule.
			continue
		}
		var res any
		switch s.typ {
		case "Patient":
			if q.Kind == KindOrder {
				res = NewPatient(nil, b)
			} else if row := patients[f.ID]; row != nil {
				res = NewPatient(row, b)
			}
		case "ServiceRequest":
			res = NewServiceRequest(b)
		case "Practitioner":
			res = NewPractitioner(b)
		case "Organization":
			res = NewOrganization(b)
		case "DiagnosticReport":
			if r, ok := b.Report(f.ID); ok {
				res = NewDiagnosticReport(b, r)
			}
		case "Observation":
			for _, r := range b.Reports {
				for _, prm := range r.Parameters {
					if prm.ID == f.ID {
						res = NewObservation(b, r, prm)
					}
				}
			}
		}
		if res == nil {
			continue
		}
		out = append(out, found{id: resourceID(res), cursor: f.ID, resource: res})
	}
	return out, total, nil
}

func resourceID(res any) string {
	switch v := res.(type) {
	case Patient:
		return v.ID
	case ServiceRequest:
		return v.ID
	case Practitioner:
		return v.ID
	case Organization:
		return v.ID
	case DiagnosticReport:
		return v.ID
	case Observation:
		return v.ID
	}
	return ""
}

func (h *handler) metadata(w http.ResponseWriter, r *http.Request) {
	if err := readParams(r); err != nil {
		h.fail(w, r, err)
		return
	}
	write(w, http.StatusOK, capabilityStatement(h.base))
}

// unsupported answers everything else under the prefix.
func (h *handler) unsupported(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	typ, id, hasID := strings.Cut(path, "/")
	if path == "metadata" || slices.Contains(served, typ) && (!hasID || id != "" && !strings.Contains(id, "/")) {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, &problem{http.StatusMethodNotAllowed, "not-supported", r.Method + " is not supported here; this server is read-only"})
		return
	}
	h.fail(w, r, &problem{http.StatusNotFound, "not-supported", "this server serves metadata, " + strings.Join(served, ", ") + " only, not " + strconv.Quote(path)})
}

// strict reports whether the client asked for strict handling of search
// parameters (Prefer: handling=strict): unknown ones are then refused
// rather than ignored.
func strict(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(strings.TrimSpace(k), "handling") && strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "strict") {
				return true
			}
		}
	}
	return false
}

// readParams checks the parameters of a read or of metadata: _format must
// ask for JSON; with Prefer: handling=strict nothing else is allowed.
func readParams(r *http.Request) error {
	for name, values := range r.URL.Query() {
		if name != "_format" {
			if strict(r) {
				return notSupported("unknown parameter %q", name)
			}
			continue
		}
		for _, f := range values {
			if !jsonFormat(f) {
				return notAcceptable("_format " + strconv.Quote(f))
			}
		}
	}
	return nil
}

// acceptable checks the Accept header: a client that accepts none of JSON,
// FHIR JSON or anything is answered 406, as is one asking for FHIR XML.
func acceptable(r *http.Request) error {
	values := r.Header.Values("Accept")
	if len(values) == 0 {
		return nil
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q := params["q"]; q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
				continue
			}
			switch mt {
			case "*/*", "application/*", "application/json", "application/fhir+json", "application/json+fhir":
				return nil
			}
		}
	}
	return notAcceptable("Accept " + strconv.Quote(strings.Join(values, ", ")))
}

func notAcceptable(what string) *problem {
	return &problem{http.StatusNotAcceptable, "not-supported", what + " is not served; this server speaks FHIR JSON only (application/fhir+json)"}
}

func notFound(typ, id string) error {
	// The same answer for a missing resource, another lab's and one the
	// caller's departments do not see.
	return &problem{http.StatusNotFound, "not-found", typ + "/" + id + " is not known"}
}

// fail answers err as an OperationOutcome. Only unexpected errors are logged,
// with their detail; the client learns nothing of them.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if !errors.As(err, &p) {
		p = fromKind(err)
	}
	if p == nil {
		if r.Context().Err() != nil {
			h.log.Warn("FHIR request ended early", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			h.log.Error("FHIR internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		p = &problem{http.StatusInternalServerError, "exception", "internal error"}
	}
	if p.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="callout"`)
	}
	WriteOutcome(w, p.status, p.code, p.msg)
}

// fromKind maps the domain's error kinds onto statuses and issue types; nil
// for an internal error.
func fromKind(err error) *problem {
	msg := callout.ErrorMessage(err)
	switch callout.ErrorKind(err) {
	case callout.KindUnauthorized:
		return &problem{http.StatusUnauthorized, "login", msg}
	case callout.KindForbidden:
		return &problem{http.StatusForbidden, "forbidden", msg}
	case callout.KindNotFound:
		return &problem{http.StatusNotFound, "not-found", msg}
	case callout.KindInvalid, callout.KindUnprocessable:
		return &problem{http.StatusBadRequest, "invalid", msg}
	case callout.KindThrottled:
		return &problem{http.StatusTooManyRequests, "throttled", msg}
	}
	return nil
}

// WriteOutcome answers an OperationOutcome of one error issue; the API
// server uses it for a panic under Prefix.
func WriteOutcome(w http.ResponseWriter, status int, code, msg string) {
	write(w, status, OperationOutcome{ResourceType: "OperationOutcome",
		Issue: []Issue{{Severity: "error", Code: code, Diagnostics: msg}}})
}

func write(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception","diagnostics":"internal error"}]}`)
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	// Resources name patients: no shared cache may keep them.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// query encodes v as a query string ("" when empty), sorted by key.
func query(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
