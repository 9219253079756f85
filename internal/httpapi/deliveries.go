package httpapi

import (
	"mime"
	"net/http"
	"strconv"

	"callout/internal/callout"
)

func (s *Server) billDeliveries(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, err := s.svc.Deliveries(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	q := r.URL.Query()
	status := q.Get("status")
	if status == "" {
		status = callout.DeliveryFailed
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, invalid("limit must be between 1 and 1000, not %q", v))
			return
		}
		limit = n
	}
	ds, err := s.svc.DeliveriesByStatus(r.Context(), p, status, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.writeError(w, r, callout.Errorf(callout.KindNotFound, "delivery %q not found", r.PathValue("id")))
		return
	}
	d, err := s.svc.RetryDelivery(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"delivery": d})
}

func (s *Server) getEmailTemplate(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	src, err := s.svc.EmailTemplate(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"template": src, "builtin": src == ""})
}

// putEmailTemplate takes the template as JSON {"template":"…"} or as the raw
// body (text/plain or text/html), so `curl --data-binary @email.html` works.
func (s *Server) putEmailTemplate(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	if p.Role != callout.RoleAdmin {
		s.writeError(w, r, callout.Errorf(callout.KindForbidden, "only a lab admin may change the email template"))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The raw template comes as text/html or text/plain; anything else
	// (JSON, or a client's default form type) is read as JSON.
	src := string(body)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/html" && mt != "text/plain" {
		var in struct {
			Template *string `json:"template"`
		}
		if err := decode(body, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
		if in.Template == nil {
			s.writeError(w, r, invalid(`send {"template":"…"}; an empty string restores the built-in template`))
			return
		}
		src = *in.Template
	}
	if err := s.svc.SetEmailTemplate(r.Context(), p, src, s.validate); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"template": src, "builtin": src == ""})
}
