package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/callout"
	"callout/internal/sqlstore"
	"callout/internal/storetest"
)

// TestNumberingMigration checks issue 10's rule for the HL7 order
// numbering: a lab that existed before migration 00010 keeps the numbering
// it had (placer, the old default, or filler), and a lab created after it
// numbers orders auto (placer, else filler).
func TestNumberingMigration(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		st, err := sqlstore.Open(ctx, e.URL(t), nil)
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		require.NoError(t, st.MigrateTo(ctx, 9))
		var placer, filler int64
		require.NoError(t, st.DB.QueryRow(`INSERT INTO labs (name, created_at) VALUES ('Old placer', $1) RETURNING id`,
			callout.Now()).Scan(&placer))
		require.NoError(t, st.DB.QueryRow(`INSERT INTO labs (name, created_at, hl7_order_number) VALUES ('Old filler', $1, 'filler') RETURNING id`,
			callout.Now()).Scan(&filler))
		before := labRows(t, st)

		require.NoError(t, st.Migrate(ctx))
		require.Equal(t, before, labRows(t, st), "the migration changes no lab")
		for id, want := range map[int64]string{placer: "placer", filler: "filler"} {
			got, err := st.LabHL7Numbering(ctx, id)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
		fresh, err := st.CreateLab(ctx, callout.Settings{Name: "New"})
		require.NoError(t, err)
		got, err := st.LabHL7Numbering(ctx, fresh)
		require.NoError(t, err)
		require.Equal(t, "auto", got)
	})
}

// labRows returns every lab's id, name and numbering.
func labRows(t *testing.T, st *sqlstore.Store) []string {
	t.Helper()
	rows, err := st.DB.Query(`SELECT id, name, hl7_order_number FROM labs ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		var name, number string
		require.NoError(t, rows.Scan(&id, &name, &number))
		out = append(out, fmt.Sprint(id, name, number))
	}
	require.NoError(t, rows.Err())
	return out
}
