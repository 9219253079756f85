package hl7

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests in this file reproduce, one each, the parsing defects reported
// in issue 10; each failed on the parser before the fix.

const defectHead = "MSH|^~\\&|LAB|ACME LAB|CALLOUT|CLINIC|20240301120000||ORU^R01|D1|P|2.5.1\r" +
	"PID|1||MRN1^^^ACME^MR||DOE^JANE||19800101|F\r" +
	"ORC|RE|PLC1|FIL1\r" +
	"OBR|1|PLC1|FIL1|PB^Lead panel|||20240301080000\r"

func TestDefectOBXAfterSPMIsKept(t *testing.T) {
	raw := defectHead + "SPM|1|SP1||BLD^Whole blood\r" +
		"OBX|1|NM|5671-3^Lead^LN||50|ug/dL|<3.5|H|||F\r"
	o, err := ParseORUIn(mustParse(t, []byte(raw)), time.UTC)
	require.NoError(t, err)
	require.Len(t, o.Orders[0].Observations, 1, "the lead result after SPM is a result of the order")
	require.Equal(t, "50", o.Orders[0].Observations[0].Value)
}

func TestDefectMalformedBirthDateDoesNotRefuse(t *testing.T) {
	raw := strings.Replace(defectHead, "19800101", "1980-01-01", 1) +
		"OBX|1|NM|2345-7^Glucose^LN||35|mg/dL|70-99|LL|||F\r"
	o, err := ParseORUIn(mustParse(t, []byte(raw)), time.UTC)
	require.NoError(t, err, "PID-7 is not needed to call out a glucose of 35")
	require.Equal(t, "35", o.Orders[0].Observations[0].Value)
}

func TestDefectMalformedCollectionTimeDoesNotRefuse(t *testing.T) {
	raw := strings.Replace(defectHead, "20240301080000", "2024-03-01 08:00", 1) +
		"OBX|1|NM|2345-7^Glucose^LN||35|mg/dL|70-99|LL|||F\r"
	_, err := ParseORUIn(mustParse(t, []byte(raw)), time.UTC)
	require.NoError(t, err)
}

func TestDefectConsecutiveTXJoined(t *testing.T) {
	raw := defectHead +
		"OBX|1|TX|BGREP^Blood gas report||Arterial blood gas, room air.\\.br\\pH 7.12 (low)||||||F\r" +
		"OBX|2|TX|BGREP^Blood gas report||pCO2 78 mmHg: acute respiratory acidosis.||||||F\r"
	o, err := ParseORUIn(mustParse(t, []byte(raw)), time.UTC)
	require.NoError(t, err)
	obs := o.Orders[0].Observations
	require.Len(t, obs, 1, "one narrative in two OBX")
	require.Equal(t, "Arterial blood gas, room air.\npH 7.12 (low)\npCO2 78 mmHg: acute respiratory acidosis.", obs[0].Value)
}

func TestDefectUnparseableNumericValueRefused(t *testing.T) {
	raw := defectHead + "OBX|1|NM|2823-3^Potassium^LN||see note|mmol/L|3.5-5.1||||F\r"
	_, err := ParseORUIn(mustParse(t, []byte(raw)), time.UTC)
	require.Error(t, err, "an NM result without a number cannot be judged")
}

func TestDefectRangeForms(t *testing.T) {
	tests := []struct {
		in        string
		low, high *float64
	}{
		{"4.3 to 6.2", f64(4.3), f64(6.2)},
		{"70_105", f64(70), f64(105)},
		{"(<1.0)", nil, f64(1)},
		{"< 9 mcg/dL", nil, f64(9)},
		{".4-1.5", f64(0.4), f64(1.5)},
		{"-3-3", f64(-3), f64(3)},
	}
	for _, tt := range tests {
		low, high := ParseRange(tt.in)
		require.Equal(t, tt.low, low, tt.in)
		require.Equal(t, tt.high, high, tt.in)
	}
}

func TestDefectLatin1Decoded(t *testing.T) {
	raw := "MSH|^~\\&|LAB|ACME LAB|CALLOUT|CLINIC|20240301120000||ORU^R01|D1|P|2.5.1|||||DEU|8859/1\r" +
		"PID|1||MRN1||M\xfcller^J\xfcrgen\r"
	m, err := Parse([]byte(raw))
	require.NoError(t, err)
	require.Equal(t, "Müller", m.First("PID").Sub(5, 1, 1))
}

func TestDefectMSA3AtMost80(t *testing.T) {
	long := strings.Repeat("x", 200)
	ack := mustParse(t, NewACK(nil, AckReject, long, "", time.Now()))
	require.LessOrEqual(t, len(ack.Get("MSA", 3)), 80)
}
