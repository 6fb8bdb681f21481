package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// Test credentials. The values are distinctive so tests can grep every
// output for them.
const (
	clientPass   = "Cl1ent-Secret-Phrase 42"
	upstreamPass = "Upstr3am-Secret-Value"
)

// syncBuffer collects records from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testProxy struct {
	Addr    string
	Srv     *Server
	Up      *translatetest.Server
	Root    string // the upstream directory
	Records *syncBuffer
	Logs    *syncBuffer
}

type proxyOpts struct {
	pin          string // host-key pin for the route; default: the server's own
	mutate       func(*Server)
	upstreamPass string
}

// startProxy starts an in-process SFTP upstream and an ftpgate proxy in
// front of it with two routes: "demo" (local auth with clientPass,
// upstream password login) and user@host passthrough to 127.0.0.1.
func startProxy(t testing.TB, o proxyOpts) *testProxy {
	t.Helper()
	root := t.TempDir()
	up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{"partner": upstreamPass}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	pin := o.pin
	if pin == "" {
		pin = up.Fingerprint
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(clientPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`version: 1
user_at_host:
  enabled: true
  allow_hosts: ["127.0.0.1"]
  host_key_sha256: [%q]
routes:
  - name: demo-route
    user: demo
    auth: local
    password_bcrypt: %q
    upstream: sftp://partner@%s
    upstream_password: {env: FTPGATE_TEST_UPSTREAM_PW}
    host_key_sha256: [%q]
`, pin, hash, up.Addr, pin)
	pol, err := policy.Load(strings.NewReader(doc), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	upPass := upstreamPass
	if o.upstreamPass != "" {
		upPass = o.upstreamPass
	}
	records, logs := &syncBuffer{}, &syncBuffer{}
	srv := &Server{
		Dialer: &translate.SFTPDialer{Getenv: func(k string) string {
			if k == "FTPGATE_TEST_UPSTREAM_PW" {
				return upPass
			}
			return ""
		}},
		Policy:         func() *policy.Policy { return pol },
		Audit:          audit.New(records),
		Logger:         newTestLogger(logs),
		LoginFailDelay: -1,
	}
	if o.mutate != nil {
		o.mutate(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v; want ErrServerClosed", err)
		}
		waitNoSessions(t, srv)
		for _, secret := range []string{clientPass, upstreamPass} {
			if strings.Contains(records.String(), secret) || strings.Contains(logs.String(), secret) {
				t.Errorf("a secret reached the records or logs")
			}
		}
	})
	return &testProxy{Addr: ln.Addr().String(), Srv: srv, Up: up, Root: root, Records: records, Logs: logs}
}

func waitNoSessions(t testing.TB, srv *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.ActiveSessions() > 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d sessions still open after Close", srv.ActiveSessions())
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripBinary(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	sizes := []int{0, 1, 1 << 20}
	if !testing.Short() {
		sizes = append(sizes, 16<<20+7)
	}
	for _, mode := range []dataMode{modeEPSV, modePASV, modePORT, modeEPRT} {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%d", mode, n), func(t *testing.T) {
				c.t = t
				data := randomBytes(t, n)
				name := fmt.Sprintf("f-%s-%d.bin", mode, n)
				c.stor("STOR", name, data, mode)
				onDisk, err := os.ReadFile(filepath.Join(p.Root, name))
				if err != nil {
					t.Fatal(err)
				}
				if sha256.Sum256(onDisk) != sha256.Sum256(data) {
					t.Fatalf("upstream copy differs: %d bytes; want %d", len(onDisk), n)
				}
				got := c.retr(name, mode)
				if sha256.Sum256(got) != sha256.Sum256(data) {
					t.Fatalf("download differs: %d bytes; want %d", len(got), n)
				}
			})
		}
	}
}

func TestTypeAConvertsLineEnds(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	// No TYPE command: the session starts in TYPE A, as the z/OS client
	// expects.
	crlf := []byte(strings.Repeat("LINE ONE\r\nline two\r\n", 5000))
	c.stor("STOR", "text.txt", crlf, modePORT)
	onDisk, _ := os.ReadFile(filepath.Join(p.Root, "text.txt"))
	if want := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n")); !bytes.Equal(onDisk, want) {
		t.Fatalf("upload: upstream has %d bytes with CRs=%d; want LF-only %d bytes", len(onDisk), bytes.Count(onDisk, []byte("\r")), len(want))
	}
	lf := []byte(strings.Repeat("abc\n", 30000))
	os.WriteFile(filepath.Join(p.Root, "lf.txt"), lf, 0o644)
	got := c.retr("lf.txt", modeEPSV)
	if want := bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n")); !bytes.Equal(got, want) {
		t.Fatalf("download: got %d bytes; want CRLF %d bytes", len(got), len(want))
	}
	c.expect("TYPE I", 200)
	if got := c.retr("lf.txt", modeEPSV); !bytes.Equal(got, lf) {
		t.Fatalf("TYPE I download changed the bytes")
	}
}

func TestFileOperations(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	if msg := c.expect("PWD", 257); !strings.Contains(msg, `"`+p.Root+`"`) {
		t.Errorf("PWD: got %q; want the upstream start directory %q", msg, p.Root)
	}
	c.expect("MKD sub", 257)
	c.expect("CWD sub", 250)
	c.stor("STOR", "a.txt", []byte("hello"), modeEPSV)
	c.stor("APPE", "a.txt", []byte(" world"), modeEPSV)
	if got := c.retr("a.txt", modeEPSV); string(got) != "hello world" {
		t.Errorf("after APPE: got %q", got)
	}
	if msg := c.expect("SIZE a.txt", 213); msg != "11" {
		t.Errorf("SIZE: got %q; want 11", msg)
	}
	c.expect("MFMT 20200102030405 a.txt", 213)
	if msg := c.expect("MDTM a.txt", 213); msg != "20200102030405" {
		t.Errorf("MDTM: got %q", msg)
	}
	c.expect("REST 6", 350)
	if got := c.retr("a.txt", modeEPSV); string(got) != "world" {
		t.Errorf("REST 6 RETR: got %q; want world", got)
	}
	c.expect("REST 5", 350)
	c.stor("STOR", "a.txt", []byte("!!"), modeEPSV)
	if got, _ := os.ReadFile(filepath.Join(p.Root, "sub", "a.txt")); string(got) != "hello!!orld" {
		t.Errorf("REST 5 STOR: got %q; want hello!!orld", got)
	}
	if l := c.list("LIST", modeEPSV); !strings.Contains(l, " a.txt\r\n") || !strings.HasPrefix(l, "-rw") {
		t.Errorf("LIST: got %q", l)
	}
	if l := c.list("NLST", modePORT); l != "a.txt\r\n" {
		t.Errorf("NLST: got %q; want a.txt CRLF", l)
	}
	if l := c.list("NLST *.txt", modePORT); l != "a.txt\r\n" {
		t.Errorf("NLST *.txt: got %q", l)
	}
	c.expect("NLST *.nomatch", 550)
	if l := c.list("MLSD", modeEPSV); !strings.Contains(l, "type=file;size=11;") || !strings.Contains(l, "type=cdir") {
		t.Errorf("MLSD: got %q", l)
	}
	if msg := c.expect("MLST a.txt", 250); !strings.Contains(msg, "size=11;") {
		t.Errorf("MLST: got %q", msg)
	}
	c.expect("SITE CHMOD 600 a.txt", 200)
	if fi, _ := os.Stat(filepath.Join(p.Root, "sub", "a.txt")); fi.Mode().Perm() != 0o600 {
		t.Errorf("SITE CHMOD: mode %v; want 0600", fi.Mode().Perm())
	}
	c.expect("RNFR a.txt", 350)
	c.expect("RNTO b.txt", 250)
	c.expect("RNTO c.txt", 503)
	c.expect("SIZE a.txt", 550)
	c.expect("DELE b.txt", 250)
	c.expect("DELE b.txt", 550)
	c.expect("CDUP", 250)
	c.expect("RMD sub", 250)
	c.expect("CWD sub", 550)
	c.expect("QUIT", 221)
}

func TestStouNamesTheFile(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	conn := c.prepare(modeEPSV)
	msg := c.expect("STOU", 150)
	name := strings.TrimPrefix(msg, "FILE: ")
	dc := conn()
	dc.Write([]byte("unique"))
	dc.Close()
	if code, msg := c.read(); code != 226 {
		t.Fatalf("STOU: %d %s", code, msg)
	}
	if got, err := os.ReadFile(filepath.Join(p.Root, name)); err != nil || string(got) != "unique" {
		t.Fatalf("STOU file %q: %q, %v", name, got, err)
	}
}

func TestUserAtHostPassthrough(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.expect("USER partner@"+p.Up.Addr, 331)
	c.expect("PASS "+upstreamPass, 230)
	c.stor("STOR", "pt.bin", []byte("x"), modeEPSV)

	c2 := dialFTP(t, p.Addr)
	c2.expect("USER partner@"+p.Up.Addr, 331)
	c2.expect("PASS wrong "+clientPass, 530)
	c2.expect("USER partner@10.9.9.9", 331)
	c2.expect("PASS whatever", 530)
}

func TestLoginRefusals(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	tests := []struct {
		name, user, pass string
		want             int
	}{
		{"wrong local password", "demo", "not-" + clientPass, 530},
		{"unknown user", "nobody", clientPass, 530},
		{"empty password", "demo", "", 530},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFTP(t, p.Addr)
			c.expect("USER "+tc.user, 331)
			c.expect("PASS "+tc.pass, tc.want)
			c.expect("NOOP", 200) // the session survives
			c.expect("PWD", 530)
		})
	}
	if n := p.Up.Connections(); n != 0 {
		t.Errorf("%d upstream connections after refused logins; want 0", n)
	}
	if !strings.Contains(p.Records.String(), `"record":"login_failure"`) {
		t.Errorf("no login_failure record")
	}
}

func TestUpstreamPasswordWrong(t *testing.T) {
	p := startProxy(t, proxyOpts{upstreamPass: "not-the-partner-password"})
	c := dialFTP(t, p.Addr)
	c.expect("USER demo", 331)
	c.expect("PASS "+clientPass, 530)
}

func TestUnknownHostKeyRefused(t *testing.T) {
	// Pin a fingerprint that is not the server's: the key "changed".
	p := startProxy(t, proxyOpts{pin: "SHA256:" + strings.Repeat("A", 43)})
	c := dialFTP(t, p.Addr)
	c.expect("USER demo", 331)
	code, msg := c.send("PASS " + clientPass)
	if code != 421 {
		t.Fatalf("PASS with an untrusted host key: got %d %q; want 421", code, msg)
	}
	if !strings.Contains(p.Logs.String(), "host key not trusted") {
		t.Errorf("no log line names the host-key refusal")
	}
}

func TestInterruptedUploadLeavesNoFile(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	conn := c.prepare(modeEPSV)
	c.expect("STOR big.bin", 150)
	dc := conn()
	dc.Write(randomBytes(t, 1<<20))
	// Reset rather than close: a broken client, not an end of file.
	dc.(*net.TCPConn).SetLinger(0)
	dc.Close()
	code, _ := c.read()
	if code != 426 {
		t.Errorf("final reply after a reset data connection: %d; want 426", code)
	}
	if _, err := os.Stat(filepath.Join(p.Root, "big.bin")); !os.IsNotExist(err) {
		t.Errorf("big.bin exists upstream after an interrupted upload (err %v)", err)
	}
	c.expect("NOOP", 200)
	// The client vanishing entirely mid-upload leaves nothing either.
	c2 := dialFTP(t, p.Addr)
	c2.login("demo", clientPass)
	conn = c2.prepare(modePORT)
	c2.expect("STOR gone.bin", 150)
	dc = conn()
	dc.Write(randomBytes(t, 256<<10))
	dc.(*net.TCPConn).SetLinger(0)
	dc.Close()
	c2.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.Srv.ActiveSessions() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	entries, _ := os.ReadDir(p.Root)
	for _, e := range entries {
		if e.Name() == "gone.bin" {
			t.Errorf("gone.bin exists upstream")
		}
	}
}

func TestABORDuringDownload(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	os.WriteFile(filepath.Join(p.Root, "large.bin"), randomBytes(t, 32<<20), 0o644)
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	conn := c.prepare(modeEPSV)
	c.expect("RETR large.bin", 150)
	dc := conn()
	buf := make([]byte, 64<<10)
	dc.Read(buf) // the transfer is running; we stop reading
	// Telnet IP and DM before ABOR, as RFC 959 section 4.1.3 describes.
	c.raw("\xff\xf4\xff\xf2ABOR\r\n")
	code1, msg1 := c.read()
	code2, msg2 := c.read()
	if code1 != 426 || code2 != 226 {
		t.Fatalf("ABOR: got %d %q then %d %q; want 426 then 226", code1, msg1, code2, msg2)
	}
	c.expect("NOOP", 200)
	if got := c.retr("large.bin", modeEPSV); len(got) != 32<<20 {
		t.Fatalf("download after ABOR: %d bytes", len(got))
	}
	c.expect("ABOR", 225)
}

func TestSTATDuringTransferAndPipelining(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	// Pipelined commands in one packet each get their reply, in order.
	c.raw("TYPE I\r\nNOOP\r\nSYST\r\n")
	for _, want := range []int{200, 200, 215} {
		if code, msg := c.read(); code != want {
			t.Fatalf("pipelined: got %d %q; want %d", code, msg, want)
		}
	}
	conn := c.prepare(modeEPSV)
	c.expect("STOR slow.bin", 150)
	dc := conn()
	dc.Write([]byte("partial"))
	if msg := c.expect("STAT", 213); !strings.Contains(msg, "bytes transferred") {
		t.Errorf("STAT during transfer: %q", msg)
	}
	c.expect("NOOP", 200)
	dc.Close()
	if code, msg := c.read(); code != 226 {
		t.Fatalf("STOR final reply: %d %q; want 226", code, msg)
	}
}

// TestFinalReplyDoesNotWaitForClientClose: a client may read the 226
// before it closes its end of the data connection.
func TestFinalReplyDoesNotWaitForClientClose(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	os.WriteFile(filepath.Join(p.Root, "f.bin"), randomBytes(t, 100000), 0o644)
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	conn := c.prepare(modeEPSV)
	c.expect("RETR f.bin", 150)
	dc := conn()
	io.ReadAll(dc) // EOF: the proxy sent FIN; we keep our end open
	start := time.Now()
	if code, _ := c.read(); code != 226 {
		t.Fatalf("final reply %d; want 226", code)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("226 took %v after the data; the proxy waited for the client's close", d)
	}
	dc.Close()
}

func TestIPv6DataConnections(t *testing.T) {
	ln6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	p := startProxy(t, proxyOpts{})
	go p.Srv.Serve(ln6)
	c := dialFTP(t, ln6.Addr().String())
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	c.expect("PASV", 522) // PASV cannot name an IPv6 address
	c.expect("EPSV 1", 522)
	data := randomBytes(t, 300000)
	c.stor("STOR", "v6.bin", data, modeEPRT)
	if got := c.retr("v6.bin", modeEPSV); !bytes.Equal(got, data) {
		t.Fatalf("IPv6 round trip: %d bytes; want %d", len(got), len(data))
	}
	c.expect("EPRT |2|::2|5000|", 501) // another address
}

// TestPooledWrongPasswordNeverReuses: with the upstream pool, a wrong
// passthrough password gets 530 and rides on no pooled connection.
func TestPooledWrongPasswordNeverReuses(t *testing.T) {
	p := startProxy(t, proxyOpts{mutate: func(s *Server) {
		pool := &translate.Pool{Dialer: s.Dialer.(*translate.SFTPDialer)}
		t.Cleanup(func() { pool.Close() })
		s.Dialer = pool
	}})
	c := dialFTP(t, p.Addr)
	c.expect("USER partner@"+p.Up.Addr, 331)
	c.expect("PASS "+upstreamPass, 230)
	c2 := dialFTP(t, p.Addr)
	c2.expect("USER partner@"+p.Up.Addr, 331)
	c2.expect("PASS not-"+upstreamPass, 530)
	c3 := dialFTP(t, p.Addr)
	c3.expect("USER partner@"+p.Up.Addr, 331)
	c3.expect("PASS "+upstreamPass, 230)
	// The refused dial's connection closes on the partner's side a moment
	// after the 530; then only the pooled one is left.
	deadline := time.Now().Add(5 * time.Second)
	for p.Up.Connections() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := p.Up.Connections(); n != 1 {
		t.Fatalf("%d SSH connections at the partner; want the one pooled connection", n)
	}
}
