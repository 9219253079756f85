package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

// Callout runs one callout as one transaction: lock the order, read it in
// three queries (order with lab settings, reports, parameters), let decide
// make the plan, then write it in six statements (report states, draft
// removal, records, deliveries, attempt log, activity). The statement count does not grow with the
// number of reports.
func (s *Store) Callout(ctx context.Context, labID, billID int64, decide func(callout.Settings, callout.Bill) (callout.Plan, error), idem *callout.Idempotency) (callout.CalloutResult, error) {
	var res callout.CalloutResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Reads. The row lock on the order serializes callouts on it, so the
		// states read here are the ones this callout changes.
		var b callout.Bill
		var set callout.Settings
		sc := settingsScan{set: &set}
		dest := append(billDest(&b), sc.dest()...)
		err := tx.QueryRowContext(ctx, `
			SELECT `+billColumns+`, `+labSettingsColumns+`
			FROM bills b JOIN labs l ON l.id = b.lab_id
			WHERE b.id = $1 AND b.lab_id = $2`+s.forUpdate("b"), billID, labID).Scan(dest...)
		if err == nil {
			err = sc.finish()
		}
		if errors.Is(err, sql.ErrNoRows) {
			return billNotFound(billID)
		}
		if err != nil {
			return fmt.Errorf("lock bill %d: %w", billID, err)
		}
		if b.Reports, err = loadReports(ctx, tx, billID); err != nil {
			return err
		}

		plan, err := decide(set, b)
		if err != nil {
			return err
		}

		// Writes.
		res, err = s.writePlan(ctx, tx, labID, plan)
		if err != nil || idem == nil {
			return err
		}
		body, err := json.Marshal(res)
		if err != nil {
			return err
		}
		return remember(ctx, tx, labID, idem, 201, body)
	})
	return res, err
}

func (s *Store) writePlan(ctx context.Context, tx *sql.Tx, labID int64, plan callout.Plan) (callout.CalloutResult, error) {
	res := callout.CalloutResult{Status: plan.Status, Callouts: []callout.CreatedRecord{}, Reports: []callout.ChangedReport{}}
	billID := *plan.Activity.BillID

	// One UPDATE sets every written report: the selected ones to the new
	// state, stale attempts back to pending. Its text must not change with
	// the order's size or the ids: PostgreSQL prepares each distinct text
	// once per connection, so the id lists are bound (see idIn) and the
	// states, our own integers, are literals.
	if len(plan.Transitions) > 0 {
		byState := map[callout.State][]int64{}
		var order []callout.State
		all := make([]int64, 0, len(plan.Transitions))
		for _, t := range plan.Transitions {
			if _, ok := byState[t.To]; !ok {
				order = append(order, t.To)
			}
			byState[t.To] = append(byState[t.To], t.LabReportID)
			all = append(all, t.LabReportID)
			res.Reports = append(res.Reports, callout.ChangedReport{ID: t.LabReportID, State: t.To, LastUpdated: plan.At})
		}
		args := []any{plan.At, billID}
		cases := ""
		for _, st := range order {
			cases += " WHEN " + s.idIn("id", byState[st], &args) + " THEN " + strconv.Itoa(int(st))
		}
		q := `UPDATE lab_reports SET critical_values = CASE` + cases + ` END, last_updated = $1
		      WHERE bill_id = $2 AND ` + s.idIn("id", all, &args)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return res, fmt.Errorf("update report states of bill %d: %w", billID, err)
		}
	}

	// Every submit replaces the order's draft: an attempt writes a new one
	// below, a done callout leaves none.
	if _, err := tx.ExecContext(ctx, `DELETE FROM critical_callouts WHERE bill_id = $1 AND lab_report_id IS NULL`, billID); err != nil {
		return res, fmt.Errorf("remove draft of bill %d: %w", billID, err)
	}

	// The records of one callout share everything but the report and its
	// snapshot: those values are bound once, and each row adds one parameter.
	base := plan.Records[0]
	methods, _ := json.Marshal(base.Methods)
	recipients, _ := json.Marshal(base.Recipients)
	var others any
	if base.NotifyToOthers != nil {
		b, _ := json.Marshal(base.NotifyToOthers)
		others = string(b)
	}
	args := []any{labID, base.BillID, base.Status, string(methods), string(recipients), base.Comment,
		base.NotifiedPerson, base.ReadBack, others, base.CreatedBy, base.CreatedAt, base.Outcome, base.CalledAt, base.BackEntryReason}
	values := make([]string, 0, len(plan.Records))
	for _, r := range plan.Records {
		var reportID any
		if r.LabReportID != nil {
			reportID = *r.LabReportID
		}
		var meta any
		if r.Meta != nil {
			b, _ := json.Marshal(r.Meta)
			meta = string(b)
		}
		snapshot, _ := json.Marshal(r.Snapshot)
		args = append(args, reportID, meta, string(snapshot))
		n := len(args)
		values = append(values, fmt.Sprintf("($1, $2, CAST($%d AS BIGINT), $3, $4, $5, $6, $7, $8, $9, $10, $11, $%d, $%d, $12, $13, $14)", n-2, n-1, n))
	}
	rows, err := tx.QueryContext(ctx, `
		INSERT INTO critical_callouts (lab_id, bill_id, lab_report_id, status, methods, recipients, comment,
		    notified_person, read_back, notify_to_others, created_by, created_at, meta, snapshot, outcome, called_at, back_entry_reason)
		VALUES `+strings.Join(values, ", ")+`
		RETURNING id, lab_report_id`, args...)
	if err != nil {
		return res, fmt.Errorf("insert callout records of bill %d: %w", billID, err)
	}
	for rows.Next() {
		var c callout.CreatedRecord
		var rid sql.NullInt64
		if err := rows.Scan(&c.ID, &rid); err != nil {
			rows.Close()
			return res, err
		}
		if rid.Valid {
			c.LabReportID = &rid.Int64
		}
		res.Callouts = append(res.Callouts, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("insert callout records of bill %d: %w", billID, err)
	}
	// RETURNING promises no order; answer in id order, the order of creation.
	slices.SortFunc(res.Callouts, func(a, b callout.CreatedRecord) int { return cmp.Compare(a.ID, b.ID) })

	recordIDs := make([]int64, len(res.Callouts))
	for i, c := range res.Callouts {
		recordIDs[i] = c.ID
	}
	deliveryIDs, err := insertDeliveries(ctx, tx, labID, billID, plan.Deliveries, recordIDs, plan.At)
	if err != nil {
		return res, err
	}

	if err := insertAttempts(ctx, tx, labID, plan.Attempts); err != nil {
		return res, err
	}
	if err := insertActivity(ctx, tx, labID, plan.Activity); err != nil {
		return res, err
	}
	// The side effects are jobs in this same transaction: they run only if
	// the callout commits, and always do then.
	if s.Jobs != nil {
		if err := s.Jobs.EnqueueCallout(ctx, tx, labID, billID, deliveryIDs); err != nil {
			return res, fmt.Errorf("enqueue side effects of bill %d: %w", billID, err)
		}
	}
	return res, nil
}

// insertActivity writes one entry of the lab's activity log.
func insertActivity(ctx context.Context, tx *sql.Tx, labID int64, a callout.Activity) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO activity_log (lab_id, bill_id, category_id, user_name, created_at, message, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		labID, a.BillID, a.CategoryID, a.User, a.CreatedAt, a.Message, string(a.Data))
	if err != nil {
		return fmt.Errorf("insert activity (category %d): %w", a.CategoryID, err)
	}
	return nil
}

// deliveryActivity is the activity entry of an event of delivery d.
func deliveryActivity(d callout.Delivery, user string, at time.Time, message string, data map[string]any) callout.Activity {
	data["bill_id"], data["delivery_id"] = d.BillID, d.ID
	data["channel"], data["recipient"], data["address"] = d.Channel, d.Recipient, d.Address
	raw, _ := json.Marshal(data) // strings and numbers only
	return callout.Activity{BillID: &d.BillID, CategoryID: callout.CategoryDelivery, User: user,
		CreatedAt: at, Message: message, Data: raw}
}
