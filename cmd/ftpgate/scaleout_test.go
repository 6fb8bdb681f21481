package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

func TestScaleConfigCheck(t *testing.T) {
	const pw = "Redis-pw-9wQ2"
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // "" means valid
	}{
		{name: "nothing set", env: nil},
		{name: "balancers", env: map[string]string{"FTPGATE_PROXY_PROTOCOL_FROM": " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::ffff:198.51.100.1"}},
		{name: "bad prefix", env: map[string]string{"FTPGATE_PROXY_PROTOCOL_FROM": "10.0.0.0/33"}, wantErr: `"10.0.0.0/33" is not an IP address`},
		{name: "host name", env: map[string]string{"FTPGATE_PROXY_PROTOCOL_FROM": "lb.example"}, wantErr: "FTPGATE_PROXY_PROTOCOL_FROM"},
		{name: "header timeout", env: map[string]string{"FTPGATE_PROXY_PROTOCOL_TIMEOUT": "0s"}, wantErr: "FTPGATE_PROXY_PROTOCOL_TIMEOUT"},
		{name: "redis", env: map[string]string{"FTPGATE_REDIS_URL": "redis://:" + pw + "@127.0.0.1:6379/2"}},
		{name: "redis tls and user", env: map[string]string{"FTPGATE_REDIS_URL": "rediss://gate:" + pw + "@redis.example:6380/0"}},
		{name: "redis bad db", env: map[string]string{"FTPGATE_REDIS_URL": "redis://:" + pw + "@127.0.0.1:6379/x"}, wantErr: "FTPGATE_REDIS_URL redis://:xxxxx@127.0.0.1:6379/x"},
		{name: "redis bad scheme", env: map[string]string{"FTPGATE_REDIS_URL": "http://:" + pw + "@127.0.0.1/"}, wantErr: "invalid URL scheme"},
		{name: "redis unparsable", env: map[string]string{"FTPGATE_REDIS_URL": "redis://:" + pw + "@[::1"}, wantErr: "not a valid URL"},
		{name: "redis timeout", env: map[string]string{"FTPGATE_REDIS_URL": "redis://127.0.0.1:6379", "FTPGATE_REDIS_TIMEOUT": "0s"}, wantErr: "FTPGATE_REDIS_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// loadConfig runs check, so a bad value stops start-up and
			// "ftpgate check" alike.
			cfg, err := loadConfig(tt.env)
			if err == nil {
				err = cfg.Scale.check()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("check() = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("check() = %v; want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), pw):
				t.Fatalf("the error shows the Redis password: %v", err)
			}
		})
	}
	cfg, _ := loadConfig(map[string]string{"FTPGATE_REDIS_URL": "redis://u:" + pw + "@h:1/0"})
	if got := cfg.Scale.redactedRedisURL(); got != "redis://u:xxxxx@h:1/0" {
		t.Errorf("redactedRedisURL() = %q", got)
	}
	if cfg.Scale.RedisPrefix != "ftpgate:" || cfg.Scale.RedisTimeout != 500*time.Millisecond || cfg.Scale.ProxyHeaderTimeout != 5*time.Second {
		t.Errorf("defaults: %+v", cfg.Scale)
	}
	cfg, _ = loadConfig(map[string]string{"FTPGATE_REDIS_URL": "redis://:p%2Fw%40x@h:1/0"})
	if got := cfg.Scale.redact("p/w@x and p%2Fw%40x"); got != "xxxxx and xxxxx" {
		t.Errorf("redact = %q; want both forms of the password hidden", got)
	}
	cfg, _ = loadConfig(map[string]string{"FTPGATE_PROXY_PROTOCOL_FROM": "192.0.2.7,::ffff:198.51.100.0/120"})
	lbs, _ := cfg.Scale.balancers()
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("198.51.100.0/24")}
	if fmt.Sprint(lbs) != fmt.Sprint(want) {
		t.Errorf("balancers() = %v; want %v", lbs, want)
	}
}

// lbTest is a listener wrapped by newLBListener with 127.0.0.1 as the
// only load balancer; 127.0.0.2 is an ordinary client.
type lbTest struct {
	ln   *lbListener
	logs *lockedBuffer
}

func newLBTest(t *testing.T, control bool) *lbTest {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ln := newLBListener(raw, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 300*time.Millisecond, control, zerolog.New(logs))
	t.Cleanup(func() { ln.Close() })
	return &lbTest{ln: ln, logs: logs}
}

// dial connects from the address from (127.0.0.1 is the balancer) and
// writes header first if it is not nil.
func (lt *lbTest) dial(t *testing.T, from string, header []byte) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", lt.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if header != nil {
		if _, err := c.Write(header); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// accept returns the next connection, or nil when none comes within d.
func (lt *lbTest) accept(t *testing.T, d time.Duration) net.Conn {
	t.Helper()
	lt.ln.SetDeadline(time.Now().Add(d))
	c, err := lt.ln.Accept()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func proxyHeader(t *testing.T, version byte, src, dst string) []byte {
	t.Helper()
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	b, err := proxyproto.HeaderProxyFromAddrs(version, s, d).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads from c until EOF or an error, with a deadline.
func readAll(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestLBListenerFromBalancer(t *testing.T) {
	tests := []struct {
		name       string
		header     func(t *testing.T) []byte
		wantRemote string // "" means the connection is refused
	}{
		{name: "v2", header: func(t *testing.T) []byte { return proxyHeader(t, 2, "203.0.113.9:40001", "192.0.2.1:21") }, wantRemote: "203.0.113.9:40001"},
		{name: "v1", header: func(t *testing.T) []byte { return proxyHeader(t, 1, "203.0.113.9:40002", "192.0.2.1:21") }, wantRemote: "203.0.113.9:40002"},
		{name: "v2 IPv6", header: func(t *testing.T) []byte { return proxyHeader(t, 2, "[2001:db8::9]:40003", "[2001:db8::1]:21") }, wantRemote: "[2001:db8::9]:40003"},
		{name: "v2 LOCAL (health check)", header: func(*testing.T) []byte {
			b, _ := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
			return b
		}, wantRemote: "127.0.0.1:"},
		{name: "no header", header: func(*testing.T) []byte { return []byte("USER job1\r\n") }},
		{name: "UDP header", header: func(t *testing.T) []byte {
			s, _ := net.ResolveUDPAddr("udp", "203.0.113.9:53")
			b, _ := proxyproto.HeaderProxyFromAddrs(2, s, s).Format()
			return b
		}},
		{name: "garbled v2", header: func(*testing.T) []byte { return append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 1, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lt := newLBTest(t, true)
			c := lt.dial(t, "127.0.0.1", append(tt.header(t), "after the header\r\n"...))
			if tt.wantRemote == "" {
				if got, _ := readAll(c); got != "" {
					t.Errorf("the refused connection got %q", got)
				}
				if sc := lt.accept(t, 50*time.Millisecond); sc != nil {
					t.Fatalf("accepted a connection from %v; want it refused", sc.RemoteAddr())
				}
				if !strings.Contains(lt.logs.String(), "without a valid PROXY header") {
					t.Errorf("the refusal is not logged: %s", lt.logs.String())
				}
				return
			}
			sc := lt.accept(t, 2*time.Second)
			if sc == nil {
				t.Fatal("no connection accepted")
			}
			if got := sc.RemoteAddr().String(); !strings.HasPrefix(got, tt.wantRemote) {
				t.Errorf("RemoteAddr = %s; want %s", got, tt.wantRemote)
			}
			if got := sc.LocalAddr().String(); got != lt.ln.Addr().String() {
				t.Errorf("LocalAddr = %s; want the listener's own %s", got, lt.ln.Addr())
			}
			line, err := bufio.NewReader(sc).ReadString('\n')
			if err != nil || line != "after the header\r\n" {
				t.Errorf("read %q, %v; want the bytes after the header", line, err)
			}
			if _, ok := sc.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn); !ok {
				t.Errorf("NetConn is not the TCP connection: proxy could not reset a broken transfer")
			}
			if err := sc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Errorf("CloseWrite: %v", err)
			}
			if got, err := readAll(c); got != "" || err != nil {
				t.Errorf("after CloseWrite the client read %q, %v; want EOF", got, err)
			}
		})
	}
}

// TestLBListenerSilentBalancer checks that a balancer connection that
// sends nothing holds up no other connection, and is closed after the
// header timeout.
func TestLBListenerSilentBalancer(t *testing.T) {
	lt := newLBTest(t, true)
	silent := lt.dial(t, "127.0.0.1", nil)
	start := time.Now()
	lt.dial(t, "127.0.0.1", proxyHeader(t, 2, "203.0.113.9:1", "192.0.2.1:21"))
	sc := lt.accept(t, 2*time.Second)
	if sc == nil || !strings.HasPrefix(sc.RemoteAddr().String(), "203.0.113.9:") {
		t.Fatalf("the second connection was not served: %v", sc)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("the second connection waited %v behind the silent one", d)
	}
	if got, err := readAll(silent); got != "" || err != nil {
		t.Errorf("the silent connection read %q, %v; want EOF after the header timeout", got, err)
	}
}

func TestLBListenerDirect(t *testing.T) {
	tests := []struct {
		name    string
		control bool
		send    []string // written one after the other, with a pause
		want    string   // what the server reads
		refused bool     // the server's read fails: a header from a non-balancer
	}{
		{name: "commands", control: true, send: []string{"USER job1\r\nPWD\r\nPASV\r\n"}, want: "USER job1\r\nPWD\r\nPASV\r\n"},
		{name: "short command starting with P", control: true, send: []string{"P\r\n"}, want: "P\r\n"},
		{name: "PROX without Y", control: true, send: []string{"PROX", "Z\r\n"}, want: "PROXZ\r\n"},
		{name: "empty line first", control: true, send: []string{"\r\n", "NOOP\r\n"}, want: "\r\nNOOP\r\n"},
		{name: "v1 header", control: true, send: []string{"PROXY TCP4 203.0.113.9 192.0.2.1 1 21\r\nUSER x\r\n"}, refused: true},
		{name: "v1 header split", control: true, send: []string{"PRO", "XY TCP4 203.0.113.9 192.0.2.1 1 21\r\n"}, refused: true},
		{name: "v2 header", control: true, send: []string{"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"}, refused: true},
		{name: "v2 header split", control: true, send: []string{"\r\n\r\n", "\x00\r\nQUIT\n\x21"}, refused: true},
		{name: "passive data is never checked", control: false, send: []string{"PROXY TCP4 203.0.113.9 192.0.2.1 1 21\r\n"}, want: "PROXY TCP4 203.0.113.9 192.0.2.1 1 21\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lt := newLBTest(t, tt.control)
			c := lt.dial(t, "127.0.0.2", nil)
			// Served at once, before the client sends anything: FTP
			// servers speak first.
			sc := lt.accept(t, 2*time.Second)
			if sc == nil {
				t.Fatal("a direct connection was not accepted before it sent anything")
			}
			if got := sc.RemoteAddr().String(); !strings.HasPrefix(got, "127.0.0.2:") {
				t.Errorf("RemoteAddr = %s; want 127.0.0.2", got)
			}
			go func() {
				for i, s := range tt.send {
					if i > 0 {
						time.Sleep(20 * time.Millisecond)
					}
					c.Write([]byte(s))
				}
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := readAll(sc)
			if tt.refused {
				if !errors.Is(err, errSpoofedHeader) {
					t.Fatalf("read %q, %v; want the header refused", got, err)
				}
				if !strings.Contains(lt.logs.String(), "not a load balancer") || !strings.Contains(lt.logs.String(), "127.0.0.2") {
					t.Errorf("the refusal is not logged with the address: %s", lt.logs.String())
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("read %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLBListenerDeadlineAndClose(t *testing.T) {
	lt := newLBTest(t, false)
	lt.ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := lt.ln.Accept()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Accept after the deadline = %v; want a timeout", err)
	}
	lt.ln.SetDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := lt.ln.Accept(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	lt.ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Accept")
	}
	if err := lt.ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

// scaleGate is "ftpgate serve" wired in-process as cmdServe wires it,
// with the scale-out hook applied, in front of an in-process SFTP partner.
type scaleGate struct {
	addr    string
	records *lockedBuffer
	logs    *lockedBuffer
	root    string
	srv     *proxy.Server
}

const (
	scaleUser = "job1"
	scalePass = "Scale-client-pw-4kT8"
)

func startScaleGate(t *testing.T, env map[string]string) *scaleGate {
	t.Helper()
	root := t.TempDir()
	up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{"partner": "pw-scale-partner"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	hash, _ := bcrypt.GenerateFromPassword([]byte(scalePass), bcrypt.MinCost)
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(polPath, []byte(fmt.Sprintf(`version: 1
routes:
  - name: r1
    user: %s
    password_bcrypt: %q
    upstream: sftp://partner@%s
    upstream_password: {env: PARTNER_PW}
    host_key_sha256: [%q]
`, scaleUser, hash, up.Addr, up.Fingerprint)), 0o644)
	full := map[string]string{"FTPGATE_POLICY": polPath, "PARTNER_PW": "pw-scale-partner", "FTPGATE_POOL": "false",
		"FTPGATE_LOGIN_FAIL_DELAY": "-1s", "FTPGATE_LOG_LEVEL": "debug"}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := loadConfig(full)
	if err != nil {
		t.Fatal(err)
	}
	g := &scaleGate{records: &lockedBuffer{}, logs: &lockedBuffer{}, root: root}
	log := newLogger(g.logs, cfg.LogLevel)
	holder, err := newPolicyHolder(cfg.Policy, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.server()
	srv.Dialer = cfg.dialer(func(k string) string { return full[k] })
	srv.Audit = audit.New(g.records)
	srv.Logger = log
	srv.Policy = holder.Current
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The hook cmdServe runs (see the report for serve.go).
	ln, stopScale, err := cfg.scaleOut(srv, ln, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
		waitUntil(t, "sessions to end", func() bool { return srv.ActiveSessions() == 0 })
		stopScale()
		if t.Failed() {
			t.Logf("log:\n%s\nrecords:\n%s", g.logs.String(), g.records.String())
		}
	})
	g.addr, g.srv = ln.Addr().String(), srv
	return g
}

// ftpVia opens a control connection from the address from, sending
// header first when it is not nil, and reads the greeting.
func ftpVia(t *testing.T, addr, from string, header []byte) *textproto.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if header != nil {
		c.Write(header)
	}
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return tp
}

func expectCode(t *testing.T, tp *textproto.Conn, want int, format string, args ...any) string {
	t.Helper()
	if format != "" {
		tp.PrintfLine(format, args...)
	}
	code, msg, err := tp.ReadResponse(0)
	if code != want {
		t.Fatalf("%q: %d %s (%v); want %d", fmt.Sprintf(format, args...), code, msg, err, want)
	}
	return msg
}

// TestScaleOutServes runs the gateway with FTPGATE_PROXY_PROTOCOL_FROM
// in-process: a session through the "balancer" (127.0.0.1, writing the
// header itself) is recorded under the client address from the header,
// its passive data connection must carry the same client address (the
// port-steal check), and a direct client is served under its own address
// but refused when it sends a header.
func TestScaleOutServes(t *testing.T) {
	g := startScaleGate(t, map[string]string{"FTPGATE_PROXY_PROTOCOL_FROM": "127.0.0.1", "FTPGATE_PASV_ADDRESS": "127.0.0.1"})
	gw := g.addr

	tp := ftpVia(t, gw, "127.0.0.1", proxyHeader(t, 2, "203.0.113.9:40001", gw))
	expectCode(t, tp, 331, "USER %s", scaleUser)
	expectCode(t, tp, 230, "PASS %s", scalePass)
	expectCode(t, tp, 200, "TYPE I")
	msg := expectCode(t, tp, 229, "EPSV")
	port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
	dataAddr := "127.0.0.1:" + port
	// A data connection through the balancer for another client is
	// port stealing: closed, and the wait goes on.
	thief, err := net.Dial("tcp", dataAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	thief.Write(proxyHeader(t, 2, "203.0.113.66:5000", dataAddr))
	tp.PrintfLine("STOR up.bin")
	if got, _ := readAll(thief); got != "" {
		t.Errorf("the thief read %q", got)
	}
	dc, err := net.Dial("tcp", dataAddr)
	if err != nil {
		t.Fatal(err)
	}
	dc.Write(proxyHeader(t, 2, "203.0.113.9:40002", dataAddr))
	dc.Write([]byte("PROXY protocol through the balancer\n"))
	dc.Close()
	if code, msg, _ := tp.ReadResponse(0); code != 150 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	expectCode(t, tp, 226, "")
	if b, _ := os.ReadFile(filepath.Join(g.root, "up.bin")); string(b) != "PROXY protocol through the balancer\n" {
		t.Errorf("uploaded %q", b)
	}
	expectCode(t, tp, 221, "QUIT")

	direct := ftpVia(t, gw, "127.0.0.2", nil)
	expectCode(t, direct, 331, "USER %s", scaleUser)
	expectCode(t, direct, 230, "PASS %s", scalePass)
	expectCode(t, direct, 221, "QUIT")

	spoof := ftpVia(t, gw, "127.0.0.2", proxyHeader(t, 2, "203.0.113.77:1", gw))
	spoof.PrintfLine("USER %s", scaleUser)
	if code, _, err := spoof.ReadResponse(0); err == nil {
		t.Errorf("a header from a non-balancer got reply %d; want the connection closed", code)
	}
	waitUntil(t, "the sessions to end", func() bool { return g.srv.ActiveSessions() == 0 })

	recs := g.records.String()
	for _, want := range []string{`"record":"login","session":`, `"client":"203.0.113.9:40001"`, `"client":"127.0.0.2:`} {
		if !strings.Contains(recs, want) {
			t.Errorf("records lack %s", want)
		}
	}
	for _, bad := range []string{`"client":"127.0.0.1:`, "203.0.113.66", "203.0.113.77"} {
		if strings.Contains(recs, bad) {
			t.Errorf("records hold %s:\n%s", bad, recs)
		}
	}
	if n := strings.Count(recs, `"record":"login"`); n != 2 {
		t.Errorf("%d logins recorded; want 2", n)
	}
	if !strings.Contains(g.logs.String(), "not a load balancer") {
		t.Errorf("the spoofed header is not logged")
	}
}

// TestScaleOutRedisDown starts the gateway with FTPGATE_REDIS_URL naming
// a server that is not there: it starts, says so without the password,
// and refuses logins with 421 and a record.
func TestScaleOutRedisDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const pw = "Redis-pw-down-5Jq"
	g := startScaleGate(t, map[string]string{
		"FTPGATE_REDIS_URL":     "redis://:" + pw + "@127.0.0.1:" + strconv.Itoa(port) + "/0",
		"FTPGATE_REDIS_TIMEOUT": "200ms",
	})
	if _, ok := g.srv.Limiter.(*proxy.RedisLimiter); !ok {
		t.Fatalf("Limiter is %T; want *proxy.RedisLimiter", g.srv.Limiter)
	}
	// The shared session count is asked before the greeting: with Redis
	// down the session is refused at once, with a record.
	c, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if code, _, _ := textproto.NewConn(c).ReadResponse(0); code != 421 {
		t.Fatalf("greeting with Redis down: %d; want 421", code)
	}
	waitUntil(t, "the refusal record", func() bool {
		return strings.Contains(g.records.String(), `"reason":"session counter unavailable: `)
	})
	logs := g.logs.String()
	if !strings.Contains(logs, "logins are refused (421) until Redis answers") || !strings.Contains(logs, "redis://:xxxxx@127.0.0.1:") {
		t.Errorf("the start-up log does not report Redis down with the URL redacted:\n%s", logs)
	}
	if strings.Contains(logs+g.records.String(), pw) {
		t.Errorf("the Redis password appears in the log or the records")
	}
}

// TestScaleOutOff checks that with nothing set the listener and the
// limiter are left as config.server made them.
func TestScaleOutOff(t *testing.T) {
	cfg, err := loadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.server()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ln, stop, err := cfg.scaleOut(srv, raw, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if ln != raw || srv.WrapPassiveListener != nil {
		t.Errorf("scale-out changed the listener with nothing configured")
	}
	if _, ok := srv.Limiter.(*proxy.MemoryLimiter); !ok {
		t.Errorf("Limiter is %T; want the in-memory one", srv.Limiter)
	}
	cfg.Scale.ProxyProtocolFrom = "bogus"
	if _, _, err := cfg.scaleOut(srv, raw, zerolog.Nop()); err == nil {
		t.Errorf("scaleOut accepted a bad FTPGATE_PROXY_PROTOCOL_FROM")
	}
}

// TestLBListenerCloseDropsPending checks that Close also closes a
// balancer's connection whose header is still awaited, at once rather
// than after the header timeout.
func TestLBListenerCloseDropsPending(t *testing.T) {
	lt := newLBTest(t, true)
	silent := lt.dial(t, "127.0.0.1", nil)
	time.Sleep(50 * time.Millisecond) // accepted, header awaited
	start := time.Now()
	lt.ln.Close()
	if got, err := readAll(silent); got != "" || err != nil {
		t.Errorf("read %q, %v; want EOF", got, err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("closed after %v; want at once, not after the 300 ms header timeout", d)
	}
}
