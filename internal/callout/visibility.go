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
	b, err := s.visibleBill(ctx, p, billID)
	if err != nil {
		return orderView{}, err
	}
	recs, err := s.Store.Records(ctx, p.LabID, billID)
	if err != nil {
		return orderView{}, err
	}
	v := orderView{bill: b, limited: len(p.Departments) > 0, recordIDs: map[int64]bool{}}
	v.records = []Record{}
	for _, r := range recs {
		if v.limited {
			var ok bool
			if r, ok = visibleRecord(r, b); !ok {
				continue
			}
		}
		v.records = append(v.records, r)
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

// visibleRecord cuts a record down to the reports of b (the reports a
// limited user sees): a done record is all or nothing; the order-level
// attempt keeps the part of its selection and snapshot they may see.
func visibleRecord(r Record, b Bill) (Record, bool) {
	if r.LabReportID != nil {
		_, ok := b.Report(*r.LabReportID)
		return r, ok
	}
	var snap []SnapshotItem
	for _, it := range r.Snapshot {
		if _, ok := b.Report(it.LabReportID); ok {
			snap = append(snap, it)
		}
	}
	if len(snap) == 0 {
		return r, false
	}
	r.Snapshot = snap
	if r.Meta != nil {
		m := Meta{CalloutFor: []string{}}
		for _, tid := range r.Meta.CalloutFor {
			for _, rep := range b.Reports {
				if rep.TestID == tid {
					m.CalloutFor = append(m.CalloutFor, tid)
				}
			}
		}
		r.Meta = &m
	}
	return r, true
}

// visibleDelivery reports whether a delivery belongs to a record the view shows.
func (v orderView) visibleDelivery(d Delivery) bool {
	return !v.limited || slices.ContainsFunc(d.CalloutIDs, func(id int64) bool { return v.recordIDs[id] })
}

// activity returns an activity entry as the view's principal may read it,
// and whether they may see it at all. An entry that also concerns other
// departments' reports keeps its time and author but names none of them.
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
