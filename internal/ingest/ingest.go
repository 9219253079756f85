// Package ingest takes lab results in as HL7 v2 ORU^R01 messages: it maps a
// parsed message onto the domain's orders, reports and parameters, stores it
// through callout.Ingest and answers with the acknowledgement:
//
//	AA  stored (or already stored before: the same MSH-10 from the same facility)
//	AE  not stored because of a transient fault (database unavailable, lock
//	    timeout): send the same message again later
//	AR  rejected for good: not ORU^R01, bad structure, a facility no lab
//	    accepts or one bound to a client certificate the connection did not
//	    present, a field that breaks a rule (MSA-3/ERR say which); sending
//	    the same message again would be refused again
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"callout/internal/callout"
	"callout/internal/hl7"
)

// Store is what ingesting needs from storage.
type Store interface {
	callout.IngestStore
	// Transient reports whether an error of the store is a fault that may
	// pass (database unavailable, lock timeout): only then is the sender
	// asked to send the message again.
	Transient(err error) bool
	// FacilityCertSubject returns the client certificate subject the
	// facility is bound to, "" for none.
	FacilityCertSubject(ctx context.Context, facility string) (string, error)
}

// Ingester turns raw messages into stored results and ACKs.
type Ingester struct {
	Store Store
	Log   *slog.Logger
	// Location is the senders' time zone for timestamps without an offset;
	// nil means UTC.
	Location *time.Location
	Now      func() time.Time
	// CacheTTL bounds how stale a cached facility or limit may be; zero
	// means labCacheTTL.
	CacheTTL time.Duration

	// labs caches facility → lab and the lab's critical limits for a few
	// seconds: every message needs them, and they change rarely. A change
	// of limits applies to messages from at most labCacheTTL later.
	mu   sync.Mutex
	labs map[string]labEntry
}

type labEntry struct {
	labID       int64
	numbering   hl7.Numbering
	limits      []callout.CriticalLimit
	certSubject string // the facility's sender, see senderAllowed
	expires     time.Time
}

// labCacheTTL bounds how stale a cached facility or limit may be.
const labCacheTTL = 5 * time.Second

func (in *Ingester) cacheTTL() time.Duration {
	if in.CacheTTL > 0 {
		return in.CacheTTL
	}
	return labCacheTTL
}

// lab returns the lab accepting facility, from the cache when fresh.
func (in *Ingester) lab(ctx context.Context, facility string) (labEntry, error) {
	// The facility is looked up before the message reaches the domain, so
	// the text rules apply here first.
	if err := callout.CheckLine("the sending facility (MSH-4)", facility); err != nil {
		return labEntry{}, err
	}
	in.mu.Lock()
	e, ok := in.labs[facility]
	in.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e, nil
	}
	labID, setting, err := in.Store.LabForFacility(ctx, facility)
	if err != nil {
		return labEntry{}, err
	}
	limits, err := in.Store.CriticalLimits(ctx, labID)
	if err != nil {
		return labEntry{}, err
	}
	numbering, err := hl7.ParseNumbering(setting)
	if err != nil {
		// Only the CLI writes the setting, and it checks it: a stored value
		// that is none of the three is an internal error, not the sender's.
		return labEntry{}, fmt.Errorf("lab %d: %w", labID, err)
	}
	subject, err := in.Store.FacilityCertSubject(ctx, facility)
	if err != nil {
		return labEntry{}, err
	}
	e = labEntry{labID: labID, numbering: numbering, limits: limits, certSubject: subject, expires: time.Now().Add(in.cacheTTL())}
	in.mu.Lock()
	if in.labs == nil || len(in.labs) > 1000 {
		in.labs = map[string]labEntry{}
	}
	in.labs[facility] = e
	in.mu.Unlock()
	return e, nil
}

// cachedLimits serves a lab's limits to callout.Ingest from the cache.
type cachedLimits struct {
	Store
	limits []callout.CriticalLimit
}

func (c cachedLimits) CriticalLimits(context.Context, int64) ([]callout.CriticalLimit, error) {
	return c.limits, nil
}

// Outcome is what handling one message did, for logs and tests.
type Outcome struct {
	Code      string // AA, AE or AR
	Reason    string
	LabID     int64
	Duplicate bool
	BillIDs   []int64
}

// Handle processes one raw message and returns its ACK.
func (in *Ingester) Handle(ctx context.Context, raw []byte) []byte {
	ack, out := in.Process(ctx, raw)
	in.log().Info("hl7 message", "code", out.Code, "reason", out.Reason, "lab", out.LabID, "duplicate", out.Duplicate, "orders", len(out.BillIDs))
	return ack
}

func (in *Ingester) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

func (in *Ingester) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return callout.Now()
}

// Process handles one raw message, returning the ACK and what happened.
// The ACK's ERR segments say what was refused (severity E, with the HL7
// table 0357 code and the location) and which fields were ignored
// (severity W).
func (in *Ingester) Process(ctx context.Context, raw []byte) ([]byte, Outcome) {
	now := in.now()
	msg, err := hl7.Parse(raw)
	if err != nil {
		reason := "the message could not be parsed: " + err.Error()
		a := hl7.Ack{Code: hl7.AckReject, Text: reason, Issues: refusal(err, hl7.CodeSegmentSequence, reason)}
		return a.BuildRaw(raw, now), Outcome{Code: hl7.AckReject, Reason: reason}
	}
	var warnings []hl7.Issue
	reply := func(code, reason string, out Outcome, cause ...hl7.Issue) ([]byte, Outcome) {
		out.Code, out.Reason = code, reason
		text := reason
		if code == hl7.AckAccept && text == "" {
			text = "stored"
		}
		a := hl7.Ack{Code: code, Text: text, Issues: append(cause, warnings...)}
		return a.Build(msg, now), out
	}
	oru, err := hl7.ParseORUIn(msg, in.Location)
	if errors.Is(err, hl7.ErrNotORU) {
		reason := "only ORU^R01 messages are accepted: " + err.Error()
		return reply(hl7.AckReject, reason, Outcome{}, refusal(err, hl7.CodeUnsupportedMessageType, reason)...)
	}
	if err != nil {
		reason := "bad message structure: " + err.Error()
		return reply(hl7.AckReject, reason, Outcome{}, refusal(err, hl7.CodeSegmentSequence, reason)...)
	}
	warnings = append(oru.Warnings, identityWarnings(oru)...)
	lab, err := in.lab(ctx, oru.SendingFacility)
	labID := lab.labID
	if callout.ErrorKind(err) == callout.KindNotFound {
		reason := "no lab accepts messages from sending facility (MSH-4) " + quote(oru.SendingFacility)
		return reply(hl7.AckReject, reason, Outcome{}, hl7.Issue{Location: hl7.Location{Segment: "MSH", Sequence: 1, Field: 4},
			Code: hl7.CodeTableValueNotFound, Severity: hl7.SeverityError, Message: reason})
	}
	if err != nil {
		code, reason, issue := in.ackFor(err, "look up facility")
		return reply(code, reason, Outcome{}, issue)
	}
	if !in.senderAllowed(ctx, oru.SendingFacility, lab.certSubject) {
		reason := "sending facility (MSH-4) " + quote(oru.SendingFacility) +
			" is bound to a TLS client certificate that this connection did not present"
		return reply(hl7.AckReject, reason, Outcome{LabID: labID}, hl7.Issue{Location: hl7.Location{Segment: "MSH", Sequence: 1, Field: 4},
			Code: hl7.CodeTableValueNotFound, Severity: hl7.SeverityError, Message: reason})
	}
	if err := oru.CheckOrderNumbers(lab.numbering); err != nil {
		// Checked here to locate the field in the ACK; callout.Ingest refuses
		// an order without Order ID too. Deterministic: AR.
		reason := err.Error()
		return reply(hl7.AckReject, reason, Outcome{LabID: labID}, refusal(err, hl7.CodeRequiredFieldMissing, reason)...)
	}
	res, err := callout.Ingest(ctx, cachedLimits{Store: in.Store, limits: lab.limits}, labID, Map(oru, lab.numbering), now)
	out := Outcome{LabID: labID, Duplicate: res.Duplicate, BillIDs: res.BillIDs}
	switch {
	case err == nil && res.Duplicate:
		return reply(hl7.AckAccept, "already stored; ignored", out)
	case err == nil:
		return reply(hl7.AckAccept, "", out)
	}
	code, reason, issue := in.ackFor(err, "store results")
	return reply(code, reason, out, issue)
}

// ackFor is the one place an error becomes an acknowledgement code. AE
// asks the sender to send the same message again, so it is only for faults
// that pass (the store says which: database unavailable, lock timeout,
// deadline); anything else is deterministic — the same message would fail
// the same way forever — and is AR, with the rule it breaks or, for an
// internal error, no detail.
func (in *Ingester) ackFor(err error, step string) (code, reason string, issue hl7.Issue) {
	switch {
	case in.Store.Transient(err):
		in.log().Warn("hl7 message not stored: transient failure, the sender is asked to resend", "step", step, "err", err)
		return hl7.AckError, "the message could not be stored now; send it again", internalError()
	case callout.ErrorKind(err) == callout.KindInternal:
		in.log().Error("hl7 message not stored: internal error", "step", step, "err", err)
		reason = "the message could not be stored (internal error); it is refused as sent, do not send it again unchanged"
		return hl7.AckReject, reason, hl7.Issue{Code: hl7.CodeApplicationInternalError, Severity: hl7.SeverityError, Message: reason}
	}
	reason = callout.ErrorMessage(err)
	return hl7.AckReject, reason, hl7.Issue{Code: domainCode(err), Severity: hl7.SeverityError, Message: reason}
}

// refusal is the ERR of a refused message: the issue err carries, with the
// whole reason as its message, or an issue of code def without location.
func refusal(err error, def hl7.ErrorCode, reason string) []hl7.Issue {
	is, ok := hl7.IssueOf(err)
	if !ok {
		is = hl7.Issue{Code: def, Severity: hl7.SeverityError}
	}
	is.Message = reason
	return []hl7.Issue{is}
}

// internalError is the ERR of a transient fault on our side.
func internalError() hl7.Issue {
	return hl7.Issue{Code: hl7.CodeApplicationInternalError, Severity: hl7.SeverityError,
		Message: "the message could not be stored now; send it again"}
}

// domainCode is the table 0357 code for a refusal by Callout's own rules on
// data that parsed: a conflict is a duplicate key, the rest bad data.
func domainCode(err error) hl7.ErrorCode {
	if callout.ErrorKind(err) == callout.KindConflict {
		return hl7.CodeDuplicateKey
	}
	return hl7.CodeDataType
}

func quote(s string) string { return `"` + s + `"` }

// Map turns a parsed ORU^R01 into the domain's result message. The Order ID
// is the order number numbering n chooses; the other number is kept as the
// accession number. A report's resulted-at time is the view's ResultedAt
// (OBR-22, else OBX-19, else MSH-7; zero means the time of receipt), its
// collected-at time the view's CollectedAt (OBR-7, else SPM-17). Each
// result keeps OBX-7 as sent beside the bounds read from it, and the order
// the patient class PV1-2.
func Map(oru *hl7.ORU, n hl7.Numbering) callout.ResultMessage {
	m := callout.ResultMessage{Facility: oru.SendingFacility, ControlID: oru.ControlID}
	index := map[string]int{} // several OBR of one order: one order, several reports
	for _, o := range oru.Orders {
		id, other := o.OrderNumber(n)
		id = strings.TrimSpace(id)
		i, ok := index[id]
		if !ok {
			i = len(m.Orders)
			index[id] = i
			p := o.Patient
			m.Orders = append(m.Orders, callout.IncomingOrder{
				LabBillID: id, AccessionNumber: strings.TrimSpace(other),
				Patient:      patientContact(p),
				MRNAuthority: mrnAuthority(p),
				Referral:     callout.Contact{Name: o.OrderingProvider.Name},
			})
			m.Orders[i].PatientClass = p.Class
		}
		r := callout.IncomingReport{TestID: o.TestID, TestName: o.TestName, Department: department(o.Section),
			ResultedAt: o.ResultedAt, CollectedAt: o.CollectedAt, ResultStatus: resultStatus(o)}
		for _, obx := range o.Observations {
			switch strings.ToUpper(obx.ResultStatus) {
			case "D", "X", "W":
				continue // deleted, not obtainable, or posted in error: no result to judge
			}
			r.Parameters = append(r.Parameters, callout.Parameter{
				Name: obx.Name, Value: obx.Value, Unit: obx.Unit,
				NormalLow: obx.NormalLow, NormalHigh: obx.NormalHigh,
				ReferenceRangeText: obx.ReferenceRange,
				Flag:               worstFlag(obx.Flags),
			})
		}
		m.Orders[i].Reports = append(m.Orders[i].Reports, r)
	}
	return m
}

// worstFlag picks the flag that matters most of OBX-8's repetitions: a
// critical flag (HH, LL, AA) over an abnormal one (H, L, A) over the rest.
func worstFlag(flags []string) string {
	best, rank := "", -1
	for _, f := range flags {
		f = strings.ToUpper(strings.TrimSpace(f))
		r := 0
		switch f {
		case "HH", "LL", "AA":
			r = 2
		case "H", "L", "A":
			r = 1
		case "":
			continue
		}
		if r > rank {
			best, rank = f, r
		}
	}
	return best
}

// sections names the common HL7 table 0074 diagnostic service sections the
// way lab departments are called; other codes are kept as sent.
var sections = map[string]string{
	"CH": "Biochemistry", "HM": "Haematology", "MB": "Microbiology", "SR": "Serology",
	"IMM": "Immunology", "BLB": "Blood Bank", "UR": "Urinalysis", "CG": "Cytogenetics",
	"CUS": "Cytology", "SP": "Pathology", "TX": "Toxicology", "HM1": "Haematology",
}

func department(code string) string {
	code = strings.TrimSpace(code)
	if d, ok := sections[strings.ToUpper(code)]; ok {
		return d
	}
	return code
}

// resultStatus is the status of an OBR's results: OBR-25 when it says P, F
// or C, else the most final of its OBX-11 (C over F over P).
func resultStatus(o hl7.ORUOrder) string {
	switch st := strings.ToUpper(strings.TrimSpace(o.ResultStatus)); st {
	case "P", "F", "C":
		return st
	}
	best := ""
	rank := map[string]int{"": 0, "P": 1, "F": 2, "C": 3}
	for _, obx := range o.Observations {
		st := strings.ToUpper(strings.TrimSpace(obx.ResultStatus))
		if r, ok := rank[st]; ok && r > rank[best] {
			best = st
		}
	}
	return best
}

// usableMRN and usableBirthDate say whether Callout keeps a patient's MRN
// (PID-3) and birth date (PID-7). What it cannot keep (an MRN longer than
// callout.MaxMRN or not one line, a birth date in the future or before
// 1850) is left out rather than refusing the results — a critical value is
// called out without either — and named in a warning (identityWarnings).
func usableMRN(id string) bool {
	return callout.CheckPatientIdentity("mrn", id, "", "", callout.Now()) == nil
}

func usableBirthDate(bd time.Time) bool {
	return bd.Year() >= 1850 && !bd.After(callout.Now())
}

// patientContact is an order's patient: name, contacts, and the MRN (see
// hl7.Patient.MRN) and birth date when usable.
func patientContact(p hl7.Patient) callout.Contact {
	c := callout.Contact{Name: p.Name, Email: p.Email, Phone: p.Phone}
	if usableMRN(p.MRN.ID) {
		c.MRN = p.MRN.ID
	}
	if bd := p.BirthDate; !bd.IsZero() && usableBirthDate(bd) {
		c.BirthDate = bd.Format(time.DateOnly)
	}
	return c
}

// identityWarnings names, once per message, an MRN or birth date that
// patientContact leaves out, so the sender learns why the patient has none
// (ERR severity W; the results are stored all the same).
func identityWarnings(oru *hl7.ORU) []hl7.Issue {
	var out []hl7.Issue
	var mrnWarned, dobWarned bool
	for _, o := range oru.Orders {
		p := o.Patient
		if id := p.MRN.ID; id != "" && !mrnWarned && !usableMRN(id) {
			mrnWarned = true
			out = append(out, hl7.Issue{Location: hl7.Location{Segment: "PID", Sequence: 1, Field: 3},
				Code: hl7.CodeDataType, Severity: hl7.SeverityWarning,
				Message: fmt.Sprintf("the MRN (PID-3) is ignored: longer than %d bytes or not one line", callout.MaxMRN)})
		}
		if bd := p.BirthDate; !bd.IsZero() && !dobWarned && !usableBirthDate(bd) {
			dobWarned = true
			out = append(out, hl7.Issue{Location: hl7.Location{Segment: "PID", Sequence: 1, Field: 7},
				Code: hl7.CodeDataType, Severity: hl7.SeverityWarning,
				Message: "the birth date (PID-7) " + bd.Format(time.DateOnly) + " is ignored: in the future or before 1850"})
		}
	}
	return out
}

// mrnAuthority is the assigning authority of the MRN that patientContact
// keeps.
func mrnAuthority(p hl7.Patient) string {
	a := p.MRN.AssigningAuthority
	if p.MRN.ID == "" || !usableMRN(p.MRN.ID) || len(a) > 200 || callout.CheckLine("", a) != nil {
		return ""
	}
	return a
}
