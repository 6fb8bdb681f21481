//go:build linux

package ftps

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// daemonProcAttr makes the kernel kill a server when the test binary dies
// without running its cleanups (a go test -timeout panic, a SIGKILL), so
// none is left listening. (The same as test/peers, which keeps it
// unexported.)
func daemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// killTree kills pid and every process descended from it with SIGKILL.
// vsftpd and ProFTPD fork a process per session (vsftpd two), which
// killing the listener alone would leave running. Each process is stopped
// before its children are listed, so none can fork one that escapes.
func killTree(pid int) {
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
			continue
		}
		// "pid (comm) state ppid ...", where comm may hold spaces and
		// parentheses: split after the last ')'.
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
