package ingest_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/hl7"
	"callout/internal/ingest"
	"callout/internal/storetest"
)

// TestAckDetails checks what the ACK tells the sender: warnings for fields
// Callout ignores (AA with ERR severity W), HL7 table 0357 codes and the
// location of the problem in ERR-2.
func TestAckDetails(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("MalformedBirthDateIsAWarning", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			raw := strings.Replace(string(oru("W1", "P1", "GLU^Glucose", "GLU^Glucose||35|mg/dL|70-99|LL|||F")), "19800101", "1980-01-01", 1)
			ack, out := b.in.Process(t.Context(), []byte(raw))
			require.Equal(t, "AA", out.Code, out.Reason)
			m, err := hl7.Parse(ack)
			require.NoError(t, err)
			errSeg := m.First("ERR")
			require.NotNil(t, errSeg, "the ACK names the ignored field")
			require.Equal(t, "PID^1^7^1", errSeg.Text(2, 1))
			require.Equal(t, "102", errSeg.Component(3, 1))
			require.Equal(t, "W", errSeg.Field(4))
			require.Contains(t, errSeg.Field(8), "1980-01-01")
			require.Equal(t, "35", b.bill(t, "P1").Reports[0].Parameters[0].Value)
		})

		t.Run("ResultedAtIsTheReleaseTime", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			// OBR-7 (collection) 08:00, OBR-22 (release) 09:40 the day after.
			raw := strings.Replace(string(oru("T1", "P1", "GLU^Glucose", "GLU^Glucose||35|mg/dL|70-99|LL|||F")),
				"|||||||||77^Rao^Anil^^^Dr.||||||||CH|", "|||||||||77^Rao^Anil^^^Dr.||||||20261128094000+0000||CH|", 1)
			code, out := b.send(t, []byte(raw))
			require.Equal(t, "AA", code, out.Reason)
			r := b.bill(t, "P1").Reports[0]
			require.Equal(t, time.Date(2026, 11, 28, 9, 40, 0, 0, time.UTC), r.ResultedAt.UTC())
		})

		t.Run("RefusalsNameTheField", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			cases := []struct {
				name       string
				raw        []byte
				code       string
				erl, err3  string
				reasonPart string
			}{
				{"placer number missing", oru("E2", "", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"),
					"AR", "ORC^1^2^1", "101", "placer order number"},
				{"NM without a number", oru("E3", "P3", "K^Potassium", "K^Potassium||hemolyzed|mmol/L|3.5-5.1||||F"),
					"AR", "OBX^1^5^1", "102", `"hemolyzed" is not a number`},
				{"no test id", oru("E4", "P4", "", "K^Potassium||7.1|mmol/L|3.5-5.1|HH|||F"),
					"AR", "OBR^1^4^1", "101", "OBR-4"},
			}
			for _, tc := range cases {
				before := storetest.Dump(t, b.fx.Store.DB)
				ack, out := b.in.Process(t.Context(), tc.raw)
				require.Equal(t, tc.code, out.Code, tc.name)
				require.Contains(t, out.Reason, tc.reasonPart, tc.name)
				m, err := hl7.Parse(ack)
				require.NoError(t, err)
				errSeg := m.First("ERR")
				require.Equal(t, tc.erl, errSeg.Text(2, 1), tc.name)
				require.Equal(t, tc.err3, errSeg.Component(3, 1), tc.name)
				require.Equal(t, "E", errSeg.Field(4), tc.name)
				require.LessOrEqual(t, len(m.First("MSA").Text(3, 1)), 80, tc.name)
				require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), tc.name)
			}
		})

		t.Run("NotORUIsUnsupportedMessageType", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			raw := strings.Replace(string(oru("N1", "P1", "GLU^Glucose")), "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1)
			ack, out := b.in.Process(t.Context(), []byte(raw))
			require.Equal(t, "AR", out.Code)
			m, err := hl7.Parse(ack)
			require.NoError(t, err)
			require.Equal(t, "200", m.First("ERR").Component(3, 1))
			require.Equal(t, "MSH^1^9^1^1", m.First("ERR").Text(2, 1))
		})
	})
}

// TestMapNumbering checks the Order ID each numbering gives, through the
// view of a corpus message whose ORC-2 and OBR-2 are empty.
func TestMapNumbering(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../hl7/testdata/corpus/v24_filler_only.hl7")
	require.NoError(t, err)
	m, err := hl7.Parse(raw)
	require.NoError(t, err)
	o, err := hl7.ParseORUIn(m, time.UTC)
	require.NoError(t, err)
	tests := []struct {
		n             hl7.Numbering
		id, accession string
	}{
		{hl7.NumberPlacer, "", "L24062-1177"},
		{hl7.NumberFiller, "L24062-1177", ""},
		{hl7.NumberAuto, "L24062-1177", ""},
	}
	for _, tt := range tests {
		rm := ingest.Map(o, tt.n)
		require.Len(t, rm.Orders, 1)
		require.Equal(t, tt.id, rm.Orders[0].LabBillID, tt.n)
		require.Equal(t, tt.accession, rm.Orders[0].AccessionNumber, tt.n)
	}
}

// TestMapKeepsEachPatient checks that the orders of a message with two
// PATIENT_RESULT groups keep their own patient.
func TestMapKeepsEachPatient(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../hl7/testdata/corpus/v251_two_patients.hl7")
	require.NoError(t, err)
	m, err := hl7.Parse(raw)
	require.NoError(t, err)
	o, err := hl7.ParseORUIn(m, time.UTC)
	require.NoError(t, err)
	rm := ingest.Map(o, hl7.NumberPlacer)
	require.Len(t, rm.Orders, 2)
	require.Equal(t, "OTTO FISCHER", rm.Orders[0].Patient.Name)
	require.Equal(t, "MARIA ROSSI", rm.Orders[1].Patient.Name)
}

// TestMapKeepsPatientIdentity: PID-3 becomes the patient's MRN with its
// assigning authority, PID-7 the birth date; a malformed PID-7 (a warning)
// leaves the birth date empty but keeps the MRN.
func TestMapKeepsPatientIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file                string
		mrn, authority, dob []string
	}{
		{"v251_two_patients.hl7", []string{"LK-100201", "LK-100877"}, []string{"LAKE", "LAKE"}, []string{"1939-04-12", "1980-07-07"}},
		{"v251_bad_birthdate.hl7", []string{"E88120043"}, []string{"MERCY"}, []string{""}},
	} {
		raw, err := os.ReadFile("../hl7/testdata/corpus/" + tc.file)
		require.NoError(t, err)
		m, err := hl7.Parse(raw)
		require.NoError(t, err)
		o, err := hl7.ParseORUIn(m, time.UTC)
		require.NoError(t, err)
		rm := ingest.Map(o, hl7.NumberAuto)
		require.Len(t, rm.Orders, len(tc.mrn), tc.file)
		for i, ord := range rm.Orders {
			require.Equal(t, tc.mrn[i], ord.Patient.MRN, tc.file)
			require.Equal(t, tc.authority[i], ord.MRNAuthority, tc.file)
			require.Equal(t, tc.dob[i], ord.Patient.BirthDate, tc.file)
		}
	}
}
