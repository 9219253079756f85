package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// liveHeap returns the bytes of the heap still reachable after a full
// collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitUntil waits for cond, which observes the server, to hold. The bound
// only turns a hang into a failure; nothing asserts how fast cond comes true.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 60*time.Second, 5*time.Millisecond, "waiting for %s", what)
}

// dialFrom opens a connection to addr from the loopback address 127.0.1.src,
// so one test can play many senders.
func dialFrom(t *testing.T, addr string, src int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(src))}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	return c
}

// TestServerPartialFramesMemory is the probe of issue 8: 400 connections,
// from 50 source addresses, each send just under 1 MiB of a frame that never
// ends. The server may hold only what its connection limits let in, and must
// let it go when the connections close.
func TestServerPartialFramesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves hundreds of MB over loopback")
	}
	const conns, sources = 400, 50
	payload := append([]byte{StartBlock}, bytes.Repeat([]byte("x"), MaxFrameSize-16)...)
	// No timeouts: the connections must stay until the test closes them.
	srv := &Server{IdleTimeout: -1, FrameTimeout: -1}
	ts := startServer(t, srv, ackHandler)

	before := liveHeap()
	clients := make([]net.Conn, 0, conns)
	for i := range conns {
		c := dialFrom(t, ts.addr, 1+i%sources)
		clients = append(clients, c)
		// A refused connection fails the write; that is expected.
		go func() { _, _ = c.Write(payload) }()
	}
	// Every connection is either refused or has had all its bytes read.
	waitUntil(t, "the server to refuse or read every connection", func() bool {
		st := srv.Stats()
		return uint64(st.Open)+st.Refused == conns && st.BytesReceived == uint64(st.Open)*uint64(len(payload))
	})
	held := liveHeap()
	st := srv.Stats()
	t.Logf("%d connections served, %d refused; live heap %d MB before, %d MB holding",
		st.Open, st.Refused, before>>20, held>>20)
	require.Less(t, int64(held)-int64(before), int64(100_000_000), "heap growth while holding partial frames")
	require.EqualValues(t, DefaultMaxConns, st.Open)
	require.LessOrEqual(t, st.FrameBytes, int64(DefaultMaxConns)*(MaxFrameSize+maxChunk), "frame memory follows the bytes received")

	for _, c := range clients {
		c.Close()
	}
	waitUntil(t, "the server to close every connection", func() bool { return srv.Stats().Open == 0 })
	require.Zero(t, srv.Stats().FrameBytes)
	after := liveHeap()
	t.Logf("live heap %d MB after the connections closed", after>>20)
	require.Less(t, int64(after)-int64(before), int64(8<<20), "memory released when the connections closed")
}

// rawConn is an MLLP connection a test drives byte by byte.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// guard bounds every wait for the server to act: it turns a hang into a
// failure and is far above any timeout configured here.
const guard = 20 * time.Second

func dialRaw(t *testing.T, addr string, src int) *rawConn {
	t.Helper()
	c := dialFrom(t, addr, src)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(guard)))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// exchange sends a message and requires its AA.
func (r *rawConn) exchange(id string) {
	r.t.Helper()
	require.NoError(r.t, WriteFrame(r.c, testMessage(id)))
	ack, err := ReadFrame(r.br)
	require.NoError(r.t, err, "the server answers")
	requireACK(r.t, ack, AckAccept, id)
}

func (r *rawConn) write(s string) {
	r.t.Helper()
	_, err := r.c.Write([]byte(s))
	require.NoError(r.t, err)
}

// requireClosed waits for the server to close the connection, having sent
// nothing.
func (r *rawConn) requireClosed() {
	r.t.Helper()
	b, err := r.br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("the server kept the connection open for %v", guard)
	}
	require.Error(r.t, err, "the server sent %q instead of closing", b)
}

// closeWrite ends the test's side; the server then closes its own.
func (r *rawConn) closeWrite() {
	r.t.Helper()
	require.NoError(r.t, r.c.(*net.TCPConn).CloseWrite())
}

func TestServerMaxConns(t *testing.T) {
	t.Parallel()
	srv := &Server{MaxConns: 2, MaxConnsPerIP: -1}
	ts := startServer(t, srv, ackHandler)
	a, b := dialRaw(t, ts.addr, 1), dialRaw(t, ts.addr, 2)
	a.exchange("A")
	b.exchange("B")
	c := dialRaw(t, ts.addr, 3)
	c.requireClosed()
	require.Equal(t, Stats{Open: 2, Refused: 1, BytesReceived: srv.Stats().BytesReceived}, srv.Stats())

	// Once a is closed, its slot is free again.
	a.closeWrite()
	a.requireClosed()
	d := dialRaw(t, ts.addr, 4)
	d.exchange("D")
	b.exchange("B2")
}

func TestServerMaxConnsPerIP(t *testing.T) {
	t.Parallel()
	srv := &Server{MaxConnsPerIP: 2}
	ts := startServer(t, srv, ackHandler)
	a1, a2 := dialRaw(t, ts.addr, 1), dialRaw(t, ts.addr, 1)
	a1.exchange("A1")
	a2.exchange("A2")
	a3 := dialRaw(t, ts.addr, 1)
	a3.requireClosed()
	b := dialRaw(t, ts.addr, 2)
	b.exchange("B")
	require.EqualValues(t, 1, srv.Stats().Refused)
	require.EqualValues(t, 3, srv.Stats().Open)
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 2575} }
	tests := []struct {
		addr net.Addr
		want string
	}{
		{tcp("192.0.2.7"), "192.0.2.7"},
		{tcp("::ffff:192.0.2.7"), "192.0.2.7"},
		{tcp("2001:db8::1"), "2001:db8::/64"},
		{tcp("2001:db8::ffff:1"), "2001:db8::/64"},
		{tcp("2001:db8:0:1::1"), "2001:db8:0:1::/64"},
		{&net.UnixAddr{Name: "/run/mllp.sock", Net: "unix"}, "/run/mllp.sock"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, sourceKey(tt.addr), tt.addr.String())
	}
}

// trickle writes one byte every 20 ms until the connection fails or the
// test ends: a slowloris.
func trickle(t *testing.T, c net.Conn) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond) // the attacker's pace
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
}

// TestServerFrameTimeout: however steadily bytes arrive, a message must be
// complete within FrameTimeout of its first byte, junk before a start
// block included.
func TestServerFrameTimeout(t *testing.T) {
	t.Parallel()
	for _, start := range []string{"\x0bMSH|", "junk"} {
		t.Run(fmt.Sprintf("%q", start), func(t *testing.T) {
			t.Parallel()
			srv := &Server{FrameTimeout: 200 * time.Millisecond, IdleTimeout: -1}
			ts := startServer(t, srv, ackHandler)
			c := dialRaw(t, ts.addr, 1)
			c.exchange("FIRST")
			c.write(start)
			trickle(t, c.c)
			c.requireClosed()
			waitUntil(t, "the connection to be released", func() bool { return srv.Stats().Open == 0 })
			require.Zero(t, srv.Stats().FrameBytes)
		})
	}
}

// TestServerIdleIsNotAFrame: waiting between messages, line breaks
// included, is bounded by IdleTimeout, not by FrameTimeout.
func TestServerIdleIsNotAFrame(t *testing.T) {
	t.Parallel()
	srv := &Server{FrameTimeout: 100 * time.Millisecond, IdleTimeout: -1}
	ts := startServer(t, srv, ackHandler)
	idle := dialRaw(t, ts.addr, 1)
	idle.exchange("I1")
	idle.write("\r\n") // a late line break after the frame, then nothing
	waitUntil(t, "the server to read the line break", func() bool {
		return srv.Stats().BytesReceived == uint64(len(testMessage("I1"))+3+2)
	})
	// A slow frame on another connection, begun after that, runs out of
	// time: more than FrameTimeout has passed for the idle one too.
	slow := dialRaw(t, ts.addr, 2)
	slow.write("\x0bMSH|")
	slow.requireClosed()
	idle.exchange("I2")
}

// TestReadFrameMemoryAccounting: a frame's memory is accounted while it
// arrives; only a frame dropped unfinished counts as abandoned.
func TestReadFrameMemoryAccounting(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("y"), 200<<10)
	tests := []struct {
		name      string
		input     []byte
		abandoned bool
	}{
		{"complete", append(append([]byte{StartBlock}, big...), EndBlock, CarriageReturn), false},
		{"input ends inside", append([]byte{StartBlock}, big...), true},
		{"restarted by a start block", append(append(append([]byte{StartBlock}, big...), StartBlock, 'A'), EndBlock), true},
		{"too large", append([]byte{StartBlock}, bytes.Repeat(big, 6)...), true},
	}
	for _, tt := range tests {
		var mem frameMemory
		_, _ = readFrame(bufio.NewReaderSize(bytes.NewReader(tt.input), readBufferSize), 0, &mem)
		require.Zero(t, mem.held.Load(), tt.name)
		if tt.abandoned {
			require.GreaterOrEqual(t, mem.abandoned.Load(), int64(len(big)), tt.name)
		} else {
			require.Zero(t, mem.abandoned.Load(), tt.name)
		}
	}
}

// TestServerReleasesAbandonedMemory: once connections have dropped enough
// unfinished frames, the server hands the memory back to the system.
func TestServerReleasesAbandonedMemory(t *testing.T) {
	t.Parallel()
	released := make(chan struct{}, 1)
	srv := &Server{IdleTimeout: -1, FrameTimeout: -1, releaseMemory: func() { released <- struct{}{} }}
	ts := startServer(t, srv, ackHandler)
	payload := append([]byte{StartBlock}, bytes.Repeat([]byte("x"), MaxFrameSize-16)...)
	n := releaseThreshold/len(payload) + 1
	clients := make([]*rawConn, n)
	for i := range clients {
		clients[i] = dialRaw(t, ts.addr, 1+i)
		go func() { _, _ = clients[i].c.Write(payload) }()
	}
	waitUntil(t, "the server to read every frame", func() bool {
		return srv.Stats().BytesReceived == uint64(n*len(payload))
	})
	select {
	case <-released:
		t.Fatal("memory released while the frames were still arriving")
	default:
	}
	for _, c := range clients {
		c.closeWrite()
	}
	select {
	case <-released:
	case <-time.After(guard):
		t.Fatal("the abandoned frames' memory was not released")
	}
	waitUntil(t, "the connections to be closed", func() bool { st := srv.Stats(); return st.Open == 0 && st.FrameBytes == 0 })
}
