package callout

import (
	"math"
	"strings"
	"time"
)

// MaxBackEntry is how far in the past a callout entered after a downtime
// may say it was made.
const MaxBackEntry = 72 * time.Hour

// Clock is one critical report's time to callout: the clock starts when
// the result is released (resulted_at) and stops at its first done
// callout, by the time the call was made (called_at, not when it was
// entered).
type Clock struct {
	DueAt          time.Time  `json:"due_at"`
	FirstAttemptAt *time.Time `json:"first_attempt_at"`
	DoneAt         *time.Time `json:"done_at"`
	// MinutesToDone is negative for a call made before release, which
	// counts as on time.
	MinutesToDone *float64 `json:"minutes_to_done"`
	// Overdue: still open (pending or attempted) past DueAt, or done after it.
	Overdue bool `json:"overdue"`
}

// TargetMinutes returns the time target of an order of patient class
// class: the lab's target for that class, else its target_minutes.
func TargetMinutes(set Settings, patientClass string) int {
	if m, ok := set.Targets[TargetClass(patientClass)]; ok && m > 0 {
		return m
	}
	if set.TargetMinutes > 0 {
		return set.TargetMinutes
	}
	return DefaultTargetMinutes
}

// ReportClock computes the clock of report r, released at r.ResultedAt,
// with target minutes, from its rows of the attempt log (any order), at
// now. A report the log knows no done callout of, but which is done
// (called out before the log existed), is not overdue: its time is
// unknown rather than late.
func ReportClock(r Report, target int, rows []AttemptEntry, now time.Time) Clock {
	c := Clock{DueAt: r.ResultedAt.Add(time.Duration(target) * time.Minute)}
	for _, a := range rows {
		if a.LabReportID != r.ID {
			continue
		}
		at := a.CalledAt
		if c.FirstAttemptAt == nil || at.Before(*c.FirstAttemptAt) {
			c.FirstAttemptAt = &at
		}
		if a.Kind == AttemptKindDone && (c.DoneAt == nil || at.Before(*c.DoneAt)) {
			c.DoneAt = &at
		}
	}
	switch {
	case c.DoneAt != nil:
		m := math.Round(c.DoneAt.Sub(r.ResultedAt).Minutes()*10) / 10
		c.MinutesToDone = &m
		c.Overdue = c.DoneAt.After(c.DueAt)
	case r.State == StatePending || r.State == StateAttempted:
		c.Overdue = now.After(c.DueAt)
	}
	return c
}

// BackEntry checks a callout's called_at and back_entry_reason against the
// server's time now, and returns when the call was made. Without called_at
// the call was made now. With one it is a call entered later (a downtime
// on paper): it must not be in the future nor more than MaxBackEntry ago,
// and needs a reason.
func BackEntry(pl Payload, now time.Time) (time.Time, string, error) {
	reason := strings.TrimSpace(pl.BackEntryReason)
	if pl.CalledAt == nil {
		if reason != "" {
			return now, "", Errorf(KindUnprocessable, "back_entry_reason needs called_at, the time the call was really made")
		}
		return now, "", nil
	}
	at := pl.CalledAt.UTC().Truncate(time.Microsecond)
	switch {
	case at.After(now):
		return now, "", Errorf(KindUnprocessable, "called_at %s is in the future", at.Format(time.RFC3339))
	case now.Sub(at) > MaxBackEntry:
		return now, "", Errorf(KindUnprocessable, "called_at may be at most 72 hours in the past")
	case reason == "":
		return now, "", Errorf(KindUnprocessable, "a callout entered later (called_at) needs back_entry_reason, such as the downtime it was made in")
	case len(reason) > 500:
		return now, "", Errorf(KindUnprocessable, "back_entry_reason is longer than 500 bytes")
	}
	return at, reason, nil
}
