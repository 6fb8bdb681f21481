package peers

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHDEnv names the environment variable that, when set, gives the path of
// the sshd binary to run instead of looking for /usr/sbin/sshd and then
// PATH. Set it to a path that does not exist to check that the tests skip
// cleanly on a machine without OpenSSH.
const SSHDEnv = "FTPGATE_TEST_SSHD"

const (
	// sshdReadyTimeout bounds the wait for a fresh sshd to answer with its
	// banner. sshd is ready in about 20 ms here; 10 s covers a loaded CI box.
	sshdReadyTimeout = 10 * time.Second

	// sshdStartAttempts is how many random ports StartSSHD tries. The port is
	// chosen by listening on 127.0.0.1:0 and closing, so another process may
	// take it before sshd binds; a second try practically always succeeds.
	sshdStartAttempts = 5

	// logTail is how much of sshd's log is printed when a test fails.
	logTail = 16 << 10
)

// SSHD is a real OpenSSH sshd started by StartSSHD, listening on 127.0.0.1
// with throwaway keys, public-key authentication only, and the SFTP
// subsystem. The exported fields are set by StartSSHD and must not be
// changed. The methods are safe for concurrent use.
type SSHD struct {
	Addr string // "127.0.0.1:PORT"
	Host string // "127.0.0.1"
	Port int
	// User is the login name, the current OS user: an sshd not running as
	// root can authenticate no one else.
	User string

	// HostKey is the server's ed25519 host key, and HostKeyFingerprint its
	// "SHA256:..." form as printed by ssh-keygen -l (ssh.FingerprintSHA256).
	HostKey            ssh.PublicKey
	HostKeyFingerprint string
	// KnownHostsFile is an OpenSSH known_hosts file holding one line,
	// "[127.0.0.1]:PORT ssh-ed25519 ...", for knownhosts.New or ssh -o
	// UserKnownHostsFile=.
	KnownHostsFile string

	// ClientKeyFile is the client's unencrypted ed25519 private key in
	// OpenSSH format, mode 0600, for ssh -i or a proxy route's key file.
	// ClientSigner is the same key, parsed. Its public half is the only line
	// of the server's authorized_keys.
	ClientKeyFile string
	ClientSigner  ssh.Signer

	// Root is an empty directory (an absolute path, from t.TempDir) for the
	// test to use as its SFTP working area. SFTP paths are not confined to
	// it: sshd serves the whole file system as User.
	Root string

	bin        string // absolute path of the sshd binary
	dir        string // keys, config, log, pid file
	configFile string
	logFile    string // sshd's stderr, appended across restarts

	mu     sync.Mutex // guards proc and starts
	proc   *sshdProc  // the running sshd; nil when stopped
	starts int        // number of processes started, for log markers
}

// sshdProc is one sshd process.
type sshdProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
}

// errAddrInUse reports that sshd could not bind its port.
var errAddrInUse = errors.New("peers: sshd could not bind its address")

// StartSSHD starts OpenSSH's sshd in the foreground on 127.0.0.1 and a free
// random port, and returns when it has answered a connection with its SSH
// banner. It skips t when sshd is not installed (see SSHDEnv) and fails t
// when sshd does not start. Whenever t fails, for this reason or any other,
// the cleanup prints the end of sshd's log; it also kills sshd and every
// connection it forked.
//
// When the test runs as root, StartSSHD creates /run/sshd, which sshd's
// privilege separation requires.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin, err := findSSHD()
	if err != nil {
		t.Skip(err.Error())
	}
	u, err := user.Current()
	if err != nil {
		t.Skipf("sshd: cannot find the current user, whom sshd would log in: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root refuses to start without its privilege
		// separation directory, owned by root and not writable by others.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Skipf("sshd as root needs /run/sshd: %v", err)
		}
	}

	s := &SSHD{
		Host: "127.0.0.1",
		User: u.Username,
		Root: t.TempDir(),
		bin:  bin,
		dir:  t.TempDir(),
	}
	s.configFile = filepath.Join(s.dir, "sshd_config")
	s.logFile = filepath.Join(s.dir, "sshd.log")
	if err := s.writeKeys(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshd log (%s), last %d bytes:\n%s", s.logFile, logTail, tail(s.Log(), logTail))
		}
	})

	extra := extraConfig(bin)
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("sshd: %v", err)
		}
		if err := s.writeConfig(port, extra); err != nil {
			t.Fatalf("sshd: %v", err)
		}
		err = s.start(t.Context())
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == sshdStartAttempts {
			t.Fatalf("sshd: %v", err) // the cleanup prints the log
		}
	}
	return s
}

// findSSHD returns the absolute path of the sshd to run: $FTPGATE_TEST_SSHD
// if set, else /usr/sbin/sshd, else sshd on PATH. Its error is the message
// to skip with.
func findSSHD() (string, error) {
	if p := os.Getenv(SSHDEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("sshd not found at %s=%s (install openssh-server; .ci/run does): %v", SSHDEnv, p, err)
		}
		return filepath.Abs(p)
	}
	if _, err := exec.LookPath("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd", nil
	}
	p, err := exec.LookPath("sshd")
	if err != nil {
		return "", errors.New("sshd not found (install openssh-server; .ci/run does)")
	}
	// sshd re-executes itself for each connection and refuses to run from a
	// relative path.
	return filepath.Abs(p)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeKeys creates the host key, the client key and authorized_keys in
// s.dir, and fills in the key fields of s.
func (s *SSHD) writeKeys() error {
	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := writePrivateKey(filepath.Join(s.dir, "host_ed25519"), hostPriv); err != nil {
		return err
	}
	if s.HostKey, err = ssh.NewPublicKey(hostPub); err != nil {
		return err
	}
	s.HostKeyFingerprint = ssh.FingerprintSHA256(s.HostKey)

	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	s.ClientKeyFile = filepath.Join(s.dir, "client_ed25519")
	if err := writePrivateKey(s.ClientKeyFile, clientPriv); err != nil {
		return err
	}
	if s.ClientSigner, err = ssh.NewSignerFromKey(clientPriv); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "authorized_keys"),
		ssh.MarshalAuthorizedKey(s.ClientSigner.PublicKey()), 0o600)
}

// writePrivateKey writes key unencrypted in OpenSSH format with mode 0600;
// sshd and ssh ignore a private key that others can read.
func writePrivateKey(path string, key ed25519.PrivateKey) error {
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// writeConfig writes sshd_config and known_hosts for port, and sets the
// address fields of s.
func (s *SSHD) writeConfig(port int, extra []string) error {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	q := strconv.Quote
	lines := []string{
		"ListenAddress " + s.Addr,
		"HostKey " + q(filepath.Join(s.dir, "host_ed25519")),
		"PidFile " + q(filepath.Join(s.dir, "sshd.pid")),
		// The key files live in a temporary directory that sshd's
		// ownership and mode checks would reject.
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"AuthorizedKeysFile " + q(filepath.Join(s.dir, "authorized_keys")),
		"PermitRootLogin prohibit-password",
		// In-process SFTP server: no sftp-server path to find, no shell.
		"Subsystem sftp internal-sftp",
		"LogLevel VERBOSE",
		// OpenSSH's default: 10 channels (SFTP sessions) per connection.
		"MaxSessions 10",
		// Concurrency tests open many connections at once; the default
		// (10:30:100) drops unauthenticated ones beyond 10.
		"MaxStartups 100:30:200",
	}
	lines = append(lines, extra...)
	cfg := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(s.configFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	s.KnownHostsFile = filepath.Join(s.dir, "known_hosts")
	return os.WriteFile(s.KnownHostsFile, []byte(line+"\n"), 0o600)
}

var opensshVersion = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

// extraConfig returns the sshd_config lines that depend on sshd's version.
// OpenSSH 9.8 added PerSourcePenalties, on by default, which refuses a
// source address for a while after failed logins: tests that prove a wrong
// key is refused would lock every later test out of 127.0.0.1. Older sshd
// rejects the keyword, so it is added only when the version is known to
// have it.
func extraConfig(bin string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// sshd -V prints the version; sshd older than 9.2 does not know -V but
	// prints the version in its usage message all the same.
	out, _ := exec.CommandContext(ctx, bin, "-V").CombinedOutput()
	m := opensshVersion.FindSubmatch(out)
	if m == nil {
		return nil
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major > 9 || major == 9 && minor >= 8 {
		return []string{"PerSourcePenalties no"}
	}
	return nil
}

// start starts sshd with the current config and waits until it answers with
// its banner. It returns errAddrInUse (wrapped) when sshd could not bind.
func (s *SSHD) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("peers: sshd already running")
	}
	s.starts++

	log, err := os.OpenFile(s.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own copy once started
	fmt.Fprintf(log, "=== peers: start %d: %s -D -e -f %s (%s)\n", s.starts, s.bin, s.configFile, s.Addr)

	// -D: stay in the foreground, as our child. -e: log to stderr, which is
	// a plain file, so no goroutine copies it and Wait never blocks on a
	// pipe held open by a per-connection child.
	cmd := exec.Command(s.bin, "-D", "-e", "-f", s.configFile)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = DaemonProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("peers: start sshd: %w", err)
	}
	p := &sshdProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, sshdReadyTimeout)
	defer cancel()
	exited := func() bool {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	err = Poll(ctx, func() bool { return exited() || bannerReady(ctx, s.Addr) })
	switch {
	case exited():
		// The marker and the log lines since belong to this start only.
		l := s.logLocked()
		if i := strings.LastIndex(l, "=== peers: start"); i >= 0 {
			l = l[i:]
		}
		if strings.Contains(l, "Address already in use") || strings.Contains(l, "Cannot bind any address") {
			return fmt.Errorf("%w %s: %s", errAddrInUse, s.Addr, cmd.ProcessState)
		}
		return fmt.Errorf("peers: sshd exited during start-up: %s", cmd.ProcessState)
	case err != nil:
		KillTree(cmd.Process.Pid)
		<-p.done
		return fmt.Errorf("peers: sshd did not answer on %s within %v: %w", s.Addr, sshdReadyTimeout, err)
	}
	s.proc = p
	return nil
}

// bannerReady reports whether addr accepts a TCP connection and sends an SSH
// identification line.
func bannerReady(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}

// Stop kills sshd and every connection it has forked, at once (SIGKILL), and
// waits for sshd to exit. Clients see their connections reset or closed,
// and new connections are refused. Stop on a stopped server does nothing.
// Use it in fault tests; the cleanup registered by StartSSHD calls it too.
func (s *SSHD) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	KillTree(p.cmd.Process.Pid)
	<-p.done
}

// Restart stops sshd if it is running and starts it again on the same
// address with the same keys and configuration, waiting until it answers.
// It fails t if sshd does not come back within about 10 s, for example
// because another process took the port meanwhile.
func (s *SSHD) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	// sshd sets SO_REUSEADDR, so a port in TIME_WAIT is no obstacle; retry
	// only briefly in case the old listener's socket is still closing.
	ctx, cancel := context.WithTimeout(t.Context(), sshdReadyTimeout)
	defer cancel()
	var err error
	_ = Poll(ctx, func() bool {
		err = s.start(ctx)
		return !errors.Is(err, errAddrInUse)
	})
	if err != nil {
		t.Fatalf("sshd: restart: %v", err) // the cleanup prints the log
	}
}

// Log returns everything sshd has written to its standard error so far
// (LogLevel VERBOSE: connections, authentication, SFTP session open and
// close), across restarts, each start marked by a line beginning
// "=== peers: start".
func (s *SSHD) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked()
}

// logLocked is Log for a caller holding s.mu. The lock orders the start
// marker against concurrent readers; sshd itself appends without it.
func (s *SSHD) logLocked() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read sshd log: %v)", err)
	}
	return string(b)
}

// ClientConfig returns a new ssh.ClientConfig that logs in as s.User with
// ClientSigner and checks the host key against KnownHostsFile through
// knownhosts.New, offering only the host key's algorithm so the check
// cannot fail on a key of another type. It fails t if the file cannot be
// read.
func (s *SSHD) ClientConfig(t testing.TB) *ssh.ClientConfig {
	t.Helper()
	cb, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatalf("sshd: %v", err)
	}
	return &ssh.ClientConfig{
		User:              s.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{s.HostKey.Type()},
	}
}

// Dial connects to s.Addr and performs the SSH handshake with cfg. ctx
// bounds both the TCP connect and the handshake (ssh.ClientConfig.Timeout
// covers only the connect). The caller closes the client.
func (s *SSHD) Dial(ctx context.Context, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("peers: dial sshd: %w", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	conn, chans, reqs, err := ssh.NewClientConn(c, s.Addr, cfg)
	if !stop() || err != nil {
		c.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("peers: ssh handshake with %s: %w", s.Addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
