package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// syncBuffer is a bytes.Buffer safe to read while the program writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// runCmd runs the program to completion and returns its exit status and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// serve starts `callout serve` on a free port and returns its URL and the
// demo token it printed; the server stops when the test ends.
func serve(t *testing.T, db string, extra ...string) (url, token string) {
	t.Helper()
	return serveEnv(t, noEnv, db, extra...)
}

// serveEnv is serve with an environment. Each server gets a search index
// directory of its own unless the environment names one.
func serveEnv(t *testing.T, getenv func(string) string, db string, extra ...string) (url, token string) {
	t.Helper()
	url, token, _ = serveOut(t, getenv, db, extra...)
	return url, token
}

// serveOut is serveEnv that also returns what the program printed.
func serveOut(t *testing.T, getenv func(string) string, db string, extra ...string) (url, token string, out *syncBuffer) {
	t.Helper()
	indexDir := t.TempDir()
	base := getenv
	getenv = func(k string) string {
		if v := base(k); v != "" || k != "CALLOUT_INDEX_DIR" {
			return v
		}
		return indexDir
	}
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, extra...)
	go func() { done <- run(ctx, args, getenv, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	re := regexp.MustCompile(`listening on (http://\S+)`)
	require.Eventually(t, func() bool { return re.MatchString(out.String()) }, 20*time.Second, 10*time.Millisecond, "serve printed: %s", out.String())
	url = re.FindStringSubmatch(out.String())[1]
	if m := regexp.MustCompile(`token \(admin\): (\S+)`).FindStringSubmatch(out.String()); m != nil {
		token = m[1]
	}
	return url, token, out
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestProgram(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("ServeDemo", func(t *testing.T) {
			t.Parallel()
			db := e.URL(t)
			env := map[string]string{"CALLOUT_METRICS_ADDR": "127.0.0.1:0"}
			url, token, out := serveOut(t, func(k string) string { return env[k] }, db, "--demo")
			require.True(t, strings.HasPrefix(token, "co_"))
			status, body := get(t, url+"/api/v1/worklist?critical_values=1,4", token)
			require.Equal(t, 200, status, body)
			require.Contains(t, body, "ORD-1001")
			require.Contains(t, body, "Maria Müller")
			// Metrics are served on their own listener only: the public
			// address does not answer them, with or without a token.
			status, _ = get(t, url+"/metrics", "")
			require.Equal(t, 404, status, "metrics on the public address")
			status, _ = get(t, url+"/metrics", token)
			require.Equal(t, 404, status, "metrics on the public address")
			m := regexp.MustCompile(`Metrics on (http://\S+/metrics)`).FindStringSubmatch(out.String())
			require.NotNil(t, m, out.String())
			status, body = get(t, m[1], "")
			require.Equal(t, 200, status)
			require.Regexp(t, `callout_db_queries_total [1-9]`, body)
			require.Contains(t, body, "callout_http_request_duration_seconds_bucket")
			require.Contains(t, body, `route="GET /api/v1/worklist"`, "the public API's requests are counted")
			status, _ = get(t, strings.TrimSuffix(m[1], "/metrics")+"/api/v1/worklist", token)
			require.Equal(t, 404, status, "the metrics listener serves nothing else")
			status, _ = get(t, url+"/healthz", "")
			require.Equal(t, 200, status)
			status, body = get(t, url+"/fhir/r4/metadata", "")
			require.Equal(t, 200, status)
			require.Contains(t, body, `"CapabilityStatement"`)
			status, body = get(t, url+"/fhir/r4/Communication", token)
			require.Equal(t, 200, status, body)
			require.Contains(t, body, `"searchset"`)
		})

		t.Run("LabAndTokenCommands", func(t *testing.T) {
			t.Parallel()
			db := e.URL(t)
			code, out, stderr := runCmd(t, "migrate", "--db", db)
			require.Equal(t, 0, code, stderr)
			require.Empty(t, out, "migrate prints nothing on stdout")
			code, out, stderr = runCmd(t, "lab", "create", "--db", db, "--name", "North Lab", "--share-comment", "--hide-patient-name")
			require.Equal(t, 0, code, stderr)
			require.Regexp(t, `^\d+\n$`, out, "the lab id, alone")
			lab := strings.TrimSpace(out)
			code, out, stderr = runCmd(t, "token", "create", "--db", db, "--lab", lab, "--user", "Asha", "--role", "admin")
			require.Equal(t, 0, code, stderr)
			require.Regexp(t, `^co_[A-Za-z0-9_-]+\n$`, out, "the token, alone")
			token := strings.TrimSpace(out)

			url, _ := serve(t, db)
			status, body := get(t, url+"/api/v1/lab/settings", token)
			require.Equal(t, 200, status, body)
			require.Contains(t, body, `"name":"North Lab"`)
			require.Contains(t, body, `"share_comment":true`)
			require.Contains(t, body, `"hide_patient_name":true`)
			require.Contains(t, body, `"mandatory_comments":false`)

			code, _, stderr = runCmd(t, "token", "create", "--db", db, "--lab", "999", "--user", "x")
			require.Equal(t, 1, code)
			require.Contains(t, stderr, "lab 999 does not exist")
		})
	})
}

func TestUsage(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite.URL(t)
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"serve", "--help"}, 0, "--addr", ""},
		{[]string{"lab", "create", "--help"}, 0, "--share-comment", ""},
		{[]string{"token", "create", "--help"}, 0, "--role", ""},
		{[]string{"bench", "--help"}, 0, "--engines", ""},
		{[]string{"hl7", "send", "--help"}, 0, "--addr", ""},
		{[]string{"frobnicate"}, 2, "", "unknown command"},
		{[]string{"lab", "create", "--db", db}, 2, "", "--name is required"},
		{[]string{"token", "create", "--db", db, "--lab", "1", "--user", "x", "--role", "boss"}, 2, "", "role must be staff or admin"},
		{[]string{"serve", "--bogus"}, 2, "", "flag provided but not defined"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		require.Equal(t, tc.code, code, "%v: %s %s", tc.args, out, errOut)
		require.Contains(t, out, tc.stdout, tc.args)
		require.LessOrEqual(t, strings.Count(out, "Usage:"), 1, "help printed once: %v", tc.args)
		require.Contains(t, errOut, tc.stderr, tc.args)
	}
}

// regexpURL finds the URL serve printed.
func regexpURL(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	return m[1]
}
