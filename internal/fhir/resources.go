package fhir

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"

	"callout/internal/callout"
)

// The resources behind the references of a Communication. Callout keeps no
// registry of patients, practitioners or organizations: each is read from
// the orders that name it, and a caller sees each as its orders let it see
// them (an order none of whose reports the caller's departments see does
// not exist for that caller).

// More code systems.
const (
	systemInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	systemObsCategory    = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemIdentifierType = "http://terminology.hl7.org/CodeSystem/v2-0203"
	systemReport         = "urn:callout:report"
)

// Patient is an R4 Patient.
type Patient struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	Identifier   []MRNIdentifier `json:"identifier,omitempty"`
	Name         []HumanName     `json:"name,omitempty"`
	Telecom      []ContactPoint  `json:"telecom,omitempty"`
	BirthDate    string          `json:"birthDate,omitempty"`
}

// MRNIdentifier is a typed identifier with its assigner.
type MRNIdentifier struct {
	Use      string           `json:"use,omitempty"`
	Type     *CodeableConcept `json:"type,omitempty"`
	System   string           `json:"system,omitempty"`
	Value    string           `json:"value,omitempty"`
	Assigner *Reference       `json:"assigner,omitempty"`
}

// HumanName is a name as text: Callout keeps names whole.
type HumanName struct {
	Text string `json:"text"`
}

// ContactPoint is a phone number, fax number or email address.
type ContactPoint struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// Practitioner is an R4 Practitioner: an order's referral.
type Practitioner struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Name         []HumanName    `json:"name,omitempty"`
	Telecom      []ContactPoint `json:"telecom,omitempty"`
}

// Organization is an R4 Organization: the organization an order came from.
type Organization struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Name         string         `json:"name,omitempty"`
	Telecom      []ContactPoint `json:"telecom,omitempty"`
}

// ServiceRequest is an R4 ServiceRequest: an order.
type ServiceRequest struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Identifier   []Identifier `json:"identifier"`
	Requisition  *Identifier  `json:"requisition,omitempty"`
	Status       string       `json:"status"`
	Intent       string       `json:"intent"`
	Subject      Reference    `json:"subject"`
	AuthoredOn   string       `json:"authoredOn"`
	Requester    *Reference   `json:"requester,omitempty"`
}

// DiagnosticReport is an R4 DiagnosticReport: one report (test) of an
// order.
type DiagnosticReport struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Identifier   []Identifier      `json:"identifier"`
	BasedOn      []Reference       `json:"basedOn"`
	Status       string            `json:"status"`
	Category     []CodeableConcept `json:"category,omitempty"`
	Code         CodeableConcept   `json:"code"`
	Subject      Reference         `json:"subject"`
	Issued       string            `json:"issued"`
	Result       []Reference       `json:"result,omitempty"`
}

// Observation is an R4 Observation: one parameter of a report.
type Observation struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id"`
	BasedOn        []Reference       `json:"basedOn"`
	Status         string            `json:"status"`
	Category       []CodeableConcept `json:"category"`
	Code           CodeableConcept   `json:"code"`
	Subject        Reference         `json:"subject"`
	Issued         string            `json:"issued"`
	ValueQuantity  *Quantity         `json:"valueQuantity,omitempty"`
	ValueString    string            `json:"valueString,omitempty"`
	Interpretation []CodeableConcept `json:"interpretation,omitempty"`
	ReferenceRange []ReferenceRange  `json:"referenceRange,omitempty"`
}

// Quantity is a measured amount; Comparator is <, <=, >= or > for a value
// such as "<5".
type Quantity struct {
	Value      json.Number `json:"value"`
	Comparator string      `json:"comparator,omitempty"`
	Unit       string      `json:"unit,omitempty"`
}

// ReferenceRange is the normal range of a result.
type ReferenceRange struct {
	Low  *Quantity `json:"low,omitempty"`
	High *Quantity `json:"high,omitempty"`
}

// PatientID is the FHIR id of the patient of order b: the patient id that
// every order of its MRN shares, or, for an order without an MRN,
// "order-{billID}" — nothing ties such an order to any other.
func PatientID(b callout.Bill) string {
	if b.PatientID != 0 {
		return strconv.FormatInt(b.PatientID, 10)
	}
	return "order-" + strconv.FormatInt(b.ID, 10)
}

func patientRef(b callout.Bill) Reference {
	return Reference{Reference: "Patient/" + PatientID(b), Type: "Patient", Display: b.Patient.Name}
}

func orderRef(b callout.Bill) Reference {
	return Reference{Reference: "ServiceRequest/" + strconv.FormatInt(b.ID, 10), Type: "ServiceRequest",
		Identifier: &Identifier{System: orderSystem(b.LabID), Value: b.LabBillID}, Display: "Order " + b.LabBillID}
}

func referralRef(b callout.Bill) Reference {
	return Reference{Reference: "Practitioner/referral-" + strconv.FormatInt(b.ID, 10), Type: "Practitioner", Display: b.Referral.Name}
}

func organizationRef(b callout.Bill) Reference {
	return Reference{Reference: "Organization/org-" + strconv.FormatInt(b.ID, 10), Type: "Organization", Display: b.Organization.Name}
}

func reportRef(r callout.Report) Reference {
	return Reference{Reference: "DiagnosticReport/" + strconv.FormatInt(r.ID, 10), Type: "DiagnosticReport", Display: r.TestName}
}

// mrnSystem is the identifier system of a lab's MRNs: Callout knows a
// patient by MRN within one lab.
func mrnSystem(labID int64) string {
	return "urn:callout:lab:" + strconv.FormatInt(labID, 10) + ":mrn"
}

func telecom(c callout.Contact) []ContactPoint {
	var out []ContactPoint
	for _, t := range []ContactPoint{{"phone", c.Phone}, {"fax", c.Fax}, {"email", c.Email}} {
		if t.Value = strings.TrimSpace(t.Value); t.Value != "" {
			out = append(out, t)
		}
	}
	return out
}

func names(s string) []HumanName {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return []HumanName{{Text: s}}
}

// NewPatient maps a patient onto an R4 Patient, from its newest order the
// caller sees (name, contacts) and the latest birth date given: identifier is the MRN (type MR,
// system urn:callout:lab:{labID}:mrn, the assigning authority PID-3.4 as
// assigner). row is nil for the patient of an order without an MRN.
func NewPatient(row *PatientRow, b callout.Bill) Patient {
	p := Patient{ResourceType: "Patient", ID: PatientID(b), Name: names(b.Patient.Name),
		Telecom: telecom(b.Patient), BirthDate: b.Patient.BirthDate}
	if row != nil {
		if row.BirthDate != "" {
			p.BirthDate = row.BirthDate
		}
		id := MRNIdentifier{Use: "usual",
			Type:   &CodeableConcept{Coding: []Coding{{System: systemIdentifierType, Code: "MR", Display: "Medical record number"}}},
			System: mrnSystem(b.LabID), Value: row.MRN}
		if row.AssigningAuthority != "" {
			id.Assigner = &Reference{Type: "Organization", Display: row.AssigningAuthority}
		}
		p.Identifier = []MRNIdentifier{id}
	}
	return p
}

// NewPractitioner maps an order's referral onto an R4 Practitioner
// "referral-{billID}".
func NewPractitioner(b callout.Bill) Practitioner {
	return Practitioner{ResourceType: "Practitioner", ID: "referral-" + strconv.FormatInt(b.ID, 10),
		Name: names(b.Referral.Name), Telecom: telecom(b.Referral)}
}

// NewOrganization maps the organization of an order onto an R4
// Organization "org-{billID}".
func NewOrganization(b callout.Bill) Organization {
	return Organization{ResourceType: "Organization", ID: "org-" + strconv.FormatInt(b.ID, 10),
		Name: strings.TrimSpace(b.Organization.Name), Telecom: telecom(b.Organization)}
}

// NewServiceRequest maps an order onto an R4 ServiceRequest: identifier the
// Order ID (urn:callout:lab:{labID}:order), requisition the accession
// number, status completed (Callout holds an order once its results are
// in), intent order, requester the referral.
func NewServiceRequest(b callout.Bill) ServiceRequest {
	sr := ServiceRequest{ResourceType: "ServiceRequest", ID: strconv.FormatInt(b.ID, 10),
		Identifier: []Identifier{{System: orderSystem(b.LabID), Value: b.LabBillID}},
		Status:     "completed", Intent: "order", Subject: patientRef(b), AuthoredOn: instant(b.CreatedAt)}
	if b.AccessionNumber != "" {
		sr.Requisition = &Identifier{System: "urn:callout:lab:" + strconv.FormatInt(b.LabID, 10) + ":accession", Value: b.AccessionNumber}
	}
	if !b.Referral.Empty() {
		ref := referralRef(b)
		sr.Requester = &ref
	}
	return sr
}

// reportStatus maps an HL7 result status onto the R4 statuses of
// DiagnosticReport and Observation: P preliminary, C corrected, F — and a
// report entered over the API, which carries its results whole — final.
func reportStatus(s string) string {
	switch s {
	case "P":
		return "preliminary"
	case "C":
		return "corrected"
	}
	return "final"
}

// NewDiagnosticReport maps report r of order b onto an R4 DiagnosticReport:
// code the test (system urn:callout:lab:{labID}:test), category the
// department as text, issued the time of the results, result one
// Observation per parameter.
func NewDiagnosticReport(b callout.Bill, r callout.Report) DiagnosticReport {
	dr := DiagnosticReport{ResourceType: "DiagnosticReport", ID: strconv.FormatInt(r.ID, 10),
		Identifier: []Identifier{{System: systemReport, Value: strconv.FormatInt(r.ID, 10)}},
		BasedOn:    []Reference{orderRef(b)}, Status: reportStatus(r.ResultStatus),
		Code: testCode(b.LabID, r), Subject: patientRef(b), Issued: instant(r.ResultedAt)}
	if r.Department != "" {
		dr.Category = []CodeableConcept{{Text: r.Department}}
	}
	for _, p := range r.Parameters {
		dr.Result = append(dr.Result, Reference{Reference: "Observation/" + strconv.FormatInt(p.ID, 10), Type: "Observation", Display: p.Name})
	}
	return dr
}

func testCode(labID int64, r callout.Report) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: "urn:callout:lab:" + strconv.FormatInt(labID, 10) + ":test",
		Code: r.TestID, Display: r.TestName}}, Text: r.TestName}
}

// interpretations are the v3-ObservationInterpretation codes Callout gives.
var interpretations = map[string]string{
	"HH": "Critical high", "LL": "Critical low", "H": "High", "L": "Low", "A": "Abnormal", "AA": "Critical abnormal",
}

// jsonNumber is the grammar of a JSON (and FHIR decimal) number.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// NewObservation maps parameter p of report r onto an R4 Observation:
// valueQuantity when the value is a number (with comparator for "<5"),
// else valueString; referenceRange the normal range; interpretation the
// flag (HH, LL, H, L, A, AA), or without one what the value is against the
// critical and then the normal limits.
func NewObservation(b callout.Bill, r callout.Report, p callout.Parameter) Observation {
	o := Observation{ResourceType: "Observation", ID: strconv.FormatInt(p.ID, 10),
		BasedOn: []Reference{orderRef(b)}, Status: reportStatus(r.ResultStatus),
		Category: []CodeableConcept{{Coding: []Coding{{System: systemObsCategory, Code: "laboratory", Display: "Laboratory"}}}},
		Code:     CodeableConcept{Text: p.Name}, Subject: patientRef(b), Issued: instant(r.ResultedAt)}
	if q, ok := quantity(p.Value, p.Unit); ok {
		o.ValueQuantity = q
	} else if v := strings.TrimSpace(p.Value); v != "" {
		o.ValueString = v
	}
	var rr ReferenceRange
	if p.NormalLow != nil {
		rr.Low = &Quantity{Value: decimal(*p.NormalLow), Unit: p.Unit}
	}
	if p.NormalHigh != nil {
		rr.High = &Quantity{Value: decimal(*p.NormalHigh), Unit: p.Unit}
	}
	if rr.Low != nil || rr.High != nil {
		o.ReferenceRange = []ReferenceRange{rr}
	}
	if code := interpretation(p); code != "" {
		o.Interpretation = []CodeableConcept{{Coding: []Coding{{System: systemInterpretation, Code: code, Display: interpretations[code]}}}}
	}
	return o
}

// quantity reads a numeric value, with a leading comparator.
func quantity(value, unit string) (*Quantity, bool) {
	v := strings.TrimSpace(value)
	comparator := ""
	for _, c := range []string{"<=", ">=", "<", ">"} {
		if strings.HasPrefix(v, c) {
			comparator, v = c, strings.TrimSpace(v[len(c):])
			break
		}
	}
	if v == "" {
		return nil, false
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
		return nil, false
	}
	num := json.Number(v)
	if !jsonNumber.MatchString(v) { // "+5", ".4", "5.": keep the number, not the spelling
		num = decimal(n)
	}
	return &Quantity{Value: num, Comparator: comparator, Unit: strings.TrimSpace(unit)}, true
}

func decimal(f float64) json.Number {
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// interpretation is the v3-ObservationInterpretation code of a parameter.
func interpretation(p callout.Parameter) string {
	if f := strings.ToUpper(strings.TrimSpace(p.Flag)); interpretations[f] != "" {
		return f
	}
	v, ok := p.Numeric()
	if !ok {
		return ""
	}
	switch {
	case p.CriticalHigh != nil && v > *p.CriticalHigh:
		return "HH"
	case p.CriticalLow != nil && v < *p.CriticalLow:
		return "LL"
	case p.NormalHigh != nil && v > *p.NormalHigh:
		return "H"
	case p.NormalLow != nil && v < *p.NormalLow:
		return "L"
	}
	return ""
}
