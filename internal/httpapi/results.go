package httpapi

import (
	"net/http"

	"callout/internal/callout"
)

// billSummary is an order as a search answer shows it.
type billSummary struct {
	ID              int64           `json:"id"`
	LabBillID       string          `json:"lab_bill_id"`
	AccessionNumber string          `json:"accession_number"`
	Patient         callout.Contact `json:"patient"`
	Referral        callout.Contact `json:"referral"`
	Organization    callout.Contact `json:"organization"`
	PatientID       int64           `json:"patient_id,omitempty"`
	CreatedAt       any             `json:"created_at"`
}

func (s *Server) findBills(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	bs, err := s.svc.FindBills(r.Context(), p, r.URL.Query().Get("lab_bill_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []billSummary{}
	for _, b := range bs {
		out = append(out, billSummary{ID: b.ID, LabBillID: b.LabBillID, AccessionNumber: b.AccessionNumber,
			Patient: b.Patient, Referral: b.Referral, Organization: b.Organization, PatientID: b.PatientID, CreatedAt: b.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"bills": out})
}

func (s *Server) getLimits(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	ls, err := s.svc.CriticalLimits(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": ls})
}

func (s *Server) putLimits(w http.ResponseWriter, r *http.Request, p callout.Principal) {
	if p.Role != callout.RoleAdmin {
		s.writeError(w, r, callout.Errorf(callout.KindForbidden, "only a lab admin may change critical limits"))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Limits *[]callout.CriticalLimit `json:"limits"`
	}
	if err := decode(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Limits == nil {
		s.writeError(w, r, invalid(`send {"limits":[{"name","unit","critical_low","critical_high"}]}; [] removes them all`))
		return
	}
	ls, err := s.svc.SetCriticalLimits(r.Context(), p, *in.Limits)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": ls})
}
