package ingest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/ingest"
	"callout/internal/storetest"
)

type testBundle struct {
	fx *storetest.Fixture
	in *ingest.Ingester
}

func setup(t *testing.T, e storetest.Engine) *testBundle {
	t.Helper()
	fx := storetest.NewFixture(t, e, callout.Settings{})
	require.NoError(t, fx.Store.SetHL7(context.Background(), fx.Lab, []string{"ACME LAB", "GENERAL HOSPITAL"}, false))
	return &testBundle{fx: fx, in: &ingest.Ingester{Store: fx.Store}}
}

// oru builds an ORU^R01 from ACME LAB with one order and one OBR.
func oru(control, placer, test string, obx ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "MSH|^~\\&|LABSYS|ACME LAB|CALLOUT|CLINIC|20261127083000||ORU^R01^ORU_R01|%s|P|2.5.1\r", control)
	b.WriteString("PID|1||MRN1^^^ACME^MR||MÜLLER^MARIA||19800101|F|||||^NET^Internet^maria@example.org\r")
	fmt.Fprintf(&b, "ORC|RE|%s|FIL-%s\r", placer, placer)
	fmt.Fprintf(&b, "OBR|1|%s|FIL-%s|%s|||20261127080000|||||||||77^Rao^Anil^^^Dr.||||||||CH|\r", placer, placer, test)
	for i, o := range obx {
		fmt.Fprintf(&b, "OBX|%d|NM|%s\r", i+1, o)
	}
	return []byte(b.String())
}

func (b *testBundle) send(t *testing.T, raw []byte) (string, ingest.Outcome) {
	t.Helper()
	ack, out := b.in.Process(context.Background(), raw)
	m, err := hl7.Parse(ack)
	require.NoError(t, err, "the ACK parses")
	msa := m.First("MSA")
	require.NotNil(t, msa)
	require.Equal(t, out.Code, msa.Field(1))
	return msa.Field(1), out
}

func (b *testBundle) bill(t *testing.T, labBillID string) callout.Bill {
	t.Helper()
	bs, err := b.fx.Store.FindBills(context.Background(), b.fx.Lab, labBillID)
	require.NoError(t, err)
	require.Len(t, bs, 1)
	full, err := b.fx.Store.Bill(context.Background(), b.fx.Lab, bs[0].ID)
	require.NoError(t, err)
	return full
}

func TestIngest(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("CorpusV251TwoOrders", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			raw, err := os.ReadFile("../hl7/testdata/oru_v251_multi.hl7")
			require.NoError(t, err)
			code, out := b.send(t, raw)
			require.Equal(t, "AA", code, out.Reason)
			require.Len(t, out.BillIDs, 2)
			cbc := b.bill(t, "PLC-7788")
			require.Equal(t, "FIL-1122", cbc.AccessionNumber)
			require.Contains(t, cbc.Patient.Name, "MARY")
			require.Equal(t, "mary.oneil@example.org", cbc.Patient.Email)
			require.Contains(t, cbc.Referral.Name, "Alice")
			require.Len(t, cbc.Reports, 1)
			r := cbc.Reports[0]
			require.Equal(t, "57021-8", r.TestID)
			require.Equal(t, callout.StatePending, r.State, "hemoglobin flagged LL")
			require.Equal(t, "Hemoglobin", r.Parameters[0].Name)
			require.Equal(t, "LL", r.Parameters[0].Flag, "the worst of LL~A")
			require.InDelta(t, 12.0, *r.Parameters[0].NormalLow, 0)
			require.Len(t, r.Parameters, 4, "the SPM's OBX describes the specimen and is skipped")
			cmp := b.bill(t, "PLC-7789")
			require.Equal(t, callout.StatePending, cmp.Reports[0].State, "potassium HH")
		})

		t.Run("CorpusV23AbnormalOnly", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			raw, err := os.ReadFile("../hl7/testdata/oru_v23_basic.hl7")
			require.NoError(t, err)
			code, out := b.send(t, raw)
			require.Equal(t, "AA", code, out.Reason)
			r := b.bill(t, "ORD1001").Reports[0]
			require.Equal(t, callout.StateAbnormal, r.State, "H and L flags are abnormal, not critical")
		})

		t.Run("RejectedAndErroredMessagesStoreNothing", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			adt, err := os.ReadFile("../hl7/testdata/adt_a01.hl7")
			require.NoError(t, err)
			unknown := []byte(strings.Replace(string(oru("U1", "P1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F")), "ACME LAB", "NOBODY", 1))
			cases := []struct {
				name string
				raw  []byte
				code string
				why  string
			}{
				{"not ORU", adt, "AR", "ORU^R01"},
				{"garbage", []byte("hello world"), "AR", "parsed"},
				{"unknown facility", unknown, "AR", "NOBODY"},
				{"OBX before OBR", []byte("MSH|^~\\&|L|ACME LAB|C|C|20260101||ORU^R01|X1|P|2.5\rPID|1||1||A^B\rOBX|1|NM|K||1\r"), "AR", "structure"},
				{"no order number", oru("E1", "", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"), "AR", "order number"},
			}
			for _, tc := range cases {
				before := storetest.Dump(t, b.fx.Store.DB)
				code, out := b.send(t, tc.raw)
				require.Equal(t, tc.code, code, tc.name)
				require.Contains(t, out.Reason, tc.why, tc.name)
				require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), tc.name)
			}
			// A message refused for a rule may be sent again, fixed, under
			// the same control id: the refusal stored nothing.
			code, out := b.send(t, oru("E1", "P-E1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"))
			require.Equal(t, "AA", code, out.Reason)
			require.False(t, out.Duplicate)
		})

		t.Run("DuplicateControlIDIsAcknowledgedAndIgnored", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			code, _ := b.send(t, oru("M1", "P1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||P"))
			require.Equal(t, "AA", code)
			code, _ = b.send(t, oru("M2", "P1", "K^Potassium", "K^Potassium||4.0|mmol/L|3.5-5.1||||C"))
			require.Equal(t, "AA", code)
			before := storetest.Dump(t, b.fx.Store.DB)
			// M1 arrives late after the correction: acknowledged, never reapplied.
			code, out := b.send(t, oru("M1", "P1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||P"))
			require.Equal(t, "AA", code)
			require.True(t, out.Duplicate)
			require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
			require.Equal(t, "4.0", b.bill(t, "P1").Reports[0].Parameters[0].Value)
		})

		t.Run("LaterResultsReevaluateTheReport", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			ctx := context.Background()
			code, _ := b.send(t, oru("R1", "P1", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||P"))
			require.Equal(t, "AA", code)
			bill := b.bill(t, "P1")
			rid := bill.Reports[0].ID
			_, err := b.fx.Svc.Callout(ctx, b.fx.Staff, bill.ID, toPatient(rid), nil)
			require.NoError(t, err)

			// The final result is still critical but changed: called out again.
			code, _ = b.send(t, oru("R2", "P1", "K^Potassium", "K^Potassium||7.4|mmol/L|3.5-5.1|HH|||F"))
			require.Equal(t, "AA", code)
			require.Equal(t, callout.StatePending, b.bill(t, "P1").Reports[0].State)
			_, err = b.fx.Svc.Callout(ctx, b.fx.Staff, bill.ID, toPatient(rid), nil)
			require.NoError(t, err)

			// A correction that is no longer critical leaves a done report done.
			code, _ = b.send(t, oru("R3", "P1", "K^Potassium", "K^Potassium||5.5|mmol/L|3.5-5.1|H|||C"))
			require.Equal(t, "AA", code)
			r := b.bill(t, "P1").Reports[0]
			require.Equal(t, callout.StateDone, r.State)
			require.Equal(t, "5.5", r.Parameters[0].Value)

			recs, err := b.fx.Store.Records(ctx, b.fx.Lab, bill.ID)
			require.NoError(t, err)
			require.Len(t, recs, 2)
			require.Equal(t, "7.1", recs[0].Snapshot[0].Value, "earlier records keep what was told")
			require.Equal(t, "7.4", recs[1].Snapshot[0].Value)

			// An attempted report that is no longer critical becomes abnormal.
			code, _ = b.send(t, oru("R4", "P2", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||P"))
			require.Equal(t, "AA", code)
			b2 := b.bill(t, "P2")
			_, err = b.fx.Svc.Callout(ctx, b.fx.Staff, b2.ID, storetest.Attempt(b2.Reports[0].ID), nil)
			require.NoError(t, err)
			code, _ = b.send(t, oru("R5", "P2", "K^Potassium", "K^Potassium||5.5|mmol/L|3.5-5.1|H|||C"))
			require.Equal(t, "AA", code)
			require.Equal(t, callout.StateAbnormal, b.bill(t, "P2").Reports[0].State)

			// A preliminary result arriving after the final one is stale: the
			// final values stand.
			code, _ = b.send(t, oru("R4b", "P1", "K^Potassium", "K^Potassium||9.9|mmol/L|3.5-5.1|HH|||P"))
			require.Equal(t, "AA", code)
			r = b.bill(t, "P1").Reports[0]
			require.Equal(t, "5.5", r.Parameters[0].Value)
			require.Equal(t, callout.StateDone, r.State)
			require.Equal(t, "C", r.ResultStatus)

			// A later message adds a report to the order.
			code, _ = b.send(t, oru("R6", "P2", "GLU^Glucose", "GLU^Glucose||35|mg/dL|70-99||||F"))
			require.Equal(t, "AA", code)
			require.Len(t, b.bill(t, "P2").Reports, 2)
		})

		t.Run("LabCriticalLimitsMakeUnflaggedValuesCritical", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			lo := 40.0
			require.NoError(t, b.fx.Store.SetCriticalLimits(context.Background(), b.fx.Lab, []callout.CriticalLimit{{Name: "glucose", Unit: "MG/DL", CriticalLow: &lo}}))
			code, _ := b.send(t, oru("L1", "P1", "GLU^Glucose", "GLU^Glucose||35|mg/dL|70-99||||F"))
			require.Equal(t, "AA", code)
			r := b.bill(t, "P1").Reports[0]
			require.Equal(t, callout.StatePending, r.State, "no flag, but below the lab's critical low")
			require.InDelta(t, 40.0, *r.Parameters[0].CriticalLow, 0)
			code, _ = b.send(t, oru("L2", "P2", "GLU^Glucose", "GLU^Glucose||35|mmol/L|3-6||||F"))
			require.Equal(t, "AA", code)
			require.Equal(t, callout.StateAbnormal, b.bill(t, "P2").Reports[0].State, "another unit: the limit does not apply")
		})

		t.Run("FillerNumberWhenTheLabSaysSo", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			require.NoError(t, b.fx.Store.SetHL7(context.Background(), b.fx.Lab, []string{"ACME LAB"}, true))
			code, _ := b.send(t, oru("F1", "P9", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"))
			require.Equal(t, "AA", code)
			bs, err := b.fx.Store.FindBills(context.Background(), b.fx.Lab, "FIL-P9")
			require.NoError(t, err)
			require.Len(t, bs, 1)
			require.Equal(t, "P9", bs[0].AccessionNumber)
		})
	})
}

func TestSetHL7RefusalsChangeNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		ctx := context.Background()
		other := b.fx.AddLab(t, callout.Settings{Name: "Other"})
		before := storetest.Dump(t, b.fx.Store.DB)
		err := b.fx.Store.SetHL7(ctx, other, []string{"NEW", "ACME LAB"}, true)
		require.Equal(t, callout.KindConflict, callout.ErrorKind(err), "ACME LAB belongs to the first lab")
		require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
		err = b.fx.Store.SetHL7(ctx, 999999, []string{"X"}, false)
		require.Equal(t, callout.KindNotFound, callout.ErrorKind(err))
		require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
		err = b.fx.Store.SetCriticalLimits(ctx, b.fx.Lab, []callout.CriticalLimit{{Name: "K", CriticalHigh: ptr(6.5)}, {Name: "K", CriticalHigh: ptr(7.0)}})
		require.Error(t, err, "the same analyte twice breaks the key")
		require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB))
	})
}

func ptr[T any](v T) *T { return &v }

func TestReevaluate(t *testing.T) {
	t.Parallel()
	crit := []callout.Parameter{{Name: "K", Value: "7", Flag: "HH"}}
	abn := []callout.Parameter{{Name: "K", Value: "5.5", Flag: "H"}}
	norm := []callout.Parameter{{Name: "K", Value: "4"}}
	tests := []struct {
		from   callout.State
		params []callout.Parameter
		want   callout.State
	}{
		{callout.StateNormal, crit, callout.StatePending},
		{callout.StatePending, crit, callout.StatePending},
		{callout.StateDone, crit, callout.StatePending},
		{callout.StateAttempted, crit, callout.StatePending},
		{callout.StateDone, abn, callout.StateDone},
		{callout.StateDone, norm, callout.StateDone},
		{callout.StateAttempted, abn, callout.StateAbnormal},
		{callout.StatePending, norm, callout.StateNormal},
		{callout.StateAbnormal, norm, callout.StateNormal},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, callout.Reevaluate(tc.from, tc.params), "%v → %v", tc.from, tc.params)
	}
}

// toPatient is a done callout of ids to the patient by email.
func toPatient(ids ...int64) callout.Request {
	return callout.Request{LabReportIDs: ids, Payload: callout.Payload{SendEmail: true, IsPatient: true, Comment: "told", NotifiedPerson: "Maria Müller, patient"}}
}

var _ = time.Now

// TestUnusableIdentityIsAWarning: an MRN Callout cannot keep (over
// callout.MaxMRN bytes) and a birth date in the future are left out, the
// results stored (AA), and the ACK names each field in an ERR of severity W.
func TestUnusableIdentityIsAWarning(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		raw := string(oru("IDW1", "IDW-1", "K^Potassium", "1|K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"))
		raw = strings.Replace(raw, "MRN1^^^ACME^MR", strings.Repeat("9", callout.MaxMRN+1)+"^^^ACME^MR", 1)
		raw = strings.Replace(raw, "||19800101|", "||20991231|", 1)
		ack, out := b.in.Process(context.Background(), []byte(raw))
		require.Equal(t, "AA", out.Code, out.Reason)
		m, err := hl7.Parse(ack)
		require.NoError(t, err)
		var got []string
		for _, s := range m.All("ERR") {
			got = append(got, s.Text(2, 1)+" "+s.Component(3, 1)+" "+s.Field(4))
		}
		require.Contains(t, got, "PID^1^3^1 102 W")
		require.Contains(t, got, "PID^1^7^1 102 W")
		bill := b.bill(t, "IDW-1")
		require.Empty(t, bill.Patient.MRN)
		require.Empty(t, bill.Patient.BirthDate)
		require.Len(t, bill.Reports[0].Parameters, 1, "the result is stored")
	})
}
