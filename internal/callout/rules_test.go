package callout

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNextState(t *testing.T) {
	t.Parallel()
	// The seed system's state table, every (state, selected, mode) case.
	tests := []struct {
		from      State
		selected  bool
		draft     bool
		want      State
		wantWrite bool
	}{
		{StatePending, true, false, StateDone, true},
		{StatePending, true, true, StateAttempted, true},
		{StatePending, false, false, StatePending, false},
		{StatePending, false, true, StatePending, false},
		{StateAttempted, true, false, StateDone, true},
		{StateAttempted, true, true, StateAttempted, true},
		{StateAttempted, false, false, StatePending, true},
		{StateAttempted, false, true, StatePending, true},
		{StateDone, true, false, StateDone, true},
		{StateDone, true, true, StateAttempted, true},
		{StateDone, false, false, StateDone, false},
		{StateDone, false, true, StateDone, false},
		{StateNormal, false, false, StateNormal, false},
		{StateAbnormal, false, true, StateAbnormal, false},
	}
	for _, tc := range tests {
		got, write := NextState(tc.from, tc.selected, tc.draft)
		require.Equal(t, tc.want, got, "%v selected=%v draft=%v", tc.from, tc.selected, tc.draft)
		require.Equal(t, tc.wantWrite, write, "%v selected=%v draft=%v", tc.from, tc.selected, tc.draft)
	}
}

func f(v float64) *float64 { return &v }

func TestParameterClass(t *testing.T) {
	t.Parallel()
	k := func(v, flag string) Parameter {
		return Parameter{Name: "K", Value: v, Flag: flag, NormalLow: f(3.5), NormalHigh: f(5.1), CriticalLow: f(2.5), CriticalHigh: f(6.5)}
	}
	tests := []struct {
		name string
		p    Parameter
		want Class
	}{
		{"inside normal", k("4.2", ""), ClassNormal},
		{"normal bound inclusive", k("5.1", ""), ClassNormal},
		{"above normal", k("5.2", ""), ClassAbnormal},
		{"critical bound inclusive", k("6.5", ""), ClassAbnormal},
		{"above critical", k("7.1", ""), ClassCritical},
		{"below critical", k("2.4", ""), ClassCritical},
		{"below normal", k("3.0", ""), ClassAbnormal},
		{"HH flag on a normal value", k("4.2", "HH"), ClassCritical},
		{"LL flag", Parameter{Value: "x", Flag: "LL"}, ClassCritical},
		{"AA flag lower case", Parameter{Value: "Positive", Flag: "aa"}, ClassCritical},
		{"H flag is abnormal only", Parameter{Value: "9", Flag: "H"}, ClassAbnormal},
		{"L flag", Parameter{Value: "1", Flag: " L "}, ClassAbnormal},
		{"A flag", Parameter{Value: "Positive", Flag: "A"}, ClassAbnormal},
		{"H flag but critical value: the limits win", k("7.0", "H"), ClassCritical},
		{"beyond measuring range", k(">10", ""), ClassCritical},
		{"text without flag", Parameter{Value: "Negative"}, ClassNormal},
		{"no limits", Parameter{Value: "100"}, ClassNormal},
		{"only critical high", Parameter{Value: "600", CriticalHigh: f(500)}, ClassCritical},
		{"unknown flag", Parameter{Value: "1", Flag: "N"}, ClassNormal},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.p.Class(), tc.name)
	}
}

func TestInitialState(t *testing.T) {
	t.Parallel()
	require.Equal(t, StateNormal, InitialState(nil))
	require.Equal(t, StateAbnormal, InitialState([]Parameter{{Value: "1", Flag: "H"}, {Value: "2"}}))
	require.Equal(t, StatePending, InitialState([]Parameter{{Value: "1", Flag: "H"}, {Value: "2", Flag: "HH"}}))
}

func TestDecideRecipientsAndPayload(t *testing.T) {
	t.Parallel()
	bill := Bill{ID: 1, LabBillID: "B1",
		Patient:  Contact{Name: "P", Email: "p@x.org"},
		Referral: Contact{Name: "R", Fax: "555"},
		Reports: []Report{{ID: 10, TestID: "T", TestName: "K", State: StatePending, SampleCollected: true,
			Parameters: []Parameter{{Name: "K", Value: "9", Flag: "HH"}}}},
	}
	p := Principal{LabID: 1, User: "Asha", Role: RoleStaff}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		pl   Payload
		ok   bool
	}{
		{"patient by email", Payload{IsPatient: true, SendEmail: true}, true},
		{"referral by fax", Payload{IsReferral: true, SendFax: true}, true},
		{"referral by email: no address", Payload{IsReferral: true, SendEmail: true}, false},
		{"patient by fax: no number", Payload{IsPatient: true, SendFax: true}, false},
		{"organization call only", Payload{IsOrganization: true}, true},
		{"nobody", Payload{}, false},
		{"covering doctor by email", Payload{IsReferral: true, SendEmail: true, NotifyToOthers: &OtherContact{Name: "Dr. B", Email: "b@x.org"}}, true},
	}
	for _, tc := range tests {
		plan, err := Decide(p, Settings{}, bill, Request{LabReportIDs: []int64{10}, Payload: tc.pl}, now)
		if !tc.ok {
			require.Equal(t, KindUnprocessable, ErrorKind(err), tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Len(t, plan.Records, 1)
	}
	// An attempt needs no recipient: nobody was reached.
	_, err := Decide(p, Settings{}, bill, Request{LabReportIDs: []int64{10}, IsDraft: true}, now)
	require.NoError(t, err)
	// Methods and recipients keep the seed mappers' order.
	pl := Payload{SendEmail: true, SendFax: true, IsOrganization: true, IsPatient: true, IsReferral: true}
	require.Equal(t, []string{"Fax", "Email"}, pl.Methods())
	require.Equal(t, []string{"Patient", "Referral", "Organization"}, pl.Recipients())
}

func TestParameterValueFromJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`{"name":"K","value":"7.1"}`, "7.1", false},
		{`{"name":"K","value":7.1}`, "7.1", false},
		{`{"name":"K","value":35}`, "35", false},
		{`{"name":"K","value":null}`, "", false},
		{`{"name":"K"}`, "", false},
		{`{"name":"K","value":true}`, "", true},
		{`{"name":"K","value":[1]}`, "", true},
		{`{"name":"K","value":"1","surprise":1}`, "", true},
		{`{"name":"K","normal_low":"x"}`, "", true},
	}
	for _, tc := range tests {
		var p Parameter
		err := json.Unmarshal([]byte(tc.in), &p)
		if tc.wantErr {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, p.Value, tc.in)
	}
}
