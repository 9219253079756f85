package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
)

// RunPatients is the behavioural suite of patient identity (issue 10 §2):
// the MRN names a patient within a lab, over the API and over HL7 alike.
func RunPatients(t *testing.T, e Engine) {
	ctx := context.Background()
	withPatient := func(billID, mrn, birth string) callout.NewOrder {
		o := Order(billID, 1)
		o.Patient.MRN, o.Patient.BirthDate = mrn, birth
		return o
	}

	t.Run("OrdersOfOneMRNInOneLabShareOnePatientID", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		a := f.Create(t, withPatient("B1", "MRN-7", "1985-12-02"))
		b := f.Create(t, withPatient("B2", "MRN-7", ""))
		c := f.Create(t, withPatient("B3", "MRN-8", ""))
		none := f.Create(t, withPatient("B4", "", ""))
		other := f.AddLab(t, callout.Settings{Name: "Other"})
		_, err := f.Svc.CreateOrder(ctx, callout.Principal{LabID: other, User: "x", Role: callout.RoleStaff}, withPatient("B1", "MRN-7", ""), nil)
		require.NoError(t, err)

		bill := func(lab, id int64) callout.Bill {
			b, err := f.Store.Bill(ctx, lab, id)
			require.NoError(t, err)
			return b
		}
		ba, bb, bc, bn := bill(f.Lab, a.ID), bill(f.Lab, b.ID), bill(f.Lab, c.ID), bill(f.Lab, none.ID)
		require.NotZero(t, ba.PatientID)
		require.Equal(t, ba.PatientID, bb.PatientID, "one MRN, one patient")
		require.NotEqual(t, ba.PatientID, bc.PatientID)
		require.Zero(t, bn.PatientID, "no MRN, no patient identity")
		require.Equal(t, "MRN-7", ba.Patient.MRN)
		require.Equal(t, "1985-12-02", ba.Patient.BirthDate)

		found, err := f.Store.FindBills(ctx, other, "B1")
		require.NoError(t, err)
		require.Len(t, found, 1)
		require.NotZero(t, found[0].PatientID)
		require.NotEqual(t, ba.PatientID, found[0].PatientID, "labs never share a patient")
	})

	t.Run("ABadMRNOrBirthDateIsRefusedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		f.Create(t, withPatient("B0", "MRN-1", ""))
		before := Dump(t, f.Store.DB)
		for _, tc := range []struct {
			o    callout.NewOrder
			want string
		}{
			{withPatient("B1", "MRN-1", "02.12.1985"), `patient.birth_date "02.12.1985" is not a date as YYYY-MM-DD`},
			{withPatient("B1", "MRN-1", "2999-01-01"), "patient.birth_date 2999-01-01 lies in the future"},
			{withPatient("B1", "MRN\x00", ""), "patient.mrn"},
			{withPatient("B1", string(make([]byte, 65)), ""), "patient.mrn"},
			{func() callout.NewOrder { o := Order("B1", 1); o.Referral.MRN = "X"; return o }(), "referral takes no mrn"},
		} {
			_, err := f.Svc.CreateOrder(ctx, f.Staff, tc.o, nil)
			require.Equal(t, callout.KindUnprocessable, callout.ErrorKind(err), "%v", err)
			require.Contains(t, callout.ErrorMessage(err), tc.want)
		}
		require.Equal(t, before, Dump(t, f.Store.DB))
	})

	t.Run("ResultMessagesGiveTheOrderItsPatient", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		api := f.Create(t, withPatient("API-1", "MRN-42", ""))
		msg := func(control, order, mrn, birth string) callout.ResultMessage {
			return callout.ResultMessage{Facility: "LAB", ControlID: control, Orders: []callout.IncomingOrder{{
				LabBillID: order, Patient: callout.Contact{Name: "Maria Müller", MRN: mrn, BirthDate: birth},
				MRNAuthority: "HOSP",
				Reports: []callout.IncomingReport{{TestID: "K", TestName: "Potassium",
					Parameters: []callout.Parameter{Potassium("7.1")}}},
			}}}
		}
		now := time.Now()
		res, err := callout.Ingest(ctx, f.Store, f.Lab, msg("c1", "HL7-1", "MRN-42", "1985-12-02"), now)
		require.NoError(t, err)
		b, err := f.Store.Bill(ctx, f.Lab, res.BillIDs[0])
		require.NoError(t, err)
		apiBill, err := f.Store.Bill(ctx, f.Lab, api.ID)
		require.NoError(t, err)
		require.Equal(t, apiBill.PatientID, b.PatientID, "an HL7 order and an API order of one MRN share the patient")
		require.Equal(t, "1985-12-02", b.Patient.BirthDate)

		// A later message without PID-3 keeps what the order knows.
		_, err = callout.Ingest(ctx, f.Store, f.Lab, msg("c2", "HL7-1", "", ""), now)
		require.NoError(t, err)
		again, err := f.Store.Bill(ctx, f.Lab, res.BillIDs[0])
		require.NoError(t, err)
		require.Equal(t, b.PatientID, again.PatientID)
		require.Equal(t, "MRN-42", again.Patient.MRN)
		require.Equal(t, "1985-12-02", again.Patient.BirthDate)

		var authority string
		require.NoError(t, f.Store.DB.QueryRowContext(ctx, `SELECT assigning_authority FROM patients WHERE id = $1`, b.PatientID).Scan(&authority))
		require.Equal(t, "HOSP", authority)
	})
}
