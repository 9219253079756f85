package callout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestResolveOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		draft   bool
		pl      Payload
		want    string
		wantErr string
	}{
		{"done, read back, derived", false, Payload{ReadBack: true}, OutcomeReadBackConfirmed, ""},
		{"done, no read back, derived", false, Payload{}, OutcomeReachedNoReadBack, ""},
		{"done, confirmed", false, Payload{ReadBack: true, Outcome: "read_back_confirmed"}, OutcomeReadBackConfirmed, ""},
		{"done, confirmed without read back", false, Payload{Outcome: "read_back_confirmed"}, "", "needs read_back: true"},
		{"done, reached, read back contradicts", false, Payload{ReadBack: true, Outcome: "reached_no_read_back"}, "", "contradicts"},
		{"done, reached", false, Payload{Outcome: "reached_no_read_back"}, OutcomeReachedNoReadBack, ""},
		{"done, an attempt outcome", false, Payload{Outcome: "no_answer"}, "", "outcome of a done callout"},
		{"attempt, derived", true, Payload{}, OutcomeNoAnswer, ""},
		{"attempt, busy", true, Payload{Outcome: "line_busy"}, OutcomeLineBusy, ""},
		{"attempt, left message", true, Payload{Outcome: "left_message"}, OutcomeLeftMessage, ""},
		{"attempt, wrong number", true, Payload{Outcome: "wrong_number"}, OutcomeWrongNumber, ""},
		{"attempt, not responsible", true, Payload{Outcome: "not_responsible"}, OutcomeNotResponsible, ""},
		{"attempt, other with comment", true, Payload{Outcome: "other", Comment: "ward phone broken"}, OutcomeOther, ""},
		{"attempt, other without comment", true, Payload{Outcome: "other", Comment: "  "}, "", "needs a comment"},
		{"attempt, a done outcome", true, Payload{Outcome: "read_back_confirmed", ReadBack: true}, "", "outcome of an attempt"},
		{"attempt, unknown", true, Payload{Outcome: "NO_ANSWER"}, "", "outcome of an attempt"},
	}
	for _, tc := range tests {
		got, err := ResolveOutcome(tc.draft, tc.pl)
		if tc.wantErr != "" {
			require.Equal(t, KindUnprocessable, ErrorKind(err), tc.name)
			require.ErrorContains(t, err, tc.wantErr, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestDecideOutcomeAndNotifiedPerson(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 3, 6, 41, 0, 0, time.UTC)
	p := Principal{LabID: 1, User: "asha"}
	bill := Bill{ID: 7, LabBillID: "B7", Referral: Contact{Name: "Dr. Rao", Phone: "555 0101", Email: "rao@x.example"},
		Reports: []Report{{ID: 10, TestID: "K", TestName: "Potassium", State: StatePending, SampleCollected: true,
			Parameters: []Parameter{{Name: "Potassium", Value: "7.1", Flag: "HH"}}}}}
	done := Request{LabReportIDs: []int64{10}, Payload: Payload{IsReferral: true, ReadBack: true}}

	_, err := Decide(p, Settings{RequireNotifiedPerson: true}, bill, done, now)
	require.ErrorContains(t, err, "needs notified_person")
	plan, err := Decide(p, Settings{}, bill, done, now)
	require.NoError(t, err, "the lab turned the rule off")
	require.Equal(t, OutcomeReadBackConfirmed, plan.Records[0].Outcome)

	done.Payload.NotifiedPerson = "Dr. Rao, registrar"
	plan, err = Decide(p, Settings{RequireNotifiedPerson: true}, bill, done, now)
	require.NoError(t, err)
	require.Contains(t, plan.Activity.Message, "Outcome - read back confirmed, Comment - ")
	require.Len(t, plan.Attempts, 1)
	a := plan.Attempts[0]
	require.Equal(t, AttemptEntry{BillID: 7, LabReportID: 10, Kind: AttemptKindDone, Outcome: OutcomeReadBackConfirmed,
		CalledAt: now, RecordedAt: now, User: "asha",
		Recipients:     []AttemptRecipient{{Recipient: RecipientReferral, Name: "Dr. Rao", Phone: "555 0101"}},
		NotifiedPerson: "Dr. Rao, registrar", ReadBack: true, CriticalValues: a.CriticalValues}, a)
	require.Equal(t, "7.1", a.CriticalValues[0].Value)

	attempt := Request{LabReportIDs: []int64{10}, IsDraft: true, Payload: Payload{IsReferral: true, Outcome: "line_busy"}}
	plan, err = Decide(p, Settings{RequireNotifiedPerson: true}, bill, attempt, now)
	require.NoError(t, err, "an attempt reached nobody")
	require.Equal(t, AttemptKindAttempt, plan.Attempts[0].Kind)
	require.Equal(t, OutcomeLineBusy, plan.Attempts[0].Outcome)
	require.Contains(t, plan.Activity.Message, "Outcome - line busy")
}

func TestVisibleAttemptsAndLines(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 3, 6, 30, 0, 0, time.UTC)
	t2 := t1.Add(11 * time.Minute)
	bill := Bill{ID: 1, Reports: []Report{{ID: 10, TestName: "Potassium", Department: "Bio"}, {ID: 11, TestName: "Platelets", Department: "Haem"}}}
	rows := []AttemptEntry{
		{ID: 1, LabReportID: 10, Number: 1, Kind: "attempt", Outcome: "no_answer", User: "asha", RecordedAt: t1, CalledAt: t1, Comment: "both"},
		{ID: 2, LabReportID: 11, Number: 1, Kind: "attempt", Outcome: "no_answer", User: "asha", RecordedAt: t1, CalledAt: t1, Comment: "both"},
		{ID: 3, LabReportID: 10, Number: 2, Kind: "attempt", Outcome: "line_busy", User: "asha", RecordedAt: t2, CalledAt: t2, Comment: "K only"},
	}
	require.Equal(t, rows, VisibleAttempts(Principal{}, bill, rows))
	bio := VisibleAttempts(Principal{Departments: []string{"Bio"}}, bill, rows)
	require.Len(t, bio, 2)
	require.True(t, bio[0].Restricted)
	require.Empty(t, bio[0].Comment)
	require.False(t, bio[1].Restricted)
	require.Equal(t, "K only", bio[1].Comment)
	require.Empty(t, VisibleAttempts(Principal{Departments: []string{"Micro"}}, bill, rows))

	lines := AttemptLines(bill, rows)
	require.Equal(t, []string{"Potassium — attempt 2 of 2, line busy", "Platelets — attempt 1 of 1, no answer", "Potassium — attempt 1 of 2, no answer"},
		[]string{lines[0].Summary(), lines[1].Summary(), lines[2].Summary()})
}
