package badinput

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// The login the gate's only route accepts, and the in-process partner's
// own password. Both are distinctive so the cleanup can grep the records
// and the log for them; neither holds a character the FTP line syntax
// treats specially.
const (
	clientUser     = "badjob"
	clientPass     = "BadInput-client-pw-4Kq8Zt"
	partnerUser    = "partner"
	partnerPass    = "BadInput-partner-pw-9Zr2Wd"
	partnerPassEnv = "BADINPUT_PARTNER_PW"
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

// partner is a real SSH/SFTP server the gate's route points at.
type partner struct {
	name  string
	root  string            // the route's start directory, an absolute local path
	route string            // the route's upstream and credential lines of the policy
	env   map[string]string // secrets the route names, for the dialer's Getenv
	// conns reports the partner's open SSH connections; nil when the
	// partner cannot tell (sshd).
	conns func() int
	// drop breaks every open connection (a partner whose network died);
	// nil when the partner cannot do it.
	drop func()
}

// inProcessPartner starts translate/translatetest's SSH/SFTP server (real
// x/crypto/ssh and pkg/sftp) over a fresh directory, with password login.
func inProcessPartner(t testing.TB) *partner {
	t.Helper()
	root := t.TempDir()
	up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{partnerUser: partnerPass}})
	if err != nil {
		t.Fatalf("translatetest: %v", err)
	}
	t.Cleanup(func() { up.Close() })
	route := fmt.Sprintf("    upstream: %q\n    upstream_password: {env: %s}\n    host_key_sha256: [%q]\n",
		"sftp://"+partnerUser+"@"+up.Addr+root, partnerPassEnv, up.Fingerprint)
	return &partner{
		name: "translatetest", root: root, route: route,
		env:   map[string]string{partnerPassEnv: partnerPass},
		conns: up.Connections, drop: up.DropConnections,
	}
}

// sshdPartner starts OpenSSH's sshd (skipping the test when it is not
// installed), with key login and the host key checked through known_hosts.
func sshdPartner(t testing.TB) *partner {
	t.Helper()
	s := peers.StartSSHD(t)
	route := fmt.Sprintf("    upstream: %q\n    upstream_key: %q\n    known_hosts: %q\n",
		"sftp://"+s.User+"@"+s.Addr+s.Root, s.ClientKeyFile, s.KnownHostsFile)
	return &partner{name: "sshd", root: s.Root, route: route, env: map[string]string{}}
}

// upstreams are the ways the tables run, in order: each partner behind the
// connection pool, as "ftpgate serve" wires it by default, and behind the
// plain dialer (FTPGATE_POOL=false). The pool shares one SSH connection
// among up to ten sessions, so a bad input in one session must not harm
// the others on its connection.
//
// sshd without the pool costs one sshd process and key exchange per
// session: 15 s for the case table on an idle 2-core machine, 45 s on a
// busy one. It runs the scenarios (where sshd's own transfer behaviour
// matters) but not the case table (tableToo false), whose inputs the
// pooled sshd run already sends to the same sshd.
var upstreams = []struct {
	name     string
	partner  func(testing.TB) *partner
	pool     bool
	tableToo bool
}{
	{"translatetest", inProcessPartner, true, true},
	{"sshd", sshdPartner, true, true},
	{"translatetest-nopool", inProcessPartner, false, true},
	{"sshd-nopool", sshdPartner, false, false},
}

// gate is a running proxy.Server in front of a partner.
type gate struct {
	addr    string // 127.0.0.1:port of the FTP control listener
	srv     *proxy.Server
	pool    *translate.Pool // nil without the pool
	p       *partner
	records *buffer // the audit trail, JSON lines
	logs    *buffer // the diagnostic log
	// closedPort is a 127.0.0.1 port on which nothing listened a moment
	// ago, for PORT targets that must fail to connect.
	closedPort int
}

// gateShutdownTimeout bounds the cleanup's wait for Serve to return and for
// every session to end after Close.
const gateShutdownTimeout = 10 * time.Second

// startGate starts a proxy.Server on 127.0.0.1:0 wired as "ftpgate serve"
// wires it (cmd/ftpgate/serve.go and config.go, with the configuration's
// defaults): policy.Load of a one-route policy, a translate.SFTPDialer
// behind a translate.Pool when pool is set, an audit emitter and a zerolog
// logger at debug level. Two settings differ from the defaults, for the
// suite's sake: LoginFailDelay is 10 ms so refused logins do not slow it,
// and there is no failed-login lockout (FTPGATE_LOCKOUT_FAILURES=0),
// because the table refuses logins from 127.0.0.1 on purpose, hundreds of
// times. mutate may change fields (short timeouts) before Serve.
//
// The cleanup closes the server and the pool, waits for every session to
// end, and fails the test if a session or transfer panicked (the proxy
// recovers and answers 421, which a case could otherwise mistake for a
// deliberate reply) or if a password reached the records or the log.
func startGate(t testing.TB, p *partner, pool bool, mutate func(*proxy.Server)) *gate {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(clientPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf("version: 1\nroutes:\n  - name: badinput\n    user: %s\n    auth: local\n    password_bcrypt: %q\n%s",
		clientUser, hash, p.route)
	pol, err := policy.Load(strings.NewReader(doc), "badinput-policy.yaml")
	if err != nil {
		t.Fatalf("policy.Load: %v\n%s", err, doc)
	}
	g := &gate{p: p, records: &buffer{}, logs: &buffer{}}
	var dialer translate.Dialer = &translate.SFTPDialer{
		DialTimeout:      10 * time.Second,
		HandshakeTimeout: 20 * time.Second,
		MaxListEntries:   100000,
		Getenv:           func(k string) string { return p.env[k] },
	}
	if pool {
		g.pool = &translate.Pool{
			Dialer:             dialer.(*translate.SFTPDialer),
			MaxChannelsPerConn: 10,
			MaxConnsPerKey:     16,
			IdleTimeout:        60 * time.Second,
			KeepAlive:          30 * time.Second,
		}
		dialer = g.pool
	}
	g.srv = &proxy.Server{
		Dialer:              dialer,
		Policy:              func() *policy.Policy { return pol },
		Audit:               audit.New(g.records),
		Logger:              zerolog.New(g.logs).Level(zerolog.DebugLevel).With().Timestamp().Str("component", "ftpgate").Logger(),
		Greeting:            "ftpgate ready.",
		LoginTimeout:        60 * time.Second,
		IdleTimeout:         5 * time.Minute,
		DataConnTimeout:     30 * time.Second,
		TransferIdleTimeout: 120 * time.Second,
		UpstreamTimeout:     60 * time.Second,
		LoginFailDelay:      10 * time.Millisecond,
		ProgressInterval:    30 * time.Second,
		MaxSessions:         1000,
		MaxSessionsPerAddr:  50,
	}
	if mutate != nil {
		mutate(g.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g.addr = ln.Addr().String()
	g.closedPort = closedPort(t)
	done := make(chan error, 1)
	go func() { done <- g.srv.Serve(ln) }()
	t.Cleanup(func() {
		g.srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, proxy.ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(gateShutdownTimeout):
			t.Errorf("Serve did not return within %v of Close", gateShutdownTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), gateShutdownTimeout)
		defer cancel()
		if err := peers.Poll(ctx, func() bool { return g.srv.ActiveSessions() == 0 }); err != nil {
			t.Errorf("%d sessions still open %v after Close", g.srv.ActiveSessions(), gateShutdownTimeout)
		}
		if g.pool != nil {
			if _, ch := g.pool.Stats(); ch != 0 {
				t.Errorf("%d pooled SFTP channels still in use after every session ended", ch)
			}
			g.pool.Close()
		}
		logs, records := g.logs.String(), g.records.String()
		if strings.Contains(logs, "panic") {
			t.Errorf("a session or transfer panicked:\n%s", grepLines(logs, "panic"))
		}
		for _, secret := range []string{clientPass, partnerPass} {
			if strings.Contains(logs, secret) || strings.Contains(records, secret) {
				t.Errorf("a password (%.6s...) reached the records or the log", secret)
			}
		}
		if t.Failed() {
			t.Logf("ftpgate log, last 8 KiB:\n%s", lastBytes(logs, 8<<10))
		}
	})
	return g
}

// closedPort returns a 127.0.0.1 port that was free a moment ago.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// portTuple formats 127.0.0.1:port as PORT's h1,h2,h3,h4,p1,p2.
func portTuple(port int) string {
	return fmt.Sprintf("127,0,0,1,%d,%d", port>>8, port&0xff)
}

// fixture creates dir (relative to the partner's root) with the files the
// logged-in cases work on: present.txt (8 bytes), sub/inner.txt (so sub is
// not empty) and the empty directory empty/.
func (g *gate) fixture(t testing.TB, dir string) {
	t.Helper()
	d := filepath.Join(g.p.root, dir)
	for _, sub := range []string{"sub", "empty"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"present.txt": "present\n", "sub/inner.txt": "inner\n"} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// expand replaces the placeholders a case may use: {user} and {pass}
// (the route's login), {dir} (the case's own directory), {ctrl} and
// {ctrlport} (the gate's control port as a PORT tuple and as a number),
// {closed} and {closedport} (a port nobody listens on).
func (g *gate) expand(s, dir string) string {
	_, cp, _ := net.SplitHostPort(g.addr)
	ctrl, _ := strconv.Atoi(cp)
	return strings.NewReplacer(
		"{user}", clientUser, "{pass}", clientPass, "{dir}", dir,
		"{ctrl}", portTuple(ctrl), "{ctrlport}", cp,
		"{closed}", portTuple(g.closedPort), "{closedport}", strconv.Itoa(g.closedPort),
	).Replace(s)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// ---- a raw FTP client ----

// ctrlTimeout bounds each reply the client waits for.
const ctrlTimeout = 20 * time.Second

// client is a raw FTP control connection: it writes exactly the bytes a
// test gives it and reads replies one at a time.
type client struct {
	t    testing.TB
	conn *net.TCPConn
	tls  *tls.Conn // after AUTH TLS; nil before
	r    *textproto.Reader
}

// dial connects to addr and reads the 220 greeting.
func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn.(*net.TCPConn), r: textproto.NewReader(bufio.NewReader(conn))}
	c.expect(220)
	return c
}

// write sends s as it is.
func (c *client) write(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ctrlTimeout))
	var w io.Writer = c.conn
	if c.tls != nil {
		w = c.tls
	}
	if _, err := io.WriteString(w, s); err != nil {
		c.t.Fatalf("write %q: %v", clip(s), err)
	}
}

// read reads one reply, single- or multi-line.
func (c *client) read() (int, string, error) {
	c.conn.SetReadDeadline(time.Now().Add(ctrlTimeout))
	return c.r.ReadResponse(0)
}

// expect reads one reply and fails the test unless its code is want.
func (c *client) expect(want int) string {
	c.t.Helper()
	code, msg, err := c.read()
	if code != want {
		c.t.Fatalf("reply %d %q (err %v); want %d", code, msg, err, want)
	}
	return msg
}

// cmd sends line with CRLF and returns the reply.
func (c *client) cmd(line string) (int, string) {
	c.t.Helper()
	c.write(line + "\r\n")
	code, msg, err := c.read()
	if err != nil && code == 0 {
		c.t.Fatalf("%s: %v", redact(line), err)
	}
	return code, msg
}

// must sends line and fails the test unless the reply code is want.
func (c *client) must(line string, want int) string {
	c.t.Helper()
	code, msg := c.cmd(line)
	if code != want {
		c.t.Fatalf("%s: got %d %q; want %d", redact(line), code, msg, want)
	}
	return msg
}

// login logs in with the route's user and password.
func (c *client) login() {
	c.t.Helper()
	c.must("USER "+clientUser, 331)
	c.must("PASS "+clientPass, 230)
}

// noop checks that the session still answers NOOP, and that the answer
// is NOOP's own (not a stray reply left over from the case).
func (c *client) noop() {
	c.t.Helper()
	if code, msg := c.cmd("NOOP"); code != 200 || msg != "NOOP ok." {
		c.t.Fatalf("NOOP afterwards: got %d %q; want 200 \"NOOP ok.\"", code, msg)
	}
}

// expectClosed fails the test unless the server closes the connection
// without sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ctrlTimeout))
	b, err := io.ReadAll(c.r.R)
	if len(b) > 0 || (err != nil && !isReset(err)) {
		c.t.Fatalf("after the final reply: read %q, %v; want the connection closed", clip(string(b)), err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(ne.Err.Error(), "reset")
}

// epsv sends EPSV and connects to the advertised port.
func (c *client) epsv() *net.TCPConn {
	c.t.Helper()
	msg := c.must("EPSV", 229)
	return c.dialData(epsvPort(c.t, msg))
}

func epsvPort(t testing.TB, msg string) int {
	t.Helper()
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i+4 {
		t.Fatalf("cannot parse EPSV reply %q", msg)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		t.Fatalf("cannot parse EPSV reply %q: %v", msg, err)
	}
	return port
}

func (c *client) dialData(port int) *net.TCPConn {
	c.t.Helper()
	d, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		c.t.Fatalf("dial data port %d: %v", port, err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d.(*net.TCPConn)
}

// active sends PORT for a fresh listener on 127.0.0.1 and returns a
// function that accepts the gate's data connection.
func (c *client) active() func() *net.TCPConn {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { ln.Close() })
	c.must("PORT "+portTuple(ln.Addr().(*net.TCPAddr).Port), 200)
	return func() *net.TCPConn {
		c.t.Helper()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(ctrlTimeout))
		d, err := ln.Accept()
		if err != nil {
			c.t.Fatalf("accept data connection: %v", err)
		}
		c.t.Cleanup(func() { d.Close() })
		return d.(*net.TCPConn)
	}
}

func redact(line string) string {
	if strings.HasPrefix(strings.ToUpper(line), "PASS ") {
		return "PASS ****"
	}
	return clip(line)
}

// clip shortens s for a failure message and shows control bytes.
func clip(s string) string {
	if len(s) > 60 {
		s = s[:60] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return strconv.Quote(s)
}
