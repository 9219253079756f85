package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteTable prints rs as a Markdown table, one row per engine and order
// size with the API and floor measurements side by side.
func WriteTable(w io.Writer, rs []Result) {
	type key struct {
		engine  string
		reports int
	}
	type row struct{ api, floor *Result }
	var keys []key
	rows := map[key]*row{}
	for i := range rs {
		r := &rs[i]
		k := key{r.Engine, r.Reports}
		if rows[k] == nil {
			rows[k] = &row{}
			keys = append(keys, k)
		}
		switch r.Mode {
		case ModeAPI:
			rows[k].api = r
		case ModeFloor:
			rows[k].floor = r
		}
	}
	var b strings.Builder
	b.WriteString("| engine | reports per order | API callouts/s | API p50 | API p99 | floor callouts/s | floor p50 | floor p99 | API/floor % |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cells := func(r *Result) string {
		if r == nil {
			return " – | – | – |"
		}
		return fmt.Sprintf(" %.0f | %.2f ms | %.2f ms |", r.PerSecond, r.P50ms, r.P99ms)
	}
	for _, k := range keys {
		r := rows[k]
		ratio := "–"
		if r.api != nil && r.floor != nil && r.floor.PerSecond > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*r.api.PerSecond/r.floor.PerSecond)
		}
		fmt.Fprintf(&b, "| %s | %d |%s%s %s |\n", k.engine, k.reports, cells(r.api), cells(r.floor), ratio)
	}
	io.WriteString(w, b.String())
}
