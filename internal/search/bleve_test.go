package search

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)

func fixture() []Doc {
	d := func(id, lab int64, patient, test, order, acc, dept string, state int, dismissed, collected bool, at time.Duration) Doc {
		return Doc{
			ReportID: id, LabID: lab, BillID: id * 10, LabBillID: order, AccessionNumber: acc,
			PatientName: patient, Referral: "Dr. Who", Organization: "Clinic", TestID: fmt.Sprint("T", id),
			TestName: test, Department: dept, CriticalValues: state, Dismissed: dismissed,
			SampleCollected: collected, ResultedAt: t0.Add(at), LastUpdated: t0.Add(at + time.Minute),
			Version: 1,
		}
	}
	return []Doc{
		d(1, 1, "Maria Müller", "Potassium", "ORD-1001", "ACC-5001", "Chemistry", StatePending, false, true, 1*time.Hour),
		d(2, 1, "Maria Müller", "Sodium", "ORD-1001", "ACC-5002", "Chemistry", StateAbnormal, false, true, 2*time.Hour),
		d(3, 1, "José García", "Hemoglobin", "ORD-2002", "ACC-6001", "Hematology", StatePending, true, true, 3*time.Hour),
		d(4, 1, "Hans Mueller", "Potassium", "ORD-3003", "ACC-7001", "Chemistry", StateAttempted, false, false, 4*time.Hour),
		d(5, 1, "Marco Rossi", "Troponin I", "LB/2024/77", "ACC-8001", "Cardiology", StateDone, false, true, 5*time.Hour),
		d(6, 1, "ÅSA ÖBERG", "Glucose", "ORD-4004", "ACC-9001", "Chemistry", StateNormal, false, true, 6*time.Hour),
		// Another lab with the same order id and patient.
		d(7, 2, "Maria Müller", "Potassium", "ORD-1001", "ACC-5001", "Chemistry", StatePending, false, true, 30*time.Minute),
	}
}

// backends yields a fresh in-memory and a fresh on-disk index.
func backends(t *testing.T) map[string]func(t *testing.T) *Bleve {
	return map[string]func(t *testing.T) *Bleve{
		"mem": func(t *testing.T) *Bleve {
			b, err := OpenBleveMem()
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		"disk": func(t *testing.T) *Bleve {
			b, err := OpenBleve(t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	}
}

func ids(docs []Doc) []int64 {
	out := make([]int64, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.ReportID)
	}
	return out
}

func searchIDs(t *testing.T, b *Bleve, q Query) []int64 {
	t.Helper()
	p, err := b.Search(context.Background(), q)
	require.NoError(t, err)
	require.Equal(t, len(p.Docs), p.Total, "Total with everything on one page")
	return ids(p.Docs)
}

func TestBleveFiltersAndText(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			require.NoError(t, b.Upsert(context.Background(), fixture()))

			filters := []struct {
				name string
				q    Query
				want []int64
			}{
				{"lab 1 all", Query{LabID: 1}, []int64{1, 2, 3, 4, 5, 6}},
				{"lab 2 only its doc", Query{LabID: 2}, []int64{7}},
				{"lab 2 same order id", Query{LabID: 2, Text: "ORD-1001"}, []int64{7}},
				{"unknown lab", Query{LabID: 3}, []int64{}},
				{"state pending", Query{LabID: 1, States: []int{StatePending}}, []int64{1, 3}},
				{"states pending+abnormal", Query{LabID: 1, States: []int{StatePending, StateAbnormal}}, []int64{1, 2, 3}},
				{"state normal", Query{LabID: 1, States: []int{StateNormal}}, []int64{6}},
				{"department", Query{LabID: 1, Departments: []string{"Chemistry"}}, []int64{1, 2, 4, 6}},
				{"departments", Query{LabID: 1, Departments: []string{"Hematology", "Cardiology"}}, []int64{3, 5}},
				{"department exact case", Query{LabID: 1, Departments: []string{"chemistry"}}, []int64{}},
				{"exclude unactionable", Query{LabID: 1, ExcludeUnactionable: true}, []int64{1, 2, 5, 6}},
				{"combined", Query{LabID: 1, States: []int{StatePending, StateAttempted}, Departments: []string{"Chemistry"}, ExcludeUnactionable: true}, []int64{1}},
				{"text and filter", Query{LabID: 1, Text: "potassium", States: []int{StateAttempted}}, []int64{4}},
			}
			for _, tc := range filters {
				t.Run("filter/"+tc.name, func(t *testing.T) {
					require.Equal(t, tc.want, searchIDs(t, b, tc.q))
				})
			}

			texts := []struct {
				text string
				want []int64
			}{
				{"", []int64{1, 2, 3, 4, 5, 6}},
				{"müller", []int64{1, 2, 4}}, // ü->ue also finds Mueller
				{"MÜLLER", []int64{1, 2, 4}},
				{"muller", []int64{1, 2}},
				{"mueller", []int64{1, 2, 4}},
				{"Mu\u0308ller", []int64{1, 2, 4}}, // decomposed umlaut
				{"mar", []int64{1, 2, 5}},
				{"MARIA", []int64{1, 2}},
				{"maria potassium", []int64{1}},
				{"POTASSIUM maria", []int64{1}},
				{"maria pot", []int64{1}},
				{"  maria   sod  ", []int64{2}},
				{"maria troponin", []int64{}},
				{"jose", []int64{3}},
				{"JOSÉ garc", []int64{3}},
				{"asa oberg", []int64{6}},
				{"oeberg", []int64{6}},
				{"troponin i", []int64{5}},
				{"ORD-1001", []int64{1, 2}},
				{"ord-10", []int64{1, 2}},
				{"ORD-2", []int64{3}},
				{"ord", []int64{1, 2, 3, 4, 6}},
				{"1001", []int64{1, 2}},
				{"ACC-500", []int64{1, 2}},
				{"acc-5002", []int64{2}},
				{"LB/2024/7", []int64{5}},
				{"lb/2024", []int64{5}},
				{"ORD-1001 sodium", []int64{2}},
				{"aria", []int64{}}, // prefix only, no infix
				{"zzz", []int64{}},
				{"maria zzz", []int64{}},
				{"-", []int64{1, 2, 3, 4, 5, 6}}, // punctuation-only words are ignored
			}
			for _, tc := range texts {
				t.Run("text/"+tc.text, func(t *testing.T) {
					require.Equal(t, tc.want, searchIDs(t, b, Query{LabID: 1, Text: tc.text}))
				})
			}
		})
	}
}

func TestBleveLabRequired(t *testing.T) {
	b, err := OpenBleveMem()
	require.NoError(t, err)
	defer b.Close()
	_, err = b.Search(context.Background(), Query{Text: "maria"})
	require.ErrorIs(t, err, ErrLabRequired)
}

func TestBleveRejectsInvalidDocs(t *testing.T) {
	b, err := OpenBleveMem()
	require.NoError(t, err)
	defer b.Close()
	for _, d := range []Doc{
		{ReportID: 0, LabID: 1},
		{ReportID: 1, LabID: 0},
		{ReportID: 1, LabID: 1, Version: -1},
	} {
		require.Error(t, b.Upsert(context.Background(), []Doc{d}))
	}
	require.NoError(t, b.Upsert(context.Background(), nil))
}

func TestBleveOrderingAndPaging(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			at := []struct {
				id int64
				t  time.Time
			}{
				{20, t0.Add(time.Minute)},
				{12, t0.Add(time.Minute)}, // tie with 20: id decides
				{15, t0.Add(time.Minute)},
				{3, t0.Add(3*time.Minute + 123456789)},
				{9, t0},
				{30, time.Time{}}, // not resulted: sorts first
				{1, t0.Add(time.Hour).In(time.FixedZone("CET", 3600))},
			}
			var docs []Doc
			for _, a := range at {
				docs = append(docs, Doc{ReportID: a.id, LabID: 1, PatientName: "Maria Test", ResultedAt: a.t, Version: 1, SampleCollected: true})
			}
			// noise in another lab
			docs = append(docs, Doc{ReportID: 99, LabID: 2, PatientName: "Maria Test", ResultedAt: t0, Version: 1})
			require.NoError(t, b.Upsert(context.Background(), docs))

			want := []int64{30, 9, 12, 15, 20, 3, 1}
			for _, text := range []string{"", "maria"} {
				var got []int64
				var after *Cursor
				pages := 0
				for {
					p, err := b.Search(context.Background(), Query{LabID: 1, Text: text, Limit: 3, After: after})
					require.NoError(t, err)
					require.Equal(t, 7, p.Total)
					pages++
					got = append(got, ids(p.Docs)...)
					if p.Next == nil {
						break
					}
					require.Len(t, p.Docs, 3)
					require.Equal(t, CursorOf(p.Docs[2]), *p.Next)
					after = p.Next
					require.Less(t, pages, 5)
				}
				require.Equal(t, 3, pages)
				require.Equal(t, want, got)
			}

			// Times survive the round trip.
			p, err := b.Search(context.Background(), Query{LabID: 1})
			require.NoError(t, err)
			require.True(t, p.Docs[0].ResultedAt.IsZero())
			require.True(t, p.Docs[5].ResultedAt.Equal(t0.Add(3*time.Minute+123456789)))
			require.Nil(t, p.Next)

			// Exactly one full page: no Next.
			p, err = b.Search(context.Background(), Query{LabID: 1, Limit: 7})
			require.NoError(t, err)
			require.Len(t, p.Docs, 7)
			require.Nil(t, p.Next)
		})
	}
}

func TestBleveVersionRule(t *testing.T) {
	ctx := context.Background()
	base := Doc{ReportID: 1, LabID: 1, PatientName: "Maria", CriticalValues: StatePending, ResultedAt: t0, Version: 5}
	tests := []struct {
		name        string
		version     int64
		wantState   int
		wantVersion int64
	}{
		{"older loses", 4, StatePending, 5},
		{"much older loses", 0, StatePending, 5},
		{"equal overwrites", 5, StateDone, 5},
		{"newer overwrites", 6, StateDone, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenBleveMem()
			require.NoError(t, err)
			defer b.Close()
			require.NoError(t, b.Upsert(ctx, []Doc{base}))
			upd := base
			upd.CriticalValues = StateDone
			upd.Version = tc.version
			require.NoError(t, b.Upsert(ctx, []Doc{upd}))
			p, err := b.Search(ctx, Query{LabID: 1})
			require.NoError(t, err)
			require.Len(t, p.Docs, 1)
			require.Equal(t, tc.wantState, p.Docs[0].CriticalValues)
			require.Equal(t, tc.wantVersion, p.Docs[0].Version)
		})
	}

	t.Run("highest version within one call wins", func(t *testing.T) {
		b, err := OpenBleveMem()
		require.NoError(t, err)
		defer b.Close()
		a, c := base, base
		a.Version, a.CriticalValues = 9, StateDone
		c.Version, c.CriticalValues = 7, StateAbnormal
		require.NoError(t, b.Upsert(ctx, []Doc{a, c}))
		p, err := b.Search(ctx, Query{LabID: 1})
		require.NoError(t, err)
		require.Equal(t, int64(9), p.Docs[0].Version)
		require.Equal(t, StateDone, p.Docs[0].CriticalValues)
	})
}

func TestBleveConcurrentUpserts(t *testing.T) {
	ctx := context.Background()
	b, err := OpenBleveMem()
	require.NoError(t, err)
	defer b.Close()

	const workers, reports = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var docs []Doc
			for r := int64(1); r <= reports; r++ {
				docs = append(docs, Doc{ReportID: r, LabID: 1, PatientName: fmt.Sprint("worker", w),
					ResultedAt: t0, Version: int64(w)})
			}
			// Each worker also writes a report of its own.
			docs = append(docs, Doc{ReportID: int64(100 + w), LabID: 1, ResultedAt: t0, Version: 1})
			errs <- b.Upsert(ctx, docs)
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	p, err := b.Search(ctx, Query{LabID: 1, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, reports+workers, p.Total)
	for _, d := range p.Docs {
		if d.ReportID <= reports {
			require.Equal(t, int64(workers-1), d.Version, "report %d", d.ReportID)
			require.Equal(t, fmt.Sprint("worker", workers-1), d.PatientName)
		}
	}
}

func TestBleveOnDiskReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := OpenBleve(dir)
	require.NoError(t, err)
	require.NoError(t, b.Upsert(ctx, fixture()))

	// The directory is locked while open.
	_, err = OpenBleve(dir, WithLockTimeout(50*time.Millisecond))
	require.ErrorContains(t, err, "timeout")
	require.NoError(t, b.Close())

	b, err = OpenBleve(dir)
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, []int64{1, 2, 4}, searchIDs(t, b, Query{LabID: 1, Text: "müller"}))
	require.Equal(t, []int64{7}, searchIDs(t, b, Query{LabID: 2}))

	// The version rule still holds after reopening.
	old := fixture()[0]
	old.Version = 0
	old.PatientName = "Stale Name"
	require.NoError(t, b.Upsert(ctx, []Doc{old}))
	require.Empty(t, searchIDs(t, b, Query{LabID: 1, Text: "stale"}))
	newer := fixture()[0]
	newer.Version = 2
	newer.PatientName = "Fresh Name"
	require.NoError(t, b.Upsert(ctx, []Doc{newer}))
	require.Equal(t, []int64{1}, searchIDs(t, b, Query{LabID: 1, Text: "fresh"}))
	require.Empty(t, searchIDs(t, b, Query{LabID: 1, Text: "stale"}))

	p, err := b.Search(ctx, Query{LabID: 1, Text: "fresh"})
	require.NoError(t, err)
	want := newer
	got := p.Docs[0]
	require.True(t, want.ResultedAt.Equal(got.ResultedAt))
	require.True(t, want.LastUpdated.Equal(got.LastUpdated))
	got.ResultedAt, got.LastUpdated, want.ResultedAt, want.LastUpdated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func TestBleveSchemaMismatch(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBleve(dir)
	require.NoError(t, err)
	require.NoError(t, b.idx.SetInternal(schemaKey, []byte("some-other-schema")))
	require.NoError(t, b.Close())
	_, err = OpenBleve(dir)
	require.ErrorIs(t, err, ErrSchemaMismatch)
}
