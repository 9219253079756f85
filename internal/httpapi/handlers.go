package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	body, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var o callout.NewOrder
	if err := decode(body, &o); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.idempotent(w, r, p, body, func(idem *callout.Idempotency) (any, error) {
		return s.svc.CreateOrder(r.Context(), p, o, idem)
	})
}

func (s *Server) createCallout(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req callout.Request
	if err := decode(body, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.idempotent(w, r, p, body, func(idem *callout.Idempotency) (any, error) {
		return s.svc.Callout(r.Context(), p, id, req, idem)
	})
}

func (s *Server) getBill(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.svc.Bill(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) listCallouts(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recs, err := s.svc.Records(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"callouts": recs})
}

func (s *Server) listAttempts(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := s.svc.Attempts(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"attempts": rows})
}

func (s *Server) listActivity(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	var f callout.ActivityFilter
	q := r.URL.Query()
	if v := q.Get("bill_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			s.writeError(w, r, invalid("bill_id must be a positive integer, not %q", v))
			return
		}
		f.BillID = &id // the service answers 404 for an order of another lab
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, invalid("limit must be between 1 and 1000, not %q", v))
			return
		}
		f.Limit = n
	}
	entries, err := s.svc.Activity(r.Context(), p, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

// cursor is the opaque worklist position: base64 of {"t","id"}.
type cursor struct {
	T  time.Time `json:"t"`
	ID int64     `json:"id"`
}

func encodeCursor(c *callout.WorklistCursor) *string {
	if c == nil {
		return nil
	}
	b, _ := json.Marshal(cursor{T: c.ResultedAt, ID: c.ID})
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

func decodeCursor(s string) (*callout.WorklistCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID <= 0 {
		return nil, invalid("cursor is not one this server gave out; start again without it")
	}
	return &callout.WorklistCursor{ResultedAt: c.T, ID: c.ID}, nil
}

func (s *Server) worklist(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	var f callout.WorklistFilter
	q := r.URL.Query()
	if v := q.Get("critical_values"); v != "" {
		for _, part := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil {
				s.writeError(w, r, invalid("critical_values must be a comma-separated list of states such as 1,4, not %q", v))
				return
			}
			f.States = append(f.States, callout.State(n))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, invalid("limit must be a positive integer, not %q", v))
			return
		}
		f.Limit = n
	}
	f.Text = q.Get("q")
	if v := q.Get("cursor"); v != "" {
		c, err := decodeCursor(v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.After = c
	}
	items, next, err := s.svc.Worklist(r.Context(), p, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": items, "next_cursor": encodeCursor(next)})
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	set, err := s.svc.Settings(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, set)
}

func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	if p.Role != callout.RoleAdmin {
		s.writeError(w, r, callout.Errorf(callout.KindForbidden, "only a lab admin may change settings"))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var patch callout.SettingsPatch
	if err := decode(body, &patch); err != nil {
		s.writeError(w, r, err)
		return
	}
	set, err := s.svc.UpdateSettings(r.Context(), p, patch)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, set)
}
