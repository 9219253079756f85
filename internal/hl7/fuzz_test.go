package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

// testdataFiles returns the contents of every file in testdata and
// testdata/corpus.
func testdataFiles(f *testing.F) [][]byte {
	var out [][]byte
	for _, dir := range []string{"testdata", filepath.Join("testdata", "corpus")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, data)
		}
	}
	return out
}

// addTestdataSeeds seeds f with every testdata file.
func addTestdataSeeds(f *testing.F) {
	for _, data := range testdataFiles(f) {
		f.Add(data)
	}
}

// FuzzParse checks that nothing reachable from untrusted input panics, and
// that Encode and Parse are inverse.
func FuzzParse(f *testing.F) {
	addTestdataSeeds(f)
	f.Add([]byte("MSH|^~\\&|A\rOBX|1|ST|X||\\X0D\\\\.br\\\\F\\\\Q\\\\"))
	f.Add([]byte("MSH|^~\\&#|A\rPID|\\P\\#"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5|||||DEU|8859/1\rPID|1||X||M\xfcller\\XE9\\"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5|||||DEU|BIG-5\rPID|1||X||\xa5\\\xaf\xe0"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5|||||JPN|~ISO IR87\rPID|1||X||\x1b$B;3ED\x1b(B"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5|||||X|UNICODE UTF-8\rPID|1||X||\xff\xfe"))
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
		mustBeUTF8(t, m)
		again, err := Parse(m.Encode())
		if err != nil {
			t.Fatalf("re-parsing encoded message: %v\n%q", err, m.Encode())
		}
		// A character set that had to be guessed, or bytes replaced by U+FFFD,
		// cannot come back byte for byte.
		if len(m.Warnings) == 0 && !reflect.DeepEqual(m, again) {
			t.Fatalf("Encode/Parse round trip changed the message:\n%q\n%q", data, m.Encode())
		}
		for _, code := range []string{AckAccept, AckError} {
			ack := NewACK(m, code, "text | ^", "detail", now)
			mustBeValidACK(t, ack)
			if got, want := mustParseFuzz(t, ack).Get("MSA", 2), m.Get("MSH", 10); got != want {
				t.Fatalf("MSA-2 %q, want %q", got, want)
			}
		}
		checkORU(t, m, now)
	})
}

// FuzzORU checks the ORU^R01 view on messages with a valid header, so the
// fuzzer spends its time on the segments after MSH.
func FuzzORU(f *testing.F) {
	for _, data := range testdataFiles(f) {
		if _, body, ok := bytes.Cut(data, []byte("\r")); ok {
			f.Add(body)
		}
	}
	f.Add([]byte("OBR|1|P|F|T\rOBX|1|TX|A||x\rNTE|1||n\rOBX|2|TX|A||y\rSPM|1\rOBX|3|NM|B||<5\rORC|RE\rPID|2\rPV1|1|Q"))
	f.Add([]byte("ORC|RE||F\rOBR|1|||T|||bad\rOBX|1|SN|A||>^1^:^2|||HH~A|||F|||x|||||y\r"))
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		raw := append([]byte("MSH|^~\\&|LAB|FAC|CALLOUT|CLINIC|20240301101500||ORU^R01|C1|P|2.5.1\r"), body...)
		m, err := Parse(raw)
		if err != nil {
			if _, ok := IssueOf(err); !ok {
				t.Fatalf("Parse error without Issue: %v", err)
			}
			return
		}
		checkORU(t, m, now)
	})
}

// checkORU checks what ParseORU promises for m.
func checkORU(t *testing.T, m *Message, now time.Time) {
	o, err := ParseORUIn(m, time.UTC)
	if err != nil {
		if o != nil {
			t.Fatal("ORU returned with error")
		}
		is, ok := IssueOf(err)
		if !ok || is.Severity != SeverityError || is.Code.Text() == "" {
			t.Fatalf("refusal without a proper Issue: %v", err)
		}
		mustBeValidACK(t, Ack{Code: AckReject, Text: err.Error(), Issues: []Issue{is}}.Build(m, now))
		return
	}
	if len(o.Orders) == 0 {
		t.Fatal("ParseORU succeeded without orders")
	}
	if len(o.Warnings) > maxWarnings+len(m.Warnings) {
		t.Fatalf("%d warnings", len(o.Warnings))
	}
	kept := map[int]int{}
	for _, order := range o.Orders {
		if order.TestID == "" || order.PlacerOrderNumber == "" && order.FillerOrderNumber == "" {
			t.Fatalf("order without test or number accepted: %+v", order)
		}
		for _, ob := range order.Observations {
			for _, l := range ob.Segments {
				kept[l.Position]++
			}
			if len(ob.Value) > MaxValueLen {
				t.Fatalf("value of %d bytes accepted", len(ob.Value))
			}
			if ob.Value != "" && ob.Code == "" && ob.Name == "" {
				t.Fatal("a value without OBX-3 accepted")
			}
			judged := !map[string]bool{"D": true, "X": true, "W": true, "N": true}[ob.ResultStatus]
			if ob.ValueType == "NM" && ob.Value != "" && judged && !ValidNumeric(ob.Value) {
				t.Fatalf("NM value %q accepted", ob.Value)
			}
			if ob.NormalLow != nil && ob.NormalHigh != nil && *ob.NormalLow > *ob.NormalHigh {
				t.Fatalf("range %q read as %v-%v", ob.ReferenceRange, *ob.NormalLow, *ob.NormalHigh)
			}
		}
	}
	for i := range m.Segments {
		if s := &m.Segments[i]; s.Name == "OBX" && s.Repetitions(5) > 0 && kept[i+1] != 1 {
			t.Fatalf("the value of the OBX in segment %d is in %d results", i+1, kept[i+1])
		}
	}
	ack := Ack{Code: AckAccept, Text: "stored", Issues: o.Warnings}.Build(m, now)
	mustBeValidACK(t, ack)
	if got := len(mustParseFuzz(t, ack).All("ERR")); got != min(len(o.Warnings), maxErrSegments) {
		t.Fatalf("%d ERR for %d warnings", got, len(o.Warnings))
	}
}

// mustBeUTF8 checks that every value of m is valid UTF-8.
func mustBeUTF8(t *testing.T, m *Message) {
	for _, s := range m.Segments {
		for _, f := range s.Fields {
			for _, r := range f {
				for _, c := range r {
					for _, sub := range c {
						if !utf8.ValidString(sub) {
							t.Fatalf("%s holds invalid UTF-8 %q", s.Name, sub)
						}
					}
				}
			}
		}
	}
}

// FuzzRange checks that ParseRange never panics and never returns a range
// upside down or a bound that is not a finite number.
func FuzzRange(f *testing.F) {
	for _, s := range []string{"3.5-5.1", "-3-3", ".4-1.5", "4.3 to 6.2", "70_105", "(<1.0)", "< 9 mcg/dL", ">60", "1e3-2e3", "3.5–5.1 mmol/L"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		low, high := ParseRange(s)
		for _, v := range []*float64{low, high} {
			if v != nil && (math.IsInf(*v, 0) || math.IsNaN(*v)) {
				t.Fatalf("%q gives %v", s, *v)
			}
		}
		if low != nil && high != nil && *low > *high {
			t.Fatalf("%q gives %v-%v", s, *low, *high)
		}
		_ = ValidNumeric(s)
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
