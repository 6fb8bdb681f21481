package scaleout

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/test/peers"
)

// The client's login and the Redis password. Both are distinctive so the
// test can check that neither reaches a log or a record.
const (
	clientUser = "scalebatch"
	clientPass = "Scale-e2e-client-pw-3Hv7"
	redisPass  = "Scale-e2e-redis-pw-8Nd2"
	// clientIP is the real client's address; HAProxy connects from
	// 127.0.0.1, the replicas listen on 127.0.0.3 and 127.0.0.4.
	clientIP = "127.0.0.2"
	// pasvPorts is the size of each replica's passive range.
	pasvPorts = 10
)

// cluster is HAProxy in front of two ftpgate replicas sharing one Redis,
// in front of one sshd.
type cluster struct {
	lb    string // HAProxy's FTP address
	a, b  *replica
	redis *proc
	sshd  *peers.SSHD
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	peers.Require(t, "haproxy", "redis-server", "curl", "python3")
	s := peers.StartSSHD(t)
	dir := t.TempDir()
	start := time.Now()
	bin := buildFTPGate(t, dir)
	t.Logf("built ftpgate in %v", time.Since(start).Round(time.Millisecond))

	rp, redisAddr := startRedis(t, dir, redisPass)
	hash, err := bcrypt.GenerateFromPassword([]byte(clientPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	polPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polPath, []byte(fmt.Sprintf(`version: 1
routes:
  - name: scale-route
    user: %s
    auth: local
    password_bcrypt: %q
    upstream: %q
    upstream_key: %q
    known_hosts: %q
`, clientUser, hash, "sftp://"+s.User+"@"+s.Addr+s.Root, s.ClientKeyFile, s.KnownHostsFile)), 0o644)

	c := &cluster{redis: rp, sshd: s}
	base := freeRange(t, 2*pasvPorts, "127.0.0.1", "127.0.0.3", "127.0.0.4")
	rangeA := fmt.Sprintf("%d-%d", base, base+pasvPorts-1)
	rangeB := fmt.Sprintf("%d-%d", base+pasvPorts, base+2*pasvPorts-1)
	startReplica := func(name, ip, pasv string) *replica {
		r := &replica{name: name, addr: net.JoinHostPort(ip, strconv.Itoa(freePort(t, ip))), audit: filepath.Join(dir, "audit-"+name+".jsonl")}
		env := []string{
			"PATH=" + os.Getenv("PATH"),
			"FTPGATE_LISTEN=" + r.addr,
			"FTPGATE_ADMIN_LISTEN=off",
			"FTPGATE_POLICY=" + polPath,
			"FTPGATE_GREETING=ftpgate replica " + name + " ready.",
			"FTPGATE_LOG_LEVEL=debug",
			"FTPGATE_AUDIT_STDOUT=false",
			"FTPGATE_AUDIT_FILE=" + r.audit,
			"FTPGATE_LOGIN_FAIL_DELAY=10ms",
			"FTPGATE_DRAIN_TIMEOUT=5s",
			// Each replica has its own range, which HAProxy forwards to it;
			// both advertise the balancer's address.
			"FTPGATE_PASV_PORTS=" + pasv,
			"FTPGATE_PASV_ADDRESS=127.0.0.1",
			"FTPGATE_PROXY_PROTOCOL_FROM=127.0.0.1/32",
			"FTPGATE_PROXY_PROTOCOL_TIMEOUT=1s",
			"FTPGATE_REDIS_URL=redis://:" + redisPass + "@" + redisAddr + "/0",
			"FTPGATE_REDIS_PREFIX=scale-e2e:",
			"FTPGATE_LOCKOUT_FAILURES=3",
		}
		r.p = startProc(t, env, bin, "serve")
		peers.WaitFor(t, 10*time.Second, func() bool {
			if r.p.exited() {
				t.Fatalf("replica %s exited: %v\n%s", name, r.p.err, r.p.out.String())
			}
			return strings.Contains(r.p.out.String(), `"message":"serving"`)
		})
		return r
	}
	c.a = startReplica("A", "127.0.0.3", rangeA)
	c.b = startReplica("B", "127.0.0.4", rangeB)
	if out := c.a.p.out.String(); !strings.Contains(out, "failed-login lockouts shared through Redis") ||
		!strings.Contains(out, "PROXY protocol required") {
		t.Fatalf("replica A did not turn scale-out on:\n%s", out)
	}

	c.lb = "127.0.0.1:" + strconv.Itoa(freePort(t, "127.0.0.1"))
	cfg := strings.NewReplacer(
		"{{ftp}}", strings.TrimPrefix(c.lb, "127.0.0.1:"),
		"{{a}}", c.a.addr, "{{b}}", c.b.addr,
		"{{aHost}}", "127.0.0.3", "{{bHost}}", "127.0.0.4",
		"{{pasvA}}", rangeA, "{{pasvB}}", rangeB,
	).Replace(haproxyConfig)
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	if out, err := exec.Command("haproxy", "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	hp := startProc(t, nil, "haproxy", "-f", cfgPath, "-db")
	// Probe a passive port, not the FTP port: HAProxy binds every
	// frontend before it serves any, and a probe of the FTP port would be
	// a session on a replica.
	waitListening(t, hp, "127.0.0.1:"+strconv.Itoa(base))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy.cfg:\n%s", cfg)
		}
	})
	return c
}

// ftpDial opens a control connection to addr from the address from and
// returns it with the greeting's text.
func ftpDial(t *testing.T, addr, from string) (*textproto.Conn, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(nc)
	_, msg, err := tp.ReadResponse(220)
	if err != nil {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	return tp, msg
}

// dialReplica opens control connections through the balancer from from
// until one is greeted by replica name ("A" or "B"); the others are
// closed with QUIT.
func dialReplica(t *testing.T, c *cluster, from, name string) *textproto.Conn {
	t.Helper()
	for i := 0; i < 4; i++ {
		tp, greeting := ftpDial(t, c.lb, from)
		if strings.Contains(greeting, "replica "+name+" ") {
			return tp
		}
		tp.PrintfLine("QUIT")
		tp.ReadResponse(221)
	}
	t.Fatalf("no connection through the balancer reached replica %s in 4 tries", name)
	return nil
}

func code(t *testing.T, tp *textproto.Conn, format string, args ...any) (int, string) {
	t.Helper()
	if format != "" {
		tp.PrintfLine(format, args...)
	}
	c, msg, _ := tp.ReadResponse(0)
	return c, msg
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func ftpURL(c *cluster, name string) string {
	return "ftp://" + clientUser + ":" + clientPass + "@" + c.lb + "/" + name
}

// pyClient is a Python ftplib client: it connects from clientIP through
// the balancer, uploads the file in passive mode (PASV), downloads it
// back in passive mode and in active mode (PORT), and prints the
// greeting and the SHA-256 of each download.
const pyClient = `
import ftplib, hashlib, io, sys
host, port, user, pw, path, src = sys.argv[1:7]
data = open(path, 'rb').read()
f = ftplib.FTP()
f.connect(host, int(port), timeout=30, source_address=(src, 0))
print(f.getwelcome())
f.login(user, pw)
f.set_pasv(True)
f.storbinary('STOR py.bin', io.BytesIO(data))
for passive in (True, False):
    f.set_pasv(passive)
    out = io.BytesIO()
    f.retrbinary('RETR py.bin', out.write)
    print(('passive' if passive else 'active'), hashlib.sha256(out.getvalue()).hexdigest())
f.quit()
`

// TestScaleOut runs the whole cluster. The subtests share it and run in
// order: transfers first (so the records hold only clientIP's sessions),
// then the PROXY protocol rules, the shared lockout, and Redis down.
func TestScaleOut(t *testing.T) {
	c := startCluster(t)
	replicas := []*replica{c.a, c.b}
	data := make([]byte, 1<<20+123)
	rand.Read(data)
	want := sha(data)
	src := filepath.Join(t.TempDir(), "src.bin")
	os.WriteFile(src, data, 0o644)

	t.Run("transfers through the balancer", func(t *testing.T) {
		dl := filepath.Join(t.TempDir(), "dl.bin")
		steps := []struct {
			what string
			args []string
			file string // downloaded file to check, or ""
		}{
			{"curl passive (EPSV) upload", []string{"-T", src, ftpURL(c, "epsv.bin")}, ""},
			{"curl passive (PASV) download", []string{"--disable-epsv", "-o", dl, ftpURL(c, "epsv.bin")}, dl},
			{"curl active (EPRT) upload", []string{"-P", clientIP, "-T", src, ftpURL(c, "active.bin")}, ""},
			{"curl active (PORT) download", []string{"-P", clientIP, "--disable-eprt", "-o", dl, ftpURL(c, "active.bin")}, dl},
			{"curl passive (EPSV) download", []string{"-o", dl, ftpURL(c, "active.bin")}, dl},
		}
		for _, s := range steps {
			os.Remove(dl)
			if _, err := peers.Curl(t, append([]string{"--interface", clientIP}, s.args...)...); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
			if s.file != "" {
				if got, _ := os.ReadFile(s.file); sha(got) != want {
					t.Fatalf("%s: SHA-256 %s (%d bytes); want %s", s.what, sha(got), len(got), want)
				}
			}
		}
		out, err := peers.Python(t, pyClient, "127.0.0.1", strings.TrimPrefix(c.lb, "127.0.0.1:"), clientUser, clientPass, src, clientIP)
		if err != nil {
			t.Fatalf("python ftplib: %v", err)
		}
		for _, mode := range []string{"passive", "active"} {
			if !strings.Contains(string(out), mode+" "+want) {
				t.Errorf("python ftplib %s download: got %q; want SHA-256 %s", mode, out, want)
			}
		}
		for _, name := range []string{"epsv.bin", "active.bin", "py.bin"} {
			if got, _ := os.ReadFile(filepath.Join(c.sshd.Root, name)); sha(got) != want {
				t.Errorf("%s at sshd: SHA-256 %s (%d bytes); want %s", name, sha(got), len(got), want)
			}
		}
		// Every transfer is recorded, on one replica or the other, with
		// the hash of the bytes the client sent or got.
		var transfers []map[string]any
		for _, r := range replicas {
			rs := r.records(t)
			mine := find(rs, "transfer", nil)
			if len(mine) == 0 {
				t.Errorf("(a) replica %s recorded no transfer: sessions did not spread over both", r.name)
			}
			t.Logf("replica %s: %d sessions, %d transfers", r.name, len(find(rs, "session_start", nil)), len(mine))
			transfers = append(transfers, mine...)
		}
		if len(transfers) != 8 {
			t.Errorf("%d transfer records; want 8 (5 curl, 3 ftplib)", len(transfers))
		}
		for _, tr := range transfers {
			if str(tr, "result") != "ok" || str(tr, "sha256") != want {
				t.Errorf("transfer record %s %s: result %s, sha256 %s; want ok, %s", str(tr, "direction"), str(tr, "name"), str(tr, "result"), str(tr, "sha256"), want)
			}
		}
	})

	t.Run("records name the real client", func(t *testing.T) {
		total := 0
		for _, r := range replicas {
			rs := r.records(t)
			starts := find(rs, "session_start", nil)
			total += len(starts)
			for _, m := range rs {
				if cl := str(m, "client"); !strings.HasPrefix(cl, clientIP+":") {
					t.Errorf("replica %s: %s record with client %q; want %s (HAProxy is 127.0.0.1)", r.name, str(m, "record"), cl, clientIP)
				}
			}
			for _, m := range starts {
				if str(m, "server") != r.addr {
					t.Errorf("replica %s: session_start server %q; want the replica's own %s", r.name, str(m, "server"), r.addr)
				}
			}
		}
		if total != 6 {
			t.Errorf("%d sessions recorded; want 6 (5 curl, 1 ftplib)", total)
		}
	})

	t.Run("PROXY protocol rules", func(t *testing.T) {
		// A client that is not a balancer and sends a header, claiming
		// another address: greeted (FTP servers speak first), then closed.
		hdr, _ := proxyproto.HeaderProxyFromAddrs(2,
			&net.TCPAddr{IP: net.ParseIP("203.0.113.50"), Port: 4242}, &net.TCPAddr{IP: net.ParseIP("127.0.0.3"), Port: 21}).Format()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
		nc, err := d.Dial("tcp", c.a.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		nc.Write(append(hdr, []byte("USER "+clientUser+"\r\n")...))
		got, _ := readAllConn(nc)
		if !strings.HasPrefix(got, "220 ") || strings.Contains(got, "331") {
			t.Errorf("spoofed header: the client read %q; want the greeting, then the connection closed", got)
		}
		peers.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(c.a.p.out.String(), "not a load balancer") })
		for _, m := range c.a.records(t) {
			if strings.Contains(str(m, "client"), "203.0.113.50") {
				t.Errorf("the spoofed address reached a record: %v", m)
			}
		}

		// A balancer's address without a header: closed, no greeting,
		// once the header timeout (1 s) has passed.
		d = net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
		nc2, err := d.Dial("tcp", c.b.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc2.Close()
		nc2.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		if got, err := readAllConn(nc2); got != "" || err != nil {
			t.Errorf("no header from the balancer's address: read %q, %v; want EOF without a greeting", got, err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
			t.Errorf("closed after %v; want about the 1 s header timeout", d)
		}
		peers.WaitFor(t, 5*time.Second, func() bool {
			return strings.Contains(c.b.p.out.String(), "from a load balancer without a valid PROXY header")
		})

		// A direct client without a header is served under its own address.
		tp, _ := ftpDial(t, c.a.addr, clientIP)
		if n, msg := code(t, tp, "USER %s", clientUser); n != 331 {
			t.Errorf("direct client USER: %d %s", n, msg)
		}
		code(t, tp, "QUIT")
	})

	t.Run("a lockout on replica A holds on replica B", func(t *testing.T) {
		const guesser = "127.0.0.5"
		tp := dialReplica(t, c, guesser, "A")
		for i := 1; i <= 3; i++ {
			if n, msg := code(t, tp, "USER %s", clientUser); n != 331 {
				t.Fatalf("USER %d: %d %s", i, n, msg)
			}
			if n, msg := code(t, tp, "PASS wrong-%d", i); n != 530 {
				t.Fatalf("wrong password %d: %d %s; want 530", i, n, msg)
			}
		}
		code(t, tp, "QUIT")
		tp = dialReplica(t, c, guesser, "B")
		code(t, tp, "USER %s", clientUser)
		if n, msg := code(t, tp, "PASS %s", clientPass); n != 530 {
			t.Fatalf("right password on replica B after the lockout on A: %d %s; want 530", n, msg)
		}
		code(t, tp, "QUIT")
		fromGuesser := func(m map[string]any) bool { return strings.HasPrefix(str(m, "client"), guesser+":") }
		if got := find(c.a.records(t), "login_failure", fromGuesser); len(got) != 3 {
			t.Errorf("replica A: %d failed logins from %s; want 3:\n%s", len(got), guesser, dump(got))
		}
		lockouts := find(c.b.records(t), "login_failure", func(m map[string]any) bool {
			return fromGuesser(m) && str(m, "rule") == "lockout"
		})
		if len(lockouts) != 1 || !strings.Contains(str(lockouts[0], "reason"), "locked out") {
			t.Errorf("replica B: lockout records %s; want one with rule lockout", dump(lockouts))
		}
		if got := find(c.b.records(t), "login", fromGuesser); len(got) != 0 {
			t.Errorf("replica B let the locked-out client in: %s", dump(got))
		}
	})

	t.Run("Redis down: new sessions refused with 421 and a record", func(t *testing.T) {
		c.redis.stop()
		const from = "127.0.0.6"
		// The shared per-address session count is asked before the
		// greeting, so with Redis gone a new session is refused at once,
		// on whichever replica the balancer picks (roundrobin: both).
		for i := 0; i < 4; i++ {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
			conn, err := d.Dial("tcp", c.lb)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if !strings.HasPrefix(line, "421 ") {
				t.Errorf("session %d with Redis down: %q; want 421", i, line)
			}
		}
		for _, r := range replicas {
			got := find(r.records(t), "login_failure", func(m map[string]any) bool {
				return strings.HasPrefix(str(m, "client"), from+":") && str(m, "rule") == "limits"
			})
			if len(got) == 0 || !strings.Contains(str(got[0], "reason"), "unavailable") {
				t.Errorf("replica %s: limit records %s; want ones saying the shared store is unavailable", r.name, dump(got))
			}
		}
	})

	for _, r := range replicas {
		r.p.stop()
		logs, _ := os.ReadFile(r.audit)
		for _, secret := range []string{clientPass, redisPass} {
			if bytes.Contains(logs, []byte(secret)) || strings.Contains(r.p.out.String(), secret) {
				t.Errorf("replica %s: a password (%.4s...) appears in its records or log", r.name, secret)
			}
		}
		if r.p.err != nil {
			t.Errorf("replica %s exited with %v after SIGTERM; want 0", r.name, r.p.err)
		}
	}
}

func readAllConn(c net.Conn) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(c)
	return b.String(), err
}
