package bench

import (
	"context"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// mailSink is an in-process SMTP server on 127.0.0.1 that accepts every
// message, keeps none and counts them. (internal/notify/smtptest records
// whole messages and needs a testing.TB; the bench command runs outside
// tests and only counts.)
type mailSink struct {
	srv *smtp.Server
	ln  net.Listener

	mu    sync.Mutex
	count int
	last  time.Time // when the last message was accepted
}

func startSink() (*mailSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &mailSink{ln: ln}
	s.srv = smtp.NewServer(sinkBackend{s})
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.MaxRecipients = 100
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the sink's address as CALLOUT_SMTP_URL takes it.
func (s *mailSink) URL() string { return "smtp://" + s.ln.Addr().String() }

// received returns how many messages arrived and when the last did.
func (s *mailSink) received() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.last
}

// waitFor waits until n messages arrived, ctx ends or d passes, and returns
// what received returns then.
func (s *mailSink) waitFor(ctx context.Context, n int, d time.Duration) (int, time.Time) {
	deadline := time.Now().Add(d)
	for {
		got, last := s.received()
		if got >= n || ctx.Err() != nil || time.Now().After(deadline) {
			return got, last
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *mailSink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

type sinkBackend struct{ s *mailSink }

func (b sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return sinkSession(b), nil }

type sinkSession struct{ s *mailSink }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }

func (ss sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.count++
	ss.s.last = time.Now()
	ss.s.mu.Unlock()
	return nil
}
