package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

// placeholders returns "($n,…),(…)" for rows of cols parameters numbered
// from start, for multi-row INSERTs: one statement however many rows.
func placeholders(rows, cols, start int) string {
	var b strings.Builder
	n := start
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// list returns "$start,…" for n parameters, for IN lists.
func list(n, start int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "$" + strconv.Itoa(start+i)
	}
	return strings.Join(parts, ",")
}

// CreateBill stores a new order with its reports and parameters.
func (s *Store) CreateBill(ctx context.Context, labID int64, b callout.Bill, idem *callout.Idempotency) (callout.OrderCreated, error) {
	out := callout.OrderCreated{LabBillID: b.LabBillID, Reports: []callout.CreatedReport{}}
	reportRows, err := s.reportRows(b.Reports)
	if err != nil {
		return out, err
	}
	paramRows, err := parameterRows(b.Reports)
	if err != nil {
		return out, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		patientID, err := upsertPatient(ctx, tx, labID, b.Patient.MRN, "", b.Patient.BirthDate, b.CreatedAt)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `
			INSERT INTO bills (lab_id, lab_bill_id, accession_number,
			    patient_name, patient_email, patient_fax, patient_phone,
			    referral_name, referral_email, referral_fax, referral_phone,
			    organization_name, organization_email, organization_fax, organization_phone, created_at,
			    patient_class, patient_id, patient_mrn, patient_birth_date)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			RETURNING id`,
			labID, b.LabBillID, b.AccessionNumber,
			b.Patient.Name, b.Patient.Email, b.Patient.Fax, b.Patient.Phone,
			b.Referral.Name, b.Referral.Email, b.Referral.Fax, b.Referral.Phone,
			b.Organization.Name, b.Organization.Email, b.Organization.Fax, b.Organization.Phone, b.CreatedAt,
			b.PatientClass, patientID, b.Patient.MRN, b.Patient.BirthDate,
		).Scan(&out.ID)
		if isUnique(err) {
			return callout.Errorf(callout.KindConflict, "Order ID %s already exists in this lab", b.LabBillID)
		}
		if err != nil {
			return fmt.Errorf("insert bill %s: %w", b.LabBillID, err)
		}

		ids, err := s.insertReports(ctx, tx, labID, out.ID, reportRows, len(b.Reports))
		if err != nil {
			return err
		}
		for i, r := range b.Reports {
			b.Reports[i].ID = ids[r.TestID]
			out.Reports = append(out.Reports, callout.CreatedReport{ID: ids[r.TestID], TestID: r.TestID, TestName: r.TestName, State: r.State})
		}
		if err := s.insertParameters(ctx, tx, out.ID, paramRows); err != nil {
			return err
		}
		if s.Jobs != nil {
			if err := s.Jobs.EnqueueIndex(ctx, tx, labID, out.ID); err != nil {
				return fmt.Errorf("enqueue index sync of bill %s: %w", b.LabBillID, err)
			}
		}
		if idem == nil {
			return nil
		}
		body, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return remember(ctx, tx, labID, idem, 201, body)
	})
	return out, err
}

const billColumns = `b.id, b.lab_id, b.lab_bill_id, b.accession_number,
	b.patient_name, b.patient_email, b.patient_fax, b.patient_phone,
	b.referral_name, b.referral_email, b.referral_fax, b.referral_phone,
	b.organization_name, b.organization_email, b.organization_fax, b.organization_phone, b.created_at,
	b.patient_class, COALESCE(b.patient_id, 0), b.patient_mrn, b.patient_birth_date`

func billDest(b *callout.Bill) []any {
	return []any{&b.ID, &b.LabID, &b.LabBillID, &b.AccessionNumber,
		&b.Patient.Name, &b.Patient.Email, &b.Patient.Fax, &b.Patient.Phone,
		&b.Referral.Name, &b.Referral.Email, &b.Referral.Fax, &b.Referral.Phone,
		&b.Organization.Name, &b.Organization.Email, &b.Organization.Fax, &b.Organization.Phone, &b.CreatedAt,
		&b.PatientClass, &b.PatientID, &b.Patient.MRN, &b.Patient.BirthDate}
}

// upsertPatient returns the id of the lab's patient with the MRN, creating
// it, or nil for no MRN. A non-empty authority (PID-3.4) or birth date
// replaces the one kept. One statement, so two orders of a new MRN
// arriving at once still share one patient.
func upsertPatient(ctx context.Context, tx *sql.Tx, labID int64, mrn, authority, birthDate string, now time.Time) (*int64, error) {
	if mrn == "" {
		return nil, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO patients (lab_id, mrn, assigning_authority, birth_date, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (lab_id, mrn) DO UPDATE SET
		    assigning_authority = CASE WHEN excluded.assigning_authority = '' THEN patients.assigning_authority ELSE excluded.assigning_authority END,
		    birth_date = CASE WHEN excluded.birth_date = '' THEN patients.birth_date ELSE excluded.birth_date END
		RETURNING id`, labID, mrn, authority, birthDate, now).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("find or create the patient of an MRN: %w", err)
	}
	return &id, nil
}

func billNotFound(billID int64) error {
	// The same answer whether the order does not exist or belongs to
	// another lab: a caller must not learn which.
	return callout.Errorf(callout.KindNotFound, "order %d not found", billID)
}

// loadReports reads every report of a bill with its parameters in two
// queries, however many reports the bill has.
func loadReports(ctx context.Context, q queryer, billID int64) ([]callout.Report, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT id, bill_id, test_id, test_name, department, dismissed, sample_collected,
		       critical_values, resulted_at, last_updated, result_status, collected_at
		FROM lab_reports WHERE bill_id = $1 ORDER BY id`, billID)
	if err != nil {
		return nil, fmt.Errorf("load reports of bill %d: %w", billID, err)
	}
	var reports []callout.Report
	index := map[int64]int{}
	for rows.Next() {
		var r callout.Report
		var state int
		if err := rows.Scan(&r.ID, &r.BillID, &r.TestID, &r.TestName, &r.Department, &r.Dismissed,
			&r.SampleCollected, &state, &r.ResultedAt, &r.LastUpdated, &r.ResultStatus, &r.CollectedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load reports of bill %d: %w", billID, err)
		}
		r.State = callout.State(state)
		r.Parameters = []callout.Parameter{}
		r.ResultedAt, r.LastUpdated = r.ResultedAt.UTC(), r.LastUpdated.UTC()
		if r.CollectedAt != nil {
			c := r.CollectedAt.UTC()
			r.CollectedAt = &c
		}
		index[r.ID] = len(reports)
		reports = append(reports, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load reports of bill %d: %w", billID, err)
	}

	rows, err = q.QueryContext(ctx, `
		SELECT id, lab_report_id, name, value, unit, normal_low, normal_high, critical_low, critical_high, flag,
		       reference_range_text
		FROM report_parameters WHERE bill_id = $1 ORDER BY lab_report_id, position`, billID)
	if err != nil {
		return nil, fmt.Errorf("load parameters of bill %d: %w", billID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p callout.Parameter
		var rid int64
		if err := rows.Scan(&p.ID, &rid, &p.Name, &p.Value, &p.Unit, &p.NormalLow, &p.NormalHigh,
			&p.CriticalLow, &p.CriticalHigh, &p.Flag, &p.ReferenceRangeText); err != nil {
			return nil, fmt.Errorf("load parameters of bill %d: %w", billID, err)
		}
		if i, ok := index[rid]; ok {
			reports[i].Parameters = append(reports[i].Parameters, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load parameters of bill %d: %w", billID, err)
	}
	return reports, nil
}

// Bill returns an order of the lab with its reports and parameters.
func (s *Store) Bill(ctx context.Context, labID, billID int64) (callout.Bill, error) {
	var b callout.Bill
	err := s.DB.QueryRowContext(ctx, `SELECT `+billColumns+` FROM bills b WHERE b.id = $1 AND b.lab_id = $2`,
		billID, labID).Scan(billDest(&b)...)
	if errors.Is(err, sql.ErrNoRows) {
		return b, billNotFound(billID)
	}
	if err != nil {
		return b, fmt.Errorf("load bill %d: %w", billID, err)
	}
	b.CreatedAt = b.CreatedAt.UTC()
	b.Reports, err = loadReports(ctx, s.DB, billID)
	return b, err
}

const recordColumns = `id, bill_id, lab_report_id, status, methods, recipients, comment, notified_person,
	read_back, notify_to_others, created_by, created_at, meta, snapshot, outcome, called_at, back_entry_reason`

func scanRecord(sc interface{ Scan(...any) error }) (callout.Record, error) {
	var r callout.Record
	var methods, recipients, snapshot string
	var others, meta sql.NullString
	var reportID sql.NullInt64
	var calledAt sql.NullTime
	err := sc.Scan(&r.ID, &r.BillID, &reportID, &r.Status, &methods, &recipients, &r.Comment, &r.NotifiedPerson,
		&r.ReadBack, &others, &r.CreatedBy, &r.CreatedAt, &meta, &snapshot, &r.Outcome, &calledAt, &r.BackEntryReason)
	if err != nil {
		return r, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	r.CalledAt = r.CreatedAt
	if calledAt.Valid {
		r.CalledAt = calledAt.Time.UTC()
	}
	if reportID.Valid {
		r.LabReportID = &reportID.Int64
	}
	for _, j := range []struct {
		src string
		dst any
	}{{methods, &r.Methods}, {recipients, &r.Recipients}, {snapshot, &r.Snapshot}, {others.String, &r.NotifyToOthers}, {meta.String, &r.Meta}} {
		if j.src == "" {
			continue
		}
		if err := json.Unmarshal([]byte(j.src), j.dst); err != nil {
			return r, fmt.Errorf("decode callout record %d: %w", r.ID, err)
		}
	}
	return r, nil
}

// Draft returns the order's draft record, or nil.
func (s *Store) Draft(ctx context.Context, labID, billID int64) (*callout.Record, error) {
	r, err := scanRecord(s.DB.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM critical_callouts
		WHERE lab_id = $1 AND bill_id = $2 AND lab_report_id IS NULL`, labID, billID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load draft of bill %d: %w", billID, err)
	}
	return &r, nil
}

// Records returns the order's callout records, oldest first.
func (s *Store) Records(ctx context.Context, labID, billID int64) ([]callout.Record, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+recordColumns+` FROM critical_callouts
		WHERE lab_id = $1 AND bill_id = $2 ORDER BY id`, labID, billID)
	if err != nil {
		return nil, fmt.Errorf("load callouts of bill %d: %w", billID, err)
	}
	defer rows.Close()
	out := []callout.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("load callouts of bill %d: %w", billID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Activity returns the lab's activity entries, newest first.
func (s *Store) Activity(ctx context.Context, labID int64, f callout.ActivityFilter) ([]callout.Activity, error) {
	q := `SELECT id, bill_id, category_id, user_name, created_at, message, data FROM activity_log WHERE lab_id = $1`
	args := []any{labID}
	if f.BillID != nil {
		q += ` AND bill_id = $2`
		args = append(args, *f.BillID)
	}
	q += ` ORDER BY id DESC LIMIT ` + strconv.Itoa(f.Limit)
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load activity: %w", err)
	}
	defer rows.Close()
	out := []callout.Activity{}
	for rows.Next() {
		var a callout.Activity
		var billID sql.NullInt64
		var data string
		if err := rows.Scan(&a.ID, &billID, &a.CategoryID, &a.User, &a.CreatedAt, &a.Message, &data); err != nil {
			return nil, fmt.Errorf("load activity: %w", err)
		}
		if billID.Valid {
			a.BillID = &billID.Int64
		}
		a.CreatedAt = a.CreatedAt.UTC()
		a.Data = json.RawMessage(data)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Worklist returns the lab's reports in the filter's states, oldest result
// first, never dismissed or uncollected ones.
//
// Each state is one ordered range of lab_reports_worklist (lab_id,
// critical_values, resulted_at, id): every branch of the UNION ALL reads at
// most f.Limit rows of its state from the cursor on, in index order, and
// only the merged page is sorted and joined to its orders. The cursor is a
// row-value comparison, which both planners turn into an index range; the
// equivalent OR of two conditions is not. So a page costs its page however
// much history the lab keeps.
func (s *Store) Worklist(ctx context.Context, labID int64, f callout.WorklistFilter) ([]callout.WorklistItem, error) {
	args := []any{labID, false, true}
	common := ` r.lab_id = $1 AND r.dismissed = $2 AND r.sample_collected = $3`
	if len(f.Departments) > 0 {
		common += ` AND r.department IN (` + list(len(f.Departments), len(args)+1) + `)`
		for _, d := range f.Departments {
			args = append(args, d)
		}
	}
	if f.After != nil {
		n := len(args)
		common += fmt.Sprintf(` AND (r.resulted_at, r.id) > ($%d, $%d)`, n+1, n+2)
		args = append(args, f.After.ResultedAt, f.After.ID)
	}
	limit := strconv.Itoa(f.Limit)
	branches := make([]string, 0, len(f.States))
	for i, st := range f.States {
		args = append(args, int(st))
		branches = append(branches, `SELECT * FROM (SELECT r.id, r.bill_id, r.test_id, r.test_name, r.department,
			    r.critical_values, r.resulted_at, r.last_updated
			FROM lab_reports r WHERE`+common+` AND r.critical_values = $`+strconv.Itoa(len(args))+`
			ORDER BY r.resulted_at, r.id LIMIT `+limit+`) s`+strconv.Itoa(i))
	}
	rows, err := s.DB.QueryContext(ctx, `
		SELECT w.id, w.bill_id, b.lab_bill_id, b.patient_name, b.referral_name, w.test_id, w.test_name,
		       w.department, w.critical_values, w.resulted_at, w.last_updated
		FROM (`+strings.Join(branches, "\n\t\tUNION ALL ")+`) w JOIN bills b ON b.id = w.bill_id
		ORDER BY w.resulted_at, w.id LIMIT `+limit, args...)
	if err != nil {
		return nil, fmt.Errorf("load worklist reports: %w", err)
	}
	return scanWorklistItems(rows)
}

// BillRef names an order of a lab.
type BillRef struct{ LabID, BillID int64 }

// AllBills lists every order of every lab, oldest first, for rebuilding the
// search index.
func (s *Store) AllBills(ctx context.Context) ([]BillRef, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT lab_id, id FROM bills ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list bills: %w", err)
	}
	defer rows.Close()
	var out []BillRef
	for rows.Next() {
		var r BillRef
		if err := rows.Scan(&r.LabID, &r.BillID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
