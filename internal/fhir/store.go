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
	// FindResources returns the lab's rows of q.Kind that match q, by
	// ascending id after q.AfterID and at most q.Limit of them, and how
	// many match q regardless of AfterID and Limit.
	FindResources(ctx context.Context, labID int64, q ResourceQuery) ([]Found, int, error)
	// Orders returns the lab's orders among ids with their reports and
	// parameters (ids of other labs or of no order are left out), in a fixed
	// number of statements however many there are.
	Orders(ctx context.Context, labID int64, ids []int64) ([]callout.Bill, error)
	// Patients returns the lab's patients among ids.
	Patients(ctx context.Context, labID int64, ids []int64) ([]PatientRow, error)
	// CalloutAttempt returns the lab's attempt log row id with its order
	// (reports without parameters) and, in Submit, every row its submit
	// wrote (to tell whether it covered other departments' reports). A row
	// of another lab, like a missing one, is a callout.KindNotFound error.
	CalloutAttempt(ctx context.Context, labID, id int64) (AttemptEntry, error)
}

// Kind is what a ResourceQuery finds: the rows behind the FHIR resources.
type Kind int

// The kinds of row FindResources finds.
const (
	KindPatient   Kind = iota + 1 // a patients row (an MRN in a lab): Patient
	KindOrder                     // a bill: ServiceRequest, Practitioner, Organization
	KindReport                    // a lab report: DiagnosticReport
	KindParameter                 // a result parameter: Observation
)

// ResourceQuery selects rows of one Kind. Nil lists select anything; a
// non-nil but empty list selects nothing and is never passed to a Store.
// Lists of one query are ANDed.
type ResourceQuery struct {
	Kind       Kind
	IDs        []int64  // the row's own id
	BillIDs    []int64  // the row's order (for KindPatient: one of the patient's orders)
	LabBillIDs []string // the row's order has one of these Order IDs
	// PatientIDs selects rows of these patients; OrderPatients rows of
	// orders without an MRN that stand for their own patient
	// (Patient/order-{billID}). When both are set a row matches either.
	PatientIDs, OrderPatients []int64
	MRNs                      []string // KindPatient: the patient's MRN
	// Departments, when not empty, keeps what a principal limited to them
	// sees: orders and patients with at least one report in them, reports
	// and parameters of reports in them.
	Departments []string
	AfterID     int64
	Limit       int
}

// Found is a row FindResources found: its id and the id of its order (for a
// patient, the newest order the query lets the caller see).
type Found struct {
	ID, BillID int64
}

// PatientRow is a patient: an MRN in a lab.
type PatientRow struct {
	ID                 int64
	MRN                string
	AssigningAuthority string // PID-3.4 of the latest order that named one
	BirthDate          string // YYYY-MM-DD of the latest order that gave one
}

// AttemptEntry is a row of the attempt log with its order and the rows of
// the same submit.
type AttemptEntry struct {
	Attempt callout.AttemptEntry
	Bill    callout.Bill
	Submit  []callout.AttemptEntry
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
	BillIDs []int64 // the record's order is one of these
	// PatientIDs and OrderPatients select records of these patients, as in
	// ResourceQuery.
	PatientIDs, OrderPatients []int64
	LabBillIDs                []string // the record's order has one of these Order IDs
	Statuses                  []string // callout.StatusDone, callout.StatusAttempted
	// SentFrom (inclusive) and SentBefore (exclusive) bound created_at.
	SentFrom, SentBefore time.Time
	// Departments, when not empty, keeps what a principal limited to them
	// sees (callout.VisibleRecord): records of reports in them, and the
	// attempts that covered at least one report in them.
	Departments []string
	AfterID     int64
	Limit       int
}
