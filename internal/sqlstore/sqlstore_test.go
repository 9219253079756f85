package sqlstore_test

import (
	"testing"

	"callout/internal/storetest"
)

// TestStore runs the behavioural suite on every engine.
func TestStore(t *testing.T) {
	storetest.ForEach(t, storetest.Run)
}
