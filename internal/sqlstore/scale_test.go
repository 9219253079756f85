package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/fhir"
	"callout/internal/sqlstore"
	"callout/internal/storetest"
)

// TestScale checks query plans on a database with history and the index of
// every foreign key, on every engine.
func TestScale(t *testing.T) {
	storetest.ForEach(t, storetest.RunScale)
}

// TestFHIRSearchPlan checks that a FHIR search page reads its page of the
// lab's records in id order, not the lab's history (it lives here, not in
// storetest, which package fhir's tests import).
func TestFHIRSearchPlan(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		f := storetest.NewFixture(t, e, callout.Settings{})
		storetest.AddHistory(t, f, 3000, time.Now().UTC().Add(-400*24*time.Hour))
		for _, stats := range []bool{false, true} {
			if stats {
				storetest.Analyze(t, f.Store)
			}
			plans, err := f.Store.Plans(ctx, func(ctx context.Context) error {
				entries, _, err := f.Store.SearchCalloutRecords(ctx, f.Lab, fhir.Query{Limit: 51})
				if len(entries) != 51 {
					t.Errorf("entries: %d, want 51", len(entries))
				}
				return err
			})
			require.NoError(t, err)
			p := plans[0]
			if f.Store.Engine == sqlstore.Postgres {
				// PostgreSQL always has statistics (autovacuum); before
				// its first ANALYZE it may sort a small table.
				if stats {
					require.LessOrEqual(t, storetest.RowsRead(p.Plan, "critical_callouts"), 51, "%s\n%s", p.Query, p.Plan)
				}
				continue
			}
			require.Contains(t, p.Plan, "critical_callouts_lab", "statistics %v: %s", stats, p.Plan)
			require.NotContains(t, p.Plan, "TEMP B-TREE", "statistics %v: %s", stats, p.Plan)
		}
	})
}
