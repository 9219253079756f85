package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"callout/internal/callout"
	"callout/internal/fhir"
)

var _ fhir.Store = (*Store)(nil)

// calloutRecordColumns are recordColumns of the critical_callouts row c, for
// queries that join it with its bill b.
var calloutRecordColumns = func() string {
	cols := strings.Split(recordColumns, ",")
	for i, c := range cols {
		cols[i] = "c." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// alsoScan scans a row's trailing columns into extra, so that scanRecord can
// read the leading ones.
type alsoScan struct {
	sc    interface{ Scan(...any) error }
	extra []any
}

func (a alsoScan) Scan(dest ...any) error { return a.sc.Scan(append(dest, a.extra...)...) }

// CalloutRecord returns the lab's callout record id with its order and the
// order's reports.
func (s *Store) CalloutRecord(ctx context.Context, labID, id int64) (fhir.Entry, error) {
	var e fhir.Entry
	var err error
	row := s.DB.QueryRowContext(ctx, `SELECT `+calloutRecordColumns+`, `+billColumns+`
		FROM critical_callouts c JOIN bills b ON b.id = c.bill_id
		WHERE c.id = $1 AND c.lab_id = $2`, id, labID)
	e.Record, err = scanRecord(alsoScan{row, billDest(&e.Bill)})
	if errors.Is(err, sql.ErrNoRows) {
		return e, callout.Errorf(callout.KindNotFound, "callout record %d not found", id)
	}
	if err != nil {
		return e, fmt.Errorf("load callout record %d: %w", id, err)
	}
	e.Bill.CreatedAt = e.Bill.CreatedAt.UTC()
	entries := []fhir.Entry{e}
	if err := loadReportHeaders(ctx, s.DB, labID, entries); err != nil {
		return e, err
	}
	return entries[0], nil
}

// SearchCalloutRecords returns the lab's callout records matching q, by id,
// and, when q.Total asks, how many match regardless of q.AfterID and
// q.Limit: at most three statements (the count, the page, the page's
// reports) however many records match; the page is keyset-paged by id.
func (s *Store) SearchCalloutRecords(ctx context.Context, labID int64, q fhir.Query) ([]fhir.Entry, int, error) {
	where := ` FROM critical_callouts c JOIN bills b ON b.id = c.bill_id WHERE c.lab_id = $1`
	args := []any{labID}
	next := func() string { return "$" + strconv.Itoa(len(args)) }
	in := func(column string, n int) {
		where += ` AND ` + column + ` IN (` + list(n, len(args)-n+1) + `)`
	}
	if q.BillIDs != nil {
		for _, id := range q.BillIDs {
			args = append(args, id)
		}
		in("c.bill_id", len(q.BillIDs))
	}
	if q.LabBillIDs != nil {
		for _, id := range q.LabBillIDs {
			args = append(args, id)
		}
		in("b.lab_bill_id", len(q.LabBillIDs))
	}
	if q.Statuses != nil {
		for _, st := range q.Statuses {
			args = append(args, st)
		}
		in("c.status", len(q.Statuses))
	}
	// Times are compared in UTC: SQLite compares the driver's text, which
	// orders correctly only between instants of the same zone.
	if !q.SentFrom.IsZero() {
		args = append(args, q.SentFrom.UTC().Round(0))
		where += ` AND c.created_at >= ` + next()
	}
	if !q.SentBefore.IsZero() {
		args = append(args, q.SentBefore.UTC().Round(0))
		where += ` AND c.created_at < ` + next()
	}
	if len(q.Departments) > 0 {
		for _, d := range q.Departments {
			args = append(args, d)
		}
		depts := list(len(q.Departments), len(args)-len(q.Departments)+1)
		// callout.VisibleRecord's rule: a done record of a report in the
		// departments, an attempt that covered one.
		where += ` AND EXISTS (SELECT 1 FROM lab_reports r WHERE r.bill_id = c.bill_id
			AND r.department IN (` + depts + `)
			AND (r.id = c.lab_report_id
			     OR c.lab_report_id IS NULL AND r.test_id IN (` + s.calloutFor("c.meta") + `)))`
	}

	// Counting reads every matching record of the lab's history, so only
	// a search that asks for the total pays for it.
	var total int
	if q.Total {
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("count callout records: %w", err)
		}
		if total == 0 {
			return []fhir.Entry{}, 0, nil
		}
	}
	if q.Limit <= 0 {
		return []fhir.Entry{}, total, nil
	}
	if q.AfterID > 0 {
		args = append(args, q.AfterID)
		where += ` AND c.id > ` + next()
	}
	page := `SELECT ` + calloutRecordColumns + `, ` + billColumns + where + ` ORDER BY c.id LIMIT ` + strconv.Itoa(q.Limit)
	if q.LabBillIDs == nil {
		// Nothing filters on the order: take the page from the lab's
		// records in id order first (critical_callouts_lab), then join
		// its orders, so no planner joins the lab's history to sort it.
		page = `SELECT ` + calloutRecordColumns + `, ` + billColumns + ` FROM (SELECT c.*` +
			strings.Replace(where, ` JOIN bills b ON b.id = c.bill_id`, ``, 1) +
			` ORDER BY c.id LIMIT ` + strconv.Itoa(q.Limit) + `) c JOIN bills b ON b.id = c.bill_id ORDER BY c.id`
	}
	rows, err := s.DB.QueryContext(ctx, page, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("search callout records: %w", err)
	}
	defer rows.Close()
	entries := []fhir.Entry{}
	for rows.Next() {
		var e fhir.Entry
		if e.Record, err = scanRecord(alsoScan{rows, billDest(&e.Bill)}); err != nil {
			return nil, 0, fmt.Errorf("search callout records: %w", err)
		}
		e.Bill.CreatedAt = e.Bill.CreatedAt.UTC()
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("search callout records: %w", err)
	}
	rows.Close() // SQLite has one connection: free it for the next query
	return entries, total, loadReportHeaders(ctx, s.DB, labID, entries)
}

// calloutFor is a subquery listing the test ids of an attempt's selection,
// meta.callout_for, from the meta column named col.
func (s *Store) calloutFor(col string) string {
	if s.Engine == Postgres {
		return `SELECT jsonb_array_elements_text(` + col + ` -> 'callout_for')`
	}
	return `SELECT value FROM json_each(` + col + `, '$.callout_for')`
}

// loadReportHeaders fills in the reports (without parameters) of the
// entries' orders and their callout records in brief, in two queries.
func loadReportHeaders(ctx context.Context, q queryer, labID int64, entries []fhir.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	args := []any{labID}
	index := map[int64][]int{}
	for i, e := range entries {
		if _, ok := index[e.Bill.ID]; !ok {
			args = append(args, e.Bill.ID)
		}
		index[e.Bill.ID] = append(index[e.Bill.ID], i)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, bill_id, test_id, test_name, department
		FROM lab_reports WHERE lab_id = $1 AND bill_id IN (`+list(len(args)-1, 2)+`) ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("load reports of callout records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r callout.Report
		if err := rows.Scan(&r.ID, &r.BillID, &r.TestID, &r.TestName, &r.Department); err != nil {
			return fmt.Errorf("load reports of callout records: %w", err)
		}
		for _, i := range index[r.BillID] {
			entries[i].Bill.Reports = append(entries[i].Bill.Reports, r)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load reports of callout records: %w", err)
	}
	rows.Close() // SQLite has one connection: free it for the next query

	rows, err = q.QueryContext(ctx, `SELECT id, bill_id, lab_report_id, status, created_by, created_at
		FROM critical_callouts WHERE lab_id = $1 AND bill_id IN (`+list(len(args)-1, 2)+`) ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("load the callouts of callout records' orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r callout.Record
		if err := rows.Scan(&r.ID, &r.BillID, &r.LabReportID, &r.Status, &r.CreatedBy, &r.CreatedAt); err != nil {
			return fmt.Errorf("load the callouts of callout records' orders: %w", err)
		}
		for _, i := range index[r.BillID] {
			entries[i].Records = append(entries[i].Records, r)
		}
	}
	return rows.Err()
}
