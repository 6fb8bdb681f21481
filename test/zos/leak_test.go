package zos

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's test run if any goroutine is still running
// after the last test: every gate, session, pool connection and emulated
// job must be gone by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
