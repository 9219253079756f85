package hl7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// Default timeouts of Server and Client.
const (
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultWriteTimeout    = 30 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultAckTimeout      = 30 * time.Second
)

// Handler processes one message received over MLLP and returns the ACK to
// send back (see NewACK and NewRejectACK). Returning nil sends nothing. raw
// is the frame content exactly as received; it may not even be HL7. The
// context carries the values of the Serve context but is cancelled only
// when a shutdown runs out of time, so a handler can finish storing a
// message it has started on.
type Handler func(ctx context.Context, raw []byte) []byte

// Server accepts MLLP connections. Each connection is served by its own
// goroutine, which reads messages one after the other and writes the
// handler's ACK for each before reading the next, as original-mode HL7
// expects. The zero value is ready to use.
type Server struct {
	// Logger receives connection and error events; nil means slog.Default().
	Logger *slog.Logger
	// IdleTimeout bounds the wait for, and reading of, each message; an
	// idle connection is closed after it. Zero means DefaultIdleTimeout,
	// negative means no limit.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one ACK. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ShutdownTimeout is how long Serve waits, once its context is done, for
	// handlers in progress before cancelling their context and closing their
	// connections. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MaxMessageSize is the largest accepted frame; zero means MaxFrameSize.
	MaxMessageSize int
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

	// stopCtx ends the read loops; handlerCtx ends handlers, later.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	context.AfterFunc(stopCtx, func() { ln.Close() })

	log.Info("mllp server listening", "addr", ln.Addr().String())
	var wg sync.WaitGroup
	acceptErr := s.acceptLoop(stopCtx, ln, log, func(conn net.Conn) {
		wg.Go(func() { s.serveConn(stopCtx, handlerCtx, conn, handler, log) })
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

func (s *Server) serveConn(stopCtx, handlerCtx context.Context, conn net.Conn, h Handler, log *slog.Logger) {
	defer conn.Close()
	log = log.With("remote", conn.RemoteAddr().String())
	log.Info("mllp connection opened")
	// Shutdown interrupts a pending read; a forced shutdown also kills writes
	// and handlers that ignore their context.
	stopRead := context.AfterFunc(stopCtx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stopRead()
	stopConn := context.AfterFunc(handlerCtx, func() { conn.Close() })
	defer stopConn()

	br := bufio.NewReaderSize(conn, 64<<10)
	for count := 0; ; {
		s.setReadDeadline(conn)
		// Checked after setting the deadline so a shutdown racing with it
		// is never missed.
		if stopCtx.Err() != nil {
			log.Info("mllp connection closed for shutdown", "messages", count)
			return
		}
		raw, err := ReadFrameMax(br, s.MaxMessageSize)
		if err != nil {
			s.logReadError(log, stopCtx, err, count)
			return
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			log.Debug("mllp empty frame ignored")
			continue
		}
		count++
		log.Debug("mllp message received", "bytes", len(raw))
		ack := s.handle(handlerCtx, h, raw, log)
		if ack == nil {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
		if err := WriteFrame(conn, ack); err != nil {
			log.Warn("mllp writing ACK failed", "err", err)
			return
		}
	}
}

func (s *Server) setReadDeadline(conn net.Conn) {
	idle := s.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	var deadline time.Time
	if idle > 0 {
		deadline = time.Now().Add(idle)
	}
	_ = conn.SetReadDeadline(deadline)
}

func (s *Server) logReadError(log *slog.Logger, stopCtx context.Context, err error, count int) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		log.Info("mllp connection closed by peer", "messages", count)
	case stopCtx.Err() != nil:
		log.Info("mllp connection closed for shutdown", "messages", count)
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
	conn, err := d.DialContext(ctx, "tcp", addr)
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
