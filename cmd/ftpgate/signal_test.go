package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// TestSIGTERMDrainsTransfers builds the real binary, starts a 256 MiB
// upload through it and sends SIGTERM in the middle: the transfer
// completes, new connections are refused, and the process exits 0.
func TestSIGTERMDrainsTransfers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and moves 256 MiB")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ftpgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := t.TempDir()
	up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{"partner": "pw-partner-sig"}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("client-pw"), bcrypt.MinCost)
	polPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polPath, []byte(fmt.Sprintf(`version: 1
routes:
  - name: r1
    user: job1
    password_bcrypt: %q
    upstream: sftp://partner@%s
    upstream_password: {env: PARTNER_PW}
    host_key_sha256: [%q]
`, hash, up.Addr, up.Fingerprint)), 0o644)

	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"FTPGATE_LISTEN=127.0.0.1:0", "FTPGATE_ADMIN_LISTEN=off", "FTPGATE_POLICY=" + polPath,
		"PARTNER_PW=pw-partner-sig", "FTPGATE_DRAIN_TIMEOUT=60s", "FTPGATE_AUDIT_STDOUT=false", "FTPGATE_AUDIT_FILE=" + filepath.Join(dir, "audit.jsonl")}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	re := regexp.MustCompile(`"listen":"([^"]+)"`)
	var addr string
	waitUntil(t, "the binary to listen", func() bool {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := textproto.NewConn(c)
	step := func(want int, format string, args ...any) string {
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
	step(220, "")
	step(331, "USER job1")
	step(230, "PASS client-pw")
	step(200, "TYPE I")
	msg := step(229, "EPSV")
	port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
	dc, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	step(150, "STOR big.bin")

	const size = 256 << 20
	block := bytes.Repeat([]byte("ftpgate drains "), 64<<10/15+1)[:64<<10]
	h := sha256.New()
	signalled := false
	for sent := 0; sent < size; sent += len(block) {
		if !signalled && sent >= size/4 {
			cmd.Process.Signal(syscall.SIGTERM)
			signalled = true
			// New connections are refused once the drain began.
			waitUntil(t, "the listener to close", func() bool {
				nc, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					nc.Close()
				}
				return err != nil
			})
		}
		dc.Write(block)
		h.Write(block)
	}
	dc.Close()
	step(226, "")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ftpgate exited with %v; want 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ftpgate did not exit after the transfer")
	}
	f, err := os.Open(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hf := sha256.New()
	io.Copy(hf, f)
	if !bytes.Equal(hf.Sum(nil), h.Sum(nil)) {
		t.Fatalf("the upload finished during the drain differs upstream")
	}
}
