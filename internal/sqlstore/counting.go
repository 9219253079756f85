package sqlstore

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
)

// Counter counts the statements sent to the database, BEGIN and COMMIT
// included, so that "reads in a constant number of queries" can be measured
// rather than believed, and exported as callout_db_queries_total.
type Counter struct{ n atomic.Int64 }

// Load returns the number of statements counted so far.
func (c *Counter) Load() int64 { return c.n.Load() }

func (c *Counter) inc() { c.n.Add(1) }

// countingConnector wraps a driver's connector; every connection it makes
// counts its statements. It forwards the optional interfaces the drivers
// rely on (pgx's CheckNamedValue above all: without it database/sql would
// refuse arrays).
type countingConnector struct {
	driver.Connector
	c *Counter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: cc.c}, nil
}

type countingConn struct {
	driver.Conn
	c *Counter
}

func (cn *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	cn.c.inc()
	var tx driver.Tx
	var err error
	if b, ok := cn.Conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 fallback for drivers without BeginTx
		tx, err = cn.Conn.Begin()
	}
	if err != nil {
		return nil, err
	}
	return countingTx{Tx: tx, c: cn.c}, nil
}

func (cn *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if p, ok := cn.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = cn.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, c: cn.c}, nil
}

func (cn *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cn.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := e.ExecContext(ctx, query, args)
	if err != driver.ErrSkip {
		cn.c.inc()
	}
	return r, err
}

func (cn *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := cn.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := q.QueryContext(ctx, query, args)
	if err != driver.ErrSkip {
		cn.c.inc()
		traceQuery(ctx, query, args)
	}
	return r, err
}

func (cn *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := cn.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (cn *countingConn) Ping(ctx context.Context) error {
	if p, ok := cn.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (cn *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := cn.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cn *countingConn) IsValid() bool {
	if v, ok := cn.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

type countingTx struct {
	driver.Tx
	c *Counter
}

func (t countingTx) Commit() error   { t.c.inc(); return t.Tx.Commit() }
func (t countingTx) Rollback() error { t.c.inc(); return t.Tx.Rollback() }

type countingStmt struct {
	driver.Stmt
	c *Counter
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.inc()
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	//lint:ignore SA1019 drivers without StmtExecContext
	return s.Stmt.Exec(values(args))
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.inc()
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	//lint:ignore SA1019 drivers without StmtQueryContext
	return s.Stmt.Query(values(args))
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
