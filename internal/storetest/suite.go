package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
)

// Run is the behavioural suite: the seed system's rules and the store's
// promises, each a subtest, for engine e.
func Run(t *testing.T, e Engine) {
	ctx := context.Background()

	t.Run("NewOrderStartsInStatesFromItsParameters", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1,
			callout.NewReport{TestID: "GLU", TestName: "Glucose", Parameters: []callout.Parameter{{Name: "Glucose", Value: "120", Flag: "H"}}},
			callout.NewReport{TestID: "CBC", TestName: "Blood count", Parameters: []callout.Parameter{{Name: "Hb", Value: "13"}}},
		))
		require.Equal(t, "B1", c.LabBillID)
		require.Len(t, c.Reports, 3)
		require.Equal(t, []callout.State{callout.StatePending, callout.StateAbnormal, callout.StateNormal},
			[]callout.State{c.Reports[0].State, c.Reports[1].State, c.Reports[2].State})
		b, err := f.Store.Bill(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Equal(t, "Maria Müller", b.Patient.Name)
		require.Len(t, b.Reports[0].Parameters, 2)
		require.Equal(t, "Potassium", b.Reports[0].Parameters[0].Name)
		require.InDelta(t, 6.5, *b.Reports[0].Parameters[0].CriticalHigh, 0)
		require.Nil(t, b.Reports[1].Parameters[0].NormalLow)
	})

	t.Run("DuplicateOrderIDIsAConflictInTheSameLabOnly", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		f.Create(t, Order("B1", 1))
		before := Dump(t, f.Store.DB)
		_, err := f.Svc.CreateOrder(ctx, f.Staff, Order("B1", 2), nil)
		require.Equal(t, callout.KindConflict, callout.ErrorKind(err))
		require.Equal(t, before, Dump(t, f.Store.DB))
		other := f.AddLab(t, callout.Settings{Name: "Other"})
		_, err = f.Svc.CreateOrder(ctx, callout.Principal{LabID: other, User: "x", Role: callout.RoleStaff}, Order("B1", 1), nil)
		require.NoError(t, err)
	})

	t.Run("DoneMovesSelectedToDoneAndStaleAttemptsToPending", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 4))
		ids := ReportIDs(c)
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0], ids[1]), nil)
		require.NoError(t, err)
		before, err := f.Store.Bill(ctx, f.Lab, c.ID)
		require.NoError(t, err)

		res, err := f.Svc.Callout(ctx, f.Staff, c.ID, Done(ids[1], ids[2]), nil)
		require.NoError(t, err)
		require.Equal(t, callout.StatusDone, res.Status)
		require.Len(t, res.Callouts, 2)
		require.Equal(t, ids[1], *res.Callouts[0].LabReportID)
		require.Equal(t, ids[2], *res.Callouts[1].LabReportID)

		require.Equal(t, map[int64]callout.State{
			ids[0]: callout.StatePending, // attempted, not selected → pending again
			ids[1]: callout.StateDone, ids[2]: callout.StateDone,
			ids[3]: callout.StatePending, // untouched
		}, f.States(t, c.ID))
		changed := map[int64]callout.State{}
		for _, r := range res.Reports {
			changed[r.ID] = r.State
		}
		require.Equal(t, map[int64]callout.State{ids[0]: 1, ids[1]: 2, ids[2]: 2}, changed)

		after, err := f.Store.Bill(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		for i := range after.Reports {
			if i == 3 {
				require.Equal(t, before.Reports[i].LastUpdated, after.Reports[i].LastUpdated, "an untouched report keeps its last_updated")
			} else {
				require.True(t, after.Reports[i].LastUpdated.After(before.Reports[i].LastUpdated), "report %d gets a new last_updated", i)
				require.Equal(t, res.Reports[0].LastUpdated, after.Reports[i].LastUpdated)
			}
		}

		recs, err := f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 2, "one record per selected report; the draft is gone")
		for _, r := range recs {
			require.Equal(t, callout.StatusDone, r.Status)
			require.NotNil(t, r.LabReportID)
			require.Equal(t, []string{"Email"}, r.Methods)
			require.Equal(t, []string{"Referral"}, r.Recipients)
			require.Equal(t, "Asha", r.CreatedBy)
			require.True(t, r.ReadBack)
			require.Equal(t, "Dr. Rao", r.NotifiedPerson)
			require.Nil(t, r.Meta)
			require.Len(t, r.Snapshot, 1)
			require.Equal(t, "7.1", r.Snapshot[0].Value)
		}
		d, err := f.Store.Draft(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Nil(t, d, "a done callout never coexists with a draft")
	})

	t.Run("AttemptWritesOneOrderLevelDraft", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 3))
		ids := ReportIDs(c)
		res, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[2], ids[0]), nil)
		require.NoError(t, err)
		require.Equal(t, callout.StatusAttempted, res.Status)
		require.Len(t, res.Callouts, 1)
		require.Nil(t, res.Callouts[0].LabReportID)
		require.Equal(t, map[int64]callout.State{ids[0]: 4, ids[1]: 1, ids[2]: 4}, f.States(t, c.ID))

		recs, err := f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Nil(t, recs[0].LabReportID)
		require.Equal(t, callout.StatusAttempted, recs[0].Status)
		require.Equal(t, &callout.Meta{CalloutFor: []string{"T1", "T3"}}, recs[0].Meta)
		require.Len(t, recs[0].Snapshot, 2)

		// A second attempt on another selection replaces the draft and sends
		// the excluded attempted report back to pending.
		res2, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[1]), nil)
		require.NoError(t, err)
		require.Equal(t, map[int64]callout.State{ids[0]: 1, ids[1]: 4, ids[2]: 1}, f.States(t, c.ID))
		recs, err = f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1, "an order has at most one draft")
		require.Equal(t, res2.Callouts[0].ID, recs[0].ID)
		require.Equal(t, []string{"T2"}, recs[0].Meta.CalloutFor)

		// Both attempts stay in the activity log.
		acts, err := f.Store.Activity(ctx, f.Lab, callout.ActivityFilter{BillID: &c.ID, Limit: 10})
		require.NoError(t, err)
		require.Len(t, acts, 2)
		require.Contains(t, acts[0].Message, "Callout Attempted by - Asha")
		require.Contains(t, acts[1].Message, "Electrolytes 1, Electrolytes 3")
	})

	t.Run("CallingOutADoneReportAgainIsAllowed", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1))
		id := c.Reports[0].ID
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Done(id), nil)
		require.NoError(t, err)
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, Done(id), nil)
		require.NoError(t, err)
		recs, err := f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 2)
		require.Equal(t, callout.StateDone, f.States(t, c.ID)[id])
	})

	t.Run("ActivityEntryInTheSeedFormat", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 2))
		ids := ReportIDs(c)
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0]), nil)
		require.NoError(t, err)
		req := Done(ids[1])
		req.Payload.SendFax = true
		req.Payload.IsOrganization = true
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
		require.NoError(t, err)
		acts, err := f.Store.Activity(ctx, f.Lab, callout.ActivityFilter{BillID: &c.ID, Limit: 10})
		require.NoError(t, err)
		require.Len(t, acts, 2)
		a := acts[0]
		require.Equal(t, callout.CategoryCallout, a.CategoryID)
		require.Equal(t, "Asha", a.User)
		require.Equal(t, "Callout done by - Asha, Callout for - Electrolytes 2, Method - Fax, Email, Recipients - Referral, Organization, Outcome - read back confirmed, Comment - Informed Dr. Rao", a.Message)
		var data callout.ActivityData
		require.NoError(t, json.Unmarshal(a.Data, &data))
		require.Equal(t, c.ID, data.BillID)
		require.Equal(t, []int64{ids[1]}, data.LabReportIDs)
		require.Equal(t, []string{"Electrolytes 2"}, data.CalloutFor)
		require.Nil(t, data.IsDraft)
		require.ElementsMatch(t, []callout.Transition{{LabReportID: ids[0], From: 4, To: 1}, {LabReportID: ids[1], From: 1, To: 2}}, data.Transitions)
		require.NoError(t, json.Unmarshal(acts[1].Data, &data))
		require.NotNil(t, data.IsDraft)
		require.True(t, *data.IsDraft)
	})

	t.Run("RefusedCalloutsChangeNothing", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1,
			callout.NewReport{TestID: "N", Parameters: []callout.Parameter{{Name: "Hb", Value: "13"}}},
			callout.NewReport{TestID: "D", Dismissed: ptr(true), Parameters: []callout.Parameter{Potassium("7.5")}},
			callout.NewReport{TestID: "U", SampleCollected: ptr(false), Parameters: []callout.Parameter{Potassium("7.5")}},
		))
		noContacts := f.Create(t, callout.NewOrder{LabBillID: "B2", Patient: callout.Contact{Name: "Nobody"},
			Reports: []callout.NewReport{{TestID: "K", Parameters: []callout.Parameter{Potassium("1.9")}}}})
		ids := ReportIDs(c)
		other := f.Create(t, Order("B3", 1))
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0]), nil)
		require.NoError(t, err)

		withPayload := func(pl callout.Payload) callout.Request {
			return callout.Request{LabReportIDs: []int64{ids[0]}, Payload: pl}
		}
		cases := []struct {
			name string
			bill int64
			req  callout.Request
			kind callout.Kind
		}{
			{"empty selection", c.ID, callout.Request{Payload: Done().Payload}, callout.KindUnprocessable},
			{"report of another order", c.ID, Done(other.Reports[0].ID), callout.KindUnprocessable},
			{"unknown report", c.ID, Done(999999), callout.KindUnprocessable},
			{"not critical", c.ID, Done(ids[0], ids[1]), callout.KindUnprocessable},
			{"dismissed", c.ID, Done(ids[2]), callout.KindUnprocessable},
			{"not collected", c.ID, Attempt(ids[3]), callout.KindUnprocessable},
			{"no recipient", c.ID, withPayload(callout.Payload{SendEmail: true}), callout.KindUnprocessable},
			{"fax to the patient only", c.ID, withPayload(callout.Payload{SendFax: true, IsPatient: true}), callout.KindUnprocessable},
			{"email without any address", noContacts.ID, callout.Request{LabReportIDs: []int64{noContacts.Reports[0].ID}, Payload: callout.Payload{SendEmail: true, IsReferral: true}}, callout.KindUnprocessable},
			{"unknown order", 999999, Done(ids[0]), callout.KindNotFound},
		}
		for _, tc := range cases {
			before := Dump(t, f.Store.DB)
			_, err := f.Svc.Callout(ctx, f.Staff, tc.bill, tc.req, nil)
			require.Error(t, err, tc.name)
			require.Equal(t, tc.kind, callout.ErrorKind(err), "%s: %v", tc.name, err)
			require.Equal(t, before, Dump(t, f.Store.DB), "%s changed rows", tc.name)
		}
	})

	t.Run("MandatoryCommentIsEnforced", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{MandatoryComments: true})
		c := f.Create(t, Order("B1", 1))
		before := Dump(t, f.Store.DB)
		req := Done(c.Reports[0].ID)
		req.Payload.Comment = "   "
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err))
		require.Equal(t, before, Dump(t, f.Store.DB))
		req.Payload.Comment = "Told Dr. Rao"
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
		require.NoError(t, err)
	})

	t.Run("AFailedWriteRollsBackEverything", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 2))
		ids := ReportIDs(c)
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0]), nil)
		require.NoError(t, err)
		before := Dump(t, f.Store.DB)
		// A plan whose records break a constraint fails after the states were
		// updated and the draft deleted: all of it must roll back.
		_, err = f.Store.Callout(ctx, f.Lab, c.ID, func(set callout.Settings, b callout.Bill) (callout.Plan, error) {
			p, err := callout.Decide(f.Staff, set, b, Done(ids[1]), callout.Now())
			p.Records[0].Status = "bogus"
			return p, err
		}, &callout.Idempotency{Key: "k1", Hash: "h"})
		require.Error(t, err)
		require.Equal(t, before, Dump(t, f.Store.DB))
	})

	t.Run("ReadsAndWritesTakeTheSameStatementsForOneOrAHundredReports", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		count := func(n int, draft bool) int64 {
			c := f.Create(t, Order("N"+time.Now().Format("150405.000000000"), n))
			ids := ReportIDs(c)
			req := Done(ids...)
			if draft {
				req = Attempt(ids...)
			}
			before := f.Store.Queries.Load()
			_, err := f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
			require.NoError(t, err)
			return f.Store.Queries.Load() - before
		}
		one, hundred := count(1, false), count(100, false)
		require.Equal(t, one, hundred, "done callout statements")
		require.LessOrEqual(t, one, int64(11), "BEGIN, 3 reads, 6 writes (states, draft, records, deliveries, attempt log, activity), COMMIT")
		require.Equal(t, count(1, true), count(100, true), "attempt statements")
	})

	t.Run("AMaximumSizeOrderTakesTheStatementsOfASmallOne", func(t *testing.T) {
		// Issue 8 §3: an order of 500 reports × 45 results took ~20 s on
		// SQLite — a multi-row INSERT whose `$N` parameters the driver looks
		// up in quadratic time, in 9 statements — holding every lab's writer.
		// Rows now travel as one JSON parameter: one INSERT of reports, one
		// of results, whatever the size.
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		count := func(o callout.NewOrder) int64 {
			before := f.Store.Queries.Load()
			f.Create(t, o)
			return f.Store.Queries.Load() - before
		}
		small := count(Order("SMALL", 1))
		big := MaxOrder("BIG")
		require.Equal(t, small, count(big), "statements to store the largest order allowed")
		c, err := f.Svc.FindBills(ctx, f.Staff, "BIG")
		require.NoError(t, err)
		b, err := f.Store.Bill(ctx, f.Lab, c[0].ID)
		require.NoError(t, err)
		require.Len(t, b.Reports, callout.MaxReportsPerOrder)
		n := 0
		for i, r := range b.Reports {
			require.Equal(t, big.Reports[i].TestID, r.TestID)
			require.Equal(t, callout.StatePending, r.State)
			for j, p := range r.Parameters {
				require.Equal(t, big.Reports[i].Parameters[j].Name, p.Name, "results keep their order")
			}
			n += len(r.Parameters)
		}
		require.Equal(t, callout.MaxParametersPerOrder, n)
	})

	t.Run("BulkInsertsKeepEveryValueExactly", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		at := callout.Now().Add(-90*time.Minute - 123456*time.Microsecond)
		floats := []float64{0.1, 1e-300, 1.7976931348623157e308, -3.5, 123456.789012345, 5e-324, 2.2250738585072014e-308, 1.0000000000000002, 7}
		var ps []callout.Parameter
		for i, v := range floats {
			ps = append(ps, callout.Parameter{Name: fmt.Sprintf("F%d", i), Value: "1", NormalLow: ptr(v), NormalHigh: ptr(v),
				CriticalLow: ptr(min(v, -v)), CriticalHigh: ptr(max(v, -v))})
		}
		ps = append(ps,
			callout.Parameter{Name: `Quote "and" back\slash`, Value: "line 1\n\tline 2 ünïcödé 😀 <b>&amp;</b>", Unit: "µmol/L", Flag: "HH"},
			callout.Parameter{Name: "'; DROP TABLE bills; --", Value: "'", Unit: "%", Flag: ""})
		o := callout.NewOrder{LabBillID: "EXACT", Patient: callout.Contact{Name: "Maria"}, Reports: []callout.NewReport{
			{TestID: "A", TestName: "Alpha ü", Department: "Biochemistry", Parameters: ps, ResultedAt: &at},
			{TestID: "B", Dismissed: ptr(true), SampleCollected: ptr(false), Parameters: []callout.Parameter{{Name: "X", Value: "2"}}},
			{TestID: "C", Parameters: nil},
		}}
		want, err := callout.BuildBill(o, callout.Now())
		require.NoError(t, err)
		c := f.Create(t, o)
		b, err := f.Store.Bill(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Len(t, b.Reports, 3)
		for i, r := range b.Reports {
			w := want.Reports[i]
			require.Equal(t, []any{w.TestID, w.TestName, w.Department, w.Dismissed, w.SampleCollected, w.State},
				[]any{r.TestID, r.TestName, r.Department, r.Dismissed, r.SampleCollected, r.State}, "report %s", w.TestID)
			require.Len(t, r.Parameters, len(w.Parameters))
			for j, p := range r.Parameters {
				p.ID = 0
				require.Equal(t, w.Parameters[j], p, "report %s result %d", w.TestID, j)
			}
		}
		require.True(t, at.Equal(b.Reports[0].ResultedAt), "resulted_at to the microsecond: %s vs %s", at, b.Reports[0].ResultedAt)
		// The bulk-inserted time sorts and compares like a bound one: the
		// worklist pages by it.
		items, err := f.Store.Worklist(ctx, f.Lab, callout.WorklistFilter{States: []callout.State{callout.StatePending}, Limit: 10,
			After: &callout.WorklistCursor{ResultedAt: at.Add(-time.Microsecond), ID: 0}})
		require.NoError(t, err)
		require.Len(t, items, 1)
	})

	t.Run("AnOrderOverALimitIsRefusedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		f.Create(t, Order("B1", 1))
		before := Dump(t, f.Store.DB)
		tooManyReports := MaxOrder("R")
		tooManyReports.Reports = append(tooManyReports.Reports, callout.NewReport{TestID: "EXTRA"})
		tooManyResults := MaxOrder("P")
		tooManyResults.Reports[7].Parameters = append(tooManyResults.Reports[7].Parameters, callout.Parameter{Name: "EXTRA", Value: "1"})
		tooManyInOne := Order("Q", 1)
		for i := range callout.MaxParametersPerReport {
			tooManyInOne.Reports[0].Parameters = append(tooManyInOne.Reports[0].Parameters, callout.Parameter{Name: fmt.Sprint("P", i), Value: "1"})
		}
		tooMuchText := Order("T", 0)
		for i := range 11 {
			r := callout.NewReport{TestID: fmt.Sprint("T", i)}
			for j := range callout.MaxParametersPerReport {
				r.Parameters = append(r.Parameters, callout.Parameter{Name: fmt.Sprint("P", j), Value: strings.Repeat("v", 490)})
			}
			tooMuchText.Reports = append(tooMuchText.Reports, r)
		}
		for _, tc := range []struct {
			name string
			o    callout.NewOrder
			want string
		}{
			{"501 reports", tooManyReports, "the order has 501 reports; an order may hold at most 500"},
			{"22,501 results", tooManyResults, "the order has 22501 results (parameters); an order may hold at most 22500"},
			{"202 results in one report", tooManyInOne, "reports[0] has 202 parameters; a report may hold at most 200"},
			{"over 1 MiB of text", tooMuchText, "bytes of text; an order may hold at most 1048576"},
		} {
			_, err := f.Svc.CreateOrder(ctx, f.Staff, tc.o, nil)
			require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err), "%s: %v", tc.name, err)
			require.ErrorContains(t, err, tc.want, tc.name)
			require.Equal(t, before, Dump(t, f.Store.DB), "%s changed rows", tc.name)
		}
	})

	t.Run("ConcurrentCalloutsOnOneOrderAreSerialized", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 6))
		ids := ReportIDs(c)
		var wg sync.WaitGroup
		errs := make(chan error, 24)
		for i := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sel := []int64{ids[i%6], ids[(i*5+1)%6]}
				req := Attempt(sel...)
				if i%3 == 0 {
					req = Done(sel...)
				}
				_, err := f.Svc.Callout(ctx, f.Staff, c.ID, req, nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		// Replay the callouts one at a time in the order they were recorded:
		// each must have seen exactly the states its predecessor left.
		acts, err := f.Store.Activity(ctx, f.Lab, callout.ActivityFilter{BillID: &c.ID, Limit: 100})
		require.NoError(t, err)
		require.Len(t, acts, 24)
		state := map[int64]callout.State{}
		for _, id := range ids {
			state[id] = callout.StatePending
		}
		for i := len(acts) - 1; i >= 0; i-- {
			var d callout.ActivityData
			require.NoError(t, json.Unmarshal(acts[i].Data, &d))
			sel := map[int64]bool{}
			for _, id := range d.LabReportIDs {
				sel[id] = true
			}
			for _, tr := range d.Transitions {
				require.Equal(t, state[tr.LabReportID], tr.From, "callout %d saw a stale state", acts[i].ID)
			}
			for _, id := range ids {
				if to, write := callout.NextState(state[id], sel[id], d.IsDraft != nil); write {
					state[id] = to
				}
			}
		}
		require.Equal(t, state, f.States(t, c.ID))
		recs, err := f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		drafts := 0
		for _, r := range recs {
			if r.LabReportID == nil {
				drafts++
			}
		}
		require.LessOrEqual(t, drafts, 1)
	})

	t.Run("SnapshotIsImmuneToLaterResultChanges", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1))
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Done(c.Reports[0].ID), nil)
		require.NoError(t, err)
		_, err = f.Store.DB.ExecContext(ctx, `UPDATE report_parameters SET value = '5.0' WHERE bill_id = $1`, c.ID)
		require.NoError(t, err)
		recs, err := f.Store.Records(ctx, f.Lab, c.ID)
		require.NoError(t, err)
		require.Equal(t, "7.1", recs[0].Snapshot[0].Value)
		require.Equal(t, "Potassium", recs[0].Snapshot[0].Name)
		require.Equal(t, "mmol/L", recs[0].Snapshot[0].Unit)
	})

	t.Run("LabsNeverSeeEachOther", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1))
		other := callout.Principal{LabID: f.AddLab(t, callout.Settings{Name: "Other"}), User: "Eve", Role: callout.RoleAdmin}
		before := Dump(t, f.Store.DB)
		_, err := f.Svc.Callout(ctx, other, c.ID, Done(c.Reports[0].ID), nil)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err))
		_, err = f.Svc.Bill(ctx, other, c.ID)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err))
		_, err = f.Svc.Records(ctx, other, c.ID)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err))
		items, _, err := f.Svc.Worklist(ctx, other, callout.WorklistFilter{})
		require.NoError(t, err)
		require.Empty(t, items)
		require.Equal(t, before, Dump(t, f.Store.DB))
	})

	t.Run("WorklistPagesOldestFirst", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		base := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
		var want []int64
		for i := range 5 {
			o := Order("W"+string(rune('A'+i)), 0,
				callout.NewReport{TestID: "K", ResultedAt: ptr(base.Add(time.Duration(5-i) * time.Minute)), Parameters: []callout.Parameter{Potassium("7.0")}},
				callout.NewReport{TestID: "D", Dismissed: ptr(true), Parameters: []callout.Parameter{Potassium("7.0")}},
				callout.NewReport{TestID: "N", Parameters: []callout.Parameter{Potassium("4.0")}},
			)
			c := f.Create(t, o)
			want = append([]int64{c.Reports[0].ID}, want...)
		}
		var got []int64
		var cursor *callout.WorklistCursor
		for page := 0; ; page++ {
			items, next, err := f.Svc.Worklist(ctx, f.Staff, callout.WorklistFilter{Limit: 2, After: cursor})
			require.NoError(t, err)
			for _, it := range items {
				got = append(got, it.ID)
				require.Equal(t, "Maria Müller", it.PatientName)
				require.Greater(t, it.AgeSeconds, int64(3000))
			}
			if next == nil {
				break
			}
			cursor = next
			require.Less(t, page, 5)
		}
		require.Equal(t, want, got)

		// The state filter: after one is done, only it is listed as done.
		b, err := f.Store.Bill(ctx, f.Lab, 1)
		require.NoError(t, err)
		_, err = f.Svc.Callout(ctx, f.Staff, b.ID, Done(b.Reports[0].ID), nil)
		require.NoError(t, err)
		items, _, err := f.Svc.Worklist(ctx, f.Staff, callout.WorklistFilter{States: []callout.State{callout.StateDone}})
		require.NoError(t, err)
		require.Len(t, items, 1)
		require.Equal(t, b.Reports[0].ID, items[0].ID)
		_, _, err = f.Svc.Worklist(ctx, f.Staff, callout.WorklistFilter{States: []callout.State{callout.StateNormal}})
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err))
	})

	t.Run("IdempotencyKeyStoresTheAnswerWithTheWrites", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		c := f.Create(t, Order("B1", 1))
		idem := &callout.Idempotency{Key: "abc", Hash: "h1"}
		res, err := f.Svc.Callout(ctx, f.Staff, c.ID, Done(c.Reports[0].ID), idem)
		require.NoError(t, err)
		r, err := f.Store.Replay(ctx, f.Lab, "abc")
		require.NoError(t, err)
		require.Equal(t, "h1", r.Hash)
		require.Equal(t, 201, r.Status)
		var stored callout.CalloutResult
		require.NoError(t, json.Unmarshal(r.Body, &stored))
		require.Equal(t, res.Callouts, stored.Callouts)
		// The same key again in the same lab loses the race and writes nothing.
		before := Dump(t, f.Store.DB)
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, Done(c.Reports[0].ID), idem)
		require.ErrorIs(t, err, callout.ErrIdempotencyRace)
		require.Equal(t, before, Dump(t, f.Store.DB))
		none, err := f.Store.Replay(ctx, f.Lab, "other")
		require.NoError(t, err)
		require.Nil(t, none)
	})

	t.Run("SettingsUpdateIsAdminOnlyAndValidated", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		before := Dump(t, f.Store.DB)
		_, err := f.Svc.UpdateSettings(ctx, f.Staff, callout.SettingsPatch{ShareComment: ptr(true)})
		require.Equal(t, callout.KindForbidden, callout.ErrorKind(err))
		_, err = f.Svc.UpdateSettings(ctx, f.Admin, callout.SettingsPatch{Name: ptr(" "), ShareComment: ptr(true)})
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err))
		require.Equal(t, before, Dump(t, f.Store.DB))
		set, err := f.Svc.UpdateSettings(ctx, f.Admin, callout.SettingsPatch{ShareComment: ptr(true), AdditionalInstruction: ptr("Read back every value")})
		require.NoError(t, err)
		require.True(t, set.ShareComment)
		require.Equal(t, "City Lab", set.Name)
		got, err := f.Svc.Settings(ctx, f.Staff)
		require.NoError(t, err)
		require.Equal(t, set, got)
		require.Equal(t, callout.DefaultTargetMinutes, got.TargetMinutes)
	})

	t.Run("DepartmentLimitedUsersSeeAndCallOutOnlyTheirReports", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		haem := callout.NewReport{TestID: "CBC", TestName: "Blood count", Department: "Haematology",
			Parameters: []callout.Parameter{{Name: "Platelets", Value: "12", Flag: "LL"}}}
		c := f.Create(t, Order("B1", 2, haem)) // T1, T2 Biochemistry; CBC Haematology
		ids := ReportIDs(c)
		onlyBio := f.Create(t, Order("B2", 1))
		h := callout.Principal{LabID: f.Lab, User: "Hana", Role: callout.RoleStaff, Departments: []string{"Haematology"}}

		// The Biochemistry user leaves an attempt on T1.
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0]), nil)
		require.NoError(t, err)

		v, err := f.Svc.Bill(ctx, h, c.ID)
		require.NoError(t, err)
		require.Len(t, v.Reports, 1)
		require.Equal(t, "CBC", v.Reports[0].TestID)
		_, err = f.Svc.Bill(ctx, h, onlyBio.ID)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err), "an order with none of their reports does not exist for them")

		items, _, err := f.Svc.Worklist(ctx, h, callout.WorklistFilter{})
		require.NoError(t, err)
		require.Len(t, items, 1)
		require.Equal(t, ids[2], items[0].ID)

		before := Dump(t, f.Store.DB)
		_, err = f.Svc.Callout(ctx, h, c.ID, Done(ids[1]), nil)
		require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err), "a report of another department")
		_, err = f.Svc.Callout(ctx, h, onlyBio.ID, Done(onlyBio.Reports[0].ID), nil)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err))
		require.Equal(t, before, Dump(t, f.Store.DB))

		// The attempt covers T1 and CBC; the Haematology user sees only CBC in it.
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0], ids[2]), nil)
		require.NoError(t, err)
		recs, err := f.Svc.Records(ctx, h, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, []string{"CBC"}, recs[0].Meta.CalloutFor)
		require.Len(t, recs[0].Snapshot, 1)
		require.Equal(t, "Platelets", recs[0].Snapshot[0].Name)
		v, err = f.Svc.Bill(ctx, h, c.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"CBC"}, v.Draft.CalloutFor)
		require.Equal(t, []int64{ids[2]}, v.Draft.LabReportIDs)

		// A Biochemistry email copy is none of their business.
		_, err = f.Svc.Callout(ctx, f.Staff, onlyBio.ID, Done(onlyBio.Reports[0].ID), nil)
		require.NoError(t, err)
		ds, err := f.Svc.DeliveriesByStatus(ctx, h, callout.DeliveryQueued, 0)
		require.NoError(t, err)
		require.Empty(t, ds)
		ds, err = f.Svc.DeliveriesByStatus(ctx, f.Staff, callout.DeliveryQueued, 0)
		require.NoError(t, err)
		require.Len(t, ds, 1)
		_, err = f.Svc.RetryDelivery(ctx, h, ds[0].ID)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err), "not 409: the delivery does not exist for them")
		acts, err := f.Svc.Activity(ctx, h, callout.ActivityFilter{})
		require.NoError(t, err)
		for _, a := range acts {
			require.Equal(t, c.ID, *a.BillID, "only the order they see")
			require.NotContains(t, a.Message, "Electrolytes", "no other department's test is named")
		}
		require.NotEmpty(t, acts)

		_, err = f.Svc.Callout(ctx, h, c.ID, Done(ids[2]), nil)
		require.NoError(t, err)
		require.Equal(t, map[int64]callout.State{ids[0]: callout.StatePending, ids[1]: callout.StatePending, ids[2]: callout.StateDone},
			f.States(t, c.ID), "the replaced draft's report goes back to pending, visible to its own department")
	})

	t.Run("ACommentOfACalloutThatCoveredOtherDepartmentsIsCutEverywhere", func(t *testing.T) {
		t.Parallel()
		// A comment may speak of any report its callout covered, so a
		// user limited to departments gets it only when the callout
		// covered nothing but reports they see — as with the activity
		// entry of the same callout.
		f := NewFixture(t, e, callout.Settings{})
		haem := callout.NewReport{TestID: "CBC", TestName: "Blood count", Department: "Haematology",
			Parameters: []callout.Parameter{{Name: "Platelets", Value: "12", Flag: "LL"}}}
		c := f.Create(t, Order("B1", 2, haem)) // T1, T2 Biochemistry; CBC Haematology
		ids := ReportIDs(c)
		h := callout.Principal{LabID: f.Lab, User: "Hana", Role: callout.RoleStaff, Departments: []string{"Haematology"}}
		const secret = "K 7.1 and HIV screen positive"
		comment := func(r callout.Request, text string) callout.Request { r.Payload.Comment = text; return r }

		// An attempt on T1 and CBC.
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, comment(Attempt(ids[0], ids[2]), secret), nil)
		require.NoError(t, err)
		recs, err := f.Svc.Records(ctx, h, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, []string{"CBC"}, recs[0].Meta.CalloutFor, "the attempt, cut to their report")
		require.Empty(t, recs[0].Comment, "the record's comment")
		require.True(t, recs[0].Restricted)
		v, err := f.Svc.Bill(ctx, h, c.ID)
		require.NoError(t, err)
		require.Empty(t, v.Draft.Comment, "the draft's comment")
		require.True(t, v.Draft.Restricted)
		acts, err := f.Svc.Activity(ctx, h, callout.ActivityFilter{BillID: &c.ID})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		require.NotContains(t, acts[0].Message, secret, "the activity entry, as before")
		require.NotContains(t, string(acts[0].Data), secret)
		// Unlimited, it is all there.
		recs, err = f.Svc.Records(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Equal(t, secret, recs[0].Comment)
		require.False(t, recs[0].Restricted)
		v, err = f.Svc.Bill(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Equal(t, secret, v.Draft.Comment)
		require.False(t, v.Draft.Restricted)

		// An attempt on T1 alone is none of their business, comment and all.
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, comment(Attempt(ids[0]), secret), nil)
		require.NoError(t, err)
		recs, err = f.Svc.Records(ctx, h, c.ID)
		require.NoError(t, err)
		require.Empty(t, recs)
		v, err = f.Svc.Bill(ctx, h, c.ID)
		require.NoError(t, err)
		require.Nil(t, v.Draft, "a draft of other departments' reports only")

		// A done callout writes one record per report: theirs is cut too.
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, comment(Done(ids[0], ids[2]), secret), nil)
		require.NoError(t, err)
		recs, err = f.Svc.Records(ctx, h, c.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, ids[2], *recs[0].LabReportID)
		require.Empty(t, recs[0].Comment, "a done record of a callout that covered T1")
		require.True(t, recs[0].Restricted)

		// A later callout of CBC alone keeps its comment for them.
		c2 := f.Create(t, Order("B2", 1, haem))
		ids2 := ReportIDs(c2)
		_, err = f.Svc.Callout(ctx, f.Staff, c2.ID, comment(Attempt(ids2[1]), "Platelets repeated"), nil)
		require.NoError(t, err)
		v, err = f.Svc.Bill(ctx, h, c2.ID)
		require.NoError(t, err)
		require.Equal(t, "Platelets repeated", v.Draft.Comment)
		require.False(t, v.Draft.Restricted)
		_, err = f.Svc.Callout(ctx, f.Staff, c2.ID, comment(Done(ids2[1]), "Told Dr. Rao"), nil)
		require.NoError(t, err)
		_, err = f.Svc.Callout(ctx, f.Staff, c2.ID, comment(Done(ids2[0]), secret), nil)
		require.NoError(t, err)
		recs, err = f.Svc.Records(ctx, h, c2.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, "Told Dr. Rao", recs[0].Comment, "a callout of their report only")
		require.False(t, recs[0].Restricted)
	})

	t.Run("BillViewRestoresTheDraft", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{AdditionalInstruction: "Ask for read-back"})
		c := f.Create(t, Order("B1", 3))
		ids := ReportIDs(c)
		v, err := f.Svc.Bill(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.Nil(t, v.Draft)
		require.Equal(t, "Ask for read-back", v.AdditionalInstruction)
		_, err = f.Svc.Callout(ctx, f.Staff, c.ID, Attempt(ids[0], ids[2]), nil)
		require.NoError(t, err)
		v, err = f.Svc.Bill(ctx, f.Staff, c.ID)
		require.NoError(t, err)
		require.NotNil(t, v.Draft)
		require.Equal(t, []string{"T1", "T3"}, v.Draft.CalloutFor)
		require.Equal(t, []int64{ids[0], ids[2]}, v.Draft.LabReportIDs)
		require.Equal(t, []string{"Referral"}, v.Draft.Recipients)
		require.Equal(t, "No answer", v.Draft.Comment)
	})
	runAttemptLog(t, e)
}
