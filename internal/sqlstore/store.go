// Package sqlstore keeps Callout's data in SQLite (the embedded default) or
// PostgreSQL. Both engines run the same SQL through database/sql; the few
// places where they truly differ (row locks, types, constraint errors) are
// the dialect seam below. One behavioural suite (internal/storetest) runs
// against both.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"callout/internal/callout"
)

//go:embed migrations
var migrations embed.FS

// Engine names a SQL engine.
type Engine string

// The engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Store is the callout.Store on one SQL database.
type Store struct {
	DB      *sql.DB
	Engine  Engine
	Queries *Counter
	// Jobs, when set, receives the background work of each callout inside
	// its transaction.
	Jobs Enqueuer
	log  *slog.Logger
}

var _ callout.Store = (*Store)(nil)

// DefaultURL is the database used when none is given: a SQLite file in the
// working directory.
const DefaultURL = "callout.db"

// Open connects to the database named by url: postgres:// or postgresql://
// for PostgreSQL, anything else (a path, file:path or sqlite:path) for a
// SQLite file. It does not migrate; call Migrate.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if url == "" {
		url = DefaultURL
	}
	s := &Store{Queries: &Counter{}, log: log}
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("parse PostgreSQL URL: %w", err)
		}
		s.Engine = Postgres
		s.DB = sql.OpenDB(countingConnector{Connector: stdlib.GetConnector(*cfg), c: s.Queries})
		s.DB.SetMaxOpenConns(20)
		s.DB.SetMaxIdleConns(20)
	} else {
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
		s.Engine = SQLite
		s.DB = sql.OpenDB(countingConnector{Connector: &sqliteConnector{dsn: dsn}, c: s.Queries})
		// SQLite allows one writer at a time; one connection makes that
		// queueing explicit instead of a storm of SQLITE_BUSY retries, and is
		// what River's SQLite driver requires.
		s.DB.SetMaxOpenConns(1)
	}
	if err := s.DB.PingContext(ctx); err != nil {
		s.DB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.Engine, err)
	}
	if s.Engine == SQLite {
		// SQLite never gathers statistics by itself; as its documentation
		// advises for long-lived connections, PRAGMA optimize at open
		// (0x10002: analyse what needs it, each table sampled within
		// analysis_limit rows, so this takes milliseconds on any size)
		// keeps them current. The per-order reads are shaped so their
		// plans hold with or without statistics (storetest RunScale).
		if _, err := s.DB.ExecContext(ctx, "PRAGMA analysis_limit = 1000"); err != nil {
			s.DB.Close()
			return nil, fmt.Errorf("set analysis_limit: %w", err)
		}
		if _, err := s.DB.ExecContext(ctx, "PRAGMA optimize = 0x10002"); err != nil {
			s.DB.Close()
			return nil, fmt.Errorf("optimize the SQLite statistics: %w", err)
		}
	}
	return s, nil
}

type sqliteConnector struct{ dsn string }

func (c *sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return (&sqlite.Driver{}).Open(c.dsn)
}

func (c *sqliteConnector) Driver() driver.Driver { return &sqlite.Driver{} }

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Migrate brings the schema up to date with the engine's embedded,
// versioned migrations; each runs in a transaction.
func (s *Store) Migrate(ctx context.Context) error {
	dialect := goose.DialectSQLite3
	if s.Engine == Postgres {
		dialect = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, "migrations/"+string(s.Engine))
	if err != nil {
		return err
	}
	// Out-of-order versions are applied rather than refused: a migration
	// numbered below the newest applied one still runs, once.
	p, err := goose.NewProvider(dialect, s.DB, sub, goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s database: %w", s.Engine, err)
	}
	for _, r := range res {
		s.log.Info("migration applied", "engine", s.Engine, "version", r.Source.Version, "path", r.Source.Path)
	}
	return nil
}

// forUpdate locks the rows a query reads until the transaction ends. SQLite
// needs no row locks: every write transaction begins IMMEDIATE and so holds
// the database's only write lock.
func (s *Store) forUpdate(table string) string {
	if s.Engine == Postgres {
		return " FOR UPDATE OF " + table
	}
	return ""
}

// idIn returns a condition "col is one of ids", adding what it binds to
// args. On PostgreSQL the ids are one array parameter, so the statement's
// text is the same for every list and its prepared form is reused; SQLite
// prepares every statement anyway, and gets the ids as integer literals
// (ours, never user text), which spares it hundreds of bound parameters.
func (s *Store) idIn(col string, ids []int64, args *[]any) string {
	if s.Engine == Postgres {
		*args = append(*args, ids)
		return col + " = ANY($" + strconv.Itoa(len(*args)) + ")"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return col + " IN (" + strings.Join(parts, ",") + ")"
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// inTx runs fn in one transaction and commits it, or rolls it back when fn
// or the commit fails.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			s.log.Error("rollback failed", "err", rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// queryer is what both *sql.DB and *sql.Tx offer, so read helpers serve in
// and out of transactions.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
