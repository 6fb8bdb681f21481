package e2e

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/test/peers"
	"github.com/ftpgate/ftpgate/translate"
)

// The login every local route in these tests accepts. The password is
// distinctive so that tests can grep records, logs and client output for
// it; it holds no character that curl URLs, lftp's "-u user,pass" or a
// shell would treat specially.
const (
	clientUser = "e2ebatch"
	clientPass = "GateE2E-client-pw-7Qx93kLm"
)

// buffer collects what concurrent writers (the audit emitter, the logger)
// write. Its zero value is ready to use.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// gateShutdownTimeout bounds how long the cleanup waits for Serve to return
// and for every session to end after Close.
const gateShutdownTimeout = 10 * time.Second

// startGate starts a real proxy.Server on 127.0.0.1:0, wired as
// "ftpgate serve" wires it (cmd/ftpgate/serve.go): the policy from
// policy.Load of policyYAML, a translate.SFTPDialer, an audit emitter
// writing JSON lines to records and a zerolog logger (debug level, the
// most it can say) writing to logs. LoginFailDelay is 10 ms so refused
// logins do not slow the suite.
//
// The cleanup closes the server, waits for Serve to return ErrServerClosed
// and for every session to end, checks that clientPass reached neither
// records nor logs, and prints the end of the log if the test failed.
func startGate(t testing.TB, policyYAML string) (addr string, records, logs *buffer) {
	t.Helper()
	return startGateWith(t, policyYAML, nil)
}

// startGateWith is startGate with a hook that may set more fields of the
// server (SessionState, timeouts) before it starts serving.
func startGateWith(t testing.TB, policyYAML string, mutate func(*proxy.Server)) (addr string, records, logs *buffer) {
	t.Helper()
	pol, err := policy.Load(strings.NewReader(policyYAML), "e2e-policy.yaml")
	if err != nil {
		t.Fatalf("policy.Load: %v\n%s", err, policyYAML)
	}
	records, logs = &buffer{}, &buffer{}
	srv := &proxy.Server{
		Dialer: &translate.SFTPDialer{
			DialTimeout:      10 * time.Second,
			HandshakeTimeout: 20 * time.Second,
			// No route here uses an env secret; an empty environment keeps
			// the test independent of the real one.
			Getenv: func(string) string { return "" },
		},
		Policy:         func() *policy.Policy { return pol },
		Audit:          audit.New(records),
		Logger:         zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Str("component", "ftpgate").Logger(),
		Greeting:       "ftpgate e2e ready.",
		LoginFailDelay: 10 * time.Millisecond,
	}
	if mutate != nil {
		mutate(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, proxy.ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(gateShutdownTimeout):
			t.Errorf("Serve did not return within %v of Close", gateShutdownTimeout)
		}
		// t.Context is already cancelled while cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), gateShutdownTimeout)
		defer cancel()
		if err := peers.Poll(ctx, func() bool { return srv.ActiveSessions() == 0 }); err != nil {
			t.Errorf("%d sessions still open %v after Close", srv.ActiveSessions(), gateShutdownTimeout)
		}
		assertNoSecret(t, map[string]string{"records": records.String(), "logs": logs.String()}, clientPass)
		if t.Failed() {
			t.Logf("ftpgate log, last 8 KiB:\n%s", lastBytes(logs.String(), 8<<10))
			t.Logf("ftpgate records, last 8 KiB:\n%s", lastBytes(records.String(), 8<<10))
		}
	})
	return ln.Addr().String(), records, logs
}

// assertNoSecret fails t if any of the named texts holds any of secrets.
func assertNoSecret(t testing.TB, texts map[string]string, secrets ...string) {
	t.Helper()
	for name, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("a password (%d bytes, starting %q) appears in the %s", len(s), s[:4], name)
			}
		}
	}
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// bcryptHash hashes password at bcrypt.MinCost, which keeps logins fast.
func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// localPolicy returns a policy with one route: clientUser, auth local with
// clientPass (hashed at bcrypt.MinCost), to s.Root on s as s.User with s's
// client key, host key checked against knownHosts.
func localPolicy(t testing.TB, s *peers.SSHD, knownHosts string) string {
	t.Helper()
	return localPolicyWithHash(s, knownHosts, bcryptHash(t, clientPass))
}

// localPolicyWithHash is localPolicy with the route's bcrypt hash given.
func localPolicyWithHash(s *peers.SSHD, knownHosts, hash string) string {
	return fmt.Sprintf(`version: 1
routes:
  - name: e2e-route
    user: %s
    auth: local
    password_bcrypt: %q
    upstream: %q
    upstream_key: %q
    known_hosts: %q
`, clientUser, hash, "sftp://"+s.User+"@"+s.Addr+s.Root, s.ClientKeyFile, knownHosts)
}

// ftpURL is the URL curl needs for p (relative to the route's start
// directory) with clientUser's credentials.
func ftpURL(addr, p string) string {
	return "ftp://" + clientUser + ":" + clientPass + "@" + addr + "/" + p
}

// randomBytes returns n bytes of fast pseudo-random data; the content is
// incompressible enough to catch any reordering or truncation.
func randomBytes(n int) []byte {
	var seed [32]byte
	crand.Read(seed[:])
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// writeFile writes data to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sumFile returns the SHA-256 of the file at p as hex, failing t if it
// cannot be read.
func sumFile(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// assertSameFile fails t unless the file at got has SHA-256 want.
func assertSameFile(t testing.TB, what, got, want string) {
	t.Helper()
	if g := sumFile(t, got); g != want {
		fi, _ := os.Stat(got)
		t.Errorf("%s: SHA-256 %s (%d bytes); want %s", what, g[:12], fi.Size(), want[:12])
	}
}

// assertAbsent fails t if p exists.
func assertAbsent(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (err %v); want it gone", p, err)
	}
}

// partFiles returns the names of ftpgate's temporary upload files in dir.
func partFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".ftpgate-") && strings.HasSuffix(e.Name(), ".part") {
			parts = append(parts, e.Name())
		}
	}
	return parts
}

// ---- a raw control connection, for tests that need exact replies ----

// ctrl is a plain FTP control connection driven line by line. Transcript
// holds every reply the server sent, the "client output" checked for
// secrets.
type ctrl struct {
	t          testing.TB
	conn       net.Conn
	tp         *textproto.Conn
	transcript bytes.Buffer
}

// ctrlTimeout bounds each command's round trip on a ctrl connection.
const ctrlTimeout = 30 * time.Second

func dialCtrl(t testing.TB, addr string) *ctrl {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial gate: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &ctrl{t: t, conn: conn, tp: textproto.NewConn(conn)}
	c.expect(220)
	return c
}

// read reads one reply, multi-line or not.
func (c *ctrl) read() (int, string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ctrlTimeout))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("read reply: %v (transcript so far:\n%s)", err, c.transcript.String())
	}
	fmt.Fprintf(&c.transcript, "%d %s\n", code, msg)
	return code, msg
}

// expect reads one reply and fails t unless its code is want.
func (c *ctrl) expect(want int) string {
	c.t.Helper()
	code, msg := c.read()
	if code != want {
		c.t.Fatalf("reply %d %q; want %d", code, msg, want)
	}
	return msg
}

// send writes one command line.
func (c *ctrl) send(line string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ctrlTimeout))
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// cmd sends line and returns the reply.
func (c *ctrl) cmd(line string) (int, string) {
	c.t.Helper()
	c.send(line)
	return c.read()
}

// must sends line and fails t unless the reply code is want.
func (c *ctrl) must(line string, want int) string {
	c.t.Helper()
	c.send(line)
	return c.expect(want)
}

// login logs in with clientUser and clientPass.
func (c *ctrl) login() {
	c.t.Helper()
	c.must("USER "+clientUser, 331)
	c.must("PASS "+clientPass, 230)
}

// epsv sends EPSV and connects to the advertised port.
func (c *ctrl) epsv() *net.TCPConn {
	c.t.Helper()
	msg := c.must("EPSV", 229)
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i+4 {
		c.t.Fatalf("cannot parse EPSV reply %q", msg)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		c.t.Fatalf("cannot parse EPSV reply %q: %v", msg, err)
	}
	host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
	d, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		c.t.Fatalf("dial data: %v", err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d.(*net.TCPConn)
}

// stor uploads data as name over an EPSV data connection.
func (c *ctrl) stor(name string, data []byte) {
	c.t.Helper()
	d := c.epsv()
	c.must("STOR "+name, 150)
	d.SetDeadline(time.Now().Add(ctrlTimeout))
	if _, err := d.Write(data); err != nil {
		c.t.Fatalf("STOR %s: write data: %v", name, err)
	}
	d.Close()
	c.expect(226)
}

// retr downloads name over an EPSV data connection.
func (c *ctrl) retr(name string) []byte {
	c.t.Helper()
	d := c.epsv()
	c.must("RETR "+name, 150)
	d.SetDeadline(time.Now().Add(ctrlTimeout))
	data, err := io.ReadAll(d)
	if err != nil {
		c.t.Fatalf("RETR %s: read data: %v", name, err)
	}
	// Close before the 226, as curl and ftplib do;
	// TestFinalReplyDoesNotWaitForClientClose covers the other order.
	d.Close()
	c.expect(226)
	return data
}

// ---- records ----

// recordWait bounds the wait for a record: the gate writes a transfer's
// records just after its final reply.
const recordWait = 5 * time.Second

// record is one audit record, with the fields these tests look at.
type record struct {
	Record        string `json:"record"`
	Cmd           string `json:"cmd"`
	Arg           string `json:"arg"`
	Code          int    `json:"code"`
	Direction     string `json:"direction"`
	Name          string `json:"name"`
	Path          string `json:"path"`
	BytesClient   int64  `json:"bytes_client"`
	BytesUpstream int64  `json:"bytes_upstream"`
	Result        string `json:"result"`
	Error         string `json:"error"`
	Rule          string `json:"rule"`
	Reason        string `json:"reason"`
	User          string `json:"user"`
}

// parseRecords decodes the JSON lines in b, failing t on a line that is
// not JSON.
func parseRecords(t testing.TB, b *buffer) []record {
	t.Helper()
	var recs []record
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

// hasRecord reports whether records holds a record matching match.
func hasRecord(t testing.TB, b *buffer, match func(record) bool) bool {
	t.Helper()
	for _, r := range parseRecords(t, b) {
		if match(r) {
			return true
		}
	}
	return false
}
