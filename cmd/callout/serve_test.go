package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPublicURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env, want string
		ok        bool
	}{
		{"", "http://127.0.0.1:8080", true},
		{"https://callout.lab.example", "https://callout.lab.example", true},
		{"https://callout.lab.example/", "https://callout.lab.example", true},
		{"https://lab.example/callout/", "https://lab.example/callout", true},
		{"http://10.0.0.5:8080", "http://10.0.0.5:8080", true},
		{"callout.lab.example", "", false},
		{"ftp://callout.lab.example", "", false},
		{"https://", "", false},
		{"https://user:pw@callout.lab.example", "", false},
		{"https://callout.lab.example/?x=1", "", false},
		{"https://callout.lab.example/#top", "", false},
		{"https://callout.lab.example\n", "", false},
	}
	for _, tc := range tests {
		got, err := publicURL(tc.env, "http://127.0.0.1:8080")
		if !tc.ok {
			require.Error(t, err, tc.env)
			require.Contains(t, err.Error(), "CALLOUT_BASE_URL", tc.env)
			continue
		}
		require.NoError(t, err, tc.env)
		require.Equal(t, tc.want, got, tc.env)
	}
}
