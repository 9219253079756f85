package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"callout/internal/callout"
)

// LabForFacility returns the lab that accepts the sending facility's messages.
func (s *Store) LabForFacility(ctx context.Context, facility string) (int64, string, error) {
	var labID int64
	var number string
	err := s.DB.QueryRowContext(ctx, `
		SELECT f.lab_id, l.hl7_order_number FROM lab_hl7_facilities f JOIN labs l ON l.id = f.lab_id
		WHERE f.facility = $1`, facility).Scan(&labID, &number)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", callout.Errorf(callout.KindNotFound, "no lab accepts messages from facility %q", facility)
	}
	if err != nil {
		return 0, "", fmt.Errorf("look up facility %q: %w", facility, err)
	}
	return labID, number, nil
}

// SetHL7 sets the sending facilities a lab accepts, none bound to a
// certificate, numbering orders by the filler number or else the placer
// number; see SetHL7Facilities.
func (s *Store) SetHL7(ctx context.Context, labID int64, facilities []string, useFiller bool) error {
	fs := make([]callout.HL7Facility, len(facilities))
	for i, f := range facilities {
		fs[i].Name = f
	}
	numbering := "placer"
	if useFiller {
		numbering = "filler"
	}
	return s.SetHL7Facilities(ctx, labID, fs, numbering)
}

// LabHL7Numbering returns the lab's HL7 order numbering: "placer",
// "filler" or "auto".
func (s *Store) LabHL7Numbering(ctx context.Context, labID int64) (string, error) {
	var number string
	err := s.DB.QueryRowContext(ctx, `SELECT hl7_order_number FROM labs WHERE id = $1`, labID).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		return "", callout.Errorf(callout.KindNotFound, "lab %d does not exist", labID)
	}
	if err != nil {
		return "", fmt.Errorf("load HL7 settings of lab %d: %w", labID, err)
	}
	return number, nil
}

// CriticalLimits returns a lab's critical limits, by name and unit.
func (s *Store) CriticalLimits(ctx context.Context, labID int64) ([]callout.CriticalLimit, error) {
	rows, err := s.DB.QueryContext(ctx, `
		SELECT name, unit, critical_low, critical_high FROM lab_critical_limits
		WHERE lab_id = $1 ORDER BY name, unit`, labID)
	if err != nil {
		return nil, fmt.Errorf("load critical limits of lab %d: %w", labID, err)
	}
	defer rows.Close()
	out := []callout.CriticalLimit{}
	for rows.Next() {
		var l callout.CriticalLimit
		if err := rows.Scan(&l.Name, &l.Unit, &l.CriticalLow, &l.CriticalHigh); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// SetCriticalLimits replaces a lab's critical limits.
func (s *Store) SetCriticalLimits(ctx context.Context, labID int64, ls []callout.CriticalLimit) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lab_critical_limits WHERE lab_id = $1`, labID); err != nil {
			return fmt.Errorf("clear critical limits of lab %d: %w", labID, err)
		}
		if len(ls) == 0 {
			return nil
		}
		args := make([]any, 0, len(ls)*5)
		for _, l := range ls {
			args = append(args, labID, strings.TrimSpace(l.Name), strings.TrimSpace(l.Unit), l.CriticalLow, l.CriticalHigh)
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO lab_critical_limits (lab_id, name, unit, critical_low, critical_high)
			VALUES `+placeholders(len(ls), 5, 1), args...); err != nil {
			return fmt.Errorf("store critical limits of lab %d: %w", labID, err)
		}
		return nil
	})
}

// FindBills returns the lab's orders with the given Order ID (at most one,
// as Order IDs are unique in a lab).
func (s *Store) FindBills(ctx context.Context, labID int64, labBillID string) ([]callout.Bill, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+billColumns+` FROM bills b WHERE b.lab_id = $1 AND b.lab_bill_id = $2`, labID, labBillID)
	if err != nil {
		return nil, fmt.Errorf("find bills %q: %w", labBillID, err)
	}
	defer rows.Close()
	out := []callout.Bill{}
	for rows.Next() {
		var b callout.Bill
		if err := rows.Scan(billDest(&b)...); err != nil {
			return nil, err
		}
		b.CreatedAt = b.CreatedAt.UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

// StoreResults stores a result message in one transaction. A message the
// facility sent before (same control id) is not processed again.
func (s *Store) StoreResults(ctx context.Context, labID int64, m callout.ResultMessage,
	plan func(existing []callout.Report, in callout.IncomingOrder) ([]callout.ReportUpsert, error)) (bool, []int64, error) {
	var bills []int64
	duplicate := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM hl7_messages WHERE facility = $1 AND control_id = $2`,
			m.Facility, m.ControlID).Scan(&one)
		if err == nil {
			duplicate = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up message %s: %w", m.ControlID, err)
		}
		now := callout.Now()
		for _, o := range m.Orders {
			billID, created, err := s.upsertBill(ctx, tx, labID, o, now)
			if err != nil {
				return err
			}
			bills = append(bills, billID)
			var existing []callout.Report
			if !created { // a new order has no reports to compare with
				if existing, err = loadReports(ctx, tx, billID); err != nil {
					return err
				}
			}
			// New reports go in one statement, parameters in another (see
			// bulk.go); an existing report is updated and its old results
			// deleted, all of them in one statement.
			var written, added []callout.Report
			var replaced []int64
			ups, err := plan(existing, o)
			if err != nil {
				return err
			}
			for _, up := range ups {
				r := up.Report
				if up.New {
					added = append(added, r)
				} else {
					if _, err := tx.ExecContext(ctx, `
						UPDATE lab_reports SET test_name = $2, department = $3, sample_collected = $4,
						       critical_values = $5, resulted_at = $6, last_updated = $7, result_status = $8,
						       collected_at = $9
						WHERE id = $1`, r.ID, r.TestName, r.Department, r.SampleCollected, int(r.State), r.ResultedAt, r.LastUpdated, r.ResultStatus,
						r.CollectedAt); err != nil {
						return fmt.Errorf("update report %s of order %s: %w", r.TestID, o.LabBillID, err)
					}
					replaced = append(replaced, r.ID)
				}
				written = append(written, r)
			}
			if len(replaced) > 0 {
				args := []any{}
				if _, err := tx.ExecContext(ctx, `DELETE FROM report_parameters WHERE `+s.idIn("lab_report_id", replaced, &args), args...); err != nil {
					return fmt.Errorf("replace results of order %s: %w", o.LabBillID, err)
				}
			}
			rows, err := s.reportRows(added)
			if err != nil {
				return err
			}
			if _, err := s.insertReports(ctx, tx, labID, billID, rows, len(added)); err != nil {
				return fmt.Errorf("order %s: %w", o.LabBillID, err)
			}
			if rows, err = parameterRows(written); err != nil {
				return err
			}
			if err := s.insertParameters(ctx, tx, billID, rows); err != nil {
				return err
			}
			if s.Jobs != nil {
				if err := s.Jobs.EnqueueIndex(ctx, tx, labID, billID); err != nil {
					return fmt.Errorf("enqueue index sync of order %s: %w", o.LabBillID, err)
				}
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO hl7_messages (facility, control_id, lab_id, received_at) VALUES ($1, $2, $3, $4)`,
			m.Facility, m.ControlID, labID, now)
		if isUnique(err) {
			// The same message arrived twice at once and the other copy won.
			duplicate = true
			return errDuplicate
		}
		if err != nil {
			return fmt.Errorf("record message %s: %w", m.ControlID, err)
		}
		return nil
	})
	if errors.Is(err, errDuplicate) {
		return true, nil, nil
	}
	if duplicate {
		bills = nil
	}
	return duplicate, bills, err
}

var errDuplicate = errors.New("duplicate message")

// upsertBill finds the lab's order by its Order ID, locking it, or creates
// it. Contact fields the message carries fill in or update the order's.
func (s *Store) upsertBill(ctx context.Context, tx *sql.Tx, labID int64, o callout.IncomingOrder, now time.Time) (id int64, created bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT b.id FROM bills b WHERE b.lab_id = $1 AND b.lab_bill_id = $2`+s.forUpdate("b"),
		labID, o.LabBillID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `
			INSERT INTO bills (lab_id, lab_bill_id, accession_number, patient_name, patient_email, patient_phone,
			    referral_name, referral_email, referral_fax, referral_phone, created_at, patient_class)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			labID, o.LabBillID, o.AccessionNumber, o.Patient.Name, o.Patient.Email, o.Patient.Phone,
			o.Referral.Name, o.Referral.Email, o.Referral.Fax, o.Referral.Phone, now, o.PatientClass).Scan(&id)
		if err != nil {
			return 0, false, fmt.Errorf("create order %s: %w", o.LabBillID, err)
		}
		return id, true, setPatient(ctx, tx, labID, id, o, now)
	}
	if err != nil {
		return 0, false, fmt.Errorf("find order %s: %w", o.LabBillID, err)
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE bills SET
		    accession_number = CASE WHEN $2 = '' THEN accession_number ELSE $2 END,
		    patient_name = CASE WHEN $3 = '' THEN patient_name ELSE $3 END,
		    patient_email = CASE WHEN $4 = '' THEN patient_email ELSE $4 END,
		    patient_phone = CASE WHEN $5 = '' THEN patient_phone ELSE $5 END,
		    referral_name = CASE WHEN $6 = '' THEN referral_name ELSE $6 END,
		    patient_class = CASE WHEN $7 = '' THEN patient_class ELSE $7 END
		WHERE id = $1`, id, o.AccessionNumber, o.Patient.Name, o.Patient.Email, o.Patient.Phone, o.Referral.Name, o.PatientClass)
	if err != nil {
		return 0, false, fmt.Errorf("update order %s: %w", o.LabBillID, err)
	}
	return id, false, setPatient(ctx, tx, labID, id, o, now)
}

// setPatient records the patient identity a message gives the order: its
// MRN (and so its patient id) and birth date, each only when the message
// carries one, so a later message without PID-3 keeps what an earlier one
// said.
func setPatient(ctx context.Context, tx *sql.Tx, labID, billID int64, o callout.IncomingOrder, now time.Time) error {
	if o.Patient.MRN == "" && o.Patient.BirthDate == "" {
		return nil
	}
	patientID, err := upsertPatient(ctx, tx, labID, o.Patient.MRN, o.MRNAuthority, o.Patient.BirthDate, now)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE bills SET
		    patient_id = CASE WHEN $2 = '' THEN patient_id ELSE $3 END,
		    patient_mrn = CASE WHEN $2 = '' THEN patient_mrn ELSE $2 END,
		    patient_birth_date = CASE WHEN $4 = '' THEN patient_birth_date ELSE $4 END
		WHERE id = $1`, billID, o.Patient.MRN, patientID, o.Patient.BirthDate)
	if err != nil {
		return fmt.Errorf("set the patient of order %s: %w", o.LabBillID, err)
	}
	return nil
}
