package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// TestStoredHL7Fields checks the fields stored beside the values: PV1-2 as
// the order's patient_class, OBR-7 as collected_at, OBX-7 as sent as
// reference_range_text; and that a correction that carries neither PV1 nor
// OBR-7 keeps what was stored.
func TestStoredHL7Fields(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		b := setup(t, e)
		first := strings.Replace(string(oru("F1", "P-F", "K^Potassium", "K^Potassium||7.1|mmol/L|3.5 - 5.1 mmol/L|HH|||P")),
			"\rORC|", "\rPV1|1|E|ED^01\rORC|", 1)
		code, out := b.send(t, []byte(first))
		require.Equal(t, "AA", code, out.Reason)
		o := b.bill(t, "P-F")
		require.Equal(t, "E", o.PatientClass)
		r := o.Reports[0]
		require.NotNil(t, r.CollectedAt)
		require.Equal(t, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), *r.CollectedAt, "OBR-7")
		require.NotEqual(t, *r.CollectedAt, r.ResultedAt, "the clock does not start at collection")
		p := r.Parameters[0]
		require.Equal(t, "3.5 - 5.1 mmol/L", p.ReferenceRangeText)
		require.Equal(t, 3.5, *p.NormalLow)
		require.Equal(t, 5.1, *p.NormalHigh)

		correction := strings.Replace(string(oru("F2", "P-F", "K^Potassium", "K^Potassium||7.3|mmol/L|negative|HH|||C")),
			"|20261127080000|", "||", 1)
		code, out = b.send(t, []byte(correction))
		require.Equal(t, "AA", code, out.Reason)
		o = b.bill(t, "P-F")
		require.Equal(t, "E", o.PatientClass, "no PV1: the class stays")
		require.Equal(t, time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), *o.Reports[0].CollectedAt, "no OBR-7: the time stays")
		p = o.Reports[0].Parameters[0]
		require.Equal(t, "7.3", p.Value)
		require.Equal(t, "negative", p.ReferenceRangeText, "a text range is kept as sent")
		require.Nil(t, p.NormalLow)
		require.Nil(t, p.NormalHigh)
	})
}
