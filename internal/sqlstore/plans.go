package sqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
)

// Query plans, so that a test can check on a database with history that the
// reads a page or an order makes walk an index in order rather than the
// lab's whole history, whatever the statistics say.

type traceKey struct{}

type tracedQuery struct {
	query string
	args  []any
}

type queryTrace struct {
	mu sync.Mutex
	qs []tracedQuery
}

// traceQuery records a read sent under a context from Plans.
func traceQuery(ctx context.Context, query string, args []driver.NamedValue) {
	tr, ok := ctx.Value(traceKey{}).(*queryTrace)
	if !ok {
		return
	}
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.Value
	}
	tr.mu.Lock()
	tr.qs = append(tr.qs, tracedQuery{query, vals})
	tr.mu.Unlock()
}

// Plan is one read and how the database runs it: on SQLite the lines of
// EXPLAIN QUERY PLAN, on PostgreSQL EXPLAIN ANALYZE's text (with the rows
// each node really read).
type Plan struct {
	Query string
	Plan  string
}

// Plans runs fn, then explains every read (SELECT) that fn sent through
// the store, in order.
func (s *Store) Plans(ctx context.Context, fn func(ctx context.Context) error) ([]Plan, error) {
	tr := &queryTrace{}
	if err := fn(context.WithValue(ctx, traceKey{}, tr)); err != nil {
		return nil, err
	}
	var out []Plan
	for _, q := range tr.qs {
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q.query)), "SELECT") {
			continue
		}
		explain := "EXPLAIN QUERY PLAN "
		if s.Engine == Postgres {
			explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
		}
		rows, err := s.DB.QueryContext(ctx, explain+q.query, q.args...)
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", q.query, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			dest := make([]any, len(cols))
			vals := make([]any, len(cols))
			for i := range dest {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, err
			}
			lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out = append(out, Plan{Query: q.query, Plan: strings.Join(lines, "\n")})
	}
	return out, nil
}
