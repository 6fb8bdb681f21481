package secrets

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// secretSet holds every secret of a run by a name that says where it
// travels. Each value is random, so finding any 12-byte piece of one in an
// output cannot be chance.
type secretSet map[string]string

// newSecret returns prefix followed by 24 random letters and digits.
func newSecret(t *testing.T, prefix string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte(prefix)
	for i := 0; i < 24; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, alphabet[n.Int64()])
	}
	return string(b)
}

// window is the length of the pieces of a secret that are searched for.
const window = 12

// forms returns what to search for a secret: every window-byte piece of
// it, and its whole base64, URL-escaped and hex forms.
func forms(secret string) []string {
	var out []string
	for i := 0; i+window <= len(secret); i++ {
		out = append(out, secret[i:i+window])
	}
	if len(secret) < window {
		out = append(out, secret)
	}
	return append(out,
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret)),
		url.QueryEscape(secret),
		hex.EncodeToString([]byte(secret)),
		strings.ToUpper(hex.EncodeToString([]byte(secret))),
	)
}

// lockedBuffer collects a subprocess's output while the test reads it.
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

// buildGate builds cmd/ftpgate into a temporary directory.
func buildGate(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build ftpgate with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ftpgate")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/ftpgate/ftpgate/cmd/ftpgate")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// world is everything a run sets up: the partners, the key files, the
// policy and the environment "ftpgate serve" gets.
type world struct {
	secrets  secretSet
	partner  *translatetest.Server // the partner every route but "crash" uses
	crash    *translatetest.Server // the partner that dies mid-transfer
	env      []string
	auditLog string
	dir      string
}

// Client logins of the routes. Each route has its own client password so
// a finding names its path.
var routes = []string{"pwenv", "pwfile", "keyenv", "keyfile", "wrongup", "hostkey", "wrongpass", "crash"}

func newWorld(t *testing.T, pool bool) *world {
	t.Helper()
	w := &world{secrets: secretSet{}, dir: t.TempDir()}
	s := w.secrets
	for _, r := range routes {
		s["client password of route "+r] = newSecret(t, "Cli"+r+"-")
	}
	// A z/OS password phrase: blanks inside and at the end.
	s["client password of route pwenv"] = "phrase " + newSecret(t, "Cl1") + " words "
	s["a wrong client password"] = newSecret(t, "WrongCli-")
	s["passthrough password (the partner's)"] = newSecret(t, "Pthru-")
	s["a wrong passthrough password"] = newSecret(t, "PthruWrong-")
	s["password of a refused user"] = newSecret(t, "Nobody-")
	s["password of a refused user@host login"] = newSecret(t, "UaH-")
	s["ACCT argument"] = newSecret(t, "Acct-")
	s["upstream_password from env"] = newSecret(t, "UpEnv-")
	s["upstream_password from file"] = newSecret(t, "UpFile-")
	s["upstream_password from env that the partner refuses"] = newSecret(t, "UpWrong-")
	s["upstream_password of the route with an untrusted host key"] = newSecret(t, "UpHk-")
	s["upstream_password of the crashing partner"] = newSecret(t, "UpCrash-")
	s["key passphrase from env"] = newSecret(t, "KpEnv-")
	s["key passphrase from file"] = newSecret(t, "KpFile-")
	s["a wrong key passphrase"] = newSecret(t, "KpWrong-")
	s["audit chain key (file)"] = newSecret(t, "AuditKey-")

	keyEnvPub := w.writeKey(t, "key-env", s["key passphrase from env"], "private key from env")
	keyFilePub := w.writeKey(t, "key-file", s["key passphrase from file"], "private key from file")

	var err error
	w.partner, err = translatetest.NewServer(t.TempDir(), translatetest.Options{
		Users: map[string]string{
			"penv":  s["upstream_password from env"],
			"pfile": s["upstream_password from file"],
			"pthru": s["passthrough password (the partner's)"],
		},
		AuthorizedKeys: []ssh.PublicKey{keyEnvPub, keyFilePub},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.partner.Close() })
	w.crash, err = translatetest.NewServer(t.TempDir(), translatetest.Options{
		Users: map[string]string{"pcrash": s["upstream_password of the crashing partner"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.crash.Close() })
	// 64 MiB, sparse: more than any buffer between the partner and the
	// client holds, so the crash comes while the transfer runs.
	f, err := os.Create(filepath.Join(w.crash.Root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()

	write := func(name, content string) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	upFile := write("upstream-password", s["upstream_password from file"]+"\n")
	kpFile := write("key-passphrase", s["key passphrase from file"]+"\n")
	auditKey := write("audit.key", s["audit chain key (file)"]+"\n")
	w.auditLog = filepath.Join(w.dir, "audit.jsonl")

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(otherKey)
	wrongPin := ssh.FingerprintSHA256(otherSigner.PublicKey())

	hash := func(route string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(s["client password of route "+route]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	pin := fmt.Sprintf("[%q]", w.partner.Fingerprint)
	var pol strings.Builder
	pol.WriteString("version: 1\nroutes:\n")
	route := func(name, upstream, creds, pins string) {
		fmt.Fprintf(&pol, "  - name: %s\n    user: %s\n    auth: local\n    password_bcrypt: %q\n    upstream: %q\n%s    host_key_sha256: %s\n",
			name, name, hash(name), upstream, creds, pins)
	}
	main, crash := w.partner.Addr, w.crash.Addr
	route("pwenv", "sftp://penv@"+main, "    upstream_password: {env: SECRETS_UP_ENV}\n", pin)
	route("pwfile", "sftp://pfile@"+main, fmt.Sprintf("    upstream_password: {file: %q}\n", upFile), pin)
	route("keyenv", "sftp://penv@"+main, fmt.Sprintf("    upstream_key: %q\n    upstream_key_passphrase: {env: SECRETS_KP_ENV}\n", w.key("key-env")), pin)
	route("keyfile", "sftp://pfile@"+main, fmt.Sprintf("    upstream_key: %q\n    upstream_key_passphrase: {file: %q}\n", w.key("key-file"), kpFile), pin)
	route("wrongup", "sftp://penv@"+main, "    upstream_password: {env: SECRETS_UP_WRONG}\n", pin)
	route("hostkey", "sftp://penv@"+main, "    upstream_password: {env: SECRETS_UP_HK}\n", fmt.Sprintf("[%q]", wrongPin))
	route("wrongpass", "sftp://penv@"+main, fmt.Sprintf("    upstream_key: %q\n    upstream_key_passphrase: {env: SECRETS_KP_WRONG}\n", w.key("key-env")), pin)
	route("crash", "sftp://pcrash@"+crash, "    upstream_password: {env: SECRETS_UP_CRASH}\n", fmt.Sprintf("[%q]", w.crash.Fingerprint))
	fmt.Fprintf(&pol, "  - name: pthru\n    user: pthru\n    auth: passthrough\n    upstream: %q\n    host_key_sha256: %s\n", "sftp://"+main, pin)
	policyFile := write("policy.yaml", pol.String())

	w.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"FTPGATE_LISTEN=127.0.0.1:0",
		"FTPGATE_ADMIN_LISTEN=127.0.0.1:0",
		"FTPGATE_POLICY=" + policyFile,
		"FTPGATE_LOG_LEVEL=trace",
		"FTPGATE_AUDIT_FILE=" + w.auditLog,
		"FTPGATE_AUDIT_KEY_FILE=" + auditKey,
		"FTPGATE_LOGIN_FAIL_DELAY=10ms",
		"FTPGATE_LOCKOUT_FAILURES=0", // the test refuses logins on purpose
		"FTPGATE_DRAIN_TIMEOUT=5s",
		"FTPGATE_POOL=" + strconv.FormatBool(pool),
		"SECRETS_UP_ENV=" + s["upstream_password from env"],
		"SECRETS_UP_WRONG=" + s["upstream_password from env that the partner refuses"],
		"SECRETS_UP_HK=" + s["upstream_password of the route with an untrusted host key"],
		"SECRETS_UP_CRASH=" + s["upstream_password of the crashing partner"],
		"SECRETS_KP_ENV=" + s["key passphrase from env"],
		"SECRETS_KP_WRONG=" + s["a wrong key passphrase"],
	}
	return w
}

func (w *world) key(name string) string { return filepath.Join(w.dir, name) }

// writeKey writes a fresh ed25519 key as an OpenSSH private key encrypted
// with passphrase, records the key's secret forms, and returns its public
// half.
func (w *world) writeKey(t *testing.T, file, passphrase, what string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(block)
	if err := os.WriteFile(w.key(file), pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	seed := string(priv.Seed())
	w.secrets[what+": raw seed (hex)"] = hex.EncodeToString([]byte(seed))
	w.secrets[what+": raw seed (base64)"] = base64.StdEncoding.EncodeToString([]byte(seed))
	// The encrypted file's body is no secret by itself, but nothing has
	// reason to print it either.
	body := strings.Join(strings.Split(strings.TrimSpace(string(pemBytes)), "\n")[1:], "")
	w.secrets[what+": encrypted file body"] = strings.TrimSuffix(body, "-----END OPENSSH PRIVATE KEY-----")
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub
}

// gateProc is "ftpgate serve" running as a subprocess.
type gateProc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	ftp, admin     string
	exited         chan error
}

func startGate(t *testing.T, bin string, env []string) *gateProc {
	t.Helper()
	g := &gateProc{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	g.cmd = exec.Command(bin, "serve")
	g.cmd.Env = env
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		<-g.exited
	})
	reListen := regexp.MustCompile(`"listen":"([^"]+)"`)
	reAdmin := regexp.MustCompile(`"admin_listen":"([^"]+)"`)
	deadline := time.Now().Add(20 * time.Second)
	for g.ftp == "" || g.admin == "" {
		if time.Now().After(deadline) {
			t.Fatalf("ftpgate serve did not start:\n%s", g.stderr.String())
		}
		if m := reListen.FindStringSubmatch(g.stderr.String()); m != nil {
			g.ftp = m[1]
		}
		if m := reAdmin.FindStringSubmatch(g.stderr.String()); m != nil {
			g.admin = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g
}

// stop sends SIGTERM and waits for a clean exit.
func (g *gateProc) stop(t *testing.T) {
	t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.exited:
		g.exited <- err
		if err != nil {
			t.Errorf("ftpgate serve exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("ftpgate serve did not stop within 20 s of SIGTERM")
	}
}

// client is a raw FTP client that keeps everything it received in
// transcript, the client-side output searched for secrets.
type client struct {
	t          *testing.T
	conn       net.Conn
	r          *textproto.Reader
	transcript *lockedBuffer
}

func dial(t *testing.T, addr string, transcript *lockedBuffer) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, transcript: transcript}
	c.r = textproto.NewReader(bufio.NewReader(io.TeeReader(conn, transcript)))
	c.expect(220)
	return c
}

func (c *client) read() (int, string) {
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	code, msg, _ := c.r.ReadResponse(0)
	return code, msg
}

func (c *client) expect(want int) string {
	c.t.Helper()
	code, msg := c.read()
	if code != want {
		c.t.Fatalf("reply %d %q; want %d", code, msg, want)
	}
	return msg
}

func (c *client) must(line string, want int) string {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c.conn, "%s\r\n", line)
	code, msg := c.read()
	if code != want {
		verb, _, _ := strings.Cut(line, " ")
		c.t.Fatalf("%s ...: got %d %q; want %d", verb, code, msg, want)
	}
	return msg
}

func (c *client) login(user, pass string, want int) {
	c.t.Helper()
	c.must("USER "+user, 331)
	c.must("PASS "+pass, want)
}

// epsv opens a passive data connection whose bytes also go to the
// transcript.
func (c *client) epsv() net.Conn {
	c.t.Helper()
	msg := c.must("EPSV", 229)
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
	d, err := net.DialTimeout("tcp", net.JoinHostPort(host, msg[i+4:j]), 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d
}

// session logs in to route and moves data every way: STOR, RETR, LIST,
// NLST, MLSD, SIZE, SITE CHMOD, ACCT, STAT, QUIT.
func (w *world) session(t *testing.T, g *gateProc, tr *lockedBuffer, user, pass string) {
	c := dial(t, g.ftp, tr)
	c.login(user, pass, 230)
	c.must("ACCT "+w.secrets["ACCT argument"], 202)
	c.must("TYPE I", 200)
	name := "f-" + user + ".bin"
	d := c.epsv()
	c.must("STOR "+name, 150)
	d.Write([]byte("data of " + user))
	d.Close()
	c.expect(226)
	d = c.epsv()
	c.must("RETR "+name, 150)
	io.Copy(tr, d)
	c.expect(226)
	for _, cmd := range []string{"LIST", "NLST", "MLSD"} {
		d = c.epsv()
		c.must(cmd, 150)
		io.Copy(tr, d)
		c.expect(226)
	}
	c.must("SIZE "+name, 213)
	c.must("SITE CHMOD 600 "+name, 200)
	c.must("STAT", 211)
	c.must("QUIT", 221)
}

// refused logs in and expects the refusal code, then checks the session
// still answers (530) or is closed (421).
func refused(t *testing.T, g *gateProc, tr *lockedBuffer, user, pass string, want int) {
	c := dial(t, g.ftp, tr)
	c.login(user, pass, want)
	if want == 530 {
		c.must("NOOP", 200)
		c.must("QUIT", 221)
	}
}

// crashMidTransfer starts a 64 MiB download from the crashing partner,
// drops every connection of the partner after the first MiB, and expects
// 426 for the transfer and 421 for the next command that needs the
// partner.
func (w *world) crashMidTransfer(t *testing.T, g *gateProc, tr *lockedBuffer) {
	c := dial(t, g.ftp, tr)
	c.login("crash", w.secrets["client password of route crash"], 230)
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("RETR big.bin", 150)
	d.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(d, make([]byte, 1<<20)); err != nil {
		t.Fatalf("read the first MiB: %v", err)
	}
	w.crash.DropConnections()
	io.Copy(io.Discard, d)
	c.expect(426)
	code, msg := func() (int, string) {
		fmt.Fprintf(c.conn, "SIZE big.bin\r\n")
		return c.read()
	}()
	if code != 421 {
		t.Errorf("after the partner died: SIZE got %d %q; want 421", code, msg)
	}
	// The partner is back (it only dropped its connections): a new
	// session logs in again, and its upload dies with the partner too.
	c = dial(t, g.ftp, tr)
	c.login("crash", w.secrets["client password of route crash"], 230)
	d = c.epsv()
	c.must("STOR up.bin", 150)
	d.Write(make([]byte, 256<<10))
	w.crash.DropConnections()
	for i := 0; i < 64; i++ {
		if _, err := d.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	d.Close()
	if code, msg := c.read(); code != 426 && code != 451 {
		t.Errorf("upload when the partner died: %d %q; want 426 or 451", code, msg)
	}
}

// TestNoSecretInAnyOutput runs every path once with the connection pool
// (the default) and once without, and searches every output.
func TestNoSecretInAnyOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it; skipped with -short")
	}
	bin := buildGate(t)
	for _, pool := range []bool{true, false} {
		t.Run(fmt.Sprintf("pool=%v", pool), func(t *testing.T) {
			w := newWorld(t, pool)
			s := w.secrets
			g := startGate(t, bin, w.env)
			tr := &lockedBuffer{}

			// Success, on every kind of credential.
			for _, r := range []string{"pwenv", "pwfile", "keyenv", "keyfile"} {
				w.session(t, g, tr, r, s["client password of route "+r])
			}
			w.session(t, g, tr, "pthru", s["passthrough password (the partner's)"])
			// A wrong client password, locally and at the partner.
			refused(t, g, tr, "pwenv", s["a wrong client password"], 530)
			refused(t, g, tr, "pthru", s["a wrong passthrough password"], 530)
			// The partner refuses the route's own password.
			refused(t, g, tr, "wrongup", s["client password of route wrongup"], 530)
			// The policy refuses: no route, and user@host switched off.
			refused(t, g, tr, "nobody", s["password of a refused user"], 530)
			refused(t, g, tr, "penv@"+w.partner.Addr, s["password of a refused user@host login"], 530)
			// The partner's host key is not the pinned one.
			refused(t, g, tr, "hostkey", s["client password of route hostkey"], 421)
			// The key's passphrase is wrong.
			refused(t, g, tr, "wrongpass", s["client password of route wrongpass"], 421)
			// The partner dies in the middle of transfers.
			w.crashMidTransfer(t, g, tr)

			metrics := httpGet(t, "http://"+g.admin+"/metrics")
			g.stop(t)
			audit, err := os.ReadFile(w.auditLog)
			if err != nil {
				t.Fatal(err)
			}
			verify := runGate(t, bin, w.env, "audit", "verify", w.auditLog)
			if !strings.Contains(verify, "chain whole") {
				t.Errorf("ftpgate audit verify: %s", verify)
			}
			check := runGate(t, bin, w.env, "check")

			outputs := map[string]string{
				"stdout (records)":          g.stdout.String(),
				"stderr (log, trace level)": g.stderr.String(),
				"audit file":                string(audit),
				"client transcript":         tr.String(),
				"/metrics":                  metrics,
				"ftpgate audit verify":      verify,
				"ftpgate check":             check,
			}
			// The paths really ran: their records are there.
			for _, want := range []string{`"record":"login"`, `"record":"login_failure"`, `"reason":"partner refused the login"`,
				`"result":"failed"`, `"record":"transfer"`, `"cmd":"ACCT","arg":"****"`} {
				if !strings.Contains(string(audit), want) {
					t.Errorf("the audit file has no %s: a path did not run", want)
				}
			}
			leaks := findLeaks(s, outputs)
			for _, l := range leaks {
				t.Error(l)
			}
			sizes := make([]string, 0, len(outputs))
			for where, text := range outputs {
				sizes = append(sizes, fmt.Sprintf("%s %d B", where, len(text)))
			}
			t.Logf("searched %d secrets (every %d-byte piece, base64, hex, URL-escaped) in %s: %d found",
				len(s), window, strings.Join(sizes, ", "), len(leaks))
		})
	}
}

// findLeaks searches every output for every form of every secret and
// describes each find with its surroundings.
func findLeaks(secrets secretSet, outputs map[string]string) []string {
	var leaks []string
	for what, secret := range secrets {
		for where, text := range outputs {
			for _, f := range forms(secret) {
				if i := strings.Index(text, f); i >= 0 {
					leaks = append(leaks, fmt.Sprintf("%s (or a piece of it) is in the %s: ...%q...",
						what, where, text[max(0, i-80):min(len(text), i+len(f)+40)]))
					break
				}
			}
		}
	}
	return leaks
}

// TestFindLeaksFindsPlantedSecrets checks the search itself: a secret cut
// short, base64-encoded or hex-encoded inside a JSON line is found, and a
// clean text is not.
func TestFindLeaksFindsPlantedSecrets(t *testing.T) {
	secret := newSecret(t, "Planted-")
	set := secretSet{"planted": secret}
	for name, text := range map[string]string{
		"whole":     `{"arg":"` + secret + `"}`,
		"truncated": `{"error":"bad password ` + secret[3:3+window] + `..."}`,
		"base64":    `{"arg_b64":"` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}`,
		"hex":       "key=" + hex.EncodeToString([]byte(secret)),
	} {
		if len(findLeaks(set, map[string]string{name: text})) != 1 {
			t.Errorf("%s: the planted secret was not found in %q", name, text)
		}
	}
	if l := findLeaks(set, map[string]string{"clean": `{"arg":"****"}`}); len(l) != 0 {
		t.Errorf("found in a clean text: %v", l)
	}
}

func runGate(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
