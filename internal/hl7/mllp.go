package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// MLLP block characters.
const (
	StartBlock     byte = 0x0B // vertical tab, starts a frame
	EndBlock       byte = 0x1C // file separator, ends a frame
	CarriageReturn byte = 0x0D // follows EndBlock
)

// MaxFrameSize is the largest message ReadFrame accepts: 1 MiB is far above
// any lab result without embedded documents and bounds memory per connection.
const MaxFrameSize = 1 << 20

var (
	// ErrFrameTooLarge is returned (wrapped) when a frame, or the junk
	// before it, exceeds the size limit. The stream cannot be resynchronised
	// reliably afterwards, so the connection should be closed.
	ErrFrameTooLarge = errors.New("hl7: MLLP frame too large")
	// ErrIncompleteFrame is returned (wrapped, together with
	// io.ErrUnexpectedEOF) when the input ends inside a frame or holds
	// data without any start block.
	ErrIncompleteFrame = errors.New("hl7: incomplete MLLP frame")
)

// ReadFrame reads one MLLP frame from r with the MaxFrameSize limit; see
// ReadFrameMax.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	return ReadFrameMax(r, MaxFrameSize)
}

// ReadFrameMax reads one MLLP frame (0x0B message 0x1C 0x0D) from r and
// returns the message without the block characters. It is lenient where
// senders are known to be sloppy:
//
//   - bytes before the start block are discarded;
//   - a start block inside a frame restarts the frame, dropping the partial
//     message before it (the sender evidently gave up on it);
//   - the 0x0D after 0x1C is consumed when it has already arrived, and is
//     otherwise skipped as junk by the next call, so a sender that omits it
//     does not stall the reader.
//
// It returns io.EOF when the input ends before a frame starts, having held
// nothing but white space; ErrIncompleteFrame when it ends inside a frame
// or after non-blank data with no start block; and ErrFrameTooLarge when a
// frame, or the junk before it, exceeds limit bytes (limit <= 0 means
// MaxFrameSize).
//
// Memory grows with the bytes that actually arrive, never with the limit.
func ReadFrameMax(r *bufio.Reader, limit int) ([]byte, error) {
	return readFrame(r, limit, nil)
}

// frameMemory accounts for the memory of frames being received.
type frameMemory struct {
	held      atomic.Int64 // holding frames that are still arriving, now
	abandoned atomic.Int64 // of frames dropped unfinished, since last reset
}

// readFrame is ReadFrameMax, accounting for the memory that holds the frame
// while it arrives in mem (when not nil).
func readFrame(r *bufio.Reader, limit int, mem *frameMemory) ([]byte, error) {
	if limit <= 0 {
		limit = MaxFrameSize
	}
	if err := skipToStart(r, limit); err != nil {
		return nil, err
	}
	buf := frameBuffer{mem: mem}
	defer buf.abandon() // unless complete

	for {
		chunk, err := r.ReadSlice(EndBlock)
		if i := bytes.LastIndexByte(chunk, StartBlock); i >= 0 {
			buf.abandon()
			chunk = chunk[i+1:]
		}
		done := err == nil
		if done {
			chunk = chunk[:len(chunk)-1] // drop EndBlock
		}
		if buf.n+len(chunk) > limit {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, limit)
		}
		buf.write(chunk)
		switch {
		case done:
			skipCR(r)
			frame := buf.bytes()
			buf.complete()
			return frame, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: input ended after %d bytes without end block 0x1C 0x0D: %w",
				ErrIncompleteFrame, buf.n, io.ErrUnexpectedEOF)
		default:
			return nil, fmt.Errorf("hl7: reading MLLP frame: %w", err)
		}
	}
}

// Chunks of a frame being received: the first is small, as most messages
// are, and each next one doubles up to the largest. A frame never holds more
// than one partly filled chunk beyond the bytes received, and nothing is
// copied until the frame is complete, so a growing frame leaves no garbage
// behind (the old arrays of an append-grown slice would linger until the
// next collection, several times the live heap with a high GOGC).
const (
	firstChunk = 4 << 10
	maxChunk   = 64 << 10
)

// frameBuffer accumulates a frame in chunks.
type frameBuffer struct {
	chunks [][]byte
	n      int          // bytes written
	size   int64        // bytes allocated
	mem    *frameMemory // where size is accounted, if not nil
}

func (f *frameBuffer) write(p []byte) {
	for len(p) > 0 {
		last := len(f.chunks) - 1
		if last < 0 || len(f.chunks[last]) == cap(f.chunks[last]) {
			size := min(firstChunk<<len(f.chunks), maxChunk)
			f.chunks = append(f.chunks, make([]byte, 0, size))
			f.grow(int64(size))
			last++
		}
		c := f.chunks[last]
		k := min(len(p), cap(c)-len(c))
		f.chunks[last] = append(c, p[:k]...)
		f.n += k
		p = p[k:]
	}
}

// bytes returns the frame in one slice: the only chunk as it is, else an
// exact copy.
func (f *frameBuffer) bytes() []byte {
	if len(f.chunks) == 1 {
		return f.chunks[0]
	}
	out := make([]byte, 0, f.n)
	for _, c := range f.chunks {
		out = append(out, c...)
	}
	return out
}

// complete drops the chunks of a frame that has been handed over.
func (f *frameBuffer) complete() {
	f.grow(-f.size)
	f.chunks, f.n = nil, 0
}

// abandon drops the chunks of a frame that will never be complete.
func (f *frameBuffer) abandon() {
	if f.mem != nil && f.size > 0 {
		f.mem.abandoned.Add(f.size)
	}
	f.complete()
}

func (f *frameBuffer) grow(d int64) {
	f.size += d
	if f.mem != nil && d != 0 {
		f.mem.held.Add(d)
	}
}

// skipToStart consumes input up to and including the next start block.
func skipToStart(r *bufio.Reader, limit int) error {
	skipped, blank := 0, true
	for {
		chunk, err := r.ReadSlice(StartBlock)
		if err == nil {
			return nil
		}
		skipped += len(chunk)
		blank = blank && len(bytes.TrimSpace(chunk)) == 0
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if skipped > limit {
				return fmt.Errorf("%w: %d bytes without a start block 0x0B", ErrFrameTooLarge, skipped)
			}
		case errors.Is(err, io.EOF) && blank:
			return io.EOF
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: %d bytes of data without a start block 0x0B (sender not using MLLP?): %w",
				ErrIncompleteFrame, skipped, io.ErrUnexpectedEOF)
		default:
			return fmt.Errorf("hl7: reading MLLP frame: %w", err)
		}
	}
}

// skipCR consumes the carriage return after an end block if it is already
// buffered. Waiting for it could block until the peer's next message.
func skipCR(r *bufio.Reader) {
	if r.Buffered() == 0 {
		return
	}
	if b, err := r.Peek(1); err == nil && b[0] == CarriageReturn {
		_, _ = r.Discard(1)
	}
}

// WriteFrame writes msg as one MLLP frame with a single Write call. It
// refuses messages containing block characters, which would corrupt the
// framing; Delims.EscapeText never produces them.
func WriteFrame(w io.Writer, msg []byte) error {
	if i := bytes.IndexAny(msg, "\x0b\x1c"); i >= 0 {
		return fmt.Errorf("hl7: message contains MLLP block character 0x%02X at offset %d", msg[i], i)
	}
	frame := make([]byte, 0, len(msg)+3)
	frame = append(frame, StartBlock)
	frame = append(frame, msg...)
	frame = append(frame, EndBlock, CarriageReturn)
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("hl7: writing MLLP frame: %w", err)
	}
	return nil
}

// SplitFile splits a text file holding several messages into messages with
// "\r" segment terminators, ready for WriteFrame. Segments may end in "\r",
// "\n" or "\r\n"; each line starting with MSH begins a new message; blank
// lines, MLLP block characters (so already-framed files work), a UTF-8 byte
// order mark, batch envelope segments (FHS, BHS, BTS, FTS) and lines before
// the first MSH are dropped.
func SplitFile(data []byte) [][]byte {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	var (
		msgs [][]byte
		cur  []byte
	)
	for _, line := range bytes.FieldsFunc(data, isLineBreak) {
		if len(bytes.TrimSpace(line)) == 0 || isEnvelope(line) {
			continue
		}
		if bytes.HasPrefix(line, []byte("MSH")) {
			if cur != nil {
				msgs = append(msgs, cur)
			}
			cur = []byte{}
		}
		if cur == nil {
			continue // before the first MSH
		}
		cur = append(cur, line...)
		cur = append(cur, '\r')
	}
	if cur != nil {
		msgs = append(msgs, cur)
	}
	return msgs
}

func isLineBreak(r rune) bool {
	return r == '\r' || r == '\n' || r == rune(StartBlock) || r == rune(EndBlock)
}

func isEnvelope(line []byte) bool {
	for _, name := range []string{"FHS", "BHS", "BTS", "FTS"} {
		if bytes.HasPrefix(line, []byte(name)) && (len(line) == 3 || !isAlnum(line[3])) {
			return true
		}
	}
	return false
}
