package callout

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// State is a report's callout state, the seed system's integer criticalValues.
type State int

// The report states. The numbers are the seed system's and appear on the wire.
const (
	StateNormal    State = 0 // no critical parameter
	StatePending   State = 1 // critical, nobody reached yet
	StateDone      State = 2 // called out
	StateAbnormal  State = 3 // outside normal limits, not critical
	StateAttempted State = 4 // someone tried and could not complete
)

// WorklistStates are the states the worklist shows by default
// (the seed's WORKLIST_CALLOUT_CRITICAL_VALUES).
var WorklistStates = []State{StateDone, StatePending, StateAttempted}

// Valid reports whether s is one of the five known states.
func (s State) Valid() bool {
	return s >= StateNormal && s <= StateAttempted
}

// Critical reports whether a report in state s has a critical result, that is
// whether it may be called out.
func (s State) Critical() bool {
	return s == StatePending || s == StateDone || s == StateAttempted
}

func (s State) String() string {
	switch s {
	case StateNormal:
		return "NORMAL"
	case StatePending:
		return "CALLOUT_PENDING"
	case StateDone:
		return "CALLOUT_DONE"
	case StateAbnormal:
		return "ABNORMAL"
	case StateAttempted:
		return "CALLOUT_ATTEMPTED"
	}
	return "STATE_" + strconv.Itoa(int(s))
}

// Class is how far outside its limits one result parameter lies.
type Class int

// The classes of a parameter, from harmless to life-threatening.
const (
	ClassNormal Class = iota
	ClassAbnormal
	ClassCritical
)

// Parameter is one measured value of a report (Potassium in Serum
// Electrolytes), with the limits it is judged against.
type Parameter struct {
	ID           int64    `json:"id,omitempty"`
	Name         string   `json:"name"`
	Value        string   `json:"value"`
	Unit         string   `json:"unit"`
	NormalLow    *float64 `json:"normal_low"`
	NormalHigh   *float64 `json:"normal_high"`
	CriticalLow  *float64 `json:"critical_low"`
	CriticalHigh *float64 `json:"critical_high"`
	Flag         string   `json:"flag"`
	// ReferenceRangeText is the reference range as the lab wrote it (HL7
	// OBX-7: "3.5-5.1", "<1.0", "negative"), shown beside the value;
	// NormalLow and NormalHigh are what of it is numeric.
	ReferenceRangeText string `json:"reference_range_text"`
}

// Interpretation flags (HL7 v2 table 0078, FHIR ObservationInterpretation).
// Only the doubled letters are critical; a plain H, L or A is abnormal.
var flagClass = map[string]Class{
	"HH": ClassCritical, "LL": ClassCritical, "AA": ClassCritical,
	"H": ClassAbnormal, "L": ClassAbnormal, "A": ClassAbnormal,
}

// Class judges the parameter. A value outside the critical range or flagged
// HH/LL/AA is critical; outside the normal range or flagged H/L/A abnormal.
// The flag and the limits are both checked and the worse one wins: a lab
// that forgot a flag must not hide a critical value (fail-safe).
func (p Parameter) Class() Class {
	c := flagClass[strings.ToUpper(strings.TrimSpace(p.Flag))]
	v, ok := p.Numeric()
	if !ok {
		return c
	}
	switch {
	case below(v, p.CriticalLow) || above(v, p.CriticalHigh):
		return ClassCritical
	case below(v, p.NormalLow) || above(v, p.NormalHigh):
		c = max(c, ClassAbnormal)
	}
	return c
}

// Numeric returns the value as a number when it is one. Values such as
// "<0.01" or ">500" are read as their bound, which is how analysers report
// results beyond their measuring range.
func (p Parameter) Numeric() (float64, bool) {
	s := strings.TrimSpace(p.Value)
	s = strings.TrimLeft(s, "<>=")
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

func below(v float64, limit *float64) bool { return limit != nil && v < *limit }
func above(v float64, limit *float64) bool { return limit != nil && v > *limit }

// InitialState is the state a report starts in given its parameters:
// pending callout when any parameter is critical, abnormal when any is
// abnormal, normal otherwise.
func InitialState(params []Parameter) State {
	worst := ClassNormal
	for _, p := range params {
		worst = max(worst, p.Class())
	}
	switch worst {
	case ClassCritical:
		return StatePending
	case ClassAbnormal:
		return StateAbnormal
	}
	return StateNormal
}

// CriticalParameters returns the parameters of params that are critical, in order.
func CriticalParameters(params []Parameter) []Parameter {
	var out []Parameter
	for _, p := range params {
		if p.Class() == ClassCritical {
			out = append(out, p)
		}
	}
	return out
}

// UnmarshalJSON reads a parameter from JSON, taking its value as a string
// or as a number (a result of 7.1 is as natural to send as "7.1"; the
// number's text is kept as sent). Unknown fields are refused as elsewhere.
func (p *Parameter) UnmarshalJSON(b []byte) error {
	type plain Parameter
	var aux struct {
		plain
		Value json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*p = Parameter(aux.plain)
	v := bytes.TrimSpace(aux.Value)
	switch {
	case len(v) == 0 || string(v) == "null":
		p.Value = ""
	case v[0] == '"':
		return json.Unmarshal(v, &p.Value)
	default:
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return &json.UnmarshalTypeError{Value: "non-string", Type: reflect.TypeFor[string](), Field: "value"}
		}
		p.Value = n.String()
	}
	return nil
}

// RangeText shows a range the way a lab writes it: "3.5–5.1", "≥ 20" or
// "≤ 450"; "" when there is neither bound.
func RangeText(lo, hi *float64) string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch {
	case lo != nil && hi != nil:
		return num(*lo) + "–" + num(*hi)
	case lo != nil:
		return "≥ " + num(*lo)
	case hi != nil:
		return "≤ " + num(*hi)
	}
	return ""
}

// CriticalLimitsText shows critical limits as the limits they are: a value
// below the low one or above the high one is critical, so "<2.5 or >6.5",
// ">6.5" with only a high limit, "<2.5" with only a low one; "" with
// neither. Written as a range ("2.5–6.5") it reads like the values that
// are fine, the opposite of what it means.
func CriticalLimitsText(lo, hi *float64) string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch {
	case lo != nil && hi != nil:
		return "<" + num(*lo) + " or >" + num(*hi)
	case lo != nil:
		return "<" + num(*lo)
	case hi != nil:
		return ">" + num(*hi)
	}
	return ""
}
