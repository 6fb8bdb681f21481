package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// demoPolicy is the demo's policy file, run through the real loader. The
// partner's password comes from a variable only this process knows, so the
// route works exactly as a production route with local authentication.
const demoPolicy = `version: 1
routes:
  - name: demo
    user: demo
    auth: local
    password_bcrypt: %q
    upstream: sftp://partner@%s
    upstream_password: {env: FTPGATE_DEMO_PARTNER_PASSWORD}
    host_key_sha256: [%q]
`

// cmdDemo starts an in-process SFTP partner (real SSH and SFTP, over a
// temporary directory) and the proxy in front of it on 127.0.0.1:2121.
func cmdDemo(ctx context.Context, stopSignals func(), env map[string]string, stdout, stderr io.Writer) int {
	if env["FTPGATE_LISTEN"] == "" {
		env["FTPGATE_LISTEN"] = "127.0.0.1:2121"
	}
	cfg, err := loadConfig(env)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate demo: configuration:", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	dir, err := os.MkdirTemp("", "ftpgate-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	partnerPW := "partner-" + fmt.Sprint(os.Getpid()) + "-" + randomWord()
	up, err := translatetest.NewServer(dir, translatetest.Options{Users: map[string]string{"partner": partnerPW}})
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate demo: sftp partner:", err)
		return 1
	}
	defer up.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte("demo"), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate demo:", err)
		return 1
	}
	pol, err := policy.Load(strings.NewReader(fmt.Sprintf(demoPolicy, hash, up.Addr, up.Fingerprint)), "demo-policy.yaml")
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate demo: policy:", err)
		return 1
	}
	srv := cfg.server()
	srv.Dialer = cfg.dialer(func(k string) string {
		if k == "FTPGATE_DEMO_PARTNER_PASSWORD" {
			return partnerPW
		}
		return env[k]
	})
	em, err := newEmitter(ctx, cfg.Audit, env, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: audit:", err)
		return 2
	}
	defer em.Close()
	if key, _ := auditKey(cfg.Audit, env); key.IsZero() {
		log.Warn().Msg("no FTPGATE_AUDIT_KEY_FILE: records carry no HMAC chain and can be edited unnoticed")
	}
	srv.Audit = em
	srv.Logger = log
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate demo: listen:", err)
		return 1
	}
	addr := ln.Addr().String()
	fmt.Fprintf(stderr, `
ftpgate demo
  FTP proxy       ftp://%[1]s   (user demo, password demo)
  SFTP partner    sftp://partner@%[2]s  host key %[3]s
  partner files   %[4]s
  admin endpoint  http://%[5]s/metrics  /livez  /readyz

Try it (records are JSON lines on stdout, diagnostics on stderr):
  echo hello > hello.txt
  curl -T hello.txt ftp://demo:demo@%[1]s/
  curl ftp://demo:demo@%[1]s/
  curl -o back.txt ftp://demo:demo@%[1]s/hello.txt && cmp hello.txt back.txt

Stop with Ctrl-C.
`, addr, up.Addr, up.Fingerprint, dir, cfg.AdminListen)
	g := &gateway{cfg: cfg, srv: srv, ln: ln, policy: fixedPolicy(pol), audit: em, log: log}
	g.setupMetrics()
	return g.run(ctx, stopSignals)
}

func randomWord() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
