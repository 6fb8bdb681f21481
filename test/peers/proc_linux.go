//go:build linux

package peers

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// DaemonProcAttr returns the process attributes for a daemon started by a
// test. Pdeathsig makes the kernel kill the daemon when the test binary dies
// without running its cleanups (a go test -timeout panic, a SIGKILL), so no
// sshd is left listening on the machine. The signal fires when the OS thread
// that started the daemon exits, which the Go runtime does only for a
// goroutine that exits while locked to its thread (runtime.LockOSThread); no
// helper here does that.
func DaemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// KillTree kills pid and every process descended from it, with SIGKILL.
//
// sshd forks one process per connection and puts it in a new session, so
// killing the listener, or its process group, leaves established connections
// running. A fault test that stops the server wants them gone too. Each
// process is stopped (SIGSTOP) before its children are listed, so none can
// fork a child that escapes, and only then is every one of them killed.
func KillTree(pid int) {
	stopped := map[int]bool{pid: true}
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for {
		added := false
		for child, parent := range parents() {
			if stopped[parent] && !stopped[child] {
				stopped[child] = true
				_ = syscall.Kill(child, syscall.SIGSTOP)
				added = true
			}
		}
		if !added {
			break
		}
	}
	for p := range stopped {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// parents maps each process id in /proc to its parent's id.
func parents() map[int]int {
	m := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the process has gone
		}
		// The format is "pid (comm) state ppid ...", and comm may itself
		// contain spaces and parentheses: split after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		pid, err1 := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		ppid, err2 := strconv.Atoi(fields[1])
		if err1 == nil && err2 == nil {
			m[pid] = ppid
		}
	}
	return m
}
