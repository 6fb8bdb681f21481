package secrets

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: the
// in-process partners and the goroutines that wait for the ftpgate
// subprocess must all be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
