package callout

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Payload is the callout's notification object. Its JSON keys are the seed
// system's, so an existing front end can send it unchanged.
type Payload struct {
	SendEmail      bool          `json:"sendEmail"`
	SendFax        bool          `json:"sendFax"`
	IsPatient      bool          `json:"is_patient"`
	IsReferral     bool          `json:"is_referral"`
	IsOrganization bool          `json:"is_organization"`
	Comment        string        `json:"comment"`
	NotifiedPerson string        `json:"notified_person"`
	ReadBack       bool          `json:"read_back"`
	NotifyToOthers *OtherContact `json:"notify_to_others"`
	// Outcome is how the call went (see ResolveOutcome); empty, it is
	// derived.
	Outcome string `json:"outcome,omitempty"`
	// CalledAt and BackEntryReason record a call made earlier (during a
	// downtime) and entered now; see BackEntry.
	CalledAt        *time.Time `json:"called_at,omitempty"`
	BackEntryReason string     `json:"back_entry_reason,omitempty"`
}

// Methods lists the copies the payload asks for, in the order of the seed's
// METHOD_KEY_VALUE_MAPPER: Fax, then Email.
func (p Payload) Methods() []string {
	out := []string{}
	if p.SendFax {
		out = append(out, "Fax")
	}
	if p.SendEmail {
		out = append(out, "Email")
	}
	return out
}

// Recipient names, in the order of the seed's RECIPIENT_KEY_VALUE_MAPPER.
const (
	RecipientPatient      = "Patient"
	RecipientReferral     = "Referral"
	RecipientOrganization = "Organization"
)

// Recipients lists the chosen recipients in the order of the seed's
// RECIPIENT_KEY_VALUE_MAPPER: Patient, Referral, Organization.
func (p Payload) Recipients() []string {
	out := []string{}
	if p.IsPatient {
		out = append(out, RecipientPatient)
	}
	if p.IsReferral {
		out = append(out, RecipientReferral)
	}
	if p.IsOrganization {
		out = append(out, RecipientOrganization)
	}
	return out
}

// Request is one callout action on an order: the user's selection of
// reports, whether it is an attempt (the seed's is_draft) and the
// notification object.
type Request struct {
	LabReportIDs []int64 `json:"lab_report_ids"`
	IsDraft      bool    `json:"is_draft"`
	Payload      Payload `json:"callout_payload"`
}

// Plan is everything one callout writes, decided before anything is written.
type Plan struct {
	At          time.Time    // when the callout happened: every written row carries it
	Status      string       // StatusDone or StatusAttempted
	Selected    []Report     // the included reports, in the order's report order
	Transitions []Transition // every report whose state is written
	Records     []Record     // unsaved callout records (IDs zero)
	Activity    Activity     // the activity entry (ID zero)
	Deliveries  []Delivery   // email and fax copies to send after commit (done callouts only)
	// Attempts are the attempt log rows, one per selected report, which
	// the store numbers and appends; nothing ever updates them.
	Attempts []AttemptEntry
}

// ActivityData is the structured part of a callout's activity entry.
type ActivityData struct {
	BillID       int64        `json:"bill_id"`
	LabReportIDs []int64      `json:"lab_report_ids"`
	CalloutFor   []string     `json:"callout_for"`
	Method       string       `json:"method"`
	Recipients   []string     `json:"recipients"`
	Comment      string       `json:"comment"`
	Outcome      string       `json:"outcome"`
	CalledAt     *time.Time   `json:"called_at,omitempty"`
	BackEntry    string       `json:"back_entry_reason,omitempty"`
	IsDraft      *bool        `json:"is_draft,omitempty"`
	Transitions  []Transition `json:"transitions"`
}

// NextState is the callout state table, the heart of the seed system. For a
// report of the order in state from, it returns the state after a callout
// that does (selected) or does not include it, and whether the report is
// written at all.
//
//	selected, done     → CALLOUT_DONE (2)
//	selected, attempt  → CALLOUT_ATTEMPTED (4)
//	excluded, at 4     → CALLOUT_PENDING (1): a stale attempt must look actionable again
//	excluded, other    → unchanged, not written
func NextState(from State, selected, draft bool) (State, bool) {
	switch {
	case selected && draft:
		return StateAttempted, true
	case selected:
		return StateDone, true
	case from == StateAttempted:
		return StatePending, true
	}
	return from, false
}

// Decide validates a callout request against the order as it is now and
// returns what to write. It does no I/O: the caller loads bill (all reports
// with their parameters) and the lab's settings, then saves the plan in the
// same transaction.
func Decide(p Principal, settings Settings, bill Bill, req Request, now time.Time) (Plan, error) {
	if len(req.LabReportIDs) == 0 {
		return Plan{}, Errorf(KindUnprocessable, "select at least one report to call out")
	}
	selected := make(map[int64]bool, len(req.LabReportIDs))
	for _, id := range req.LabReportIDs {
		r, ok := bill.Report(id)
		if !ok {
			return Plan{}, Errorf(KindUnprocessable, "report %d is not part of order %s", id, bill.LabBillID)
		}
		if err := checkActionable(r); err != nil {
			return Plan{}, err
		}
		selected[id] = true
	}
	pl := req.Payload
	pl.Comment = strings.TrimSpace(pl.Comment)
	pl.NotifiedPerson = strings.TrimSpace(pl.NotifiedPerson)
	if pl.NotifyToOthers != nil && *pl.NotifyToOthers == (OtherContact{}) {
		pl.NotifyToOthers = nil
	}
	if settings.MandatoryComments && pl.Comment == "" {
		return Plan{}, Errorf(KindUnprocessable, "this lab requires a comment on every callout")
	}
	if !req.IsDraft {
		if err := checkRecipients(bill, pl); err != nil {
			return Plan{}, err
		}
		if settings.RequireNotifiedPerson && pl.NotifiedPerson == "" {
			return Plan{}, Errorf(KindUnprocessable, "a done callout needs notified_person: the name and role of the person reached")
		}
	}
	outcome, err := ResolveOutcome(req.IsDraft, pl)
	if err != nil {
		return Plan{}, err
	}
	pl.Outcome = outcome
	calledAt, backEntry, err := BackEntry(pl, now)
	if err != nil {
		return Plan{}, err
	}
	pl.BackEntryReason = backEntry

	plan := Plan{At: now, Status: StatusDone}
	if req.IsDraft {
		plan.Status = StatusAttempted
	}
	for _, r := range bill.Reports {
		to, write := NextState(r.State, selected[r.ID], req.IsDraft)
		if !write {
			continue
		}
		plan.Transitions = append(plan.Transitions, Transition{LabReportID: r.ID, From: r.State, To: to})
		if selected[r.ID] {
			plan.Selected = append(plan.Selected, r)
		}
	}

	base := Record{
		BillID:          bill.ID,
		Status:          plan.Status,
		Methods:         pl.Methods(),
		Recipients:      pl.Recipients(),
		Comment:         pl.Comment,
		NotifiedPerson:  pl.NotifiedPerson,
		ReadBack:        pl.ReadBack,
		NotifyToOthers:  pl.NotifyToOthers,
		Outcome:         outcome,
		CalledAt:        calledAt,
		BackEntryReason: backEntry,
		CreatedBy:       p.User,
		CreatedAt:       now,
	}
	if req.IsDraft {
		// One order-level record; the selection is kept in meta so that the
		// screen can restore it.
		rec := base
		rec.Meta = &Meta{CalloutFor: testIDs(plan.Selected)}
		for _, r := range plan.Selected {
			rec.Snapshot = append(rec.Snapshot, snapshot(r)...)
		}
		plan.Records = []Record{rec}
	} else {
		for _, r := range plan.Selected {
			rec := base
			rec.LabReportID = &r.ID
			rec.Snapshot = snapshot(r)
			plan.Records = append(plan.Records, rec)
		}
	}

	if !req.IsDraft {
		plan.Deliveries = plannedDeliveries(bill, pl)
	}
	plan.Attempts = planAttempts(p, bill, plan, pl, req.IsDraft, outcome, calledAt, now, backEntry)
	plan.Activity = activity(p, bill, plan, pl, req.IsDraft, now, calledAt)
	return plan, nil
}

func checkActionable(r Report) error {
	switch {
	case r.Dismissed:
		return Errorf(KindUnprocessable, "report %d (%s) was dismissed and cannot be called out", r.ID, r.TestName)
	case !r.SampleCollected:
		return Errorf(KindUnprocessable, "report %d (%s) has no collected sample and cannot be called out", r.ID, r.TestName)
	case !r.State.Critical():
		return Errorf(KindUnprocessable, "report %d (%s) has no critical result (state %d) and cannot be called out", r.ID, r.TestName, r.State)
	}
	return nil
}

// checkRecipients refuses a done callout that would tell nobody, or that asks
// for an email or fax copy that cannot go anywhere: a copy the lab believes
// was sent but never was is worse than an error now.
func checkRecipients(bill Bill, pl Payload) error {
	email, fax := false, false
	for _, d := range plannedDeliveries(bill, pl) {
		email = email || d.Channel == ChannelEmail
		fax = fax || d.Channel == ChannelFax
	}
	switch {
	case len(pl.Recipients()) == 0 && pl.NotifyToOthers == nil:
		return Errorf(KindUnprocessable, "choose who was told: patient, referral or organization")
	case pl.SendEmail && !email:
		return Errorf(KindUnprocessable, "an email copy was requested but none of the chosen recipients has an email address")
	case pl.SendFax && !fax:
		return Errorf(KindUnprocessable, "a fax copy was requested but none of the chosen recipients has a fax number")
	}
	return nil
}

func testIDs(rs []Report) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.TestID)
	}
	return out
}

func snapshot(r Report) []SnapshotItem {
	out := []SnapshotItem{}
	for _, p := range CriticalParameters(r.Parameters) {
		out = append(out, SnapshotItem{
			LabReportID: r.ID, TestID: r.TestID, TestName: r.TestName,
			Name: p.Name, Value: p.Value, Unit: p.Unit, Flag: p.Flag,
			NormalLow: p.NormalLow, NormalHigh: p.NormalHigh,
			CriticalLow: p.CriticalLow, CriticalHigh: p.CriticalHigh,
			ReferenceRangeText: p.ReferenceRangeText,
		})
	}
	return out
}

// activity builds the entry in the seed system's text format, for example
// "Callout done by - Asha, Callout for - Serum Electrolytes, Method - Email,
// Recipients - Referral, Comment - Informed Dr. Rao".
func activity(p Principal, bill Bill, plan Plan, pl Payload, draft bool, now, calledAt time.Time) Activity {
	names := make([]string, 0, len(plan.Selected))
	ids := make([]int64, 0, len(plan.Selected))
	for _, r := range plan.Selected {
		names = append(names, r.TestName)
		ids = append(ids, r.ID)
	}
	method := strings.Join(pl.Methods(), ", ")
	recipients := pl.Recipients()

	verb := "Callout done by - "
	if draft {
		verb = "Callout Attempted by - "
	}
	// Every part is always there, empty or not, as in the seed system's
	// format string: readers of the log split on these labels.
	who := p.User
	if pl.BackEntryReason != "" {
		// Inside the first part, so readers splitting on the labels are
		// not misled; the entry's own time is the server's.
		who += " (entered later: called " + calledAt.Format("2006-01-02 15:04 UTC") + ", " + pl.BackEntryReason + ")"
	}
	parts := []string{
		verb + who,
		"Callout for - " + strings.Join(names, ", "),
		"Method - " + method,
		"Recipients - " + strings.Join(recipients, ", "),
		// Before the comment, which is free text and so stays last.
		"Outcome - " + OutcomeText(pl.Outcome),
		"Comment - " + pl.Comment,
	}

	data := ActivityData{
		BillID: bill.ID, LabReportIDs: ids, CalloutFor: names, Method: method,
		Recipients: recipients, Comment: pl.Comment, Outcome: pl.Outcome, Transitions: plan.Transitions,
	}
	if draft {
		data.IsDraft = &draft
	}
	if pl.BackEntryReason != "" {
		data.CalledAt, data.BackEntry = &calledAt, pl.BackEntryReason
	}
	raw, err := json.Marshal(data)
	if err != nil {
		// ActivityData holds only strings, numbers and bools.
		panic(fmt.Sprintf("marshal activity data: %v", err))
	}
	billID := bill.ID
	return Activity{
		BillID: &billID, CategoryID: CategoryCallout, User: p.User,
		CreatedAt: now, Message: strings.Join(parts, ", "), Data: raw,
	}
}
