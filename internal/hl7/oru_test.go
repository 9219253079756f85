package hl7

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func f64(v float64) *float64 { return &v }

func date(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, loc)
}

func TestParseORUTestdata(t *testing.T) {
	minus5 := time.FixedZone("", -5*3600)
	plus2 := time.FixedZone("", 2*3600)
	tests := []struct {
		file string
		want *ORU
	}{
		{"oru_v23_basic.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "MSG00001",
			SendingApplication: "LAB", SendingFacility: "GENERAL HOSPITAL", Version: "2.3",
			Patient: Patient{ID: "123456", FamilyName: "DOE", GivenName: "JOHN", Name: "JOHN A DOE",
				BirthDate: date(1970, 4, 15, 0, 0, time.UTC), Sex: "M", Phone: "(217)555-0100"},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "ORD1001", FillerOrderNumber: "LAB5001", TestID: "BMP", TestName: "BASIC METABOLIC PANEL",
				OrderingProvider: Provider{ID: "1234", Name: "DR ROBERT SMITH"},
				ObservedAt:       date(2024, 3, 1, 7, 45, time.UTC), ResultStatus: "F",
				Observations: []Observation{
					{SetID: "1", ValueType: "NM", Code: "2951-2", Name: "SODIUM", Value: "140", Unit: "mmol/L",
						ReferenceRange: "135-145", NormalLow: f64(135), NormalHigh: f64(145), Flags: []string{"N"}, ResultStatus: "F"},
					{SetID: "2", ValueType: "NM", Code: "2823-3", Name: "POTASSIUM", Value: "5.6", Unit: "mmol/L",
						ReferenceRange: "3.5-5.1", NormalLow: f64(3.5), NormalHigh: f64(5.1), Flags: []string{"H"}, ResultStatus: "F"},
					{SetID: "3", ValueType: "NM", Code: "2345-7", Name: "GLUCOSE", Value: "62", Unit: "mg/dL",
						ReferenceRange: "70 - 99", NormalLow: f64(70), NormalHigh: f64(99), Flags: []string{"L"}, ResultStatus: "F"},
					{SetID: "4", ValueType: "NM", Code: "2160-0", Name: "CREATININE", Value: "0.9", Unit: "mg/dL",
						ReferenceRange: "0.6-1.2", NormalLow: f64(0.6), NormalHigh: f64(1.2), ResultStatus: "F"},
				},
			}},
		}},
		{"oru_v251_multi.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "CTRL-20240315-0042",
			SendingApplication: "LABSYS", SendingFacility: "ACME LAB", Version: "2.5.1",
			Patient: Patient{ID: "MRN445566", FamilyName: "O'NEIL", GivenName: "MARY", Name: "MARY K O'NEIL",
				BirthDate: date(1985, 12, 2, 0, 0, time.UTC), Sex: "F", Phone: "+1 801 5550199", Email: "mary.oneil@example.org"},
			Orders: []ORUOrder{
				{
					PlacerOrderNumber: "PLC-7788", FillerOrderNumber: "FIL-1122", TestID: "57021-8",
					TestName: "CBC W Auto Differential panel", OrderingProvider: Provider{ID: "5678", Name: "Dr. Alice B Jones"},
					ObservedAt: date(2024, 3, 15, 8, 15, minus5), ResultStatus: "F",
					Observations: []Observation{
						{SetID: "1", ValueType: "NM", Code: "718-7", Name: "Hemoglobin", Value: "6.1", Unit: "g/dL",
							ReferenceRange: "12.0-15.5", NormalLow: f64(12), NormalHigh: f64(15.5), Flags: []string{"LL", "A"}, ResultStatus: "F"},
						{SetID: "2", ValueType: "NM", Code: "6690-2", Name: "Leukocytes", Value: "11.2", Unit: "10*3/uL",
							ReferenceRange: "4.5-11.0", NormalLow: f64(4.5), NormalHigh: f64(11), Flags: []string{"H"}, ResultStatus: "F"},
						{SetID: "3", ValueType: "NM", Code: "777-3", Name: "Platelets", Value: "150", Unit: "10*3/uL",
							ReferenceRange: "150-400", NormalLow: f64(150), NormalHigh: f64(400), Flags: []string{"N"}, ResultStatus: "C"},
						{SetID: "4", ValueType: "ST", Code: "789-8", Name: "Erythrocytes", Value: "3.9", Unit: "10*6/uL",
							ReferenceRange: "3.8 - 5.2", NormalLow: f64(3.8), NormalHigh: f64(5.2), ResultStatus: "F"},
					},
				},
				{
					PlacerOrderNumber: "PLC-7789", FillerOrderNumber: "FIL-1123", TestID: "24323-8",
					TestName: "Comprehensive metabolic panel", OrderingProvider: Provider{ID: "9012", Name: "Dr. Marcus Wu"},
					ObservedAt: date(2024, 3, 15, 8, 15, minus5), ResultStatus: "P",
					Observations: []Observation{
						{SetID: "1", ValueType: "NM", Code: "2823-3", Name: "Potassium", Value: "6.8", Unit: "mmol/L",
							ReferenceRange: "3.5-5.1", NormalLow: f64(3.5), NormalHigh: f64(5.1), Flags: []string{"HH"}, ResultStatus: "F"},
						{SetID: "2", ValueType: "NM", Code: "2345-7", Name: "Glucose", Value: "45", Unit: "mg/dL",
							ReferenceRange: "70-99", NormalLow: f64(70), NormalHigh: f64(99), Flags: []string{"L"}, ResultStatus: "P"},
						{SetID: "3", ValueType: "CWE", Code: "5195-3", Name: "Hepatitis B surface Ag", Value: "Positive",
							Flags: []string{"A"}, ResultStatus: "F"},
						{SetID: "4", ValueType: "SN", Code: "1988-5", Name: "C reactive protein", Value: "<5", Unit: "mg/L",
							ReferenceRange: "<5", NormalHigh: f64(5), ResultStatus: "F"},
					},
				},
			},
		}},
		{"oru_escapes.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "ESC|001",
			SendingApplication: "LAB", SendingFacility: "R&D LAB", Version: "2.5",
			Patient: Patient{ID: "E123", FamilyName: "SMITH^JONES", GivenName: "ANNE|MARIE", Name: "ANNE|MARIE SMITH^JONES",
				BirthDate: date(1990, 1, 1, 0, 0, time.UTC), Sex: "F"},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "P1", FillerOrderNumber: "F1", TestID: "TST", TestName: `Test \ slash`,
				ObservedAt: date(2024, 3, 1, 8, 0, time.UTC),
				Observations: []Observation{
					{SetID: "1", ValueType: "ST", Code: "C1", Name: "Name with ~ tilde", Value: "A&B\rnext", Unit: "unit", ResultStatus: "F"},
					{SetID: "2", ValueType: "TX", Code: "NOTE", Name: "Note", Value: "Line one\nLine two\nSecond paragraph", ResultStatus: "F"},
					{SetID: "3", ValueType: "ST", Code: "C3", Name: "Unknown escape", Value: `keep \Q\ and \X0G\ and \unterminated`, ResultStatus: "F"},
				},
			}},
		}},
		{"oru_lf.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "LF-0001",
			SendingApplication: "POCT", SendingFacility: "WARD 7", Version: "2.4",
			Patient: Patient{ID: "LF42", FamilyName: "Brown", GivenName: "Tom", Name: "Tom Brown",
				BirthDate: date(1962, 1, 1, 0, 0, time.UTC), Sex: "M", Email: "tom.brown@example.com"},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "LF-PLC-1", FillerOrderNumber: "LF-FIL-1", TestID: "GLU", TestName: "Glucose POC",
				OrderingProvider: Provider{Name: "Eva Novak"}, ObservedAt: date(2024, 4, 2, 10, 10, plus2), ResultStatus: "F",
				Observations: []Observation{
					{SetID: "1", ValueType: "NM", Code: "GLU", Name: "Glucose", Value: "7.9", Unit: "mmol/L",
						ReferenceRange: "3.9-5.5", NormalLow: f64(3.9), NormalHigh: f64(5.5), Flags: []string{"H"}, ResultStatus: "F"},
				},
			}},
		}},
		{"oru_crlf_custom_delims.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "CD-1",
			SendingApplication: "LAB", SendingFacility: "SITE", Version: "2.5",
			Patient: Patient{ID: "CD77", FamilyName: "Green", GivenName: "Liz", Name: "Liz Green"},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "P9", FillerOrderNumber: "F9", TestID: "K", TestName: "Potassium",
				ObservedAt: date(2024, 5, 1, 0, 0, time.UTC),
				Observations: []Observation{
					{SetID: "1", ValueType: "NM", Code: "K", Name: "Potassium", Value: "4.1", Unit: "mmol/L",
						ReferenceRange: "3.5-5.1", NormalLow: f64(3.5), NormalHigh: f64(5.1), ResultStatus: "F"},
					{SetID: "2", ValueType: "ST", Code: "NOTE", Name: "Note", Value: "a!b@c$d$e", ResultStatus: "F"},
				},
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseORUIn(mustParse(t, readTestdata(t, tt.file)), time.UTC)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseORUUsesLocalTimeWithoutOffset(t *testing.T) {
	m := mustParse(t, readTestdata(t, "oru_v23_basic.hl7"))
	o, err := ParseORU(m)
	require.NoError(t, err)
	require.Equal(t, time.Local, o.Orders[0].ObservedAt.Location())
	berlin := time.FixedZone("CET", 3600)
	o, err = ParseORUIn(m, berlin)
	require.NoError(t, err)
	require.Equal(t, "2024-03-01T06:45:00Z", o.Orders[0].ObservedAt.UTC().Format(time.RFC3339))
}

func TestParseORUErrors(t *testing.T) {
	const msh = "MSH|^~\\&|LAB|FAC|CALLOUT|CLINIC|20240301||ORU^R01|C1|P|2.5\r"
	const pid = "PID|1||P1||DOE^JANE\r"
	const obr = "OBR|1|P|F|T^Test|||20240301\r"
	const obx = "OBX|1|NM|A^A||1\r"
	tests := []struct {
		name, input, want string
		notORU            bool
	}{
		{"ADT", string(readTestdata(t, "adt_a01.hl7")), `hl7: message is not ORU^R01: MSH-9 is "ADT^A01^ADT_A01"`, true},
		{"other trigger", strings.Replace(msh, "ORU^R01", "ORU^R30", 1) + obr, `MSH-9 is "ORU^R30"`, true},
		{"no MSH-9", "MSH|^~\\&|A\r" + obr, `MSH-9 is ""`, true},
		{"OBX before OBR", msh + pid + obx + obr, "hl7: segment 3 (OBX): OBX before any OBR", false},
		{"OBX between ORC and OBR", msh + pid + "ORC|RE|P\r" + obx + obr, "segment 4 (OBX): OBX after the ORC in segment 3 but before its OBR", false},
		{"two ORC", msh + "ORC|RE\rORC|RE\r" + obr, "segment 3 (ORC): second ORC without an OBR after the ORC in segment 2", false},
		{"ORC at end", msh + obr + obx + "NTE|1\rORC|RE\r", "segment 5 (ORC): ORC is not followed by an OBR", false},
		{"two patients", msh + pid + obr + obx + pid + obr, "segment 5 (PID): second PID (first in segment 2)", false},
		{"PID after OBR", msh + obr + pid, "segment 3 (PID): PID after ORC/OBR", false},
		{"no OBR", msh + pid + "NTE|1||x\r", "hl7: ORU^R01 has no OBR segment", false},
		{"bad OBR-7", msh + "OBR|1|P|F|T|||2024-03-01\r", `segment 2 (OBR): OBR-7 observation date/time: invalid HL7 timestamp "2024-03-01"`, false},
		{"bad PID-7", msh + "PID|1||X||A^B||19991332\r" + obr, `segment 2 (PID): PID-7 birth date: invalid HL7 timestamp "19991332"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseORUIn(mustParse(t, []byte(tt.input)), time.UTC)
			require.Nil(t, o)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.notORU, errors.Is(err, ErrNotORU))
		})
	}
	_, err := ParseORU(nil)
	require.EqualError(t, err, "hl7: message does not start with an MSH segment")
	_, err = ParseORU(&Message{Segments: []Segment{{Name: "PID"}}})
	require.Error(t, err)
}

func TestParseORUTolerance(t *testing.T) {
	const head = "MSH|^~\\&|LAB|FAC|CALLOUT|CLINIC|20240301||oru^r01|C1|P|2.5\r"
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, o *ORU)
	}{
		{"no PID, Z and NTE segments ignored", "ZAB|x\rOBR|1|P|F|T\rNTE|1||n\rOBX|1|NM|A||1\rZCD|y\r", func(t *testing.T, o *ORU) {
			require.Equal(t, Patient{}, o.Patient)
			require.Len(t, o.Orders[0].Observations, 1)
		}},
		{"PID-2 fallback and email in XTN.1", "PID|1|EXT9|||X^Y||||||||a@b.example\rOBR|1\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "EXT9", o.Patient.ID)
			require.Equal(t, "a@b.example", o.Patient.Email)
			require.Empty(t, o.Patient.Phone)
		}},
		{"alternate codes", "OBR|1|||^^^ALT^Alt name\rOBX|1|CE|^^^AC^Alt obs||^^^X1^Coded~Y2^Text Two|^cm\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "ALT", o.Orders[0].TestID)
			require.Equal(t, "Alt name", o.Orders[0].TestName)
			ob := o.Orders[0].Observations[0]
			require.Equal(t, "AC", ob.Code)
			require.Equal(t, "Alt obs", ob.Name)
			require.Equal(t, "Coded, Text Two", ob.Value)
			require.Equal(t, "cm", ob.Unit)
		}},
		{"test name falls back to id", "OBR|1|||GLU\rOBX|1|NM|K\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "GLU", o.Orders[0].TestName)
			require.Equal(t, "K", o.Orders[0].Observations[0].Name)
		}},
		{"NM takes first repetition; SN ratio", "OBR|1\rOBX|1|NM|A||5~6\rOBX|2|SN|B||^1^:^128\rOBX|3|ST|C||x^y&z\r", func(t *testing.T, o *ORU) {
			obs := o.Orders[0].Observations
			require.Equal(t, "5", obs[0].Value)
			require.Equal(t, "1:128", obs[1].Value)
			require.Equal(t, "x^y&z", obs[2].Value)
		}},
		{"OBX-8 as CWE and empty repetitions", "OBR|1\rOBX|1|NM|A||1|||H^High~~A^Abnormal\r", func(t *testing.T, o *ORU) {
			require.Equal(t, []string{"H", "A"}, o.Orders[0].Observations[0].Flags)
		}},
		{"SPM observations skipped, next OBR resets", "OBR|1\rOBX|1|NM|A||1\rSPM|1\rOBX|2|NM|V||3\rOBR|2\rOBX|1|NM|B||2\r", func(t *testing.T, o *ORU) {
			require.Len(t, o.Orders[0].Observations, 1)
			require.Len(t, o.Orders[1].Observations, 1)
			require.Equal(t, "B", o.Orders[1].Observations[0].Code)
		}},
		{"first name repetition without legal name", "PID|1||X||ALIAS^A~OTHER^B\rOBR|1\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "A ALIAS", o.Patient.Name)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseORUIn(mustParse(t, []byte(head+tt.body)), time.UTC)
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

func TestParseTS(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"", time.Time{}, ""},
		{"  ", time.Time{}, ""},
		{"2024", time.Date(2024, 1, 1, 0, 0, 0, 0, utc), ""},
		{"202403", time.Date(2024, 3, 1, 0, 0, 0, 0, utc), ""},
		{"20240315", time.Date(2024, 3, 15, 0, 0, 0, 0, utc), ""},
		{"2024031514", time.Date(2024, 3, 15, 14, 0, 0, 0, utc), ""},
		{"202403151422", time.Date(2024, 3, 15, 14, 22, 0, 0, utc), ""},
		{"20240315142233", time.Date(2024, 3, 15, 14, 22, 33, 0, utc), ""},
		{"20240315142233.1", time.Date(2024, 3, 15, 14, 22, 33, 100_000_000, utc), ""},
		{"20240315142233.1234", time.Date(2024, 3, 15, 14, 22, 33, 123_400_000, utc), ""},
		{"20240315142233.1234-0500", time.Date(2024, 3, 15, 19, 22, 33, 123_400_000, utc), ""},
		{"202403151422+0530", time.Date(2024, 3, 15, 8, 52, 0, 0, utc), ""},
		{"20240315-0000", time.Date(2024, 3, 15, 0, 0, 0, 0, utc), ""},
		{"20240229", time.Date(2024, 2, 29, 0, 0, 0, 0, utc), ""},
		{"20230229", time.Time{}, "day 29 does not exist in 2023-02"},
		{"20241301", time.Time{}, "out of range"},
		{"2024031525", time.Time{}, "out of range"},
		{"20240315142260", time.Time{}, "out of range"},
		{"202403151", time.Time{}, "9 digits"},
		{"24", time.Time{}, "2 digits"},
		{"2024-03-15", time.Time{}, "UTC offset"},
		{"20240315+5", time.Time{}, "UTC offset \"+5\""},
		{"20240315+1500", time.Time{}, "out of range"},
		{"202403151422.5", time.Time{}, "a fraction needs seconds"},
		{"20240315142233.", time.Time{}, "a fraction needs seconds"},
		{"20240315142233.1234567890", time.Time{}, "a fraction needs seconds"},
		{"2024O315", time.Time{}, "want digits"},
		{"+0100", time.Time{}, "want digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTS(tt.in, nil)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "got %v want %v", got, tt.want)
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in        string
		low, high *float64
	}{
		{"3.5-5.1", f64(3.5), f64(5.1)},
		{"3.5 - 5.1", f64(3.5), f64(5.1)},
		{" 70-99 ", f64(70), f64(99)},
		{"-1.0-2.0", f64(-1), f64(2)},
		{"-2--1", f64(-2), f64(-1)},
		{"-2.5 - -0.5", f64(-2.5), f64(-0.5)},
		{".5-1.", f64(0.5), f64(1)},
		{"<5", nil, f64(5)},
		{"< 5", nil, f64(5)},
		{"<=5.5", nil, f64(5.5)},
		{"≤5", nil, f64(5)},
		{">10", f64(10), nil},
		{">= 10", f64(10), nil},
		{"≥-3", f64(-3), nil},
		{"", nil, nil},
		{"negative", nil, nil},
		{"5", nil, nil},
		{"3.5-", nil, nil},
		{"3.5-5.1 mmol/L", nil, nil},
		{"<5 mg", nil, nil},
		{"Inf-NaN", nil, nil},
		{"0x10-0x20", nil, nil},
		{"1e3-2e3", nil, nil},
		{"1" + strings.Repeat("0", 400) + "-2", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			low, high := ParseRange(tt.in)
			require.Equal(t, tt.low, low)
			require.Equal(t, tt.high, high)
		})
	}
}
