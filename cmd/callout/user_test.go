package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// webSignIn signs in through the sign-in form and reports whether it worked.
func webSignIn(t *testing.T, base, name, password string) bool {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(base + "/signin")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(body))
	require.NotNil(t, m, string(body))
	res, err = c.PostForm(base+"/signin", url.Values{"csrf": {m[1]}, "name": {name}, "password": {password}})
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode == http.StatusSeeOther
}

func TestUserCreate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		db := e.URL(t)
		code, lab, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "North Lab")
		require.Equal(t, 0, code, stderr)
		lab = strings.TrimSpace(lab)
		create := func(stdin string, args ...string) (string, error) {
			var out, errOut bytes.Buffer
			e := &env{getenv: noEnv, stdout: &out, stderr: &errOut}
			err := createUser(context.Background(), e, append([]string{"--db", db, "--lab", lab}, args...), strings.NewReader(stdin))
			return out.String(), err
		}

		out, err := create("a long enough password\n", "--name", "asha", "--password-stdin", "--departments", "Biochemistry, Haematology")
		require.NoError(t, err)
		require.Regexp(t, `^\d+\n$`, out)
		_, err = create("another long password", "--name", "asha", "--password-stdin")
		require.ErrorContains(t, err, `the user name "asha" is taken`)
		_, err = create("short\n", "--name", "ravi", "--password-stdin")
		require.ErrorContains(t, err, "at least 12 characters")
		// A common password is refused like a short one, and stores nothing.
		before := storetest.Dump(t, storetest.OpenURL(t, db).DB)
		_, err = create("password1234\n", "--name", "ravi", "--password-stdin")
		require.ErrorContains(t, err, "too easy to guess")
		_, err = create("ravi12345678\n", "--name", "ravi", "--password-stdin")
		require.ErrorContains(t, err, "too easy to guess", "the user's own name")
		require.Equal(t, before, storetest.Dump(t, storetest.OpenURL(t, db).DB))
		_, err = create("", "--name", "ravi", "--password-stdin")
		require.ErrorContains(t, err, "no password on standard input")
		_, err = create("a long enough password", "--name", "ravi", "--password-stdin", "--role", "root")
		require.ErrorIs(t, err, errUsage)
		_, err = create("a long enough password", "--name", "ravi")
		require.ErrorIs(t, err, errUsage, "the password comes from stdin only")
		_, err = create("a long enough password", "--name", "ravi", "--password-stdin", "--lab", "999")
		require.ErrorContains(t, err, "lab 999 does not exist")

		st := storetest.OpenURL(t, db)
		u, err := st.UserByName(context.Background(), "asha")
		require.NoError(t, err)
		require.Equal(t, []string{"Biochemistry", "Haematology"}, u.Departments)
		require.Equal(t, "staff", string(u.Role))
		require.NotContains(t, u.PasswordHash, "password")

		code, _, stderr = runCmd(t, "user", "create", "--db", db, "--lab", lab, "--name", "x")
		require.Equal(t, 2, code)
		require.Contains(t, stderr, "--password-stdin are required")
	})
}

func TestDemoUser(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite.URL(t)
	demo := func() (url, password string, stop func()) {
		out, stop := serveOutput(t, db, "--demo")
		m := regexp.MustCompile(`Demo user: demo / (\S+)`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out)[1], m[1], stop
	}
	url, first, stop := demo()
	require.True(t, webSignIn(t, url, "demo", first))
	require.False(t, webSignIn(t, url, "demo", first+"x"))
	stop()

	// Every run prints a new password (only its hash is kept); the old one stops working.
	url, second, stop := demo()
	defer stop()
	require.NotEqual(t, first, second)
	require.False(t, webSignIn(t, url, "demo", first))
	require.True(t, webSignIn(t, url, "demo", second))
	require.NoError(t, callout.CheckPassword(second, "demo"), "the demo password passes the password rules")
}

func TestServeRefusesBadTrustedProxies(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string {
		if k == "CALLOUT_TRUSTED_PROXIES" {
			return "10.0.0.0/8, proxy.example"
		}
		return ""
	}
	var errOut bytes.Buffer
	code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", storetest.SQLite.URL(t)}, getenv, io.Discard, &errOut)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut.String(), "CALLOUT_TRUSTED_PROXIES")
}

// serveOutput starts serve and returns what it printed once it listens, and
// a func that stops it.
func serveOutput(t *testing.T, db string, extra ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, extra...), noEnv, out, io.Discard)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Demo user") }, 20*time.Second, 10*time.Millisecond, out.String())
	return out.String(), stop
}
