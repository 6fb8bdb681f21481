package ftps

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/test/peers"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/ftpstest"
)

// gateFor starts ftpgate in front of s with one passthrough route, "job",
// whose partner login is s's user with the client's password: the plain-FTP
// client's session is carried to the partner over TLS.
func gateFor(t *testing.T, s *server) (addr string, records *bytes.Buffer) {
	t.Helper()
	doc := fmt.Sprintf(`version: 1
routes:
  - name: ftps-partner
    user: job
    auth: passthrough
    upstream: %s://%s@%s%s
    tls_ca_file: %q
`, s.scheme, s.user, net.JoinHostPort(s.host, fmt.Sprint(s.port)), s.dir, s.caFile)
	pol, err := policy.Load(strings.NewReader(doc), "gateway.yaml")
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, doc)
	}
	records = &bytes.Buffer{}
	srv := &proxy.Server{
		Dialer: translate.SchemeDialer{SFTP: &translate.SFTPDialer{}, FTPS: &translate.FTPSDialer{}},
		Policy: func() *policy.Policy { return pol },
		Audit:  audit.New(&lockedWriter{w: records}),
		Logger: zerolog.Nop(),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), records
}

type lockedWriter struct {
	mu chanMutex
	w  *bytes.Buffer
}

type chanMutex chan struct{}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.mu == nil {
		l.mu = make(chanMutex, 1)
	}
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

// TestClientsThroughGateway: curl and Python's ftplib speak plain FTP to
// ftpgate, in passive and active mode, and their files reach real vsftpd
// (explicit TLS, require_ssl_reuse=YES) and real ProFTPD (implicit TLS)
// and come back byte for byte.
func TestClientsThroughGateway(t *testing.T) {
	for _, start := range []func(*testing.T, serverOptions) *server{startVsftpd, startProFTPD} {
		s := start(t, serverOptions{})
		t.Run(s.name, func(t *testing.T) {
			addr, _ := gateFor(t, s)
			data := randomData(t, 3<<20+11)
			src := filepath.Join(t.TempDir(), "src.bin")
			os.WriteFile(src, data, 0o644)
			url := "ftp://" + addr + "/"
			cred := "job:" + s.password
			for _, mode := range []struct{ name, flag string }{{"curl passive", "--ftp-pasv"}, {"curl active", "-P127.0.0.1"}} {
				name := strings.ReplaceAll(mode.name, " ", "-") + ".bin"
				if _, err := peers.Curl(t, "-v", mode.flag, "-u", cred, "-T", src, url+name); err != nil {
					t.Fatalf("%s upload: %v", mode.name, err)
				}
				if got, _ := os.ReadFile(filepath.Join(s.local, name)); !bytes.Equal(got, data) {
					t.Fatalf("%s: the partner holds %d bytes; want %d", mode.name, len(got), len(data))
				}
				out, err := peers.Curl(t, mode.flag, "-u", cred, url+name)
				if err != nil || sha256.Sum256(out) != sha256.Sum256(data) {
					t.Fatalf("%s download: %d bytes, %v", mode.name, len(out), err)
				}
			}
			script := `
import ftplib, hashlib, io, sys
addr, pw, passive = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
host, port = addr.rsplit(":", 1)
f = ftplib.FTP()
f.connect(host, int(port), timeout=30)
f.login("job", pw)
f.set_pasv(passive)
data = bytes(range(256)) * 4096
f.storbinary("STOR ftplib.bin", io.BytesIO(data))
out = io.BytesIO()
f.retrbinary("RETR ftplib.bin", out.write)
assert out.getvalue() == data, "ftplib round trip differs"
assert "ftplib.bin" in f.nlst()
f.quit()
`
			for _, passive := range []string{"1", "0"} {
				if out, err := peers.Python(t, script, addr, s.password, passive); err != nil {
					t.Fatalf("ftplib (passive=%s): %v\n%s", passive, err, out)
				}
			}
		})
	}
}

// TestNoClearTextUpstream captures the loopback traffic to and from the
// partner (its control port and its passive range) during a session and
// shows that neither the password nor a byte pattern of the file crosses
// that link in clear, while the same capture on the client's side does
// see them (so the capture would catch a leak).
func TestNoClearTextUpstream(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not found (apt-get install tcpdump; .ci/run does)")
	}
	requireRoot(t, "tcpdump", "capturing on lo needs root")
	peers.Require(t, "curl")
	s := startVsftpd(t, serverOptions{})
	addr, _ := gateFor(t, s)

	dir := t.TempDir()
	upPcap, clientPcap := filepath.Join(dir, "upstream.pcap"), filepath.Join(dir, "client.pcap")
	capture := func(file, filter string) *exec.Cmd {
		cmd := exec.Command(tcpdump, "-i", "lo", "-U", "-s", "0", "-w", file, filter)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	upFilter := fmt.Sprintf("tcp and (port %d or portrange 20000-32199)", s.port)
	up := capture(upPcap, upFilter)
	// Everything else on lo: the client's control and data connections.
	cl := capture(clientPcap, "tcp and not ("+upFilter[len("tcp and "):]+")")
	time.Sleep(500 * time.Millisecond) // tcpdump needs a moment to attach
	marker := []byte("FTPGATE-CLEARTEXT-MARKER-" + fmt.Sprint(time.Now().UnixNano()))
	data := bytes.Repeat(marker, 20000)
	src := filepath.Join(dir, "payroll.txt")
	os.WriteFile(src, data, 0o644)
	url := "ftp://" + addr + "/"
	cred := "job:" + s.password
	if _, err := peers.Curl(t, "-P127.0.0.1", "-u", cred, "-T", src, url+"payroll.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := peers.Curl(t, "-u", cred, url+"payroll.txt"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, c := range []*exec.Cmd{up, cl} {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	}
	upBytes, _ := os.ReadFile(upPcap)
	clBytes, _ := os.ReadFile(clientPcap)
	if len(upBytes) < 10000 {
		t.Fatalf("the upstream capture holds %d bytes: nothing was captured", len(upBytes))
	}
	if !bytes.Contains(clBytes, marker) || !bytes.Contains(clBytes, []byte(s.password)) {
		t.Fatalf("the client-side capture does not show the clear text either: the capture is not working")
	}
	if bytes.Contains(upBytes, marker) {
		t.Errorf("file content crossed the upstream link in clear text")
	}
	if bytes.Contains(upBytes, []byte(s.password)) {
		t.Errorf("the password crossed the upstream link in clear text")
	}
}

// TestUntrustedPartnerRefused: a partner whose certificate does not verify
// (here: signed by a CA the route does not trust) refuses the session at
// login with 421, before any data; the log says why.
func TestUntrustedPartnerRefused(t *testing.T) {
	s := startVsftpd(t, serverOptions{})
	other, err := ftpstest.NewCA("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := filepath.Join(t.TempDir(), "wrong-ca.pem")
	os.WriteFile(wrongCA, other.CertPEM, 0o644)
	s.caFile = wrongCA
	addr, records := gateFor(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := textproto.NewConn(c)
	tp.ReadResponse(220)
	tp.PrintfLine("USER job")
	tp.ReadResponse(331)
	tp.PrintfLine("PASS %s", s.password)
	if code, msg, _ := tp.ReadResponse(0); code != 421 {
		t.Fatalf("login to an untrusted partner: %d %q; want 421", code, msg)
	}
	if !strings.Contains(records.String(), `"record":"login_failure"`) || !strings.Contains(records.String(), "certificate") {
		t.Errorf("no login_failure record naming the certificate:\n%s", records.String())
	}
	if strings.Contains(records.String(), s.password) {
		t.Errorf("the password reached the records")
	}
}
