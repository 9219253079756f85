package storetest

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/sqlstore"
)

// RunScale checks, on a database with history, that listings read what
// their page shows and per-order reads use the order's own index, and that
// every foreign key has an index (issue 14).
func RunScale(t *testing.T, e Engine) {
	ctx := context.Background()

	t.Run("WorklistReadsOnePageFromTheIndexInOrder", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		AddHistory(t, f, 3000, time.Now().UTC().Add(-400*24*time.Hour))
		for i := range 3 {
			f.Create(t, Order("OPEN-"+strconv.Itoa(i), 2))
		}
		Analyze(t, f.Store)
		const limit = 50
		check := func(t *testing.T, filter callout.WorklistFilter) []callout.WorklistItem {
			var items []callout.WorklistItem
			plans, err := f.Store.Plans(ctx, func(ctx context.Context) error {
				var err error
				items, err = f.Store.Worklist(ctx, f.Lab, filter)
				return err
			})
			require.NoError(t, err)
			require.Len(t, plans, 1)
			plan := plans[0].Plan
			if f.Store.Engine == sqlstore.Postgres {
				// The rows the scans of lab_reports really read: at most
				// one page per state, not the lab's history.
				read := RowsRead(plan, "lab_reports")
				require.LessOrEqual(t, read, len(filter.States)*limit, "rows read from lab_reports:\n%s", plan)
			} else {
				// One ordered range of the worklist index per state, the
				// cursor inside the index condition.
				searches := regexp.MustCompile(`SEARCH r USING INDEX lab_reports_worklist \(lab_id=\? AND critical_values=\?[^)]*\)`).FindAllString(plan, -1)
				require.Len(t, searches, len(filter.States), plan)
				if filter.After != nil {
					// SQLite starts the range at the cursor's resulted_at
					// and checks the id of the ties.
					for _, s := range searches {
						require.Regexp(t, `resulted_at>\?|\(resulted_at,id\)>\(\?,\?\)`, s, plan)
					}
				}
				require.NotContains(t, plan, "SCAN r", plan)
			}
			return items
		}
		states := callout.WorklistStates
		first := check(t, callout.WorklistFilter{States: states, Limit: limit})
		require.Len(t, first, limit)
		last := first[len(first)-1]
		next := check(t, callout.WorklistFilter{States: states, Limit: limit,
			After: &callout.WorklistCursor{ResultedAt: last.ResultedAt, ID: last.ID}})
		require.Len(t, next, limit)
		require.True(t, next[0].ResultedAt.After(last.ResultedAt) ||
			(next[0].ResultedAt.Equal(last.ResultedAt) && next[0].ID > last.ID), "the next page starts after the cursor")
	})

	t.Run("WebTabsReadTheirPageNotTheHistory", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		AddHistory(t, f, 3000, time.Now().UTC().Add(-400*24*time.Hour))
		for i := range 3 {
			f.Create(t, Order("OPEN-"+strconv.Itoa(i), 2))
		}
		Analyze(t, f.Store)
		for _, tab := range []struct {
			states []callout.State
			newest bool
			want   int
		}{{[]callout.State{callout.StatePending, callout.StateAttempted}, false, 3}, {[]callout.State{callout.StateDone}, true, 3000}} {
			var items []callout.WorklistItem
			var total int
			plans, err := f.Store.Plans(ctx, func(ctx context.Context) error {
				var err error
				items, total, err = f.Store.WorklistOrders(ctx, f.Lab, callout.WorklistFilter{States: tab.states, Limit: 25}, nil, 25, tab.newest)
				return err
			})
			require.NoError(t, err)
			require.Equal(t, tab.want, total)
			if tab.want > 25 {
				require.NotEmpty(t, items, "the second page")
			}
			for _, p := range plans {
				if strings.Contains(p.Query, "COUNT(") {
					// The count stops at the cap, whatever the history.
					require.Contains(t, p.Query, "LIMIT "+strconv.Itoa(callout.WorklistCountCap+1))
					// And it reads the visible reports' own index, which
					// holds every column it needs: index-only on SQLite,
					// on PostgreSQL as far as the visibility map allows
					// (there only for the pending tab: a third of this
					// small table is done, which PostgreSQL rightly scans).
					if f.Store.Engine == sqlstore.Postgres {
						if tab.newest {
							continue
						}
						require.Regexp(t, `Index (Only )?Scan (using )?lab_reports_visible|Bitmap Index Scan on lab_reports_visible`, p.Plan, p.Query)
					} else {
						require.Contains(t, p.Plan, "USING COVERING INDEX lab_reports_visible", p.Query)
					}
					continue
				}
				if f.Store.Engine == sqlstore.Postgres {
					require.LessOrEqual(t, RowsRead(p.Plan, "lab_reports"), 2*200, "%s\n%s", p.Query, p.Plan)
				} else {
					require.NotContains(t, p.Plan, "GROUP BY", p.Query)
					require.NotContains(t, p.Plan, "SCAN r", p.Query)
				}
			}
		}
	})

	t.Run("PerOrderReadsUseTheOrdersIndex", func(t *testing.T) {
		t.Parallel()
		f := NewFixture(t, e, callout.Settings{})
		AddHistory(t, f, 3000, time.Now().UTC().Add(-400*24*time.Hour))
		c := f.Create(t, Order("ONE", 2))
		_, err := f.Svc.Callout(ctx, f.Staff, c.ID, Done(ReportIDs(c)...), nil)
		require.NoError(t, err)
		// Before statistics exist and after: the plan must not flip.
		for _, stats := range []bool{false, true} {
			if stats {
				Analyze(t, f.Store)
			}
			plans, err := f.Store.Plans(ctx, func(ctx context.Context) error {
				if _, err := f.Store.Bill(ctx, f.Lab, c.ID); err != nil {
					return err
				}
				if _, err := f.Store.Draft(ctx, f.Lab, c.ID); err != nil {
					return err
				}
				recs, err := f.Store.Records(ctx, f.Lab, c.ID)
				if len(recs) != 2 {
					t.Errorf("records of the order: %d, want 2", len(recs))
				}
				return err
			})
			require.NoError(t, err)
			require.NotEmpty(t, plans)
			for _, p := range plans {
				if f.Store.Engine == sqlstore.Postgres {
					for _, table := range []string{"lab_reports", "report_parameters", "critical_callouts", "bills"} {
						require.LessOrEqual(t, RowsRead(p.Plan, table), 10, "statistics %v: %s\n%s", stats, p.Query, p.Plan)
					}
					continue
				}
				require.NotContains(t, p.Plan, "critical_callouts_lab", "statistics %v: %s\n%s", stats, p.Query, p.Plan)
				require.NotRegexp(t, `SCAN (lab_reports|report_parameters|critical_callouts)\b`, p.Plan, "statistics %v: %s", stats, p.Query)
			}
		}
	})

	t.Run("EveryForeignKeyHasAnIndex", func(t *testing.T) {
		t.Parallel()
		st := e.Open(t)
		missing := unindexedForeignKeys(t, st)
		require.Empty(t, missing, "foreign keys without an index whose first columns are the key")
	})
}

// AddHistory writes n old orders straight into the fixture's lab, each
// with a done critical report (with its record) and two normal ones, all
// resulted at at: history the worklist's first page must not read.
func AddHistory(t testing.TB, f *Fixture, n int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	db := f.Store.DB
	_, err := db.ExecContext(ctx, `
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
		INSERT INTO bills (lab_id, lab_bill_id, patient_name, created_at)
		SELECT $1, 'H' || i, 'History ' || i, $3 FROM n`, f.Lab, n, at)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `
		INSERT INTO lab_reports (lab_id, bill_id, test_id, test_name, critical_values, resulted_at, last_updated)
		SELECT b.lab_id, b.id, t.test_id, 'Test', t.state, $2, $2
		FROM bills b CROSS JOIN (SELECT 'K' AS test_id, 2 AS state UNION ALL SELECT 'N', 0 UNION ALL SELECT 'S', 3) t
		WHERE b.lab_id = $1 AND b.lab_bill_id LIKE 'H%'`, f.Lab, at)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `
		INSERT INTO report_parameters (lab_report_id, bill_id, position, name, value)
		SELECT r.id, r.bill_id, 0, 'Potassium', '7.1' FROM lab_reports r WHERE r.lab_id = $1`, f.Lab)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `
		INSERT INTO critical_callouts (lab_id, bill_id, lab_report_id, status, methods, recipients, created_by, created_at, snapshot)
		SELECT r.lab_id, r.bill_id, r.id, 'done', $2, $3, 'history', $4, $5
		FROM lab_reports r WHERE r.lab_id = $1 AND r.critical_values = 2`, f.Lab, `["Phone"]`, `["Referral"]`, at, `[]`)
	require.NoError(t, err)
}

// Analyze gives the planner statistics, as autovacuum (PostgreSQL) or
// ANALYZE (SQLite) would.
func Analyze(t testing.TB, st *sqlstore.Store) {
	t.Helper()
	_, err := st.DB.ExecContext(context.Background(), "ANALYZE")
	require.NoError(t, err)
}

var actualRows = regexp.MustCompile(`on (\w+)(?: \w+)?\s.*actual rows=(\d+) loops=(\d+)`)

// RowsRead sums the rows EXPLAIN ANALYZE says the scans of table returned.
func RowsRead(plan, table string) int {
	n := 0
	for _, line := range strings.Split(plan, "\n") {
		m := actualRows.FindStringSubmatch(line)
		if m == nil || m[1] != table {
			continue
		}
		rows, _ := strconv.Atoi(m[2])
		loops, _ := strconv.Atoi(m[3])
		n += rows * loops
	}
	return n
}

// unindexedForeignKeys lists "table(columns)" for each foreign key of the
// store's own tables that no index begins with.
func unindexedForeignKeys(t testing.TB, st *sqlstore.Store) []string {
	t.Helper()
	ctx := context.Background()
	var missing []string
	if st.Engine == sqlstore.Postgres {
		rows, err := st.DB.QueryContext(ctx, `
			SELECT c.conrelid::regclass::text, array_to_string(ARRAY(
			           SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
			           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), ',')
			FROM pg_constraint c
			WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
			  AND NOT EXISTS (
			      SELECT 1 FROM pg_index i
			      WHERE i.indrelid = c.conrelid
			        AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] @> c.conkey
			        AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] <@ c.conkey)
			ORDER BY 1, 2`)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var table, cols string
			require.NoError(t, rows.Scan(&table, &cols))
			missing = append(missing, table+"("+cols+")")
		}
		require.NoError(t, rows.Err())
		return missing
	}
	rows, err := st.DB.QueryContext(ctx, `
		SELECT m.name, f.id, f."from" FROM sqlite_schema m, pragma_foreign_key_list(m.name) f
		WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq`)
	require.NoError(t, err)
	type fk struct{ table, cols string }
	var fks []fk
	for rows.Next() {
		var table, col string
		var id int
		require.NoError(t, rows.Scan(&table, &id, &col))
		if n := len(fks); n > 0 && fks[n-1].table == table && strings.HasPrefix(fks[n-1].cols, strconv.Itoa(id)+":") {
			fks[n-1].cols += "," + col
			continue
		}
		fks = append(fks, fk{table, strconv.Itoa(id) + ":" + col})
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for _, k := range fks {
		cols := k.cols[strings.IndexByte(k.cols, ':')+1:]
		want := strings.Split(cols, ",")
		found := false
		irows, err := st.DB.QueryContext(ctx, `
			SELECT il.name, ii.seqno, ii.name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii
			ORDER BY il.name, ii.seqno`, k.table)
		require.NoError(t, err)
		lead := map[string][]string{}
		for irows.Next() {
			var idx, col string
			var seq int
			require.NoError(t, irows.Scan(&idx, &seq, &col))
			lead[idx] = append(lead[idx], col)
		}
		require.NoError(t, irows.Err())
		irows.Close()
		for _, cs := range lead {
			if len(cs) >= len(want) && sameSet(cs[:len(want)], want) {
				found = true
			}
		}
		// An INTEGER PRIMARY KEY is the table's own key (rowid), an index.
		if !found {
			missing = append(missing, k.table+"("+cols+")")
		}
	}
	return missing
}

func sameSet(a, b []string) bool {
	for _, x := range a {
		ok := false
		for _, y := range b {
			ok = ok || x == y
		}
		if !ok {
			return false
		}
	}
	return true
}
