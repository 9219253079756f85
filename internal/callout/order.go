package callout

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// NewOrder is an order as a lab system sends it, before it is stored.
type NewOrder struct {
	LabBillID       string  `json:"lab_bill_id"`
	AccessionNumber string  `json:"accession_number"`
	Patient         Contact `json:"patient"`
	Referral        Contact `json:"referral"`
	Organization    Contact `json:"organization"`
	// PatientClass (emergency, inpatient, outpatient or empty) picks the
	// order's time target from the lab's targets.
	PatientClass string      `json:"patient_class"`
	Reports      []NewReport `json:"reports"`
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
	Parameters      []Parameter `json:"parameters"`
}

// Limits on what one order may carry; generous for a real order, small
// enough that a runaway client cannot exhaust the database.
const (
	MaxReportsPerOrder     = 500
	MaxParametersPerReport = 200
	maxText                = 500
	// maxComment bounds free text: a callout's comment, the lab's
	// standing instruction.
	maxComment = 4000
)

// BuildBill validates o and returns the bill to store, with every report's
// initial state decided from its parameters. Errors name the offending field.
func BuildBill(o NewOrder, now time.Time) (Bill, error) {
	b := Bill{
		LabBillID:       strings.TrimSpace(o.LabBillID),
		AccessionNumber: strings.TrimSpace(o.AccessionNumber),
		Patient:         trimContact(o.Patient),
		Referral:        trimContact(o.Referral),
		Organization:    trimContact(o.Organization),
		PatientClass:    strings.TrimSpace(o.PatientClass),
		CreatedAt:       now,
	}
	if b.PatientClass != "" && !slices.Contains(PatientClasses, b.PatientClass) {
		return Bill{}, Errorf(KindUnprocessable, "patient_class must be emergency, inpatient, outpatient or empty, not %q", b.PatientClass)
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
	if len(o.Reports) == 0 {
		return Bill{}, Errorf(KindUnprocessable, "an order needs at least one report")
	}
	if len(o.Reports) > MaxReportsPerOrder {
		return Bill{}, Errorf(KindUnprocessable, "an order may carry at most %d reports", MaxReportsPerOrder)
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
		return Report{}, Errorf(KindUnprocessable, "reports[%d] may carry at most %d parameters", i, MaxParametersPerReport)
	}
	for j, p := range nr.Parameters {
		p.ID = 0
		p.Name = strings.TrimSpace(p.Name)
		p.Value = strings.TrimSpace(p.Value)
		p.Unit = strings.TrimSpace(p.Unit)
		p.Flag = strings.ToUpper(strings.TrimSpace(p.Flag))
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
// parameters). The value may span lines (HL7 TX and FT results do); name,
// unit and flag are single-line.
func checkParameterText(field func(name string) string, p Parameter) error {
	for _, f := range []struct{ name, v string }{{"name", p.Name}, {"unit", p.Unit}, {"flag", p.Flag}} {
		if CheckLine("", f.v) != nil || len(f.v) > maxText {
			return checkText(field(f.name), f.v)
		}
	}
	if CheckMultiline("", p.Value) != nil || len(p.Value) > maxText {
		if err := CheckMultiline(field("value"), p.Value); err != nil {
			return err
		}
		return Errorf(KindUnprocessable, "%s is longer than %d bytes", field("value"), maxText)
	}
	return nil
}

func trimContact(c Contact) Contact {
	return Contact{
		Name: strings.TrimSpace(c.Name), Email: strings.TrimSpace(c.Email),
		Fax: strings.TrimSpace(c.Fax), Phone: strings.TrimSpace(c.Phone),
	}
}

// plausibleEmail catches typing slips, not every RFC 5322 corner: a missing
// @ or domain is the mistake that makes an email copy silently go nowhere.
func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n<>,;") && strings.Contains(s[at:], ".")
}
