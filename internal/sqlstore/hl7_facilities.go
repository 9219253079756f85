package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"callout/internal/callout"
)

// SetHL7Facilities sets the sending facilities a lab accepts, each with the
// certificate subject it is bound to (replacing the lab's list), and its
// HL7 order numbering ("placer", "filler" or "auto"), in one transaction: a facility
// is never accepted unbound on its way to being bound. A facility belongs to
// one lab: naming another lab's facility is a conflict.
func (s *Store) SetHL7Facilities(ctx context.Context, labID int64, facilities []callout.HL7Facility, numbering string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE labs SET hl7_order_number = $2 WHERE id = $1`, labID, numbering)
		if err != nil {
			return fmt.Errorf("set HL7 order number of lab %d: %w", labID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return callout.Errorf(callout.KindNotFound, "lab %d does not exist", labID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM lab_hl7_facilities WHERE lab_id = $1`, labID); err != nil {
			return fmt.Errorf("clear facilities of lab %d: %w", labID, err)
		}
		for _, f := range facilities {
			_, err := tx.ExecContext(ctx, `INSERT INTO lab_hl7_facilities (facility, lab_id, cert_subject) VALUES ($1, $2, $3)`,
				f.Name, labID, f.CertSubject)
			if isUnique(err) {
				return callout.Errorf(callout.KindConflict, "facility %q already belongs to another lab", f.Name)
			}
			if err != nil {
				return fmt.Errorf("add facility %q to lab %d: %w", f.Name, labID, err)
			}
		}
		return nil
	})
}

// LabHL7Facilities returns the facilities a lab accepts with the
// certificate subjects they are bound to, by name.
func (s *Store) LabHL7Facilities(ctx context.Context, labID int64) ([]callout.HL7Facility, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT facility, cert_subject FROM lab_hl7_facilities WHERE lab_id = $1 ORDER BY facility`, labID)
	if err != nil {
		return nil, fmt.Errorf("load facilities of lab %d: %w", labID, err)
	}
	defer rows.Close()
	out := []callout.HL7Facility{}
	for rows.Next() {
		var f callout.HL7Facility
		if err := rows.Scan(&f.Name, &f.CertSubject); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// FacilityCertSubject returns the certificate subject a sending facility is
// bound to: "" when it is not bound, or no lab accepts it.
func (s *Store) FacilityCertSubject(ctx context.Context, facility string) (string, error) {
	var subject string
	err := s.DB.QueryRowContext(ctx, `SELECT cert_subject FROM lab_hl7_facilities WHERE facility = $1`, facility).Scan(&subject)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up the certificate of facility %q: %w", facility, err)
	}
	return subject, nil
}
