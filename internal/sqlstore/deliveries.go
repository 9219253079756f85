package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"callout/internal/callout"
)

// Enqueuer puts background work in the queue inside the caller's
// transaction, so that the work exists if and only if the transaction
// commits. The job queue implements it; the store only calls it.
type Enqueuer interface {
	// EnqueueCallout enqueues what a committed callout needs: the order's
	// search-index sync and one job per delivery.
	EnqueueCallout(ctx context.Context, tx *sql.Tx, labID, billID int64, deliveryIDs []int64) error
	// EnqueueDelivery enqueues one delivery again.
	EnqueueDelivery(ctx context.Context, tx *sql.Tx, labID, deliveryID int64) error
	// EnqueueIndex enqueues the search-index sync of an order whose results changed.
	EnqueueIndex(ctx context.Context, tx *sql.Tx, labID, billID int64) error
}

// insertDeliveries stores the planned copies of a done callout, each
// belonging to every record the callout wrote.
func insertDeliveries(ctx context.Context, tx *sql.Tx, labID, billID int64, ds []callout.Delivery, calloutIDs []int64, at time.Time) ([]int64, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	ids, _ := json.Marshal(calloutIDs)
	args := make([]any, 0, len(ds)*10)
	for _, d := range ds {
		args = append(args, labID, billID, string(ids), d.Channel, d.Recipient, d.RecipientName, d.Address, callout.DeliveryQueued, at, at)
	}
	rows, err := tx.QueryContext(ctx, `
		INSERT INTO deliveries (lab_id, bill_id, callout_ids, channel, recipient, recipient_name, address, status, created_at, updated_at)
		VALUES `+placeholders(len(ds), 10, 1)+` RETURNING id`, args...)
	if err != nil {
		return nil, fmt.Errorf("insert deliveries of bill %d: %w", billID, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

const deliveryColumns = `id, bill_id, callout_ids, channel, recipient, recipient_name, address, message_id,
	status, attempts, last_error, created_at, sent_at`

func scanDelivery(sc interface{ Scan(...any) error }) (callout.Delivery, error) {
	var d callout.Delivery
	var ids string
	var sent sql.NullTime
	if err := sc.Scan(&d.ID, &d.BillID, &ids, &d.Channel, &d.Recipient, &d.RecipientName, &d.Address, &d.MessageID,
		&d.Status, &d.Attempts, &d.LastError, &d.CreatedAt, &sent); err != nil {
		return d, err
	}
	d.CreatedAt = d.CreatedAt.UTC()
	if sent.Valid {
		t := sent.Time.UTC()
		d.SentAt = &t
	}
	if err := json.Unmarshal([]byte(ids), &d.CalloutIDs); err != nil {
		return d, fmt.Errorf("decode callout ids of delivery %d: %w", d.ID, err)
	}
	return d, nil
}

// Deliveries lists a lab's deliveries: of one order oldest first, or in one
// status newest first.
func (s *Store) Deliveries(ctx context.Context, labID int64, f callout.DeliveryFilter) ([]callout.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM deliveries WHERE lab_id = $1`
	args := []any{labID}
	order := ` ORDER BY id`
	if f.ID != nil {
		args = append(args, *f.ID)
		q += ` AND id = $` + strconv.Itoa(len(args))
	}
	if f.BillID != nil {
		args = append(args, *f.BillID)
		q += ` AND bill_id = $` + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		q += ` AND status = $` + strconv.Itoa(len(args))
		order = ` ORDER BY id DESC`
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	rows, err := s.DB.QueryContext(ctx, q+order+` LIMIT `+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("load deliveries: %w", err)
	}
	defer rows.Close()
	out := []callout.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("load deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func deliveryNotFound(id int64) error {
	return callout.Errorf(callout.KindNotFound, "delivery %d not found", id)
}

// RetryDelivery puts a failed delivery back in the queue with a new job.
func (s *Store) RetryDelivery(ctx context.Context, labID, id int64, user string, at time.Time) (callout.Delivery, error) {
	var d callout.Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
			WHERE id = $1 AND lab_id = $2`+s.forUpdate("deliveries"), id, labID))
		if errors.Is(err, sql.ErrNoRows) {
			return deliveryNotFound(id)
		}
		if err != nil {
			return fmt.Errorf("load delivery %d: %w", id, err)
		}
		if d.Status != callout.DeliveryFailed {
			return callout.Errorf(callout.KindConflict, "delivery %d is %s, not failed: only a failed delivery can be retried", id, d.Status)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $2, updated_at = $3 WHERE id = $1`,
			id, callout.DeliveryQueued, at); err != nil {
			return fmt.Errorf("requeue delivery %d: %w", id, err)
		}
		d.Status = callout.DeliveryQueued
		msg := fmt.Sprintf("Delivery retried by - %s, %s to %s (%s)", user, deliveryLabel(d.Channel), d.Recipient, d.Address)
		if err := insertActivity(ctx, tx, labID, deliveryActivity(d, user, at, msg, map[string]any{"retry": true})); err != nil {
			return err
		}
		if s.Jobs != nil {
			return s.Jobs.EnqueueDelivery(ctx, tx, labID, id)
		}
		return nil
	})
	return d, err
}

func deliveryLabel(channel string) string {
	if channel == callout.ChannelFax {
		return "Fax"
	}
	return "Email"
}

// EmailTemplate returns the lab's own template, or "".
func (s *Store) EmailTemplate(ctx context.Context, labID int64) (string, error) {
	var src sql.NullString
	err := s.DB.QueryRowContext(ctx, `SELECT email_template FROM labs WHERE id = $1`, labID).Scan(&src)
	if errors.Is(err, sql.ErrNoRows) {
		return "", callout.Errorf(callout.KindNotFound, "lab %d does not exist", labID)
	}
	if err != nil {
		return "", fmt.Errorf("load email template of lab %d: %w", labID, err)
	}
	return src.String, nil
}

// SetEmailTemplate stores the lab's template; "" restores the built-in one.
func (s *Store) SetEmailTemplate(ctx context.Context, labID int64, src string) error {
	var v any
	if src != "" {
		v = src
	}
	_, err := s.DB.ExecContext(ctx, `UPDATE labs SET email_template = $2 WHERE id = $1`, labID, v)
	if err != nil {
		return fmt.Errorf("store email template of lab %d: %w", labID, err)
	}
	return nil
}
