package hl7

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOrderNumber(t *testing.T) {
	both := ORUOrder{PlacerOrderNumber: "PLC", FillerOrderNumber: "FIL"}
	fillerOnly := ORUOrder{FillerOrderNumber: "FIL"}
	placerOnly := ORUOrder{PlacerOrderNumber: "PLC"}
	tests := []struct {
		order     ORUOrder
		n         Numbering
		id, other string
	}{
		{both, NumberPlacer, "PLC", "FIL"},
		{both, NumberFiller, "FIL", "PLC"},
		{both, NumberAuto, "PLC", "FIL"},
		{fillerOnly, NumberPlacer, "", "FIL"},
		{fillerOnly, NumberFiller, "FIL", ""},
		{fillerOnly, NumberAuto, "FIL", ""},
		{placerOnly, NumberAuto, "PLC", ""},
		{placerOnly, NumberFiller, "", "PLC"},
		{both, "", "PLC", "FIL"},
	}
	for _, tt := range tests {
		id, other := tt.order.OrderNumber(tt.n)
		require.Equal(t, tt.id, id, "%+v %s", tt.order, tt.n)
		require.Equal(t, tt.other, other, "%+v %s", tt.order, tt.n)
	}
}

func TestParseNumbering(t *testing.T) {
	for _, s := range []string{"placer", "filler", "auto"} {
		n, err := ParseNumbering(s)
		require.NoError(t, err)
		require.Equal(t, Numbering(s), n)
	}
	_, err := ParseNumbering("Placer")
	require.ErrorContains(t, err, "want placer, filler or auto")
}

func TestCheckOrderNumbers(t *testing.T) {
	// The first order has an ORC with only a filler number; the second an
	// OBR with only a placer number.
	o, err := parseBody(t, "ORC|RE||FIL1\rOBR|1|||T1\rOBX|1|NM|A||1\rOBR|2|PLC2||T2\r")
	require.NoError(t, err)
	require.NoError(t, o.CheckOrderNumbers(NumberAuto))
	err = o.CheckOrderNumbers(NumberPlacer)
	is, ok := IssueOf(err)
	require.True(t, ok)
	require.Equal(t, CodeRequiredFieldMissing, is.Code)
	require.Equal(t, "ORC-2", is.Location.String())
	require.ErrorContains(t, err, "order 1 (test T1) has no placer order number (ORC-2/OBR-2)")
	is, _ = IssueOf(o.CheckOrderNumbers(NumberFiller))
	require.Equal(t, "OBR[2]-3", is.Location.String())
}
