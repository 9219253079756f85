package fhir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

// visible reports whether p may see the record of e (callout.VisibleRecord).
func visible(p callout.Principal, e Entry) bool {
	_, ok := callout.VisibleRecord(p, e.Bill, e.Record, e.Records)
	return ok
}

// NewCommunication maps a callout record, as p may see it, onto an R4
// Communication:
//
//   - id and identifier (urn:callout:record) are the record's id; a record
//     never changes once written, so meta.versionId is 1 and
//     meta.lastUpdated its time;
//   - status: done → completed; attempt → in-progress, with statusReason
//     "Callout attempted: <comment, or 'recipient not reached'>" (just
//     "Callout attempted" when the comment is withheld);
//   - category alert, priority stat: critical results are urgent by law;
//   - subject the order's Patient (see PatientID) showing the patient's name
//     (the lab's hide_patient_name setting is for screens, not for an
//     authenticated integrator); basedOn ServiceRequest/{billID} with the
//     Order ID;
//   - about DiagnosticReport/{lab_report_id}: the record's report, or for an
//     attempt each report it named (meta.callout_for); no partOf, which
//     would name the same reports again;
//   - recipient: the Patient, Practitioner/referral-{billID},
//     Organization/org-{billID} (each served), and the notify-to-others
//     person as a display-only Practitioner;
//   - medium (v3-ParticipationMode): PHONE, the call itself, always; for a
//     done callout FAXWRIT and EMAILWRIT for its copies (an attempt sends no
//     copies);
//   - sent the record's time; sender the lab user, by display;
//   - payload one text per critical value communicated, e.g.
//     "Serum Electrolytes: Potassium 7.1 mmol/L (HH)";
//   - note the read-back ("Read back by Dr. Rao: yes") and the comment.
//
// For a principal limited to departments the record is cut as
// callout.VisibleRecord cuts it for every reader: an attempt's reports and
// values of other departments are left out, and the comment of a callout
// that also covered them is replaced by callout.WithheldComment.
func NewCommunication(e Entry, p callout.Principal) Communication {
	rec, _ := callout.VisibleRecord(p, e.Bill, e.Record, e.Records)
	bill := e.Bill
	id := strconv.FormatInt(rec.ID, 10)
	subject := patientRef(bill)
	sent := instant(rec.CreatedAt)
	c := Communication{
		ResourceType: "Communication",
		ID:           id,
		Meta:         &Meta{VersionID: "1", LastUpdated: sent},
		Identifier:   []Identifier{{System: systemRecord, Value: id}},
		BasedOn:      []Reference{orderRef(bill)},
		Status:       StatusCompleted,
		Category: []CodeableConcept{{Coding: []Coding{{
			System: systemCategory, Code: "alert", Display: "Alert"}}}},
		Priority: "stat",
		Medium:   []CodeableConcept{medium("PHONE", "telephone")},
		Subject:  &subject,
		Sent:     sent,
		Sender:   &Reference{Type: "Practitioner", Display: rec.CreatedBy},
	}
	if rec.Status == callout.StatusAttempted {
		c.Status = StatusInProgress
		reason := "Callout attempted: " + rec.Comment
		switch {
		case rec.Restricted:
			reason = "Callout attempted"
		case rec.Comment == "":
			reason += "recipient not reached"
		}
		c.StatusReason = &CodeableConcept{Text: reason}
	} else {
		for _, m := range rec.Methods {
			switch m {
			case "Fax":
				c.Medium = append(c.Medium, medium("FAXWRIT", "telefax"))
			case "Email":
				c.Medium = append(c.Medium, medium("EMAILWRIT", "email"))
			}
		}
	}

	reports := recordReports(e, p)
	shown := map[int64]bool{}
	for _, r := range reports {
		c.About = append(c.About, reportRef(r))
		shown[r.ID] = true
	}

	for _, who := range rec.Recipients {
		switch who {
		case callout.RecipientPatient:
			c.Recipient = append(c.Recipient, patientRef(bill))
		case callout.RecipientReferral:
			c.Recipient = append(c.Recipient, referralRef(bill))
		case callout.RecipientOrganization:
			c.Recipient = append(c.Recipient, organizationRef(bill))
		}
	}
	if o := rec.NotifyToOthers; o != nil {
		if name := firstNonEmpty(o.Name, o.ContactNumber, o.Email, o.Fax); name != "" {
			c.Recipient = append(c.Recipient, Reference{Type: "Practitioner", Display: name})
		}
	}

	for _, it := range rec.Snapshot {
		if len(p.Departments) > 0 && !shown[it.LabReportID] {
			continue
		}
		c.Payload = append(c.Payload, Payload{ContentString: valueText(it)})
	}
	if len(c.Payload) == 0 && len(reports) > 0 {
		// A record always says what it was about, even when no value of
		// it was kept.
		names := make([]string, len(reports))
		for i, r := range reports {
			names[i] = r.TestName
		}
		c.Payload = []Payload{{ContentString: "Critical result: " + strings.Join(names, ", ")}}
	}

	readBack := "no"
	if rec.ReadBack {
		readBack = "yes"
	}
	if rec.NotifiedPerson != "" {
		c.Note = append(c.Note, Annotation{Text: fmt.Sprintf("Read back by %s: %s", rec.NotifiedPerson, readBack)})
	} else {
		c.Note = append(c.Note, Annotation{Text: "Read back: " + readBack})
	}
	switch {
	case rec.Restricted:
		c.Note = append(c.Note, Annotation{Text: callout.WithheldComment})
	case rec.Comment != "":
		c.Note = append(c.Note, Annotation{Text: rec.Comment})
	}
	return c
}

// recordReports returns the reports a record is about that p sees: its own
// report, or for an attempt those named in meta.callout_for (or, for a
// record without meta, those of its snapshot).
func recordReports(e Entry, p callout.Principal) []callout.Report {
	var ids []int64
	switch {
	case e.Record.LabReportID != nil:
		ids = []int64{*e.Record.LabReportID}
	case e.Record.Meta != nil:
		for _, tid := range e.Record.Meta.CalloutFor {
			for _, r := range e.Bill.Reports {
				if r.TestID == tid {
					ids = append(ids, r.ID)
				}
			}
		}
	default:
		for _, it := range e.Record.Snapshot {
			ids = append(ids, it.LabReportID)
		}
	}
	var out []callout.Report
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		r, ok := e.Bill.Report(id)
		if !ok {
			r = callout.Report{ID: id} // no department: only an unlimited principal sees it
		}
		if !p.Sees(r.Department) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// valueText is one critical value as it was told:
// "Serum Electrolytes: Potassium 7.1 mmol/L (HH)". Without a flag, the
// critical limit it crossed is named instead.
func valueText(it callout.SnapshotItem) string {
	var b strings.Builder
	if it.TestName != "" {
		b.WriteString(it.TestName + ": ")
	}
	b.WriteString(it.Name)
	if it.Value != "" {
		b.WriteString(" " + it.Value)
	}
	if it.Unit != "" {
		b.WriteString(" " + it.Unit)
	}
	if f := strings.TrimSpace(it.Flag); f != "" {
		b.WriteString(" (" + f + ")")
		return b.String()
	}
	p := callout.Parameter{Value: it.Value}
	if v, ok := p.Numeric(); ok {
		switch {
		case it.CriticalHigh != nil && v > *it.CriticalHigh:
			b.WriteString(" (critical > " + strconv.FormatFloat(*it.CriticalHigh, 'g', -1, 64) + ")")
		case it.CriticalLow != nil && v < *it.CriticalLow:
			b.WriteString(" (critical < " + strconv.FormatFloat(*it.CriticalLow, 'g', -1, 64) + ")")
		}
	}
	return b.String()
}

func medium(code, display string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: systemParticipation, Code: code, Display: display}}}
}

// orderSystem is the identifier system of a lab's Order IDs: they are
// unique within the lab only.
func orderSystem(labID int64) string {
	return "urn:callout:lab:" + strconv.FormatInt(labID, 10) + ":order"
}

// instant formats t as an R4 instant in UTC.
func instant(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// AttemptPrefix starts the id of a Communication made from a row of the
// attempt log ("attempt-17"), apart from the ids of callout records.
const AttemptPrefix = "attempt-"

// NewAttemptCommunication maps a row of the attempt log, as p may see it
// (callout.VisibleAttempts), onto an R4 Communication. The log is never
// changed, so this Communication never disappears, even when the order's
// draft record that a later submit replaces does:
//
//   - id attempt-{row id}, identifier urn:callout:attempt;
//   - status: done → completed; attempt → not-done with statusReason coded
//     from the outcome (urn:callout:outcome, e.g. no_answer "no answer");
//   - about the row's DiagnosticReport, basedOn its ServiceRequest; sent is called_at (the
//     real time of a back-entered call), meta.lastUpdated recorded_at;
//   - recipients, medium, payload and note as NewCommunication makes them,
//     from the row's own recipients, critical values and comment.
func NewAttemptCommunication(e AttemptEntry, p callout.Principal) (Communication, bool) {
	rows := callout.VisibleAttempts(p, e.Bill, e.Submit)
	var a callout.AttemptEntry
	found := false
	for _, r := range rows {
		if r.ID == e.Attempt.ID {
			a, found = r, true
			break
		}
	}
	if !found {
		return Communication{}, false
	}
	bill := e.Bill
	id := AttemptPrefix + strconv.FormatInt(a.ID, 10)
	billID := strconv.FormatInt(bill.ID, 10)
	subject := patientRef(bill)
	c := Communication{
		ResourceType: "Communication",
		ID:           id,
		Meta:         &Meta{VersionID: "1", LastUpdated: instant(a.RecordedAt)},
		Identifier:   []Identifier{{System: systemAttempt, Value: strconv.FormatInt(a.ID, 10)}},
		BasedOn:      []Reference{orderRef(bill)},
		Status:       StatusCompleted,
		Category: []CodeableConcept{{Coding: []Coding{{
			System: systemCategory, Code: "alert", Display: "Alert"}}}},
		Priority: "stat",
		Medium:   []CodeableConcept{medium("PHONE", "telephone")},
		Subject:  &subject,
		Sent:     instant(a.CalledAt),
		Sender:   &Reference{Type: "Practitioner", Display: a.User},
	}
	if a.Kind == callout.AttemptKindAttempt {
		c.Status = StatusNotDone
		c.StatusReason = &CodeableConcept{
			Coding: []Coding{{System: systemOutcome, Code: a.Outcome, Display: callout.OutcomeText(a.Outcome)}},
			Text:   fmt.Sprintf("Callout attempt %d: %s", a.Number, callout.OutcomeText(a.Outcome)),
		}
	}
	testName := ""
	if r, ok := bill.Report(a.LabReportID); ok {
		testName = r.TestName
	}
	c.About = []Reference{{Reference: "DiagnosticReport/" + strconv.FormatInt(a.LabReportID, 10), Type: "DiagnosticReport", Display: testName}}
	for _, r := range a.Recipients {
		if r.Email != "" && a.Kind == callout.AttemptKindDone && !slices.ContainsFunc(c.Medium, isMedium("EMAILWRIT")) {
			c.Medium = append(c.Medium, medium("EMAILWRIT", "email"))
		}
		if r.Fax != "" && a.Kind == callout.AttemptKindDone && !slices.ContainsFunc(c.Medium, isMedium("FAXWRIT")) {
			c.Medium = append(c.Medium, medium("FAXWRIT", "telefax"))
		}
		switch r.Recipient {
		case callout.RecipientPatient:
			ref := subject
			ref.Display = firstNonEmpty(r.Name, "Patient")
			c.Recipient = append(c.Recipient, ref)
		case callout.RecipientReferral:
			c.Recipient = append(c.Recipient, Reference{Reference: "Practitioner/referral-" + billID, Type: "Practitioner", Display: firstNonEmpty(r.Name, "Referral")})
		case callout.RecipientOrganization:
			c.Recipient = append(c.Recipient, Reference{Reference: "Organization/org-" + billID, Type: "Organization", Display: firstNonEmpty(r.Name, "Organization")})
		default:
			if name := firstNonEmpty(r.Name, r.Phone, r.Email, r.Fax); name != "" {
				c.Recipient = append(c.Recipient, Reference{Type: "Practitioner", Display: name})
			}
		}
	}
	for _, it := range a.CriticalValues {
		c.Payload = append(c.Payload, Payload{ContentString: valueText(it)})
	}
	if len(c.Payload) == 0 {
		c.Payload = []Payload{{ContentString: "Critical result: " + firstNonEmpty(testName, "report "+strconv.FormatInt(a.LabReportID, 10))}}
	}
	readBack := "no"
	if a.ReadBack {
		readBack = "yes"
	}
	if a.NotifiedPerson != "" {
		c.Note = append(c.Note, Annotation{Text: fmt.Sprintf("Read back by %s: %s", a.NotifiedPerson, readBack)})
	} else {
		c.Note = append(c.Note, Annotation{Text: "Read back: " + readBack})
	}
	if a.BackEntryReason != "" {
		c.Note = append(c.Note, Annotation{Text: fmt.Sprintf("Entered later (%s): %s", instant(a.RecordedAt), a.BackEntryReason)})
	}
	switch {
	case a.Restricted:
		c.Note = append(c.Note, Annotation{Text: callout.WithheldComment})
	case a.Comment != "":
		c.Note = append(c.Note, Annotation{Text: a.Comment})
	}
	return c, true
}

func isMedium(code string) func(CodeableConcept) bool {
	return func(c CodeableConcept) bool { return len(c.Coding) > 0 && c.Coding[0].Code == code }
}
