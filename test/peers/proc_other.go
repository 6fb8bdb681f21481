//go:build !linux

package peers

import (
	"os"
	"syscall"
)

// DaemonProcAttr returns no special attributes: only Linux can tie the
// daemon's life to the test binary's (see proc_linux.go).
func DaemonProcAttr() *syscall.SysProcAttr { return nil }

// KillTree kills pid only. Without /proc there is no cheap way to find the
// per-connection processes sshd forked, so established connections may
// outlive Stop on this platform.
func KillTree(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
