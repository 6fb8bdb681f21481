package peers

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dialSFTP logs in to s with its client key, checking the host key against
// s.KnownHostsFile, and opens an SFTP session.
func dialSFTP(t *testing.T, s *SSHD) (*ssh.Client, *sftp.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := s.Dial(ctx, s.ClientConfig(t))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatalf("sftp.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return conn, c
}

// roundTrip writes data to name in s.Root over SFTP, reads it back and
// checks it, and checks that the file really is on disk.
func roundTrip(t *testing.T, s *SSHD, c *sftp.Client, name string, data []byte) {
	t.Helper()
	p := path.Join(filepath.ToSlash(s.Root), name)
	w, err := c.Create(p)
	if err != nil {
		t.Fatalf("Create(%s): %v", p, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after write: %v", err)
	}
	r, err := c.Open(p)
	if err != nil {
		t.Fatalf("Open(%s): %v", p, err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes; want the %d written", len(got), len(data))
	}
	onDisk, err := os.ReadFile(filepath.Join(s.Root, name))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("file on disk: %d bytes, err %v; want %d bytes", len(onDisk), err, len(data))
	}
}

func TestSSHDFields(t *testing.T) {
	s := StartSSHD(t)
	if !filepath.IsAbs(s.Root) {
		t.Errorf("Root = %q; want an absolute path", s.Root)
	}
	if entries, err := os.ReadDir(s.Root); err != nil || len(entries) != 0 {
		t.Errorf("Root has %d entries, err %v; want an empty directory", len(entries), err)
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)); s.Addr != want || s.Host != "127.0.0.1" {
		t.Errorf("Addr, Host = %q, %q; want %q, 127.0.0.1", s.Addr, s.Host, want)
	}
	if !strings.HasPrefix(s.HostKeyFingerprint, "SHA256:") {
		t.Errorf("HostKeyFingerprint = %q; want SHA256:...", s.HostKeyFingerprint)
	}
	fi, err := os.Stat(s.ClientKeyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ClientKeyFile mode: %v, err %v; want 0600", fi.Mode().Perm(), err)
	}
	pemBytes, _ := os.ReadFile(s.ClientKeyFile)
	if signer, err := ssh.ParsePrivateKey(pemBytes); err != nil {
		t.Errorf("ParsePrivateKey(ClientKeyFile): %v", err)
	} else if !bytes.Equal(signer.PublicKey().Marshal(), s.ClientSigner.PublicKey().Marshal()) {
		t.Errorf("ClientKeyFile holds another key than ClientSigner")
	}
	kh, _ := os.ReadFile(s.KnownHostsFile)
	if want := "[127.0.0.1]:" + strconv.Itoa(s.Port) + " ssh-ed25519 "; !strings.HasPrefix(string(kh), want) {
		t.Errorf("known_hosts = %q; want it to start with %q", kh, want)
	}
}

func TestSSHDSFTPRoundTrip(t *testing.T) {
	s := StartSSHD(t)
	conn, c := dialSFTP(t, s)

	// The handshake went through knownhosts.New(KnownHostsFile), so the host
	// key the server presented is the one on the known_hosts line.
	if got := ssh.FingerprintSHA256(mustHostKey(t, s)); got != s.HostKeyFingerprint {
		t.Errorf("server host key %s; want %s", got, s.HostKeyFingerprint)
	}
	if conn.User() != s.User {
		t.Errorf("logged in as %q; want %q", conn.User(), s.User)
	}

	data := make([]byte, 1<<20+123) // spans many 32 KiB SFTP packets
	rand.Read(data)
	roundTrip(t, s, c, "hello.bin", data)

	wd, err := c.Getwd()
	if err != nil || wd == "" {
		t.Errorf("Getwd = %q, %v; want the user's home", wd, err)
	}
	if !strings.Contains(s.Log(), "Accepted publickey for "+s.User) {
		t.Errorf("sshd log lacks the accepted login:\n%s", s.Log())
	}
}

// mustHostKey connects once more, recording the host key the server offers.
func mustHostKey(t *testing.T, s *SSHD) ssh.PublicKey {
	t.Helper()
	var got ssh.PublicKey
	cfg := s.ClientConfig(t)
	check := cfg.HostKeyCallback
	cfg.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		got = key
		return check(host, remote, key)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := s.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	conn.Close()
	return got
}

func TestSSHDRejectsWrongHostKey(t *testing.T) {
	s := StartSSHD(t)

	// A known_hosts file naming the same address with another key: the
	// callback must refuse, and say the key changed (Want is non-empty).
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, err := ssh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, otherKey)
	if err := os.WriteFile(file, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ClientConfig(t)
	cfg.HostKeyCallback = cb

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := s.Dial(ctx, cfg)
	if err == nil {
		conn.Close()
		t.Fatal("Dial with a wrong known host key succeeded; want a host key error")
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		t.Fatalf("Dial error = %v; want a *knownhosts.KeyError with Want set (key mismatch)", err)
	}

	// The same host on another port is unknown: KeyError with empty Want.
	err = cb("127.0.0.1:1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, s.HostKey)
	if !errors.As(err, &keyErr) || len(keyErr.Want) != 0 {
		t.Fatalf("callback for unknown host = %v; want a *knownhosts.KeyError with empty Want", err)
	}
}

func TestSSHDRejectsWrongClientKey(t *testing.T) {
	s := StartSSHD(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ClientConfig(t)
	cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := s.Dial(ctx, cfg)
	if err == nil {
		conn.Close()
		t.Fatal("Dial with an unknown client key succeeded; want an authentication error")
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("Dial error = %v; want an authentication failure", err)
	}
}

func TestSSHDStopRestart(t *testing.T) {
	s := StartSSHD(t)
	conn, c := dialSFTP(t, s)
	roundTrip(t, s, c, "before", []byte("before restart"))

	s.Stop()
	// Stop kills the per-connection processes too: the open connection ends.
	done := make(chan struct{})
	go func() { conn.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("established SSH connection still open 10 s after Stop")
	}
	if _, err := c.Stat(s.Root); err == nil {
		t.Error("Stat on the old SFTP session succeeded after Stop; want an error")
	}
	if nc, err := net.DialTimeout("tcp", s.Addr, 5*time.Second); err == nil {
		nc.Close()
		t.Fatalf("%s accepts connections after Stop", s.Addr)
	}
	s.Stop() // a second Stop is harmless

	s.Restart(t)
	_, c2 := dialSFTP(t, s) // same address, same known_hosts line, same key
	roundTrip(t, s, c2, "after", []byte("after restart"))
	if n := strings.Count(s.Log(), "=== peers: start"); n != 2 {
		t.Errorf("log has %d start markers; want 2", n)
	}

	// Restart while running also works.
	s.Restart(t)
	_, c3 := dialSFTP(t, s)
	roundTrip(t, s, c3, "again", []byte("second restart"))
}

func TestSSHDParallel(t *testing.T) {
	// Several servers at once get distinct ports and work independently.
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := StartSSHD(t)
			_, c := dialSFTP(t, s)
			roundTrip(t, s, c, name, []byte(name))
		})
	}
}

func TestFindSSHDMissing(t *testing.T) {
	t.Setenv(SSHDEnv, "/nonexistent/sshd")
	_, err := findSSHD()
	if err == nil || !strings.Contains(err.Error(), "install openssh-server") {
		t.Fatalf("findSSHD() with %s=/nonexistent/sshd: err = %v; want a skip message naming openssh-server", SSHDEnv, err)
	}
}

// recorder is a testing.TB that records a skip and unwinds with a panic
// instead of ending the test, so a test can check that a helper skips and
// with which message.
type recorder struct {
	testing.TB
	skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	panic(skipPanic{})
}
func (r *recorder) Skipf(format string, args ...any) { r.Skip(fmt.Sprintf(format, args...)) }

type skipPanic struct{}

func TestHelpersSkipWhenMissing(t *testing.T) {
	// The test binary itself is a program that is always there, whatever
	// PATH says.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(tb testing.TB)
		want string
	}{
		{"sshd via env", func(tb testing.TB) { StartSSHD(tb) }, "sshd not found"},
		{"Require", func(tb testing.TB) { Require(tb, self, "no-such-program-ftpgate") }, "no-such-program-ftpgate not found"},
		{"Require hint", func(tb testing.TB) { Require(tb, "no-such-program-ftpgate") }, "install no-such-program-ftpgate"},
	}
	t.Setenv(SSHDEnv, "/nonexistent/sshd")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			func() {
				defer func() {
					if v := recover(); v != nil {
						if _, ok := v.(skipPanic); !ok {
							panic(v)
						}
					}
				}()
				tc.run(r)
			}()
			if !strings.Contains(r.skipped, tc.want) {
				t.Errorf("skip message = %q; want it to contain %q", r.skipped, tc.want)
			}
		})
	}
}

func TestCurlVersion(t *testing.T) {
	out, err := Curl(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "curl ") || !strings.Contains(string(out), "ftp") {
		t.Errorf("curl --version = %q; want a curl with ftp support", out)
	}
}

func TestCurlFailureIsRunError(t *testing.T) {
	// Port 1 on loopback refuses: curl exits 7 (couldn't connect).
	_, err := Curl(t, "--connect-timeout", "5", "ftp://127.0.0.1:1/")
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("Curl to a closed port: err = %v; want a *RunError", err)
	}
	if re.ExitCode() != 7 || !strings.Contains(err.Error(), "--- stderr ---") {
		t.Errorf("exit code %d, error %q; want exit 7 and curl's stderr in the message", re.ExitCode(), err)
	}
}

func TestLFTPVersion(t *testing.T) {
	// The prelude's settings must all be accepted: cmd:fail-exit would end
	// the script at a bad one.
	out, err := LFTP(t, "echo ok; version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "ok\n") || !strings.Contains(string(out), "LFTP") {
		t.Errorf("lftp output = %q; want ok then the version", out)
	}
	if _, err := LFTP(t, "no-such-command"); err == nil {
		t.Error("lftp with an unknown command succeeded; want an error (cmd:fail-exit)")
	}
}

func TestPythonFtplib(t *testing.T) {
	out, err := Python(t, `import ftplib, sys
print("python", sys.version.split()[0], "ftplib", ftplib.FTP.__name__, sys.argv[1])`, "arg1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "python 3.") || !strings.HasSuffix(string(out), "ftplib FTP arg1\n") {
		t.Errorf("python output = %q; want its version, ftplib and the argument", out)
	}
	_, err = Python(t, "raise SystemExit(3)")
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode() != 3 {
		t.Errorf("Python exit 3: err = %v; want a *RunError with exit code 3", err)
	}
}

func TestTNFTPRuns(t *testing.T) {
	out, err := TNFTP(t, "help\nquit\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Commands may be abbreviated") {
		t.Errorf("tnftp help = %q; want its command list", out)
	}
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	n := 0
	WaitFor(t, 5*time.Second, func() bool { n++; return n == 5 })
	if n != 5 {
		t.Errorf("cond called %d times; want 5", n)
	}
	// 1+2+4+8 ms of backoff; far below the timeout.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WaitFor took %v for 4 retries", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := Poll(ctx, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Poll never true = %v; want context.DeadlineExceeded", err)
	}
}

func TestSSHDPortTaken(t *testing.T) {
	s := StartSSHD(t)
	s.Stop()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		t.Skipf("cannot take the port sshd left: %v", err)
	}
	defer ln.Close()
	// The error StartSSHD retries on, and Restart waits out.
	if err := s.start(t.Context()); !errors.Is(err, errAddrInUse) {
		t.Fatalf("start on a taken port = %v; want errAddrInUse\n%s", err, s.Log())
	}
}
