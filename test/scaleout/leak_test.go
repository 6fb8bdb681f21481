package scaleout

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's test run if any goroutine is still running
// after the last test: every process a test starts must be waited for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
