package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"callout/internal/callout"
)

var _ callout.SignInStore = (*Store)(nil)

// ThrottleCounts returns the failure counters of those keys that have one.
func (s *Store) ThrottleCounts(ctx context.Context, keys []callout.ThrottleKey) ([]callout.ThrottleCount, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var conds []string
	var args []any
	for _, k := range keys {
		args = append(args, k.Kind, k.Value)
		conds = append(conds, "(kind = $"+strconv.Itoa(len(args)-1)+" AND value = $"+strconv.Itoa(len(args))+")")
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT kind, value, failures, last_failure_at FROM signin_throttle WHERE `+
		strings.Join(conds, " OR "), args...)
	if err != nil {
		return nil, fmt.Errorf("load sign-in counters: %w", err)
	}
	defer rows.Close()
	var out []callout.ThrottleCount
	for rows.Next() {
		var c callout.ThrottleCount
		if err := rows.Scan(&c.Key.Kind, &c.Key.Value, &c.Failures, &c.LastFailure); err != nil {
			return nil, fmt.Errorf("load sign-in counters: %w", err)
		}
		c.LastFailure = c.LastFailure.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load sign-in counters: %w", err)
	}
	return out, nil
}

// RecordSignInFailure adds one failure to each of f.Keys (starting again
// from one where the last failure is before f.ForgetBefore) and writes the
// audit entry, and the lab's activity entry when there is one, in one
// transaction; then it removes counters forgotten since.
//
// On PostgreSQL several processes may record at once. The counters are
// updated in the order of their keys, and the removal skips rows another
// transaction holds, so two recordings never wait for each other in a
// circle.
func (s *Store) RecordSignInFailure(ctx context.Context, f callout.SignInFailure) error {
	keys := slices.SortedFunc(slices.Values(f.Keys), func(a, b callout.ThrottleKey) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Value, b.Value))
	})
	keys = slices.Compact(keys)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO signin_throttle (kind, value, failures, last_failure_at) VALUES ($1, $2, 1, $3)
				ON CONFLICT (kind, value) DO UPDATE SET
					failures = CASE WHEN signin_throttle.last_failure_at < $4 THEN 1 ELSE signin_throttle.failures + 1 END,
					last_failure_at = excluded.last_failure_at`,
				k.Kind, k.Value, f.At, f.ForgetBefore)
			if err != nil {
				return fmt.Errorf("count a failed sign-in against %s %q: %w", k.Kind, k.Value, err)
			}
		}
		var lab *int64
		if f.LabID != 0 {
			lab = &f.LabID
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO signin_failures (created_at, user_name, address, lab_id, reason) VALUES ($1, $2, $3, $4, $5)`,
			f.At, f.UserName, f.Address, lab, f.Reason)
		if err != nil {
			return fmt.Errorf("audit a failed sign-in: %w", err)
		}
		if f.Activity != nil {
			if err := insertActivity(ctx, tx, f.LabID, *f.Activity); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `
			DELETE FROM signin_throttle WHERE (kind, value) IN (
				SELECT kind, value FROM signin_throttle WHERE last_failure_at < $1`+s.skipLocked()+`)`, f.ForgetBefore)
		if err != nil {
			return fmt.Errorf("remove forgotten sign-in counters: %w", err)
		}
		return nil
	})
}

// ClearThrottle removes the counters of keys, one statement each, so that
// it never holds one counter while waiting for another.
func (s *Store) ClearThrottle(ctx context.Context, keys []callout.ThrottleKey) error {
	for _, k := range keys {
		if _, err := s.DB.ExecContext(ctx, `DELETE FROM signin_throttle WHERE kind = $1 AND value = $2`, k.Kind, k.Value); err != nil {
			return fmt.Errorf("clear the sign-in counter of %s %q: %w", k.Kind, k.Value, err)
		}
	}
	return nil
}

// skipLocked makes a query skip, rather than wait for, rows other
// transactions hold. SQLite has one writer at a time, so nothing to skip.
func (s *Store) skipLocked() string {
	if s.Engine == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}
