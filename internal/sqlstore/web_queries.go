package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// The visible reports, written as literals exactly as in the predicate
	// of the partial index lab_reports_visible: a planner can prove a
	// partial index usable only from constants, and SQLite only from the
	// same terms.
	q := ` r.lab_id = $1 AND r.critical_values IN (` + list(len(states), 2) + `)
	       AND r.dismissed = false AND r.sample_collected = true`
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

// worklistFrom is the FROM of worklistWhere's conditions: the reports,
// joined to their orders only when the text search needs the orders'
// columns (a join that would otherwise read every order to count).
func worklistFrom(f callout.WorklistFilter) string {
	if strings.TrimSpace(f.Text) != "" {
		return `FROM lab_reports r JOIN bills b ON b.id = r.bill_id`
	}
	return `FROM lab_reports r`
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// WorklistOrders returns the reports of one page of orders: the orders that
// have reports in f's states and departments, among bills when it is not nil,
// matching f.Text (patient name, Order ID, accession number, test name or
// id), f.Limit orders from offset, oldest result first or, with newestFirst,
// most recently updated first. Each order comes with all its reports in f's
// states and departments, the orders in page order. total is the number of
// matching orders, or callout.WorklistCountCap+1 when more than callout.WorklistCountCap
// reports match; with f.Limit 0 only total is computed.
//
// Neither the page nor the count reads the lab's history: the page walks
// each state's reports in index order (lab_reports_worklist by result
// time, lab_reports_recent by update time), merged, until it has seen
// offset+f.Limit orders — an order's place is where its first report
// appears, which is MIN(resulted_at) or MAX(last_updated) — and the count
// stops at callout.WorklistCountCap+1 reports.
func (s *Store) WorklistOrders(ctx context.Context, labID int64, f callout.WorklistFilter, bills []int64, offset int, newestFirst bool) ([]callout.WorklistItem, int, error) {
	if len(f.States) == 0 {
		f.States = callout.WorklistStates
	}
	where, args := worklistWhere(labID, f, bills)
	var total, reports int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(DISTINCT x.bill_id), COUNT(*) FROM (SELECT r.bill_id
		`+worklistFrom(f)+` WHERE`+where+`
		LIMIT `+strconv.Itoa(callout.WorklistCountCap+1)+`) x`, args...).Scan(&total, &reports); err != nil {
		return nil, 0, fmt.Errorf("count worklist orders: %w", err)
	}
	if reports > callout.WorklistCountCap {
		total = callout.WorklistCountCap + 1
	}
	if f.Limit <= 0 || total == 0 {
		return []callout.WorklistItem{}, total, nil
	}
	page, err := s.worklistPage(ctx, labID, f, bills, max(offset, 0), newestFirst)
	if err != nil {
		return nil, 0, err
	}
	if len(page) == 0 {
		return []callout.WorklistItem{}, total, nil
	}
	rank := map[int64]int{}
	for i, id := range page {
		rank[id] = i
	}
	// The page's orders with every report they show, whatever matched the
	// text. Bill ids are our own integers, written as literals.
	where, args = worklistWhere(labID, callout.WorklistFilter{States: f.States, Departments: f.Departments}, nil)
	items, err := s.worklistItems(ctx, where+` AND r.bill_id IN (`+idList(page)+`)`, args, 0)
	if err != nil {
		return nil, 0, err
	}
	slices.SortStableFunc(items, func(a, b callout.WorklistItem) int { return rank[a.BillID] - rank[b.BillID] })
	return items, total, nil
}

// worklistKey is a report's place in a tab's order.
type worklistKey struct {
	at     time.Time
	id     int64
	billID int64
}

// worklistPage returns the ids of the orders from offset to offset+f.Limit
// in the tab's order, reading each state's reports in index order, a chunk
// at a time, and merging them.
func (s *Store) worklistPage(ctx context.Context, labID int64, f callout.WorklistFilter, bills []int64, offset int, newestFirst bool) ([]int64, error) {
	const chunk = 200
	col, cmp, dir := "r.resulted_at", ">", ""
	if newestFirst {
		col, cmp, dir = "r.last_updated", "<", " DESC"
	}
	type stream struct {
		state  callout.State
		buf    []worklistKey
		after  *worklistKey
		closed bool
	}
	streams := make([]*stream, len(f.States))
	for i, st := range f.States {
		streams[i] = &stream{state: st}
	}
	fill := func(sm *stream) error {
		one := f
		one.States = []callout.State{sm.state}
		where, args := worklistWhere(labID, one, bills)
		if sm.after != nil {
			n := len(args)
			where += fmt.Sprintf(` AND (%s, r.id) %s ($%d, $%d)`, col, cmp, n+1, n+2)
			args = append(args, sm.after.at, sm.after.id)
		}
		rows, err := s.DB.QueryContext(ctx, `SELECT r.id, r.bill_id, `+col+`
			`+worklistFrom(f)+` WHERE`+where+`
			ORDER BY `+col+dir+`, r.id`+dir+` LIMIT `+strconv.Itoa(chunk), args...)
		if err != nil {
			return fmt.Errorf("load worklist orders: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k worklistKey
			if err := rows.Scan(&k.id, &k.billID, &k.at); err != nil {
				return fmt.Errorf("load worklist orders: %w", err)
			}
			sm.buf = append(sm.buf, k)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load worklist orders: %w", err)
		}
		if len(sm.buf) < chunk {
			sm.closed = true
		}
		if len(sm.buf) > 0 {
			last := sm.buf[len(sm.buf)-1]
			sm.after = &last
		}
		return nil
	}
	// before says whether a comes before b in the tab's order.
	before := func(a, b worklistKey) bool {
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at) != newestFirst
		}
		return (a.id < b.id) != newestFirst
	}
	seen := map[int64]bool{}
	var page []int64
	for len(page) < f.Limit {
		var best *stream
		for _, sm := range streams {
			if len(sm.buf) == 0 && !sm.closed {
				if err := fill(sm); err != nil {
					return nil, err
				}
			}
			if len(sm.buf) > 0 && (best == nil || before(sm.buf[0], best.buf[0])) {
				best = sm
			}
		}
		if best == nil {
			break
		}
		k := best.buf[0]
		best.buf = best.buf[1:]
		if seen[k.billID] {
			continue
		}
		seen[k.billID] = true
		if len(seen) > offset {
			page = append(page, k.billID)
		}
	}
	return page, nil
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
		SELECT lab_report_id, name, value, unit, normal_low, normal_high, critical_low, critical_high, flag,
		       reference_range_text
		FROM report_parameters WHERE lab_report_id IN (`+strings.Join(reportIDs, ",")+`)
		ORDER BY lab_report_id, position`)
	if err != nil {
		return nil, nil, fmt.Errorf("export parameters: %w", err)
	}
	for rows.Next() {
		var p callout.Parameter
		var rid int64
		if err := rows.Scan(&rid, &p.Name, &p.Value, &p.Unit, &p.NormalLow, &p.NormalHigh, &p.CriticalLow, &p.CriticalHigh, &p.Flag,
			&p.ReferenceRangeText); err != nil {
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
