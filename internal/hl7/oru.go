package hl7

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotORU is returned (wrapped) by ParseORU when MSH-9 is not ORU^R01, so
// the caller can answer with an AR acknowledgement.
var ErrNotORU = errors.New("hl7: message is not ORU^R01")

// ORU is the typed view of an ORU^R01 message that the rest of the service
// works with. All strings are unescaped.
type ORU struct {
	MessageType        string // MSH-9.1, "ORU"
	Trigger            string // MSH-9.2, "R01"
	ControlID          string // MSH-10
	SendingApplication string // MSH-3.1
	SendingFacility    string // MSH-4.1
	Version            string // MSH-12.1
	Patient            Patient
	Orders             []ORUOrder
}

// Patient is taken from the single PID segment.
type Patient struct {
	ID         string    // PID-3.1 of the first repetition, else PID-2.1
	FamilyName string    // PID-5.1.1 of the legal name (XPN.7 "L"), else of the first name
	GivenName  string    // PID-5.2 of the same name
	Name       string    // "Given [Middle] Family"
	BirthDate  time.Time // PID-7; zero when empty
	Sex        string    // PID-8
	Phone      string    // first PID-13 repetition that is not email or fax
	Email      string    // PID-13.4 of the repetition marked NET or Internet
}

// Provider is an XCN person, e.g. the ordering provider.
type Provider struct {
	ID   string // XCN.1
	Name string // "[Prefix] Given [Middle] Family", e.g. "Dr. Alice B Jones"
}

// ORUOrder is one ORDER_OBSERVATION group: an optional ORC, its OBR and the
// OBX segments that follow the OBR.
type ORUOrder struct {
	PlacerOrderNumber string    // ORC-2.1, else OBR-2.1
	FillerOrderNumber string    // ORC-3.1, else OBR-3.1
	TestID            string    // OBR-4.1 (else the alternate code OBR-4.4)
	TestName          string    // OBR-4.2, else OBR-4.5, else TestID
	OrderingProvider  Provider  // OBR-16, else ORC-12
	ObservedAt        time.Time // OBR-7; zero when empty
	ResultStatus      string    // OBR-25, e.g. F, P, C
	Section           string    // OBR-24, the diagnostic service section (e.g. CH, HM)
	Observations      []Observation
}

// Observation is one OBX result.
type Observation struct {
	SetID          string   // OBX-1
	ValueType      string   // OBX-2, e.g. NM, ST, CWE, SN, TX
	Code           string   // OBX-3.1 (else the alternate code OBX-3.4)
	Name           string   // OBX-3.2, else OBX-3.5, else Code
	Value          string   // OBX-5, rendered by value type (see observationValue)
	Unit           string   // OBX-6.1, else OBX-6.2
	ReferenceRange string   // OBX-7 as sent
	NormalLow      *float64 // lower bound parsed from ReferenceRange, nil if none
	NormalHigh     *float64 // upper bound parsed from ReferenceRange, nil if none
	Flags          []string // OBX-8 repetitions, e.g. ["HH", "A"]
	ResultStatus   string   // OBX-11, e.g. F, P, C
}

// ParseORU extracts the ORU^R01 view of m. Times without a UTC offset are
// taken to be in time.Local; use ParseORUIn to choose another location.
func ParseORU(m *Message) (*ORU, error) {
	return ParseORUIn(m, time.Local)
}

// ParseORUIn is ParseORU with times lacking a UTC offset interpreted in
// loc, which should be the sender's time zone (nil means UTC).
//
// It returns an error wrapping ErrNotORU when MSH-9 is not ORU^R01, and an
// error naming the segment when ORC, OBR, OBX or PID appear out of order,
// when there is more than one PID, when there is no OBR, or when a date is
// malformed. NTE, Z-segments and all other segments are ignored.
func ParseORUIn(m *Message, loc *time.Location) (*ORU, error) {
	if m == nil || len(m.Segments) == 0 || m.Segments[0].Name != "MSH" {
		return nil, errors.New("hl7: message does not start with an MSH segment")
	}
	msh := &m.Segments[0]
	o := &ORU{
		MessageType:        strings.TrimSpace(msh.Component(9, 1)),
		Trigger:            strings.TrimSpace(msh.Component(9, 2)),
		ControlID:          msh.Field(10),
		SendingApplication: msh.Field(3),
		SendingFacility:    msh.Field(4),
		Version:            msh.Field(12),
	}
	if !strings.EqualFold(o.MessageType, "ORU") || !strings.EqualFold(o.Trigger, "R01") {
		return nil, fmt.Errorf("%w: MSH-9 is %q", ErrNotORU, clip(msh.Text(9, 1), 40))
	}
	if err := o.readBody(m, loc); err != nil {
		return nil, err
	}
	return o, nil
}

// oruState tracks where in the ORU^R01 structure the walk is.
type oruState struct {
	pidAt      int // segment number of PID, 0 before it
	pendingORC *Segment
	orcAt      int
	hasOrder   bool // an OBR has been seen; OBX belong to the last order
	inSpecimen bool // after SPM: OBX belong to the specimen, not the order
}

func (o *ORU) readBody(m *Message, loc *time.Location) error {
	var st oruState
	for i := 1; i < len(m.Segments); i++ {
		seg := &m.Segments[i]
		if err := o.step(&st, seg, i+1, loc); err != nil {
			return fmt.Errorf("hl7: segment %d (%s): %w", i+1, seg.Name, err)
		}
	}
	if st.pendingORC != nil {
		return fmt.Errorf("hl7: segment %d (ORC): ORC is not followed by an OBR", st.orcAt)
	}
	if len(o.Orders) == 0 {
		return errors.New("hl7: ORU^R01 has no OBR segment")
	}
	return nil
}

func (o *ORU) step(st *oruState, seg *Segment, num int, loc *time.Location) error {
	switch seg.Name {
	case "PID":
		return o.stepPID(st, seg, num, loc)
	case "ORC":
		if st.pendingORC != nil {
			return fmt.Errorf("second ORC without an OBR after the ORC in segment %d", st.orcAt)
		}
		st.pendingORC, st.orcAt = seg, num
	case "OBR":
		order, err := newOrder(st.pendingORC, seg, loc)
		if err != nil {
			return err
		}
		o.Orders = append(o.Orders, order)
		st.hasOrder, st.pendingORC, st.inSpecimen = true, nil, false
	case "OBX":
		return o.stepOBX(st, seg)
	case "SPM":
		// Only the OBX segments after an order's SPM describe the specimen.
		st.inSpecimen = st.hasOrder
	}
	return nil
}

func (o *ORU) stepPID(st *oruState, seg *Segment, num int, loc *time.Location) error {
	if st.pidAt != 0 {
		return fmt.Errorf("second PID (first in segment %d): one patient per ORU^R01 is supported", st.pidAt)
	}
	if st.hasOrder || st.pendingORC != nil {
		return errors.New("PID after ORC/OBR: PID must precede the orders")
	}
	st.pidAt = num
	p, err := newPatient(seg, loc)
	if err != nil {
		return err
	}
	o.Patient = p
	return nil
}

func (o *ORU) stepOBX(st *oruState, seg *Segment) error {
	switch {
	case st.pendingORC != nil:
		return fmt.Errorf("OBX after the ORC in segment %d but before its OBR", st.orcAt)
	case !st.hasOrder:
		return errors.New("OBX before any OBR")
	case st.inSpecimen:
		return nil
	}
	last := &o.Orders[len(o.Orders)-1]
	last.Observations = append(last.Observations, newObservation(seg))
	return nil
}

func newPatient(pid *Segment, loc *time.Location) (Patient, error) {
	p := Patient{
		// PID-2 is the external id, which some v2.3 senders fill instead.
		ID:  firstNonEmpty(pid.Field(3), pid.Field(2)),
		Sex: strings.TrimSpace(pid.Field(8)),
	}
	r := legalNameRep(pid)
	p.FamilyName = strings.TrimSpace(pid.SubAt(5, r, 1, 1))
	p.GivenName = strings.TrimSpace(pid.ComponentAt(5, r, 2))
	p.Name = joinWords(p.GivenName, pid.ComponentAt(5, r, 3), p.FamilyName)
	bd, err := ParseTS(pid.Field(7), loc)
	if err != nil {
		return Patient{}, fmt.Errorf("PID-7 birth date: %w", err)
	}
	p.BirthDate = bd
	p.Phone, p.Email = contacts(pid, 13)
	return p, nil
}

// legalNameRep picks the PID-5 repetition with name type L (legal), or the
// first one, because senders list aliases and maiden names there too.
func legalNameRep(pid *Segment) int {
	for r := 1; r <= pid.Repetitions(5); r++ {
		if strings.EqualFold(pid.ComponentAt(5, r, 7), "L") {
			return r
		}
	}
	return 1
}

// contacts reads phone and email from an XTN field. Email is the repetition
// whose use code is NET or equipment type Internet/X.400 (XTN.4), or any
// XTN.1 that looks like an address; phone is the first other non-fax
// repetition (XTN.1, else "+country area local").
func contacts(s *Segment, n int) (phone, email string) {
	for r := 1; r <= s.Repetitions(n); r++ {
		use, equip := s.ComponentAt(n, r, 2), s.ComponentAt(n, r, 3)
		text := strings.TrimSpace(s.ComponentAt(n, r, 1))
		isEmail := strings.EqualFold(use, "NET") || strings.EqualFold(equip, "Internet") || strings.EqualFold(equip, "X.400")
		switch {
		case isEmail || strings.Contains(text, "@"):
			if email == "" {
				email = strings.TrimSpace(s.ComponentAt(n, r, 4))
				if email == "" && strings.Contains(text, "@") {
					email = text
				}
			}
		case strings.EqualFold(equip, "FX"):
			// A fax number is no use for calling or texting a patient.
		case phone == "":
			phone = text
			if phone == "" {
				phone = composePhone(s, n, r)
			}
		}
	}
	return phone, email
}

// composePhone builds "+country area local" from XTN.5-7, which HL7 v2.5
// prefers over the free-form XTN.1.
func composePhone(s *Segment, n, r int) string {
	country := strings.TrimSpace(s.ComponentAt(n, r, 5))
	if country != "" {
		country = "+" + strings.TrimPrefix(country, "+")
	}
	return joinWords(country, s.ComponentAt(n, r, 6), s.ComponentAt(n, r, 7))
}

func newOrder(orc, obr *Segment, loc *time.Location) (ORUOrder, error) {
	o := ORUOrder{
		PlacerOrderNumber: firstNonEmpty(orc.Field(2), obr.Field(2)),
		FillerOrderNumber: firstNonEmpty(orc.Field(3), obr.Field(3)),
		TestID:            firstNonEmpty(obr.Component(4, 1), obr.Component(4, 4)),
		ResultStatus:      obr.Field(25),
		Section:           obr.Field(24),
	}
	o.TestName = firstNonEmpty(obr.Component(4, 2), obr.Component(4, 5), o.TestID)
	o.OrderingProvider = provider(obr, 16)
	if o.OrderingProvider == (Provider{}) {
		o.OrderingProvider = provider(orc, 12)
	}
	at, err := ParseTS(obr.Field(7), loc)
	if err != nil {
		return ORUOrder{}, fmt.Errorf("OBR-7 observation date/time: %w", err)
	}
	o.ObservedAt = at
	return o, nil
}

// provider reads the first repetition of an XCN field:
// ID^Family^Given^Middle^Suffix^Prefix^Degree.
func provider(s *Segment, n int) Provider {
	return Provider{
		ID:   strings.TrimSpace(s.Component(n, 1)),
		Name: joinWords(s.Component(n, 6), s.Component(n, 3), s.Component(n, 4), s.Sub(n, 2, 1)),
	}
}

func newObservation(obx *Segment) Observation {
	ob := Observation{
		SetID:          strings.TrimSpace(obx.Field(1)),
		ValueType:      strings.ToUpper(strings.TrimSpace(obx.Field(2))),
		Code:           firstNonEmpty(obx.Component(3, 1), obx.Component(3, 4)),
		Unit:           firstNonEmpty(obx.Component(6, 1), obx.Component(6, 2)),
		ReferenceRange: strings.TrimSpace(obx.Text(7, 1)),
		ResultStatus:   strings.TrimSpace(obx.Field(11)),
	}
	ob.Name = firstNonEmpty(obx.Component(3, 2), obx.Component(3, 5), ob.Code)
	ob.Value = observationValue(obx, ob.ValueType)
	ob.NormalLow, ob.NormalHigh = ParseRange(ob.ReferenceRange)
	for _, f := range obx.Values(8) {
		if f = strings.TrimSpace(f); f != "" {
			ob.Flags = append(ob.Flags, f)
		}
	}
	return ob
}

// observationValue renders OBX-5 according to OBX-2:
//   - coded (CE, CWE, CNE, CF): the text (else the code) of every
//     repetition, joined with ", ";
//   - SN: comparator, numbers and separator concatenated ("<5", "1:128"),
//     repetitions joined with ", ";
//   - TX, FT: every repetition as text, joined with a newline, because the
//     repetition separator marks a new line in these types;
//   - anything else (NM, ST, DT, ...): the first repetition as text.
func observationValue(obx *Segment, valueType string) string {
	const field = 5
	n := obx.Repetitions(field)
	parts := make([]string, 0, n)
	switch valueType {
	case "CE", "CWE", "CNE", "CF":
		for r := 1; r <= n; r++ {
			v := firstNonEmpty(obx.ComponentAt(field, r, 2), obx.ComponentAt(field, r, 1),
				obx.ComponentAt(field, r, 5), obx.ComponentAt(field, r, 4))
			if v != "" {
				parts = append(parts, v)
			}
		}
		return strings.Join(parts, ", ")
	case "SN":
		for r := 1; r <= n; r++ {
			v := strings.TrimSpace(obx.ComponentAt(field, r, 1) + obx.ComponentAt(field, r, 2) +
				obx.ComponentAt(field, r, 3) + obx.ComponentAt(field, r, 4))
			if v != "" {
				parts = append(parts, v)
			}
		}
		return strings.Join(parts, ", ")
	case "TX", "FT":
		for r := 1; r <= n; r++ {
			parts = append(parts, obx.Text(field, r))
		}
		return strings.Join(parts, "\n")
	}
	return strings.TrimSpace(obx.Text(field, 1))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func joinWords(words ...string) string {
	out := make([]string, 0, len(words))
	for _, w := range words {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}
