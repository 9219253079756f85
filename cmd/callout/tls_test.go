package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/pkitest"
	"callout/internal/storetest"
)

// pki is a CA with a server certificate and two senders' client
// certificates, written as PEM files.
type pki struct {
	ca                    *pkitest.CA
	caFile                string
	serverCert, serverKey string
	acmeCert, acmeKey     string
	otherCert, otherKey   string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{ca: pkitest.NewCA(t, "Callout senders CA")}
	p.caFile = p.ca.WriteCA(t, dir)
	p.serverCert, p.serverKey = pkitest.WritePair(t, dir, "server", p.ca.Server(t))
	p.acmeCert, p.acmeKey = pkitest.WritePair(t, dir, "acme",
		p.ca.Client(t, pkix.Name{CommonName: "lis.acme.example", Organization: []string{"Acme"}}))
	p.otherCert, p.otherKey = pkitest.WritePair(t, dir, "other", p.ca.Client(t, pkix.Name{CommonName: "lis.other.example"}))
	return p
}

func writeMessage(t *testing.T, facility, control, order string) string {
	t.Helper()
	msg := "MSH|^~\\&|LIS|" + facility + "|CALLOUT|CLINIC|20261127083000||ORU^R01|" + control + "|P|2.5.1\r" +
		"PID|1||MRN9||TANAKA^AIKO\rOBR|1|" + order + "|FIL|GLU^Glucose|||20261127080000\r" +
		"OBX|1|NM|GLU^Glucose||35|mg/dL|70-99|LL|||F\r"
	file := filepath.Join(t.TempDir(), control+".hl7")
	require.NoError(t, os.WriteFile(file, []byte(msg), 0o600))
	return file
}

// TestHL7FacilityBoundToCertificate: MLLP over TLS with client
// certificates, and facilities bound to certificate subjects with `lab
// create`: one lab's sender cannot post results as another lab.
func TestHL7FacilityBoundToCertificate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		db := e.URL(t)
		p := newPKI(t)
		code, _, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "Acme",
			"--hl7-facility", "ACME LAB", "--hl7-cert-subject", "O=Acme, CN=lis.acme.example", "--hl7-facility", "ACME OPEN")
		require.Equal(t, 0, code, stderr)
		code, out, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "Other",
			"--hl7-facility", "OTHER LAB", "--hl7-cert-subject", "subject=CN = lis.other.example")
		require.Equal(t, 0, code, stderr)
		other := strings.TrimSpace(out)
		// Bad bindings are refused and change nothing. (Checked before any
		// message is stored: the queue's jobs would change the tables.)
		st := storetest.OpenURL(t, db)
		before := storetest.Dump(t, st.DB)
		for _, args := range [][]string{
			{"--hl7-cert-subject", "CN=x"},
			{"--hl7-facility", "OTHER LAB", "--hl7-cert-subject", "FOO=bar"},
			{"--hl7-facility", "OTHER LAB", "--hl7-cert-subject", "CN=a", "--hl7-cert-subject", "CN=b"},
		} {
			code, _, stderr = runCmd(t, append([]string{"lab", "update", "--db", db, "--lab", other}, args...)...)
			require.Equal(t, 2, code, "%v: %s", args, stderr)
			require.Contains(t, stderr, "hl7-cert-subject", args)
		}
		require.Equal(t, before, storetest.Dump(t, st.DB))

		mllp := freeAddr(t)
		env := map[string]string{"CALLOUT_MLLP_ADDR": mllp, "CALLOUT_MLLP_TLS_CERT": p.serverCert,
			"CALLOUT_MLLP_TLS_KEY": p.serverKey, "CALLOUT_MLLP_CLIENT_CA": p.caFile}
		serveEnv(t, func(k string) string { return env[k] }, db)
		send := func(file string, cert ...string) (int, string, string) {
			args := []string{"hl7", "send", file, "--addr", mllp, "--tls-ca", p.caFile}
			if len(cert) == 2 {
				args = append(args, "--tls-cert", cert[0], "--tls-key", cert[1])
			}
			return runCmd(t, args...)
		}

		acme := writeMessage(t, "ACME LAB", "A-1", "ORD-A1")
		before = storetest.Dump(t, st.DB)
		code, out, stderr = send(acme, p.otherCert, p.otherKey)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "message 1: AR A-1 sending facility (MSH-4) \"ACME LAB\" is bound to a TLS client certificate that this connection did not present\n", out)
		require.Equal(t, before, storetest.Dump(t, st.DB), "the other lab's sender stored nothing")
		code, _, stderr = send(acme)
		require.Equal(t, 1, code, "no client certificate: no connection")
		require.Contains(t, stderr, "after 0 of 1 messages", "the handshake fails (TLS 1.3: on the first read)")
		require.Equal(t, before, storetest.Dump(t, st.DB))

		code, out, stderr = send(acme, p.acmeCert, p.acmeKey)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "message 1: AA A-1 stored\n", out)
		code, out, stderr = send(writeMessage(t, "OTHER LAB", "O-1", "ORD-O1"), p.otherCert, p.otherKey)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "message 1: AA O-1 stored\n", out)
		code, out, stderr = send(writeMessage(t, "ACME OPEN", "A-2", "ORD-A2"), p.otherCert, p.otherKey)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "message 1: AA A-2 stored\n", out, "a facility bound to nobody is open to every sender")

		code, out, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", other,
			"--hl7-facility", "OTHER LAB", "--hl7-cert-subject", "/CN=lis.other.example/O=Other", "--hl7-facility", "OTHER OPEN")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "lab "+other+" accepts HL7 from: OTHER LAB [cert CN=lis.other.example,O=Other], OTHER OPEN (Order ID: auto number)\n", out)
	})
}

// TestServeHTTPS: CALLOUT_TLS_CERT and CALLOUT_TLS_KEY serve the API and
// the web pages over HTTPS only.
func TestServeHTTPS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	env := map[string]string{"CALLOUT_TLS_CERT": p.serverCert, "CALLOUT_TLS_KEY": p.serverKey, "CALLOUT_INDEX_DIR": t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", storetest.SQLite.URL(t)},
			func(k string) string { return env[k] }, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	re := regexp.MustCompile(`listening on (https://\S+)`)
	require.Eventually(t, func() bool { return re.MatchString(out.String()) }, guard, 10*time.Millisecond, "serve printed: %s", out.String())
	url := re.FindStringSubmatch(out.String())[1]

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}}
	res, err := client.Get(url + "/signin")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, string(body), "<form")
	require.Contains(t, res.Header.Get("Set-Cookie"), "Secure", "an https address makes cookies Secure")
	res, err = client.Get(url + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	res, err = http.Get("http://" + strings.TrimPrefix(url, "https://") + "/healthz")
	require.NoError(t, err, "Go's TLS server answers plain HTTP with 400")
	res.Body.Close()
	require.Equal(t, 400, res.StatusCode)
}

// TestServeTLSSettingsRefused: TLS and limit settings that cannot work stop
// serve with a message naming the variable.
func TestServeTLSSettingsRefused(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CALLOUT_TLS_CERT": p.serverCert}, "CALLOUT_TLS_CERT and CALLOUT_TLS_KEY go together"},
		{map[string]string{"CALLOUT_TLS_CERT": p.serverCert, "CALLOUT_TLS_KEY": p.acmeKey}, "CALLOUT_TLS_CERT/CALLOUT_TLS_KEY: tls: private key does not match"},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_CLIENT_CA": p.caFile}, "CALLOUT_MLLP_CLIENT_CA needs CALLOUT_MLLP_TLS_CERT"},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_TLS_CERT": p.serverCert, "CALLOUT_MLLP_TLS_KEY": p.serverKey,
			"CALLOUT_MLLP_CLIENT_CA": p.serverKey}, "CALLOUT_MLLP_CLIENT_CA: " + p.serverKey + " holds no PEM certificate"},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_TLS_KEY": p.serverKey}, "CALLOUT_MLLP_TLS_CERT and CALLOUT_MLLP_TLS_KEY go together"},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_MAX_CONNS": "0"}, `CALLOUT_MLLP_MAX_CONNS="0" is not a positive whole number`},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_MAX_CONNS_PER_IP": "many"}, `CALLOUT_MLLP_MAX_CONNS_PER_IP="many" is not a positive whole number`},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_FRAME_TIMEOUT": "30"}, `CALLOUT_MLLP_FRAME_TIMEOUT="30" is not a positive duration`},
		{map[string]string{"CALLOUT_MLLP_ADDR": "127.0.0.1:0", "CALLOUT_MLLP_IDLE_TIMEOUT": "-1m"}, `CALLOUT_MLLP_IDLE_TIMEOUT="-1m" is not a positive duration`},
	}
	for _, tt := range tests {
		tt.env["CALLOUT_INDEX_DIR"] = t.TempDir()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", storetest.SQLite.URL(t)},
			func(k string) string { return tt.env[k] }, &stdout, &stderr)
		require.Equal(t, 1, code, "%v: %s", tt.env, stdout.String())
		require.Contains(t, stderr.String(), tt.want)
	}
}

// TestHL7SendTLSFlags: the TLS flags of hl7 send that cannot work are
// refused before anything is sent.
func TestHL7SendTLSFlags(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	file := writeMessage(t, "X", "C-1", "O-1")
	code, _, stderr := runCmd(t, "hl7", "send", file, "--addr", "127.0.0.1:1", "--tls-cert", p.acmeCert)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--tls-cert and --tls-key go together")
	code, _, stderr = runCmd(t, "hl7", "send", file, "--addr", "127.0.0.1:1", "--tls-ca", p.acmeKey)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "holds no PEM certificate")
}
