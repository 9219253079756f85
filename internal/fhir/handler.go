package fhir

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"callout/internal/callout"
)

// Router is where Mount adds the endpoints; *httpapi.Server is one.
type Router interface {
	// Handle serves h without authentication.
	Handle(pattern string, h http.Handler)
	// HandleAuthed serves h with the caller's principal, answering a
	// missing or unknown token itself.
	HandleAuthed(pattern string, h func(http.ResponseWriter, *http.Request, callout.Principal))
}

// Prefix is the base path of the FHIR endpoints.
const Prefix = "/fhir/r4"

// Mount adds the FHIR R4 endpoints to r, reading from st. baseURL is the
// service's public address (CALLOUT_BASE_URL, e.g.
// "https://callout.lab.example"): every fullUrl and link starts with
// baseURL + Prefix, whatever Host the request names. Internal errors are
// logged to log (nil: discarded) and answered 500 without detail.
func Mount(r Router, st Store, baseURL string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{st: st, log: log, base: strings.TrimRight(baseURL, "/") + Prefix}
	r.Handle("GET "+Prefix+"/metadata", http.HandlerFunc(h.metadata))
	r.HandleAuthed("GET "+Prefix+"/Communication/{id}", h.read)
	r.HandleAuthed("GET "+Prefix+"/Communication", h.search)
	r.Handle(Prefix+"/", http.HandlerFunc(h.unsupported))
}

type handler struct {
	st  Store
	log *slog.Logger
	// base is the FHIR base URL of fullUrl and links. It is configured,
	// never taken from the request: a Host or X-Forwarded-* header is the
	// client's to choose, and a link built from it could send the next
	// request, with its token, to another site.
	base string
}

func (h *handler) read(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	if err := formatOnly(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, notFound(r.PathValue("id")))
		return
	}
	e, err := h.st.CalloutRecord(r.Context(), p.LabID, id)
	if callout.ErrorKind(err) == callout.KindNotFound || err == nil && !visible(p, e) {
		h.fail(w, r, notFound(r.PathValue("id")))
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

func (h *handler) search(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	s, err := parseSearch(r.URL.Query(), p.LabID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var entries []Entry
	total := 0
	if !s.none {
		q := s.q
		q.Departments = p.Departments
		if s.count > 0 {
			q.Limit = s.count + 1 // one more tells whether a next page exists
		}
		entries, total, err = h.st.SearchCalloutRecords(r.Context(), p.LabID, q)
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	base := h.base
	b := Bundle{ResourceType: "Bundle", Type: "searchset",
		Link: []BundleLink{{Relation: "self", URL: base + "/Communication" + query(r.URL.Query())}}}
	if s.q.Total {
		b.Total = &total
	}
	if len(entries) > s.count {
		entries = entries[:s.count]
		next := r.URL.Query()
		next.Set("_cursor", strconv.FormatInt(entries[len(entries)-1].Record.ID, 10))
		b.Link = append(b.Link, BundleLink{Relation: "next", URL: base + "/Communication" + query(next)})
	}
	for _, e := range entries {
		if !visible(p, e) {
			// The store filters by department already; this guards the rule.
			h.log.Error("FHIR search returned a record the caller may not see", "record", e.Record.ID, "lab", p.LabID)
			continue
		}
		c := NewCommunication(e, p)
		b.Entry = append(b.Entry, BundleEntry{FullURL: base + "/Communication/" + c.ID, Resource: c,
			Search: &EntrySearch{Mode: "match"}})
	}
	write(w, http.StatusOK, b)
}

func (h *handler) metadata(w http.ResponseWriter, r *http.Request) {
	if err := formatOnly(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	write(w, http.StatusOK, capabilityStatement(h.base))
}

// unsupported answers everything else under the prefix.
func (h *handler) unsupported(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, Prefix)
	if path == "/metadata" || path == "/Communication" || strings.HasPrefix(path, "/Communication/") && strings.Count(path, "/") == 2 && path != "/Communication/" {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, &problem{http.StatusMethodNotAllowed, "not-supported", r.Method + " is not supported here; this server is read-only"})
		return
	}
	h.fail(w, r, &problem{http.StatusNotFound, "not-supported", "this server serves metadata and Communication only, not " + strings.TrimPrefix(path, "/")})
}

// formatOnly refuses any parameter but _format on read and metadata.
func formatOnly(v url.Values) error {
	for name, values := range v {
		if name != "_format" {
			return notSupported("unknown parameter %q", name)
		}
		for _, f := range values {
			if !jsonFormat(f) {
				return &problem{http.StatusNotAcceptable, "not-supported", "_format " + strconv.Quote(f) + " is not served; this server speaks JSON only"}
			}
		}
	}
	return nil
}

func notFound(id string) error {
	// The same answer for a missing record, another lab's and one the
	// caller's departments do not see.
	return &problem{http.StatusNotFound, "not-found", "Communication/" + id + " is not known"}
}

// fail answers err as an OperationOutcome. Only unexpected errors are logged,
// with their detail; the client learns nothing of them.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if !errors.As(err, &p) {
		if r.Context().Err() != nil {
			h.log.Warn("FHIR request ended early", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			h.log.Error("FHIR internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		p = &problem{http.StatusInternalServerError, "exception", "internal error"}
	}
	write(w, p.status, OperationOutcome{ResourceType: "OperationOutcome",
		Issue: []Issue{{Severity: "error", Code: p.code, Diagnostics: p.msg}}})
}

func write(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception","diagnostics":"internal error"}]}`)
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	// Communications name patients: no shared cache may keep them.
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
