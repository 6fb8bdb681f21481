package ftps

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/test/peers"
	"github.com/ftpgate/ftpgate/translate/ftpstest"
)

// Environment variables naming the server binaries.
const (
	vsftpdEnv         = "FTPGATE_TEST_VSFTPD"
	proftpdEnv        = "FTPGATE_TEST_PROFTPD"
	proftpdModulesEnv = "FTPGATE_TEST_PROFTPD_MODULES"
)

const (
	// startTimeout bounds how long a server may take to answer after it
	// was started.
	startTimeout = 10 * time.Second
	// startAttempts is how often a start is retried on a port taken
	// between choosing it and the server binding it.
	startAttempts = 5
	// logTail is how much of a server's log a failed test prints.
	logTail = 4000
)

// serverOptions change how a server is started.
type serverOptions struct {
	// cert replaces the server certificate for 127.0.0.1 and localhost
	// issued by the server's CA.
	cert func(ca *ftpstest.CA) (*ftpstest.Cert, error)
	// clientCert makes the server require a client certificate issued
	// by its CA (mutual TLS).
	clientCert bool
}

// server is a running vsftpd or ProFTPD.
type server struct {
	name     string // "vsftpd" or "proftpd"
	scheme   string // "ftpes" (vsftpd) or "ftps" (ProFTPD)
	host     string
	port     int
	user     string
	password string
	dir      string // the directory tests write in, in the partner's namespace
	local    string // the same directory on this machine
	ca       *ftpstest.CA
	cert     *ftpstest.Cert
	caFile   string
	logFiles []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// upstream is a route to s with its CA trusted.
func (s *server) upstream() policy.Upstream {
	return policy.Upstream{Scheme: s.scheme, Host: s.host, Port: s.port, User: s.user, TLSCAFile: s.caFile}
}

// path names a file in the test directory, in the partner's namespace.
func (s *server) path(name string) string {
	return strings.TrimSuffix(s.dir, "/") + "/" + name
}

func (s *server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	peers.KillTree(cmd.Process.Pid)
	<-done
}

func (s *server) log() string {
	var b strings.Builder
	for _, f := range s.logFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if len(data) > logTail {
			data = data[len(data)-logTail:]
		}
		fmt.Fprintf(&b, "--- %s:\n%s\n", f, data)
	}
	return b.String()
}

// findBinary returns the server binary: $env if set, else /usr/sbin/name,
// else name on PATH. It skips t, naming what to install, when there is
// none.
func findBinary(t *testing.T, env, name, hint string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = exec.LookPath(abs)
		}
		if err != nil {
			t.Skipf("%s not usable at %s=%s (%s): %v", name, env, p, hint, err)
		}
		return abs
	}
	if _, err := exec.LookPath("/usr/sbin/" + name); err == nil {
		return "/usr/sbin/" + name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (%s, or set %s to the binary)", name, hint, env)
	}
	abs, _ := filepath.Abs(p)
	return abs
}

func requireRoot(t *testing.T, name, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("%s tests run as root only: %s", name, why)
	}
}

// newServer prepares the CA, the certificate files and the server record.
func newServer(t *testing.T, name, scheme string, opt serverOptions) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	// The servers' session processes write their logs here after
	// dropping privileges; the key files stay 0600.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := ftpstest.NewCA("ftpgate " + name + " test CA")
	if err != nil {
		t.Fatal(err)
	}
	var cert *ftpstest.Cert
	if opt.cert != nil {
		cert, err = opt.cert(ca)
	} else {
		cert, err = ca.ServerCert()
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, scheme: scheme, host: "127.0.0.1", ca: ca, cert: cert}
	s.caFile = filepath.Join(dir, "ca.pem")
	for file, data := range map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": cert.CertPEM, "server.key": cert.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, s.log())
		}
	})
	return s, dir
}

// errPortTaken reports a server that could not bind its port.
var errPortTaken = errors.New("port taken")

// run starts argv, writing its output to logFile, and waits until ready
// reports true. It returns errPortTaken when the server exits saying its
// address is in use.
func (s *server) run(argv []string, logFile string, ready func(ctx context.Context) bool, inUse ...string) error {
	lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	// vsftpd writes its start-up errors ("500 OOPS: ...") to descriptor
	// 0, so that goes to the log too.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = lf, lf, lf
	cmd.SysProcAttr = peers.DaemonProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		select {
		case <-done:
			log := s.log()
			for _, m := range inUse {
				if strings.Contains(log, m) {
					return errPortTaken
				}
			}
			return fmt.Errorf("%s exited during start-up: %s", s.name, cmd.ProcessState)
		default:
		}
		if ready(ctx) {
			s.mu.Lock()
			s.cmd, s.done = cmd, done
			s.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			peers.KillTree(cmd.Process.Pid)
			<-done
			return fmt.Errorf("%s did not answer within %v", s.name, startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// greets reports whether addr answers with a 220 greeting, over TLS from
// the first byte when implicit.
func greets(ctx context.Context, addr string, implicit bool, ca *ftpstest.CA) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if implicit {
		tc := tls.Client(c, &tls.Config{ServerName: "127.0.0.1", RootCAs: ca.Pool()})
		if err := tc.HandshakeContext(ctx); err != nil {
			// A server that wants a client certificate fails the
			// handshake: it still answered.
			return !isTimeout(err)
		}
		line, err := bufio.NewReader(tc).ReadString('\n')
		// In TLS 1.3 the refusal of a missing client certificate
		// comes as an alert after the handshake.
		return err == nil && strings.HasPrefix(line, "220") || err != nil && !isTimeout(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "220")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// passivePorts picks a range of 200 ports for passive data connections,
// below Linux's ephemeral range (32768-60999) so that outgoing connections
// do not take them.
func passivePorts() (int, int) {
	n, _ := rand.Int(rand.Reader, big.NewInt(12000))
	lo := 20000 + int(n.Int64())
	return lo, lo + 199
}

// startVsftpd starts vsftpd with explicit TLS, require_ssl_reuse=YES and
// anonymous logins into a chroot whose pub directory is writable. It skips
// t when vsftpd is missing or the test is not run as root.
func startVsftpd(t *testing.T, opt serverOptions) *server {
	t.Helper()
	bin := findBinary(t, vsftpdEnv, "vsftpd", "apt-get install vsftpd")
	requireRoot(t, "vsftpd", "anonymous logins chroot")
	ftpUser, err := user.Lookup("ftp")
	if err != nil {
		t.Skipf("vsftpd: no \"ftp\" user for anonymous logins (the vsftpd package creates it): %v", err)
	}
	if fi, err := os.Stat(ftpUser.HomeDir); err != nil || !fi.IsDir() {
		t.Skipf("vsftpd: the ftp user's home %q must exist (vsftpd changes into it)", ftpUser.HomeDir)
	}
	uid, _ := strconv.Atoi(ftpUser.Uid)
	gid, _ := strconv.Atoi(ftpUser.Gid)

	s, dir := newServer(t, "vsftpd", "ftpes", opt)
	s.user, s.password, s.dir = "anonymous", "ftpgate@example.com", "/pub"
	anonRoot := filepath.Join(dir, "root")
	empty := filepath.Join(dir, "empty")
	s.local = filepath.Join(anonRoot, "pub")
	for _, d := range []string{anonRoot, empty, s.local} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The chroot must not be writable by the ftp user; pub must be.
	if err := os.Chown(s.local, uid, gid); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "vsftpd.log")
	s.logFiles = []string{logFile, filepath.Join(dir, "vsftpd.out")}

	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		lo, hi := passivePorts()
		conf := []string{
			"listen=YES",
			"listen_ipv6=NO",
			"listen_address=127.0.0.1",
			"listen_port=" + strconv.Itoa(s.port),
			"background=NO",
			// The seccomp sandbox fails in some containers and
			// kernels; the tests do not need it.
			"seccomp_sandbox=NO",
			"anonymous_enable=YES",
			"local_enable=NO",
			"write_enable=YES",
			"anon_upload_enable=YES",
			"anon_mkdir_write_enable=YES",
			"anon_other_write_enable=YES",
			"anon_world_readable_only=NO",
			"anon_umask=022",
			"anon_root=" + anonRoot,
			"ftp_username=ftp",
			"secure_chroot_dir=" + empty,
			"pasv_enable=YES",
			"pasv_address=127.0.0.1",
			fmt.Sprintf("pasv_min_port=%d", lo),
			fmt.Sprintf("pasv_max_port=%d", hi),
			"ssl_enable=YES",
			"allow_anon_ssl=YES",
			"force_anon_logins_ssl=YES",
			"force_anon_data_ssl=YES",
			"require_ssl_reuse=YES",
			"ssl_sslv2=NO",
			"ssl_sslv3=NO",
			// vsftpd 3.0.3 has no ssl_tlsv1_1 or ssl_tlsv1_2 (it
			// refuses unknown keys): with TLS 1.0 off, it offers TLS
			// 1.1 to 1.3 as OpenSSL allows, and ftpgate asks for 1.2
			// or 1.3.
			"ssl_tlsv1=NO",
			// vsftpd 3.0.3's default is DES-CBC3-SHA alone, which Go
			// does not offer.
			"ssl_ciphers=HIGH",
			"rsa_cert_file=" + filepath.Join(dir, "server.pem"),
			"rsa_private_key_file=" + filepath.Join(dir, "server.key"),
			"vsftpd_log_file=" + logFile,
			"dual_log_enable=YES",
			"log_ftp_protocol=YES",
			"xferlog_enable=YES",
		}
		if opt.clientCert {
			conf = append(conf, "require_cert=YES", "validate_cert=YES", "ca_certs_file="+filepath.Join(dir, "ca.pem"))
		}
		confFile := filepath.Join(dir, "vsftpd.conf")
		if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
		err := s.run([]string{bin, confFile}, filepath.Join(dir, "vsftpd.out"),
			func(ctx context.Context) bool { return greets(ctx, addr, false, s.ca) },
			"could not bind listening")
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("vsftpd: %v", err)
		}
	}
}

// startProFTPD starts ProFTPD with mod_tls, implicit TLS (TLSOptions
// UseImplicitSSL) and its default requirement that data connections reuse
// the control connection's TLS session, serving one virtual user. It skips
// t when ProFTPD or mod_tls is missing or the test is not run as root.
func startProFTPD(t *testing.T, opt serverOptions) *server {
	t.Helper()
	bin := findBinary(t, proftpdEnv, "proftpd", "apt-get install proftpd-core proftpd-mod-crypto; "+
		"beside vsftpd, which conflicts with it: apt-get download proftpd-core proftpd-mod-crypto, dpkg -x both into DIR, "+
		"and set "+proftpdEnv+"=DIR/usr/sbin/proftpd")
	requireRoot(t, "proftpd", "ProFTPD switches to the test user's uid")
	modules := os.Getenv(proftpdModulesEnv)
	if modules == "" {
		modules = filepath.Clean(filepath.Join(filepath.Dir(bin), "..", "lib", "proftpd"))
	}
	loadTLS := ""
	if _, err := os.Stat(filepath.Join(modules, "mod_tls.so")); err == nil {
		loadTLS = "ModulePath " + modules + "\nLoadModule mod_tls.c\n"
	} else if out, _ := exec.Command(bin, "-l").Output(); !strings.Contains(string(out), "mod_tls.c") {
		t.Skipf("proftpd: mod_tls is neither in %s nor built in (install proftpd-mod-crypto, or set %s)", modules, proftpdModulesEnv)
	}

	s, dir := newServer(t, "proftpd", "ftps", opt)
	s.user, s.password, s.dir = "ftpgate", randomPassword(t), "/"
	// ProFTPD resolves the home directory as the user, who cannot pass
	// through t.TempDir's 0700 directories.
	home, err := os.MkdirTemp("", "ftpgate-proftpd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	s.local = filepath.Join(home, "home")
	if err := os.Mkdir(s.local, 0o755); err != nil {
		t.Fatal(err)
	}
	const id = 65534 // nobody and nogroup on Debian
	if err := os.Chown(s.local, id, id); err != nil {
		t.Fatal(err)
	}
	passwd := fmt.Sprintf("%s:%s:%d:%d::%s:/bin/sh\n", s.user, md5Crypt(s.password, randomSalt(t)), id, id, s.local)
	group := fmt.Sprintf("%s:x:%d:\n", s.user, id)
	for file, data := range map[string]string{"passwd": passwd, "group": group} {
		// ProFTPD refuses world-readable password files.
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logFile, tlsLog := filepath.Join(dir, "proftpd.log"), filepath.Join(dir, "tls.log")
	s.logFiles = []string{logFile, tlsLog, filepath.Join(dir, "proftpd.out")}

	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		lo, hi := passivePorts()
		verify := "TLSVerifyClient off"
		if opt.clientCert {
			verify = "TLSVerifyClient on"
		}
		conf := strings.Join([]string{
			`ServerName "ftpgate test"`,
			"ServerType standalone",
			"Port " + strconv.Itoa(s.port),
			"DefaultAddress 127.0.0.1",
			"SocketBindTight on",
			"UseIPv6 off",
			"User nobody",
			"Group nogroup",
			"PidFile " + filepath.Join(dir, "proftpd.pid"),
			"ScoreboardFile " + filepath.Join(dir, "scoreboard"),
			"DelayTable none",
			"WtmpLog off",
			"UseReverseDNS off",
			"SystemLog " + logFile,
			"TransferLog none",
			"<IfModule mod_ctrls.c>\nControlsEngine off\n</IfModule>",
			"<IfModule mod_ident.c>\nIdentLookups off\n</IfModule>",
			"AuthOrder mod_auth_file.c",
			"AuthUserFile " + filepath.Join(dir, "passwd"),
			"AuthGroupFile " + filepath.Join(dir, "group"),
			"RequireValidShell off",
			"DefaultRoot ~",
			fmt.Sprintf("PassivePorts %d %d", lo, hi),
			"AllowOverwrite on",
			"AllowStoreRestart on",
			"AllowRetrieveRestart on",
			loadTLS,
			"TLSEngine on",
			"TLSLog " + tlsLog,
			"TLSProtocol TLSv1.2 TLSv1.3",
			"TLSECCertificateFile " + filepath.Join(dir, "server.pem"),
			"TLSECCertificateKeyFile " + filepath.Join(dir, "server.key"),
			"TLSCACertificateFile " + filepath.Join(dir, "ca.pem"),
			verify,
			"TLSRequired on",
			// No NoSessionReuseRequired: data connections must
			// resume the control connection's session.
			"TLSOptions UseImplicitSSL",
			"TLSRenegotiate none",
		}, "\n") + "\n"
		confFile := filepath.Join(dir, "proftpd.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
		err := s.run([]string{bin, "-n", "-c", confFile}, filepath.Join(dir, "proftpd.out"),
			func(ctx context.Context) bool { return greets(ctx, addr, true, s.ca) },
			"Address already in use")
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("proftpd: %v", err)
		}
	}
}

func randomPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomSalt(t *testing.T) string {
	const chars = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 8)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = chars[n.Int64()]
	}
	return string(b)
}

// md5Crypt is the MD5-based crypt(3) ("$1$salt$hash") of Poul-Henning
// Kamp's FreeBSD implementation, which glibc and libxcrypt accept, for
// ProFTPD's AuthUserFile. It protects nothing here: the password is a
// throwaway.
func md5Crypt(password, salt string) string {
	const magic = "$1$"
	pw := []byte(password)
	if len(salt) > 8 {
		salt = salt[:8]
	}
	alt := md5.Sum([]byte(password + salt + password))
	h := md5.New()
	h.Write(pw)
	h.Write([]byte(magic + salt))
	for n := len(pw); n > 0; n -= 16 {
		h.Write(alt[:min(n, 16)])
	}
	for i := len(pw); i != 0; i >>= 1 {
		if i&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(pw[:1])
		}
	}
	final := h.Sum(nil)
	for i := range 1000 {
		h := md5.New()
		if i&1 != 0 {
			h.Write(pw)
		} else {
			h.Write(final)
		}
		if i%3 != 0 {
			h.Write([]byte(salt))
		}
		if i%7 != 0 {
			h.Write(pw)
		}
		if i&1 != 0 {
			h.Write(final)
		} else {
			h.Write(pw)
		}
		final = h.Sum(nil)
	}
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out []byte
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			out = append(out, itoa64[v&0x3f])
			v >>= 6
		}
	}
	f := func(i int) uint32 { return uint32(final[i]) }
	to64(f(0)<<16|f(6)<<8|f(12), 4)
	to64(f(1)<<16|f(7)<<8|f(13), 4)
	to64(f(2)<<16|f(8)<<8|f(14), 4)
	to64(f(3)<<16|f(9)<<8|f(15), 4)
	to64(f(4)<<16|f(10)<<8|f(5), 4)
	to64(f(11), 2)
	return magic + salt + "$" + string(out)
}
