package hl7

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrNotORU is wrapped by the ParseError ParseORU returns when MSH-9 is not
// ORU^R01.
var ErrNotORU = errors.New("hl7: message is not ORU^R01")

// MaxValueLen is the longest observation value ParseORU accepts, after the
// TX segments of one narrative are joined: 64 KiB. A longer value refuses
// the message rather than being cut, because a cut report could hide the
// sentence that matters.
const MaxValueLen = 64 << 10

// ORU is the typed view of an ORU^R01 message that the rest of the service
// works with. All strings are UTF-8 and unescaped.
//
// The view keeps every OBX that carries a value as a result of its order,
// wherever the sender put it: after the OBR, after NTE, TQ1, CTD, FT1 or
// CTI segments, or in a SPECIMEN group after SPM (v2.5.1 ORU_R01:
// PATIENT_RESULT{PATIENT?, ORDER_OBSERVATION{ORC?, OBR, NTE*, TIMING_QTY*,
// CTD?, OBSERVATION{OBX, NTE*}*, FT1*, CTI*, SPECIMEN{SPM, OBX*}*}+}+).
type ORU struct {
	MessageType        string    // MSH-9.1, "ORU"
	Trigger            string    // MSH-9.2, "R01"
	ControlID          string    // MSH-10
	SendingApplication string    // MSH-3.1
	SendingFacility    string    // MSH-4.1
	Version            string    // MSH-12.1
	SentAt             time.Time // MSH-7; zero when empty or malformed (with a warning)
	// Patients has one entry per PATIENT_RESULT group, in message order; a
	// group without PID has a zero Patient. Each order carries a copy of
	// its group's patient.
	Patients []Patient
	Orders   []ORUOrder
	// Warnings lists the fields that were ignored because they could not be
	// used (a malformed PID-7, an unknown PV1-2 code, ...) with their
	// location, in message order, at most 100. A message with warnings is
	// still accepted; the acknowledgement lists them as ERR segments with
	// severity W.
	Warnings []Issue
}

// Patient is taken from the PID segment of a PATIENT_RESULT group and the
// PV1 segment of its visit.
type Patient struct {
	// MRN is the patient identifier: the PID-3 repetition whose identifier
	// type (CX.5) is MR, else the first non-empty one; for v2.3 senders that
	// leave PID-3 empty, PID-2 and then PID-4.
	MRN        PatientID
	FamilyName string    // PID-5.1.1 of the legal name (XPN.7 "L"), else of the first name
	GivenName  string    // PID-5.2 of the same name
	Name       string    // "Given [Middle] Family"
	BirthDate  time.Time // PID-7 as a calendar date (midnight UTC); zero when empty or malformed (warning)
	Sex        string    // PID-8 from table 0001 (F, M, O, U, A, N, X); "" when empty or unknown (warning)
	Phone      string    // first PID-13 repetition that is not email or fax
	Email      string    // PID-13.4 of the repetition marked NET or Internet
	// Class is PV1-2, the patient class from table 0004 (E emergency, I
	// inpatient, O outpatient, P preadmit, R recurring, B obstetrics, C
	// commercial account, N not applicable, U unknown); "" when there is no
	// PV1 or the code is unknown (warning).
	Class string
}

// PatientID is an identifier with the authority that assigned it (CX).
// Two orders are the same patient's when both parts are equal.
type PatientID struct {
	ID                 string // CX.1
	AssigningAuthority string // CX.4: namespace id (HD.1), else universal id (HD.2)
	Type               string // CX.5, identifier type code such as MR, PI, PT
}

// Provider is an XCN person, e.g. the ordering provider.
type Provider struct {
	ID   string // XCN.1
	Name string // "[Prefix] Given [Middle] Family", e.g. "Dr. Alice B Jones"
}

// ORUOrder is one ORDER_OBSERVATION group: an optional ORC, its OBR and
// every value-carrying OBX of the group, including those of its SPECIMEN
// groups.
type ORUOrder struct {
	PlacerOrderNumber string   // ORC-2.1, else OBR-2.1
	FillerOrderNumber string   // ORC-3.1, else OBR-3.1
	TestID            string   // OBR-4.1 (else the alternate code OBR-4.4); never empty
	TestName          string   // OBR-4.2, else OBR-4.5, else TestID
	OrderingProvider  Provider // OBR-16, else ORC-12
	// CollectedAt is when the specimen was taken: OBR-7 (observation
	// date/time), else SPM-17.1 of the order's first specimen; zero when
	// absent or malformed (warning).
	CollectedAt time.Time
	// ResultedAt is when the results were released, the start of the
	// callout clock: OBR-22 (results report/status change), else the latest
	// OBX-19 (date/time of the analysis) of the order, else MSH-7. Zero when
	// none is usable: the caller then uses the time it received the message.
	ResultedAt   time.Time
	ResultStatus string   // OBR-25, e.g. F, P, C
	Section      string   // OBR-24, the diagnostic service section (e.g. CH, HM)
	Notes        []string // NTE-3 of the NTE segments right after the OBR
	Patient      Patient  // the patient of the order's PATIENT_RESULT group
	Observations []Observation
	// ORC and OBR say where the order's segments are; ORC is zero when the
	// order has none.
	ORC, OBR Location
}

// Observation is one result: one OBX, or several consecutive TX/FT/ST OBX
// segments of the same observation (same OBX-3 and OBX-4) joined into one
// text.
type Observation struct {
	SetID     string // OBX-1 (of the first OBX)
	ValueType string // OBX-2, e.g. NM, ST, CWE, SN, TX; "ST" when empty or unknown (warning)
	Code      string // OBX-3.1 (else the alternate code OBX-3.4)
	Name      string // OBX-3.2, else OBX-3.5, else Code
	SubID     string // OBX-4, the observation sub-id
	// Value is OBX-5 rendered by value type (see observationValue); "" when
	// the OBX carries no value. A text result (see IsText) keeps its line
	// breaks as "\n"; the TX segments of one narrative are joined with "\n".
	Value string
	Unit  string // OBX-6.1, else OBX-6.2
	// ReferenceRange is OBX-7 exactly as sent (the reference_range_text to
	// show); NormalLow and NormalHigh are the numeric bounds ParseRange reads
	// from it, nil when absent or not numeric.
	ReferenceRange string
	NormalLow      *float64
	NormalHigh     *float64
	Flags          []string  // OBX-8 repetitions, e.g. ["HH", "A"]
	ResultStatus   string    // OBX-11, e.g. F, P, C
	ObservedAt     time.Time // OBX-14; zero when empty or malformed (warning)
	AnalyzedAt     time.Time // OBX-19 (v2.5+); zero when empty or malformed (warning)
	Specimen       bool      // the OBX is in a SPECIMEN group (it follows an SPM)
	Notes          []string  // NTE-3 of the NTE segments after the OBX
	// Segments locates the OBX segments this result was read from.
	Segments []Location
}

// IsText reports whether the result is free text (TX, FT or ST), which
// may be long and span several lines.
func (ob *Observation) IsText() bool {
	return textTypes[ob.ValueType]
}

var textTypes = map[string]bool{"TX": true, "FT": true, "ST": true}

// valueTypes are the OBX-2 codes of HL7 table 0125 (v2.5.1) and later.
var valueTypes = map[string]bool{
	"AD": true, "CE": true, "CF": true, "CK": true, "CN": true, "CNE": true, "CP": true, "CWE": true,
	"CX": true, "DR": true, "DT": true, "DTM": true, "ED": true, "FT": true, "ID": true, "IS": true,
	"MA": true, "MO": true, "NA": true, "NM": true, "NR": true, "PN": true, "RP": true, "SN": true,
	"ST": true, "TM": true, "TN": true, "TS": true, "TX": true, "XAD": true, "XCN": true, "XON": true,
	"XPN": true, "XTN": true,
}

// patientClasses is HL7 table 0004.
var patientClasses = map[string]bool{"B": true, "C": true, "E": true, "I": true, "N": true, "O": true, "P": true, "R": true, "U": true}

// sexes is HL7 table 0001 (X was added in v2.9).
var sexes = map[string]bool{"A": true, "F": true, "M": true, "N": true, "O": true, "U": true, "X": true}

// ParseORU extracts the ORU^R01 view of m. Times without a UTC offset are
// taken to be in time.Local; use ParseORUIn to choose another location.
func ParseORU(m *Message) (*ORU, error) {
	return ParseORUIn(m, time.Local)
}

// ParseORUIn is ParseORU with times lacking a UTC offset interpreted in
// loc, which should be the sender's time zone (nil means UTC).
//
// It refuses, with a *ParseError naming the segment and field, only what
// Callout cannot work without:
//
//   - MSH-9 other than ORU^R01 (200 or 201, wrapping ErrNotORU), an MSH-12
//     version other than 2.x (203), an empty MSH-10 control id (101);
//   - no OBR, or an OBX that belongs to no OBR (100);
//   - an OBR without test identifier OBR-4 (101), or an order with neither
//     placer nor filler number (101);
//   - a value-carrying OBX without OBX-3 (101), with an NM or SN value that
//     is not a number (102; unless OBX-11 is D, X, W or N, where no value is
//     judged), or whose value is longer than MaxValueLen (102).
//
// Everything else that cannot be used is ignored with a warning in
// ORU.Warnings: malformed dates and times (MSH-7, PID-7, OBR-7, OBR-22,
// OBX-14, OBX-19, SPM-17), PID-8 and PV1-2 codes outside their tables, an
// unknown OBX-2 (the value is read as text), an ORC without OBR. Segments
// Callout does not use are skipped.
func ParseORUIn(m *Message, loc *time.Location) (*ORU, error) {
	if m == nil || len(m.Segments) == 0 || m.Segments[0].Name != "MSH" {
		return nil, errors.New("hl7: message does not start with an MSH segment")
	}
	if loc == nil {
		loc = time.UTC
	}
	w := &oruWalk{o: &ORU{}, loc: loc, patient: -1, order: -1, lastOBX: -1, seq: map[string]int{}}
	w.warns = append(w.warns, m.Warnings...)
	if err := w.header(&m.Segments[0]); err != nil {
		return nil, err
	}
	for i := 1; i < len(m.Segments); i++ {
		seg := &m.Segments[i]
		w.seq[seg.Name]++
		if err := w.step(seg, Location{Segment: seg.Name, Sequence: w.seq[seg.Name], Position: i + 1}); err != nil {
			return nil, err
		}
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	return w.o, nil
}

// noteTarget says what an NTE segment annotates.
type noteTarget int

const (
	noteNone noteTarget = iota
	noteOrder
	noteObservation
)

// oruWalk tracks where in the ORU^R01 structure the walk is.
type oruWalk struct {
	o     *ORU
	loc   *time.Location
	warns warnings
	seq   map[string]int // occurrences of each segment id so far

	patient    int   // index in o.Patients of the current PATIENT_RESULT group, -1 before any
	groupOf    []int // groupOf[i] is the index in o.Patients of order i's group
	orc        *Segment
	orcLoc     Location
	order      int // index in o.Orders of the current order, -1 when none
	inSpecimen bool
	note       noteTarget
	// lastOBX is the index in the current order's Observations of the result
	// the previous OBX went to, -1 when the previous segment (NTE aside) was
	// not an OBX; a TX continuation is joined to it.
	lastOBX int
	lastKey string // OBX-3 code and coding system, OBX-4 and OBX-2 of that OBX
	// joined is the text of that result while continuations are appended to
	// it (nil otherwise); flushText stores it. Appending to one buffer keeps
	// a narrative of thousands of short TX lines linear.
	joined []byte
}

func (w *oruWalk) header(msh *Segment) error {
	o := w.o
	o.MessageType = strings.TrimSpace(msh.Component(9, 1))
	o.Trigger = strings.TrimSpace(msh.Component(9, 2))
	o.ControlID = strings.TrimSpace(msh.Field(10))
	o.SendingApplication = msh.Field(3)
	o.SendingFacility = msh.Field(4)
	o.Version = strings.TrimSpace(msh.Field(12))
	w.seq["MSH"] = 1
	typ := clip(msh.Text(9, 1), 40)
	switch {
	case !strings.EqualFold(o.MessageType, "ORU"):
		e := refuse(mshLoc.At(9, 1), CodeUnsupportedMessageType, "not ORU^R01: the message type (MSH-9) is %q", typ)
		e.err = ErrNotORU
		return e
	case !strings.EqualFold(o.Trigger, "R01"):
		e := refuse(mshLoc.At(9, 2), CodeUnsupportedEvent, "not ORU^R01: the trigger event (MSH-9) is %q", typ)
		e.err = ErrNotORU
		return e
	case o.Version != "" && o.Version != "2" && !strings.HasPrefix(o.Version, "2."):
		return refuse(mshLoc.At(12), CodeUnsupportedVersion, "version (MSH-12) is %q; HL7 v2.x is accepted", clip(o.Version, 20))
	case o.ControlID == "":
		return refuse(mshLoc.At(10), CodeRequiredFieldMissing, "the message control id (MSH-10) is empty")
	}
	o.SentAt = w.timestamp(msh, mshLoc, 7, "MSH-7 date/time of message")
	return nil
}

func (w *oruWalk) step(seg *Segment, loc Location) error {
	switch seg.Name {
	case "OBX":
		return w.observation(seg, loc)
	case "NTE":
		w.addNote(seg)
		return nil
	}
	// Any other segment ends an OBSERVATION group, a narrative being joined
	// and the notes of the order.
	w.flushText()
	w.note, w.lastOBX = noteNone, -1
	switch seg.Name {
	case "PID":
		w.endORC()
		w.o.Patients = append(w.o.Patients, w.newPatient(seg, loc))
		w.patient, w.order = len(w.o.Patients)-1, -1
	case "PV1":
		w.visit(seg, loc)
	case "ORC":
		w.endORC()
		w.orc, w.orcLoc, w.order = seg, loc, -1
	case "OBR":
		order, err := w.newOrder(seg, loc)
		if err != nil {
			return err
		}
		w.o.Orders = append(w.o.Orders, order)
		w.groupOf = append(w.groupOf, w.currentPatient())
		w.order, w.orc, w.inSpecimen, w.note = len(w.o.Orders)-1, nil, false, noteOrder
	case "SPM":
		w.specimen(seg, loc)
	}
	return nil
}

// flushText stores the text joined so far into its result.
func (w *oruWalk) flushText() {
	if w.joined != nil {
		w.o.Orders[w.order].Observations[w.lastOBX].Value = string(w.joined)
		w.joined = nil
	}
}

// endORC warns about an ORC that no OBR followed.
func (w *oruWalk) endORC() {
	if w.orc != nil {
		w.warns.add(w.orcLoc, CodeSegmentSequence, "ORC without OBR ignored: an order needs an OBR")
		w.orc = nil
	}
}

// currentPatient returns the index of the current PATIENT_RESULT group,
// opening one without PID when the message has none yet.
func (w *oruWalk) currentPatient() int {
	if w.patient < 0 {
		w.o.Patients = append(w.o.Patients, Patient{})
		w.patient = len(w.o.Patients) - 1
	}
	return w.patient
}

func (w *oruWalk) newPatient(pid *Segment, loc Location) Patient {
	p := Patient{MRN: patientID(pid)}
	r := legalNameRep(pid)
	p.FamilyName = strings.TrimSpace(pid.SubAt(5, r, 1, 1))
	p.GivenName = strings.TrimSpace(pid.ComponentAt(5, r, 2))
	p.Name = joinWords(p.GivenName, pid.ComponentAt(5, r, 3), p.FamilyName)
	if bd := w.timestamp(pid, loc, 7, "PID-7 birth date"); !bd.IsZero() {
		p.BirthDate = time.Date(bd.Year(), bd.Month(), bd.Day(), 0, 0, 0, 0, time.UTC)
	}
	if sex := strings.ToUpper(strings.TrimSpace(pid.Field(8))); sexes[sex] {
		p.Sex = sex
	} else if sex != "" {
		w.warns.add(loc.At(8), CodeTableValueNotFound, "PID-8 sex %q is not in HL7 table 0001; ignored", clip(sex, 20))
	}
	p.Phone, p.Email = contacts(pid, 13)
	return p
}

// visit reads PV1-2, the patient class, into the current patient.
func (w *oruWalk) visit(pv1 *Segment, loc Location) {
	class := strings.ToUpper(strings.TrimSpace(pv1.Field(2)))
	p := &w.o.Patients[w.currentPatient()]
	switch {
	case patientClasses[class]:
		p.Class = class
	case class != "":
		w.warns.add(loc.At(2), CodeTableValueNotFound, "PV1-2 patient class %q is not in HL7 table 0004; ignored", clip(class, 20))
	}
}

// patientID picks the MRN from PID-3 (type MR first), else PID-2, else PID-4.
func patientID(pid *Segment) PatientID {
	var first PatientID
	for _, field := range []int{3, 2, 4} {
		for r := 1; r <= pid.Repetitions(field); r++ {
			id := PatientID{
				ID:                 strings.TrimSpace(pid.ComponentAt(field, r, 1)),
				AssigningAuthority: firstNonEmpty(pid.SubAt(field, r, 4, 1), pid.SubAt(field, r, 4, 2)),
				Type:               strings.TrimSpace(pid.ComponentAt(field, r, 5)),
			}
			switch {
			case id.ID == "":
			case strings.EqualFold(id.Type, "MR"):
				return id
			case first.ID == "":
				first = id
			}
		}
		if first.ID != "" {
			return first
		}
	}
	return first
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

func (w *oruWalk) newOrder(obr *Segment, loc Location) (ORUOrder, error) {
	orc := w.orc
	o := ORUOrder{
		PlacerOrderNumber: firstNonEmpty(orc.Field(2), obr.Field(2)),
		FillerOrderNumber: firstNonEmpty(orc.Field(3), obr.Field(3)),
		TestID:            firstNonEmpty(obr.Component(4, 1), obr.Component(4, 4)),
		ResultStatus:      strings.TrimSpace(obr.Field(25)),
		Section:           strings.TrimSpace(obr.Field(24)),
		OBR:               loc,
	}
	if orc != nil {
		o.ORC = w.orcLoc
	}
	if o.TestID == "" {
		return ORUOrder{}, refuse(loc.At(4), CodeRequiredFieldMissing, "OBR-4 (universal service identifier) is empty: the report needs a test")
	}
	if o.PlacerOrderNumber == "" && o.FillerOrderNumber == "" {
		at := loc.At(2)
		if orc != nil {
			at = w.orcLoc.At(2)
		}
		return ORUOrder{}, refuse(at, CodeRequiredFieldMissing, "the order has no number: ORC-2/OBR-2 (placer) and ORC-3/OBR-3 (filler) are all empty")
	}
	o.TestName = firstNonEmpty(obr.Component(4, 2), obr.Component(4, 5), o.TestID)
	o.OrderingProvider = provider(obr, 16)
	if o.OrderingProvider == (Provider{}) {
		o.OrderingProvider = provider(orc, 12)
	}
	o.CollectedAt = w.timestamp(obr, loc, 7, "OBR-7 observation (collection) date/time")
	o.ResultedAt = w.timestamp(obr, loc, 22, "OBR-22 results report/status change date/time")
	return o, nil
}

// specimen opens a SPECIMEN group of the current order.
func (w *oruWalk) specimen(spm *Segment, loc Location) {
	if w.order < 0 {
		return
	}
	w.inSpecimen = true
	at := w.timestamp(spm, loc, 17, "SPM-17 specimen collection date/time")
	if o := &w.o.Orders[w.order]; o.CollectedAt.IsZero() {
		o.CollectedAt = at
	}
}

func (w *oruWalk) addNote(nte *Segment) {
	var lines []string
	for r := 1; r <= nte.Repetitions(3); r++ {
		lines = append(lines, nte.Text(3, r))
	}
	text := strings.Trim(normalizeText(strings.Join(lines, "\n")), "\n")
	if text == "" || w.order < 0 {
		return
	}
	o := &w.o.Orders[w.order]
	switch {
	case w.note == noteOrder:
		o.Notes = append(o.Notes, text)
	case w.note == noteObservation && len(o.Observations) > 0:
		ob := &o.Observations[len(o.Observations)-1]
		ob.Notes = append(ob.Notes, text)
	}
}

// observation adds the OBX to the current order, or joins it to the
// previous result when it continues the same text.
func (w *oruWalk) observation(obx *Segment, loc Location) error {
	switch {
	case w.orc != nil:
		return refuse(loc, CodeSegmentSequence, "OBX follows the ORC in segment %d, which has no OBR: the result has no test (OBR-4)", w.orcLoc.Position)
	case w.order < 0:
		return refuse(loc, CodeSegmentSequence, "OBX before any OBR: the result has no order")
	}
	ob := w.newObservation(obx, loc)
	o := &w.o.Orders[w.order]
	key := strings.Join([]string{ob.Code, obx.Component(3, 3), ob.SubID, ob.ValueType}, "\x00")
	w.note = noteObservation
	if w.lastOBX >= 0 && ob.IsText() && key == w.lastKey {
		prev := &o.Observations[w.lastOBX]
		if w.joined == nil {
			w.joined = append(make([]byte, 0, 2*(len(prev.Value)+len(ob.Value)+1)), prev.Value...)
		}
		w.joined = append(append(w.joined, '\n'), ob.Value...)
		prev.Segments = append(prev.Segments, loc)
		for _, f := range ob.Flags {
			if !slices.Contains(prev.Flags, f) {
				prev.Flags = append(prev.Flags, f)
			}
		}
		prev.AnalyzedAt = later(prev.AnalyzedAt, ob.AnalyzedAt)
		if len(w.joined) > MaxValueLen {
			return refuse(loc.At(5), CodeDataType, "the value is longer than %d bytes", MaxValueLen)
		}
		if prev.Name == "" {
			prev.Name = ob.Name // a blank first line may lack what the next ones carry
		}
		if prev.Code == "" && prev.Name == "" && ob.Value != "" {
			return refuse(loc.At(3), CodeRequiredFieldMissing, "OBX-3 (observation identifier) is empty: the result needs a name")
		}
		return nil
	}
	w.flushText()
	if err := w.checkValue(&ob, obx, loc); err != nil {
		return err
	}
	o.Observations = append(o.Observations, ob)
	w.lastOBX, w.lastKey = len(o.Observations)-1, key
	return nil
}

func (w *oruWalk) newObservation(obx *Segment, loc Location) Observation {
	ob := Observation{
		SetID:          strings.TrimSpace(obx.Field(1)),
		ValueType:      strings.ToUpper(strings.TrimSpace(obx.Field(2))),
		Code:           firstNonEmpty(obx.Component(3, 1), obx.Component(3, 4)),
		SubID:          strings.TrimSpace(obx.Field(4)),
		Unit:           firstNonEmpty(obx.Component(6, 1), obx.Component(6, 2)),
		ReferenceRange: strings.TrimSpace(obx.Text(7, 1)),
		ResultStatus:   strings.ToUpper(strings.TrimSpace(obx.Field(11))),
		Specimen:       w.inSpecimen,
		Segments:       []Location{loc},
	}
	ob.Name = firstNonEmpty(obx.Component(3, 2), obx.Component(3, 5), ob.Code)
	hasValue := obx.Repetitions(5) > 0
	switch {
	case valueTypes[ob.ValueType]:
	case ob.ValueType == "" && hasValue:
		w.warns.add(loc.At(2), CodeRequiredFieldMissing, "OBX-2 value type is empty; the value was read as text (ST)")
		ob.ValueType = "ST"
	case ob.ValueType != "" && hasValue:
		w.warns.add(loc.At(2), CodeTableValueNotFound, "OBX-2 value type %q is not in HL7 table 0125; the value was read as text (ST)", clip(ob.ValueType, 10))
		ob.ValueType = "ST"
	}
	ob.Value = observationValue(obx, ob.ValueType)
	ob.NormalLow, ob.NormalHigh = ParseRange(ob.ReferenceRange)
	for _, f := range obx.Values(8) {
		if f = strings.TrimSpace(f); f != "" {
			ob.Flags = append(ob.Flags, f)
		}
	}
	ob.ObservedAt = w.timestamp(obx, loc, 14, "OBX-14 date/time of the observation")
	ob.AnalyzedAt = w.timestamp(obx, loc, 19, "OBX-19 date/time of the analysis")
	return ob
}

// checkValue refuses a value-carrying result Callout cannot use. ob is the
// result as it stands (joined text included); obx the segment just read.
func (w *oruWalk) checkValue(ob *Observation, obx *Segment, loc Location) error {
	if ob.Value == "" {
		return nil
	}
	if ob.Code == "" && ob.Name == "" {
		return refuse(loc.At(3), CodeRequiredFieldMissing, "OBX-3 (observation identifier) is empty: the result needs a name")
	}
	if len(ob.Value) > MaxValueLen {
		return refuse(loc.At(5), CodeDataType, "the value is longer than %d bytes", MaxValueLen)
	}
	switch ob.ResultStatus {
	case "D", "X", "W", "N":
		return nil // deleted, not obtainable, wrong or not asked: no value to judge
	}
	switch ob.ValueType {
	case "NM":
		if !ValidNumeric(ob.Value) {
			return refuse(loc.At(5), CodeDataType, "OBX-5 %q is not a number, but OBX-2 says NM", clip(ob.Value, 40))
		}
	case "SN":
		if !validSN(obx.Component(5, 1), obx.Component(5, 2), obx.Component(5, 3), obx.Component(5, 4)) {
			return refuse(loc.At(5), CodeDataType, "OBX-5 %q is not a structured numeric (SN) value", clip(obx.Text(5, 1), 40))
		}
	}
	return nil
}

// finish checks the whole message and fills in what depends on later
// segments: each order's patient, its resulted-at fallbacks, and the text
// of joined narratives.
func (w *oruWalk) finish() error {
	w.flushText()
	w.endORC()
	if len(w.o.Orders) == 0 {
		return refuse(Location{Segment: "OBR", Sequence: 1}, CodeSegmentSequence, "ORU^R01 has no OBR segment")
	}
	for i := range w.o.Orders {
		o := &w.o.Orders[i]
		// The PV1 of the group may follow the PID after other segments.
		o.Patient = w.o.Patients[w.groupOf[i]]
		for j := range o.Observations {
			ob := &o.Observations[j]
			if ob.IsText() {
				// Blank TX lines at the start or end of a narrative carry nothing.
				ob.Value = strings.Trim(ob.Value, "\n")
			}
		}
		if o.ResultedAt.IsZero() {
			for _, ob := range o.Observations {
				o.ResultedAt = later(o.ResultedAt, ob.AnalyzedAt)
			}
		}
		if o.ResultedAt.IsZero() {
			o.ResultedAt = w.o.SentAt
		}
	}
	w.o.Warnings = w.warns
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// timestamp reads field n of seg as an HL7 date/time; a malformed one is
// ignored with a warning.
func (w *oruWalk) timestamp(seg *Segment, loc Location, n int, what string) time.Time {
	v := seg.Component(n, 1)
	t, err := ParseTS(v, w.loc)
	if err != nil {
		w.warns.add(loc.At(n), CodeDataType, "%s %q is not an HL7 date/time; ignored", what, clip(strings.TrimSpace(v), 40))
		return time.Time{}
	}
	return t
}

// provider reads the first repetition of an XCN field:
// ID^Family^Given^Middle^Suffix^Prefix^Degree.
func provider(s *Segment, n int) Provider {
	return Provider{
		ID:   strings.TrimSpace(s.Component(n, 1)),
		Name: joinWords(s.Component(n, 6), s.Component(n, 3), s.Component(n, 4), s.Sub(n, 2, 1)),
	}
}

// observationValue renders OBX-5 according to OBX-2:
//   - coded (CE, CWE, CNE, CF): the text (else the code) of every
//     repetition, joined with ", ";
//   - SN: comparator, numbers and separator concatenated ("<5", "1:128"),
//     repetitions joined with ", ";
//   - TX, FT: every repetition as text, joined with a newline, because the
//     repetition separator marks a new line in these types; line breaks
//     (\.br\, \X0D\, CR LF) become "\n" and white space at line ends is
//     dropped;
//   - ST: the first repetition as one text, line breaks as for TX;
//   - anything else (NM, DT, TS, ...): the first repetition as text.
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
		return normalizeText(strings.Join(parts, "\n"))
	case "ST":
		return strings.TrimSpace(normalizeText(obx.Text(field, 1)))
	}
	return strings.TrimSpace(obx.Text(field, 1))
}

// normalizeText writes every line break as "\n" and drops white space at
// the end of each line (fixed-width reports pad their lines).
func normalizeText(s string) string {
	if !strings.ContainsAny(s, "\r\n \t") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
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
