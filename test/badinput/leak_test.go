package badinput

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every
// session, transfer, passive listener and upstream connection that a bad
// input leaves behind must be gone once the gates are closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
