package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer co_abc", "co_abc", true},
		{"bearer co_abc", "co_abc", true},
		{"BEARER co_abc", "co_abc", true},
		{"BeArEr co_abc", "co_abc", true},
		{"Bearer    co_abc", "co_abc", true},
		{"  Bearer co_abc  ", "co_abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Bearerco_abc", "", false},
		{"Basic co_abc", "", false},
		{"Bearer\tco_abc", "", false},
		{"Bearer co_abc co_def", "", false},
		{"Bearer co_abc\tx", "", false},
		{"Bearers co_abc", "", false},
	}
	for _, tc := range tests {
		token, ok := bearerToken(tc.header)
		require.Equal(t, tc.ok, ok, "%q", tc.header)
		require.Equal(t, tc.token, token, "%q", tc.header)
	}
}

// FuzzBearerToken checks that any header either yields a token without
// blanks that reads back the same from a canonical header, or nothing.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer co_abc", "bearer x", "BEARER  x ", "Basic x", "Bearer", "", "Bearer a b", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		token, ok := bearerToken(h)
		if !ok {
			require.Empty(t, token)
			return
		}
		require.NotEmpty(t, token)
		require.False(t, strings.ContainsAny(token, " \t"), "%q", token)
		again, ok := bearerToken("Bearer " + token)
		require.True(t, ok)
		require.Equal(t, token, again)
	})
}
