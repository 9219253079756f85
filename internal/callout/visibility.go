package callout

import (
	"context"
	"encoding/json"
	"slices"
)

// orderView is an order as a principal may see it: its visible reports,
// records and deliveries. For a principal without departments it is the
// whole order.
type orderView struct {
	bill       Bill
	records    []Record
	recordIDs  map[int64]bool
	deliveries map[int64]bool // loaded only for a limited principal
	visible    []Delivery     // the same deliveries, in order
	limited    bool
}

// view loads what p may see of an order.
func (s *Service) view(ctx context.Context, p Principal, billID int64) (orderView, error) {
	full, b, err := s.bills(ctx, p, billID)
	if err != nil {
		return orderView{}, err
	}
	recs, err := s.Store.Records(ctx, p.LabID, billID)
	if err != nil {
		return orderView{}, err
	}
	v := orderView{bill: b, limited: len(p.Departments) > 0, recordIDs: map[int64]bool{}}
	v.records = VisibleRecords(p, full, recs)
	for _, r := range v.records {
		v.recordIDs[r.ID] = true
	}
	if v.limited {
		ds, err := s.Store.Deliveries(ctx, p.LabID, DeliveryFilter{BillID: &billID, Limit: 1000})
		if err != nil {
			return orderView{}, err
		}
		v.filterDeliveries(ds)
	}
	return v, nil
}

// bills loads an order whole and as p may see it (Principal.Visible).
func (s *Service) bills(ctx context.Context, p Principal, billID int64) (full, visible Bill, err error) {
	full, err = s.Store.Bill(ctx, p.LabID, billID)
	if err != nil {
		return Bill{}, Bill{}, err
	}
	visible, ok := p.Visible(full)
	if !ok {
		return Bill{}, Bill{}, Errorf(KindNotFound, "order %d not found", billID)
	}
	return full, visible, nil
}

// visibleDraft loads an order as p may see it, with its draft (the current
// attempt) as p may see it, or nil.
func (s *Service) visibleDraft(ctx context.Context, p Principal, billID int64) (Bill, *Record, error) {
	full, b, err := s.bills(ctx, p, billID)
	if err != nil {
		return Bill{}, nil, err
	}
	d, err := s.Store.Draft(ctx, p.LabID, billID)
	if err != nil || d == nil {
		return b, nil, err
	}
	// An attempt names its reports itself: no other record is needed.
	r, ok := VisibleRecord(p, full, *d, nil)
	if !ok {
		return b, nil, nil
	}
	return b, &r, nil
}

// WithheldComment stands where a reader would see the comment of a callout
// that also covered reports of departments they do not see.
const WithheldComment = "Comment not shown: this callout also concerned other departments' reports."

// VisibleRecord returns the callout record r as p may see it, and whether p
// may see it at all. b is r's order with all its reports (not cut to p's
// departments); recs are records of the order, among them every record the
// callout that wrote r wrote (nil will do for an attempt). The rule is the
// one the activity log follows (orderView.activity), for every reader of
// records — API, drafts, web history, exports, FHIR:
//
//   - a done record is seen when p sees its report;
//   - an attempt is seen when p sees a report it covered, with its selection
//     (meta.callout_for) and snapshot cut to those reports;
//   - a record of a callout that also covered reports p does not see keeps
//     its time, author, recipients and methods but not its comment, which
//     may speak of any of those reports: Comment is empty and Restricted
//     set (shown as WithheldComment).
//
// A report the order no longer has counts as one p does not see.
func VisibleRecord(p Principal, b Bill, r Record, recs []Record) (Record, bool) {
	if len(p.Departments) == 0 {
		return r, true
	}
	covered, unknown := calloutReports(b, r, recs)
	return visibleRecord(p, b, r, covered, unknown)
}

// VisibleRecords returns the records of order b that p may see, as p may see
// them (VisibleRecord), in their order; recs are all the order's records.
func VisibleRecords(p Principal, b Bill, recs []Record) []Record {
	out := []Record{}
	if len(p.Departments) == 0 {
		return append(out, recs...)
	}
	done := map[calloutKey][]int64{} // the reports of each done callout
	for _, r := range recs {
		if r.LabReportID != nil {
			k := keyOf(r)
			done[k] = append(done[k], *r.LabReportID)
		}
	}
	for _, r := range recs {
		covered, unknown := done[keyOf(r)], 0
		if r.LabReportID == nil {
			covered, unknown = calloutReports(b, r, nil)
		}
		if r, ok := visibleRecord(p, b, r, covered, unknown); ok {
			out = append(out, r)
		}
	}
	return out
}

// calloutKey identifies the callout that wrote a done record: a done
// callout writes one record per report, all in one transaction with one
// time, by one user.
type calloutKey struct {
	bill int64
	by   string
	at   int64 // UnixMicro: what both engines keep
}

func keyOf(r Record) calloutKey {
	return calloutKey{r.BillID, r.CreatedBy, r.CreatedAt.UnixMicro()}
}

// calloutReports returns the reports of b that the callout which wrote r
// covered, and how many it covered that b no longer has. An attempt names
// them itself (its selection and its snapshot); for a done record they are
// the reports of the done records of recs written with r.
func calloutReports(b Bill, r Record, recs []Record) ([]int64, int) {
	var ids []int64
	unknown := 0
	if r.LabReportID != nil {
		ids = append(ids, *r.LabReportID)
		for _, o := range recs {
			if o.LabReportID != nil && o.ID != r.ID && keyOf(o) == keyOf(r) {
				ids = append(ids, *o.LabReportID)
			}
		}
		return ids, 0
	}
	if r.Meta != nil {
	next:
		for _, tid := range r.Meta.CalloutFor {
			for _, rep := range b.Reports {
				if rep.TestID == tid {
					ids = append(ids, rep.ID)
					continue next
				}
			}
			unknown++
		}
	}
	for _, it := range r.Snapshot {
		if !slices.Contains(ids, it.LabReportID) {
			ids = append(ids, it.LabReportID)
		}
	}
	return ids, unknown
}

// visibleRecord applies VisibleRecord's rule for a limited p, given the
// reports r's callout covered.
func visibleRecord(p Principal, b Bill, r Record, covered []int64, unknown int) (Record, bool) {
	sees := func(id int64) bool {
		rep, ok := b.Report(id)
		return ok && p.Sees(rep.Department)
	}
	seen, hidden := 0, unknown
	for _, id := range covered {
		if sees(id) {
			seen++
		} else {
			hidden++
		}
	}
	if r.LabReportID != nil {
		if !sees(*r.LabReportID) {
			return r, false
		}
	} else {
		if seen == 0 {
			return r, false
		}
		snap := []SnapshotItem{}
		for _, it := range r.Snapshot {
			if sees(it.LabReportID) {
				snap = append(snap, it)
			}
		}
		r.Snapshot = snap
		if r.Meta != nil {
			m := Meta{CalloutFor: []string{}}
			for _, tid := range r.Meta.CalloutFor {
				for _, rep := range b.Reports {
					if rep.TestID == tid && p.Sees(rep.Department) {
						m.CalloutFor = append(m.CalloutFor, tid)
					}
				}
			}
			r.Meta = &m
		}
	}
	if hidden > 0 {
		r.Comment, r.Restricted = "", true
	}
	return r, true
}

// visibleDelivery reports whether a delivery belongs to a record the view shows.
func (v orderView) visibleDelivery(d Delivery) bool {
	return !v.limited || slices.ContainsFunc(d.CalloutIDs, func(id int64) bool { return v.recordIDs[id] })
}

// activity returns an activity entry as the view's principal may read it,
// and whether they may see it at all. An entry that also concerns other
// departments' reports keeps its time and author but names none of them,
// and has no comment: VisibleRecord cuts records the same way.
func (v orderView) activity(a Activity) (Activity, bool) {
	if !v.limited {
		return a, true
	}
	var d struct {
		LabReportIDs []int64 `json:"lab_report_ids"`
		DeliveryID   int64   `json:"delivery_id"`
		IsDraft      *bool   `json:"is_draft"`
	}
	if json.Unmarshal(a.Data, &d) != nil {
		return a, false
	}
	if d.DeliveryID != 0 {
		return a, v.deliveries[d.DeliveryID]
	}
	var seen []int64
	hidden := 0
	for _, id := range d.LabReportIDs {
		if _, ok := v.bill.Report(id); ok {
			seen = append(seen, id)
		} else {
			hidden++
		}
	}
	if len(seen) > 0 && hidden > 0 {
		verb := "Callout done"
		if d.IsDraft != nil && *d.IsDraft {
			verb = "Callout attempted"
		}
		a.Message = verb + " by " + a.User + " for tests including other departments' (not shown)"
		a.Data, _ = json.Marshal(map[string]any{"bill_id": v.bill.ID, "lab_report_ids": seen, "is_draft": d.IsDraft, "restricted": true})
	}
	return a, len(seen) > 0
}
