package main

import (
	"bufio"
	"errors"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/hl7"
	"callout/internal/storetest"
)

// guard bounds every wait on the server in these tests. It only turns a hang
// into a failure: the configured limits are far shorter, and no test asserts
// how fast anything happens.
const guard = 20 * time.Second

const probeMessage = "MSH|^~\\&|LIS|NOBODY|CALLOUT|CLINIC|20240301120000||ORU^R01|P-1|P|2.5.1\r" +
	"PID|1||P1||DOE^JANE\rOBR|1|PL|FI|GLU^Glucose|||20240301110000\rOBX|1|NM|GLU^Glucose||5.5|mmol/L|3.9-5.5||||F\r"

// mllpConn is a raw MLLP connection driven by a test.
type mllpConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialMLLP(t *testing.T, addr string) *mllpConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(guard)))
	return &mllpConn{t: t, c: c, br: bufio.NewReader(c)}
}

// exchange sends one message and returns the ACK code (MSA-1).
func (m *mllpConn) exchange(msg string) string {
	m.t.Helper()
	require.NoError(m.t, hl7.WriteFrame(m.c, []byte(msg)))
	ack, err := hl7.ReadFrame(m.br)
	require.NoError(m.t, err, "the server answers this connection")
	return regexp.MustCompile(`MSA\|(\w+)`).FindStringSubmatch(string(ack))[1]
}

// requireClosedByServer waits until the server closes the connection and
// checks that it sent nothing before.
func (m *mllpConn) requireClosedByServer() {
	m.t.Helper()
	b, err := m.br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		m.t.Fatalf("the server kept the connection open for %v", guard)
	}
	require.Error(m.t, err, "the server sent %q instead of closing", b)
}

// TestMLLPFrameTimeoutFromEnv: a sender trickling one byte every 50 ms into
// a frame that never ends is cut off when CALLOUT_MLLP_FRAME_TIMEOUT has
// passed since the frame began, although every read brings new data.
func TestMLLPFrameTimeoutFromEnv(t *testing.T) {
	t.Parallel()
	mllp := freeAddr(t)
	env := map[string]string{"CALLOUT_MLLP_ADDR": mllp, "CALLOUT_MLLP_FRAME_TIMEOUT": "300ms"}
	serveEnv(t, func(k string) string { return env[k] }, storetest.SQLite.URL(t))

	c := dialMLLP(t, mllp)
	require.Equal(t, "AR", c.exchange(probeMessage), "served (no lab accepts facility NOBODY)")
	_, err := c.c.Write([]byte("\x0bMSH|"))
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond) // the attacker's pace
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	c.requireClosedByServer()
}

// TestMLLPConnectionCapFromEnv: past CALLOUT_MLLP_MAX_CONNS open connections
// a new one is closed at once, unanswered, and counted in /metrics; the slot
// comes back when a connection closes.
func TestMLLPConnectionCapFromEnv(t *testing.T) {
	t.Parallel()
	mllp, metrics := freeAddr(t), freeAddr(t)
	env := map[string]string{"CALLOUT_MLLP_ADDR": mllp, "CALLOUT_MLLP_MAX_CONNS": "2", "CALLOUT_METRICS_ADDR": metrics}
	serveEnv(t, func(k string) string { return env[k] }, storetest.SQLite.URL(t))

	a, b := dialMLLP(t, mllp), dialMLLP(t, mllp)
	require.Equal(t, "AR", a.exchange(probeMessage))
	require.Equal(t, "AR", b.exchange(probeMessage))
	c := dialMLLP(t, mllp)
	_ = hl7.WriteFrame(c.c, []byte(probeMessage)) // may already fail: refused
	c.requireClosedByServer()
	status, body := get(t, "http://"+metrics+"/metrics", "")
	require.Equal(t, 200, status)
	require.Contains(t, body, "callout_mllp_connections_refused_total 1\n")
	require.Contains(t, body, "callout_mllp_connections 2\n")

	// The server closes a, the test sees it, and the slot is free for d.
	require.NoError(t, a.c.(*net.TCPConn).CloseWrite())
	a.requireClosedByServer()
	d := dialMLLP(t, mllp)
	require.Equal(t, "AR", d.exchange(probeMessage))
}
