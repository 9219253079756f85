package hl7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Server and Client.
const (
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultFrameTimeout    = 30 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultAckTimeout      = 30 * time.Second
	DefaultMaxConns        = 64
	DefaultMaxConnsPerIP   = 8
)

// readBufferSize is the read buffer of a connection. It is small because
// memory per connection should follow what the sender sends: a frame is
// gathered in chunks as it arrives (see frameBuffer), not in this buffer.
const readBufferSize = 4 << 10

// Handler processes one message received over MLLP and returns the ACK to
// send back (see NewACK and NewRejectACK). Returning nil sends nothing. raw
// is the frame content exactly as received; it may not even be HL7. The
// context carries the values of the Serve context and the connection's
// Peer (see PeerFromContext), but is cancelled only when a shutdown runs out
// of time, so a handler can finish storing a message it has started on.
type Handler func(ctx context.Context, raw []byte) []byte

// Server accepts MLLP connections. Each connection is served by its own
// goroutine, which reads messages one after the other and writes the
// handler's ACK for each before reading the next, as original-mode HL7
// expects. The zero value is ready to use; a Server must not be copied.
//
// Every sender on the network is untrusted, so what one connection can hold
// is bounded: the number of connections (overall and per source address),
// the time to send one frame whatever the pace, and the frame's size; memory
// follows the bytes actually received, and is handed back to the system
// once connections have dropped several MiB of unfinished frames.
type Server struct {
	// Logger receives connection and error events; nil means slog.Default().
	Logger *slog.Logger
	// IdleTimeout bounds the wait for the next message (its first byte);
	// an idle connection is closed after it. Zero means DefaultIdleTimeout,
	// negative means no limit.
	IdleTimeout time.Duration
	// FrameTimeout bounds receiving one whole message, from its first byte
	// to its end block, however steadily the bytes trickle in, and the TLS
	// handshake; the connection is closed after it. Zero means
	// DefaultFrameTimeout, negative means no limit.
	FrameTimeout time.Duration
	// WriteTimeout bounds writing one ACK. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ShutdownTimeout is how long Serve waits, once its context is done, for
	// handlers in progress before cancelling their context and closing their
	// connections. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MaxMessageSize is the largest accepted frame; zero means MaxFrameSize.
	MaxMessageSize int
	// MaxConns is how many connections may be open at once; more are closed
	// as soon as they are accepted. Zero means DefaultMaxConns, negative
	// means no limit.
	MaxConns int
	// MaxConnsPerIP is how many of them may come from one source address
	// (for IPv6, one /64, which a single host usually has whole). Zero means
	// DefaultMaxConnsPerIP, negative means no limit.
	MaxConnsPerIP int
	// TLSConfig, when set, serves MLLP over TLS. With ClientAuth requiring
	// verified client certificates, the verified subject reaches the handler
	// in the connection's Peer.
	TLSConfig *tls.Config

	mu       sync.Mutex
	perIP    map[string]int
	lastWarn time.Time // of a refused connection, to keep a flood out of the log
	quiet    int       // refusals not logged since lastWarn

	open     atomic.Int64
	refused  atomic.Uint64
	received atomic.Uint64
	mem      frameMemory

	releaseTimer  *time.Timer    // of the release of memory scheduled, if any
	releases      sync.WaitGroup // the scheduled or running release
	lastRelease   time.Time      // when the last one ran
	releaseMemory func()         // nil: debug.FreeOSMemory; tests watch it
}

// Stats is a snapshot of a Server's connection counters, for metrics.
type Stats struct {
	Open          int64  // connections being served now
	Refused       uint64 // connections closed at once because a limit was reached, so far
	BytesReceived uint64 // bytes read from all connections so far
	FrameBytes    int64  // memory holding messages still arriving, now
}

// Stats returns the server's counters now.
func (s *Server) Stats() Stats {
	return Stats{Open: s.open.Load(), Refused: s.refused.Load(), BytesReceived: s.received.Load(),
		FrameBytes: s.mem.held.Load()}
}

// countingConn counts the bytes read from a connection into the server's
// total.
type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(uint64(n))
	return n, err
}

// Serve accepts connections on ln until ctx is done or Accept fails for
// good, and always closes ln. On ctx being done it stops accepting, closes
// idle connections, lets messages being handled finish and get their ACK
// (up to ShutdownTimeout), and returns nil. Otherwise it returns the
// Accept error.
func (s *Server) Serve(ctx context.Context, ln net.Listener, handler Handler) error {
	if handler == nil {
		return errors.New("hl7: Serve needs a handler")
	}
	log := s.logger()
	defer ln.Close()
	defer s.stopReleases()

	// stopCtx ends the read loops; handlerCtx ends handlers, later.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	context.AfterFunc(stopCtx, func() { ln.Close() })

	log.Info("mllp server listening", "addr", ln.Addr().String(), "tls", s.TLSConfig != nil,
		"max_conns", limit(s.MaxConns, DefaultMaxConns), "max_conns_per_ip", limit(s.MaxConnsPerIP, DefaultMaxConnsPerIP))
	var wg sync.WaitGroup
	acceptErr := s.acceptLoop(stopCtx, ln, log, func(conn net.Conn) {
		release, ok := s.admit(conn, log)
		if !ok {
			return
		}
		wg.Go(func() {
			defer conn.Close()
			// Runs before the close, so a sender that sees its connection
			// closed finds the slot free.
			defer release()
			s.serveConn(stopCtx, handlerCtx, conn, handler, log)
		})
	})
	stop()
	if !s.waitFor(&wg, log, cancelHandlers) {
		return errors.New("hl7: mllp server: handlers did not return after shutdown timeout")
	}
	if acceptErr != nil {
		return fmt.Errorf("hl7: mllp accept: %w", acceptErr)
	}
	log.Info("mllp server stopped", "addr", ln.Addr().String())
	return nil
}

// limit resolves a limit field: zero means def, negative no limit (0).
func limit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// admit counts conn against the connection limits, or closes it at once
// when a limit is reached. The caller runs release when conn is done.
func (s *Server) admit(conn net.Conn, log *slog.Logger) (release func(), ok bool) {
	key := sourceKey(conn.RemoteAddr())
	maxConns, maxPerIP := limit(s.MaxConns, DefaultMaxConns), limit(s.MaxConnsPerIP, DefaultMaxConnsPerIP)
	s.mu.Lock()
	reason, max := "", 0
	switch {
	case maxConns > 0 && s.open.Load() >= int64(maxConns):
		reason, max = "too many connections", maxConns
	case maxPerIP > 0 && s.perIP[key] >= maxPerIP:
		reason, max = "too many connections from this address", maxPerIP
	}
	if reason != "" {
		s.refused.Add(1)
		logIt, quiet := s.throttleWarn()
		s.mu.Unlock()
		conn.Close()
		if logIt {
			log.Warn("mllp connection refused", "remote", conn.RemoteAddr().String(), "reason", reason,
				"limit", max, "refused_unlogged", quiet)
		}
		return nil, false
	}
	if s.perIP == nil {
		s.perIP = map[string]int{}
	}
	s.perIP[key]++
	s.open.Add(1)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.perIP[key]--; s.perIP[key] <= 0 {
			delete(s.perIP, key)
		}
		s.open.Add(-1)
	}, true
}

// throttleWarn reports whether a refusal should be logged (at most one a
// second; a flood of connections must not become a flood of log lines) and
// how many went unlogged before it. s.mu is held.
func (s *Server) throttleWarn() (bool, int) {
	now := time.Now()
	if now.Sub(s.lastWarn) < time.Second {
		s.quiet++
		return false, 0
	}
	quiet := s.quiet
	s.lastWarn, s.quiet = now, 0
	return true, quiet
}

// sourceKey is what the per-address limit counts by: the IPv4 address, or
// the IPv6 /64 (one host is commonly given a whole /64, so counting single
// IPv6 addresses would be no limit at all).
func sourceKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if v4 := ta.IP.To4(); v4 != nil {
		return v4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// acceptLoop returns nil when ctx is done, or the first Accept error that
// is not worth retrying.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, log *slog.Logger, serve func(net.Conn)) error {
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err == nil {
			backoff = 0
			serve(conn)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		// Likely transient (e.g. out of file descriptors): back off as
		// net/http does rather than spin or give up.
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		log.Warn("mllp accept failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
	}
}

// waitFor waits for the connections, cancelling handlers and closing
// connections after ShutdownTimeout. It reports false if they still did not
// finish within a second grace period.
func (s *Server) waitFor(wg *sync.WaitGroup, log *slog.Logger, cancelHandlers context.CancelFunc) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timeout := s.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
	}
	log.Warn("mllp shutdown timeout; cancelling handlers and closing connections", "timeout", timeout)
	cancelHandlers()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// serveConn serves one admitted connection; the caller closes it.
func (s *Server) serveConn(stopCtx, handlerCtx context.Context, conn net.Conn, h Handler, log *slog.Logger) {
	log = log.With("remote", conn.RemoteAddr().String())
	// Shutdown interrupts a pending read; a forced shutdown also kills writes
	// and handlers that ignore their context.
	stopRead := context.AfterFunc(stopCtx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopRead()
	stopConn := context.AfterFunc(handlerCtx, func() { conn.Close() })
	defer stopConn()

	var rw net.Conn = countingConn{conn, &s.received}
	peer := Peer{Addr: conn.RemoteAddr()}
	if s.TLSConfig != nil {
		tc, err := s.handshake(stopCtx, rw)
		if err != nil {
			log.Info("mllp TLS handshake failed; closing connection", "err", err)
			return
		}
		rw, peer.Subject = tc, verifiedSubject(tc.ConnectionState())
		if peer.Subject != "" {
			log = log.With("subject", peer.Subject)
		}
	}
	log.Info("mllp connection opened")
	ctx := context.WithValue(handlerCtx, peerKey{}, peer)

	br := bufio.NewReaderSize(rw, readBufferSize)
	for count := 0; ; {
		if err := s.awaitFrame(stopCtx, rw, br); err != nil {
			s.logReadError(log, stopCtx, err, count, false)
			return
		}
		raw, err := readFrame(br, s.MaxMessageSize, &s.mem)
		if err != nil {
			s.logReadError(log, stopCtx, err, count, true)
			s.releaseAbandoned()
			return
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			log.Debug("mllp empty frame ignored")
			continue
		}
		count++
		log.Debug("mllp message received", "bytes", len(raw))
		ack := s.handle(ctx, h, raw, log)
		if ack == nil {
			continue
		}
		_ = rw.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
		if err := WriteFrame(rw, ack); err != nil {
			log.Warn("mllp writing ACK failed", "err", err)
			return
		}
	}
}

// When connections have dropped this much memory of unfinished frames, the
// server returns free memory to the operating system, at most once every
// releaseInterval. The runtime would keep it: with callout's GOGC of 400
// the heap may grow to five times the live heap before a collection, and
// freed pages go back to the system slowly, so after a burst of senders
// that never finish their messages the process would stay at its high-water
// mark (measured: 108 MB for minutes after 64 such connections closed).
const (
	releaseThreshold = 4 << 20
	releaseDelay     = time.Second // lets a burst of closing connections finish first
	releaseInterval  = 10 * time.Second
)

// releaseAbandoned schedules the release of memory when enough frames were
// abandoned.
func (s *Server) releaseAbandoned() {
	if s.mem.abandoned.Load() < releaseThreshold {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.releaseTimer != nil {
		return
	}
	wait := max(releaseDelay, releaseInterval-time.Since(s.lastRelease))
	s.releases.Add(1)
	s.releaseTimer = time.AfterFunc(wait, func() {
		defer s.releases.Done()
		n := s.mem.abandoned.Swap(0)
		release := s.releaseMemory
		if release == nil {
			release = debug.FreeOSMemory
		}
		release()
		s.logger().Info("mllp returned the memory of abandoned messages to the system", "abandoned_bytes", n)
		s.mu.Lock()
		s.releaseTimer, s.lastRelease = nil, time.Now()
		s.mu.Unlock()
	})
}

// stopReleases cancels a scheduled release of memory, or waits for one that
// is running, so that nothing of Serve outlives it.
func (s *Server) stopReleases() {
	s.mu.Lock()
	if t := s.releaseTimer; t != nil && t.Stop() {
		s.releaseTimer = nil
		s.releases.Done()
	}
	s.mu.Unlock()
	s.releases.Wait()
}

// handshake runs the TLS handshake within the frame timeout: a client that
// stalls it holds its slot no longer than one that stalls a message.
func (s *Server) handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	tc := tls.Server(conn, s.TLSConfig)
	if err := setDeadline(ctx, conn.SetDeadline, s.FrameTimeout, DefaultFrameTimeout); err != nil {
		return nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// awaitFrame waits, within the idle timeout, for the first byte of the next
// message, skipping the white space senders put between frames; then it
// starts the frame timeout, which the whole message must arrive within.
func (s *Server) awaitFrame(stopCtx context.Context, conn net.Conn, br *bufio.Reader) error {
	if err := setDeadline(stopCtx, conn.SetReadDeadline, s.IdleTimeout, DefaultIdleTimeout); err != nil {
		return err
	}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return err
		}
		if !isSpace(b[0]) {
			break
		}
		_, _ = br.Discard(1)
	}
	return setDeadline(stopCtx, conn.SetReadDeadline, s.FrameTimeout, DefaultFrameTimeout)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func isSpace(b byte) bool { return b == '\r' || b == '\n' || b == ' ' || b == '\t' }

// setDeadline sets a deadline d from now (zero: def; negative: none) with
// set. It fails when stopCtx is done, checked after setting so that a
// shutdown racing with it, which moves the deadline to the past, is never
// overwritten unnoticed.
func setDeadline(stopCtx context.Context, set func(time.Time) error, d, def time.Duration) error {
	if d == 0 {
		d = def
	}
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	if err := set(deadline); err != nil {
		return err
	}
	return stopCtx.Err()
}

// logReadError logs why a connection ends; inFrame tells a message that
// did not arrive in time (a slow or hostile sender) from an idle connection.
func (s *Server) logReadError(log *slog.Logger, stopCtx context.Context, err error, count int, inFrame bool) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		log.Info("mllp connection closed by peer", "messages", count)
	case stopCtx.Err() != nil:
		log.Info("mllp connection closed for shutdown", "messages", count)
	case errors.As(err, &ne) && ne.Timeout() && inFrame:
		log.Warn("mllp message not received within the frame timeout; closing connection",
			"timeout", orDefault(s.FrameTimeout, DefaultFrameTimeout), "messages", count)
	case errors.As(err, &ne) && ne.Timeout():
		log.Info("mllp connection idle timeout", "messages", count)
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrIncompleteFrame):
		log.Warn("mllp framing error; closing connection", "err", err, "messages", count)
	default:
		log.Warn("mllp read failed", "err", err, "messages", count)
	}
}

// handle runs the handler, turning a panic into an AR acknowledgement so
// one bad message cannot take the server down. AR, not AE: the same
// message would meet the same bug again, so it must not be resent forever.
func (s *Server) handle(ctx context.Context, h Handler, raw []byte, log *slog.Logger) (ack []byte) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("mllp handler panicked", "panic", r, "stack", string(debug.Stack()))
			ack = internalErrorACK(raw, time.Now())
		}
	}()
	return h(ctx, raw)
}

func internalErrorACK(raw []byte, now time.Time) []byte {
	const text = "internal error while processing the message"
	if m, err := Parse(raw); err == nil {
		return NewACK(m, AckReject, text, "", now)
	}
	return NewRejectACK(raw, text, now)
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Client sends messages over one MLLP connection. The zero value is ready
// to use.
type Client struct {
	// AckTimeout bounds sending one message and receiving its ACK. Zero
	// means DefaultAckTimeout.
	AckTimeout time.Duration
	// MaxAckSize is the largest accepted ACK; zero means MaxFrameSize.
	MaxAckSize int
	// Dialer dials the connection; nil means a zero net.Dialer.
	Dialer *net.Dialer
	// TLSConfig, when set, speaks MLLP over TLS: RootCAs to trust a private
	// CA, Certificates to present a client certificate. ServerName defaults
	// to the host of the address.
	TLSConfig *tls.Config
}

// Send is (&Client{}).Send.
func Send(ctx context.Context, addr string, msgs [][]byte) ([][]byte, error) {
	var c Client
	return c.Send(ctx, addr, msgs)
}

// Send dials addr, then for each message writes it as an MLLP frame and
// waits for the reply, which it returns in order. The messages are sent
// as given (see SplitFile). On error it returns the ACKs received so far
// and an error naming the message that failed.
func (c *Client) Send(ctx context.Context, addr string, msgs [][]byte) ([][]byte, error) {
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	var conn net.Conn
	var err error
	if c.TLSConfig != nil {
		conn, err = (&tls.Dialer{NetDialer: d, Config: c.TLSConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("hl7: dialing %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	br := bufio.NewReader(conn)
	acks := make([][]byte, 0, len(msgs))
	for i, msg := range msgs {
		ack, err := c.exchange(ctx, conn, br, msg)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return acks, fmt.Errorf("hl7: message %d of %d: %w", i+1, len(msgs), err)
		}
		acks = append(acks, ack)
	}
	return acks, nil
}

func (c *Client) exchange(ctx context.Context, conn net.Conn, br *bufio.Reader, msg []byte) ([]byte, error) {
	timeout := c.AckTimeout
	if timeout <= 0 {
		timeout = DefaultAckTimeout
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	// Checked after setting the deadline, which would otherwise override
	// the one set when ctx was cancelled.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := WriteFrame(conn, msg); err != nil {
		return nil, err
	}
	ack, err := ReadFrameMax(br, c.MaxAckSize)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("connection closed before the ACK arrived")
	}
	return ack, err
}
