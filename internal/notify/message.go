// Package notify renders critical-result notifications (HTML and plain-text
// email, PDF fax sheet) and delivers them over SMTP.
//
// Rendering is pure: everything a message shows comes from a Content value,
// so the background job that sends notifications can re-render the exact same
// message on a retry. The SMTP transport lives in smtp.go; an in-process SMTP
// server for tests lives in the smtptest sub-package.
package notify

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Recipient types used in Content.RecipientType.
const (
	RecipientPatient      = "Patient"
	RecipientReferral     = "Referral"
	RecipientOrganization = "Organization"
	RecipientOther        = "Other"
)

// CalledAtLayout is the layout used to show Content.CalledAt in every output
// format, so email and fax agree on the wording.
const CalledAtLayout = "02 Jan 2006 15:04 MST"

// Content is everything a critical-results message is rendered from. It is a
// plain value: the caller loads it from the database, and the rendering
// functions never look anything up themselves.
type Content struct {
	LabName         string
	LabBillID       string // the Order ID shown to humans
	AccessionNumber string
	PatientName     string
	// HidePatientName replaces the patient's name with the accession number
	// (or the Order ID when there is none) everywhere in the message.
	HidePatientName bool
	Organization    string // organization name
	Referral        string // referral doctor name
	Reports         []Report
	// Comment is already filtered by the caller: it is empty when the lab
	// does not share comments.
	Comment        string
	OrderURL       string
	CalledBy       string
	NotifiedPerson string
	// ReadBack is true when the person reached read the results back on
	// the call; the message then does not ask them to call back for it.
	ReadBack      bool
	CalledAt      time.Time
	RecipientName string
	RecipientType string // Patient, Referral, Organization or Other
}

// Report is one test of the order with its (critical) parameters.
type Report struct {
	TestID     string
	TestName   string
	Department string
	Parameters []Parameter
}

// Parameter is one measured value of a report.
type Parameter struct {
	Name          string
	Value         string
	Unit          string
	NormalRange   string // e.g. "3.5–5.1", or "" when unknown
	CriticalRange string
	Flag          string // e.g. "H", "L", "HH", "LL", "Critical"
}

// Subject returns the email subject for an order. The wording is fixed
// because labs and recipients filter their mailboxes on it.
func Subject(labName, labBillID string) string {
	return fmt.Sprintf("Critical Results Alert from %s for Order ID - %s", labName, labBillID)
}

// DisplayPatientName returns the name to show for the patient: the real
// name, or when HidePatientName is set the accession number, falling back to
// the Order ID when there is no accession number.
func (c Content) DisplayPatientName() string {
	if !c.HidePatientName {
		return c.PatientName
	}
	if s := strings.TrimSpace(c.AccessionNumber); s != "" {
		return s
	}
	return c.LabBillID
}

// criticalFlags are the short flags labs use for critical (panic) values, as
// opposed to merely abnormal ones like "H" or "L".
var criticalFlags = map[string]bool{
	"HH": true, "LL": true, "C": true, "CH": true, "CL": true,
	"H*": true, "L*": true, "*": true, "**": true, "!": true, "!!": true,
}

// IsCriticalFlag reports whether a parameter flag marks a critical value, so
// every output format highlights the same rows. Besides the short flags it
// accepts any wording containing "crit" or "panic" ("Critical High").
func IsCriticalFlag(flag string) bool {
	f := strings.ToUpper(strings.TrimSpace(flag))
	return criticalFlags[f] || strings.Contains(f, "CRIT") || strings.Contains(f, "PANIC")
}

// view is Content after applying the display rules shared by every output
// format (hidden patient name, date formatting).
type view struct {
	Content
	PatientDisplay string
	CalledAtText   string
}

// prepare applies the display rules to c. When the patient's name is hidden
// it is also scrubbed from the free-text fields, because a technician may
// have typed it into the comment, and the greeting is neutralised when the
// recipient is the patient: the hidden name must not appear anywhere.
func prepare(c Content) view {
	v := view{Content: c, PatientDisplay: c.DisplayPatientName()}
	if !c.CalledAt.IsZero() {
		v.CalledAtText = c.CalledAt.Format(CalledAtLayout)
	}
	if !c.HidePatientName {
		return v
	}
	v.PatientName = v.PatientDisplay
	name := strings.TrimSpace(c.PatientName)
	if name == "" {
		return v
	}
	if c.RecipientType == RecipientPatient || strings.EqualFold(strings.TrimSpace(c.RecipientName), name) {
		v.RecipientName = ""
	}
	scrub := nameScrubber(name, v.PatientDisplay)
	v.RecipientName = scrub(v.RecipientName)
	v.Comment = scrub(v.Comment)
	v.NotifiedPerson = scrub(v.NotifiedPerson)
	v.CalledBy = scrub(v.CalledBy)
	v.Organization = scrub(v.Organization)
	v.Referral = scrub(v.Referral)
	return v
}

// nameScrubber returns a function replacing every case-insensitive
// occurrence of name with replacement. Whitespace inside the name matches any
// run of whitespace so "Jane  Doe" or a line-wrapped name is caught too.
func nameScrubber(name, replacement string) func(string) string {
	parts := strings.Fields(name)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := regexp.MustCompile(`(?i)` + strings.Join(parts, `\s+`))
	return func(s string) string {
		if s == "" {
			return s
		}
		return re.ReplaceAllLiteralString(s, replacement)
	}
}
