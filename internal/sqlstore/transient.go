package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"callout/internal/callout"
)

// Transient reports whether err, returned by this store, is a fault that may
// pass by itself, so that the same request can succeed later: the database
// unreachable, restarting or out of resources, a lock or statement timeout,
// a serialization failure or deadlock, or the caller's own deadline. Every
// other failure is taken as deterministic: sending the same request again
// would fail the same way. This is the one place that knows the drivers'
// errors; HL7 answers AE ("send it again") only when it says true.
func (s *Store) Transient(err error) bool {
	if err == nil || callout.ErrorKind(err) != callout.KindInternal {
		return false // nothing, or a refusal of the domain: deterministic
	}
	if isUnique(err) {
		// A unique violation the store did not turn into a conflict is a
		// race with a concurrent writer (two messages creating one order at
		// once on PostgreSQL): sent again, the message finds the row.
		return true
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &netErr),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return transientSQLState(pg.Code)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return true
		}
		return false
	}
	// An error the drivers do not classify (database/sql's "database is
	// closed", a connection lost mid-statement): if the database does not
	// answer now, the failure is its unavailability.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.DB.PingContext(ctx) != nil
}

// transientSQLState reports the PostgreSQL error codes of faults that pass:
// class 08 connection exception, 40 transaction rollback (serialization
// failure, deadlock), 53 insufficient resources, 57 operator intervention
// (statement timeout, shutdown, starting up), 58 system error (I/O), and
// 55P03 lock not available (lock_timeout) — but not 08P01, a protocol
// violation, which the same statement causes every time.
func transientSQLState(code string) bool {
	switch code {
	case "55P03":
		return true
	case "08P01":
		return false // protocol violation: what was sent is malformed, every time
	}
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "08", "40", "53", "57", "58":
		return true
	}
	return false
}
