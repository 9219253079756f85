package callout

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ResultMessage is one message of results from a lab system (an HL7 ORU^R01):
// one or more orders, each with reports and their parameters. It is stored
// entirely or not at all.
type ResultMessage struct {
	Facility  string // the sending facility, which names the lab
	ControlID string // the message's own id; a stored message is never processed twice
	Orders    []IncomingOrder
}

// IncomingOrder is one order's results in a message.
type IncomingOrder struct {
	LabBillID       string
	AccessionNumber string
	Patient         Contact // with MRN (PID-3) and BirthDate (PID-7)
	// MRNAuthority is the assigning authority of the MRN (PID-3.4).
	MRNAuthority string
	Referral     Contact
	PatientClass string // PV1-2, table 0004; "" when unknown
	Reports      []IncomingReport
}

// IncomingReport is one test's results.
type IncomingReport struct {
	TestID     string
	TestName   string
	Department string
	ResultedAt time.Time
	// CollectedAt is when the specimen was taken (OBR-7); zero when unknown.
	CollectedAt time.Time
	// ResultStatus is P (preliminary), F (final) or C (corrected), or "".
	ResultStatus string
	Parameters   []Parameter
}

// supersedes reports whether results of status next may replace results of
// status current: anything replaces a preliminary or unknown result, but a
// preliminary result arriving after a final or corrected one is stale.
func supersedes(next, current string) bool {
	final := func(s string) bool { return s == "F" || s == "C" }
	return !(next == "P" && final(current))
}

// CriticalLimit is a lab's own critical range for an analyte, applied to
// results that arrive without one (a lab's report formats carry them).
type CriticalLimit struct {
	Name         string   `json:"name"`
	Unit         string   `json:"unit"` // empty: any unit
	CriticalLow  *float64 `json:"critical_low"`
	CriticalHigh *float64 `json:"critical_high"`
}

// Matches reports whether the limit applies to parameter p: same name, and
// same unit when the limit names one (case-insensitive both).
func (l CriticalLimit) Matches(p Parameter) bool {
	return strings.EqualFold(strings.TrimSpace(l.Name), strings.TrimSpace(p.Name)) &&
		(l.Unit == "" || strings.EqualFold(strings.TrimSpace(l.Unit), strings.TrimSpace(p.Unit)))
}

// ValidateLimits checks a lab's set of critical limits.
func ValidateLimits(ls []CriticalLimit) error {
	seen := map[string]bool{}
	for i, l := range ls {
		at := fmt.Sprintf("limits[%d].", i)
		if err := checkText(at+"name", l.Name); err != nil {
			return err
		}
		if err := checkText(at+"unit", l.Unit); err != nil {
			return err
		}
		key := strings.ToLower(strings.TrimSpace(l.Name)) + "\x00" + strings.ToLower(strings.TrimSpace(l.Unit))
		switch {
		case strings.TrimSpace(l.Name) == "":
			return Errorf(KindUnprocessable, "limits[%d]: name is required", i)
		case l.CriticalLow == nil && l.CriticalHigh == nil:
			return Errorf(KindUnprocessable, "limits[%d] (%s): give critical_low, critical_high or both", i, l.Name)
		case l.CriticalLow != nil && l.CriticalHigh != nil && *l.CriticalLow > *l.CriticalHigh:
			return Errorf(KindUnprocessable, "limits[%d] (%s): critical_low is above critical_high", i, l.Name)
		case seen[key]:
			return Errorf(KindUnprocessable, "limits[%d]: %s %s is listed twice", i, l.Name, l.Unit)
		}
		seen[key] = true
	}
	return nil
}

// ApplyLimits gives each parameter the lab's critical range for its analyte,
// where the lab has one. The lab's limits win over none; a range the sender
// supplied is kept. Either the sender's flag or the limits is enough to make
// a result critical (fail-safe): Class checks both.
func ApplyLimits(params []Parameter, limits []CriticalLimit) []Parameter {
	out := make([]Parameter, len(params))
	for i, p := range params {
		for _, l := range limits {
			if !l.Matches(p) {
				continue
			}
			if p.CriticalLow == nil {
				p.CriticalLow = l.CriticalLow
			}
			if p.CriticalHigh == nil {
				p.CriticalHigh = l.CriticalHigh
			}
			break
		}
		out[i] = p
	}
	return out
}

// Reevaluate is the state of a report whose results changed. A report that
// is critical now goes to pending, whatever it was: a changed critical value
// must be called out again. One no longer critical becomes normal or
// abnormal — except that a done report stays done, because its callout
// happened and its records stand.
func Reevaluate(current State, params []Parameter) State {
	next := InitialState(params)
	if next != StatePending && current == StateDone {
		return StateDone
	}
	return next
}

// ReportUpsert is what ingesting one report writes: a new report (ID 0) or
// new results for an existing one.
type ReportUpsert struct {
	Report Report
	From   State // the state before, for existing reports
	New    bool
}

// PlanResults decides, for the incoming reports of one order, what to write
// given the order's existing reports. Earlier callout records and their
// snapshots are never touched: they say what was communicated then. The
// order as it will be afterwards must stay within the limits of one order
// (MaxReportsPerOrder, …): messages that each add reports cannot grow it
// past them.
func PlanResults(existing []Report, in IncomingOrder, now time.Time) ([]ReportUpsert, error) {
	byTest := map[string]Report{}
	for _, r := range existing {
		byTest[r.TestID] = r
	}
	var out []ReportUpsert
	for _, ir := range in.Reports {
		resulted := ir.ResultedAt
		if resulted.IsZero() || resulted.After(now) {
			resulted = now
		}
		r := Report{
			TestID: ir.TestID, TestName: ir.TestName, Department: ir.Department,
			SampleCollected: true, ResultedAt: resulted.UTC().Truncate(time.Microsecond),
			LastUpdated: now, ResultStatus: ir.ResultStatus, Parameters: ir.Parameters,
		}
		if !ir.CollectedAt.IsZero() {
			c := ir.CollectedAt.UTC().Truncate(time.Microsecond)
			r.CollectedAt = &c
		}
		old, ok := byTest[ir.TestID]
		if ok && !supersedes(ir.ResultStatus, old.ResultStatus) {
			continue // a late preliminary result: the final one stands
		}
		if !ok {
			r.State = InitialState(ir.Parameters)
			out = append(out, ReportUpsert{Report: r, New: true})
			continue
		}
		r.ID, r.BillID, r.Dismissed = old.ID, old.BillID, old.Dismissed
		if r.Department == "" {
			r.Department = old.Department
		}
		if r.CollectedAt == nil {
			r.CollectedAt = old.CollectedAt // a correction need not repeat OBR-7
		}
		r.State = Reevaluate(old.State, ir.Parameters)
		out = append(out, ReportUpsert{Report: r, From: old.State})
	}
	if len(existing) > 0 {
		after := make([]Report, 0, len(existing)+len(out))
		replaced := map[string]bool{}
		for _, up := range out {
			after = append(after, up.Report)
			replaced[up.Report.TestID] = true
		}
		for _, r := range existing {
			if !replaced[r.TestID] {
				after = append(after, r)
			}
		}
		if err := checkOrderSize("order "+in.LabBillID+" with this message's results", after); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// IngestStore is what storing results needs; the SQL stores implement it.
type IngestStore interface {
	// LabForFacility returns the lab that accepts messages from the sending
	// facility and its HL7 order numbering: "placer", "filler" or "auto"
	// (see DefaultHL7Numbering).
	LabForFacility(ctx context.Context, facility string) (labID int64, numbering string, err error)
	CriticalLimits(ctx context.Context, labID int64) ([]CriticalLimit, error)
	// StoreResults stores a message in one transaction, asking plan for each
	// order's writes; an error of plan rolls the whole message back. It returns duplicate=true, writing nothing, when the
	// facility's message with that control id was stored before.
	StoreResults(ctx context.Context, labID int64, m ResultMessage,
		plan func(existing []Report, in IncomingOrder) ([]ReportUpsert, error)) (duplicate bool, bills []int64, err error)
}

// IngestResult says what storing a message did.
type IngestResult struct {
	LabID     int64
	Duplicate bool
	BillIDs   []int64
}

// Ingest stores a result message in lab labID (the lab whose facility sent
// it), applying the lab's critical limits and re-evaluating every report it
// updates.
func Ingest(ctx context.Context, st IngestStore, labID int64, m ResultMessage, now time.Time) (IngestResult, error) {
	if err := validateResults(m); err != nil {
		return IngestResult{LabID: labID}, err
	}
	limits, err := st.CriticalLimits(ctx, labID)
	if err != nil {
		return IngestResult{LabID: labID}, err
	}
	for i := range m.Orders {
		for j := range m.Orders[i].Reports {
			r := &m.Orders[i].Reports[j]
			r.Parameters = ApplyLimits(r.Parameters, limits)
		}
	}
	dup, bills, err := st.StoreResults(ctx, labID, m, func(existing []Report, in IncomingOrder) ([]ReportUpsert, error) {
		return PlanResults(existing, in, now)
	})
	return IngestResult{LabID: labID, Duplicate: dup, BillIDs: bills}, err
}

// validateResults checks a result message before anything is stored. Its
// refusals are deterministic — the same message is refused every time — so
// the sender is told not to send it again. Field names say where in the HL7
// message the text came from.
func validateResults(m ResultMessage) error {
	if err := checkText("the sending facility (MSH-4)", m.Facility); err != nil {
		return err
	}
	if err := checkText("the control id (MSH-10)", m.ControlID); err != nil {
		return err
	}
	if strings.TrimSpace(m.ControlID) == "" {
		return Errorf(KindUnprocessable, "the message has no control id (MSH-10)")
	}
	if len(m.Orders) == 0 {
		return Errorf(KindUnprocessable, "the message carries no order")
	}
	// One message is stored in one transaction, so it may hold no more than
	// one order may, all its orders together.
	var all []Report
	for _, o := range m.Orders {
		for _, r := range o.Reports {
			all = append(all, Report{TestID: r.TestID, TestName: r.TestName, Department: r.Department,
				ResultStatus: r.ResultStatus, Parameters: r.Parameters})
		}
	}
	if err := checkOrderSize("the message", all); err != nil {
		return err
	}
	for i, o := range m.Orders {
		if err := checkText(fmt.Sprintf("order %d: the order number (ORC-2/OBR-2, or ORC-3/OBR-3)", i+1), o.LabBillID); err != nil {
			return err
		}
		if strings.TrimSpace(o.LabBillID) == "" {
			return Errorf(KindUnprocessable, "order %d has no order number (ORC-2/OBR-2, or the filler number ORC-3/OBR-3 if the lab uses it)", i+1)
		}
		at := "order " + o.LabBillID + ": "
		for _, f := range []struct{ name, v string }{
			{"the accession number (OBR-2/OBR-3)", o.AccessionNumber},
			{"patient.name (PID-5)", o.Patient.Name}, {"patient.email (PID-13)", o.Patient.Email},
			{"patient.phone (PID-13)", o.Patient.Phone}, {"patient.fax", o.Patient.Fax},
			{"referral.name (OBR-16/ORC-12)", o.Referral.Name}, {"referral.email", o.Referral.Email},
			{"referral.phone", o.Referral.Phone}, {"referral.fax", o.Referral.Fax},
			{"the patient class (PV1-2)", o.PatientClass},
			{"the MRN's assigning authority (PID-3.4)", o.MRNAuthority},
		} {
			if err := checkText(at+f.name, f.v); err != nil {
				return err
			}
		}
		if err := CheckPatientIdentity(at+"the MRN (PID-3)", o.Patient.MRN, at+"the birth date (PID-7)", o.Patient.BirthDate, Now()); err != nil {
			return err
		}
		seen := map[string]bool{}
		for j, r := range o.Reports {
			rat := fmt.Sprintf("%sreport %d: ", at, j+1)
			for _, f := range []struct{ name, v string }{{"the test id (OBR-4)", r.TestID}, {"the test name (OBR-4)", r.TestName},
				{"the department (OBR-24)", r.Department}, {"the result status (OBR-25/OBX-11)", r.ResultStatus}} {
				if err := checkText(rat+f.name, f.v); err != nil {
					return err
				}
			}
			if strings.TrimSpace(r.TestID) == "" {
				return Errorf(KindUnprocessable, "order %s has a report without a test id (OBR-4)", o.LabBillID)
			}
			if seen[r.TestID] {
				return Errorf(KindUnprocessable, "order %s lists test %s twice", o.LabBillID, r.TestID)
			}
			seen[r.TestID] = true
			for k, p := range r.Parameters {
				field := func(f string) string {
					return fmt.Sprintf("order %s test %s: result %d %s", o.LabBillID, r.TestID, k+1, f)
				}
				if err := checkParameterText(field, p); err != nil {
					return err
				}
				if strings.TrimSpace(p.Name) == "" {
					return Errorf(KindUnprocessable, "order %s test %s has a result without a name (OBX-3)", o.LabBillID, r.TestID)
				}
			}
		}
	}
	return nil
}

// FindBills finds the caller's orders by Order ID, for integrators.
func (s *Service) FindBills(ctx context.Context, p Principal, labBillID string) ([]Bill, error) {
	labBillID = strings.TrimSpace(labBillID)
	if labBillID == "" {
		return nil, Errorf(KindInvalid, "give the Order ID: ?lab_bill_id=…")
	}
	if err := CheckLine("lab_bill_id", labBillID); err != nil {
		return nil, err
	}
	bs, err := s.Store.FindBills(ctx, p.LabID, labBillID)
	if err != nil {
		return nil, err
	}
	out := []Bill{}
	for _, b := range bs {
		if full, err := s.visibleBill(ctx, p, b.ID); err == nil {
			full.Reports = nil
			out = append(out, full)
		} else if ErrorKind(err) != KindNotFound {
			return nil, err
		}
	}
	return out, nil
}

// CriticalLimits returns the lab's own critical limits.
func (s *Service) CriticalLimits(ctx context.Context, p Principal) ([]CriticalLimit, error) {
	return s.Store.CriticalLimits(ctx, p.LabID)
}

// SetCriticalLimits replaces the lab's critical limits; admins only. They
// apply to results that arrive from then on.
func (s *Service) SetCriticalLimits(ctx context.Context, p Principal, ls []CriticalLimit) ([]CriticalLimit, error) {
	if p.Role != RoleAdmin {
		return nil, Errorf(KindForbidden, "only a lab admin may change critical limits")
	}
	if len(ls) > 2000 {
		return nil, Errorf(KindUnprocessable, "at most 2000 critical limits")
	}
	if err := ValidateLimits(ls); err != nil {
		return nil, err
	}
	if err := s.Store.SetCriticalLimits(ctx, p.LabID, ls); err != nil {
		return nil, err
	}
	return s.Store.CriticalLimits(ctx, p.LabID)
}
