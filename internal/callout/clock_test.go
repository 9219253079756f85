package callout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTargetMinutes(t *testing.T) {
	t.Parallel()
	set := Settings{TargetMinutes: 60, Targets: map[string]int{ClassEmergency: 15, ClassInpatient: 30}}
	for class, want := range map[string]int{"E": 15, "I": 30, "O": 60, "P": 60, "": 60} {
		require.Equal(t, want, TargetMinutes(set, class), class)
	}
	require.Equal(t, DefaultTargetMinutes, TargetMinutes(Settings{}, ""))
}

func TestReportClock(t *testing.T) {
	t.Parallel()
	rel := time.Date(2026, 11, 3, 6, 0, 0, 0, time.UTC)
	at := func(min float64) time.Time { return rel.Add(time.Duration(min * float64(time.Minute))) }
	row := func(kind string, min float64) AttemptEntry {
		return AttemptEntry{LabReportID: 1, Kind: kind, CalledAt: at(min)}
	}
	fp := func(v float64) *float64 { return &v }
	tp := func(min float64) *time.Time { t := at(min); return &t }
	tests := []struct {
		name   string
		state  State
		rows   []AttemptEntry
		now    float64
		want   Clock
		target int
	}{
		{"pending, before due", StatePending, nil, 29, Clock{DueAt: at(30)}, 30},
		{"pending, exactly due is not overdue", StatePending, nil, 30, Clock{DueAt: at(30)}, 30},
		{"pending, a second past due", StatePending, nil, 30.02, Clock{DueAt: at(30), Overdue: true}, 30},
		{"attempted, past due", StateAttempted, []AttemptEntry{row("attempt", 5)}, 45,
			Clock{DueAt: at(30), FirstAttemptAt: tp(5), Overdue: true}, 30},
		{"done within target after attempts", StateDone, []AttemptEntry{row("attempt", 5), row("attempt", 12), row("done", 20)}, 500,
			Clock{DueAt: at(30), FirstAttemptAt: tp(5), DoneAt: tp(20), MinutesToDone: fp(20)}, 30},
		{"done exactly at due", StateDone, []AttemptEntry{row("done", 30)}, 500,
			Clock{DueAt: at(30), FirstAttemptAt: tp(30), DoneAt: tp(30), MinutesToDone: fp(30)}, 30},
		{"done late", StateDone, []AttemptEntry{row("done", 41)}, 500,
			Clock{DueAt: at(30), FirstAttemptAt: tp(41), DoneAt: tp(41), MinutesToDone: fp(41), Overdue: true}, 30},
		{"called before release counts as on time", StateDone, []AttemptEntry{row("done", -3)}, 500,
			Clock{DueAt: at(30), FirstAttemptAt: tp(-3), DoneAt: tp(-3), MinutesToDone: fp(-3)}, 30},
		{"the first done call counts, not a later one", StateDone, []AttemptEntry{row("done", 50), row("done", 10)}, 500,
			Clock{DueAt: at(30), FirstAttemptAt: tp(10), DoneAt: tp(10), MinutesToDone: fp(10)}, 30},
		{"back-entered call counts by called_at", StateDone, []AttemptEntry{{LabReportID: 1, Kind: "done", CalledAt: at(12), RecordedAt: at(300)}}, 500,
			Clock{DueAt: at(30), FirstAttemptAt: tp(12), DoneAt: tp(12), MinutesToDone: fp(12)}, 30},
		{"emergency target", StatePending, nil, 16, Clock{DueAt: at(15), Overdue: true}, 15},
		{"done before the log: unknown, not late", StateDone, nil, 500, Clock{DueAt: at(30)}, 30},
		{"another report's rows do not count", StatePending, []AttemptEntry{{LabReportID: 2, Kind: "done", CalledAt: at(1)}}, 10, Clock{DueAt: at(30)}, 30},
	}
	for _, tc := range tests {
		r := Report{ID: 1, State: tc.state, ResultedAt: rel}
		require.Equal(t, tc.want, ReportClock(r, tc.target, tc.rows, at(tc.now)), tc.name)
	}
}

func TestBackEntry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	tp := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	tests := []struct {
		name    string
		pl      Payload
		want    time.Time
		wantErr string
	}{
		{"now", Payload{}, now, ""},
		{"back-entered", Payload{CalledAt: tp(-5 * time.Hour), BackEntryReason: "LIS downtime"}, now.Add(-5 * time.Hour), ""},
		{"72 hours exactly", Payload{CalledAt: tp(-72 * time.Hour), BackEntryReason: "downtime"}, now.Add(-72 * time.Hour), ""},
		{"more than 72 hours", Payload{CalledAt: tp(-72*time.Hour - time.Second), BackEntryReason: "downtime"}, now, "72 hours"},
		{"future", Payload{CalledAt: tp(time.Second), BackEntryReason: "downtime"}, now, "in the future"},
		{"without a reason", Payload{CalledAt: tp(-time.Hour), BackEntryReason: " "}, now, "needs back_entry_reason"},
		{"a reason without a time", Payload{BackEntryReason: "downtime"}, now, "needs called_at"},
	}
	for _, tc := range tests {
		got, _, err := BackEntry(tc.pl, now)
		if tc.wantErr != "" {
			require.Equal(t, KindUnprocessable, ErrorKind(err), tc.name)
			require.ErrorContains(t, err, tc.wantErr, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}
