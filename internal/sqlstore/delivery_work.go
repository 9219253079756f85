package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"callout/internal/callout"
)

// DeliveryWork loads a delivery with what it takes to render and send it.
func (s *Store) DeliveryWork(ctx context.Context, id int64) (callout.DeliveryWork, error) {
	var w callout.DeliveryWork
	var tmpl sql.NullString
	var msg callout.Message
	row := s.DB.QueryRowContext(ctx, `
		SELECT d.lab_id, d.id, d.bill_id, d.callout_ids, d.channel, d.recipient, d.recipient_name, d.address,
		       d.message_id, d.status, d.attempts, d.last_error, d.created_at, d.sent_at, d.subject, d.body_html, d.body_text, d.attachment_name, d.attachment,
		       l.name, l.share_comment, l.mandatory_comments, l.hide_patient_name, l.additional_instruction, l.target_minutes, l.email_template
		FROM deliveries d JOIN labs l ON l.id = d.lab_id WHERE d.id = $1`, id)
	var dest []any
	var d callout.Delivery
	var ids string
	var sent sql.NullTime
	dest = append(dest, &w.LabID, &d.ID, &d.BillID, &ids, &d.Channel, &d.Recipient, &d.RecipientName, &d.Address, &d.MessageID,
		&d.Status, &d.Attempts, &d.LastError, &d.CreatedAt, &sent,
		&msg.Subject, &msg.HTML, &msg.Text, &msg.AttachmentName, &msg.Attachment,
		&w.Settings.Name, &w.Settings.ShareComment, &w.Settings.MandatoryComments, &w.Settings.HidePatientName,
		&w.Settings.AdditionalInstruction, &w.Settings.TargetMinutes, &tmpl)
	err := row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return w, deliveryNotFound(id)
	}
	if err != nil {
		return w, fmt.Errorf("load delivery %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(ids), &d.CalloutIDs); err != nil {
		return w, fmt.Errorf("decode delivery %d: %w", id, err)
	}
	if sent.Valid {
		t := sent.Time.UTC()
		d.SentAt = &t
	}
	w.Delivery, w.EmailTemplate = d, tmpl.String
	if d.MessageID != "" {
		// Rendered before: the kept message is all a retry sends.
		msg.MessageID = d.MessageID
		w.Message = &msg
		return w, nil
	}
	if w.Bill, err = s.Bill(ctx, w.LabID, d.BillID); err != nil {
		return w, err
	}
	// Only the delivery's own records: an order called out many times has
	// many, and their snapshots are the largest rows we keep.
	args := []any{w.LabID, d.BillID}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+recordColumns+` FROM critical_callouts
		WHERE lab_id = $1 AND bill_id = $2 AND `+s.idIn("id", d.CalloutIDs, &args)+` ORDER BY id`, args...)
	if err != nil {
		return w, fmt.Errorf("load callouts of delivery %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return w, fmt.Errorf("load callouts of delivery %d: %w", id, err)
		}
		w.Records = append(w.Records, r)
	}
	return w, rows.Err()
}

// SaveMessage keeps the rendered message of a delivery unless one was kept
// before, and returns the one that is kept: a retry after a crash must send
// what the first attempt rendered.
func (s *Store) SaveMessage(ctx context.Context, id int64, m callout.Message) (callout.Message, error) {
	var got string
	err := s.DB.QueryRowContext(ctx, `
		UPDATE deliveries SET message_id = $2, subject = $3, body_html = $4, body_text = $5,
		       attachment_name = $6, attachment = $7
		WHERE id = $1 AND message_id = ''
		RETURNING message_id`,
		id, m.MessageID, m.Subject, m.HTML, m.Text, m.AttachmentName, m.Attachment).Scan(&got)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("store message of delivery %d: %w", id, err)
	}
	// Another attempt rendered it first: send what it kept.
	var kept callout.Message
	err = s.DB.QueryRowContext(ctx, `SELECT message_id, subject, body_html, body_text, attachment_name, attachment
		FROM deliveries WHERE id = $1`, id).Scan(&kept.MessageID, &kept.Subject, &kept.HTML, &kept.Text, &kept.AttachmentName, &kept.Attachment)
	if err != nil {
		return m, fmt.Errorf("load message of delivery %d: %w", id, err)
	}
	return kept, nil
}

// MarkDeliverySent records that the mail server accepted the delivery.
func (s *Store) MarkDeliverySent(ctx context.Context, id int64, attempts int, at time.Time) error {
	_, err := s.DB.ExecContext(ctx, `
		UPDATE deliveries SET status = $2, attempts = $3, last_error = '', sent_at = $4, updated_at = $4
		WHERE id = $1`, id, callout.DeliverySent, attempts, at)
	if err != nil {
		return fmt.Errorf("mark delivery %d sent: %w", id, err)
	}
	return nil
}

// MarkDeliveryFailed records a failed attempt. A final failure also sets the
// status to failed and writes an activity entry, in one transaction: a copy
// that could not be sent must be visible, never silently dropped.
func (s *Store) MarkDeliveryFailed(ctx context.Context, id int64, attempts int, reason string, final bool, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		status := callout.DeliveryQueued
		if final {
			status = callout.DeliveryFailed
		}
		var d callout.Delivery
		var labID int64
		err := tx.QueryRowContext(ctx, `
			UPDATE deliveries SET status = $2, attempts = $3, last_error = $4, updated_at = $5
			WHERE id = $1 AND status <> 'sent'
			RETURNING lab_id, bill_id, channel, recipient, address`,
			id, status, attempts, reason, at).Scan(&labID, &d.BillID, &d.Channel, &d.Recipient, &d.Address)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // sent meanwhile by another attempt: nothing to record
		}
		if err != nil {
			return fmt.Errorf("record failed attempt of delivery %d: %w", id, err)
		}
		if !final {
			return nil
		}
		d.ID = id
		msg := fmt.Sprintf("%s to %s (%s) failed after %d attempts: %s", deliveryLabel(d.Channel), d.Recipient, d.Address, attempts, reason)
		return insertActivity(ctx, tx, labID, deliveryActivity(d, "system", at, msg, map[string]any{"attempts": attempts, "error": reason}))
	})
}
