package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// TestMain fails the package's test run if any goroutine is still running
// after the last test: every server, session, transfer and upstream a test
// starts must be gone by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestServeLeavesNothingBehind runs "ftpgate serve" in-process with its
// defaults (the upstream connection pool on), logs in once so the pool
// holds an SSH connection, stops serve, and checks that nothing it started
// outlives it: no goroutine, and no connection at the partner. TestMain's
// check alone cannot see this, because the partner a test closes takes the
// pool's connections down with it.
func TestServeLeavesNothingBehind(t *testing.T) {
	up, err := translatetest.NewServer(t.TempDir(), translatetest.Options{Users: map[string]string{"partner": "pw-leak-partner"}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	// The goroutines from here on are serve's, and the partner's for the
	// connections serve opens.
	before := goleak.IgnoreCurrent()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw-leak-client"), bcrypt.MinCost)
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(polPath, []byte(fmt.Sprintf(`version: 1
routes:
  - name: r1
    user: job1
    password_bcrypt: %q
    upstream: sftp://partner@%s
    upstream_password: {env: PARTNER_PW}
    host_key_sha256: [%q]
`, hash, up.Addr, up.Fingerprint)), 0o644)
	g := startServe(t, map[string]string{
		"FTPGATE_LISTEN": "127.0.0.1:0", "FTPGATE_ADMIN_LISTEN": "127.0.0.1:0", "FTPGATE_POLICY": polPath,
		"PARTNER_PW": "pw-leak-partner", "FTPGATE_LOGIN_FAIL_DELAY": "-1s",
	})
	code, tp := ftpLogin(t, g.ftp, "job1", "pw-leak-client")
	if code != 230 {
		t.Fatalf("login: %d", code)
	}
	tp.PrintfLine("QUIT")
	tp.ReadResponse(221)
	waitUntil(t, "the partner's connection", func() bool { return up.Connections() > 0 })

	g.cancel()
	select {
	case exit := <-g.exit:
		g.exit <- exit // for startServe's cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	deadline := time.Now().Add(2 * time.Second)
	for up.Connections() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	n, leak := up.Connections(), goleak.Find(before)
	if n > 0 || leak != nil {
		left := "none"
		if leak != nil {
			left = topsOfStacks(leak.Error())
		}
		t.Fatalf("after serve returned, the partner still has %d connection(s) from it; goroutines left: %s "+
			"(serve must close the upstream pool)", n, left)
	}
}

// topsOfStacks summarises a goleak report as the function on top of each
// leaked goroutine's stack, with counts.
func topsOfStacks(report string) string {
	count := map[string]int{}
	var order []string
	for _, part := range strings.Split(report, ", with ")[1:] {
		top, _, _ := strings.Cut(part, " on top of the stack")
		if count[top] == 0 {
			order = append(order, top)
		}
		count[top]++
	}
	var b strings.Builder
	for i, top := range order {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d× %s", count[top], top)
	}
	return b.String()
}
