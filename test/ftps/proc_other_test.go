//go:build !linux

package ftps

import (
	"os"
	"syscall"
)

func daemonProcAttr() *syscall.SysProcAttr { return nil }

// killTree kills only pid; the session processes end when their clients
// close.
func killTree(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
