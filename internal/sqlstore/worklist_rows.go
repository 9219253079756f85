package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"callout/internal/callout"
)

// idList writes our own integer ids as a SQL list; "0" (no row has id 0)
// keeps an empty list valid.
func idList(ids []int64) string {
	out := make([]string, 0, len(ids)+1)
	out = append(out, "0")
	for _, id := range ids {
		out = append(out, strconv.FormatInt(id, 10))
	}
	return strings.Join(out, ",")
}

// WorklistRows reads what the worklist's rows show beyond WorklistOrders —
// the reports' parameters, the referral's phone, failed copies and the
// last done callout — for the given orders and reports of one page, in a
// few statements bounded by the page. It is separate from the worklist
// query on purpose: that one pages, this one only decorates the page.
func (s *Store) WorklistRows(ctx context.Context, labID int64, bills, reports []int64) (callout.WorklistRows, error) {
	out := callout.WorklistRows{Parameters: map[int64][]callout.Parameter{}, ReferralPhone: map[int64]string{},
		FailedDeliveries: map[int64]int{}, LastDone: map[int64]callout.Record{}}
	if len(bills) == 0 {
		return out, nil
	}
	rows, err := s.DB.QueryContext(ctx, `
		SELECT p.lab_report_id, p.name, p.value, p.unit, p.normal_low, p.normal_high, p.critical_low, p.critical_high, p.flag
		FROM report_parameters p JOIN lab_reports r ON r.id = p.lab_report_id
		WHERE r.lab_id = $1 AND p.lab_report_id IN (`+idList(reports)+`)
		ORDER BY p.lab_report_id, p.position LIMIT `+strconv.Itoa(callout.MaxWorklistRowParameters), labID)
	if err != nil {
		return out, fmt.Errorf("worklist parameters: %w", err)
	}
	for rows.Next() {
		var p callout.Parameter
		var rid int64
		if err := rows.Scan(&rid, &p.Name, &p.Value, &p.Unit, &p.NormalLow, &p.NormalHigh, &p.CriticalLow, &p.CriticalHigh, &p.Flag); err != nil {
			rows.Close()
			return out, fmt.Errorf("worklist parameters: %w", err)
		}
		out.Parameters[rid] = append(out.Parameters[rid], p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("worklist parameters: %w", err)
	}

	rows, err = s.DB.QueryContext(ctx, `
		SELECT b.id, b.referral_phone,
		       (SELECT COUNT(*) FROM deliveries d WHERE d.bill_id = b.id AND d.status = 'failed')
		FROM bills b WHERE b.lab_id = $1 AND b.id IN (`+idList(bills)+`)`, labID)
	if err != nil {
		return out, fmt.Errorf("worklist orders: %w", err)
	}
	for rows.Next() {
		var id int64
		var phone string
		var failed int
		if err := rows.Scan(&id, &phone, &failed); err != nil {
			rows.Close()
			return out, fmt.Errorf("worklist orders: %w", err)
		}
		out.ReferralPhone[id] = phone
		if failed > 0 {
			out.FailedDeliveries[id] = failed
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("worklist orders: %w", err)
	}

	// The newest done record of each report; a page has at most a few
	// hundred reports, and each report's records are read newest first.
	rows, err = s.DB.QueryContext(ctx, `SELECT `+recordColumns+` FROM critical_callouts
		WHERE lab_id = $1 AND status = 'done' AND lab_report_id IN (`+idList(reports)+`)
		  AND id IN (SELECT MAX(id) FROM critical_callouts
		             WHERE lab_id = $1 AND status = 'done' AND lab_report_id IN (`+idList(reports)+`)
		             GROUP BY lab_report_id)`, labID)
	if err != nil {
		return out, fmt.Errorf("worklist callouts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return out, fmt.Errorf("worklist callouts: %w", err)
		}
		if cur, ok := out.LastDone[r.BillID]; !ok || r.ID > cur.ID {
			out.LastDone[r.BillID] = r
		}
	}
	return out, rows.Err()
}
