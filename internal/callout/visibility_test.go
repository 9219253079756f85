package callout_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
)

// TestVisibleRecord is the rule every reader of callout records follows for
// a user limited to departments.
func TestVisibleRecord(t *testing.T) {
	t.Parallel()
	ptr := func(v int64) *int64 { return &v }
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	bill := callout.Bill{ID: 1, Reports: []callout.Report{
		{ID: 10, TestID: "K", Department: "Biochemistry"},
		{ID: 20, TestID: "CBC", Department: "Haematology"},
		{ID: 30, TestID: "INR", Department: "Haematology"},
	}}
	snap := func(ids ...int64) []callout.SnapshotItem {
		var out []callout.SnapshotItem
		for _, id := range ids {
			out = append(out, callout.SnapshotItem{LabReportID: id})
		}
		return out
	}
	done := func(id, report int64, when time.Time, by string) callout.Record {
		return callout.Record{ID: id, BillID: 1, LabReportID: ptr(report), Status: callout.StatusDone,
			Comment: "secret", CreatedBy: by, CreatedAt: when, Snapshot: snap(report)}
	}
	attempt := func(tests ...string) callout.Record {
		r := callout.Record{ID: 9, BillID: 1, Status: callout.StatusAttempted, Comment: "secret", CreatedBy: "Asha",
			CreatedAt: at, Meta: &callout.Meta{CalloutFor: tests}}
		for _, tid := range tests {
			for _, rep := range bill.Reports {
				if rep.TestID == tid {
					r.Snapshot = append(r.Snapshot, callout.SnapshotItem{LabReportID: rep.ID, TestID: tid})
				}
			}
		}
		return r
	}
	haem := callout.Principal{LabID: 1, Departments: []string{"Haematology"}}
	all := callout.Principal{LabID: 1}

	tests := []struct {
		name       string
		p          callout.Principal
		rec        callout.Record
		recs       []callout.Record
		seen       bool
		comment    string
		calloutFor []string
		snapshot   int
	}{
		{"unlimited: everything, whole", all, attempt("K", "CBC"), nil, true, "secret", []string{"K", "CBC"}, 2},
		{"done record of their report, alone in its callout", haem, done(1, 20, at, "Asha"),
			[]callout.Record{done(1, 20, at, "Asha")}, true, "secret", nil, 1},
		{"done record of their report, its callout also covered K", haem, done(2, 20, at, "Asha"),
			[]callout.Record{done(1, 10, at, "Asha"), done(2, 20, at, "Asha")}, true, "", nil, 1},
		{"done record of their report and INR, both theirs", haem, done(2, 20, at, "Asha"),
			[]callout.Record{done(1, 30, at, "Asha"), done(2, 20, at, "Asha")}, true, "secret", nil, 1},
		{"done record of K: not theirs", haem, done(1, 10, at, "Asha"),
			[]callout.Record{done(1, 10, at, "Asha")}, false, "", nil, 0},
		{"K done a second later is another callout", haem, done(2, 20, at, "Asha"),
			[]callout.Record{done(1, 10, at.Add(time.Second), "Asha"), done(2, 20, at, "Asha")}, true, "secret", nil, 1},
		{"K done by someone else at the same moment is another callout", haem, done(2, 20, at, "Asha"),
			[]callout.Record{done(1, 10, at, "Ravi"), done(2, 20, at, "Asha")}, true, "secret", nil, 1},
		{"attempt of their reports only", haem, attempt("CBC", "INR"), nil, true, "secret", []string{"CBC", "INR"}, 2},
		{"attempt of K and CBC: cut to CBC, no comment", haem, attempt("K", "CBC"), nil, true, "", []string{"CBC"}, 1},
		{"attempt of K only: not theirs", haem, attempt("K"), nil, false, "", nil, 0},
		{"attempt naming a test the order no longer has", haem, attempt("CBC", "GONE"), nil, true, "", []string{"CBC"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, seen := callout.VisibleRecord(tc.p, bill, tc.rec, tc.recs)
			require.Equal(t, tc.seen, seen)
			if !seen {
				return
			}
			require.Equal(t, tc.comment, got.Comment)
			require.Equal(t, tc.comment == "", got.Restricted, "Restricted says the comment was withheld")
			require.Len(t, got.Snapshot, tc.snapshot)
			if tc.calloutFor != nil {
				require.Equal(t, tc.calloutFor, got.Meta.CalloutFor)
			}
			require.Equal(t, "secret", tc.rec.Comment, "the caller's record is not changed")

			// VisibleRecords over the order's records says the same.
			if tc.recs != nil {
				for _, r := range callout.VisibleRecords(tc.p, bill, tc.recs) {
					if r.ID == tc.rec.ID {
						require.Equal(t, got, r)
					}
				}
			}
		})
	}
}
