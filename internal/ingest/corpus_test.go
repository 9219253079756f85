package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/ingest"
	"callout/internal/storetest"
)

// corpusDir is the hl7 package's corpus of realistic ORU^R01 messages
// (versions 2.3 to 2.5.1, one or more per class of problem real senders
// cause); see internal/hl7/corpus_test.go for what the parser makes of each.
const corpusDir = "../hl7/testdata/corpus"

// corpusFacilities are the sending facilities (MSH-4.1, decoded) of the
// corpus; the replay's lab accepts them all.
var corpusFacilities = []string{
	"RIVERSIDE CLINICAL LAB", "ST MARY LAB", "Laboratoire Pasteur", "COUNTY LAB", "NORTHGATE HOSP LAB",
	"SUMMIT LAB", "MERCY LAB", "CITY GENERAL ICU LAB", "NIST Lab Facility", "Labor Dr. Müller",
	"VALLEY REGIONAL LAB", "CROSSROADS LAB", "ACME LAB", "EMERGENCY POCT", "PB LAB", "UNIVERSITY MICRO",
}

// replayCase is what storing one corpus message must do.
type replayCase struct {
	ack string // MSA-1
	// errs lists the ACK's ERR segments as "ERR-2 ERR-3.1 ERR-4", in order.
	errs []string
	// joined is the number of value-carrying TX OBX that continue the
	// narrative of the OBX before them and so are stored in its result:
	// results stored = value-carrying result OBX - joined.
	joined int
	check  func(t *testing.T, b *testBundle)
}

var replay = map[string]replayCase{
	"v23_cbc_no_orc.hl7": {ack: "AA", check: func(t *testing.T, b *testBundle) {
		o := b.bill(t, "A55102")
		require.Equal(t, "I", o.PatientClass, "PV1-2")
		r := o.Reports[0]
		require.Equal(t, time.Date(2024, 6, 12, 10, 15, 0, 0, time.UTC), r.ResultedAt, "OBR-22")
		require.NotNil(t, r.CollectedAt)
		require.Equal(t, time.Date(2024, 6, 12, 8, 45, 0, 0, time.UTC), *r.CollectedAt, "OBR-7")
	}},
	"v231_chem_nte_everywhere.hl7": {ack: "AA"},
	"v23_latin1_undeclared.hl7":    {ack: "AA", errs: []string{"MSH^1^18^1 102 W"}},
	"v23_warnings.hl7": {ack: "AA", errs: []string{"MSH^1^7^1 102 W", "PID^1^7^1 102 W", "PID^1^8^1 103 W", "PV1^1^2^1 103 W",
		"ORC^1 100 W", "OBR^1^7^1 102 W", "OBX^1^14^1 102 W", "OBX^2^2^1 103 W"}},
	"v24_filler_only.hl7": {ack: "AA", check: func(t *testing.T, b *testBundle) {
		o := b.bill(t, "L24062-1177") // auto numbering: OBR-3, as OBR-2 and ORC-2 are empty
		require.Empty(t, o.AccessionNumber)
	}},
	"v24_odd_ranges.hl7": {ack: "AA", check: func(t *testing.T, b *testBundle) {
		ps := b.onlyBill(t).Reports[0].Parameters
		require.Len(t, ps, 12)
		for _, p := range ps {
			require.NotEmpty(t, p.ReferenceRangeText, "OBX-7 is always kept: %s", p.Name)
		}
		require.Equal(t, "< 9 mcg/dL", ps[9].ReferenceRangeText)
		require.Nil(t, ps[9].NormalLow)
		require.Equal(t, 9.0, *ps[9].NormalHigh)
		require.Equal(t, "4.3 to 6.2", ps[3].ReferenceRangeText)
		require.Equal(t, [2]float64{4.3, 6.2}, [2]float64{*ps[3].NormalLow, *ps[3].NormalHigh})
	}},
	"v251_bad_birthdate.hl7": {ack: "AA", errs: []string{"PID^1^7^1 102 W"}, check: func(t *testing.T, b *testBundle) {
		require.Equal(t, "E", b.onlyBill(t).PatientClass)
	}},
	"v251_bloodgas_tx_narrative.hl7": {ack: "AA", joined: 4, check: func(t *testing.T, b *testBundle) {
		ps := b.onlyBill(t).Reports[0].Parameters
		narrative := ps[len(ps)-1].Value
		require.Greater(t, len(narrative), 500, "longer than the old 500-byte limit")
		require.True(t, strings.HasPrefix(narrative, "ARTERIAL BLOOD GAS INTERPRETATION\nSample: radial artery"), "\\.br\\ is a line break")
		require.Contains(t, narrative, "acute hypoventilation.\n\nPaO2 58 mmHg", "the TX segments in order, the empty one an empty line")
		require.True(t, strings.HasSuffix(narrative, "urgent clinical review of ventilation."))
	}},
	"v251_elr_spm_with_specimen_obx.hl7": {ack: "AA"},
	"v251_latin1_declared.hl7":           {ack: "AA"},
	"v251_multi_obr.hl7":                 {ack: "AA"},
	"v251_obx_after_other_segments.hl7":  {ack: "AA"},
	"v251_refused_nm_text.hl7":           {ack: "AR", errs: []string{"OBX^1^5^1 102 E"}},
	"v251_refused_no_test.hl7":           {ack: "AR", errs: []string{"OBR^1^4^1 101 E"}},
	"v251_two_patients.hl7":              {ack: "AA"},
	"v25_lead_after_spm.hl7": {ack: "AA", check: func(t *testing.T, b *testBundle) {
		r := b.onlyBill(t).Reports[0]
		require.Len(t, r.Parameters, 1, "the lead result after SPM is stored")
		require.Equal(t, "50", r.Parameters[0].Value)
		require.Equal(t, callout.StateAbnormal, r.State, "flagged H")
		require.Equal(t, time.Date(2024, 5, 20, 18, 29, 0, 0, time.UTC), r.ResultedAt, "OBR-22, not OBR-7")
		require.Equal(t, time.Date(2024, 5, 18, 14, 15, 0, 0, time.UTC), *r.CollectedAt, "OBR-7")
	}},
	"v25_micro_coded_sn_ft.hl7": {ack: "AA"},
}

// TestCorpusReplay sends every corpus message through the real ingest on
// each engine and checks the acknowledgement (MSA-1 and every ERR) and
// that each value-carrying result OBX is stored: the number of results
// stored equals the number of such segments, less the TX segments joined
// into the narrative before them. A refused message stores nothing.
func TestCorpusReplay(t *testing.T) {
	entries, err := os.ReadDir(corpusDir)
	require.NoError(t, err)
	require.Len(t, replay, len(entries), "every corpus file has a case")
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		for _, entry := range entries {
			name := entry.Name()
			tc, ok := replay[name]
			require.True(t, ok, "no case for %s", name)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				fx := storetest.NewFixture(t, e, callout.Settings{})
				numbering, err := fx.Store.LabHL7Numbering(ctx, fx.Lab)
				require.NoError(t, err)
				require.Equal(t, "auto", numbering, "a new lab numbers orders auto")
				fs := make([]callout.HL7Facility, len(corpusFacilities))
				for i, f := range corpusFacilities {
					fs[i].Name = f
				}
				require.NoError(t, fx.Store.SetHL7Facilities(ctx, fx.Lab, fs, numbering))
				b := &testBundle{fx: fx, in: &ingest.Ingester{Store: fx.Store, Location: time.UTC}}

				raw, err := os.ReadFile(filepath.Join(corpusDir, name))
				require.NoError(t, err)
				ack, out := b.in.Process(ctx, raw)
				m, err := hl7.Parse(ack)
				require.NoError(t, err)
				require.Equal(t, tc.ack, m.First("MSA").Field(1), out.Reason)
				var errs []string
				for _, s := range m.All("ERR") {
					errs = append(errs, s.Text(2, 1)+" "+s.Component(3, 1)+" "+s.Field(4))
				}
				require.Equal(t, tc.errs, errs)

				stored := count(t, b, "report_parameters")
				if tc.ack != "AA" {
					require.Zero(t, stored, "a refused message stores nothing")
					require.Zero(t, count(t, b, "bills"))
					return
				}
				msg, err := hl7.Parse(raw)
				require.NoError(t, err)
				valueOBX := 0
				for _, s := range msg.All("OBX") {
					if s.Repetitions(5) > 0 {
						valueOBX++
					}
				}
				require.Positive(t, valueOBX)
				require.Equal(t, valueOBX-tc.joined, stored, "results stored = value-carrying result OBX")
				if tc.check != nil {
					tc.check(t, b)
				}
			})
		}
	})
}

func count(t *testing.T, b *testBundle, table string) int {
	t.Helper()
	var n int
	require.NoError(t, b.fx.Store.DB.QueryRow(`SELECT COUNT(*) FROM `+table).Scan(&n))
	return n
}

// onlyBill returns the one order of the bundle's lab, in full.
func (b *testBundle) onlyBill(t *testing.T) callout.Bill {
	t.Helper()
	var labBillID string
	require.NoError(t, b.fx.Store.DB.QueryRow(`SELECT lab_bill_id FROM bills`).Scan(&labBillID))
	return b.bill(t, labBillID)
}
