package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
)

// runAttemptLog is the part of the suite about the immutable attempt log
// (issue 11 §1): every submit appends one row per selected report, numbered
// per report, and nothing can change or remove a row.
func runAttemptLog(t *testing.T, e Engine) {
	ctx := context.Background()

	t.Run("AttemptLogKeepsEveryAttemptNumberedPerReport", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 2))
		ids := ReportIDs(c)
		for range 3 {
			_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0]), nil)
			require.NoError(t, err)
		}
		// An attempt on the other report replaces the draft; the log keeps all.
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[1]), nil)
		require.NoError(t, err)
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, Done(ids[0]), nil)
		require.NoError(t, err)

		rows, err := f.Svc.Attempts(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Len(t, rows, 5)
		var first []int
		var kinds []string
		for _, a := range rows {
			if a.LabReportID == ids[0] {
				first = append(first, a.Number)
				kinds = append(kinds, a.Kind+"/"+a.Outcome)
			}
		}
		require.Equal(t, []int{1, 2, 3, 4}, first)
		require.Equal(t, []string{"attempt/no_answer", "attempt/no_answer", "attempt/no_answer", "done/read_back_confirmed"}, kinds)
		other := rows[3]
		require.Equal(t, ids[1], other.LabReportID)
		require.Equal(t, 1, other.Number)

		done := rows[4]
		require.Equal(t, "Asha", done.User)
		require.Equal(t, "Dr. Rao", done.NotifiedPerson)
		require.True(t, done.ReadBack)
		require.Equal(t, "Informed Dr. Rao", done.Comment)
		require.Equal(t, done.CalledAt, done.RecordedAt)
		require.Equal(t, []callout.AttemptRecipient{{Recipient: "Referral", Name: "Dr. Rao", Phone: "+1 555 0101", Email: "rao@clinic.example"}}, done.Recipients)
		require.Len(t, done.CriticalValues, 1)
		require.Equal(t, "7.1", done.CriticalValues[0].Value)
		require.Equal(t, "Potassium", done.CriticalValues[0].Name)
		require.Empty(t, rows[0].Recipients[0].Email, "an attempt asked for no copy: only the phone called is kept")
	})

	t.Run("ARefusedCalloutAddsNoAttemptRow", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{MandatoryComments: true})
		c := f.Create(t, Order("B1", 1))
		req := Attempt(c.Reports[0].ID)
		req.Payload.Comment = ""
		before := Dump(t, f.Store.DB)
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err))
		require.Equal(t, before, Dump(t, f.Store.DB))
		rows, err := f.Svc.Attempts(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Empty(t, rows)
	})

	t.Run("TheDatabaseRefusesToChangeOrRemoveAnAttemptRow", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1))
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(c.Reports[0].ID), nil)
		require.NoError(t, err)
		before := Dump(t, f.Store.DB)
		for _, q := range []string{
			`UPDATE callout_attempts SET outcome = 'left_message'`,
			`UPDATE callout_attempts SET comment = 'rewritten' WHERE id = (SELECT MIN(id) FROM callout_attempts)`,
			`DELETE FROM callout_attempts`,
		} {
			_, err := f.Store.DB.ExecContext(ctx, q)
			require.ErrorContains(t, err, "append-only", q)
		}
		if e.Name == "postgres" {
			_, err := f.Store.DB.ExecContext(ctx, `TRUNCATE callout_attempts`)
			require.ErrorContains(t, err, "append-only")
		}
		require.Equal(t, before, Dump(t, f.Store.DB))
	})

	t.Run("ConcurrentAttemptsAreNumberedWithoutGapsOrRepeats", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 3))
		ids := ReportIDs(c)
		var wg sync.WaitGroup
		errs := make(chan error, 24)
		for range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids...), nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		rows, err := f.Svc.Attempts(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Len(t, rows, 72)
		got := map[int64][]int{}
		for _, a := range rows {
			got[a.LabReportID] = append(got[a.LabReportID], a.Number)
		}
		want := make([]int, 24)
		for i := range want {
			want[i] = i + 1
		}
		for _, id := range ids {
			require.Equal(t, want, got[id], "report %d", id)
		}
	})

	t.Run("DepartmentLimitedUsersSeeOnlyTheirReportsAttempts", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		haem := callout.NewReport{TestID: "CBC", TestName: "Blood count", Department: "Haematology",
			Parameters: []callout.Parameter{{Name: "Platelets", Value: "12", Flag: "LL"}}}
		c := f.Create(t, Order("B1", 1, haem))
		ids := ReportIDs(c)
		h := callout.Principal{LabID: f.Lab, User: "Hana", Role: callout.RoleStaff, Departments: []string{"Haematology"}}
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0]), nil)
		require.NoError(t, err)
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0], ids[1]), nil)
		require.NoError(t, err)
		req := Done(ids[1])
		req.Payload.Comment = "Platelets told to Dr. Rao"
		_, err = f.Svc.Callout(ctx, h, c.ID, req, nil)
		require.NoError(t, err)

		rows, err := f.Svc.Attempts(ctx, h, c.ID)
		require.NoError(t, err)
		require.Len(t, rows, 2)
		for _, a := range rows {
			require.Equal(t, ids[1], a.LabReportID)
			for _, v := range a.CriticalValues {
				require.Equal(t, "Platelets", v.Name)
			}
		}
		require.True(t, rows[0].Restricted, "the attempt also covered a Biochemistry report")
		require.Empty(t, rows[0].Comment)
		require.False(t, rows[1].Restricted)
		require.Equal(t, "Platelets told to Dr. Rao", rows[1].Comment)

		all, err := f.Svc.Attempts(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Len(t, all, 4)
		require.Equal(t, "No answer", all[1].Comment)
	})

	t.Run("BackEntryKeepsBothTimesAndTheClockUsesCalledAt", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		_, err := f.Svc.UpdateSettings(ctx, f.Admin, callout.SettingsPatch{Targets: &map[string]int{"emergency": 15}})
		require.NoError(t, err)
		o := Order("B1", 2)
		o.PatientClass = "E"
		c := f.Create(t, o)
		ids := ReportIDs(c)
		b, err := f.Store.Bill(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		released := b.Reports[0].ResultedAt
		now := released.Add(6 * time.Hour)
		f.Svc.Now = func() time.Time { return now }

		req := Done(ids[0])
		calledAt := released.Add(9 * time.Minute)
		req.Payload.CalledAt = &calledAt
		req.Payload.BackEntryReason = "LIS downtime, paper log"
		before := Dump(t, f.Store.DB)
		bad := req
		bad.Payload.BackEntryReason = ""
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, bad, nil)
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err))
		future := now.Add(time.Minute)
		bad = req
		bad.Payload.CalledAt = &future
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, bad, nil)
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err))
		require.Equal(t, before, Dump(t, f.Store.DB))

		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
		require.NoError(t, err)
		rows, err := f.Svc.Attempts(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, calledAt, rows[0].CalledAt)
		require.Equal(t, now, rows[0].RecordedAt)
		require.Equal(t, "LIS downtime, paper log", rows[0].BackEntryReason)
		recs, err := f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Equal(t, calledAt, recs[0].CalledAt)
		require.Equal(t, now, recs[0].CreatedAt)
		require.Equal(t, "LIS downtime, paper log", recs[0].BackEntryReason)
		acts, err := f.Store.Activity(ctx, f.Lab, callout.ActivityFilter{BillID: &c.ID, Limit: 10})
		require.NoError(t, err)
		require.Contains(t, acts[0].Message, "Callout done by - Asha (entered later: called "+calledAt.Format("2006-01-02 15:04")+" UTC, LIS downtime, paper log), Callout for - ")

		v, err := f.Svc.Bill(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Equal(t, "E", v.PatientClass)
		k := v.Reports[0].Clock
		require.NotNil(t, k)
		require.Equal(t, released.Add(15*time.Minute), k.DueAt, "the emergency target")
		require.Equal(t, calledAt, *k.DoneAt)
		require.InDelta(t, 9.0, *k.MinutesToDone, 0.05)
		require.False(t, k.Overdue, "on time by the time of the call, not of its entry")
		pending := v.Reports[1].Clock
		require.Nil(t, pending.DoneAt)
		require.True(t, pending.Overdue)
	})
}
