package sqlstore_test

import (
	"testing"

	"callout/internal/storetest"
)

// TestPatients runs the patient identity suite on every engine.
func TestPatients(t *testing.T) {
	storetest.ForEach(t, storetest.RunPatients)
}
