package hl7

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// corpusCase is what a message of testdata/corpus must give. The corpus
// holds realistic ORU^R01 messages written for these tests, one or more
// per class of problem real senders cause (versions 2.3 to 2.5.1, SPM
// before and after OBX, TX narratives, ISO 8859/1 bytes, empty ORC-2,
// odd ranges, malformed PID-7, several OBR, NTE everywhere, repeated OBX-8).
type corpusCase struct {
	// valueOBX is the number of OBX segments that carry a value (OBX-5 not
	// empty) and results the number of results in the view: fewer when the
	// TX segments of one narrative are joined.
	valueOBX, results int
	// warnings lists "<location> <table 0357 code>" of each warning, in order.
	warnings []string
	// refusal is "<location> <code>" of the refusal, "" for an accepted message.
	refusal string
	check   func(t *testing.T, o *ORU)
}

// corpus is the table of testdata/corpus; TestCorpusTableIsComplete keeps
// it and the directory in step.
var corpus = map[string]corpusCase{
	"v23_cbc_no_orc.hl7": {valueOBX: 4, results: 4, check: func(t *testing.T, o *ORU) {
		order := o.Orders[0]
		require.Equal(t, Location{}, order.ORC, "no ORC: the numbers come from OBR-2/OBR-3")
		require.Equal(t, "A55102", order.PlacerOrderNumber)
		require.Equal(t, "I", order.Patient.Class)
		require.Equal(t, []string{"Specimen slightly hemolyzed."}, order.Notes)
		require.Equal(t, time.Date(2024, 6, 12, 10, 15, 0, 0, time.UTC), order.ResultedAt, "OBR-22")
		require.Equal(t, time.Date(2024, 6, 12, 8, 45, 0, 0, time.UTC), order.CollectedAt, "OBR-7")
		require.Equal(t, "Critical value called to RN J. Smith 10:14 by tech 221, read back.", order.Observations[3].Notes[0])
	}},
	"v231_chem_nte_everywhere.hl7": {valueOBX: 5, results: 5, check: func(t *testing.T, o *ORU) {
		obs := o.Orders[0].Observations
		require.Equal(t, []string{"L", "A"}, obs[0].Flags)
		require.Equal(t, []string{"HH", "A"}, obs[1].Flags)
		require.Equal(t, "(<0.04)", obs[3].ReferenceRange)
		require.Equal(t, f64(0.04), obs[3].NormalHigh)
		require.Equal(t, "<2", obs[4].Value)
		require.Equal(t, f64(5), obs[4].NormalHigh)
		require.Len(t, obs[0].Notes, 1)
		require.Equal(t, []string{"Fasting specimen."}, o.Orders[0].Notes)
	}},
	"v23_latin1_undeclared.hl7": {valueOBX: 2, results: 2, warnings: []string{"MSH-18 102"}, check: func(t *testing.T, o *ORU) {
		require.Equal(t, "Lefèvre", o.Patients[0].FamilyName)
		require.Equal(t, "Résultat contrôlé", o.Orders[0].Observations[1].Value)
		require.Equal(t, time.Date(2024, 10, 12, 10, 10, 0, 0, time.UTC), o.Orders[0].ResultedAt, "MSH-7 without OBR-22")
	}},
	"v23_warnings.hl7": {valueOBX: 2, results: 2,
		warnings: []string{"MSH-7 102", "PID-7 102", "PID-8 103", "PV1-2 103", "ORC 100", "OBR-7 102", "OBX-14 102", "OBX[2]-2 103"},
		check: func(t *testing.T, o *ORU) {
			require.Equal(t, "0.9", o.Orders[0].Observations[0].Value)
			require.Equal(t, "ST", o.Orders[0].Observations[1].ValueType)
			require.True(t, o.Orders[0].ResultedAt.IsZero(), "no usable time: the receipt time is used")
		}},
	"v24_filler_only.hl7": {valueOBX: 1, results: 1, check: func(t *testing.T, o *ORU) {
		require.Empty(t, o.Orders[0].PlacerOrderNumber)
		id, _ := o.Orders[0].OrderNumber(NumberAuto)
		require.Equal(t, "L24062-1177", id)
		require.NoError(t, o.CheckOrderNumbers(NumberAuto))
		is, _ := IssueOf(o.CheckOrderNumbers(NumberPlacer))
		require.Equal(t, "ORC-2 101", fmt.Sprintf("%s %d", is.Location, is.Code))
		require.Equal(t, PatientID{ID: "M000482211", AssigningAuthority: "NGH", Type: "MR"}, o.Patients[0].MRN)
	}},
	"v24_odd_ranges.hl7": {valueOBX: 12, results: 12, check: func(t *testing.T, o *ORU) {
		want := [][2]*float64{
			{f64(3.5), f64(5.1)}, {f64(-3), f64(3)}, {f64(0.4), f64(1.5)}, {f64(4.3), f64(6.2)},
			{f64(70), f64(105)}, {nil, f64(1)}, {nil, f64(0.5)}, {f64(200), nil},
			{f64(60), nil}, {nil, f64(9)}, {nil, nil}, {nil, nil},
		}
		for i, ob := range o.Orders[0].Observations {
			require.Equal(t, want[i][0], ob.NormalLow, ob.ReferenceRange)
			require.Equal(t, want[i][1], ob.NormalHigh, ob.ReferenceRange)
			require.NotEmpty(t, ob.ReferenceRange, "the raw text is kept")
		}
		require.Equal(t, "< 9 mcg/dL", o.Orders[0].Observations[9].ReferenceRange)
	}},
	"v25_lead_after_spm.hl7": {valueOBX: 1, results: 1, check: func(t *testing.T, o *ORU) {
		ob := o.Orders[0].Observations[0]
		require.Equal(t, "50", ob.Value)
		require.Equal(t, []string{"H"}, ob.Flags)
		require.True(t, ob.Specimen)
		minus4 := time.FixedZone("", -4*3600)
		require.True(t, time.Date(2024, 5, 20, 14, 29, 0, 0, minus4).Equal(o.Orders[0].ResultedAt), "OBR-22, not OBR-7 two days earlier")
		require.True(t, time.Date(2024, 5, 18, 10, 15, 0, 0, minus4).Equal(o.Orders[0].CollectedAt))
	}},
	"v25_micro_coded_sn_ft.hl7": {valueOBX: 4, results: 4, check: func(t *testing.T, o *ORU) {
		obs := o.Orders[0].Observations
		require.Equal(t, "Staphylococcus aureus", obs[0].Value)
		require.Equal(t, []string{"AA"}, obs[1].Flags)
		require.Equal(t, ">1:128", obs[2].Value)
		require.Equal(t, "GRAM STAIN\nGram-positive cocci in clusters.\nSeen in 2 of 2 bottles.\n\nReported to Dr Lin 11:58.", obs[3].Value)
	}},
	"v251_bad_birthdate.hl7": {valueOBX: 1, results: 1, warnings: []string{"PID-7 102"}, check: func(t *testing.T, o *ORU) {
		require.True(t, o.Patients[0].BirthDate.IsZero())
		require.Equal(t, "31", o.Orders[0].Observations[0].Value)
		require.Equal(t, "E", o.Orders[0].Patient.Class)
	}},
	"v251_bloodgas_tx_narrative.hl7": {valueOBX: 9, results: 5, check: func(t *testing.T, o *ORU) {
		narrative := o.Orders[0].Observations[4]
		require.True(t, narrative.IsText())
		require.Len(t, narrative.Segments, 6, "six TX segments, one of them an empty line")
		require.Greater(t, len(narrative.Value), 500)
		require.True(t, strings.HasPrefix(narrative.Value, "ARTERIAL BLOOD GAS INTERPRETATION\nSample: radial artery"), narrative.Value)
		require.Contains(t, narrative.Value, "acute hypoventilation.\n\nPaO2 58 mmHg")
		require.True(t, strings.HasSuffix(narrative.Value, "urgent clinical review of ventilation."))
	}},
	"v251_elr_spm_with_specimen_obx.hl7": {valueOBX: 2, results: 2, check: func(t *testing.T, o *ORU) {
		obs := o.Orders[0].Observations
		require.Equal(t, "Campylobacter jejuni", obs[0].Value)
		require.Equal(t, []string{"Susceptibility testing to follow."}, obs[0].Notes)
		require.False(t, obs[0].Specimen)
		require.True(t, obs[1].Specimen)
		require.Equal(t, PatientID{ID: "686774009", AssigningAuthority: "MPI", Type: "MR"}, o.Patients[0].MRN)
		require.Equal(t, "ORD723222", o.Orders[0].PlacerOrderNumber)
	}},
	"v251_latin1_declared.hl7": {valueOBX: 1, results: 1, check: func(t *testing.T, o *ORU) {
		require.Equal(t, "Labor Dr. Müller", o.SendingFacility)
		require.Equal(t, "Jürgen Müller", o.Patients[0].Name)
		require.Equal(t, "Glukose (nüchtern)", o.Orders[0].Observations[0].Name)
		require.Equal(t, []string{"Kritischer Wert – telefonisch an Station übermittelt."}, o.Orders[0].Observations[0].Notes)
		require.Equal(t, "Dr. Björn Schäfer", o.Orders[0].OrderingProvider.Name)
	}},
	"v251_multi_obr.hl7": {valueOBX: 3, results: 3, check: func(t *testing.T, o *ORU) {
		require.Len(t, o.Orders, 3)
		require.Equal(t, o.Orders[0].PlacerOrderNumber, o.Orders[1].PlacerOrderNumber, "two reports of one order")
		require.Equal(t, "OBR[3]", o.Orders[2].OBR.String())
	}},
	"v251_obx_after_other_segments.hl7": {valueOBX: 2, results: 2, check: func(t *testing.T, o *ORU) {
		obs := o.Orders[0].Observations
		require.Equal(t, "12400", obs[0].Value)
		require.Equal(t, "2.8", obs[1].Value, "after FT1 and CTI")
		require.Equal(t, []string{"Result repeated and confirmed."}, obs[1].Notes)
	}},
	"v251_two_patients.hl7": {valueOBX: 2, results: 2, check: func(t *testing.T, o *ORU) {
		require.Len(t, o.Patients, 2)
		require.Equal(t, "LK-100201", o.Orders[0].Patient.MRN.ID)
		require.Equal(t, "LK-100877", o.Orders[1].Patient.MRN.ID)
		require.Equal(t, "Lactate", o.Orders[1].Observations[0].Name)
	}},
	"v251_refused_nm_text.hl7": {refusal: "OBX-5 102"},
	"v251_refused_no_test.hl7": {refusal: "OBR-4 101"},
}

func TestCorpus(t *testing.T) {
	for name, tc := range corpus {
		t.Run(name, func(t *testing.T) {
			m := mustParse(t, readTestdata(t, filepath.Join("corpus", name)))
			o, err := ParseORUIn(m, time.UTC)
			if tc.refusal != "" {
				require.Nil(t, o)
				is, ok := IssueOf(err)
				require.True(t, ok, "%v", err)
				require.Equal(t, tc.refusal, fmt.Sprintf("%s %d", is.Location, is.Code), is.Message)
				ack := mustParse(t, Ack{Code: AckReject, Text: err.Error(), Issues: []Issue{is}}.Build(m, time.Now()))
				require.Equal(t, strings.Fields(tc.refusal)[1], ack.First("ERR").Component(3, 1))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.valueOBX, countValueOBX(m), "value-carrying OBX in the file")
			requireEveryValueKept(t, m, o)
			results := 0
			for _, order := range o.Orders {
				results += len(order.Observations)
			}
			require.Equal(t, tc.results, results)
			var got []string
			for _, w := range o.Warnings {
				got = append(got, fmt.Sprintf("%s %d", w.Location, w.Code))
			}
			require.Equal(t, tc.warnings, got)
			ack := mustParse(t, Ack{Code: AckAccept, Text: "stored", Issues: o.Warnings}.Build(m, time.Now()))
			require.Len(t, ack.All("ERR"), len(tc.warnings), "one ERR with severity W per warning")
			for _, e := range ack.All("ERR") {
				require.Equal(t, "W", e.Field(4))
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

func TestCorpusTableIsComplete(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "corpus"))
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	require.Len(t, corpus, len(files))
	for _, f := range files {
		require.Contains(t, corpus, f)
	}
}

// countValueOBX counts the OBX segments whose OBX-5 is not empty.
func countValueOBX(m *Message) int {
	n := 0
	for _, s := range m.All("OBX") {
		if s.Repetitions(5) > 0 {
			n++
		}
	}
	return n
}

// requireEveryValueKept checks that each OBX carrying a value is part of
// exactly one result of the view.
func requireEveryValueKept(t testing.TB, m *Message, o *ORU) {
	t.Helper()
	seen := map[int]int{}
	for _, order := range o.Orders {
		for _, ob := range order.Observations {
			for _, l := range ob.Segments {
				seen[l.Position]++
			}
		}
	}
	for i := range m.Segments {
		s := &m.Segments[i]
		if s.Name == "OBX" && s.Repetitions(5) > 0 {
			require.Equal(t, 1, seen[i+1], "OBX in segment %d is in exactly one result", i+1)
		}
	}
}
