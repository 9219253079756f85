package callout

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Attempt log kinds: every submit appends one row per selected report, of
// the kind of the submit.
const (
	AttemptKindAttempt = "attempt"
	AttemptKindDone    = "done"
)

// Outcomes of a callout. A done callout reached someone responsible, with
// or without read-back; an attempt did not (DOMAIN.md: "left message" is not
// a notification, nor is reaching someone who cannot take it).
const (
	OutcomeReadBackConfirmed = "read_back_confirmed"
	OutcomeReachedNoReadBack = "reached_no_read_back"
	OutcomeNoAnswer          = "no_answer"
	OutcomeLineBusy          = "line_busy"
	OutcomeLeftMessage       = "left_message"
	OutcomeWrongNumber       = "wrong_number"
	OutcomeNotResponsible    = "not_responsible"
	OutcomeOther             = "other"
)

// outcomeText is how the outcome reads in the activity log and on pages.
var outcomeText = map[string]string{
	OutcomeReadBackConfirmed: "read back confirmed",
	OutcomeReachedNoReadBack: "reached, no read-back",
	OutcomeNoAnswer:          "no answer",
	OutcomeLineBusy:          "line busy",
	OutcomeLeftMessage:       "left message",
	OutcomeWrongNumber:       "wrong number",
	OutcomeNotResponsible:    "reached someone not responsible",
	OutcomeOther:             "other",
}

// Done and attempt outcomes, in the order the screen offers them.
var (
	DoneOutcomes    = []string{OutcomeReadBackConfirmed, OutcomeReachedNoReadBack}
	AttemptOutcomes = []string{OutcomeNoAnswer, OutcomeLineBusy, OutcomeLeftMessage, OutcomeWrongNumber, OutcomeNotResponsible, OutcomeOther}
)

// ResolveOutcome checks a submit's outcome against its kind and returns it,
// derived when the payload has none: a done callout is
// read_back_confirmed (which needs read_back true) or
// reached_no_read_back, from read_back when omitted; an attempt is one of
// AttemptOutcomes, no_answer when omitted, and other needs a comment.
func ResolveOutcome(draft bool, pl Payload) (string, error) {
	o := strings.TrimSpace(pl.Outcome)
	if draft {
		switch {
		case o == "":
			return OutcomeNoAnswer, nil
		case !slices.Contains(AttemptOutcomes, o):
			return "", Errorf(KindUnprocessable, "the outcome of an attempt must be one of %s, not %q", strings.Join(AttemptOutcomes, ", "), o)
		case o == OutcomeOther && strings.TrimSpace(pl.Comment) == "":
			return "", Errorf(KindUnprocessable, "an attempt with outcome other needs a comment saying what happened")
		}
		return o, nil
	}
	switch {
	case o == "" && pl.ReadBack:
		return OutcomeReadBackConfirmed, nil
	case o == "":
		return OutcomeReachedNoReadBack, nil
	case !slices.Contains(DoneOutcomes, o):
		return "", Errorf(KindUnprocessable, "the outcome of a done callout must be one of %s, not %q", strings.Join(DoneOutcomes, ", "), o)
	case o == OutcomeReadBackConfirmed && !pl.ReadBack:
		return "", Errorf(KindUnprocessable, "outcome read_back_confirmed needs read_back: true")
	case o == OutcomeReachedNoReadBack && pl.ReadBack:
		return "", Errorf(KindUnprocessable, "outcome reached_no_read_back contradicts read_back: true")
	}
	return o, nil
}

// OutcomeText returns the outcome as people read it ("no answer").
func OutcomeText(o string) string {
	if t, ok := outcomeText[o]; ok {
		return t
	}
	return o
}

// AttemptEntry is one row of the attempt log: one report's part in one submit.
// Rows are never updated or deleted; Number counts the report's rows, 1, 2,
// 3 … in the order they were recorded.
type AttemptEntry struct {
	ID              int64              `json:"id"`
	BillID          int64              `json:"-"`
	LabReportID     int64              `json:"lab_report_id"`
	Number          int                `json:"attempt_number"`
	Kind            string             `json:"kind"`
	Outcome         string             `json:"outcome"`
	CalledAt        time.Time          `json:"called_at"`
	RecordedAt      time.Time          `json:"recorded_at"`
	User            string             `json:"user"`
	Recipients      []AttemptRecipient `json:"recipients"`
	NotifiedPerson  string             `json:"notified_person"`
	ReadBack        bool               `json:"read_back"`
	Comment         string             `json:"comment"`
	BackEntryReason string             `json:"back_entry_reason"`
	CriticalValues  []SnapshotItem     `json:"critical_values"`
	// Restricted: the submit also covered reports of departments the
	// reader does not see, and its comment is withheld. Never stored.
	Restricted bool `json:"restricted,omitempty"`
}

// AttemptRecipient is who a callout was for, with the contact details used
// as the order showed them at that moment: the phone number called, and the
// email address or fax number when a copy was asked for.
type AttemptRecipient struct {
	Recipient string `json:"recipient"` // Patient, Referral, Organization or Other
	Name      string `json:"name,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Email     string `json:"email,omitempty"`
	Fax       string `json:"fax,omitempty"`
}

// attemptRecipients lists the chosen recipients with the contact used.
func attemptRecipients(b Bill, pl Payload) []AttemptRecipient {
	out := []AttemptRecipient{}
	add := func(who string, c Contact) {
		r := AttemptRecipient{Recipient: who, Name: c.Name, Phone: c.Phone}
		if pl.SendEmail {
			r.Email = c.Email
		}
		if pl.SendFax {
			r.Fax = c.Fax
		}
		out = append(out, r)
	}
	for _, who := range pl.Recipients() {
		switch who {
		case RecipientPatient:
			add(who, b.Patient)
		case RecipientReferral:
			add(who, b.Referral)
		case RecipientOrganization:
			add(who, b.Organization)
		}
	}
	if o := pl.NotifyToOthers; o != nil {
		add(RecipientOther, Contact{Name: o.Name, Phone: o.ContactNumber, Email: o.Email, Fax: o.Fax})
	}
	return out
}

// planAttempts returns the attempt log rows of a submit, one per selected
// report, unnumbered: the store numbers them in the transaction that
// writes them, under the order's lock.
func planAttempts(p Principal, b Bill, plan Plan, pl Payload, draft bool, outcome string, calledAt, recordedAt time.Time, backEntry string) []AttemptEntry {
	kind := AttemptKindDone
	if draft {
		kind = AttemptKindAttempt
	}
	recipients := attemptRecipients(b, pl)
	out := make([]AttemptEntry, 0, len(plan.Selected))
	for _, r := range plan.Selected {
		out = append(out, AttemptEntry{
			BillID: b.ID, LabReportID: r.ID, Kind: kind, Outcome: outcome,
			CalledAt: calledAt, RecordedAt: recordedAt, User: p.User,
			Recipients: recipients, NotifiedPerson: pl.NotifiedPerson, ReadBack: pl.ReadBack,
			Comment: pl.Comment, BackEntryReason: backEntry, CriticalValues: snapshot(r),
		})
	}
	return out
}

// VisibleAttempts returns the rows of order b's attempt log that p may see:
// those of reports p sees. A row of a submit that also covered reports p
// does not see loses its comment, as VisibleRecord cuts records. b is the
// order with all its reports; rows are all its log rows.
func VisibleAttempts(p Principal, b Bill, rows []AttemptEntry) []AttemptEntry {
	out := []AttemptEntry{}
	if len(p.Departments) == 0 {
		return append(out, rows...)
	}
	sees := func(id int64) bool {
		r, ok := b.Report(id)
		return ok && p.Sees(r.Department)
	}
	// The rows of one submit share the user and the server's time.
	type key struct {
		user string
		at   int64
	}
	hidden := map[key]bool{}
	for _, a := range rows {
		if !sees(a.LabReportID) {
			hidden[key{a.User, a.RecordedAt.UnixMicro()}] = true
		}
	}
	for _, a := range rows {
		if !sees(a.LabReportID) {
			continue
		}
		if hidden[key{a.User, a.RecordedAt.UnixMicro()}] {
			a.Comment, a.Restricted = "", true
		}
		out = append(out, a)
	}
	return out
}

// AttemptLine is one row of the order page's history, numbered per report:
// "Potassium — attempt 2 of 2, no answer, 06:41, asha".
type AttemptLine struct {
	AttemptEntry
	TestName string
	Of       int // the report's number of rows
}

// AttemptLines numbers the rows per report for the history, newest first.
func AttemptLines(b Bill, rows []AttemptEntry) []AttemptLine {
	total := map[int64]int{}
	for _, a := range rows {
		total[a.LabReportID]++
	}
	out := make([]AttemptLine, 0, len(rows))
	for i := len(rows) - 1; i >= 0; i-- {
		a := rows[i]
		name := fmt.Sprintf("report %d", a.LabReportID)
		if r, ok := b.Report(a.LabReportID); ok {
			name = r.TestName
		}
		out = append(out, AttemptLine{AttemptEntry: a, TestName: name, Of: total[a.LabReportID]})
	}
	return out
}

// Summary is the line as the history shows it, without the time and user.
func (l AttemptLine) Summary() string {
	kind := "attempt"
	if l.Kind == AttemptKindDone {
		kind = "done"
	}
	return strings.Join([]string{
		fmt.Sprintf("%s — %s %d of %d", l.TestName, kind, l.Number, l.Of),
		OutcomeText(l.Outcome),
	}, ", ")
}
