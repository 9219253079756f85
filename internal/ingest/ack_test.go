package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/hl7"
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
