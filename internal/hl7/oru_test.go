package hl7

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func f64(v float64) *float64 { return &v }

func date(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, loc)
}

// compact checks that every order carries its group's patient and the
// location of its OBR, then clears both and the observations' locations so
// a test can compare the rest of the view in one literal.
func compact(t *testing.T, o *ORU, groups ...int) *ORU {
	t.Helper()
	for i := range o.Orders {
		order := &o.Orders[i]
		g := 0
		if i < len(groups) {
			g = groups[i]
		}
		require.Equal(t, o.Patients[g], order.Patient, "order %d carries the patient of group %d", i+1, g)
		require.Equal(t, "OBR", order.OBR.Segment)
		order.Patient, order.ORC, order.OBR = Patient{}, Location{}, Location{}
		for j := range order.Observations {
			ob := &order.Observations[j]
			require.NotEmpty(t, ob.Segments)
			ob.Segments = nil
		}
	}
	return o
}

func TestParseORUTestdata(t *testing.T) {
	minus5 := time.FixedZone("", -5*3600)
	plus2 := time.FixedZone("", 2*3600)
	utc := time.UTC
	v251Sent := time.Date(2024, 3, 15, 14, 22, 33, 123_400_000, minus5)
	tests := []struct {
		file string
		want *ORU
	}{
		{"oru_v23_basic.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "MSG00001",
			SendingApplication: "LAB", SendingFacility: "GENERAL HOSPITAL", Version: "2.3",
			SentAt: time.Date(2024, 3, 1, 8, 35, 12, 0, utc),
			Patients: []Patient{{MRN: PatientID{ID: "123456", AssigningAuthority: "GH", Type: "MR"},
				FamilyName: "DOE", GivenName: "JOHN", Name: "JOHN A DOE",
				BirthDate: date(1970, 4, 15, 0, 0, utc), Sex: "M", Phone: "(217)555-0100", Class: "O"}},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "ORD1001", FillerOrderNumber: "LAB5001", TestID: "BMP", TestName: "BASIC METABOLIC PANEL",
				OrderingProvider: Provider{ID: "1234", Name: "DR ROBERT SMITH"},
				CollectedAt:      date(2024, 3, 1, 7, 45, utc), ResultedAt: time.Date(2024, 3, 1, 8, 35, 12, 0, utc), ResultStatus: "F",
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
			SendingApplication: "LABSYS", SendingFacility: "ACME LAB", Version: "2.5.1", SentAt: v251Sent,
			Patients: []Patient{{MRN: PatientID{ID: "MRN445566", AssigningAuthority: "ACME", Type: "MR"},
				FamilyName: "O'NEIL", GivenName: "MARY", Name: "MARY K O'NEIL",
				BirthDate: date(1985, 12, 2, 0, 0, utc), Sex: "F", Phone: "+1 801 5550199", Email: "mary.oneil@example.org", Class: "O"}},
			Orders: []ORUOrder{
				{
					PlacerOrderNumber: "PLC-7788", FillerOrderNumber: "FIL-1122", TestID: "57021-8",
					TestName: "CBC W Auto Differential panel", OrderingProvider: Provider{ID: "5678", Name: "Dr. Alice B Jones"},
					CollectedAt: date(2024, 3, 15, 8, 15, minus5), ResultedAt: date(2024, 3, 15, 14, 15, minus5), ResultStatus: "F",
					Observations: []Observation{
						{SetID: "1", ValueType: "NM", Code: "718-7", Name: "Hemoglobin", Value: "6.1", Unit: "g/dL",
							ReferenceRange: "12.0-15.5", NormalLow: f64(12), NormalHigh: f64(15.5), Flags: []string{"LL", "A"}, ResultStatus: "F",
							ObservedAt: date(2024, 3, 15, 9, 0, minus5)},
						{SetID: "2", ValueType: "NM", Code: "6690-2", Name: "Leukocytes", Value: "11.2", Unit: "10*3/uL",
							ReferenceRange: "4.5-11.0", NormalLow: f64(4.5), NormalHigh: f64(11), Flags: []string{"H"}, ResultStatus: "F"},
						{SetID: "3", ValueType: "NM", Code: "777-3", Name: "Platelets", Value: "150", Unit: "10*3/uL",
							ReferenceRange: "150-400", NormalLow: f64(150), NormalHigh: f64(400), Flags: []string{"N"}, ResultStatus: "C",
							Notes: []string{"Corrected result: the previously reported value 105 was wrong"}},
						{SetID: "4", ValueType: "ST", Code: "789-8", Name: "Erythrocytes", Value: "3.9", Unit: "10*6/uL",
							ReferenceRange: "3.8 - 5.2", NormalLow: f64(3.8), NormalHigh: f64(5.2), ResultStatus: "F"},
					},
				},
				{
					PlacerOrderNumber: "PLC-7789", FillerOrderNumber: "FIL-1123", TestID: "24323-8",
					TestName: "Comprehensive metabolic panel", OrderingProvider: Provider{ID: "9012", Name: "Dr. Marcus Wu"},
					CollectedAt: date(2024, 3, 15, 8, 15, minus5), ResultedAt: v251Sent, ResultStatus: "P",
					Observations: []Observation{
						{SetID: "1", ValueType: "NM", Code: "2823-3", Name: "Potassium", Value: "6.8", Unit: "mmol/L",
							ReferenceRange: "3.5-5.1", NormalLow: f64(3.5), NormalHigh: f64(5.1), Flags: []string{"HH"}, ResultStatus: "F"},
						{SetID: "2", ValueType: "NM", Code: "2345-7", Name: "Glucose", Value: "45", Unit: "mg/dL",
							ReferenceRange: "70-99", NormalLow: f64(70), NormalHigh: f64(99), Flags: []string{"L"}, ResultStatus: "P"},
						{SetID: "3", ValueType: "CWE", Code: "5195-3", Name: "Hepatitis B surface Ag", Value: "Positive",
							Flags: []string{"A"}, ResultStatus: "F"},
						{SetID: "4", ValueType: "SN", Code: "1988-5", Name: "C reactive protein", Value: "<5", Unit: "mg/L",
							ReferenceRange: "<5", NormalHigh: f64(5), ResultStatus: "F"},
						{SetID: "5", ValueType: "NM", Code: "SPVOL", Name: "Specimen volume", Value: "3", Unit: "mL",
							Specimen: true},
					},
				},
			},
		}},
		{"oru_escapes.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "ESC|001",
			SendingApplication: "LAB", SendingFacility: "R&D LAB", Version: "2.5", SentAt: date(2024, 3, 1, 12, 0, utc),
			Patients: []Patient{{MRN: PatientID{ID: "E123"}, FamilyName: "SMITH^JONES", GivenName: "ANNE|MARIE", Name: "ANNE|MARIE SMITH^JONES",
				BirthDate: date(1990, 1, 1, 0, 0, utc), Sex: "F"}},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "P1", FillerOrderNumber: "F1", TestID: "TST", TestName: `Test \ slash`,
				CollectedAt: date(2024, 3, 1, 8, 0, utc), ResultedAt: date(2024, 3, 1, 12, 0, utc),
				Observations: []Observation{
					{SetID: "1", ValueType: "ST", Code: "C1", Name: "Name with ~ tilde", Value: "A&B\nnext", Unit: "unit", ResultStatus: "F"},
					{SetID: "2", ValueType: "TX", Code: "NOTE", Name: "Note", Value: "Line one\nLine two\nSecond paragraph", ResultStatus: "F"},
					{SetID: "3", ValueType: "ST", Code: "C3", Name: "Unknown escape", Value: `keep \Q\ and \X0G\ and \unterminated`, ResultStatus: "F"},
				},
			}},
		}},
		{"oru_lf.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "LF-0001",
			SendingApplication: "POCT", SendingFacility: "WARD 7", Version: "2.4", SentAt: date(2024, 4, 2, 10, 15, plus2),
			Patients: []Patient{{MRN: PatientID{ID: "LF42"}, FamilyName: "Brown", GivenName: "Tom", Name: "Tom Brown",
				BirthDate: date(1962, 1, 1, 0, 0, utc), Sex: "M", Email: "tom.brown@example.com"}},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "LF-PLC-1", FillerOrderNumber: "LF-FIL-1", TestID: "GLU", TestName: "Glucose POC",
				OrderingProvider: Provider{Name: "Eva Novak"}, CollectedAt: date(2024, 4, 2, 10, 10, plus2),
				ResultedAt: date(2024, 4, 2, 10, 15, plus2), ResultStatus: "F",
				Observations: []Observation{
					{SetID: "1", ValueType: "NM", Code: "GLU", Name: "Glucose", Value: "7.9", Unit: "mmol/L",
						ReferenceRange: "3.9-5.5", NormalLow: f64(3.9), NormalHigh: f64(5.5), Flags: []string{"H"}, ResultStatus: "F"},
				},
			}},
		}},
		{"oru_crlf_custom_delims.hl7", &ORU{
			MessageType: "ORU", Trigger: "R01", ControlID: "CD-1",
			SendingApplication: "LAB", SendingFacility: "SITE", Version: "2.5", SentAt: date(2024, 5, 1, 0, 0, utc),
			Patients: []Patient{{MRN: PatientID{ID: "CD77"}, FamilyName: "Green", GivenName: "Liz", Name: "Liz Green"}},
			Orders: []ORUOrder{{
				PlacerOrderNumber: "P9", FillerOrderNumber: "F9", TestID: "K", TestName: "Potassium",
				CollectedAt: date(2024, 5, 1, 0, 0, utc), ResultedAt: date(2024, 5, 1, 0, 0, utc),
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
			require.Equal(t, tt.want, compact(t, got))
		})
	}
}

func TestParseORUUsesLocalTimeWithoutOffset(t *testing.T) {
	m := mustParse(t, readTestdata(t, "oru_v23_basic.hl7"))
	o, err := ParseORU(m)
	require.NoError(t, err)
	require.Equal(t, time.Local, o.Orders[0].CollectedAt.Location())
	berlin := time.FixedZone("CET", 3600)
	o, err = ParseORUIn(m, berlin)
	require.NoError(t, err)
	require.Equal(t, "2024-03-01T06:45:00Z", o.Orders[0].CollectedAt.UTC().Format(time.RFC3339))
	require.Equal(t, "1970-04-15T00:00:00Z", o.Patients[0].BirthDate.Format(time.RFC3339), "a birth date is a calendar date")
}

// parseBody parses an ORU^R01 made of the standard test header and body.
func parseBody(t *testing.T, body string) (*ORU, error) {
	t.Helper()
	const head = "MSH|^~\\&|LAB|FAC|CALLOUT|CLINIC|20240301101500||ORU^R01|C1|P|2.5.1\r"
	return ParseORUIn(mustParse(t, []byte(head+body)), time.UTC)
}

func TestParseORURefusals(t *testing.T) {
	const msh = "MSH|^~\\&|LAB|FAC|CALLOUT|CLINIC|20240301||ORU^R01|C1|P|2.5\r"
	const pid = "PID|1||P1||DOE^JANE\r"
	const obr = "OBR|1|P|F|T^Test|||20240301\r"
	const obx = "OBX|1|NM|A^A||1\r"
	tests := []struct {
		name, input string
		code        ErrorCode
		at          string // the location, as Location.String writes it
		want        string // part of the message
		notORU      bool
	}{
		{"ADT", string(readTestdata(t, "adt_a01.hl7")), CodeUnsupportedMessageType, "MSH-9.1", `not ORU^R01: the message type (MSH-9) is "ADT^A01^ADT_A01"`, true},
		{"other trigger", strings.Replace(msh, "ORU^R01", "ORU^R30", 1) + obr, CodeUnsupportedEvent, "MSH-9.2", `"ORU^R30"`, true},
		{"no MSH-9", "MSH|^~\\&|A\r" + obr, CodeUnsupportedMessageType, "MSH-9.1", `is ""`, true},
		{"version 3", strings.Replace(msh, "|2.5\r", "|3.0\r", 1) + obr, CodeUnsupportedVersion, "MSH-12", `"3.0"`, false},
		{"no control id", strings.Replace(msh, "|C1|", "||", 1) + obr, CodeRequiredFieldMissing, "MSH-10", "control id", false},
		{"OBX before OBR", msh + pid + obx + obr, CodeSegmentSequence, "OBX", "OBX before any OBR", false},
		{"OBX between ORC and OBR", msh + pid + "ORC|RE|P\r" + obx + obr, CodeSegmentSequence, "OBX", "follows the ORC in segment 3, which has no OBR", false},
		{"OBX after an ORC without OBR", msh + pid + obr + obx + "ORC|RE|P2\r" + obx, CodeSegmentSequence, "OBX[2]", "no test (OBR-4)", false},
		{"no OBR", msh + pid + "NTE|1||x\r", CodeSegmentSequence, "OBR", "has no OBR segment", false},
		{"only an ORC", msh + pid + "ORC|RE|P\r", CodeSegmentSequence, "OBR", "has no OBR segment", false},
		{"no test id", msh + "OBR|1|P|F|^no code\r", CodeRequiredFieldMissing, "OBR-4", "OBR-4", false},
		{"no order number", msh + "OBR|1|||T^Test\r", CodeRequiredFieldMissing, "OBR-2", "no number", false},
		{"no order number with ORC", msh + "ORC|RE\rOBR|1|||T^Test\r", CodeRequiredFieldMissing, "ORC-2", "no number", false},
		{"value without name", msh + obr + "OBX|1|NM|||5\r", CodeRequiredFieldMissing, "OBX-3", "OBX-3", false},
		{"NM not a number", msh + obr + "OBX|1|NM|K^Potassium||see note|mmol/L||||F\r", CodeDataType, "OBX-5", `"see note" is not a number`, false},
		{"NM with unit", msh + obr + obx + "OBX|2|NM|K^Potassium||6.8 mmol/L\r", CodeDataType, "OBX[2]-5", "not a number", false},
		{"NM decimal comma", msh + obr + "OBX|1|NM|K^Potassium||6,8\r", CodeDataType, "OBX-5", "not a number", false},
		{"SN bad comparator", msh + obr + "OBX|1|SN|CRP^CRP||~~^5\r", CodeDataType, "OBX-5", "not a structured numeric", false},
		{"SN text", msh + obr + "OBX|1|SN|CRP^CRP||^five\r", CodeDataType, "OBX-5", "not a structured numeric", false},
		{"value too long", msh + obr + "OBX|1|TX|REP^Report||" + strings.Repeat("x", MaxValueLen+1) + "\r", CodeDataType, "OBX-5", "longer than 65536 bytes", false},
		{"narrative too long once joined", msh + obr + "OBX|1|TX|REP^Report||" + strings.Repeat("x", MaxValueLen/2) + "\r" +
			"OBX|2|TX|REP^Report||" + strings.Repeat("y", MaxValueLen/2) + "\r", CodeDataType, "OBX[2]-5", "longer than", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseORUIn(mustParse(t, []byte(tt.input)), time.UTC)
			require.Nil(t, o)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.notORU, errors.Is(err, ErrNotORU))
			is, ok := IssueOf(err)
			require.True(t, ok, "the error carries an Issue for the ACK")
			require.Equal(t, tt.code, is.Code)
			require.Equal(t, SeverityError, is.Severity)
			require.Equal(t, tt.at, is.Location.String())
		})
	}
	_, err := ParseORU(nil)
	require.EqualError(t, err, "hl7: message does not start with an MSH segment")
	_, err = ParseORU(&Message{Segments: []Segment{{Name: "PID"}}})
	require.Error(t, err)
}

// TestParseORUKeepsStatusesWithoutValue checks that a non-numeric NM value
// is accepted when OBX-11 says no value is to be judged.
func TestParseORUKeepsStatusesWithoutValue(t *testing.T) {
	for _, status := range []string{"D", "X", "W", "N", "x"} {
		o, err := parseBody(t, "OBR|1|P|F|T\rOBX|1|NM|K^Potassium||TNP|mmol/L|||||"+status+"\r")
		require.NoError(t, err, status)
		require.Equal(t, "TNP", o.Orders[0].Observations[0].Value)
	}
}

func TestParseORUWarnings(t *testing.T) {
	const obr = "OBR|1|P|F|T^Test|||20240301080000\r"
	tests := []struct {
		name, body string
		want       []string // "<location> <code>" of each warning, in order
		check      func(t *testing.T, o *ORU)
	}{
		{"malformed PID-7", "PID|1||X||A^B||1980-01-01|F\r" + obr + "OBX|1|NM|G^Glucose||35\r", []string{"PID-7 102"}, func(t *testing.T, o *ORU) {
			require.True(t, o.Patients[0].BirthDate.IsZero())
			require.Equal(t, "F", o.Patients[0].Sex)
			require.Contains(t, o.Warnings[0].Message, `PID-7 birth date "1980-01-01"`)
		}},
		{"impossible PID-7", "PID|1||X||A^B||19991332\r" + obr, []string{"PID-7 102"}, nil},
		{"PID-8 outside table 0001", "PID|1||X||A^B||19800101|female\r" + obr, []string{"PID-8 103"}, func(t *testing.T, o *ORU) {
			require.Empty(t, o.Patients[0].Sex)
		}},
		{"PV1-2 outside table 0004", "PID|1||X\rPV1|1|ZZ\r" + obr, []string{"PV1-2 103"}, func(t *testing.T, o *ORU) {
			require.Empty(t, o.Orders[0].Patient.Class)
		}},
		{"malformed OBR-7 and OBR-22", "OBR|1|P|F|T|||2024-03-01 08:00|||||||||||||||yesterday\rOBX|1|NM|G||5\r", []string{"OBR-7 102", "OBR-22 102"}, func(t *testing.T, o *ORU) {
			require.True(t, o.Orders[0].CollectedAt.IsZero())
			require.Equal(t, date(2024, 3, 1, 10, 15, time.UTC), o.Orders[0].ResultedAt, "MSH-7 stands in")
		}},
		{"malformed OBX-14 and OBX-19", obr + "OBX|1|NM|G||5||||||F|||20240230|||||20241399\r", []string{"OBX-14 102", "OBX-19 102"}, nil},
		{"empty and unknown OBX-2", obr + "OBX|1||G^Glucose||5\rOBX|2|TEXT|C^Comment||fine\rOBX|3|ZZ|E^Empty||\r", []string{"OBX-2 101", "OBX[2]-2 103"}, func(t *testing.T, o *ORU) {
			obs := o.Orders[0].Observations
			require.Equal(t, "ST", obs[0].ValueType)
			require.Equal(t, "ST", obs[1].ValueType)
			require.Equal(t, "ZZ", obs[2].ValueType, "no value, nothing to read: no warning")
		}},
		{"orphan ORC", "ORC|RE|P0\r" + "ORC|RE|P\r" + obr + "OBX|1|NM|G||5\rORC|RE|P2\r", []string{"ORC 100", "ORC[3] 100"}, func(t *testing.T, o *ORU) {
			require.Len(t, o.Orders, 1)
			require.Equal(t, "ORC[2]", o.Orders[0].ORC.String())
		}},
		{"malformed MSH-7 is not in this header", obr, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseBody(t, tt.body)
			require.NoError(t, err)
			var got []string
			for _, w := range o.Warnings {
				require.Equal(t, SeverityWarning, w.Severity)
				got = append(got, fmt.Sprintf("%s %d", w.Location, w.Code))
			}
			require.Equal(t, tt.want, got)
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
	o, err := ParseORUIn(mustParse(t, []byte("MSH|^~\\&|L|F|C|C|20240230||ORU^R01|C1|P|2.5\rOBR|1|P|F|T\r")), time.UTC)
	require.NoError(t, err)
	require.Equal(t, "MSH-7", o.Warnings[0].Location.String())
	require.True(t, o.SentAt.IsZero())
}

func TestParseORUWarningsAreBounded(t *testing.T) {
	body := "OBR|1|P|F|T\r" + strings.Repeat("OBX|1|NM|G||5||||||F|||bad\r", 300)
	o, err := parseBody(t, body)
	require.NoError(t, err)
	require.Len(t, o.Warnings, maxWarnings)
	require.Len(t, o.Orders[0].Observations, 300)
}

func TestParseORUStructure(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, o *ORU)
	}{
		{"no PID, Z and NTE segments ignored", "ZAB|x\rOBR|1|P|F|T\rNTE|1||n\rOBX|1|NM|A||1\rZCD|y\r", func(t *testing.T, o *ORU) {
			require.Equal(t, []Patient{{}}, o.Patients)
			require.Len(t, o.Orders[0].Observations, 1)
			require.Equal(t, []string{"n"}, o.Orders[0].Notes)
		}},
		{"OBX after SPM are results of the order", "OBR|1|P|F|T\rOBX|1|NM|A||1\rSPM|1|S1||BLD|||||||||||||20240301073000\rOBX|2|NM|PB^Lead||50|ug/dL|<3.5|H\rSPM|2\rOBX|3|NM|V||3\rOBR|2|P|F|U\rOBX|1|NM|B||2\r", func(t *testing.T, o *ORU) {
			first := o.Orders[0].Observations
			require.Len(t, first, 3)
			require.False(t, first[0].Specimen)
			require.True(t, first[1].Specimen)
			require.Equal(t, "50", first[1].Value)
			require.Equal(t, []string{"H"}, first[1].Flags)
			require.True(t, first[2].Specimen)
			require.Equal(t, date(2024, 3, 1, 7, 30, time.UTC), o.Orders[0].CollectedAt, "SPM-17 when OBR-7 is empty")
			require.Len(t, o.Orders[1].Observations, 1)
			require.False(t, o.Orders[1].Observations[0].Specimen, "the next OBR ends the specimen group")
		}},
		{"OBX after TQ1, CTD, FT1 and CTI", "OBR|1|P|F|T\rNTE|1||order note\rTQ1|1\rCTD|1\rOBX|1|NM|A||1\rNTE|1||obs note~second line\rFT1|1\rCTI|1\rOBX|2|NM|B||2\r", func(t *testing.T, o *ORU) {
			obs := o.Orders[0].Observations
			require.Len(t, obs, 2)
			require.Equal(t, []string{"order note"}, o.Orders[0].Notes)
			require.Equal(t, []string{"obs note\nsecond line"}, obs[0].Notes)
			require.Empty(t, obs[1].Notes)
		}},
		{"two patients", "PID|1||M1^^^H^MR||ONE^A\rPV1|1|E\rOBR|1|P1|F|T\rOBX|1|NM|A||1\rPID|2||M2^^^H^MR||TWO^B\rPV1|1|I\rORC|RE|P2\rOBR|1||F2|T\rOBX|1|NM|A||2\r", func(t *testing.T, o *ORU) {
			require.Len(t, o.Patients, 2)
			require.Equal(t, "M1", o.Orders[0].Patient.MRN.ID)
			require.Equal(t, "E", o.Orders[0].Patient.Class)
			require.Equal(t, "M2", o.Orders[1].Patient.MRN.ID)
			require.Equal(t, "I", o.Orders[1].Patient.Class)
			require.Equal(t, "P2", o.Orders[1].PlacerOrderNumber)
		}},
		{"PV1 after the orders still applies", "PID|1||M1\rOBR|1|P|F|T\rPV1|1|O\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "O", o.Orders[0].Patient.Class)
		}},
		{"locations", "PID|1||X\rORC|RE|P\rOBR|1||F|T\rOBX|1|NM|A||1\rNTE|1||n\rOBX|2|NM|B||2\r", func(t *testing.T, o *ORU) {
			order := o.Orders[0]
			require.Equal(t, Location{Segment: "ORC", Sequence: 1, Position: 3}, order.ORC)
			require.Equal(t, Location{Segment: "OBR", Sequence: 1, Position: 4}, order.OBR)
			require.Equal(t, []Location{{Segment: "OBX", Sequence: 2, Position: 7}}, order.Observations[1].Segments)
		}},
		{"PID-2 fallback and email in XTN.1", "PID|1|EXT9|||X^Y||||||||a@b.example\rOBR|1|P|F|T\r", func(t *testing.T, o *ORU) {
			require.Equal(t, PatientID{ID: "EXT9"}, o.Patients[0].MRN)
			require.Equal(t, "a@b.example", o.Patients[0].Email)
			require.Empty(t, o.Patients[0].Phone)
		}},
		{"alternate codes", "OBR|1|P|F|^^^ALT^Alt name\rOBX|1|CE|^^^AC^Alt obs||^^^X1^Coded~Y2^Text Two|^cm\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "ALT", o.Orders[0].TestID)
			require.Equal(t, "Alt name", o.Orders[0].TestName)
			ob := o.Orders[0].Observations[0]
			require.Equal(t, "AC", ob.Code)
			require.Equal(t, "Alt obs", ob.Name)
			require.Equal(t, "Coded, Text Two", ob.Value)
			require.Equal(t, "cm", ob.Unit)
		}},
		{"test name falls back to id", "OBR|1|P|F|GLU\rOBX|1|NM|K\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "GLU", o.Orders[0].TestName)
			require.Equal(t, "K", o.Orders[0].Observations[0].Name)
			require.Empty(t, o.Orders[0].Observations[0].Value, "an OBX without value is kept, and needs no number")
		}},
		{"NM forms; SN ratio", "OBR|1|P|F|T\rOBX|1|NM|A||5~6\rOBX|2|SN|B||^1^:^128\rOBX|3|ST|C||x^y&z\rOBX|4|NM|D||<0.5\rOBX|5|NM|E|| >= 500 \rOBX|6|NM|F||1:64\rOBX|7|SN|G||<5\rOBX|8|SN|H||^2^+\rOBX|9|NM|I||.5\r", func(t *testing.T, o *ORU) {
			obs := o.Orders[0].Observations
			require.Equal(t, "5", obs[0].Value)
			require.Equal(t, "1:128", obs[1].Value)
			require.Equal(t, "x^y&z", obs[2].Value)
			require.Equal(t, "<0.5", obs[3].Value)
			require.Equal(t, ">= 500", obs[4].Value)
			require.Equal(t, "1:64", obs[5].Value)
			require.Equal(t, "<5", obs[6].Value)
			require.Equal(t, "2+", obs[7].Value)
			require.Equal(t, ".5", obs[8].Value)
		}},
		{"OBX-8 as CWE and empty repetitions", "OBR|1|P|F|T\rOBX|1|NM|A||1|||H^High~~A^Abnormal\r", func(t *testing.T, o *ORU) {
			require.Equal(t, []string{"H", "A"}, o.Orders[0].Observations[0].Flags)
		}},
		{"first name repetition without legal name", "PID|1||X||ALIAS^A~OTHER^B\rOBR|1|P|F|T\r", func(t *testing.T, o *ORU) {
			require.Equal(t, "A ALIAS", o.Patients[0].Name)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseBody(t, tt.body)
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

func TestParseORUPatientIdentity(t *testing.T) {
	tests := []struct {
		pid  string
		want PatientID
	}{
		{"PID|1||MRN1^^^ACME^MR", PatientID{ID: "MRN1", AssigningAuthority: "ACME", Type: "MR"}},
		{"PID|1||999^^^SSA^SS~MRN2^^^ACME&1.2.3&ISO^MR", PatientID{ID: "MRN2", AssigningAuthority: "ACME", Type: "MR"}},
		{"PID|1||999^^^SSA^SS~777^^^&2.16.840.1.113883.19.3.2.1&ISO^PI", PatientID{ID: "999", AssigningAuthority: "SSA", Type: "SS"}},
		{"PID|1||^^^X^MR~5^^^&2.16.840&ISO^PI", PatientID{ID: "5", AssigningAuthority: "2.16.840", Type: "PI"}},
		{"PID|1|EXT1^^^OLD||X", PatientID{ID: "EXT1", AssigningAuthority: "OLD"}},
		{"PID|1|||ALT1^^^H^MR|X", PatientID{ID: "ALT1", AssigningAuthority: "H", Type: "MR"}},
		{"PID|1||  M 7  ^^^H", PatientID{ID: "M 7", AssigningAuthority: "H"}},
		{"PID|1", PatientID{}},
	}
	for _, tt := range tests {
		t.Run(tt.pid, func(t *testing.T) {
			o, err := parseBody(t, tt.pid+"\rOBR|1|P|F|T\r")
			require.NoError(t, err)
			require.Equal(t, tt.want, o.Orders[0].Patient.MRN)
		})
	}
}

func TestParseORUResultedAt(t *testing.T) {
	sent := date(2024, 3, 1, 10, 15, time.UTC)
	tests := []struct {
		name, body string
		want       time.Time
	}{
		{"OBR-22", "OBR|1|P|F|T|||20240301070000|||||||||||||||20240301093000\rOBX|1|NM|A||1||||||F||||||||20240301094500\r", date(2024, 3, 1, 9, 30, time.UTC)},
		{"latest OBX-19", "OBR|1|P|F|T|||20240301070000\rOBX|1|NM|A||1||||||F||||||||20240301091000\rOBX|2|NM|B||1||||||F||||||||20240301094500\rOBX|3|NM|C||1\r", date(2024, 3, 1, 9, 45, time.UTC)},
		{"MSH-7", "OBR|1|P|F|T|||20240301070000\rOBX|1|NM|A||1||||||F|||20240301071000\r", sent},
		{"never OBR-7", "OBR|1|P|F|T|||20240228070000\r", sent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseBody(t, tt.body)
			require.NoError(t, err)
			require.Equal(t, tt.want, o.Orders[0].ResultedAt)
		})
	}
	o, err := ParseORUIn(mustParse(t, []byte("MSH|^~\\&|L|F|C|C|||ORU^R01|C1|P|2.5\rOBR|1|P|F|T\r")), time.UTC)
	require.NoError(t, err)
	require.True(t, o.Orders[0].ResultedAt.IsZero(), "nothing usable: the caller uses the receipt time")
}

func TestParseORUTextResults(t *testing.T) {
	tests := []struct {
		name, obx string
		want      []string // the value of each result
	}{
		{"consecutive TX of one observation joined",
			"OBX|1|TX|BG^Blood gas||Line 1\rOBX|2|TX|BG^Blood gas||Line 2\\.br\\Line 3\rOBX|3|TX|BG^Blood gas||\rOBX|4|TX|BG^Blood gas||Line 5  \r",
			[]string{"Line 1\nLine 2\nLine 3\n\nLine 5"}},
		{"NTE between the lines", "OBX|1|TX|BG||a\rNTE|1||n\rOBX|2|TX|BG||b\r", []string{"a\nb"}},
		{"another sub-id is another result", "OBX|1|TX|BG|1|a\rOBX|2|TX|BG|2|b\r", []string{"a", "b"}},
		{"another code is another result", "OBX|1|TX|BG||a\rOBX|2|TX|OTHER||b\r", []string{"a", "b"}},
		{"another value type is another result", "OBX|1|TX|BG||a\rOBX|2|ST|BG||b\r", []string{"a", "b"}},
		{"numbers are never joined", "OBX|1|NM|K||1\rOBX|2|NM|K||2\r", []string{"1", "2"}},
		{"an OBX between ends the text", "OBX|1|TX|BG||a\rOBX|2|NM|K||1\rOBX|3|TX|BG||b\r", []string{"a", "1", "b"}},
		{"a Z segment between ends the text", "OBX|1|TX|BG||a\rZXY|1\rOBX|2|TX|BG||b\r", []string{"a", "b"}},
		{"ST lines joined", "OBX|1|ST|CMT^Comment||first\rOBX|2|ST|CMT^Comment||second\r", []string{"first\nsecond"}},
		{"repetitions and CR LF", "OBX|1|TX|BG||a~b\\X0D0A\\c\\X0D\\d  \r", []string{"a\nb\nc\nd"}},
		{"FT formatting", "OBX|1|FT|R||\\H\\Result\\N\\:\\.sp 2\\\\.ti 4\\indented\\.in 2\\\\.ce\\centred\\.sk 2\\x\r", []string{"Result:\n\n    indented\ncentred  x"}},
		{"leading and trailing blank lines dropped", "OBX|1|TX|BG||\rOBX|2|TX|BG||a\rOBX|3|TX|BG||~\r", []string{"a"}},
		{"coded result long", "OBX|1|CWE|ORG^Organism||" + strings.Repeat("x", 600) + "^" + strings.Repeat("y", 600) + "\r", []string{strings.Repeat("y", 600)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseBody(t, "OBR|1|P|F|T\r"+tt.obx)
			require.NoError(t, err)
			var got []string
			for _, ob := range o.Orders[0].Observations {
				got = append(got, ob.Value)
			}
			require.Equal(t, tt.want, got)
		})
	}
	for _, next := range []string{"ORC|RE|P2\r", "PID|2||M2\r", "OBR|2|P2|F2|T2\r", "SPM|1\r"} {
		o, err := parseBody(t, "OBR|1|P|F|T\rOBX|1|TX|BG||a\rOBX|2|TX|BG||b\r"+next+"OBR|3|P3|F3|T3\rOBX|1|TX|BG||c\r")
		require.NoError(t, err, next)
		require.Equal(t, "a\nb", o.Orders[0].Observations[0].Value, "a narrative ends at %s", next)
		last := o.Orders[len(o.Orders)-1]
		require.Equal(t, "c", last.Observations[0].Value)
	}

	lines := strings.Repeat("OBX|1|TX|REP||x\r", 20000)
	o, err := parseBody(t, "OBR|1|P|F|T\r"+lines)
	require.NoError(t, err)
	require.Len(t, o.Orders[0].Observations, 1)
	require.Len(t, o.Orders[0].Observations[0].Value, 2*20000-1, "20000 one-letter lines")

	_, err = parseBody(t, "OBR|1|P|F|T\rOBX|1|TX|||\rOBX|2|TX|||text\r")
	require.ErrorContains(t, err, "OBX-3 (observation identifier) is empty", "a narrative needs a name too")

	long := strings.Repeat("x", MaxValueLen/2-1)
	o, err = parseBody(t, "OBR|1|P|F|T\rOBX|1|TX|REP||"+long+"\rOBX|2|TX|REP||"+long+"\r")
	require.NoError(t, err)
	ob := o.Orders[0].Observations[0]
	require.Len(t, ob.Value, MaxValueLen-1, "just under 64 KiB with the line break")
	require.True(t, ob.IsText())
	require.Len(t, ob.Segments, 2)
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
		{"-3-3", f64(-3), f64(3)},
		{"-1.0-2.0", f64(-1), f64(2)},
		{"-2--1", f64(-2), f64(-1)},
		{"-2.5 - -0.5", f64(-2.5), f64(-0.5)},
		{".4-1.5", f64(0.4), f64(1.5)},
		{".5-1.", f64(0.5), f64(1)},
		{"4.3 to 6.2", f64(4.3), f64(6.2)},
		{"4.3 TO 6.2", f64(4.3), f64(6.2)},
		{"4.3to6.2", f64(4.3), f64(6.2)},
		{"70_105", f64(70), f64(105)},
		{"3.5–5.1", f64(3.5), f64(5.1)},
		{"3.5-5.1 mmol/L", f64(3.5), f64(5.1)},
		{"4.0-11.0 10*9/L", f64(4), f64(11)},
		{"(3.5-5.1)", f64(3.5), f64(5.1)},
		{"[3.5-5.1]", f64(3.5), f64(5.1)},
		{"<1.0", nil, f64(1)},
		{"(<1.0)", nil, f64(1)},
		{"<5", nil, f64(5)},
		{"< 5", nil, f64(5)},
		{"<=5", nil, f64(5)},
		{"=<5", nil, f64(5)},
		{"<=5.5", nil, f64(5.5)},
		{"≤5", nil, f64(5)},
		{"< 9 mcg/dL", nil, f64(9)},
		{"<5 mg", nil, f64(5)},
		{">60", f64(60), nil},
		{"> 60 mL/min/1.73m2", f64(60), nil},
		{">10", f64(10), nil},
		{">= 10", f64(10), nil},
		{"≥-3", f64(-3), nil},
		{"", nil, nil},
		{"negative", nil, nil},
		{"Negative", nil, nil},
		{"Not detected", nil, nil},
		{"see comment", nil, nil},
		{"M 13-17 F 12-16", nil, nil},
		{"13-17 (M) 12-16 (F)", nil, nil},
		{"13-17 or 12-16", nil, nil},
		{"<1:10", nil, nil},
		{"5", nil, nil},
		{"3.5-", nil, nil},
		{"5.1-3.5", nil, nil},
		{"3.5-5.1mmol", nil, nil},
		{"3.5-5.1 6", nil, nil},
		{"<1e3", nil, nil},
		{"<0x10", nil, nil},
		{"Inf-NaN", nil, nil},
		{"0x10-0x20", nil, nil},
		{"1e3-2e3", nil, nil},
		{"4.3 tomorrow", nil, nil},
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

func TestValidNumeric(t *testing.T) {
	for _, s := range []string{"5", "-5", "+5", "5.", ".5", " 6.8 ", "<0.01", "> 500", ">=5", "<=5", "=5", "1:128", "1/64", "≤3"} {
		require.True(t, ValidNumeric(s), s)
	}
	for _, s := range []string{"", "see note", "6,8", "6.8 mmol/L", "1e3", "NaN", "Inf", "0x1F", "<", "5-10", "1:", "POS", "<<5", "1" + strings.Repeat("0", 400)} {
		require.False(t, ValidNumeric(s), s)
	}
}

func TestValidSN(t *testing.T) {
	tests := []struct {
		comp, n1, sep, n2 string
		ok                bool
	}{
		{">", "100", "", "", true},
		{"", "1", ":", "128", true},
		{"", "10", "-", "20", true},
		{"", "2", "+", "", true},
		{"<=", "0.5", "", "", true},
		{"<5", "", "", "", true},
		{"", "", ":", "128", true},
		{"", "", "", "", false},
		{"~", "5", "", "", false},
		{"", "five", "", "", false},
		{"", "1", "", "128", false},
		{"", "1", "x", "2", false},
		{"", "1", ":", "two", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.ok, validSN(tt.comp, tt.n1, tt.sep, tt.n2), "%q %q %q %q", tt.comp, tt.n1, tt.sep, tt.n2)
	}
}
