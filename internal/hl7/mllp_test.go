package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// readAll reads frames until an error and returns them with that error.
func readAll(r *bufio.Reader, max int) ([]string, error) {
	var frames []string
	for {
		f, err := ReadFrameMax(r, max)
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(f))
	}
}

func TestReadFrame(t *testing.T) {
	const msg = "MSH|^~\\&|A|B|C|D|20240301||ORU^R01|X|P|2.5\r"
	tests := []struct {
		name    string
		input   string
		max     int
		frames  []string
		wantErr error // io.EOF means a clean end
	}{
		{"empty input", "", 0, nil, io.EOF},
		{"blank input", " \r\n", 0, nil, io.EOF},
		{"one frame", "\x0b" + msg + "\x1c\r", 0, []string{msg}, io.EOF},
		{"two messages in one read", string(readTestdata(t, "mllp_two_messages.bin")), 0, []string{
			"MSH|^~\\&|A|B|C|D|20240301||ORU^R01|T1|P|2.5\r", "MSH|^~\\&|A|B|C|D|20240301||ORU^R01|T2|P|2.5\r"}, io.EOF},
		{"junk before start", string(readTestdata(t, "mllp_junk_before_start.bin")), 0, []string{
			"MSH|^~\\&|A|B|C|D|20240301||ORU^R01|J1|P|2.5\rPID|1||X\r"}, io.EOF},
		{"missing end block", string(readTestdata(t, "mllp_missing_end.bin")), 0, nil, ErrIncompleteFrame},
		{"end block without CR", "\x0bA\x1c\x0bB\x1c", 0, []string{"A", "B"}, io.EOF},
		{"CR and junk between frames", "\x0bA\x1c\r\r\njunk\x0bB\x1c\r\n", 0, []string{"A", "B"}, io.EOF},
		{"start block restarts frame", "\x0bpartial\x0bA\x1c\r", 0, []string{"A"}, io.EOF},
		{"empty frame", "\x0b\x1c\r", 0, []string{""}, io.EOF},
		{"no start block", msg, 0, nil, ErrIncompleteFrame},
		{"trailing garbage after frame", "\x0bA\x1c\rgarbage", 0, []string{"A"}, ErrIncompleteFrame},
		{"frame at limit", "\x0b12345\x1c\r", 5, []string{"12345"}, io.EOF},
		{"frame over limit", "\x0b123456\x1c\r", 5, nil, ErrFrameTooLarge},
		{"frame over limit without end", "\x0b" + strings.Repeat("x", 10000), 5000, nil, ErrFrameTooLarge},
		{"large frame across buffer", "\x0b" + strings.Repeat("y", 9000) + "\x1c\r", 0, []string{strings.Repeat("y", 9000)}, io.EOF},
		{"junk over limit", strings.Repeat("j", 10000) + "\x0bA\x1c\r", 5000, nil, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A tiny buffer exercises the ErrBufferFull paths.
			frames, err := readAll(bufio.NewReaderSize(strings.NewReader(tt.input), 16), tt.max)
			require.Equal(t, tt.frames, frames)
			if tt.wantErr == io.EOF {
				require.Equal(t, io.EOF, err, "a clean end is exactly io.EOF")
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			if tt.wantErr == ErrIncompleteFrame {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			}
		})
	}
}

func TestReadFrameOneByteReads(t *testing.T) {
	input := readTestdata(t, "mllp_two_messages.bin")
	frames, err := readAll(bufio.NewReader(iotest.OneByteReader(bytes.NewReader(input))), 0)
	require.Equal(t, io.EOF, err)
	require.Len(t, frames, 2)
}

func TestReadFrameDefaultLimit(t *testing.T) {
	big := "\x0b" + strings.Repeat("z", MaxFrameSize+1) + "\x1c\r"
	_, err := ReadFrame(bufio.NewReader(strings.NewReader(big)))
	require.ErrorIs(t, err, ErrFrameTooLarge)
	f, err := ReadFrame(bufio.NewReader(strings.NewReader(big[:MaxFrameSize+1] + "\x1c\r")))
	require.NoError(t, err)
	require.Len(t, f, MaxFrameSize)
}

func TestReadFramePassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadFrame(bufio.NewReader(iotest.ErrReader(boom)))
	require.ErrorIs(t, err, boom)
	_, err = ReadFrame(bufio.NewReader(io.MultiReader(strings.NewReader("\x0bAB"), iotest.ErrReader(boom))))
	require.ErrorIs(t, err, boom)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteFrame(&buf, []byte("MSH|^~\\&\r")))
	require.Equal(t, "\x0bMSH|^~\\&\r\x1c\r", buf.String())

	frame, err := ReadFrame(bufio.NewReader(&buf))
	require.NoError(t, err)
	require.Equal(t, "MSH|^~\\&\r", string(frame))

	require.ErrorContains(t, WriteFrame(io.Discard, []byte("a\x1cb")), "block character 0x1C at offset 1")
	require.ErrorContains(t, WriteFrame(io.Discard, []byte("\x0b")), "block character 0x0B at offset 0")
	require.ErrorContains(t, WriteFrame(failWriter{}, []byte("x")), "disk full")
}

func TestSplitFile(t *testing.T) {
	framed := readTestdata(t, "mllp_two_messages.bin")
	v23 := readTestdata(t, "oru_v23_basic.hl7")
	tests := []struct {
		name     string
		data     []byte
		controls []string
		segments []int
	}{
		{"blank lines, no separator and batch envelope", readTestdata(t, "multi_messages.txt"),
			[]string{"M1", "M2", "M3"}, []int{4, 4, 3}},
		{"MLLP framed", framed, []string{"T1", "T2"}, []int{1, 1}},
		{"single CR message", v23, []string{"MSG00001"}, []int{8}},
		{"CRLF with BOM and leading junk", append([]byte("\uFEFFnotes\r\n"), bytes.ReplaceAll(v23, []byte("\r"), []byte("\r\n"))...),
			[]string{"MSG00001"}, []int{8}},
		{"no MSH", []byte("PID|1\nOBX|1\n"), nil, nil},
		{"empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := SplitFile(tt.data)
			require.Len(t, msgs, len(tt.controls))
			for i, raw := range msgs {
				require.NotContains(t, string(raw), "\n")
				require.True(t, bytes.HasSuffix(raw, []byte("\r")))
				m := mustParse(t, raw)
				require.Equal(t, tt.controls[i], m.Get("MSH", 10))
				require.Len(t, m.Segments, tt.segments[i])
				require.NoError(t, WriteFrame(io.Discard, raw))
			}
		})
	}
	require.Equal(t, v23, SplitFile(v23)[0], "an already clean message is unchanged")
}
