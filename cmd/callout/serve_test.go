package main

import (
	"log/slog"
	"strings"
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

// TestLoopbackBaseURLWarning: with email configured, a loopback base URL
// (set, or the default listen address) is warned about at start, since the
// email's order link would point an outside doctor at their own machine.
func TestLoopbackBaseURLWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, smtp string
		warn       bool
	}{
		{"http://127.0.0.1:8080", "smtp://127.0.0.1:25", true},
		{"http://localhost:8080", "smtp://127.0.0.1:25", true},
		{"http://[::1]:8080", "smtp://127.0.0.1:25", true},
		{"https://callout.lab.example", "smtp://127.0.0.1:25", false},
		{"http://10.0.0.5:8080", "smtp://127.0.0.1:25", false},
		{"http://127.0.0.1:8080", "", false}, // no email: no link goes out
	}
	for _, tc := range tests {
		var log strings.Builder
		e := &env{getenv: func(k string) string {
			if k == "CALLOUT_SMTP_URL" {
				return tc.smtp
			}
			return ""
		}, log: slog.New(slog.NewTextHandler(&log, nil))}
		_, err := deliverer(e, nil, tc.base)
		require.NoError(t, err)
		require.Equal(t, tc.warn, strings.Contains(log.String(), "CALLOUT_BASE_URL is a loopback address"), "%s: %s", tc.base, log.String())
	}
}
