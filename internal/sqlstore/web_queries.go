package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"callout/internal/callout"
)

// The web worklist shows one row per order, so it pages over orders rather
// than reports. Its text search normally comes from the search index, as the
// orders it found (bills); without an index, f.Text is matched here with LIKE.

// worklistWhere returns the conditions selecting a lab's worklist reports in
// f's states and departments, of the given orders when bills is not nil,
// whose order or test matches f.Text, and their arguments. Tables: r
// (lab_reports) and b (bills).
func worklistWhere(labID int64, f callout.WorklistFilter, bills []int64) (string, []any) {
	args := []any{labID}
	states := f.States
	if len(states) == 0 {
		states = callout.WorklistStates
	}
	for _, st := range states {
		args = append(args, int(st))
	}
	q := ` r.lab_id = $1 AND r.critical_values IN (` + list(len(states), 2) + `)
	       AND r.dismissed = $` + strconv.Itoa(len(args)+1) + ` AND r.sample_collected = $` + strconv.Itoa(len(args)+2)
	args = append(args, false, true)
	if len(f.Departments) > 0 {
		q += ` AND r.department IN (` + list(len(f.Departments), len(args)+1) + `)`
		for _, d := range f.Departments {
			args = append(args, d)
		}
	}
	if bills != nil {
		ids := make([]string, 0, len(bills)+1)
		ids = append(ids, "0") // no order has id 0: an empty list matches nothing
		for _, id := range bills {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		q += ` AND r.bill_id IN (` + strings.Join(ids, ",") + `)`
	}
	if text := strings.TrimSpace(f.Text); text != "" {
		args = append(args, "%"+likeEscaper.Replace(strings.ToLower(text))+"%")
		n := "$" + strconv.Itoa(len(args))
		var ors []string
		for _, col := range []string{"b.patient_name", "b.lab_bill_id", "b.accession_number", "r.test_name", "r.test_id"} {
			ors = append(ors, `LOWER(`+col+`) LIKE `+n+` ESCAPE '\'`)
		}
		q += ` AND (` + strings.Join(ors, " OR ") + `)`
	}
	return q, args
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// WorklistOrders returns the reports of one page of orders: the orders that
// have reports in f's states and departments, among bills when it is not nil,
// matching f.Text (patient name, Order ID, accession number, test name or
// id), f.Limit orders from offset, oldest result first or, with newestFirst,
// most recently updated first. Each order comes with all its reports in f's
// states and departments, the orders in page order. total is the number of
// matching orders; with f.Limit 0 only total is computed.
func (s *Store) WorklistOrders(ctx context.Context, labID int64, f callout.WorklistFilter, bills []int64, offset int, newestFirst bool) ([]callout.WorklistItem, int, error) {
	where, args := worklistWhere(labID, f, bills)
	from := ` FROM lab_reports r JOIN bills b ON b.id = r.bill_id WHERE` + where
	if f.Limit <= 0 {
		var total int
		if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(DISTINCT r.bill_id)`+from, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("count worklist orders: %w", err)
		}
		return nil, total, nil
	}
	order := ` ORDER BY MIN(r.resulted_at), r.bill_id`
	if newestFirst {
		order = ` ORDER BY MAX(r.last_updated) DESC, r.bill_id DESC`
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT r.bill_id, COUNT(*) OVER ()`+from+` GROUP BY r.bill_id`+order+
		` LIMIT `+strconv.Itoa(f.Limit)+` OFFSET `+strconv.Itoa(max(offset, 0)), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("load worklist orders: %w", err)
	}
	var page []string
	rank := map[int64]int{}
	total := 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id, &total); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("load worklist orders: %w", err)
		}
		rank[id] = len(page)
		page = append(page, strconv.FormatInt(id, 10))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("load worklist orders: %w", err)
	}
	if len(page) == 0 {
		if offset > 0 {
			// Past the last page: still say how many there are.
			f.Limit = 0
			_, total, err := s.WorklistOrders(ctx, labID, f, bills, 0, false)
			return []callout.WorklistItem{}, total, err
		}
		return []callout.WorklistItem{}, 0, nil
	}
	// The page's orders with every report they show, whatever matched the
	// text. Bill ids are our own integers, written as literals.
	where, args = worklistWhere(labID, callout.WorklistFilter{States: f.States, Departments: f.Departments}, nil)
	items, err := s.worklistItems(ctx, where+` AND r.bill_id IN (`+strings.Join(page, ",")+`)`, args, 0)
	if err != nil {
		return nil, 0, err
	}
	slices.SortStableFunc(items, func(a, b callout.WorklistItem) int { return rank[a.BillID] - rank[b.BillID] })
	return items, total, nil
}

func (s *Store) worklistItems(ctx context.Context, where string, args []any, limit int) ([]callout.WorklistItem, error) {
	q := `SELECT r.id, r.bill_id, b.lab_bill_id, b.patient_name, b.referral_name, r.test_id, r.test_name,
		       r.department, r.critical_values, r.resulted_at, r.last_updated
		FROM lab_reports r JOIN bills b ON b.id = r.bill_id
		WHERE` + where + ` ORDER BY r.resulted_at, r.id`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load worklist reports: %w", err)
	}
	return scanWorklistItems(rows)
}

// scanWorklistItems reads worklist rows (report id, bill id, Order ID,
// patient, referral, test id and name, department, state, resulted and
// updated times) and closes rows.
func scanWorklistItems(rows *sql.Rows) ([]callout.WorklistItem, error) {
	defer rows.Close()
	out := []callout.WorklistItem{}
	for rows.Next() {
		var it callout.WorklistItem
		var state int
		if err := rows.Scan(&it.ID, &it.BillID, &it.LabBillID, &it.PatientName, &it.Referral, &it.TestID,
			&it.TestName, &it.Department, &state, &it.ResultedAt, &it.LastUpdated); err != nil {
			return nil, fmt.Errorf("load worklist reports: %w", err)
		}
		it.State = callout.State(state)
		it.ResultedAt, it.LastUpdated = it.ResultedAt.UTC(), it.LastUpdated.UTC()
		out = append(out, it)
	}
	return out, rows.Err()
}

// WorklistExport returns the worklist reports WorklistOrders would list, at
// most f.Limit of them, oldest result first: grouped in their orders (each
// report with its parameters), with every callout record of those orders,
// oldest first.
func (s *Store) WorklistExport(ctx context.Context, labID int64, f callout.WorklistFilter, bills []int64) ([]callout.Bill, []callout.Record, error) {
	where, args := worklistWhere(labID, f, bills)
	limit := f.Limit
	if limit <= 0 {
		limit = 10000
	}
	rows, err := s.DB.QueryContext(ctx, `
		SELECT `+billColumns+`, r.id, r.test_id, r.test_name, r.department, r.dismissed, r.sample_collected,
		       r.critical_values, r.resulted_at, r.last_updated
		FROM lab_reports r JOIN bills b ON b.id = r.bill_id
		WHERE`+where+` ORDER BY r.resulted_at, r.id LIMIT `+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("export worklist: %w", err)
	}
	var out []callout.Bill
	billIndex := map[int64]int{}
	reportAt := map[int64][2]int{}
	var reportIDs []string
	for rows.Next() {
		var b callout.Bill
		var r callout.Report
		var state int
		dest := append(billDest(&b), &r.ID, &r.TestID, &r.TestName, &r.Department, &r.Dismissed, &r.SampleCollected,
			&state, &r.ResultedAt, &r.LastUpdated)
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("export worklist: %w", err)
		}
		b.CreatedAt = b.CreatedAt.UTC()
		r.BillID, r.State = b.ID, callout.State(state)
		r.ResultedAt, r.LastUpdated = r.ResultedAt.UTC(), r.LastUpdated.UTC()
		r.Parameters = []callout.Parameter{}
		i, ok := billIndex[b.ID]
		if !ok {
			i = len(out)
			billIndex[b.ID] = i
			out = append(out, b)
		}
		reportAt[r.ID] = [2]int{i, len(out[i].Reports)}
		out[i].Reports = append(out[i].Reports, r)
		reportIDs = append(reportIDs, strconv.FormatInt(r.ID, 10))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("export worklist: %w", err)
	}
	if len(out) == 0 {
		return []callout.Bill{}, []callout.Record{}, nil
	}

	// Ids are our own integers, written as literals: the list can be long.
	rows, err = s.DB.QueryContext(ctx, `
		SELECT lab_report_id, name, value, unit, normal_low, normal_high, critical_low, critical_high, flag
		FROM report_parameters WHERE lab_report_id IN (`+strings.Join(reportIDs, ",")+`)
		ORDER BY lab_report_id, position`)
	if err != nil {
		return nil, nil, fmt.Errorf("export parameters: %w", err)
	}
	for rows.Next() {
		var p callout.Parameter
		var rid int64
		if err := rows.Scan(&rid, &p.Name, &p.Value, &p.Unit, &p.NormalLow, &p.NormalHigh, &p.CriticalLow, &p.CriticalHigh, &p.Flag); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("export parameters: %w", err)
		}
		at := reportAt[rid]
		r := &out[at[0]].Reports[at[1]]
		r.Parameters = append(r.Parameters, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("export parameters: %w", err)
	}

	billIDs := make([]string, 0, len(out))
	for _, b := range out {
		billIDs = append(billIDs, strconv.FormatInt(b.ID, 10))
	}
	rows, err = s.DB.QueryContext(ctx, `SELECT `+recordColumns+` FROM critical_callouts
		WHERE lab_id = $1 AND bill_id IN (`+strings.Join(billIDs, ",")+`) ORDER BY id`, labID)
	if err != nil {
		return nil, nil, fmt.Errorf("export callout records: %w", err)
	}
	defer rows.Close()
	recs := []callout.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("export callout records: %w", err)
		}
		recs = append(recs, r)
	}
	return out, recs, rows.Err()
}

// FindBill returns the id of the lab's order with the given Order ID.
func (s *Store) FindBill(ctx context.Context, labID int64, labBillID string) (int64, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, `SELECT id FROM bills WHERE lab_id = $1 AND lab_bill_id = $2`, labID, labBillID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, callout.Errorf(callout.KindNotFound, "there is no order with Order ID %s", labBillID)
	}
	if err != nil {
		return 0, fmt.Errorf("find order %q: %w", labBillID, err)
	}
	return id, nil
}
