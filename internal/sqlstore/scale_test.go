package sqlstore_test

import (
	"testing"

	"callout/internal/storetest"
)

// TestScale checks query plans on a database with history and the index of
// every foreign key, on every engine.
func TestScale(t *testing.T) {
	storetest.ForEach(t, storetest.RunScale)
}
