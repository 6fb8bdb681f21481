package interop

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ftpgate/ftpgate/test/peers"
)

// Environment variables naming ProFTPD, shared with test/ftps.
const (
	proftpdEnv        = "FTPGATE_TEST_PROFTPD"
	proftpdModulesEnv = "FTPGATE_TEST_PROFTPD_MODULES"
)

// proftpdUnpacked is where .ci/run unpacks ProFTPD beside vsftpd, which
// conflicts with it in Debian; it is looked at when the environment names
// no binary and none is installed.
const proftpdUnpacked = "/opt/proftpd/usr/sbin/proftpd"

// partner is an SFTP server ftpgate is put in front of.
type partner struct {
	name    string // column label: "OpenSSH 9.2p1", "ProFTPD 1.3.8 mod_sftp"
	addr    string // 127.0.0.1:port
	user    string // the partner login
	keyFile string // ftpgate's private key for the partner
	known   string // known_hosts file holding the partner's host key
	// dir makes a directory for one client's tests and returns its path in
	// the partner's namespace (for the route URL) and on this machine.
	dir func(t *testing.T, name string) (upstream, local string)
	// uid and gid own the files the test puts into a partner directory
	// (ProFTPD serves as nobody); -1 leaves them to the test's user.
	uid, gid int
}

// seed writes a file into a partner directory, owned as the partner
// needs.
func (p *partner) seed(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if p.uid >= 0 {
		if err := os.Chown(f, p.uid, p.gid); err != nil {
			t.Fatal(err)
		}
	}
}

var opensshVersion = regexp.MustCompile(`OpenSSH_([0-9][0-9.p]*)`)

// startOpenSSH starts OpenSSH's sshd (peers.StartSSHD). The reason is
// non-empty when it cannot run here.
func startOpenSSH(t *testing.T) (*partner, string) {
	t.Helper()
	bin := os.Getenv(peers.SSHDEnv)
	if bin == "" {
		bin = "/usr/sbin/sshd"
		if _, err := exec.LookPath(bin); err != nil {
			bin = "sshd"
		}
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, "sshd not found at " + bin + " (install openssh-server)"
	}
	s := peers.StartSSHD(t)
	name := "OpenSSH"
	// sshd -V prints the version (older sshd in its usage message).
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	if m := opensshVersion.FindSubmatch(out); m != nil {
		name += " " + string(m[1])
	}
	return &partner{
		name: name + " sshd", addr: s.Addr, user: s.User, keyFile: s.ClientKeyFile, known: s.KnownHostsFile,
		uid: -1, gid: -1,
		dir: func(t *testing.T, n string) (string, string) {
			d := filepath.Join(s.Root, n)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return d, d
		},
	}, ""
}

// findProFTPD returns the proftpd binary and its module directory, or why
// there is none.
func findProFTPD() (bin, modules, reason string) {
	bin = os.Getenv(proftpdEnv)
	if bin == "" {
		for _, c := range []string{"/usr/sbin/proftpd", proftpdUnpacked} {
			if _, err := exec.LookPath(c); err == nil {
				bin = c
				break
			}
		}
	}
	if bin == "" {
		if p, err := exec.LookPath("proftpd"); err == nil {
			bin = p
		}
	}
	if bin == "" {
		return "", "", "proftpd not found (apt-get install proftpd-core proftpd-mod-crypto, or beside vsftpd: " +
			"apt-get download both, dpkg -x into /opt/proftpd; or set " + proftpdEnv + ")"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return "", "", fmt.Sprintf("%s=%s is not usable: %v", proftpdEnv, bin, err)
	}
	modules = os.Getenv(proftpdModulesEnv)
	if modules == "" {
		modules = filepath.Clean(filepath.Join(filepath.Dir(bin), "..", "lib", "proftpd"))
	}
	return bin, modules, ""
}

// proftpdStartTimeout bounds the wait for ProFTPD's SSH banner.
const proftpdStartTimeout = 10 * time.Second

// startProFTPD starts ProFTPD with mod_sftp on 127.0.0.1 and a random
// port, a throwaway ECDSA host key and one user, ftpgate, authorized by
// an ECDSA key (SFTPAuthorizedUserKeys file:...), chrooted to a home
// directory. The reason is non-empty when it cannot run here: no
// ProFTPD, no mod_sftp, or not root (ProFTPD switches to the user's uid).
func startProFTPD(t *testing.T) (*partner, string) {
	t.Helper()
	bin, modules, reason := findProFTPD()
	if reason != "" {
		return nil, reason
	}
	if os.Geteuid() != 0 {
		return nil, "ProFTPD needs root to switch to the SFTP user's uid"
	}
	load := ""
	if _, err := os.Stat(filepath.Join(modules, "mod_sftp.so")); err == nil {
		load = "ModulePath " + modules + "\nLoadModule mod_sftp.c"
	} else if out, _ := exec.Command(bin, "-l").Output(); !strings.Contains(string(out), "mod_sftp.c") {
		return nil, fmt.Sprintf("mod_sftp is neither in %s nor built into %s (install proftpd-mod-crypto, or set %s)",
			modules, bin, proftpdModulesEnv)
	}
	version := "ProFTPD"
	if out, _ := exec.Command(bin, "-v").CombinedOutput(); len(out) > 0 {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			version = f[0] + " " + f[2]
		}
	}

	dir := t.TempDir()
	// ProFTPD resolves the home directory as the user (nobody), who cannot
	// pass through t.TempDir's 0700 directories.
	home, err := os.MkdirTemp("", "ftpgate-interop-proftpd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	const id = 65534 // nobody and nogroup on Debian
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	userHome := filepath.Join(home, "ftpgate")
	if err := os.Mkdir(userHome, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(userHome, id, id); err != nil {
		t.Fatal(err)
	}

	hostPub := newECDSAKey(t, filepath.Join(dir, "host_ecdsa"))
	clientPub := newECDSAKey(t, filepath.Join(dir, "client_ecdsa"))
	keysDir := filepath.Join(dir, "authorized")
	if err := os.Mkdir(keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(keysDir, "ftpgate"), rfc4716(clientPub), 0o644)
	// The password field "*" matches no password: keys only.
	writeFile(t, filepath.Join(dir, "passwd"), fmt.Sprintf("ftpgate:*:%d:%d::%s:/bin/sh\n", id, id, userHome), 0o600)
	writeFile(t, filepath.Join(dir, "group"), fmt.Sprintf("ftpgate:x:%d:\n", id), 0o600)

	logFile, sftpLog, outFile := filepath.Join(dir, "proftpd.log"), filepath.Join(dir, "sftp.log"), filepath.Join(dir, "proftpd.out")
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{outFile, logFile, sftpLog} {
				b, _ := os.ReadFile(f)
				t.Logf("%s (last 4 KiB):\n%s", f, tail(string(b), 4<<10))
			}
		}
	})
	var cmd *exec.Cmd
	var addr string
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := strings.Join([]string{
			`ServerName "ftpgate interop"`,
			"ServerType standalone",
			"Port " + strconv.Itoa(port),
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
			"AllowOverwrite on",
			"AllowStoreRestart on",
			"AllowRetrieveRestart on",
			load,
			"SFTPEngine on",
			"SFTPLog " + sftpLog,
			"SFTPHostKey " + filepath.Join(dir, "host_ecdsa"),
			"SFTPAuthMethods publickey",
			"SFTPAuthorizedUserKeys file:" + filepath.Join(keysDir, "%u"),
			"SFTPCompression off",
			// ftpgate's pool opens several SFTP channels on one connection.
			"SFTPMaxChannels 10",
		}, "\n") + "\n"
		confFile := filepath.Join(dir, "proftpd.conf")
		writeFile(t, confFile, conf, 0o600)
		out, err := os.OpenFile(outFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(bin, "-n", "-c", confFile)
		cmd.Stdout, cmd.Stderr = out, out
		ownGroup(cmd)
		err = cmd.Start()
		out.Close()
		if err != nil {
			return nil, fmt.Sprintf("proftpd does not start: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		c := cmd
		t.Cleanup(func() {
			stopGroup(c)
			<-done
		})
		if err := waitBanner(t.Context(), addr, done); err == nil {
			break
		}
		stopGroup(cmd)
		<-done
		b, _ := os.ReadFile(outFile)
		if !strings.Contains(string(b), "Address already in use") || attempt == 3 {
			t.Fatalf("proftpd did not answer on %s:\n%s", addr, tail(string(b), 4<<10))
		}
	}
	known := filepath.Join(dir, "known_hosts")
	writeFile(t, known, knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostPub)+"\n", 0o600)
	return &partner{
		name: version + " mod_sftp", addr: addr, user: "ftpgate", keyFile: filepath.Join(dir, "client_ecdsa"), known: known,
		uid: id, gid: id,
		dir: func(t *testing.T, n string) (string, string) {
			d := filepath.Join(userHome, n)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(d, id, id); err != nil {
				t.Fatal(err)
			}
			return "/" + n, d // the session is chrooted to the home directory
		},
	}, ""
}

// waitBanner waits until addr answers with an SSH banner, or done closes
// (the server exited).
func waitBanner(ctx context.Context, addr string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, proftpdStartTimeout)
	defer cancel()
	var last error
	err := peers.Poll(ctx, func() bool {
		select {
		case <-done:
			last = errors.New("server exited")
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			last = err
			return false
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
			last = fmt.Errorf("no SSH banner (%q, %v)", line, err)
			return false
		}
		last = nil
		return true
	})
	if err != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return last
}

// newECDSAKey writes a P-256 key as a PEM "EC PRIVATE KEY" (the form
// ProFTPD reads for SFTPHostKey, and x/crypto/ssh for a client key), mode
// 0600, and returns its SSH public key.
func newECDSAKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), 0o600)
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// rfc4716 formats a public key as RFC 4716 ("SSH2 PUBLIC KEY") text, the
// format SFTPAuthorizedUserKeys has always read.
func rfc4716(pub ssh.PublicKey) string {
	b64 := base64.StdEncoding.EncodeToString(pub.Marshal())
	var b strings.Builder
	b.WriteString("---- BEGIN SSH2 PUBLIC KEY ----\n")
	for len(b64) > 70 {
		b.WriteString(b64[:70] + "\n")
		b64 = b64[70:]
	}
	b.WriteString(b64 + "\n---- END SSH2 PUBLIC KEY ----\n")
	return b.String()
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
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

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
