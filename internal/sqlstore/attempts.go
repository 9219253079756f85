package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"callout/internal/callout"
	"callout/internal/fhir"
)

// insertAttempts appends a submit's rows to the attempt log in one
// statement. Each row's number is its report's count of rows plus one,
// read by a subquery of the same statement: the order's lock (held since
// the transaction read the order) makes that count final, so concurrent
// submits on one order number their rows 1, 2, 3 … without gaps or
// repeats, and the UNIQUE (lab_report_id, attempt_number) constraint
// refuses anything else.
func insertAttempts(ctx context.Context, tx *sql.Tx, labID int64, rows []callout.AttemptEntry) error {
	if len(rows) == 0 {
		return nil
	}
	a := rows[0]
	recipients, err := json.Marshal(a.Recipients)
	if err != nil {
		return err
	}
	// What the rows of one submit share is bound once.
	args := []any{labID, a.BillID, a.Kind, a.Outcome, a.CalledAt, a.RecordedAt, a.User, string(recipients),
		a.NotifiedPerson, a.ReadBack, a.Comment, a.BackEntryReason}
	values := make([]string, 0, len(rows))
	for _, r := range rows {
		values1, err := json.Marshal(r.CriticalValues)
		if err != nil {
			return err
		}
		args = append(args, r.LabReportID, string(values1))
		n := len(args)
		values = append(values, fmt.Sprintf(`($1, $2, CAST($%[1]d AS BIGINT),
			(SELECT COALESCE(MAX(x.attempt_number), 0) + 1 FROM callout_attempts x WHERE x.lab_report_id = CAST($%[1]d AS BIGINT)),
			$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $%[2]d)`, n-1, n))
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO callout_attempts (lab_id, bill_id, lab_report_id, attempt_number, kind, outcome,
		    called_at, recorded_at, user_name, recipients, notified_person, read_back, comment,
		    back_entry_reason, critical_values)
		VALUES `+strings.Join(values, ", "), args...)
	if err != nil {
		return fmt.Errorf("append attempt log of bill %d: %w", a.BillID, err)
	}
	return nil
}

const attemptColumns = `id, bill_id, lab_report_id, attempt_number, kind, outcome, called_at, recorded_at,
	user_name, recipients, notified_person, read_back, comment, back_entry_reason, critical_values`

func scanAttempt(sc interface{ Scan(...any) error }) (callout.AttemptEntry, error) {
	var a callout.AttemptEntry
	var recipients, values string
	err := sc.Scan(&a.ID, &a.BillID, &a.LabReportID, &a.Number, &a.Kind, &a.Outcome, &a.CalledAt, &a.RecordedAt,
		&a.User, &recipients, &a.NotifiedPerson, &a.ReadBack, &a.Comment, &a.BackEntryReason, &values)
	if err != nil {
		return a, err
	}
	a.CalledAt, a.RecordedAt = a.CalledAt.UTC(), a.RecordedAt.UTC()
	if err := json.Unmarshal([]byte(recipients), &a.Recipients); err != nil {
		return a, fmt.Errorf("decode attempt %d: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(values), &a.CriticalValues); err != nil {
		return a, fmt.Errorf("decode attempt %d: %w", a.ID, err)
	}
	if a.CriticalValues == nil {
		a.CriticalValues = []callout.SnapshotItem{}
	}
	return a, nil
}

// Attempts returns the order's attempt log, oldest first.
func (s *Store) Attempts(ctx context.Context, labID, billID int64) ([]callout.AttemptEntry, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+attemptColumns+` FROM callout_attempts
		WHERE lab_id = $1 AND bill_id = $2 ORDER BY id`, labID, billID)
	if err != nil {
		return nil, fmt.Errorf("load attempt log of bill %d: %w", billID, err)
	}
	defer rows.Close()
	out := []callout.AttemptEntry{}
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return nil, fmt.Errorf("load attempt log of bill %d: %w", billID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// CalloutAttempt returns the lab's attempt log row id with its order, the
// order's reports (without parameters) and the rows of the same submit.
func (s *Store) CalloutAttempt(ctx context.Context, labID, id int64) (fhir.AttemptEntry, error) {
	var e fhir.AttemptEntry
	cols := strings.Split(attemptColumns, ",")
	for i, c := range cols {
		cols[i] = "a." + strings.TrimSpace(c)
	}
	var err error
	row := s.DB.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")+`, `+billColumns+`
		FROM callout_attempts a JOIN bills b ON b.id = a.bill_id
		WHERE a.id = $1 AND a.lab_id = $2`, id, labID)
	e.Attempt, err = scanAttempt(alsoScan{row, billDest(&e.Bill)})
	if errors.Is(err, sql.ErrNoRows) {
		return e, callout.Errorf(callout.KindNotFound, "attempt %d not found", id)
	}
	if err != nil {
		return e, fmt.Errorf("load attempt %d: %w", id, err)
	}
	e.Bill.CreatedAt = e.Bill.CreatedAt.UTC()
	entries := []fhir.Entry{{Bill: e.Bill}}
	if err := loadReportHeaders(ctx, s.DB, labID, entries); err != nil {
		return e, err
	}
	e.Bill = entries[0].Bill
	rows, err := s.DB.QueryContext(ctx, `SELECT `+attemptColumns+` FROM callout_attempts
		WHERE lab_id = $1 AND bill_id = $2 AND user_name = $3 AND recorded_at = $4 ORDER BY id`,
		labID, e.Attempt.BillID, e.Attempt.User, e.Attempt.RecordedAt)
	if err != nil {
		return e, fmt.Errorf("load the submit of attempt %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return e, fmt.Errorf("load the submit of attempt %d: %w", id, err)
		}
		e.Submit = append(e.Submit, a)
	}
	return e, rows.Err()
}
