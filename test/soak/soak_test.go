//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/test/peers"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

var (
	flagDuration = flag.Duration("duration", 10*time.Minute, "how long the sessions run")
	flagSessions = flag.Int("sessions", 1000, "concurrent FTP sessions")
	flagSample   = flag.Duration("sample", 10*time.Second, "how often ftpgate's /metrics is sampled")
	flagReport   = flag.String("report", "report", "directory for report.md, samples.csv and soak.png")
	flagPartner  = flag.String("partner", "sshd", "the partner: sshd (OpenSSH) or translatetest (in-process)")
	flagPool     = flag.Bool("pool", true, "ftpgate's upstream connection pool (FTPGATE_POOL)")
	flagPace     = flag.Duration("pace", 2*time.Second, "mean pause between a session's operations (uniform in [pace/2, 3*pace/2])")
	// About 470 data connections a second fill the kernel's ephemeral
	// port range (32768-60999 here) with TIME_WAIT within a minute; passive
	// ports from that range then misbehave (see
	// test/badinput TestPassivePortsUnderEphemeralExhaustion). A
	// production gate sets a range for its firewall anyway.
	flagPasv = flag.String("pasv", "20000-29999", `FTPGATE_PASV_PORTS; "" for the kernel's choice`)
	flagEnv  = flag.String("env", "", "more settings for ftpgate, comma-separated KEY=VALUE pairs (FTPGATE_KEEPALIVE_INTERVAL=1h)")
)

// flatRatio and flatDrift define a flat curve over the last half of the
// run: max/min at most flatRatio, or else a least-squares line whose rise
// over the last half is at most flatDrift of the mean. The first catches
// a curve that hardly moves; the second lets a curve that swings with the
// load (goroutines and descriptors follow the transfers in flight) pass
// as long as it does not trend, which is what a leak does.
const (
	flatRatio = 1.15
	flatDrift = 0.10
)

const (
	clientUser = "soakjob"
	clientPass = "Soak-client-pw-8Hq2Lx"
	partnerPw  = "Soak-partner-pw-3Vb7Tn"
)

// fixture is a file on the partner that sessions download and check.
type fixture struct {
	name string
	size int
	sum  [32]byte
}

// tally counts replies and outcomes across all sessions.
type tally struct {
	mu           sync.Mutex
	codes        map[int]int    // every reply code seen
	deliberate   map[int]int    // 421/426/530 the soak caused on purpose
	ops          map[string]int // operations completed, by kind
	unexplained  []string       // first errors, for the report
	nUnexpl      int
	corrupt      []string
	corruptNames []string // upload names, to find their records
	bytesDown    atomic.Int64
	bytesUp      atomic.Int64
}

func newTally() *tally {
	return &tally{codes: map[int]int{}, deliberate: map[int]int{}, ops: map[string]int{}}
}

func (ta *tally) code(c int, deliberate bool) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.codes[c]++
	if deliberate {
		ta.deliberate[c]++
	}
}

func (ta *tally) op(kind string) {
	ta.mu.Lock()
	ta.ops[kind]++
	ta.mu.Unlock()
}

func (ta *tally) fail(format string, args ...any) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.nUnexpl++
	if len(ta.unexplained) < 30 {
		ta.unexplained = append(ta.unexplained, time.Now().Format("15:04:05 ")+fmt.Sprintf(format, args...))
	}
}

func (ta *tally) corrupted(format string, args ...any) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.corrupt = append(ta.corrupt, fmt.Sprintf(format, args...))
}

// sample is one reading of ftpgate's /metrics and the machine.
type sample struct {
	at         time.Duration
	rss        float64 // process_resident_memory_bytes
	goroutines float64 // go_goroutines
	fds        float64 // process_open_fds
	sessions   float64 // ftpgate_sessions_active
	sshd       int     // sshd processes (the partner's side)
	// CPU since the previous sample, in cores: ftpgate's own, and the
	// whole machine's (ftpgate, sshd and the soak's clients).
	gateCores, soakCores, machineCores float64
}

// cpuTimes are CPU seconds used so far, read from /proc.
type cpuTimes struct {
	at, gate, soak, machine float64 // seconds
}

// readCPU reads ftpgate's CPU time and the machine's busy time.
func readCPU(pid int) cpuTimes {
	const hz = 100 // USER_HZ on Linux
	c := cpuTimes{at: float64(time.Now().UnixNano()) / 1e9}
	proc := func(p string) float64 {
		b, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			return 0
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if i < 0 || len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		return (u + s) / hz
	}
	c.gate, c.soak = proc(strconv.Itoa(pid)), proc("self")
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		for i, v := range f[1:] {
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			n, _ := strconv.ParseFloat(v, 64)
			c.machine += n / hz
		}
	}
	return c
}

func TestSoak(t *testing.T) {
	n, duration := *flagSessions, *flagDuration
	t.Logf("soak: %d sessions for %v against %s, pool %v", n, duration, *flagPartner, *flagPool)
	bin := buildGate(t)
	root, route, partnerLog := startPartner(t)
	fixtures := makeFixtures(t, root)
	os.MkdirAll(filepath.Join(root, "up"), 0o755)

	hash, _ := bcrypt.GenerateFromPassword([]byte(clientPass), bcrypt.MinCost)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf("version: 1\nroutes:\n  - name: soak\n    user: %s\n    auth: local\n    password_bcrypt: %q\n%s",
		clientUser, hash, route)), 0o600)
	auditKey := filepath.Join(dir, "audit.key")
	os.WriteFile(auditKey, []byte("soak-audit-chain-key-0123456789\n"), 0o600)
	auditFile := filepath.Join(dir, "audit.jsonl")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"PARTNER_PW=" + partnerPw,
		"FTPGATE_LISTEN=127.0.0.1:0",
		"FTPGATE_ADMIN_LISTEN=127.0.0.1:0",
		"FTPGATE_POLICY=" + policyFile,
		// Every client comes from 127.0.0.1: the per-address cap and the
		// failed-login lockout (the soak fails logins on purpose) would
		// otherwise treat the whole soak as one client.
		fmt.Sprintf("FTPGATE_MAX_SESSIONS=%d", n+200),
		fmt.Sprintf("FTPGATE_MAX_SESSIONS_PER_ADDR=%d", n+200),
		"FTPGATE_LOCKOUT_FAILURES=0",
		"FTPGATE_POOL=" + strconv.FormatBool(*flagPool),
		// sshd allows 10 sessions per connection (MaxSessions 10, as the
		// pool's default); n sessions need n/10 connections and some
		// room for the churn.
		fmt.Sprintf("FTPGATE_POOL_MAX_CONNS=%d", n/10+n/50+4),
		"FTPGATE_AUDIT_FILE=" + auditFile,
		"FTPGATE_AUDIT_KEY_FILE=" + auditKey,
		"FTPGATE_AUDIT_STDOUT=false",
		// One fsync a second instead of one per record: several thousand
		// records a second would measure the disk, not ftpgate.
		"FTPGATE_AUDIT_FSYNC=1s",
		"FTPGATE_PASV_PORTS=" + *flagPasv,
	}
	if *flagEnv != "" {
		env = append(env, strings.Split(*flagEnv, ",")...)
	}
	g := startGate(t, bin, env, dir)

	ta := newTally()
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	var samples []sample
	var smu sync.Mutex
	sampler := make(chan struct{})
	go func() {
		defer close(sampler)
		tick := time.NewTicker(*flagSample)
		defer tick.Stop()
		prev := cpuTimes{}
		for {
			s, err := readMetrics(g.admin)
			s.at = time.Since(start)
			cur := readCPU(g.cmd.Process.Pid)
			if prev.at > 0 {
				dt := cur.at - prev.at
				s.gateCores = (cur.gate - prev.gate) / dt
				s.soakCores = (cur.soak - prev.soak) / dt
				s.machineCores = (cur.machine - prev.machine) / dt
			}
			prev = cur
			if ctx.Err() != nil {
				return // winding down: not a sample of the steady state
			}
			if err != nil {
				ta.fail("sample /metrics: %v", err)
			} else {
				smu.Lock()
				samples = append(samples, s)
				smu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// Sessions start spread over the first tenth of the run (at most a
	// minute), so the logins do not all arrive in one burst.
	ramp := min(duration/10, time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(ramp * time.Duration(i) / time.Duration(n)):
			case <-ctx.Done():
				return
			}
			var seed [32]byte
			rand.Read(seed[:])
			w := &worker{id: i, g: g, root: root, fixtures: fixtures, ta: ta,
				rng: mrand.New(mrand.NewPCG(uint64(i), uint64(start.UnixNano()))), data: mrand.NewChaCha8(seed)}
			w.run(ctx)
		}()
	}
	wg.Wait()
	<-sampler
	ran := time.Since(start)
	peers.WaitFor(t, 60*time.Second, func() bool { s, err := readMetrics(g.admin); return err == nil && s.sessions == 0 })
	after, _ := readMetrics(g.admin)
	g.stop(t)

	verify := runGate(bin, env, "audit", "verify", auditFile)
	var evidence []string
	if len(ta.corruptNames) > 0 {
		trail, _ := os.ReadFile(auditFile)
		for _, name := range ta.corruptNames {
			evidence = append(evidence, grepLines(string(trail), `"`+name+`"`)...)
		}
	}
	logs, _ := os.ReadFile(g.stderrFile)
	panics := strings.Count(string(logs), "panic")
	writeReport(t, reportInput{
		n: n, duration: ran, samples: samples, after: after, ta: ta, verify: verify, panics: panics,
		logLines: countLevels(string(logs)), evidence: evidence,
		warnings: append(grepLines(string(logs), `"level":"warn"`, `"level":"error"`), failedTransfers(string(logs))...),
		// sshd's own complaints; connects, logins and closes are routine.
		partnerErrors: grepLines(partnerLog(), "error", "fatal", "refused", "Timeout", "Disconnecting", "denied", "failed"),
	})
}

// ---- the partner and ftpgate ----

// startPartner starts the partner and returns its root, the route's
// upstream lines for the policy and a function returning its log.
func startPartner(t *testing.T) (root, route string, log func() string) {
	switch *flagPartner {
	case "sshd":
		s := peers.StartSSHD(t)
		return s.Root, fmt.Sprintf("    upstream: %q\n    upstream_key: %q\n    known_hosts: %q\n",
			"sftp://"+s.User+"@"+s.Addr+s.Root, s.ClientKeyFile, s.KnownHostsFile), s.Log
	case "translatetest":
		root := t.TempDir()
		up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{"partner": partnerPw}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { up.Close() })
		return root, fmt.Sprintf("    upstream: %q\n    upstream_password: {env: PARTNER_PW}\n    host_key_sha256: [%q]\n",
			"sftp://partner@"+up.Addr+root, up.Fingerprint), func() string { return "" }
	}
	t.Fatalf("-partner %q: want sshd or translatetest", *flagPartner)
	return "", "", nil
}

// failedTransfers returns ftpgate's "transfer failed" log lines but those
// of the soak's own ABORs.
func failedTransfers(logs string) []string {
	var out []string
	for _, l := range grepLines(logs, `"message":"transfer failed"`) {
		if !strings.Contains(l, "aborted by ABOR") {
			out = append(out, l)
		}
	}
	return out
}

// grepLines returns the lines of s that hold any of subs.
func grepLines(s string, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// makeFixtures writes files of 1 KiB to 1 MiB of random bytes.
func makeFixtures(t *testing.T, root string) []fixture {
	var out []fixture
	// The last, 8 MiB, is for ABOR: more than the socket buffers between
	// ftpgate and the client hold, so the ABOR comes while it runs.
	for i, size := range []int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 100_000, 256 << 10, 8 << 20} {
		b := make([]byte, size)
		rand.Read(b)
		f := fixture{name: fmt.Sprintf("fixture-%d.bin", i), size: size, sum: sha256.Sum256(b)}
		if err := os.WriteFile(filepath.Join(root, f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func buildGate(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "ftpgate")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ftpgate/ftpgate/cmd/ftpgate").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type gateProc struct {
	cmd        *exec.Cmd
	ftp, admin string
	stderrFile string
	exited     chan error
}

func startGate(t *testing.T, bin string, env []string, dir string) *gateProc {
	g := &gateProc{stderrFile: filepath.Join(dir, "ftpgate.log"), exited: make(chan error, 1)}
	logf, err := os.Create(g.stderrFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	g.cmd = exec.Command(bin, "serve")
	g.cmd.Env = env
	g.cmd.Stdout, g.cmd.Stderr = io.Discard, logf
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() { g.cmd.Process.Kill(); <-g.exited })
	reListen := regexp.MustCompile(`"listen":"([^"]+)"`)
	reAdmin := regexp.MustCompile(`"admin_listen":"([^"]+)"`)
	peers.WaitFor(t, 20*time.Second, func() bool {
		b, _ := os.ReadFile(g.stderrFile)
		if m := reListen.FindSubmatch(b); m != nil {
			g.ftp = string(m[1])
		}
		if m := reAdmin.FindSubmatch(b); m != nil {
			g.admin = string(m[1])
		}
		return g.ftp != "" && g.admin != ""
	})
	return g
}

func (g *gateProc) stop(t *testing.T) {
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.exited:
		g.exited <- err
		if err != nil {
			t.Errorf("ftpgate exited with %v after SIGTERM", err)
		}
	case <-time.After(90 * time.Second):
		t.Errorf("ftpgate did not stop within 90 s of SIGTERM")
	}
}

func runGate(bin string, env []string, args ...string) string {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(exit: %v)", out, err)
	}
	return string(out)
}

var metricLine = regexp.MustCompile(`(?m)^(process_resident_memory_bytes|go_goroutines|process_open_fds|ftpgate_sessions_active) ([0-9.e+]+)$`)

func readMetrics(admin string) (sample, error) {
	var s sample
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	found := 0
	for _, m := range metricLine.FindAllSubmatch(b, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		found++
		switch string(m[1]) {
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_goroutines":
			s.goroutines = v
		case "process_open_fds":
			s.fds = v
		case "ftpgate_sessions_active":
			s.sessions = v
		}
	}
	if found < 4 {
		return s, fmt.Errorf("/metrics has %d of the 4 series", found)
	}
	s.sshd = countProcs("sshd")
	return s, nil
}

// countProcs counts processes whose command name is name.
func countProcs(name string) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/comm")
	n := 0
	for _, f := range stats {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == name {
			n++
		}
	}
	return n
}

// ---- a session ----

type worker struct {
	id       int
	g        *gateProc
	root     string
	fixtures []fixture
	ta       *tally
	rng      *mrand.Rand
	data     *mrand.ChaCha8 // upload contents: fast, and random enough to catch any reordering
	seq      int
}

// opTimeout bounds one operation.
const opTimeout = 60 * time.Second

// errDisconnected ends a session the soak dropped on purpose.
var errDisconnected = errors.New("disconnected on purpose")

// run keeps one session going until ctx ends: log in, do operations at
// the pace, log out or drop the connection now and then, log in again.
func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		if w.rng.IntN(100) < 2 {
			w.failedLogin()
			continue
		}
		c, err := w.login()
		if err != nil {
			w.ta.fail("worker %d: login: %v", w.id, err)
			w.pause(ctx)
			continue
		}
		for ctx.Err() == nil {
			w.pause(ctx)
			if ctx.Err() != nil {
				break
			}
			err := w.operation(c)
			if errors.Is(err, errDisconnected) {
				c = nil
				break
			}
			if err != nil {
				w.ta.fail("worker %d: %v", w.id, err)
				c.conn.Close()
				c = nil
				break
			}
		}
		if c != nil {
			c.cmd("QUIT", 221, false)
			c.conn.Close()
		}
	}
}

func (w *worker) pause(ctx context.Context) {
	p := *flagPace
	d := p/2 + time.Duration(w.rng.Int64N(int64(p)))
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// client is one FTP control connection.
type client struct {
	w    *worker
	conn net.Conn
	r    *textproto.Reader
}

func (w *worker) dial() (*client, error) {
	conn, err := net.DialTimeout("tcp", w.g.ftp, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &client{w: w, conn: conn, r: textproto.NewReader(bufio.NewReader(conn))}
	if _, err := c.expect(220, false); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (w *worker) login() (*client, error) {
	c, err := w.dial()
	if err != nil {
		return nil, err
	}
	for _, step := range []struct {
		line string
		want int
	}{{"USER " + clientUser, 331}, {"PASS " + clientPass, 230}, {"TYPE I", 200}} {
		if _, err := c.cmd(step.line, step.want, false); err != nil {
			c.conn.Close()
			return nil, err
		}
	}
	w.ta.op("login")
	return c, nil
}

// failedLogin logs in with a wrong password: 530 is deliberate.
func (w *worker) failedLogin() {
	c, err := w.dial()
	if err != nil {
		w.ta.fail("worker %d: dial: %v", w.id, err)
		return
	}
	defer c.conn.Close()
	if _, err := c.cmd("USER "+clientUser, 331, false); err != nil {
		w.ta.fail("worker %d: %v", w.id, err)
		return
	}
	if _, err := c.cmd("PASS wrong-"+clientPass, 530, true); err != nil {
		w.ta.fail("worker %d: failed login: %v", w.id, err)
		return
	}
	c.cmd("QUIT", 221, false)
	w.ta.op("failed login")
}

// read reads one reply and counts it.
func (c *client) read(deliberate bool) (int, string, error) {
	c.conn.SetReadDeadline(time.Now().Add(opTimeout))
	code, msg, err := c.r.ReadResponse(0)
	if code != 0 {
		c.w.ta.code(code, deliberate)
		return code, msg, nil
	}
	return 0, "", err
}

func (c *client) expect(want int, deliberate bool) (string, error) {
	code, msg, err := c.read(deliberate)
	if err != nil {
		return "", err
	}
	if code != want {
		return msg, fmt.Errorf("got %d %q; want %d", code, msg, want)
	}
	return msg, nil
}

func (c *client) cmd(line string, want int, deliberate bool) (string, error) {
	c.conn.SetWriteDeadline(time.Now().Add(opTimeout))
	if _, err := fmt.Fprintf(c.conn, "%s\r\n", line); err != nil {
		return "", err
	}
	msg, err := c.expect(want, deliberate)
	if err != nil {
		return msg, fmt.Errorf("%s: %w", strings.SplitN(line, " ", 2)[0], err)
	}
	return msg, nil
}

func (c *client) epsv() (net.Conn, error) {
	msg, err := c.cmd("EPSV", 229, false)
	if err != nil {
		return nil, err
	}
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i+4 {
		return nil, fmt.Errorf("EPSV reply %q", msg)
	}
	d, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", msg[i+4:j]), 10*time.Second)
	if err != nil {
		return nil, err
	}
	d.SetDeadline(time.Now().Add(opTimeout))
	return d, nil
}

// operation does one randomly chosen operation.
func (w *worker) operation(c *client) error {
	switch r := w.rng.IntN(100); {
	case r < 25:
		return w.download(c)
	case r < 40:
		return w.upload(c)
	case r < 55:
		return w.listing(c, "LIST")
	case r < 65:
		return w.listing(c, "NLST")
	case r < 70:
		return w.listing(c, "MLSD")
	case r < 72:
		return w.abort(c)
	case r < 75:
		return w.append(c)
	case r < 78:
		// Gone without QUIT, in the middle of nothing.
		if w.rng.IntN(2) == 0 {
			c.conn.(*net.TCPConn).SetLinger(0)
		}
		c.conn.Close()
		w.ta.op("disconnect")
		return errDisconnected
	case r < 80:
		_, err := c.cmd("QUIT", 221, false)
		c.conn.Close()
		w.ta.op("quit")
		if err != nil {
			return err
		}
		return errDisconnected
	default:
		f := w.fixtures[w.rng.IntN(len(w.fixtures))]
		for _, step := range []struct {
			line string
			want int
		}{{"SIZE " + f.name, 213}, {"MDTM " + f.name, 213}, {"PWD", 257}, {"NOOP", 200}} {
			if _, err := c.cmd(step.line, step.want, false); err != nil {
				return err
			}
		}
		w.ta.op("commands")
		return nil
	}
}

// dataFailed describes a data-connection error together with the final
// reply ftpgate gave for the transfer, which names the cause.
func (c *client) dataFailed(what string, err error) error {
	code, msg, rerr := c.read(false)
	return fmt.Errorf("%s: data: %v; final reply %d %q (%v)", what, err, code, msg, rerr)
}

func (w *worker) download(c *client) error {
	f := w.fixtures[w.rng.IntN(len(w.fixtures)-1)]
	d, err := c.epsv()
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := c.cmd("RETR "+f.name, 150, false); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, d)
	d.Close()
	if err != nil {
		return c.dataFailed("RETR "+f.name, err)
	}
	if _, err := c.expect(226, false); err != nil {
		return fmt.Errorf("RETR %s: %w", f.name, err)
	}
	w.ta.bytesDown.Add(n)
	if n != int64(f.size) || !bytes.Equal(h.Sum(nil), f.sum[:]) {
		w.ta.corrupted("RETR %s: %d bytes, SHA-256 differs from the file's (%d bytes)", f.name, n, f.size)
	}
	w.ta.op("download")
	return nil
}

func (w *worker) upload(c *client) error {
	w.seq++
	name := fmt.Sprintf("up/w%04d-%d.bin", w.id, w.seq)
	data := make([]byte, 1<<10+w.rng.IntN(64<<10))
	w.data.Read(data)
	d, err := c.epsv()
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := c.cmd("STOR "+name, 150, false); err != nil {
		return err
	}
	if _, err := d.Write(data); err != nil {
		return c.dataFailed("STOR "+name, err)
	}
	d.Close()
	if _, err := c.expect(226, false); err != nil {
		return fmt.Errorf("STOR %s: %w", name, err)
	}
	w.ta.bytesUp.Add(int64(len(data)))
	onDisk, err := os.ReadFile(filepath.Join(w.root, name))
	if err != nil || sha256.Sum256(onDisk) != sha256.Sum256(data) {
		w.ta.corrupted("STOR %s: the partner holds %d bytes (%v), SHA-256 differs from the %d sent (SHA-256 %x)", name, len(onDisk), err, len(data), sha256.Sum256(data))
		w.keep(name, data, onDisk)
		return nil // the evidence stays on the partner
	}
	if _, err := c.cmd("DELE "+name, 250, false); err != nil {
		return err
	}
	w.ta.op("upload")
	return nil
}

// keep saves a corrupted upload, as sent and as the partner holds it, in
// the report directory for a post-mortem.
func (w *worker) keep(name string, sent, got []byte) {
	base := filepath.Join(*flagReport, "corrupt-"+strings.ReplaceAll(name, "/", "_"))
	os.MkdirAll(*flagReport, 0o755)
	os.WriteFile(base+".sent", sent, 0o644)
	os.WriteFile(base+".partner", got, 0o644)
	w.ta.mu.Lock()
	w.ta.corruptNames = append(w.ta.corruptNames, name)
	w.ta.mu.Unlock()
}

// append uploads a file in two parts, STOR then APPE, and checks the
// whole on the partner.
func (w *worker) append(c *client) error {
	w.seq++
	name := fmt.Sprintf("up/w%04d-%d.app", w.id, w.seq)
	var all []byte
	for _, verb := range []string{"STOR", "APPE"} {
		data := make([]byte, 1<<10+w.rng.IntN(16<<10))
		w.data.Read(data)
		d, err := c.epsv()
		if err != nil {
			return err
		}
		if _, err := c.cmd(verb+" "+name, 150, false); err != nil {
			d.Close()
			return err
		}
		_, err = d.Write(data)
		d.Close()
		if err != nil {
			return c.dataFailed(verb+" "+name, err)
		}
		if _, err := c.expect(226, false); err != nil {
			return fmt.Errorf("%s %s: %w", verb, name, err)
		}
		all = append(all, data...)
		w.ta.bytesUp.Add(int64(len(data)))
	}
	onDisk, err := os.ReadFile(filepath.Join(w.root, name))
	if err != nil || !bytes.Equal(onDisk, all) {
		w.ta.corrupted("STOR+APPE %s: the partner holds %d bytes (%v); want the %d sent", name, len(onDisk), err, len(all))
		w.keep(name, all, onDisk)
		return nil
	}
	if _, err := c.cmd("DELE "+name, 250, false); err != nil {
		return err
	}
	w.ta.op("append")
	return nil
}

func (w *worker) listing(c *client, verb string) error {
	d, err := c.epsv()
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := c.cmd(verb, 150, false); err != nil {
		return err
	}
	b, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		return c.dataFailed(verb, err)
	}
	if _, err := c.expect(226, false); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	if !bytes.Contains(b, []byte("fixture-0.bin")) {
		w.ta.corrupted("%s: the listing lacks fixture-0.bin: %q", verb, b)
	}
	w.ta.op(strings.ToLower(verb))
	return nil
}

// abort starts the 8 MiB download, reads a little and sends ABOR: 426 then
// 226 (deliberate), or 226 then 225 when the transfer won the race.
func (w *worker) abort(c *client) error {
	f := w.fixtures[len(w.fixtures)-1]
	d, err := c.epsv()
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := c.cmd("RETR "+f.name, 150, false); err != nil {
		return err
	}
	io.ReadFull(d, make([]byte, 16<<10))
	fmt.Fprintf(c.conn, "ABOR\r\n")
	code1, msg1, err := c.read(true)
	if err != nil {
		return fmt.Errorf("ABOR: %v", err)
	}
	d.Close()
	want2 := map[int]int{426: 226, 226: 225}[code1]
	if want2 == 0 {
		return fmt.Errorf("ABOR: first reply %d %q; want 426 or 226", code1, msg1)
	}
	if _, err := c.expect(want2, true); err != nil {
		return fmt.Errorf("ABOR after %d: %w", code1, err)
	}
	w.ta.op("abort")
	return nil
}

// ---- the report ----

type reportInput struct {
	n        int
	duration time.Duration
	samples  []sample
	after    sample
	ta       *tally
	verify   string
	panics   int
	logLines map[string]int
	// warnings are ftpgate's warn and error log lines and its failed
	// transfers other than the deliberate ABORs; partnerErrors sshd's
	// complaints.
	warnings, partnerErrors []string
	evidence                []string // the audit records of corrupted uploads
}

// flatness judges one series over the last half of the samples.
type flatness struct {
	min, max, mean, slopePerMin, drift float64
	flat                               bool
	why                                string
}

func judge(samples []sample, get func(sample) float64) flatness {
	half := samples[len(samples)/2:]
	var f flatness
	f.min, f.max = get(half[0]), get(half[0])
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		v, x := get(s), s.at.Minutes()
		f.min, f.max = min(f.min, v), max(f.max, v)
		sx, sy, sxx, sxy = sx+x, sy+v, sxx+x*x, sxy+x*v
	}
	k := float64(len(half))
	f.mean = sy / k
	if den := k*sxx - sx*sx; den > 0 {
		f.slopePerMin = (k*sxy - sx*sy) / den
	}
	span := half[len(half)-1].at.Minutes() - half[0].at.Minutes()
	if f.mean > 0 {
		f.drift = f.slopePerMin * span / f.mean
	}
	switch {
	case f.min > 0 && f.max/f.min <= flatRatio:
		f.flat, f.why = true, fmt.Sprintf("max/min %.3f <= %.2f", f.max/f.min, flatRatio)
	case f.drift <= flatDrift:
		f.flat, f.why = true, fmt.Sprintf("max/min %.3f, but the trend rises %.1f%% of the mean over the last half (<= %.0f%%)", f.max/max(f.min, 1), 100*f.drift, 100*flatDrift)
	default:
		f.why = fmt.Sprintf("max/min %.3f and the trend rises %.1f%% of the mean over the last half", f.max/max(f.min, 1), 100*f.drift)
	}
	return f
}

func countLevels(logs string) map[string]int {
	m := map[string]int{}
	for _, lvl := range []string{"debug", "info", "warn", "error"} {
		m[lvl] = strings.Count(logs, `"level":"`+lvl+`"`)
	}
	return m
}

func writeReport(t *testing.T, in reportInput) {
	dir := *flagReport
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ta := in.ta
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# ftpgate soak report\n\n")
	p("Run on %s: `go test -tags soak -run TestSoak -timeout 30m ./test/soak -args -duration %v -sessions %d -partner %s -pool=%v -pace %v -pasv %q -env %q`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), *flagDuration, in.n, *flagPartner, *flagPool, *flagPace, *flagPasv, *flagEnv)
	p("ftpgate ran as a separate process (the binary built from this tree), with the defaults of `ftpgate serve` except: "+
		"`FTPGATE_MAX_SESSIONS` and `FTPGATE_MAX_SESSIONS_PER_ADDR` raised above the session count and `FTPGATE_LOCKOUT_FAILURES=0` "+
		"(every client is 127.0.0.1), `FTPGATE_POOL_MAX_CONNS` raised to sessions/10 plus room (the partner allows 10 sessions per "+
		"connection), the audit trail to a keyed file with `FTPGATE_AUDIT_FSYNC=1s` and not to stdout, and `FTPGATE_PASV_PORTS=%s` "+
		"(outside the kernel's ephemeral range, which this many data connections fill with TIME_WAIT). Each session pauses %v–%v "+
		"between operations.\n\n", *flagPasv, *flagPace/2, *flagPace*3/2)

	var verdicts []string
	pass := true
	if len(ta.corrupt) > 0 {
		pass = false
		verdicts = append(verdicts, fmt.Sprintf("%d corrupted transfers", len(ta.corrupt)))
	}
	if ta.nUnexpl > 0 {
		pass = false
		verdicts = append(verdicts, fmt.Sprintf("%d unexplained errors", ta.nUnexpl))
	}
	for _, c := range []int{421, 426} {
		if ta.codes[c] != ta.deliberate[c] {
			pass = false
			verdicts = append(verdicts, fmt.Sprintf("%d replies %d, of them only %d deliberate", ta.codes[c], c, ta.deliberate[c]))
		}
	}
	if in.panics > 0 {
		pass = false
		verdicts = append(verdicts, fmt.Sprintf("%d panics in the log", in.panics))
	}
	if !strings.Contains(in.verify, "chain whole") {
		pass = false
		verdicts = append(verdicts, "the audit chain does not verify")
	}
	series := []struct {
		name string
		get  func(sample) float64
		unit string
		div  float64
	}{
		{"RSS", func(s sample) float64 { return s.rss }, "MiB", 1 << 20},
		{"goroutines", func(s sample) float64 { return s.goroutines }, "", 1},
		{"open fds", func(s sample) float64 { return s.fds }, "", 1},
	}
	var flats []flatness
	if len(in.samples) >= 4 {
		for _, s := range series {
			f := judge(in.samples, s.get)
			flats = append(flats, f)
			if !f.flat {
				pass = false
				verdicts = append(verdicts, s.name+" not flat: "+f.why)
			}
		}
	} else {
		pass = false
		verdicts = append(verdicts, "too few samples")
	}
	if pass {
		p("**Result: PASS.** No transfer corrupted, every reply explained, RSS, goroutines and open descriptors flat over the last half.\n\n")
	} else {
		p("**Result: FAIL:** %s.\n\n", strings.Join(verdicts, "; "))
	}

	first, last := in.samples[0], in.samples[len(in.samples)-1]
	peak := first
	for _, s := range in.samples {
		if s.sessions > peak.sessions {
			peak = s
		}
	}
	p("## Figures\n\n| | first sample (%v) | at peak sessions (%v) | last sample (%v) | after all sessions ended |\n|---|---|---|---|---|\n",
		first.at.Round(time.Second), peak.at.Round(time.Second), last.at.Round(time.Second))
	row := func(name string, get func(sample) string) {
		p("| %s | %s | %s | %s | %s |\n", name, get(first), get(peak), get(last), get(in.after))
	}
	row("RSS (MiB)", func(s sample) string { return fmt.Sprintf("%.1f", s.rss/(1<<20)) })
	row("goroutines", func(s sample) string { return fmt.Sprintf("%.0f", s.goroutines) })
	row("open fds", func(s sample) string { return fmt.Sprintf("%.0f", s.fds) })
	row("sessions", func(s sample) string { return fmt.Sprintf("%.0f", s.sessions) })
	row("sshd processes", func(s sample) string { return strconv.Itoa(s.sshd) })
	row("ftpgate CPU (cores)", func(s sample) string { return fmt.Sprintf("%.2f", s.gateCores) })
	row("soak clients' CPU (cores)", func(s sample) string { return fmt.Sprintf("%.2f", s.soakCores) })
	row("machine CPU (cores of 2)", func(s sample) string { return fmt.Sprintf("%.2f", s.machineCores) })
	p("\n")

	p("## Flatness over the last half\n\nFlat means: max/min at most %.2f, or else a least-squares line whose rise over the last half "+
		"is at most %.0f%% of the mean (a curve that swings with the transfers in flight but does not trend).\n\n", flatRatio, 100*flatDrift)
	p("| series | min | max | mean | slope per minute | verdict |\n|---|---|---|---|---|---|\n")
	for i, f := range flats {
		s := series[i]
		u := s.unit
		p("| %s | %.1f %s | %.1f %s | %.1f %s | %+.2f %s | %s: %s |\n", s.name, f.min/s.div, u, f.max/s.div, u, f.mean/s.div, u,
			f.slopePerMin/s.div, u, map[bool]string{true: "flat", false: "NOT flat"}[f.flat], f.why)
	}

	p("\n## Work done\n\nIn %v: ", in.duration.Round(time.Second))
	var kinds []string
	total := 0
	for k, v := range ta.ops {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		total += v
	}
	sort.Strings(kinds)
	p("%d operations (%s); %.1f MiB downloaded and %.1f MiB uploaded, every byte checked with SHA-256.\n\n",
		total, strings.Join(kinds, ", "), float64(ta.bytesDown.Load())/(1<<20), float64(ta.bytesUp.Load())/(1<<20))
	p("Corrupted transfers: %d.", len(ta.corrupt))
	for _, c := range ta.corrupt[:min(len(ta.corrupt), 10)] {
		p("\n- %s", c)
	}
	if len(in.evidence) > 0 {
		p("\n\nTheir audit records (the files as sent and as the partner holds them are corrupt-*.sent and corrupt-*.partner):\n")
		for _, l := range in.evidence[:min(len(in.evidence), 40)] {
			p("\n    %s", l)
		}
	}
	p("\n\n## Replies by code\n\n| code | count | deliberate |\n|---|---|---|\n")
	var codes []int
	for c := range ta.codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		p("| %d | %d | %d |\n", c, ta.codes[c], ta.deliberate[c])
	}
	p("\nDeliberate: 530 for the wrong-password logins, 426 then 226 (or 226 then 225 when the transfer ended first) for ABOR "+
		"during a download. Unexplained errors: %d.", ta.nUnexpl)
	for _, u := range ta.unexplained {
		p("\n- %s", u)
	}
	p("\n\nftpgate log lines: %v; panics: %d. `ftpgate audit verify` of the audit file: `%s`\n", in.logLines, in.panics, strings.TrimSpace(in.verify))
	p("\nftpgate's warnings, errors and failed transfers other than ABOR (%d):\n", len(in.warnings))
	for _, l := range in.warnings[:min(len(in.warnings), 30)] {
		p("\n    %s", l)
	}
	p("\n\nsshd's errors and refusals (%d):\n", len(in.partnerErrors))
	for _, l := range in.partnerErrors[:min(len(in.partnerErrors), 30)] {
		p("\n    %s", l)
	}
	p("\n")

	p("\n## Samples\n\n![RSS, goroutines and open fds](soak.png)\n\n" +
		"| t | RSS (MiB) | goroutines | open fds | sessions | sshd processes | ftpgate CPU (cores) | soak CPU (cores) | machine CPU (cores) |\n|---|---|---|---|---|---|---|---|---|\n")
	var csv strings.Builder
	csv.WriteString("seconds,rss_mib,goroutines,fds,sessions,sshd,gate_cores,machine_cores,soak_cores\n")
	for _, s := range in.samples {
		p("| %v | %.1f | %.0f | %.0f | %.0f | %d | %.2f | %.2f | %.2f |\n", s.at.Round(time.Second), s.rss/(1<<20), s.goroutines, s.fds, s.sessions, s.sshd, s.gateCores, s.soakCores, s.machineCores)
		fmt.Fprintf(&csv, "%.0f,%.2f,%.0f,%.0f,%.0f,%d,%.3f,%.3f,%.3f\n", s.at.Seconds(), s.rss/(1<<20), s.goroutines, s.fds, s.sessions, s.sshd, s.gateCores, s.machineCores, s.soakCores)
	}
	os.WriteFile(filepath.Join(dir, "samples.csv"), []byte(csv.String()), 0o644)
	if err := plot(dir); err != nil {
		p("\n(no plot: %v)\n", err)
		t.Errorf("plot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report in %s:\n%s", dir, b.String())
	if !pass {
		t.Errorf("soak failed: %s", strings.Join(verdicts, "; "))
	}
}

// plot draws samples.csv into soak.png with gnuplot.
func plot(dir string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		return fmt.Errorf("gnuplot not found (apt-get install gnuplot-nox)")
	}
	script := `set terminal pngcairo size 1200,1000 font ",10"
set output "soak.png"
set datafile separator ","
set termoption noenhanced
set key autotitle columnhead
set multiplot layout 4,1 title "ftpgate soak: RSS, goroutines and open fds of the ftpgate process (samples every 10 s)"
set xlabel "seconds"
set grid
set ylabel "RSS (MiB)"
plot "samples.csv" using 1:2 with linespoints lw 2 pt 7 ps 0.5
set ylabel "goroutines"
plot "samples.csv" using 1:3 with linespoints lw 2 pt 7 ps 0.5, "" using 1:5 with lines dt 2 title "sessions"
set ylabel "open fds"
plot "samples.csv" using 1:4 with linespoints lw 2 pt 7 ps 0.5, "" using 1:6 with lines dt 2 title "sshd processes"
set ylabel "CPU (cores)"
set yrange [0:2.1]
plot "samples.csv" using 1:7 with linespoints lw 2 pt 7 ps 0.5 title "ftpgate", "" using 1:9 with lines title "soak clients", "" using 1:8 with lines dt 2 title "machine (all processes)"
unset multiplot
`
	cmd := exec.Command("gnuplot")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		// Debian's gnuplot-nox has no cairo terminal in some versions.
		cmd = exec.Command("gnuplot")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(strings.Replace(script, `pngcairo size 1200,1000 font ",10"`, "png size 1200,1000", 1))
		if out2, err2 := cmd.CombinedOutput(); err2 != nil {
			return fmt.Errorf("gnuplot: %v: %s %s", err2, out, out2)
		}
	}
	return nil
}
