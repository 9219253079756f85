package callout

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// NewOrder is an order as a lab system sends it, before it is stored.
type NewOrder struct {
	LabBillID       string      `json:"lab_bill_id"`
	AccessionNumber string      `json:"accession_number"`
	Patient         Contact     `json:"patient"`
	Referral        Contact     `json:"referral"`
	Organization    Contact     `json:"organization"`
	PatientClass    string      `json:"patient_class"`
	Reports         []NewReport `json:"reports"`
}

// NewReport is one test of a new order. Dismissed defaults to false and
// SampleCollected to true, hence the pointers.
type NewReport struct {
	TestID          string      `json:"test_id"`
	TestName        string      `json:"test_name"`
	Department      string      `json:"department"`
	Dismissed       *bool       `json:"dismissed"`
	SampleCollected *bool       `json:"sample_collected"`
	ResultedAt      *time.Time  `json:"resulted_at"`
	CollectedAt     *time.Time  `json:"collected_at"`
	Parameters      []Parameter `json:"parameters"`
}

// Limits on what one order may carry; generous for a real order, small
// enough that one lab cannot hold the database's writer — on SQLite every
// lab's — for long. Storing an order at all of these limits takes a few
// hundred milliseconds (README, Performance). An order over one is refused
// whole (422 over the API, AR over HL7); its request body is bounded before
// (413 over 1 MiB; an MLLP message, 1 MiB).
const (
	MaxReportsPerOrder     = 500
	MaxParametersPerReport = 200
	// MaxParametersPerOrder bounds the results of one order, all its
	// reports together: 500 reports of 45 results, the largest order
	// seen in practice.
	MaxParametersPerOrder = 22500
	// MaxOrderBytes bounds the text one order stores (test ids and names,
	// departments, result names, values, units and flags): what a 1 MiB
	// request could carry, whatever escapes or character sets expand.
	MaxOrderBytes = 1 << 20
	maxText       = 500
	// MaxValueLen bounds a result's value: a text result (an HL7 TX
	// narrative such as a blood-gas interpretation) runs to pages.
	MaxValueLen = 64 << 10
	// maxComment bounds free text: a callout's comment, the lab's
	// standing instruction.
	maxComment = 4000
)

// checkOrderSize checks the reports of one order — all of them, as they
// will be stored — against the limits above. what names the order in
// messages.
func checkOrderSize(what string, reports []Report) error {
	params := 0
	for _, r := range reports {
		params += len(r.Parameters)
	}
	if err := checkOrderCounts(what, len(reports), params); err != nil {
		return err
	}
	size := 0
	for _, r := range reports {
		if len(r.Parameters) > MaxParametersPerReport {
			return Errorf(KindUnprocessable, "%s: test %s has %d results; a report may hold at most %d",
				what, r.TestID, len(r.Parameters), MaxParametersPerReport)
		}
		size += len(r.TestID) + len(r.TestName) + len(r.Department) + len(r.ResultStatus)
		for _, p := range r.Parameters {
			size += len(p.Name) + len(p.Value) + len(p.Unit) + len(p.Flag)
		}
	}
	if size > MaxOrderBytes {
		return Errorf(KindUnprocessable, "%s holds %d bytes of text; an order may hold at most %d", what, size, MaxOrderBytes)
	}
	return nil
}

// checkOrderCounts bounds the reports and results of one order.
func checkOrderCounts(what string, reports, params int) error {
	if reports > MaxReportsPerOrder {
		return Errorf(KindUnprocessable, "%s has %d reports; an order may hold at most %d", what, reports, MaxReportsPerOrder)
	}
	if params > MaxParametersPerOrder {
		return Errorf(KindUnprocessable, "%s has %d results (parameters); an order may hold at most %d", what, params, MaxParametersPerOrder)
	}
	return nil
}

// BuildBill validates o and returns the bill to store, with every report's
// initial state decided from its parameters. Errors name the offending field.
func BuildBill(o NewOrder, now time.Time) (Bill, error) {
	b := Bill{
		LabBillID:       strings.TrimSpace(o.LabBillID),
		AccessionNumber: strings.TrimSpace(o.AccessionNumber),
		Patient:         trimContact(o.Patient),
		Referral:        trimContact(o.Referral),
		Organization:    trimContact(o.Organization),
		PatientClass:    strings.ToUpper(strings.TrimSpace(o.PatientClass)),
		CreatedAt:       now,
	}
	if b.LabBillID == "" {
		return Bill{}, Errorf(KindUnprocessable, "lab_bill_id is required")
	}
	for _, f := range []struct{ name, v string }{
		{"lab_bill_id", b.LabBillID}, {"accession_number", b.AccessionNumber},
		{"patient.name", b.Patient.Name}, {"patient.email", b.Patient.Email}, {"patient.phone", b.Patient.Phone}, {"patient.fax", b.Patient.Fax},
		{"referral.name", b.Referral.Name}, {"referral.email", b.Referral.Email}, {"referral.phone", b.Referral.Phone}, {"referral.fax", b.Referral.Fax},
		{"organization.name", b.Organization.Name}, {"organization.email", b.Organization.Email}, {"organization.phone", b.Organization.Phone}, {"organization.fax", b.Organization.Fax},
	} {
		if err := checkText(f.name, f.v); err != nil {
			return Bill{}, err
		}
	}
	for field, v := range map[string]string{"patient.email": b.Patient.Email, "referral.email": b.Referral.Email, "organization.email": b.Organization.Email} {
		if v != "" && !plausibleEmail(v) {
			return Bill{}, Errorf(KindUnprocessable, "%s %q is not an email address", field, v)
		}
	}
	if b.Patient.Name == "" {
		return Bill{}, Errorf(KindUnprocessable, "patient.name is required")
	}
	if b.PatientClass != "" && PatientClasses[b.PatientClass] == "" {
		return Bill{}, Errorf(KindUnprocessable, "patient_class %q is not a patient class of HL7 table 0004 (B, C, E, I, N, O, P, R, U)", clipText(b.PatientClass, 10))
	}
	if err := CheckPatientIdentity("patient.mrn", b.Patient.MRN, "patient.birth_date", b.Patient.BirthDate, now); err != nil {
		return Bill{}, err
	}
	for field, c := range map[string]Contact{"referral": b.Referral, "organization": b.Organization} {
		if c.MRN != "" || c.BirthDate != "" {
			return Bill{}, Errorf(KindUnprocessable, "%s takes no mrn or birth_date: only the patient has them", field)
		}
	}
	if len(o.Reports) == 0 {
		return Bill{}, Errorf(KindUnprocessable, "an order needs at least one report")
	}
	// Counted before the reports are built, so a refused order costs little.
	params := 0
	for _, r := range o.Reports {
		params += len(r.Parameters)
	}
	if err := checkOrderCounts("the order", len(o.Reports), params); err != nil {
		return Bill{}, err
	}
	seen := map[string]bool{}
	for i, nr := range o.Reports {
		r, err := buildReport(i, nr, now)
		if err != nil {
			return Bill{}, err
		}
		if seen[r.TestID] {
			return Bill{}, Errorf(KindUnprocessable, "reports[%d]: test_id %q appears twice in the order", i, r.TestID)
		}
		seen[r.TestID] = true
		b.Reports = append(b.Reports, r)
	}
	if err := checkOrderSize("the order", b.Reports); err != nil {
		return Bill{}, err
	}
	return b, nil
}

func buildReport(i int, nr NewReport, now time.Time) (Report, error) {
	r := Report{
		TestID:          strings.TrimSpace(nr.TestID),
		TestName:        strings.TrimSpace(nr.TestName),
		Department:      strings.TrimSpace(nr.Department),
		SampleCollected: true,
		ResultedAt:      now,
		LastUpdated:     now,
	}
	if nr.Dismissed != nil {
		r.Dismissed = *nr.Dismissed
	}
	if nr.SampleCollected != nil {
		r.SampleCollected = *nr.SampleCollected
	}
	if nr.ResultedAt != nil {
		if nr.ResultedAt.After(now.Add(5 * time.Minute)) {
			return Report{}, Errorf(KindUnprocessable, "reports[%d].resulted_at lies in the future", i)
		}
		r.ResultedAt = nr.ResultedAt.UTC().Truncate(time.Microsecond)
	}
	if nr.CollectedAt != nil {
		if nr.CollectedAt.After(now.Add(5 * time.Minute)) {
			return Report{}, Errorf(KindUnprocessable, "reports[%d].collected_at lies in the future", i)
		}
		c := nr.CollectedAt.UTC().Truncate(time.Microsecond)
		r.CollectedAt = &c
	}
	if r.TestID == "" {
		return Report{}, Errorf(KindUnprocessable, "reports[%d].test_id is required", i)
	}
	if r.TestName == "" {
		r.TestName = r.TestID
	}
	at := fmt.Sprintf("reports[%d].", i)
	for _, f := range []struct{ name, v string }{{"test_id", r.TestID}, {"test_name", r.TestName}, {"department", r.Department}} {
		if err := checkText(at+f.name, f.v); err != nil {
			return Report{}, err
		}
	}
	if len(nr.Parameters) > MaxParametersPerReport {
		return Report{}, Errorf(KindUnprocessable, "reports[%d] has %d parameters; a report may hold at most %d", i, len(nr.Parameters), MaxParametersPerReport)
	}
	for j, p := range nr.Parameters {
		p.ID = 0
		p.Name = strings.TrimSpace(p.Name)
		p.Value = strings.TrimSpace(p.Value)
		p.Unit = strings.TrimSpace(p.Unit)
		p.Flag = strings.ToUpper(strings.TrimSpace(p.Flag))
		p.ReferenceRangeText = strings.TrimSpace(p.ReferenceRangeText)
		where := func(msg string) error {
			return Errorf(KindUnprocessable, "reports[%d].parameters[%d]: %s", i, j, msg)
		}
		if p.Name == "" {
			return Report{}, where("name is required")
		}
		if err := checkParameterText(func(f string) string { return fmt.Sprintf("%sparameters[%d].%s", at, j, f) }, p); err != nil {
			return Report{}, err
		}
		if p.NormalLow != nil && p.NormalHigh != nil && *p.NormalLow > *p.NormalHigh {
			return Report{}, where("normal_low is above normal_high")
		}
		if p.CriticalLow != nil && p.CriticalHigh != nil && *p.CriticalLow > *p.CriticalHigh {
			return Report{}, where("critical_low is above critical_high")
		}
		r.Parameters = append(r.Parameters, p)
	}
	r.State = InitialState(r.Parameters)
	return r, nil
}

// checkText checks a single-line field: the text rules and maxText.
// MaxMRN bounds a medical record number (HL7 CX.1 allows 15 characters;
// real senders pad and prefix, so this leaves room).
const MaxMRN = 64

// CheckPatientIdentity checks an MRN and a birth date (YYYY-MM-DD, a real
// date not in the future), naming the fields mrnField and birthField in
// errors. Both may be empty.
func CheckPatientIdentity(mrnField, mrn, birthField, birthDate string, now time.Time) error {
	if err := CheckLine(mrnField, mrn); err != nil {
		return err
	}
	if len(mrn) > MaxMRN {
		return Errorf(KindUnprocessable, "%s is longer than %d bytes", mrnField, MaxMRN)
	}
	if birthDate == "" {
		return nil
	}
	d, err := time.Parse(time.DateOnly, birthDate)
	if err != nil || d.Year() < 1850 {
		return Errorf(KindUnprocessable, "%s %q is not a date as YYYY-MM-DD", birthField, clipText(birthDate, 40))
	}
	if d.After(now) {
		return Errorf(KindUnprocessable, "%s %s lies in the future", birthField, birthDate)
	}
	return nil
}

// clipText shortens s to at most n bytes for an error message, on a rune
// boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func checkText(field, v string) error {
	if err := CheckLine(field, v); err != nil {
		return err
	}
	if len(v) > maxText {
		return Errorf(KindUnprocessable, "%s is longer than %d bytes", field, maxText)
	}
	return nil
}

// checkParameterText checks the texts of a result parameter; field names
// them in errors (it is called only then: an order has thousands of
// parameters). The value may span lines (HL7 TX and FT results do) and run
// to MaxValueLen; name, unit, flag and the reference range text are
// single-line.
func checkParameterText(field func(name string) string, p Parameter) error {
	for _, f := range []struct{ name, v string }{{"name", p.Name}, {"unit", p.Unit}, {"flag", p.Flag},
		{"reference_range_text", p.ReferenceRangeText}} {
		if CheckLine("", f.v) != nil || len(f.v) > maxText {
			return checkText(field(f.name), f.v)
		}
	}
	if CheckMultiline("", p.Value) != nil || len(p.Value) > MaxValueLen {
		if err := CheckMultiline(field("value"), p.Value); err != nil {
			return err
		}
		return Errorf(KindUnprocessable, "%s is longer than %d bytes", field("value"), MaxValueLen)
	}
	return nil
}

// PatientClasses is HL7 table 0004, the patient classes an order may
// carry, by code, with the name a screen shows.
var PatientClasses = map[string]string{
	"B": "Obstetrics", "C": "Commercial account", "E": "Emergency", "I": "Inpatient", "N": "Not applicable",
	"O": "Outpatient", "P": "Preadmit", "R": "Recurring patient", "U": "Unknown",
}

func trimContact(c Contact) Contact {
	return Contact{
		Name: strings.TrimSpace(c.Name), Email: strings.TrimSpace(c.Email),
		Fax: strings.TrimSpace(c.Fax), Phone: strings.TrimSpace(c.Phone),
		MRN: strings.TrimSpace(c.MRN), BirthDate: strings.TrimSpace(c.BirthDate),
	}
}

// plausibleEmail catches typing slips, not every RFC 5322 corner: a missing
// @ or domain is the mistake that makes an email copy silently go nowhere.
func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n<>,;") && strings.Contains(s[at:], ".")
}
