package callout

import (
	"encoding/json"
	"strings"
	"time"
)

// Role is what an API token or user may do in its lab.
type Role string

// The roles. Admins may also change the lab's settings.
const (
	RoleStaff Role = "staff"
	RoleAdmin Role = "admin"
)

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleStaff, RoleAdmin:
		return Role(s), nil
	}
	return "", Errorf(KindInvalid, "role must be staff or admin, not %q", s)
}

// Principal is who is calling: the lab and user a token or session belongs to.
// Every use case takes one; nothing outside Principal.LabID is ever visible.
type Principal struct {
	LabID int64
	User  string
	Role  Role
	// Departments, when not empty, limits the principal to reports of
	// these departments: it neither sees nor calls out any other.
	Departments []string
}

// Sees reports whether the principal may see reports of department d.
func (p Principal) Sees(d string) bool {
	if len(p.Departments) == 0 {
		return true
	}
	for _, x := range p.Departments {
		if x == d {
			return true
		}
	}
	return false
}

// Visible returns the bill with only the reports p may see, and whether any
// remain. An order none of whose reports a user may see does not exist for
// that user.
func (p Principal) Visible(b Bill) (Bill, bool) {
	if len(p.Departments) == 0 {
		return b, true
	}
	var rs []Report
	for _, r := range b.Reports {
		if p.Sees(r.Department) {
			rs = append(rs, r)
		}
	}
	b.Reports = rs
	return b, len(rs) > 0
}

// ParseDepartments reads a comma-separated list of departments.
func ParseDepartments(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// Settings are a lab's callout preferences.
type Settings struct {
	Name                  string `json:"name"`
	ShareComment          bool   `json:"share_comment"`
	MandatoryComments     bool   `json:"mandatory_comments"`
	HidePatientName       bool   `json:"hide_patient_name"`
	AdditionalInstruction string `json:"additional_instruction"`
	TargetMinutes         int    `json:"target_minutes"`
	// RequireNotifiedPerson: a done callout must name the person reached.
	// Every new lab starts with it on (the store ignores the value given
	// to CreateLab); an admin may turn it off.
	RequireNotifiedPerson bool `json:"require_notified_person"`
	// Targets are per patient class time targets in minutes (keys
	// emergency, inpatient, outpatient); a class without one uses
	// TargetMinutes.
	Targets map[string]int `json:"targets"`
	// CompliancePercent and ActionPercent are the compliance report's
	// thresholds: the share of callouts within target the lab aims at, and
	// the share below which it must act.
	CompliancePercent float64 `json:"compliance_target_percent"`
	ActionPercent     float64 `json:"compliance_action_percent"`
	// Timezone is the IANA zone the compliance report's days are in.
	Timezone string `json:"timezone"`
}

// DefaultTargetMinutes is the time to callout most hospitals set (CLSI GP47
// allows an hour; 30 minutes is the common local target).
const DefaultTargetMinutes = 30

// The compliance thresholds most labs set: every callout within target,
// and action below 95 %.
const (
	DefaultCompliancePercent = 100
	DefaultActionPercent     = 95
)

// Target classes pick an order's time target from the lab's Targets; an
// order's patient class (HL7 table 0004, PV1-2) E, I and O map to them.
const (
	ClassEmergency  = "emergency"
	ClassInpatient  = "inpatient"
	ClassOutpatient = "outpatient"
)

// TargetClasses lists the classes a lab may set a target for.
var TargetClasses = []string{ClassEmergency, ClassInpatient, ClassOutpatient}

// TargetClass is the target class of a patient class (table 0004): E, I
// and O have one; the others, and "", use the lab's target_minutes.
func TargetClass(patientClass string) string {
	switch patientClass {
	case "E":
		return ClassEmergency
	case "I":
		return ClassInpatient
	case "O":
		return ClassOutpatient
	}
	return ""
}

// Lab is the tenant.
type Lab struct {
	ID int64 `json:"id"`
	Settings
}

// Contact is a person or organization the lab may call: the patient, the
// referral (ordering doctor) or the organization that sent the sample.
type Contact struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Fax   string `json:"fax"`
	Phone string `json:"phone"`
	// MRN (the medical record number, HL7 PID-3) and BirthDate (YYYY-MM-DD,
	// PID-7) belong to the patient only; BuildBill refuses them on a
	// referral or organization.
	MRN       string `json:"mrn,omitempty"`
	BirthDate string `json:"birth_date,omitempty"`
}

// Empty reports whether c carries nothing at all.
func (c Contact) Empty() bool { return c == Contact{} }

// Report is one test of an order, with its parameters and callout state.
type Report struct {
	ID              int64       `json:"id"`
	BillID          int64       `json:"-"`
	TestID          string      `json:"test_id"`
	TestName        string      `json:"test_name"`
	Department      string      `json:"department"`
	Dismissed       bool        `json:"dismissed"`
	SampleCollected bool        `json:"sample_collected"`
	State           State       `json:"critical_values"`
	ResultedAt      time.Time   `json:"resulted_at"`
	LastUpdated     time.Time   `json:"last_updated"`
	ResultStatus    string      `json:"result_status"` // P, F, C from HL7; "" otherwise
	Parameters      []Parameter `json:"parameters"`
	// CanCallout says whether the screen may offer the report for a callout
	// (see Actionable); filled in by the service for views.
	CanCallout bool `json:"can_callout"`

	// CollectedAt is when the specimen was taken (HL7 OBR-7); nil when
	// unknown. The callout clock starts at ResultedAt, never here.
	CollectedAt *time.Time `json:"collected_at"`
	// Clock is the report's time to callout (due_at, first_attempt_at,
	// done_at, minutes_to_done, overdue), filled in for views of critical
	// reports.
	*Clock
}

// Actionable reports whether the report may be included in a callout: it has
// a critical result and was neither dismissed nor left uncollected.
func (r Report) Actionable() bool {
	return r.State.Critical() && !r.Dismissed && r.SampleCollected
}

// Bill is an order: one patient visit's tests. People know it by LabBillID,
// the Order ID.
type Bill struct {
	ID              int64   `json:"id"`
	LabID           int64   `json:"-"`
	LabBillID       string  `json:"lab_bill_id"`
	AccessionNumber string  `json:"accession_number"`
	Patient         Contact `json:"patient"`
	Referral        Contact `json:"referral"`
	Organization    Contact `json:"organization"`
	// PatientID names the patient: every order of one MRN in one lab has
	// the same one. 0 (omitted) when the order carries no MRN.
	PatientID int64     `json:"patient_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Reports   []Report  `json:"reports"`

	// PatientClass is the patient's class for this visit, HL7 table 0004
	// (E emergency, I inpatient, O outpatient, ...; see PatientClasses);
	// "" when not known.
	PatientClass string `json:"patient_class"`
}

// Report returns the bill's report with the given id.
func (b *Bill) Report(id int64) (Report, bool) {
	for _, r := range b.Reports {
		if r.ID == id {
			return r, true
		}
	}
	return Report{}, false
}

// Record statuses.
const (
	StatusDone      = "done"
	StatusAttempted = "attempted"
)

// OtherContact is someone to notify who is not on the order, such as a
// covering doctor. Its key names are those the seed system's front end sends.
type OtherContact struct {
	Name          string `json:"name"`
	Email         string `json:"email"`
	Fax           string `json:"fax"`
	ContactNumber string `json:"contactNumber"`
}

// Meta is the callout record's critical_callout_meta.
type Meta struct {
	CalloutFor []string `json:"callout_for"`
}

// SnapshotItem is one critical parameter as it was communicated: copied into
// the record so later corrections of the result never alter what the record
// says was told.
type SnapshotItem struct {
	LabReportID  int64    `json:"lab_report_id"`
	TestID       string   `json:"test_id"`
	TestName     string   `json:"test_name"`
	Name         string   `json:"name"`
	Value        string   `json:"value"`
	Unit         string   `json:"unit"`
	Flag         string   `json:"flag"`
	NormalLow    *float64 `json:"normal_low"`
	NormalHigh   *float64 `json:"normal_high"`
	CriticalLow  *float64 `json:"critical_low"`
	CriticalHigh *float64 `json:"critical_high"`

	// ReferenceRangeText is the lab's own text of the normal range (HL7
	// OBX-7), shown instead of the bounds when set.
	ReferenceRangeText string `json:"reference_range_text"`
}

// Record is a critical callout record, the audit trail of one callout action:
// one per report when done, one per order (LabReportID nil) for an attempt.
type Record struct {
	ID             int64         `json:"id"`
	BillID         int64         `json:"bill_id"`
	LabReportID    *int64        `json:"lab_report_id"`
	Status         string        `json:"status"`
	Methods        []string      `json:"methods"`
	Recipients     []string      `json:"recipients"`
	Comment        string        `json:"comment"`
	NotifiedPerson string        `json:"notified_person"`
	ReadBack       bool          `json:"read_back"`
	NotifyToOthers *OtherContact `json:"notify_to_others"`
	Outcome        string        `json:"outcome"`
	// CalledAt is when the call was made: CreatedAt, the server's time,
	// unless it was entered later with BackEntryReason. Zero on records
	// made before it was kept.
	CalledAt        time.Time      `json:"called_at"`
	BackEntryReason string         `json:"back_entry_reason"`
	CreatedBy       string         `json:"created_by"`
	CreatedAt       time.Time      `json:"created_at"`
	Meta            *Meta          `json:"meta"`
	Snapshot        []SnapshotItem `json:"snapshot"`
	// Restricted is set on a record as a user limited to departments sees
	// it when its callout also covered reports they do not see: its
	// comment is withheld (see VisibleRecord). Never stored.
	Restricted bool `json:"restricted,omitempty"`
}

// Activity categories.
const (
	// CategoryCallout is the seed system's CRITICAL_NOTIFICATION_LOG_CATEGORY_ID.
	CategoryCallout = 648
	// CategoryDelivery marks what happened to an email or fax copy (a final
	// failure, a retry): not a callout, so kept apart from 648.
	CategoryDelivery = 649
)

// Activity is an entry of the lab's general audit trail.
type Activity struct {
	ID         int64           `json:"id"`
	BillID     *int64          `json:"bill_id"`
	CategoryID int             `json:"category_id"`
	User       string          `json:"user"`
	CreatedAt  time.Time       `json:"created_at"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
}

// Transition is one report's change of state.
type Transition struct {
	LabReportID int64 `json:"lab_report_id"`
	From        State `json:"from"`
	To          State `json:"to"`
}
