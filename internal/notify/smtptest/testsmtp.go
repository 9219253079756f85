// Package smtptest provides an in-process SMTP server for tests.
//
// The server listens on 127.0.0.1 on a random port, accepts any AUTH PLAIN
// credentials (unless WithAuth is given), records every message it receives
// and can simulate outages:
//
//	srv := smtptest.Start(t)
//	mailer, _ := notify.NewMailer(notify.SMTPConfig{URL: srv.URL(), From: "lab@example.org"})
//	... send ...
//	msgs := srv.WaitFor(1, 5*time.Second)
//
//	srv.SetReject(451, "try again later") // every RCPT TO now fails with 451
//	srv.SetReject(0, "")                  // back to normal
//	srv.Stop()                            // connection refused from now on
//	srv.Restart()                         // same port, accepting again
//	srv.Hold()                            // messages are read but not answered…
//	srv.Release()                         // …until now
//
// It is built on github.com/emersion/go-smtp and is meant to be reused by any
// package's end-to-end tests.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// Rcpts are the envelope recipients (RCPT TO), in order.
	Rcpts []string
	// Data is the raw message as received (headers and body, CRLF).
	Data []byte
	// Header is the parsed message header; Header.Get is case-insensitive.
	Header mail.Header
	// MessageID is the raw Message-ID header, angle brackets included.
	MessageID string
	// Subject is the Subject header with RFC 2047 encoded words decoded.
	Subject string
	// To is the raw To header.
	To string
	// AuthUser is the user name the client authenticated as, "" if none.
	AuthUser string
	// TLS is true when the message came over TLS (implicit or STARTTLS).
	TLS bool
	// ReceivedAt is when the server accepted the message.
	ReceivedAt time.Time
}

// Part is a leaf MIME part of a message, with its transfer encoding removed.
type Part struct {
	ContentType string // media type without parameters, e.g. "text/html"
	Filename    string // from Content-Disposition or Content-Type name=
	Body        []byte
}

// Parts walks the message's MIME tree (multipart/mixed, /alternative, ...)
// and returns its leaf parts in order. A non-multipart message is one part.
func (m Message) Parts() ([]Part, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	var parts []Part
	err = walkPart(msg.Header, msg.Body, &parts)
	return parts, err
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server advertise AUTH PLAIN and require these
// credentials before MAIL FROM. Without it any credentials are accepted and
// authentication is optional.
func WithAuth(username, password string) Option {
	return func(s *Server) { s.user, s.pass, s.requireAuth = username, password, true }
}

// WithImplicitTLS serves TLS from the first byte (like smtps, port 465);
// URL() then returns an smtps:// URL.
func WithImplicitTLS(cfg *tls.Config) Option {
	return func(s *Server) { s.implicitTLS = cfg }
}

// WithStartTLS advertises STARTTLS with cfg on the plain listener.
func WithStartTLS(cfg *tls.Config) Option {
	return func(s *Server) { s.startTLS = cfg }
}

// Server is an in-process SMTP server. All methods are safe for concurrent
// use.
type Server struct {
	t    testing.TB
	addr string // host:port, fixed for Restart

	// options, fixed after Start
	user, pass  string
	requireAuth bool
	implicitTLS *tls.Config
	startTLS    *tls.Config

	mu         sync.Mutex
	cond       *sync.Cond
	srv        *smtp.Server
	ln         net.Listener
	messages   []Message
	rejectCode int
	rejectMsg  string

	// Hold: messages waiting for an answer, by Message-ID, and the most
	// copies of one Message-ID that ever waited at once.
	holding  bool
	held     map[string]int
	heldN    int
	mostHeld int
	sessions int // open connections
}

// Start starts a server on 127.0.0.1:0 and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t}
	s.cond = sync.NewCond(&s.mu)
	for _, o := range opts {
		o(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// URL returns smtp://127.0.0.1:port, or smtps:// with WithImplicitTLS. It
// has no user info; add some to exercise authentication.
func (s *Server) URL() string {
	if s.implicitTLS != nil {
		return "smtps://" + s.addr
	}
	return "smtp://" + s.addr
}

// Messages returns a copy of the messages received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitFor waits until at least n messages have been received and returns
// them all. It fails the test (t.Fatalf) after timeout, so call it from the
// test goroutine.
func (s *Server) WaitFor(n int, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	// sync.Cond has no timed wait: a timer broadcast wakes the waiter.
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	for len(s.messages) < n && time.Now().Before(deadline) {
		s.cond.Wait()
	}
	got := append([]Message(nil), s.messages...)
	s.mu.Unlock()
	if len(got) < n {
		s.t.Fatalf("smtptest: got %d messages within %s, want %d", len(got), timeout, n)
	}
	return got
}

// Reset forgets the messages received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
}

// SetReject makes every RCPT TO fail with the given SMTP reply, e.g. 451
// (temporary) or 550 (permanent, "user unknown"), until it is called again
// with code 0. msg may start with an enhanced status code: "5.1.1 User
// unknown".
func (s *Server) SetReject(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectCode, s.rejectMsg = code, msg
}

// Hold makes the server slow: from now on it reads each message in full
// and then keeps it waiting, unanswered, until Release. A message whose
// client hangs up while it waits (a timeout, a killed process) is dropped,
// not recorded.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = true
}

// Release answers (and records) every waiting message and stops holding.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	s.cond.Broadcast()
}

// WaitHeld waits until at least n messages are waiting at once. It fails
// the test after timeout, so call it from the test goroutine.
func (s *Server) WaitHeld(n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	for s.heldN < n && time.Now().Before(deadline) {
		s.cond.Wait()
	}
	got := s.heldN
	s.mu.Unlock()
	if got < n {
		s.t.Fatalf("smtptest: %d messages waiting within %s, want %d", got, timeout, n)
	}
}

// Held returns how many messages are waiting now.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heldN
}

// Sessions returns how many client connections are open now.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// MostHeldAtOnce returns the largest number of copies of one Message-ID
// that were ever waiting at the same time: more than 1 means one message
// was being sent twice concurrently.
func (s *Server) MostHeldAtOnce() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mostHeld
}

// hold keeps a message with Message-ID id waiting while the server holds,
// and reports whether its client is still there to be answered.
func (s *Server) hold(conn net.Conn, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding {
		return true
	}
	if s.held == nil {
		s.held = map[string]int{}
	}
	s.held[id]++
	s.heldN++
	s.mostHeld = max(s.mostHeld, s.held[id])
	s.cond.Broadcast()
	defer func() {
		s.held[id]--
		s.heldN--
	}()

	// A client waiting for the answer sends nothing, so a read returns only
	// when it hangs up. go-smtp sets its own deadline before every read.
	gone := false
	done := make(chan struct{})
	_ = conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		var b [1]byte
		_, err := conn.Read(b[:])
		s.mu.Lock()
		gone = !errors.Is(err, os.ErrDeadlineExceeded)
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	for s.holding && !gone {
		s.cond.Wait()
	}
	if !gone {
		_ = conn.SetReadDeadline(time.Now()) // ends the watching read
	}
	s.mu.Unlock()
	<-done
	s.mu.Lock()
	return !gone
}

// Stop closes the listener and all open connections: clients then get
// "connection refused" until Restart. Stopping twice is harmless.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// Close the listener ourselves too: srv.Serve runs in a goroutine
		// and may not have registered it with srv yet.
		_ = ln.Close()
		_ = srv.Close()
	}
}

// Restart listens again on the same port after Stop. Recorded messages and
// the reject setting are kept. It fails the test if the port cannot be
// bound again.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var l net.Listener
	var err error
	// The port was ours a moment ago; give the kernel a little time in
	// case the close has not fully settled.
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("smtptest: restart on %s: %v", s.addr, err)
	}
	s.serve(l)
}

func (s *Server) serve(l net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 32 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = s.startTLS
	if s.implicitTLS != nil {
		l = tls.NewListener(l, s.implicitTLS)
	}
	s.mu.Lock()
	s.srv, s.ln = srv, l
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	s.cond.Broadcast()
}

func (s *Server) reject() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejectCode == 0 {
		return nil
	}
	return rejection(s.rejectCode, s.rejectMsg)
}

// rejection builds the SMTP error for SetReject. An enhanced status code at
// the start of msg ("5.1.1 User unknown") is sent as such; otherwise go-smtp
// derives a generic one (5.0.0) from the code.
func rejection(code int, msg string) *smtp.SMTPError {
	enh := smtp.EnhancedCodeNotSet
	if f := strings.SplitN(msg, " ", 2); len(f) == 2 {
		var c smtp.EnhancedCode
		if n, err := fmt.Sscanf(f[0], "%d.%d.%d", &c[0], &c[1], &c[2]); err == nil && n == 3 {
			enh, msg = c, f[1]
		}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.sessions++
	b.s.mu.Unlock()
	return &session{s: b.s, conn: c}, nil
}

// session implements smtp.Session and smtp.AuthSession.
type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	rcpts    []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if ss.s.requireAuth && (username != ss.s.user || password != ss.s.pass) {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.requireAuth && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.reject(); err != nil {
		return err
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{
		From:       ss.from,
		Rcpts:      append([]string(nil), ss.rcpts...),
		Data:       data,
		AuthUser:   ss.authUser,
		ReceivedAt: time.Now(),
	}
	_, m.TLS = ss.conn.TLSConnectionState()
	if parsed, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = parsed.Header
		m.MessageID = parsed.Header.Get("Message-ID")
		m.To = parsed.Header.Get("To")
		m.Subject = parsed.Header.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(m.Subject); err == nil {
			m.Subject = dec
		}
	}
	if !ss.s.hold(ss.conn.Conn(), m.MessageID) {
		return errors.New("client went away")
	}
	ss.s.record(m)
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.rcpts = "", nil
}

// Logout is called once, when the connection closes.
func (ss *session) Logout() error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.sessions--
	return nil
}

// header is the subset of a MIME header walkPart needs; both mail.Header
// and textproto.MIMEHeader (multipart parts) satisfy it.
type header interface{ Get(string) string }

func walkPart(h header, body io.Reader, parts *[]Part) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := walkPart(p.Header, p, parts); err != nil {
				return err
			}
		}
	}
	decoded, err := decode(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return err
	}
	name := params["name"]
	if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && dp["filename"] != "" {
		name = dp["filename"]
	}
	*parts = append(*parts, Part{ContentType: mediaType, Filename: name, Body: decoded})
	return nil
}

// decode removes a Content-Transfer-Encoding.
func decode(cte string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // skips CR/LF
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decode %s body: %w", cte, err)
	}
	return b, nil
}
