package callout

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCriticalLimitsText: critical limits read as limits, never as a range
// of fine values.
func TestCriticalLimitsText(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		lo, hi *float64
		want   string
	}{
		{f(2.5), f(6.5), "<2.5 or >6.5"},
		{nil, f(6.5), ">6.5"},
		{f(40), nil, "<40"},
		{nil, nil, ""},
		{f(0.05), f(1000), "<0.05 or >1000"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, CriticalLimitsText(tt.lo, tt.hi))
	}
}
