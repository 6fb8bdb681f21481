package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// servedGate is "ftpgate serve" running in-process.
type servedGate struct {
	ftp, admin string
	stderr     *lockedBuffer
	cancel     context.CancelFunc
	exit       chan int
}

func startServe(t *testing.T, env map[string]string) *servedGate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &servedGate{stderr: &lockedBuffer{}, cancel: cancel, exit: make(chan int, 1)}
	go func() { g.exit <- run(ctx, func() {}, []string{"serve"}, env, io.Discard, g.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.exit:
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not stop")
		}
	})
	reListen := regexp.MustCompile(`"listen":"([^"]+)"`)
	reAdmin := regexp.MustCompile(`"admin_listen":"([^"]+)"`)
	deadline := time.Now().Add(10 * time.Second)
	for g.ftp == "" || g.admin == "" {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", g.stderr.String())
		}
		if m := reListen.FindStringSubmatch(g.stderr.String()); m != nil {
			g.ftp = m[1]
		}
		if m := reAdmin.FindStringSubmatch(g.stderr.String()); m != nil {
			g.admin = m[1]
		}
		time.Sleep(5 * time.Millisecond)
	}
	return g
}

func (g *servedGate) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ftpLogin(t *testing.T, addr, user, pass string) (int, *textproto.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tp := textproto.NewConn(c)
	tp.ReadResponse(220)
	tp.PrintfLine("USER %s", user)
	tp.ReadResponse(331)
	tp.PrintfLine("PASS %s", pass)
	code, _, _ := tp.ReadResponse(0)
	return code, tp
}

func TestServeAdminEndpoint(t *testing.T) {
	root := t.TempDir()
	up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{"partner": "pw-partner-x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("client-pw"), bcrypt.MinCost)
	good := fmt.Sprintf(`version: 1
routes:
  - name: r1
    user: job1
    password_bcrypt: %q
    upstream: sftp://partner@%s
    upstream_password: {env: PARTNER_PW}
    host_key_sha256: [%q]
`, hash, up.Addr, up.Fingerprint)
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(polPath, []byte(good), 0o644)
	g := startServe(t, map[string]string{
		"FTPGATE_LISTEN": "127.0.0.1:0", "FTPGATE_ADMIN_LISTEN": "127.0.0.1:0", "FTPGATE_POLICY": polPath,
		"PARTNER_PW": "pw-partner-x", "FTPGATE_POLICY_WATCH_INTERVAL": "20ms", "FTPGATE_LOGIN_FAIL_DELAY": "-1s",
		"FTPGATE_PROBE_INTERVAL": "50ms",
	})

	if code, _ := g.get(t, "/livez"); code != 200 {
		t.Errorf("/livez: %d", code)
	}
	waitUntil(t, "ready", func() bool { code, _ := g.get(t, "/readyz"); return code == 200 })
	if code, _ := g.get(t, "/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without FTPGATE_ADMIN_PPROF: %d; want 404", code)
	}

	code, tp := ftpLogin(t, g.ftp, "job1", "client-pw")
	if code != 230 {
		t.Fatalf("login: %d", code)
	}
	tp.PrintfLine("QUIT")
	tp.ReadResponse(221)
	ftpLogin(t, g.ftp, "job1", "wrong")
	waitUntil(t, "metrics", func() bool {
		_, m := g.get(t, "/metrics")
		return strings.Contains(m, `ftpgate_sessions_total{result="ok"} 1`) &&
			strings.Contains(m, `ftpgate_logins_failed_total{reason="password",route="r1"} 1`) &&
			strings.Contains(m, `ftpgate_policy_decisions_total{action="allow",route="r1"} 2`) &&
			strings.Contains(m, `ftpgate_upstream_dial_seconds_count{kind="sftp",result="ok",route="r1"} 1`)
	})
	_, m := g.get(t, "/metrics")
	if strings.Contains(m, "job1") {
		t.Errorf("a user name is a metric label")
	}

	// A broken policy is rejected: the old one keeps serving, the replica
	// says it is unready, and a fixed file makes it ready again.
	os.WriteFile(polPath, []byte("version: 1\nroutes:\n  - usr: x\n"), 0o644)
	waitUntil(t, "unready after a broken policy", func() bool {
		code, body := g.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "policy-file")
	})
	if code, _ := ftpLogin(t, g.ftp, "job1", "client-pw"); code != 230 {
		t.Errorf("login under the kept policy: %d; want 230", code)
	}
	os.WriteFile(polPath, []byte(strings.Replace(good, "user: job1", "user: job2", 1)), 0o644)
	waitUntil(t, "ready after a fixed policy", func() bool { code, _ := g.get(t, "/readyz"); return code == 200 })
	if code, _ := ftpLogin(t, g.ftp, "job2", "client-pw"); code != 230 {
		t.Errorf("login under the reloaded policy: %d; want 230", code)
	}
	_, m = g.get(t, "/metrics")
	if !strings.Contains(m, `ftpgate_policy_reloads_total{result="error"}`) || !strings.Contains(m, "ftpgate_policy_generation 2") {
		t.Errorf("reload metrics missing:\n%s", grepLines(m, "ftpgate_policy"))
	}

	// The only partner goes away: the cached probe turns the replica
	// unready, without any request dialling.
	up.Close()
	waitUntil(t, "unready without a reachable partner", func() bool {
		code, body := g.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "no partner reachable")
	})
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

func TestServeAuditSinkFailureIsUnready(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(polPath, []byte("version: 1\n"), 0o644)
	g := startServe(t, map[string]string{
		"FTPGATE_LISTEN": "127.0.0.1:0", "FTPGATE_ADMIN_LISTEN": "127.0.0.1:0", "FTPGATE_POLICY": polPath,
		"FTPGATE_AUDIT_FILE": "/dev/full", "FTPGATE_AUDIT_STDOUT": "false", "FTPGATE_AUDIT_FSYNC": "never",
	})
	c, err := net.Dial("tcp", g.ftp) // its session_start record cannot be written
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitUntil(t, "unready with a failing audit sink", func() bool {
		code, body := g.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "audit")
	})
}

// TestReadyzFollowsTheAuditSink: a syslog collector that goes away makes
// the replica unready (no transfer without a record), and ready again when
// it is back and the backlog is written.
func TestReadyzFollowsTheAuditSink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	collect := func(ln net.Listener) chan net.Conn {
		conns := make(chan net.Conn, 16)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					close(conns)
					return
				}
				conns <- c
				go io.Copy(io.Discard, c)
			}
		}()
		return conns
	}
	conns := collect(ln)
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(polPath, []byte("version: 1\n"), 0o644)
	g := startServe(t, map[string]string{
		"FTPGATE_LISTEN": "127.0.0.1:0", "FTPGATE_ADMIN_LISTEN": "127.0.0.1:0", "FTPGATE_POLICY": polPath,
		"FTPGATE_AUDIT_SYSLOG": addr, "FTPGATE_AUDIT_STDOUT": "false",
	})
	waitUntil(t, "ready", func() bool { code, _ := g.get(t, "/readyz"); return code == 200 })

	// The collector goes away; the next record cannot be written.
	ln.Close()
	for c := range conns {
		c.Close()
	}
	poke := func() {
		if c, err := net.Dial("tcp", g.ftp); err == nil {
			c.Close()
		}
	}
	waitUntil(t, "unready without the collector", func() bool {
		poke()
		code, body := g.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "audit")
	})

	// It comes back on the same address: the sink reconnects, writes its
	// backlog, and the replica is ready again.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer ln2.Close()
	collect(ln2)
	deadline := time.Now().Add(60 * time.Second)
	for {
		poke()
		if code, _ := g.get(t, "/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			_, body := g.get(t, "/readyz")
			t.Fatalf("still unready after the collector came back:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
