package search

import (
	"context"
	"fmt"

	"callout/internal/callout"
)

// Engine is an index both implementations satisfy.
type Engine interface {
	Upsert(ctx context.Context, docs []Doc) error
	Search(ctx context.Context, q Query) (Page, error)
	Close() error
}

// BillLoader loads an order with its reports; the SQL store is one.
type BillLoader interface {
	Bill(ctx context.Context, labID, billID int64) (callout.Bill, error)
}

// Sync keeps the index in step with the database and answers worklist
// searches from it. It is the jobs package's Indexer and the callout
// service's Searcher.
type Sync struct {
	Store BillLoader
	Index Engine
}

// Docs returns the index documents of every report of an order. Each
// carries its last_updated in microseconds as its version: every change of
// a report's state or results moves last_updated forward, so a sync that
// read the database earlier can never overwrite one that read it later.
func Docs(labID int64, b callout.Bill) []Doc {
	docs := make([]Doc, 0, len(b.Reports))
	for _, r := range b.Reports {
		docs = append(docs, Doc{
			ReportID: r.ID, LabID: labID, BillID: b.ID,
			LabBillID: b.LabBillID, AccessionNumber: b.AccessionNumber,
			PatientName: b.Patient.Name, Referral: b.Referral.Name, Organization: b.Organization.Name,
			TestID: r.TestID, TestName: r.TestName, Department: r.Department,
			CriticalValues: int(r.State), Dismissed: r.Dismissed, SampleCollected: r.SampleCollected,
			ResultedAt: r.ResultedAt, LastUpdated: r.LastUpdated,
			Version: r.LastUpdated.UnixMicro(),
		})
	}
	return docs
}

// IndexBill syncs every report of an order to the index (the seed system's
// ES sync after each callout).
func (s *Sync) IndexBill(ctx context.Context, labID, billID int64) error {
	b, err := s.Store.Bill(ctx, labID, billID)
	if callout.ErrorKind(err) == callout.KindNotFound {
		return nil // nothing to index
	}
	if err != nil {
		return err
	}
	if err := s.Index.Upsert(ctx, Docs(labID, b)); err != nil {
		return fmt.Errorf("index order %d: %w", billID, err)
	}
	return nil
}

// SearchWorklist answers a worklist query with text from the index.
func (s *Sync) SearchWorklist(ctx context.Context, labID int64, f callout.WorklistFilter) ([]callout.WorklistItem, error) {
	q := Query{LabID: labID, Text: f.Text, Departments: f.Departments, ExcludeUnactionable: true, Limit: f.Limit}
	for _, st := range f.States {
		q.States = append(q.States, int(st))
	}
	if f.After != nil {
		q.After = &Cursor{ResultedAt: f.After.ResultedAt, ReportID: f.After.ID}
	}
	page, err := s.Index.Search(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("search the worklist: %w", err)
	}
	out := make([]callout.WorklistItem, 0, len(page.Docs))
	for _, d := range page.Docs {
		out = append(out, callout.WorklistItem{
			ID: d.ReportID, BillID: d.BillID, LabBillID: d.LabBillID, PatientName: d.PatientName,
			Referral: d.Referral, TestID: d.TestID, TestName: d.TestName, Department: d.Department,
			State: callout.State(d.CriticalValues), ResultedAt: d.ResultedAt.UTC(), LastUpdated: d.LastUpdated.UTC(),
		})
	}
	return out, nil
}
