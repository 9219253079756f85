package notify

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSubject(t *testing.T) {
	require.Equal(t, "Critical Results Alert from Acme Diagnostics for Order ID - ORD-2024-0042",
		Subject("Acme Diagnostics", "ORD-2024-0042"))
	r, err := NewRenderer(context.Background(), "")
	require.NoError(t, err)
	out, err := r.Render(context.Background(), testContent())
	require.NoError(t, err)
	require.Equal(t, Subject("Acme Diagnostics", "ORD-2024-0042"), out.Subject)
}

func TestDisplayPatientName(t *testing.T) {
	tests := []struct {
		name      string
		hide      bool
		accession string
		want      string
	}{
		{"shown", false, "ACC-1", "Jane Roe"},
		{"hidden uses accession", true, "ACC-1", "ACC-1"},
		{"hidden without accession uses order id", true, "", "ORD-2024-0042"},
		{"hidden with blank accession uses order id", true, "  ", "ORD-2024-0042"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testContent()
			c.HidePatientName, c.AccessionNumber = tt.hide, tt.accession
			require.Equal(t, tt.want, c.DisplayPatientName())
		})
	}
}

func TestIsCriticalFlag(t *testing.T) {
	for flag, want := range map[string]bool{
		"HH": true, "ll": true, "C": true, "Critical Low": true, "PANIC": true, " * ": true,
		"H": false, "L": false, "": false, "A": false, "Normal": false,
	} {
		require.Equal(t, want, IsCriticalFlag(flag), "flag %q", flag)
	}
}
