// Package storetest opens real databases for tests — a SQLite file always,
// PostgreSQL when CALLOUT_TEST_POSTGRES_URL names a server — and holds the
// behavioural suite that every engine must pass.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"callout/internal/jobs"
	"callout/internal/sqlstore"
)

// PostgresEnv names the environment variable that switches the PostgreSQL
// half of every suite on, for example
// CALLOUT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test.
const PostgresEnv = "CALLOUT_TEST_POSTGRES_URL"

// Engine opens fresh, migrated stores of one SQL engine.
type Engine struct {
	Name string
	// URL returns the URL of a new, empty database (a SQLite file in a
	// temporary directory, or a PostgreSQL schema of its own), removed when
	// the test ends. Programs under test may open it themselves.
	URL func(t testing.TB) string
}

// Open returns a migrated store on a new database of the engine.
func (e Engine) Open(t testing.TB) *sqlstore.Store {
	t.Helper()
	return OpenURL(t, e.URL(t))
}

// OpenURL opens and migrates the database at url, closing it at the end of the test.
func OpenURL(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.Migrate(ctx))
	// As `callout migrate` does: the job queue's tables too.
	require.NoError(t, jobs.Migrate(ctx, st.DB, jobs.Engine(st.Engine)))
	return st
}

// SQLite is the embedded engine; it is always available.
var SQLite = Engine{Name: "sqlite", URL: func(t testing.TB) string {
	return filepath.Join(t.TempDir(), "callout.db")
}}

// Postgres is the PostgreSQL engine: each database is a schema of its own in
// the server named by PostgresEnv, dropped when the test ends. Without that
// variable the test is skipped with a note on how to enable it.
var Postgres = Engine{Name: "postgres", URL: func(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests are off: set %s=postgres://postgres@127.0.0.1:5432/test to run them (.ci/run does)", PostgresEnv)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err, "connect to %s", PostgresEnv)
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}}

// Engines lists every engine; tests range over it so that the same test
// runs on each.
var Engines = []Engine{SQLite, Postgres}

// ForEach runs fn as a subtest on every engine.
func ForEach(t *testing.T, fn func(t *testing.T, e Engine)) {
	for _, e := range Engines {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, e)
		})
	}
}

// Tables lists every table of the schema, for checking that a refused
// request changed nothing.
var Tables = []string{"labs", "api_tokens", "bills", "lab_reports", "report_parameters",
	"critical_callouts", "activity_log", "idempotency_keys", "deliveries", "users", "web_sessions",
	"lab_hl7_facilities", "hl7_messages", "lab_critical_limits", "signin_throttle", "signin_failures", "callout_attempts", "river_job", "patients"}

// Dump returns every row of every table as text, to compare before and
// after a request that must change nothing.
func Dump(t testing.TB, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range Tables {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			line := ""
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				line += fmt.Sprintf("%s=%v;", cols[i], v)
			}
			out[table] = append(out[table], line)
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return out
}
