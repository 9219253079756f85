package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/notify/smtptest"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		url     string
		want    SMTPServer
		wantErr string
	}{
		{url: "smtp://mail.example.org", want: SMTPServer{Host: "mail.example.org", Port: 25}},
		{url: "smtp://mail.example.org:587", want: SMTPServer{Host: "mail.example.org", Port: 587}},
		{url: "smtps://mail.example.org", want: SMTPServer{Host: "mail.example.org", Port: 465, ImplicitTLS: true}},
		{url: "SMTPS://u%40lab:p%3Ass@mail.example.org:2465/", want: SMTPServer{Host: "mail.example.org", Port: 2465, Username: "u@lab", Password: "p:ss", Auth: true, ImplicitTLS: true}},
		{url: "smtp://user@[::1]:2525", want: SMTPServer{Host: "::1", Port: 2525, Username: "user", Auth: true}},
		{url: "", wantErr: "empty"},
		{url: "mail.example.org:25", wantErr: "unsupported scheme"},
		{url: "mail.example.org", wantErr: "missing scheme"},
		{url: "http://mail.example.org", wantErr: `unsupported scheme "http"`},
		{url: "smtp://", wantErr: "missing host"},
		{url: "smtp://:pw@host", wantErr: "empty user name"},
		{url: "smtp://host:0", wantErr: `invalid port "0"`},
		{url: "smtp://host:70000", wantErr: `invalid port "70000"`},
		{url: "smtp://u:secret@host:abc", wantErr: "invalid port"},
		{url: "smtp://host/path", wantErr: "unexpected path"},
		{url: "smtp://host?tls=1", wantErr: "unexpected path, query"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseSMTPURL(tt.url)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "secret", "password must not leak")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	srv, err := ParseSMTPURL("smtps://u:secret@host")
	require.NoError(t, err)
	require.Equal(t, "smtps://u:xxxxx@host:465", srv.String())
}

func TestFaxAddress(t *testing.T) {
	tests := []struct {
		number, gateway, want, wantErr string
	}{
		{"+1 (555) 123-4567", "fax.example.org", "15551234567@fax.example.org", ""},
		{"0044 20 7946 0000", "@efax.example", "00442079460000@efax.example", ""},
		{"12345", "fax.example.org", "", "at least 6 digits"},
		{"", "fax.example.org", "", "at least 6 digits"},
		{"5551234567", "", "", "not configured"},
		{"5551234567", "a b", "", "want a domain"},
		{"5551234567", "x@y", "", "want a domain"},
	}
	for _, tt := range tests {
		got, err := FaxAddress(tt.number, tt.gateway)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, tt.number)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
	}
}

func testEmail(t *testing.T, to string) Email {
	t.Helper()
	c := testContent()
	out := render(t, c)
	pdf, err := FaxSheet(c)
	require.NoError(t, err)
	return Email{
		MessageID:   "callout-42.recipient-7@callout.example",
		To:          to,
		Subject:     out.Subject,
		HTML:        out.HTML,
		Text:        out.Text,
		Attachments: []Attachment{{Name: "critical-results-ORD-2024-0042.pdf", ContentType: "application/pdf", Data: pdf}},
	}
}

func newTestMailer(t *testing.T, url string) *Mailer {
	t.Helper()
	m, err := NewMailer(SMTPConfig{URL: url, From: "Acme Diagnostics <alerts@acme.example>", HelloName: "callout.test", Timeout: 5 * time.Second})
	require.NoError(t, err)
	return m
}

func TestMailerSend(t *testing.T) {
	srv := smtptest.Start(t)
	m := newTestMailer(t, srv.URL())
	e := testEmail(t, "Dr. Alan Smith <alan@clinic.example>")
	require.NoError(t, m.Send(context.Background(), e))

	msgs := srv.WaitFor(1, 5*time.Second)
	require.Len(t, msgs, 1)
	got := msgs[0]
	require.Equal(t, "<callout-42.recipient-7@callout.example>", got.MessageID)
	require.Equal(t, "alerts@acme.example", got.From)
	require.Equal(t, []string{"alan@clinic.example"}, got.Rcpts)
	require.Equal(t, `"Dr. Alan Smith" <alan@clinic.example>`, got.To)
	require.Empty(t, got.Header.Get("Cc"))
	require.Empty(t, got.Header.Get("Bcc"))
	require.Equal(t, "Critical Results Alert from Acme Diagnostics for Order ID - ORD-2024-0042", got.Subject)
	require.Equal(t, "auto-generated", got.Header.Get("Auto-Submitted"))
	require.Empty(t, got.AuthUser)

	require.True(t, strings.HasPrefix(got.Header.Get("Content-Type"), "multipart/mixed"), got.Header.Get("Content-Type"))
	require.Contains(t, string(got.Data), "multipart/alternative")
	parts, err := got.Parts()
	require.NoError(t, err)
	require.Len(t, parts, 3)
	require.Equal(t, "text/plain", parts[0].ContentType)
	require.Equal(t, e.Text, strings.ReplaceAll(string(parts[0].Body), "\r\n", "\n"))
	require.Equal(t, "text/html", parts[1].ContentType)
	require.Contains(t, string(parts[1].Body), "Report 2 of 2: Complete Blood Count")
	require.Equal(t, "application/pdf", parts[2].ContentType)
	require.Equal(t, "critical-results-ORD-2024-0042.pdf", parts[2].Filename)
	require.Equal(t, e.Attachments[0].Data, parts[2].Body)

	// A retry re-sends the same Message-ID.
	require.NoError(t, m.Send(context.Background(), e))
	msgs = srv.WaitFor(2, 5*time.Second)
	require.Equal(t, msgs[0].MessageID, msgs[1].MessageID)
}

func TestMailerTextOnly(t *testing.T) {
	srv := smtptest.Start(t)
	m := newTestMailer(t, srv.URL())
	require.NoError(t, m.Send(context.Background(), Email{MessageID: "a@b", To: "x@y.example", Subject: "s\r\nBcc: evil@x", Text: "hi"}))
	got := srv.WaitFor(1, 5*time.Second)[0]
	require.Equal(t, "s Bcc: evil@x", got.Subject)
	require.Empty(t, got.Header.Get("Bcc"))
	require.Equal(t, []string{"x@y.example"}, got.Rcpts)
}

func TestMailerAuth(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("lab", "s3cret"))
	good := newTestMailer(t, "smtp://lab:s3cret@"+srv.Addr())
	require.NoError(t, good.Send(context.Background(), testEmail(t, "a@b.example")))
	require.Equal(t, "lab", srv.WaitFor(1, 5*time.Second)[0].AuthUser)

	bad := newTestMailer(t, "smtp://lab:wrong@"+srv.Addr())
	err := bad.Send(context.Background(), testEmail(t, "a@b.example"))
	require.Error(t, err)
	require.True(t, IsPermanent(err), "535 auth failure is permanent: %v", err)
	require.NotContains(t, err.Error(), "wrong", "password must not leak")

	anon := newTestMailer(t, srv.URL())
	err = anon.Send(context.Background(), testEmail(t, "a@b.example"))
	require.Error(t, err)
	require.True(t, IsPermanent(err), "530/502 auth required is permanent: %v", err)
}

func TestMailerRejections(t *testing.T) {
	tests := []struct {
		code      int
		msg       string
		permanent bool
	}{
		{451, "Temporary local problem", false},
		{421, "Service not available", false},
		{550, "User unknown", true},
		{554, "Transaction failed", true},
	}
	srv := smtptest.Start(t)
	m := newTestMailer(t, srv.URL())
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			srv.SetReject(tt.code, tt.msg)
			err := m.Send(context.Background(), testEmail(t, "a@b.example"))
			require.Error(t, err)
			require.Equal(t, tt.permanent, IsPermanent(err), err.Error())
			var se *SendError
			require.True(t, errors.As(err, &se))
			require.Equal(t, tt.code, se.Code)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
	srv.SetReject(0, "")
	require.NoError(t, m.Send(context.Background(), testEmail(t, "a@b.example")))
	require.Len(t, srv.WaitFor(1, 5*time.Second), 1)
}

func TestMailerServerDown(t *testing.T) {
	srv := smtptest.Start(t)
	m := newTestMailer(t, srv.URL())
	srv.Stop()
	err := m.Send(context.Background(), testEmail(t, "a@b.example"))
	require.Error(t, err)
	require.False(t, IsPermanent(err), err.Error())
	require.ErrorContains(t, err, "temporary")

	srv.Restart()
	require.NoError(t, m.Send(context.Background(), testEmail(t, "a@b.example")))
	require.Equal(t, "<callout-42.recipient-7@callout.example>", srv.WaitFor(1, 5*time.Second)[0].MessageID)
}

// TestMailerHangingServer checks a server that accepts but never greets
// does not block a send past its context deadline.
func TestMailerHangingServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	m := newTestMailer(t, "smtp://"+l.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = m.Send(ctx, testEmail(t, "a@b.example"))
	require.Error(t, err)
	require.False(t, IsPermanent(err))
	require.Less(t, time.Since(start), 3*time.Second)

	// Cancelling (no deadline) aborts too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	err = m.Send(ctx, testEmail(t, "a@b.example"))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsPermanent(err))
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestMailerTLS(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	tests := []struct {
		name string
		opt  smtptest.Option
	}{
		{"implicit smtps", smtptest.WithImplicitTLS(serverTLS)},
		{"opportunistic starttls", smtptest.WithStartTLS(serverTLS)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opt, smtptest.WithAuth("lab", "pw"))
			url := strings.Replace(srv.URL(), "://", "://lab:pw@", 1)
			m, err := NewMailer(SMTPConfig{URL: url, From: "alerts@acme.example", TLSConfig: &tls.Config{RootCAs: roots}})
			require.NoError(t, err)
			require.NoError(t, m.Send(context.Background(), testEmail(t, "a@b.example")))
			got := srv.WaitFor(1, 5*time.Second)[0]
			require.True(t, got.TLS)
			require.Equal(t, "lab", got.AuthUser)
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.WithImplicitTLS(serverTLS))
		m := newTestMailer(t, srv.URL())
		err := m.Send(context.Background(), testEmail(t, "a@b.example"))
		require.ErrorContains(t, err, "certificate")
	})
}

func TestMailerRejectsBadEmail(t *testing.T) {
	srv := smtptest.Start(t)
	m := newTestMailer(t, srv.URL())
	base := testEmail(t, "a@b.example")
	tests := []struct {
		name   string
		mutate func(*Email)
	}{
		{"two recipients", func(e *Email) { e.To = "a@b.example, c@d.example" }},
		{"no recipient", func(e *Email) { e.To = "" }},
		{"bad recipient", func(e *Email) { e.To = "not an address" }},
		{"empty message id", func(e *Email) { e.MessageID = "" }},
		{"bracketed message id", func(e *Email) { e.MessageID = "<a@b>" }},
		{"message id without @", func(e *Email) { e.MessageID = "callout-42" }},
		{"no body", func(e *Email) { e.HTML, e.Text = "", "" }},
		{"attachment without name", func(e *Email) { e.Attachments[0].Name = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			e.Attachments = append([]Attachment(nil), base.Attachments...)
			tt.mutate(&e)
			err := m.Send(context.Background(), e)
			require.ErrorIs(t, err, ErrInvalidEmail)
			require.True(t, IsPermanent(err))
		})
	}
	require.Empty(t, srv.Messages())
}

func TestNewMailerErrors(t *testing.T) {
	_, err := NewMailer(SMTPConfig{URL: "smtp://host", From: "not an address"})
	require.ErrorContains(t, err, "from address")
	_, err = NewMailer(SMTPConfig{URL: "ftp://host", From: "a@b.example"})
	require.ErrorContains(t, err, "unsupported scheme")
	require.False(t, IsPermanent(nil))
	require.False(t, IsPermanent(errors.New("connection reset")))
}

// selfSigned returns a server TLS config for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtptest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestMailerClosesItsConnection checks that a send that gives up on its
// own timeout (the server is slow to answer the message) leaves no
// connection behind: the server must not hold an attempt that the caller
// believes over while the next attempt begins.
func TestMailerClosesItsConnection(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Hold()
	m, err := NewMailer(SMTPConfig{URL: srv.URL(), From: "alerts@acme.example", Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	err = m.Send(context.Background(), testEmail(t, "a@b.example"))
	require.Error(t, err)
	require.False(t, IsPermanent(err))
	require.Eventually(t, func() bool { return srv.Sessions() == 0 }, 3*time.Second, 10*time.Millisecond,
		"the connection of a send that gave up is still open")
	srv.Release()
	require.Empty(t, srv.Messages())
}
