package smtptest

import (
	"bufio"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

// send uses the standard library client so these tests do not depend on
// the mailer under test elsewhere.
func send(s *Server, to, body string) error {
	return smtp.SendMail(s.Addr(), nil, "from@example.org", []string{to}, []byte(body))
}

func TestServerRecordsAndSimulatesOutages(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL(), "smtp://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	raw := "Message-ID: <id-1@example.org>\r\nTo: a@example.org\r\nSubject: =?UTF-8?q?Caf=C3=A9?=\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9\r\n" +
		"--b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n"
	if err := send(s, "a@example.org", raw); err != nil {
		t.Fatal(err)
	}
	m := s.WaitFor(1, 5*time.Second)[0]
	if m.MessageID != "<id-1@example.org>" || m.Subject != "Café" || m.To != "a@example.org" ||
		m.From != "from@example.org" || len(m.Rcpts) != 1 || m.TLS {
		t.Fatalf("unexpected message %+v", m)
	}
	parts, err := m.Parts()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || string(parts[0].Body) != "Café" || parts[1].Filename != "x.pdf" || string(parts[1].Body) != "%PDF" {
		t.Fatalf("unexpected parts %+v", parts)
	}

	s.SetReject(550, "5.1.1 User unknown")
	if err := send(s, "b@example.org", raw); err == nil || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "5.1.1 User unknown") {
		t.Fatalf("want 550 rejection, got %v", err)
	}
	s.SetReject(0, "")

	s.Stop()
	s.Stop() // harmless
	if err := send(s, "c@example.org", raw); err == nil {
		t.Fatal("send to stopped server succeeded")
	}
	s.Restart()
	if err := send(s, "d@example.org", raw); err != nil {
		t.Fatal(err)
	}
	if got := s.WaitFor(2, 5*time.Second); len(got) != 2 || got[1].Rcpts[0] != "d@example.org" {
		t.Fatalf("unexpected messages %+v", got)
	}
	s.Reset()
	if len(s.Messages()) != 0 {
		t.Fatal("Reset kept messages")
	}
}

func TestHoldKeepsMessagesWaiting(t *testing.T) {
	s := Start(t)
	s.Hold()
	raw := "Message-ID: <held@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
	sent := make(chan error, 2)
	for range 2 {
		go func() { sent <- send(s, "a@example.org", raw) }()
	}
	s.WaitHeld(2, 5*time.Second)
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("%d messages recorded while held", n)
	}
	if got := s.MostHeldAtOnce(); got != 2 {
		t.Fatalf("MostHeldAtOnce = %d, want 2", got)
	}
	s.Release()
	for range 2 {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	s.WaitFor(2, 5*time.Second)

	// A client that hangs up while its message waits is not recorded.
	s.Reset()
	s.Hold()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for _, line := range []string{"", "EHLO x\r\n", "MAIL FROM:<f@example.org>\r\n", "RCPT TO:<a@example.org>\r\n", "DATA\r\n", raw + ".\r\n"} {
		if line != "" {
			if _, err := c.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		if line == raw+".\r\n" {
			break
		}
		for { // read the (possibly multi-line) reply
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if len(l) < 4 || l[3] != '-' {
				break
			}
		}
	}
	s.WaitHeld(1, 5*time.Second)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Held() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the hung-up message is still held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Release()
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("%d messages recorded from a client that hung up", n)
	}
}
