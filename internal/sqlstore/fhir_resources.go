package sqlstore

import (
	"context"
	"fmt"
	"strconv"

	"callout/internal/callout"
	"callout/internal/fhir"
)

// patientCond is the condition on the order b that selects the patients
// patientIDs and the orders without an MRN in orderPatients (which stand for
// their own patient), with its arguments appended to args.
func patientCond(patientIDs, orderPatients []int64, args []any) (string, []any) {
	var parts []string
	if len(patientIDs) > 0 {
		for _, id := range patientIDs {
			args = append(args, id)
		}
		parts = append(parts, `b.patient_id IN (`+list(len(patientIDs), len(args)-len(patientIDs)+1)+`)`)
	}
	if len(orderPatients) > 0 {
		for _, id := range orderPatients {
			args = append(args, id)
		}
		parts = append(parts, `(b.patient_id IS NULL AND b.id IN (`+list(len(orderPatients), len(args)-len(orderPatients)+1)+`))`)
	}
	switch len(parts) {
	case 0:
		return `1 = 0`, args
	case 1:
		return parts[0], args
	}
	return `(` + parts[0] + ` OR ` + parts[1] + `)`, args
}

// FindResources finds the lab's rows behind FHIR resources of q.Kind: two
// statements, the count and the page.
func (s *Store) FindResources(ctx context.Context, labID int64, q fhir.ResourceQuery) ([]fhir.Found, int, error) {
	args := []any{labID}
	next := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	inList := func(column string, n int) string {
		return ` AND ` + column + ` IN (` + list(n, len(args)-n+1) + `)`
	}
	depts := func() string {
		for _, d := range q.Departments {
			args = append(args, d)
		}
		return list(len(q.Departments), len(args)-len(q.Departments)+1)
	}
	// Each kind: its table, its id column, the order column, and where the
	// department rule applies.
	var from, idCol, billCol, where string
	switch q.Kind {
	case fhir.KindOrder:
		from, idCol, billCol = ` FROM bills b`, `b.id`, `b.id`
		where = ` WHERE b.lab_id = $1`
		if len(q.Departments) > 0 {
			where += ` AND EXISTS (SELECT 1 FROM lab_reports r WHERE r.bill_id = b.id AND r.department IN (` + depts() + `))`
		}
	case fhir.KindReport:
		from, idCol, billCol = ` FROM lab_reports r JOIN bills b ON b.id = r.bill_id`, `r.id`, `r.bill_id`
		where = ` WHERE r.lab_id = $1`
		if len(q.Departments) > 0 {
			where += ` AND r.department IN (` + depts() + `)`
		}
	case fhir.KindParameter:
		from = ` FROM report_parameters x JOIN lab_reports r ON r.id = x.lab_report_id JOIN bills b ON b.id = x.bill_id`
		idCol, billCol = `x.id`, `x.bill_id`
		where = ` WHERE r.lab_id = $1`
		if len(q.Departments) > 0 {
			where += ` AND r.department IN (` + depts() + `)`
		}
	case fhir.KindPatient:
		// A patient is seen through its newest order the caller may see;
		// a patient none of whose orders the caller sees does not exist
		// for the caller.
		newest := `SELECT MAX(b2.id) FROM bills b2 WHERE b2.patient_id = pt.id`
		if len(q.Departments) > 0 {
			newest += ` AND EXISTS (SELECT 1 FROM lab_reports r WHERE r.bill_id = b2.id AND r.department IN (` + depts() + `))`
		}
		from = ` FROM patients pt JOIN bills b ON b.id = (` + newest + `)`
		idCol, billCol = `pt.id`, `b.id`
		where = ` WHERE pt.lab_id = $1`
		if q.MRNs != nil {
			for _, m := range q.MRNs {
				args = append(args, m)
			}
			where += inList("pt.mrn", len(q.MRNs))
		}
	default:
		return nil, 0, fmt.Errorf("find FHIR resources: unknown kind %d", q.Kind)
	}
	if q.IDs != nil {
		for _, id := range q.IDs {
			args = append(args, id)
		}
		where += inList(idCol, len(q.IDs))
	}
	if q.BillIDs != nil {
		for _, id := range q.BillIDs {
			args = append(args, id)
		}
		where += inList("b.id", len(q.BillIDs))
	}
	if q.LabBillIDs != nil {
		for _, id := range q.LabBillIDs {
			args = append(args, id)
		}
		where += inList("b.lab_bill_id", len(q.LabBillIDs))
	}
	if q.PatientIDs != nil || q.OrderPatients != nil {
		var cond string
		cond, args = patientCond(q.PatientIDs, q.OrderPatients, args)
		where += ` AND ` + cond
	}

	var total int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*)`+from+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count FHIR resources: %w", err)
	}
	out := []fhir.Found{}
	if q.Limit <= 0 || total == 0 {
		return out, total, nil
	}
	if q.AfterID > 0 {
		where += ` AND ` + idCol + ` > ` + next(q.AfterID)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+idCol+`, `+billCol+from+where+
		` ORDER BY `+idCol+` LIMIT `+strconv.Itoa(q.Limit), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("find FHIR resources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f fhir.Found
		if err := rows.Scan(&f.ID, &f.BillID); err != nil {
			return nil, 0, fmt.Errorf("find FHIR resources: %w", err)
		}
		out = append(out, f)
	}
	return out, total, rows.Err()
}

// Orders returns the lab's orders among ids with their reports and
// parameters: three statements however many orders.
func (s *Store) Orders(ctx context.Context, labID int64, ids []int64) ([]callout.Bill, error) {
	if len(ids) == 0 {
		return []callout.Bill{}, nil
	}
	args := []any{labID}
	for _, id := range ids {
		args = append(args, id)
	}
	in := list(len(ids), 2)
	rows, err := s.DB.QueryContext(ctx, `SELECT `+billColumns+` FROM bills b
		WHERE b.lab_id = $1 AND b.id IN (`+in+`) ORDER BY b.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load orders: %w", err)
	}
	defer rows.Close()
	bills := []callout.Bill{}
	index := map[int64]int{}
	for rows.Next() {
		var b callout.Bill
		if err := rows.Scan(billDest(&b)...); err != nil {
			return nil, fmt.Errorf("load orders: %w", err)
		}
		b.CreatedAt = b.CreatedAt.UTC()
		index[b.ID] = len(bills)
		bills = append(bills, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load orders: %w", err)
	}
	rows.Close() // SQLite has one connection: free it for the next query

	rows, err = s.DB.QueryContext(ctx, `
		SELECT id, bill_id, test_id, test_name, department, dismissed, sample_collected,
		       critical_values, resulted_at, last_updated, result_status
		FROM lab_reports WHERE lab_id = $1 AND bill_id IN (`+in+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load reports of orders: %w", err)
	}
	defer rows.Close()
	reportAt := map[int64][2]int{}
	for rows.Next() {
		var r callout.Report
		var state int
		if err := rows.Scan(&r.ID, &r.BillID, &r.TestID, &r.TestName, &r.Department, &r.Dismissed,
			&r.SampleCollected, &state, &r.ResultedAt, &r.LastUpdated, &r.ResultStatus); err != nil {
			return nil, fmt.Errorf("load reports of orders: %w", err)
		}
		r.State = callout.State(state)
		r.Parameters = []callout.Parameter{}
		r.ResultedAt, r.LastUpdated = r.ResultedAt.UTC(), r.LastUpdated.UTC()
		i, ok := index[r.BillID]
		if !ok {
			continue
		}
		reportAt[r.ID] = [2]int{i, len(bills[i].Reports)}
		bills[i].Reports = append(bills[i].Reports, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load reports of orders: %w", err)
	}
	rows.Close()

	rows, err = s.DB.QueryContext(ctx, `
		SELECT x.id, x.lab_report_id, x.name, x.value, x.unit, x.normal_low, x.normal_high,
		       x.critical_low, x.critical_high, x.flag
		FROM report_parameters x JOIN bills b ON b.id = x.bill_id
		WHERE b.lab_id = $1 AND x.bill_id IN (`+in+`) ORDER BY x.lab_report_id, x.position`, args...)
	if err != nil {
		return nil, fmt.Errorf("load parameters of orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p callout.Parameter
		var rid int64
		if err := rows.Scan(&p.ID, &rid, &p.Name, &p.Value, &p.Unit, &p.NormalLow, &p.NormalHigh,
			&p.CriticalLow, &p.CriticalHigh, &p.Flag); err != nil {
			return nil, fmt.Errorf("load parameters of orders: %w", err)
		}
		if at, ok := reportAt[rid]; ok {
			r := &bills[at[0]].Reports[at[1]]
			r.Parameters = append(r.Parameters, p)
		}
	}
	return bills, rows.Err()
}

// Patients returns the lab's patients among ids.
func (s *Store) Patients(ctx context.Context, labID int64, ids []int64) ([]fhir.PatientRow, error) {
	out := []fhir.PatientRow{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{labID}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, mrn, assigning_authority, birth_date FROM patients
		WHERE lab_id = $1 AND id IN (`+list(len(ids), 2)+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("load patients: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p fhir.PatientRow
		if err := rows.Scan(&p.ID, &p.MRN, &p.AssigningAuthority, &p.BirthDate); err != nil {
			return nil, fmt.Errorf("load patients: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
