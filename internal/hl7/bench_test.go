package hl7

import (
	"testing"
	"time"
)

// BenchmarkParseORU measures Parse and ParseORU of a two-order v2.5.1
// message, the per-message parsing cost of ingest.
func BenchmarkParseORU(b *testing.B) {
	raw := readTestdata(b, "oru_v251_multi.hl7")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseORUIn(m, time.UTC); err != nil {
			b.Fatal(err)
		}
	}
}
