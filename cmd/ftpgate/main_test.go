package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemo runs "ftpgate demo" in-process on a random port and moves a
// file through it over real FTP, real SSH and real SFTP.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	exit := make(chan int, 1)
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	const auditKey = "0123456789abcdef-test-key"
	env := map[string]string{
		"FTPGATE_LISTEN": "127.0.0.1:0", "FTPGATE_ADMIN_LISTEN": "127.0.0.1:0", "FTPGATE_AUDIT_FILE": auditFile,
		"FTPGATE_AUDIT_KEY": auditKey, "FTPGATE_AUDIT_FSYNC": "never",
	}
	go func() {
		exit <- run(ctx, func() {}, []string{"demo"}, env, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`ftp://(127\.0\.0\.1:\d+)`)
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("demo did not start: %s", stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := textproto.NewConn(c)
	cmd := func(want int, format string, args ...any) string {
		t.Helper()
		if format != "" {
			tp.PrintfLine(format, args...)
		}
		_, msg, err := tp.ReadResponse(want)
		if err != nil {
			t.Fatalf("%q: %v", format, err)
		}
		return msg
	}
	cmd(220, "")
	cmd(331, "USER demo")
	cmd(230, "PASS demo")
	cmd(200, "TYPE I")
	payload := bytes.Repeat([]byte("ftpgate demo "), 100000)
	data := func() net.Conn {
		msg := cmd(229, "EPSV")
		port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
		dc, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	dc := data()
	cmd(150, "STOR demo.bin")
	dc.Write(payload)
	dc.Close()
	cmd(226, "")
	dc = data()
	cmd(150, "RETR demo.bin")
	got, _ := io.ReadAll(dc)
	cmd(226, "")
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("demo round trip: %d bytes back; want %d identical", len(got), len(payload))
	}
	cmd(221, "QUIT")
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("demo exit code %d; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"record":"transfer"`) {
		t.Errorf("no transfer record on stdout")
	}
	if strings.Contains(stdout.String()+stderr.String(), "partner-") {
		t.Errorf("the demo partner's password reached the output")
	}

	// The audit file verifies with the key, and a changed byte is found.
	verify := func(path string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), func() {}, []string{"audit", "verify", path}, map[string]string{"FTPGATE_AUDIT_KEY": auditKey}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := verify(auditFile); code != 0 || !strings.Contains(out, "chain whole") {
		t.Fatalf("audit verify: exit %d: %s", code, out)
	}
	raw, _ := os.ReadFile(auditFile)
	if strings.Contains(string(raw), auditKey) {
		t.Fatalf("the audit key reached the audit file")
	}
	// Turn a failed reply into a successful one: valid JSON, wrong history.
	raw = bytes.Replace(raw, []byte(`"code":226`), []byte(`"code":250`), 1)
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	os.WriteFile(tampered, raw, 0o600)
	if code, out := verify(tampered); code != 1 || !strings.Contains(out, "modified") {
		t.Fatalf("audit verify of a changed byte: exit %d: %s", code, out)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, nil, 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(fmt.Sprintf(`version: 1
known_hosts: %s
routes:
  - name: pay
    user: PAYJOB
    upstream: sftp://sftp.partner.test:2222/in
`, kh)), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nroutes:\n  - user: x\n    upstreem: sftp://h\n"), 0o644)
	missing := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missing, []byte("version: 1\nroutes:\n  - user: x\n    upstream: sftp://h\n    known_hosts: /nonexistent/known_hosts\n"), 0o644)

	tests := []struct {
		name     string
		env      map[string]string
		wantCode int
		wantOut  string
	}{
		{"valid policy", map[string]string{"FTPGATE_POLICY": good}, 0, "route pay"},
		{"unknown key names its line", map[string]string{"FTPGATE_POLICY": bad}, 1, "bad.yaml:4"},
		{"missing file named", map[string]string{"FTPGATE_POLICY": missing}, 1, "/nonexistent/known_hosts"},
		{"bad port range", map[string]string{"FTPGATE_POLICY": good, "FTPGATE_PASV_PORTS": "9-1"}, 1, "FTPGATE_PASV_PORTS"},
		{"bad duration", map[string]string{"FTPGATE_POLICY": good, "FTPGATE_IDLE_TIMEOUT": "soon"}, 1, "IDLE_TIMEOUT"},
		{"bad log level", map[string]string{"FTPGATE_POLICY": good, "FTPGATE_LOG_LEVEL": "loud"}, 1, "FTPGATE_LOG_LEVEL"},
		{"bad pasv address", map[string]string{"FTPGATE_POLICY": good, "FTPGATE_PASV_ADDRESS": "::1"}, 1, "FTPGATE_PASV_ADDRESS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), func() {}, []string{"check"}, tc.env, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.wantOut) {
				t.Fatalf("output lacks %q:\n%s", tc.wantOut, all)
			}
		})
	}
}

func TestUsageAndVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), func() {}, nil, nil, &out, &errOut); code != 2 {
		t.Errorf("no command: exit %d; want 2", code)
	}
	if code := run(context.Background(), func() {}, []string{"frobnicate"}, nil, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d; want 2", code)
	}
	out.Reset()
	if code := run(context.Background(), func() {}, []string{"version"}, nil, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "ftpgate ") {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
}

func TestServeRefusesBadPolicy(t *testing.T) {
	var out, errOut bytes.Buffer
	env := map[string]string{"FTPGATE_POLICY": "/nonexistent/policy.yaml", "FTPGATE_LISTEN": "127.0.0.1:0"}
	if code := run(context.Background(), func() {}, []string{"serve"}, env, &out, &errOut); code != 2 {
		t.Fatalf("serve with a missing policy: exit %d; want 2 (%s)", code, errOut.String())
	}
}
