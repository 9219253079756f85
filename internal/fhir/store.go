package fhir

import (
	"context"
	"time"

	"callout/internal/callout"
)

// Store is what the FHIR endpoints read; *sqlstore.Store is one.
type Store interface {
	// CalloutRecord returns the lab's callout record id with its order. A
	// record of another lab, like a missing one, is a callout.KindNotFound
	// error.
	CalloutRecord(ctx context.Context, labID, id int64) (Entry, error)
	// SearchCalloutRecords returns the lab's callout records that match q,
	// by ascending id, after q.AfterID and at most q.Limit of them (none for
	// a Limit of 0), and how many records match q regardless of AfterID and
	// Limit.
	SearchCalloutRecords(ctx context.Context, labID int64, q Query) ([]Entry, int, error)
}

// Entry is a callout record with the order it belongs to: the order's
// contacts and its reports' ID, TestID, TestName and Department (no
// parameters: the record's snapshot holds the values it communicated).
type Entry struct {
	Record callout.Record
	Bill   callout.Bill
	// Records are the order's callout records in brief (ID, BillID,
	// LabReportID, Status, CreatedBy, CreatedAt): what
	// callout.VisibleRecord needs to know which reports Record's callout
	// covered.
	Records []callout.Record
}

// Query selects callout records. Zero fields select everything; a non-nil
// but empty list selects nothing and is never passed to a Store.
type Query struct {
	BillIDs    []int64  // the record's order is one of these
	LabBillIDs []string // the record's order has one of these Order IDs
	Statuses   []string // callout.StatusDone, callout.StatusAttempted
	// SentFrom (inclusive) and SentBefore (exclusive) bound created_at.
	SentFrom, SentBefore time.Time
	// Departments, when not empty, keeps what a principal limited to them
	// sees (callout.VisibleRecord): records of reports in them, and the
	// attempts that covered at least one report in them.
	Departments []string
	AfterID     int64
	Limit       int
	// Total asks for the number of matching records (regardless of
	// AfterID and Limit); without it the store counts nothing.
	Total bool
}
