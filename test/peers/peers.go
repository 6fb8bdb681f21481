// Package peers starts and drives real third-party programs (OpenSSH's sshd,
// curl, lftp, python3's ftplib, tnftp) from Go tests, on loopback only.
//
// Every helper takes a testing.TB, calls t.Helper, registers its cleanup with
// t.Cleanup and skips the test with t.Skip, naming the Debian package to
// install, when the program it needs is not on the machine. A fresh machine
// that has only Go therefore runs the rest of the suite and reports these
// tests as skipped, never as failed.
//
// The package holds no mutable package-level state; it is safe to use from
// parallel tests.
package peers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RunTimeout bounds each run of an external client (curl, lftp, python3,
// tnftp). It is long enough for a slow, shared 2-core CI machine moving a few
// megabytes on loopback, and short enough that a hung client fails its test
// well before the go test default timeout of 10 minutes.
const RunTimeout = 60 * time.Second

// installHint names the Debian package that provides each program this
// package may look for. It is an immutable lookup table.
var installHint = map[string]string{
	"sshd":    "openssh-server",
	"ssh":     "openssh-client",
	"sftp":    "openssh-client",
	"curl":    "curl",
	"lftp":    "lftp",
	"tnftp":   "tnftp",
	"ftp":     "inetutils-ftp or tnftp",
	"python3": "python3",
}

// skipMissing skips t because program is not installed.
func skipMissing(t testing.TB, program string) {
	t.Helper()
	hint := installHint[program]
	if hint == "" {
		hint = program
	}
	t.Skipf("%s not found (install %s; .ci/run does)", program, hint)
}

// Require skips t, with a message naming the package to install, unless every
// one of programs is found on PATH. Call it at the top of a test that needs
// several programs, before starting anything, so the test skips cleanly.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			skipMissing(t, p)
		}
	}
}

// RunError is the error returned by the client runners (Curl, LFTP, Python,
// TNFTP, Run) when the program fails, exits non-zero or runs past RunTimeout.
// It keeps both output streams so that a failing test can show exactly what
// the client saw.
type RunError struct {
	Program string   // the program as run, e.g. "curl"
	Args    []string // the full argument list passed to it
	Stdout  []byte
	Stderr  []byte
	// Err is the underlying error: an *exec.ExitError for a non-zero exit, or
	// one wrapping context.DeadlineExceeded when RunTimeout ran out.
	Err error
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "peers: %s %q: %v", e.Program, e.Args, e.Err)
	if len(e.Stdout) > 0 {
		fmt.Fprintf(&b, "\n--- stdout ---\n%s", e.Stdout)
	}
	if len(e.Stderr) > 0 {
		fmt.Fprintf(&b, "\n--- stderr ---\n%s", e.Stderr)
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

// ExitCode returns the program's exit status, or -1 when it did not exit on
// its own (killed at the timeout, or never started). Tests use it to check
// for a specific failure, such as curl's 9 (access denied to a remote
// directory) or 25 (upload failed).
func (e *RunError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Run runs program with args and stdin (nil means empty) under a context
// derived from t.Context() with RunTimeout, and returns its standard output.
// It skips t when program is not on PATH. On failure it returns the standard
// output so far and a *RunError holding both streams; it never calls
// t.Fatal, so tests can assert on expected failures.
//
// The program gets the test's environment minus proxy variables (http_proxy,
// ftp_proxy, all_proxy, no_proxy and their upper-case forms), so nothing
// leaves loopback, and with LC_ALL=C, so messages are stable to match.
func Run(t testing.TB, stdin []byte, program string, args ...string) ([]byte, error) {
	t.Helper()
	Require(t, program)
	ctx, cancel := context.WithTimeout(t.Context(), RunTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = clientEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// A client that leaves a child holding its pipes must not hang Wait.
	cmd.WaitDelay = 5 * time.Second

	err := cmd.Run()
	out := stdout.Bytes()
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %v)", ctx.Err(), RunTimeout)
	}
	return out, &RunError{
		Program: program,
		Args:    args,
		Stdout:  out,
		Stderr:  stderr.Bytes(),
		Err:     err,
	}
}

// clientEnv returns the environment for client programs: the current one
// without proxy settings, with LC_ALL=C.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy", "lc_all":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// Curl runs curl with "-q -sS --fail --noproxy *" followed by args, for
// example Curl(t, "-T", file, "ftp://user:pass@127.0.0.1:2121/dir/") or with
// "--ftp-port", "127.0.0.1" (active mode), "--ftp-pasv", "--disable-epsv",
// "--use-ascii". "-q" (which must come first) keeps ~/.curlrc out of the
// test. It returns curl's standard output; see Run for errors and skipping.
func Curl(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	full := append([]string{"-q", "-sS", "--fail", "--noproxy", "*"}, args...)
	return Run(t, nil, "curl", full...)
}

// lftpPrelude is prepended to every LFTP script. It makes lftp fail fast and
// visibly instead of retrying for minutes: one try per operation, a 20 s
// network timeout, the first failing command ends the script with a non-zero
// exit, no proxy, and plain FTP (lftp would otherwise try AUTH TLS whenever
// FEAT lists it; a script testing FTPS sets ftp:ssl-allow yes itself).
const lftpPrelude = "set net:max-retries 1; set net:reconnect-interval-base 1; " +
	"set net:timeout 20; set dns:fatal-timeout 10; set cmd:fail-exit yes; " +
	"set cmd:interactive no; set ftp:ssl-allow no; set ftp:proxy ''; set http:proxy ''; "

// LFTP runs "lftp --norc -c" with a prelude of settings followed by script,
// for example
// LFTP(t, "open -u user,pass -p 2121 127.0.0.1; put /tmp/x -o dir/x; cls -l dir").
// The prelude sets net:max-retries 1, net:reconnect-interval-base 1,
// net:timeout 20, dns:fatal-timeout 10, cmd:fail-exit yes (the first failing
// command ends the script with a non-zero exit), cmd:interactive no,
// ftp:ssl-allow no, and empty ftp:proxy and http:proxy. Settings in script
// override it (an FTPS test sets ftp:ssl-allow yes). It returns lftp's
// standard output; see Run for errors and skipping.
func LFTP(t testing.TB, script string) ([]byte, error) {
	t.Helper()
	return Run(t, nil, "lftp", "--norc", "-c", lftpPrelude+script)
}

// Python runs "python3 -I -c script args..." (sys.argv[1:] is args; -I
// keeps PYTHON* variables and the user's site-packages out of the test), for
// ftplib clients. It returns the standard output; see Run for errors and
// skipping. An uncaught exception exits non-zero, so it becomes an error
// whose Stderr holds the traceback.
func Python(t testing.TB, script string, args ...string) ([]byte, error) {
	t.Helper()
	full := append([]string{"-I", "-c", script}, args...)
	return Run(t, nil, "python3", full...)
}

// TNFTP runs the NetBSD ftp client "tnftp -n" with args (usually the host
// and port) and feeds script to it as commands on standard input, for
// example TNFTP(t, "user u p\nbinary\nput /tmp/x x\nquit\n", "127.0.0.1",
// "2121"). -n turns off auto-login from ~/.netrc, so script must log in
// with "user". tnftp exits 0 even when a command fails, so check the
// output for the replies you expect; standard output holds the server's
// replies because tnftp is run with -v. See Run for errors and skipping.
func TNFTP(t testing.TB, script string, args ...string) ([]byte, error) {
	t.Helper()
	full := append([]string{"-n", "-v"}, args...)
	return Run(t, []byte(script), "tnftp", full...)
}

// Poll calls cond until it returns true or ctx ends, sleeping between calls
// with a backoff that starts at 1 ms and doubles up to 100 ms. It returns
// nil once cond is true, or ctx.Err(). It starts no goroutine and stops its
// timer before returning.
func Poll(ctx context.Context, cond func() bool) error {
	const (
		first = time.Millisecond
		max   = 100 * time.Millisecond
	)
	delay := first
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if cond() {
			return nil
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		delay = min(delay*2, max)
	}
}

// WaitFor polls cond with backoff (see Poll) until it returns true, and
// fails t with t.Fatalf if that does not happen within timeout or before the
// test ends. Like t.Fatal it must be called from the goroutine running the
// test. It replaces time.Sleep in tests: it returns as soon as cond holds.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if err := Poll(ctx, cond); err != nil {
		t.Fatalf("peers: condition not met within %v: %v", timeout, err)
	}
}
