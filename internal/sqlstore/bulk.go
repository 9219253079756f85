package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"callout/internal/callout"
)

// Bulk inserts. An order may carry thousands of parameters
// (callout.MaxParametersPerOrder). Sent as a multi-row VALUES list with one
// bound parameter per column, SQLite's driver looks each `$N` up by name in
// a list as long as the statement's parameters — quadratic: 22,500
// parameters × 11 columns took 21 s, holding the only writer of every lab.
// So the rows travel as ONE parameter, a JSON array of arrays (one per row,
// its columns in the INSERT's order), which the database expands itself:
// json_each on SQLite, jsonb_array_elements on PostgreSQL. The cost is
// linear, and the statement's text is the same for every order, so
// PostgreSQL's prepared form is reused.

// jsonRows encodes rows for a bulk insert.
func jsonRows(rows [][]any) (string, error) {
	b, err := json.Marshal(rows)
	if err != nil {
		return "", fmt.Errorf("encode rows: %w", err)
	}
	return string(b), nil
}

// jsonTime is a time as the engine stores it when bound as a parameter, so
// that a row inserted in bulk reads and compares like any other: SQLite's
// driver writes time.Time.String() into TIMESTAMP columns; PostgreSQL casts
// RFC 3339 to timestamptz.
func (s *Store) jsonTime(t time.Time) string {
	if s.Engine == Postgres {
		return t.Format(time.RFC3339Nano)
	}
	return t.String()
}

// reportRows encodes new reports for insertReports.
func (s *Store) reportRows(reports []callout.Report) (string, error) {
	rows := make([][]any, len(reports))
	for i, r := range reports {
		rows[i] = []any{r.TestID, r.TestName, r.Department, r.Dismissed, r.SampleCollected,
			int(r.State), s.jsonTime(r.ResultedAt), s.jsonTime(r.LastUpdated), r.ResultStatus, nil}
		if r.CollectedAt != nil {
			rows[i][9] = s.jsonTime(*r.CollectedAt)
		}
	}
	return jsonRows(rows)
}

// parameterRows encodes the parameters of reports for insertParameters.
// A row names its report by test id (unique in an order), not by ID, so
// the rows can be encoded before the transaction begins: on SQLite every
// lab's writes wait for it.
func parameterRows(reports []callout.Report) (string, error) {
	var rows [][]any
	for _, r := range reports {
		for i, p := range r.Parameters {
			rows = append(rows, []any{r.TestID, i, p.Name, p.Value, p.Unit,
				p.NormalLow, p.NormalHigh, p.CriticalLow, p.CriticalHigh, p.Flag, p.ReferenceRangeText})
		}
	}
	return jsonRows(rows)
}

// insertReports stores n new reports of a bill, encoded by reportRows, in
// one statement and returns their IDs by test id.
func (s *Store) insertReports(ctx context.Context, tx *sql.Tx, labID, billID int64, rows string, n int) (map[string]int64, error) {
	ids := make(map[string]int64, n)
	if n == 0 {
		return ids, nil
	}
	q := `
		INSERT INTO lab_reports (lab_id, bill_id, test_id, test_name, department, dismissed,
		    sample_collected, critical_values, resulted_at, last_updated, result_status, collected_at)
		SELECT $1, $2, r.value->>0, r.value->>1, r.value->>2, r.value->>3,
		       r.value->>4, r.value->>5, r.value->>6, r.value->>7, r.value->>8, r.value->>9
		FROM jsonb_each($3) r ORDER BY r.key
		RETURNING id, test_id`
	if s.Engine == Postgres {
		q = `
		INSERT INTO lab_reports (lab_id, bill_id, test_id, test_name, department, dismissed,
		    sample_collected, critical_values, resulted_at, last_updated, result_status, collected_at)
		SELECT $1, $2, r.e->>0, r.e->>1, r.e->>2, (r.e->>3)::boolean,
		       (r.e->>4)::boolean, (r.e->>5)::integer, (r.e->>6)::timestamptz, (r.e->>7)::timestamptz, r.e->>8,
		       (r.e->>9)::timestamptz
		FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS r(e, n) ORDER BY r.n
		RETURNING id, test_id`
	}
	res, err := tx.QueryContext(ctx, q, labID, billID, rows)
	if err != nil {
		return nil, fmt.Errorf("insert reports of bill %d: %w", billID, err)
	}
	defer res.Close()
	for res.Next() {
		var id int64
		var testID string
		if err := res.Scan(&id, &testID); err != nil {
			return nil, fmt.Errorf("insert reports of bill %d: %w", billID, err)
		}
		ids[testID] = id
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("insert reports of bill %d: %w", billID, err)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("insert reports of bill %d: %d rows for %d reports", billID, len(ids), n)
	}
	return ids, nil
}

// insertParameters stores parameters of a bill's reports, encoded by
// parameterRows, in one statement; the reports must exist.
func (s *Store) insertParameters(ctx context.Context, tx *sql.Tx, billID int64, rows string) error {
	if rows == "[]" || rows == "null" {
		return nil
	}
	q := `
		INSERT INTO report_parameters (lab_report_id, bill_id, position, name, value, unit,
		    normal_low, normal_high, critical_low, critical_high, flag, reference_range_text)
		SELECT r.id, $1, p.value->>1, p.value->>2, p.value->>3, p.value->>4,
		       p.value->>5, p.value->>6, p.value->>7, p.value->>8, p.value->>9, p.value->>10
		FROM jsonb_each($2) p CROSS JOIN lab_reports r -- SQLite: p is the outer loop, r found by its unique index
		WHERE r.bill_id = $1 AND r.test_id = p.value->>0
		ORDER BY p.key`
	if s.Engine == Postgres {
		q = `
		INSERT INTO report_parameters (lab_report_id, bill_id, position, name, value, unit,
		    normal_low, normal_high, critical_low, critical_high, flag, reference_range_text)
		SELECT r.id, $1, (p.e->>1)::integer, p.e->>2, p.e->>3, p.e->>4,
		       (p.e->>5)::double precision, (p.e->>6)::double precision,
		       (p.e->>7)::double precision, (p.e->>8)::double precision, p.e->>9, p.e->>10
		FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS p(e, n)
		JOIN lab_reports r ON r.bill_id = $1 AND r.test_id = p.e->>0
		ORDER BY p.n`
	}
	if _, err := tx.ExecContext(ctx, q, billID, rows); err != nil {
		return fmt.Errorf("insert parameters of bill %d: %w", billID, err)
	}
	return nil
}
