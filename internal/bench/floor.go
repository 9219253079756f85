package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The floor: a done callout of every report of an order as the simplest
// hand-written loop sends it — the same statements the store sends (BEGIN;
// three SELECTs, the order locked on PostgreSQL; UPDATE the reports; DELETE
// the draft; one multi-row INSERT of records; INSERT the activity; COMMIT)
// with no domain code, no HTTP and constant JSON literals.

// floorDB is a plain database handle: pgxpool on PostgreSQL, database/sql
// with the modernc driver on SQLite.
type floorDB interface {
	begin(ctx context.Context) (floorTx, error)
	close()
}

type floorTx interface {
	// rows runs a query, reads every row and returns how many there were.
	rows(ctx context.Context, q string, args ...any) (int, error)
	exec(ctx context.Context, q string, args ...any) error
	// id runs a query answering one row of one integer (INSERT … RETURNING id).
	id(ctx context.Context, q string, args ...any) (int64, error)
	commit(ctx context.Context) error
	rollback(ctx context.Context)
}

// openFloor opens a plain handle on the database at dbURL, sized like
// sqlstore.Open's: one connection on SQLite, 20 on PostgreSQL.
func openFloor(ctx context.Context, engine, dbURL string) (floorDB, error) {
	if engine == EnginePostgres {
		cfg, err := pgxpool.ParseConfig(dbURL)
		if err != nil {
			return nil, err
		}
		cfg.MaxConns = 20
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, err
		}
		return pgFloor{pool}, nil
	}
	// The DSN sqlstore.Open builds for a SQLite file.
	dsn := "file:" + dbURL + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return sqlFloor{db}, nil
}

type pgFloor struct{ pool *pgxpool.Pool }

func (f pgFloor) close() { f.pool.Close() }

func (f pgFloor) begin(ctx context.Context) (floorTx, error) {
	tx, err := f.pool.Begin(ctx)
	return pgTx{tx}, err
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) rows(ctx context.Context, q string, args ...any) (int, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	return n, rows.Err()
}

func (t pgTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgTx) id(ctx context.Context, q string, args ...any) (int64, error) {
	var id int64
	err := t.tx.QueryRow(ctx, q, args...).Scan(&id)
	return id, err
}

func (t pgTx) commit(ctx context.Context) error { return t.tx.Commit(ctx) }
func (t pgTx) rollback(ctx context.Context)     { _ = t.tx.Rollback(ctx) }

type sqlFloor struct{ db *sql.DB }

func (f sqlFloor) close() { f.db.Close() }

func (f sqlFloor) begin(ctx context.Context) (floorTx, error) {
	tx, err := f.db.BeginTx(ctx, nil)
	return sqlTx{tx}, err
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) rows(ctx context.Context, q string, args ...any) (int, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	return n, rows.Err()
}

func (t sqlTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqlTx) id(ctx context.Context, q string, args ...any) (int64, error) {
	var id int64
	err := t.tx.QueryRowContext(ctx, q, args...).Scan(&id)
	return id, err
}

func (t sqlTx) commit(context.Context) error { return t.tx.Commit() }
func (t sqlTx) rollback(context.Context)     { _ = t.tx.Rollback() }

// queries are the floor's statements for one engine and order size.
type queries struct {
	bill, reports, params, update, deleteDraft, insert, activity string
}

func floorQueries(engine string, size int) queries {
	lock := ""
	if engine == EnginePostgres {
		lock = " FOR UPDATE OF b"
	}
	ids := make([]string, size)
	rows := make([]string, size)
	for i := range size {
		ids[i] = "$" + strconv.Itoa(3+i)
		rows[i] = "($1, $2, $" + strconv.Itoa(4+i) + `, 'done', '["Email"]', '["Referral"]', 'Informed Dr. Rao by phone',` +
			` '', false, NULL, 'bench', $3, NULL, '[{"name":"Potassium","value":"7.1"}]')`
	}
	return queries{
		bill: `SELECT b.id, b.lab_id, b.lab_bill_id, b.accession_number,
			b.patient_name, b.patient_email, b.patient_fax, b.patient_phone,
			b.referral_name, b.referral_email, b.referral_fax, b.referral_phone,
			b.organization_name, b.organization_email, b.organization_fax, b.organization_phone, b.created_at,
			l.name, l.share_comment, l.mandatory_comments, l.hide_patient_name, l.additional_instruction, l.target_minutes
			FROM bills b JOIN labs l ON l.id = b.lab_id
			WHERE b.id = $1 AND b.lab_id = $2` + lock,
		reports: `SELECT id, bill_id, test_id, test_name, department, dismissed, sample_collected,
			critical_values, resulted_at, last_updated
			FROM lab_reports WHERE bill_id = $1 ORDER BY id`,
		params: `SELECT id, lab_report_id, name, value, unit, normal_low, normal_high, critical_low, critical_high, flag
			FROM report_parameters WHERE bill_id = $1 ORDER BY lab_report_id, position`,
		update: `UPDATE lab_reports SET critical_values = 2, last_updated = $2
			WHERE bill_id = $1 AND id IN (` + strings.Join(ids, ",") + `)`,
		deleteDraft: `DELETE FROM critical_callouts WHERE bill_id = $1 AND lab_report_id IS NULL`,
		insert: `INSERT INTO critical_callouts (lab_id, bill_id, lab_report_id, status, methods, recipients, comment,
			notified_person, read_back, notify_to_others, created_by, created_at, meta, snapshot)
			VALUES ` + strings.Join(rows, ", ") + ` RETURNING id`,
		activity: `INSERT INTO activity_log (lab_id, bill_id, category_id, user_name, created_at, message, data)
			VALUES ($1, $2, 648, 'bench', $3, 'Callout done by - bench, Method - Email, Recipients - Referral',
			'{"method":"Email","recipients":["Referral"]}')`,
	}
}

// floorCallout is one done callout of every report of o, in one transaction.
func floorCallout(ctx context.Context, db floorDB, q queries, lab int64, o order) (err error) {
	tx, err := db.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.rollback(ctx)
		}
	}()
	now := time.Now().UTC().Truncate(time.Microsecond)
	want := func(what string, n, expected int, err error) error {
		if err != nil {
			return fmt.Errorf("%s of bill %d: %w", what, o.billID, err)
		}
		if n != expected {
			return fmt.Errorf("%s of bill %d: %d rows, want %d", what, o.billID, n, expected)
		}
		return nil
	}
	n, err := tx.rows(ctx, q.bill, o.billID, lab)
	if err = want("lock bill", n, 1, err); err != nil {
		return err
	}
	n, err = tx.rows(ctx, q.reports, o.billID)
	if err = want("load reports", n, len(o.reports), err); err != nil {
		return err
	}
	n, err = tx.rows(ctx, q.params, o.billID)
	if err = want("load parameters", n, 2*len(o.reports), err); err != nil {
		return err
	}

	args := make([]any, 0, 3+len(o.reports))
	args = append(args, o.billID, now)
	for _, id := range o.reports {
		args = append(args, id)
	}
	if err = tx.exec(ctx, q.update, args...); err != nil {
		return fmt.Errorf("update reports of bill %d: %w", o.billID, err)
	}
	if err = tx.exec(ctx, q.deleteDraft, o.billID); err != nil {
		return fmt.Errorf("delete draft of bill %d: %w", o.billID, err)
	}
	args = append(args[:0], lab, o.billID, now)
	for _, id := range o.reports {
		args = append(args, id)
	}
	n, err = tx.rows(ctx, q.insert, args...)
	if err = want("insert records", n, len(o.reports), err); err != nil {
		return err
	}
	if err = tx.exec(ctx, q.activity, lab, o.billID, now); err != nil {
		return fmt.Errorf("insert activity of bill %d: %w", o.billID, err)
	}
	if err = tx.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
