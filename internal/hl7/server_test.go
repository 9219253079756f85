package hl7

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testMessage returns a minimal ORU^R01 with the given control id.
func testMessage(id string) []byte {
	return []byte("MSH|^~\\&|LAB|FAC|CALLOUT|CLINIC|20240301120000||ORU^R01|" + id + "|P|2.5.1\r" +
		"PID|1||P1||DOE^JANE\rOBR|1|PL|FI|GLU^Glucose|||20240301110000\rOBX|1|NM|GLU^Glucose||5.5|mmol/L|3.9-5.5||||F\r")
}

// ackHandler acknowledges ORU^R01 with AA, other HL7 with AR and anything
// unparseable with a reject ACK, as the real service will.
func ackHandler(ctx context.Context, raw []byte) []byte {
	m, err := Parse(raw)
	if err != nil {
		return NewRejectACK(raw, err.Error(), time.Now())
	}
	if _, err := ParseORU(m); err != nil {
		return NewACK(m, AckReject, err.Error(), "", time.Now())
	}
	return NewACK(m, AckAccept, "", "", time.Now())
}

// controlID is for handlers, which run outside the test goroutine and so
// must not call require.
func controlID(raw []byte) string {
	m, err := Parse(raw)
	if err != nil {
		return ""
	}
	return m.Get("MSH", 10)
}

type testServer struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startServer runs srv on a loopback port; the cleanup stops it and waits,
// so no goroutine logs after the test ends.
func startServer(t *testing.T, srv *Server, h Handler) *testServer {
	t.Helper()
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ts.cancel()
	select {
	case err := <-ts.done:
		require.NoError(t, err)
		ts.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func requireACK(t *testing.T, raw []byte, code, controlID string) *Message {
	t.Helper()
	ack := mustParse(t, raw)
	require.Equal(t, code, ack.Get("MSA", 1), "ACK: %q", raw)
	require.Equal(t, controlID, ack.Get("MSA", 2))
	return ack
}

func TestServerSeveralMessagesOneConnection(t *testing.T) {
	ts := startServer(t, &Server{}, ackHandler)
	msgs := [][]byte{testMessage("C1"), readTestdata(t, "adt_a01.hl7"), []byte("not hl7 at all"), testMessage("C3")}
	acks, err := Send(context.Background(), ts.addr, msgs)
	require.NoError(t, err)
	require.Len(t, acks, 4)
	requireACK(t, acks[0], AckAccept, "C1")
	ack := requireACK(t, acks[1], AckReject, "MSG00001")
	require.Contains(t, ack.Get("MSA", 3), "not ORU^R01")
	requireACK(t, acks[2], AckReject, "")
	requireACK(t, acks[3], AckAccept, "C3")
}

func TestServerTwoConnectionsAtOnce(t *testing.T) {
	// Each connection's first message waits until both have arrived, which
	// only completes if the server handles the connections concurrently.
	var arrived sync.WaitGroup
	arrived.Add(2)
	var once sync.Map
	h := func(ctx context.Context, raw []byte) []byte {
		id := controlID(raw)
		if _, loaded := once.LoadOrStore(id, true); !loaded && strings.HasSuffix(id, "-1") {
			arrived.Done()
			waitTimeout(t, &arrived, 5*time.Second)
		}
		return ackHandler(ctx, raw)
	}
	ts := startServer(t, &Server{}, h)

	var wg sync.WaitGroup
	results := make([][][]byte, 2)
	errs := make([]error, 2)
	for c := range 2 {
		wg.Go(func() {
			var msgs [][]byte
			for i := 1; i <= 3; i++ {
				msgs = append(msgs, testMessage(fmt.Sprintf("K%d-%d", c, i)))
			}
			client := &Client{AckTimeout: 10 * time.Second}
			results[c], errs[c] = client.Send(context.Background(), ts.addr, msgs)
		})
	}
	wg.Wait()
	for c := range 2 {
		require.NoError(t, errs[c])
		require.Len(t, results[c], 3)
		for i, ack := range results[c] {
			requireACK(t, ack, AckAccept, fmt.Sprintf("K%d-%d", c, i+1))
		}
	}
}

func waitTimeout(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Error("connections were not handled concurrently")
	}
}

func TestServerHandlerPanicAnswersAR(t *testing.T) {
	h := func(ctx context.Context, raw []byte) []byte {
		if controlID(raw) == "BOOM" {
			panic("handler bug")
		}
		return ackHandler(ctx, raw)
	}
	ts := startServer(t, &Server{}, h)
	acks, err := Send(context.Background(), ts.addr, [][]byte{testMessage("BOOM"), testMessage("OK")})
	require.NoError(t, err)
	ack := requireACK(t, acks[0], AckReject, "BOOM")
	require.Contains(t, ack.Get("MSA", 3), "internal error")
	requireACK(t, acks[1], AckAccept, "OK")
}

func TestServerNilACKAndEmptyFrames(t *testing.T) {
	h := func(ctx context.Context, raw []byte) []byte {
		if controlID(raw) == "SILENT" {
			return nil
		}
		return ackHandler(ctx, raw)
	}
	ts := startServer(t, &Server{}, h)
	conn, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	// An empty frame and a message answered with nil get no reply; the next
	// message's ACK is the first thing read.
	_, err = conn.Write([]byte("\x0b\x1c\r"))
	require.NoError(t, err)
	require.NoError(t, WriteFrame(conn, testMessage("SILENT")))
	require.NoError(t, WriteFrame(conn, testMessage("LOUD")))
	ack, err := ReadFrame(bufio.NewReader(conn))
	require.NoError(t, err)
	requireACK(t, ack, AckAccept, "LOUD")
}

func TestServerGracefulShutdownFinishesInFlightMessage(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := func(ctx context.Context, raw []byte) []byte {
		if controlID(raw) == "INFLIGHT" {
			close(started)
			<-release
		}
		return ackHandler(ctx, raw)
	}
	ts := startServer(t, &Server{}, h)

	// A second connection, idle after one exchange, must be closed by the
	// shutdown. The exchange makes sure the server has accepted it.
	idle, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	defer idle.Close()
	require.NoError(t, idle.SetDeadline(time.Now().Add(5*time.Second)))
	idleReader := bufio.NewReader(idle)
	require.NoError(t, WriteFrame(idle, testMessage("WARM")))
	ack, err := ReadFrame(idleReader)
	require.NoError(t, err)
	requireACK(t, ack, AckAccept, "WARM")

	type result struct {
		acks [][]byte
		err  error
	}
	res := make(chan result, 1)
	go func() {
		acks, err := Send(context.Background(), ts.addr, [][]byte{testMessage("INFLIGHT")})
		res <- result{acks, err}
	}()
	<-started
	ts.cancel()
	time.Sleep(50 * time.Millisecond) // let the shutdown reach the connections
	close(release)

	r := <-res
	require.NoError(t, r.err)
	requireACK(t, r.acks[0], AckAccept, "INFLIGHT")
	ts.stop(t)

	_, err = ReadFrame(idleReader)
	require.Equal(t, io.EOF, err)

	_, err = Send(context.Background(), ts.addr, [][]byte{testMessage("LATE")})
	require.Error(t, err, "listener is closed")
}

func TestServerForcedShutdownCancelsHandler(t *testing.T) {
	started := make(chan struct{})
	h := func(ctx context.Context, raw []byte) []byte {
		close(started)
		<-ctx.Done() // a handler that only stops when told to
		return nil
	}
	ts := startServer(t, &Server{ShutdownTimeout: 50 * time.Millisecond}, h)
	res := make(chan error, 1)
	go func() {
		_, err := Send(context.Background(), ts.addr, [][]byte{testMessage("STUCK")})
		res <- err
	}()
	<-started
	ts.stop(t)
	require.ErrorContains(t, <-res, "message 1 of 1")
}

func TestServerIdleTimeout(t *testing.T) {
	ts := startServer(t, &Server{IdleTimeout: 100 * time.Millisecond}, ackHandler)
	conn, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Less(t, time.Since(start), 4*time.Second)
}

func TestServerClosesOnOversizedFrame(t *testing.T) {
	ts := startServer(t, &Server{MaxMessageSize: 100}, ackHandler)
	_, err := Send(context.Background(), ts.addr, [][]byte{testMessage("BIG")})
	// Usually "connection closed before the ACK arrived"; a reset is also fine.
	require.ErrorContains(t, err, "message 1 of 1: ")
}

func TestServeRequiresHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	require.ErrorContains(t, (&Server{}).Serve(context.Background(), ln, nil), "needs a handler")
}

func TestServeReturnsAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	srv := &Server{Logger: slog.New(slog.DiscardHandler)}
	require.ErrorContains(t, srv.Serve(context.Background(), ln, ackHandler), "hl7: mllp accept")
}

func TestClientErrors(t *testing.T) {
	t.Run("dial", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		_, err = Send(context.Background(), addr, [][]byte{testMessage("X")})
		require.ErrorContains(t, err, "hl7: dialing")
	})
	t.Run("context cancelled while waiting for ACK", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		ts := startServer(t, &Server{ShutdownTimeout: 50 * time.Millisecond}, func(ctx context.Context, raw []byte) []byte {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		acks, err := Send(ctx, ts.addr, [][]byte{testMessage("SLOW")})
		require.Empty(t, acks)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("ACK timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		go func() { // accepts and never answers
			if c, err := ln.Accept(); err == nil {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}
		}()
		c := &Client{AckTimeout: 100 * time.Millisecond}
		_, err = c.Send(context.Background(), ln.Addr().String(), [][]byte{testMessage("X")})
		require.ErrorContains(t, err, "i/o timeout")
	})
	t.Run("bad message", func(t *testing.T) {
		ts := startServer(t, &Server{}, ackHandler)
		acks, err := Send(context.Background(), ts.addr, [][]byte{testMessage("A"), []byte("bad\x1c")})
		require.Len(t, acks, 1)
		require.ErrorContains(t, err, "message 2 of 2: hl7: message contains MLLP block character")
	})
}
