package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/storetest"
)

// bigORU builds an ORU^R01 from ACME LAB for order placer with reports
// OBRs named from first on, each with results OBX whose value is value.
func bigORU(control, placer string, first, reports, results int, valueType, value string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "MSH|^~\\&|LABSYS|ACME LAB|CALLOUT|CLINIC|20261127083000||ORU^R01^ORU_R01|%s|P|2.5.1\r", control)
	b.WriteString("PID|1||MRN1^^^ACME^MR||MÜLLER^MARIA\r")
	fmt.Fprintf(&b, "ORC|RE|%s\r", placer)
	for r := range reports {
		fmt.Fprintf(&b, "OBR|%d|%s||T%d^Panel %d|||20261127080000|||||||||||||||||CH|F\r", r+1, placer, first+r, first+r)
		for i := range results {
			flag := ""
			if i == 0 {
				flag = "HH"
			}
			fmt.Fprintf(&b, "OBX|%d|%s|A%d^A%d||%s|mg/dL||%s|||F\r", i+1, valueType, i, i, value, flag)
		}
	}
	return []byte(b.String())
}

// TestBigMessages is issue 8 §3 over HL7: a message with an order of the
// largest size allowed is stored (AA) in as many statements as one with a
// single result; one over a limit of one order — reports, results, bytes of
// text, also reached by adding reports to an order message by message — is
// refused AR (it would be refused every time) and changes nothing.
func TestBigMessages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		t.Run("AtTheLimitsInTheStatementsOfASmallOne", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			// The facility stays cached through the test, however long a
			// loaded machine takes to build the big message: its lookup
			// is not the store's statements.
			b.in.CacheTTL = time.Hour
			per := callout.MaxParametersPerOrder / callout.MaxReportsPerOrder
			count := func(raw []byte) int64 {
				before := b.fx.Store.Queries.Load()
				code, out := b.send(t, raw)
				require.Equal(t, "AA", code, out.Reason)
				return b.fx.Store.Queries.Load() - before
			}
			count(bigORU("W1", "WARM", 1, 1, 1, "NM", "7")) // the first message also looks up the facility
			small := count(bigORU("S1", "SMALL", 1, 1, 1, "NM", "7"))
			big := count(bigORU("B1", "BIG", 1, callout.MaxReportsPerOrder, per, "NM", "7"))
			require.Equal(t, small, big, "statements to store an order of the largest size")
			bill := b.bill(t, "BIG")
			require.Len(t, bill.Reports, callout.MaxReportsPerOrder)
			require.Len(t, bill.Reports[callout.MaxReportsPerOrder-1].Parameters, per)
			// The same order again replaces every report's results, in a
			// bounded number of statements too (one UPDATE per report).
			code, out := b.send(t, bigORU("B2", "BIG", 1, callout.MaxReportsPerOrder, per, "NM", "8"))
			require.Equal(t, "AA", code, out.Reason)
			bill = b.bill(t, "BIG")
			require.Len(t, bill.Reports, callout.MaxReportsPerOrder)
			require.Equal(t, "8", bill.Reports[0].Parameters[0].Value)
		})

		t.Run("OverALimitIsARAndChangesNothing", func(t *testing.T) {
			t.Parallel()
			b := setup(t, e)
			srv := listen(t, b.in.Handle)
			code, text := srv.send(t, bigORU("G1", "GROW", 1, 300, 2, "NM", "7"))
			require.Equal(t, "AA", code, text)
			// \.sk 20\ renders 20 spaces from 8 bytes: a message under 1 MiB
			// can carry more than 1 MiB of text.
			spaced := "x" + strings.Repeat(`\.sk 20\`, 24) + "x"
			cases := []struct{ name, raw, why string }{
				{"501 reports", string(bigORU("R1", "R", 1, callout.MaxReportsPerOrder+1, 1, "NM", "7")),
					"the message has 501 reports; an order may hold at most 500"},
				{"22,501 results", string(bigORU("P1", "P", 1, 150, 151, "NM", "7")),
					"the message has 22650 results (parameters); an order may hold at most 22500"},
				{"201 results in one report", string(bigORU("P2", "P", 1, 1, 201, "NM", "7")),
					"test T1 has 201 results; a report may hold at most 200"},
				{"over 1 MiB of text", string(bigORU("X1", "X", 1, 12, 190, "TX", spaced)),
					"bytes of text; an order may hold at most 1048576"},
				{"an order grown past 500 reports by a second message", string(bigORU("G2", "GROW", 301, 201, 2, "NM", "7")),
					"order GROW with this message's results has 501 reports; an order may hold at most 500"},
			}
			before := storetest.Dump(t, b.fx.Store.DB)
			for _, tc := range cases {
				require.Less(t, len(tc.raw), 1<<20, tc.name)
				code, text := srv.send(t, []byte(tc.raw))
				require.Equal(t, "AR", code, "%s: %s", tc.name, text)
				require.Contains(t, text, tc.why, tc.name)
				require.Equal(t, before, storetest.Dump(t, b.fx.Store.DB), "%s changed rows", tc.name)
			}
			// Replacing the results of reports the order has is no growth.
			code, text = srv.send(t, bigORU("G3", "GROW", 101, 200, 2, "NM", "8"))
			require.Equal(t, "AA", code, text)
			require.Len(t, b.bill(t, "GROW").Reports, 300)
		})
	})
}
