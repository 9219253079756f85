package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"callout/internal/storetest"
)

// TestLabNumberingDefaultsToAuto checks that `lab create` gives a new lab
// the auto numbering (placer, else filler), that auto can be chosen and
// changed like the others, and that an unknown numbering is a usage error.
func TestLabNumberingDefaultsToAuto(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite.URL(t)
	code, out, stderr := runCmd(t, "lab", "create", "--db", db, "--name", "L", "--hl7-facility", "A")
	require.Equal(t, 0, code, stderr)
	lab := strings.TrimSpace(out)
	code, out, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab, "--hl7-facility", "B")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "B (Order ID: auto number)", "a new lab numbers auto")
	code, out, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab, "--hl7-order-number", "placer")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "(Order ID: placer number)")
	code, out, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab, "--hl7-order-number", "auto")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "(Order ID: auto number)")
	code, _, stderr = runCmd(t, "lab", "update", "--db", db, "--lab", lab, "--hl7-order-number", "guess")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--hl7-order-number must be placer, filler or auto")
	code, _, stderr = runCmd(t, "lab", "create", "--db", db, "--name", "M", "--hl7-order-number", "guess")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--hl7-order-number must be placer, filler or auto")
}
