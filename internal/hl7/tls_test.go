package hl7

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/pkitest"
)

// peerHandler acknowledges every message with AA and the connection's
// verified certificate subject as MSA-3 (or "none"), counting calls.
func peerHandler(calls *atomic.Int32) Handler {
	return func(ctx context.Context, raw []byte) []byte {
		calls.Add(1)
		m, err := Parse(raw)
		if err != nil {
			return NewRejectACK(raw, err.Error(), time.Now())
		}
		p, ok := PeerFromContext(ctx)
		if !ok || p.Addr == nil {
			return NewACK(m, AckError, "no peer", "", time.Now())
		}
		subject := p.Subject
		if subject == "" {
			subject = "none"
		}
		return NewACK(m, AckAccept, subject, "", time.Now())
	}
}

type tlsBundle struct {
	ca    *pkitest.CA
	calls atomic.Int32
	srv   *Server
	ts    *testServer
}

// setupTLS serves MLLP over TLS with a server certificate of a new CA and
// client authentication auth against that CA.
func setupTLS(t *testing.T, auth tls.ClientAuthType, srv *Server) *tlsBundle {
	t.Helper()
	b := &tlsBundle{ca: pkitest.NewCA(t, "Callout test CA"), srv: srv}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{b.ca.Server(t)}, ClientCAs: b.ca.Pool(),
		ClientAuth: auth, MinVersion: tls.VersionTLS12}
	b.ts = startServer(t, srv, peerHandler(&b.calls))
	return b
}

// send sends one message as a client presenting certs and trusting the
// bundle's CA; it returns MSA-3 of the ACK.
func (b *tlsBundle) send(t *testing.T, id string, certs ...tls.Certificate) (string, error) {
	t.Helper()
	c := &Client{AckTimeout: guard, TLSConfig: &tls.Config{RootCAs: b.ca.Pool(), Certificates: certs}}
	acks, err := c.Send(context.Background(), b.ts.addr, [][]byte{testMessage(id)})
	if err != nil {
		return "", err
	}
	return requireACK(t, acks[0], AckAccept, id).Get("MSA", 3), nil
}

func TestServerTLSClientCertificates(t *testing.T) {
	t.Parallel()
	b := setupTLS(t, tls.RequireAndVerifyClientCert, &Server{})
	acme := b.ca.Client(t, pkix.Name{CommonName: "lis.acme.example", Organization: []string{"Acme"}})

	subject, err := b.send(t, "C1", acme)
	require.NoError(t, err)
	require.Equal(t, "CN=lis.acme.example,O=Acme", subject, "the verified subject reaches the handler")

	_, err = b.send(t, "C2")
	require.Error(t, err, "no client certificate")
	stranger := pkitest.NewCA(t, "Another CA").Client(t, pkix.Name{CommonName: "lis.acme.example", Organization: []string{"Acme"}})
	_, err = b.send(t, "C3", stranger)
	require.Error(t, err, "the same subject from another CA")
	_, err = Send(context.Background(), b.ts.addr, [][]byte{testMessage("C4")})
	require.Error(t, err, "plain MLLP to a TLS listener")
	require.EqualValues(t, 1, b.calls.Load(), "only the verified sender reached the handler")
}

// TestServerTLSUnverifiedCertificateNamesNoOne: a certificate the server
// asked for but did not verify proves nothing, so it gives no subject.
func TestServerTLSUnverifiedCertificateNamesNoOne(t *testing.T) {
	t.Parallel()
	b := setupTLS(t, tls.RequestClientCert, &Server{})
	forged := pkitest.NewCA(t, "Forger").Client(t, pkix.Name{CommonName: "lis.acme.example"})
	subject, err := b.send(t, "U1", forged)
	require.NoError(t, err)
	require.Equal(t, "none", subject)
}

func TestServerPlainPeer(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	ts := startServer(t, &Server{}, peerHandler(&calls))
	acks, err := Send(context.Background(), ts.addr, [][]byte{testMessage("P1")})
	require.NoError(t, err)
	require.Equal(t, "none", requireACK(t, acks[0], AckAccept, "P1").Get("MSA", 3))
}

// TestServerTLSHandshakeTimeout: a client that opens a connection and never
// completes the handshake holds its slot no longer than FrameTimeout.
func TestServerTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	b := setupTLS(t, tls.RequireAndVerifyClientCert, &Server{FrameTimeout: 100 * time.Millisecond, IdleTimeout: -1})
	c := dialRaw(t, b.ts.addr, 1)
	c.write("\x16\x03\x01") // the start of a ClientHello, and no more
	c.requireClosed()
	waitUntil(t, "the connection to be released", func() bool { return b.srv.Stats().Open == 0 })
	require.Zero(t, b.calls.Load())
}
