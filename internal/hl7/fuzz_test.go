package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// addTestdataSeeds seeds f with every testdata file.
func addTestdataSeeds(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParse checks that nothing reachable from untrusted input panics, and
// that Encode and Parse are inverse.
func FuzzParse(f *testing.F) {
	addTestdataSeeds(f)
	f.Add([]byte("MSH|^~\\&|A\rOBX|1|ST|X||\\X0D\\\\.br\\\\F\\\\Q\\\\"))
	f.Add([]byte("MSH|^~\\&#|A\rPID|\\P\\#"))
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, raw := range SplitFile(data) {
			if bytes.ContainsAny(raw, "\n") {
				t.Fatalf("SplitFile left a newline in %q", raw)
			}
		}
		reject := NewRejectACK(data, "rejected", now)
		mustBeValidACK(t, reject)

		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with error")
			}
			return
		}
		exerciseAccessors(m)
		again, err := Parse(m.Encode())
		if err != nil {
			t.Fatalf("re-parsing encoded message: %v\n%q", err, m.Encode())
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("Encode/Parse round trip changed the message:\n%q\n%q", data, m.Encode())
		}
		for _, code := range []string{AckAccept, AckError} {
			ack := NewACK(m, code, "text | ^", "detail", now)
			mustBeValidACK(t, ack)
			if got, want := mustParseFuzz(t, ack).Get("MSA", 2), m.Get("MSH", 10); got != want {
				t.Fatalf("MSA-2 %q, want %q", got, want)
			}
		}
		if o, err := ParseORUIn(m, time.UTC); err == nil {
			if o == nil || len(o.Orders) == 0 {
				t.Fatal("ParseORU succeeded without orders")
			}
		} else if o != nil {
			t.Fatal("ORU returned with error")
		}
	})
}

func mustParseFuzz(t *testing.T, data []byte) *Message {
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("parsing our own ACK: %v\n%q", err, data)
	}
	return m
}

// mustBeValidACK checks that an ACK parses and can be framed.
func mustBeValidACK(t *testing.T, ack []byte) {
	m := mustParseFuzz(t, ack)
	if m.First("MSA") == nil {
		t.Fatalf("ACK without MSA: %q", ack)
	}
	if err := WriteFrame(io.Discard, ack); err != nil {
		t.Fatalf("ACK cannot be framed: %v", err)
	}
}

// exerciseAccessors calls every accessor in and just out of range.
func exerciseAccessors(m *Message) {
	for i := range m.Segments {
		s := &m.Segments[i]
		for n := -1; n <= s.FieldCount()+1; n++ {
			_ = s.Field(n)
			_ = s.Values(n)
			reps := s.Repetitions(n)
			for r := 0; r <= reps+1; r++ {
				_ = s.Text(n, r)
				for c := 0; c <= 3; c++ {
					_ = s.ComponentAt(n, r, c)
					_ = s.SubAt(n, r, c, 1)
					_ = s.SubAt(n, r, c, 2)
				}
			}
			_ = s.Component(n, 2)
			_ = s.Sub(n, 1, 2)
		}
	}
	_ = m.Get("MSH", 10)
	_ = m.All("OBX")
}

// FuzzReadFrame checks that framing never panics, never returns more than
// the limit, and that frames written by WriteFrame are read back intact.
func FuzzReadFrame(f *testing.F) {
	addTestdataSeeds(f)
	f.Add([]byte("\x0b\x1c\r"))
	f.Add([]byte("junk\x0bA\x1cB\x0bC\x1c\r\x1c"))
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		for {
			frame, err := ReadFrameMax(r, limit)
			if err != nil {
				if frame != nil {
					t.Fatal("frame returned with error")
				}
				if err != io.EOF && !errors.Is(err, ErrIncompleteFrame) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error type: %v", err)
				}
				break
			}
			if len(frame) > limit || bytes.ContainsAny(frame, "\x0b\x1c") {
				t.Fatalf("bad frame %q", frame)
			}
		}

		var buf bytes.Buffer
		if err := WriteFrame(&buf, data); err != nil {
			if !bytes.ContainsAny(data, "\x0b\x1c") {
				t.Fatalf("WriteFrame refused clean data: %v", err)
			}
			return
		}
		got, err := ReadFrameMax(bufio.NewReader(&buf), len(data)+1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v, got %q want %q", err, got, data)
		}
	})
}
