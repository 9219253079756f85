package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteTables prints the report's tables in Markdown, each under a heading
// that says what was measured: core (API vs floor), email, hl7. A set that
// was not run is left out.
func WriteTables(w io.Writer, rep Report) {
	var b strings.Builder
	if len(rep.Core) > 0 {
		b.WriteString("### Core: done callouts through the HTTP API (no job queue) vs the raw-SQL floor\n\n")
		writeCore(&b, rep.Core)
		b.WriteString("\n")
	}
	if len(rep.Email) > 0 {
		b.WriteString("### Email: the API with River queue + workers in-process, Bleve index, SMTP sink on 127.0.0.1\n\n" +
			"Three runs per row, each on a fresh database, one after the other: no queue = the bare API as in the core table, " +
			"measured again here so all three see the same machine load; queue, no email = queue wired, each callout enqueues " +
			"its index-sync job in its transaction, as in production; queue + email = the same plus 2 emails per callout " +
			"(patient, referral). delivery/s = emails the sink accepted ÷ time from the first callout to the last email.\n\n")
		writeEmail(&b, rep.Email)
		b.WriteString("\n")
	}
	if len(rep.HL7) > 0 {
		b.WriteString("### HL7 ingest: ORU^R01 (1 OBR, 5 OBX, new order each) over MLLP, ACK awaited per message, vs the raw-SQL floor\n\n" +
			"ingest = real MLLP listener + ingest.Ingester, queue + workers wired as in serve (index job per message); " +
			"floor = per message one transaction: hl7_messages check, INSERT bills, lab_reports, report_parameters (1 multi-row), hl7_messages.\n\n")
		writeHL7(&b, rep.HL7)
		b.WriteString("\n")
	}
	if len(rep.SignIn) > 0 {
		b.WriteString("### Sign-in storm: GET /api/v1/worklist (1 client) alone, then while clients sign in to the web pages in parallel\n\n" +
			"Each sign-in is GET /signin and POST /signin with the right password (a full bcrypt check at the real cost).\n\n")
		writeSignIn(&b, rep.SignIn)
		b.WriteString("\n")
	}
	if len(rep.BigOrder) > 0 {
		b.WriteString("### Big orders: one lab's done callouts through the API alone, then while another lab posts orders of the largest size allowed\n\n" +
			"Callouts: lab B, 1 critical report per order, as in the core set. Big orders: lab A's POST /api/v1/orders, back to back, " +
			"each a new order of the maximum size (reports × parameters, JSON bytes). during/alone = callout p99 during ÷ alone.\n\n")
		writeBigOrder(&b, rep.BigOrder)
		b.WriteString("\n")
	}
	if len(rep.Scale) > 0 {
		b.WriteString("### Scale: listings over years of history, one request at a time, vs the minimal indexed query in the same run\n\n")
		writeScale(&b, rep.Scale)
	}
	io.WriteString(w, b.String())
}

// WriteTable prints the core results as a Markdown table, one row per engine
// and order size with the API and floor measurements side by side.
func WriteTable(w io.Writer, rs []Result) {
	var b strings.Builder
	writeCore(&b, rs)
	io.WriteString(w, b.String())
}

// pair is one row: a measurement and the one it is compared with.
type pair struct{ a, b *Result }

type rowKey struct {
	engine string
	n      int // reports per order, or connections
}

// pairs groups rs into rows by engine and n, keeping first-seen order.
func pairs(rs []Result, n func(*Result) int, modeA, modeB string) ([]rowKey, map[rowKey]*pair) {
	var keys []rowKey
	rows := map[rowKey]*pair{}
	for i := range rs {
		r := &rs[i]
		k := rowKey{r.Engine, n(r)}
		if rows[k] == nil {
			rows[k] = &pair{}
			keys = append(keys, k)
		}
		switch r.Mode {
		case modeA:
			rows[k].a = r
		case modeB:
			rows[k].b = r
		}
	}
	return keys, rows
}

// cells renders rate, p50 and p99 of r.
func cells(r *Result) string {
	if r == nil {
		return " – | – | – |"
	}
	return fmt.Sprintf(" %.0f | %.2f ms | %.2f ms |", r.PerSecond, r.P50ms, r.P99ms)
}

func percent(a, b *Result) string {
	if a == nil || b == nil || b.PerSecond <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*a.PerSecond/b.PerSecond)
}

func errorCount(rs ...*Result) int {
	n := 0
	for _, r := range rs {
		if r != nil {
			n += r.Errors
		}
	}
	return n
}

func writeCore(b *strings.Builder, rs []Result) {
	keys, rows := pairs(rs, func(r *Result) int { return r.Reports }, ModeAPI, ModeFloor)
	b.WriteString("| engine | reports per order | API callouts/s | API p50 | API p99 | floor callouts/s | floor p50 | floor p99 | API/floor % | errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range keys {
		r := rows[k]
		fmt.Fprintf(b, "| %s | %d |%s%s %s | %d |\n", k.engine, k.n, cells(r.a), cells(r.b), percent(r.a, r.b), errorCount(r.a, r.b))
	}
}

func writeEmail(b *strings.Builder, es []EmailResult) {
	b.WriteString("| engine | reports per order | no queue callouts/s | no queue p50 | no queue p99 | queue, no email callouts/s | no email p50 | no email p99 |" +
		" queue + email callouts/s | email p50 | email p99 | email/no queue % | email/no email % | emails arrived | delivery/s | errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, e := range es {
		fmt.Fprintf(b, "| %s | %d |%s%s%s %s | %s | %d/%d | %.0f | %d |\n", e.Engine, e.Reports,
			cells(&e.Core), cells(&e.Queue), cells(&e.Email), percent(&e.Email, &e.Core), percent(&e.Email, &e.Queue),
			e.Arrived, e.Expected, e.DeliveryPerSecond, errorCount(&e.Core, &e.Queue, &e.Email))
	}
}

func writeHL7(b *strings.Builder, rs []Result) {
	keys, rows := pairs(rs, func(r *Result) int { return r.Clients }, ModeHL7, ModeHL7Floor)
	b.WriteString("| engine | connections | ingest msg/s | ACK p50 | ACK p99 | floor msg/s | floor p50 | floor p99 | ingest/floor % | errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range keys {
		r := rows[k]
		fmt.Fprintf(b, "| %s | %d |%s%s %s | %d |\n", k.engine, k.n, cells(r.a), cells(r.b), percent(r.a, r.b), errorCount(r.a, r.b))
	}
}

func writeSignIn(b *strings.Builder, rs []SignInResult) {
	b.WriteString("| engine | sign-in clients | worklist alone p50 | p99 | worklist during sign-ins p50 | p99 | sign-ins/s | sign-in p50 | sign-in p99 | errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(b, "| %s | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.1f | %.0f ms | %.0f ms | %d |\n", r.Engine, r.SignIn.Clients,
			r.Idle.P50ms, r.Idle.P99ms, r.Storm.P50ms, r.Storm.P99ms, r.SignIn.PerSecond, r.SignIn.P50ms, r.SignIn.P99ms,
			errorCount(&r.Idle, &r.Storm, &r.SignIn))
	}
}

func writeBigOrder(b *strings.Builder, rs []BigOrderResult) {
	b.WriteString("| engine | big order | big-order clients | big orders/s | big order p50 | big order p99 | callout clients | callouts alone p50 | p99 | callouts during big orders p50 | p99 | p99 during/alone | errors |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		ratio := "–"
		if r.Idle.P99ms > 0 {
			ratio = fmt.Sprintf("%.1f×", r.Loaded.P99ms/r.Idle.P99ms)
		}
		fmt.Fprintf(b, "| %s | %d × %d, %d KB | %d | %.2f | %.0f ms | %.0f ms | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %s | %d |\n",
			r.Engine, r.Reports, r.Parameters/max(r.Reports, 1), r.Bytes/1000, r.BigOrders.Clients, r.BigOrders.PerSecond,
			r.BigOrders.P50ms, r.BigOrders.P99ms, r.Idle.Clients, r.Idle.P50ms, r.Idle.P99ms, r.Loaded.P50ms, r.Loaded.P99ms,
			ratio, errorCount(&r.Idle, &r.Loaded, &r.BigOrders))
	}
}
