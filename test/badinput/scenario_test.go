package badinput

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/test/peers"
)

// Short timeouts for the scenarios that wait for one to fire. They are
// far below the defaults ("ftpgate serve": 60 s, 5 min, 30 s, 120 s) so
// the suite stays fast, and far above what a loopback login or transfer
// needs, even with sshd on a busy 2-core machine.
const (
	shortLogin        = 2 * time.Second
	shortIdle         = 2 * time.Second
	shortDataConn     = time.Second
	shortTransferIdle = time.Second
)

func shortTimeouts(s *proxy.Server) {
	s.LoginTimeout = shortLogin
	s.IdleTimeout = shortIdle
	s.DataConnTimeout = shortDataConn
	s.TransferIdleTimeout = shortTransferIdle
}

// scenario is a bad input that needs more than one line of the table:
// data connections, timing or raw socket tricks. run gets a logged-in
// session in its own directory (see gate.fixture) and returns the session
// on which NOOP must still be answered, or nil when the scenario ends the
// session. short selects the gate with short timeouts.
type scenario struct {
	name  string
	short bool
	run   func(t *testing.T, g *gate, c *client, dir string) *client
}

var scenarios = []scenario{
	{"PORT to the gate's own control port", false, portToOwnControlPort},
	{"passive connection stolen from 127.0.0.2 (EPSV)", false, portStealEPSV},
	{"passive connection stolen from 127.0.0.2 (PASV)", false, portStealPASV},
	{"only a thief connects to the passive port", true, onlyThiefConnects},
	{"10,000 NOOPs pipelined", false, noopFlood},
	{"one byte per second before login", true, slowlorisBeforeLogin},
	{"one byte per second after login", true, slowlorisAfterLogin},
	{"RETR of a big file, never read", true, retrNeverRead},
	{"STOR, never written", true, storNeverWritten},
	{"STOR in active mode, a little then nothing", true, storStallsActive},
	{"QUIT during a stalled STOR", true, quitDuringStalledStor},
	{"ABOR after PASV, before RETR", false, aborAfterPASV},
	{"ABOR after RETR, before the data connection", false, aborBeforeDataConn},
	{"ABOR after 150 of a RETR", false, aborAfter150Retr},
	{"ABOR after 150 with Telnet IP and urgent DM", false, aborUrgent},
	{"ABOR after 150 of a STOR", false, aborAfter150Stor},
	{"ABOR after 226", false, aborAfter226},
	{"commands pipelined behind a transfer wait for it", false, pipelinedBehindTransfer},
	{"STOR onto a directory", false, storOntoDirectory},
	{"APPE onto a missing file creates it", false, appeCreates},
	{"REST at the largest int64, then STOR", false, restHugeStor},
	{"REST at the end of the file, then RETR", false, restAtEndRetr},
}

// TestScenarios runs every scenario against every partner, in parallel,
// sharing two gates per partner: one with the default timeouts and one
// with short ones.
func TestScenarios(t *testing.T) {
	for _, up := range upstreams {
		t.Run(up.name, func(t *testing.T) {
			t.Parallel() // mostly waiting for timeouts to fire
			p := up.partner(t)
			normal := startGate(t, p, up.pool, nil)
			short := startGate(t, p, up.pool, shortTimeouts)
			t.Run("scenarios", func(t *testing.T) {
				for i, sc := range scenarios {
					t.Run(sc.name, func(t *testing.T) {
						t.Parallel()
						g := normal
						if sc.short {
							g = short
						}
						dir := fmt.Sprintf("s%03d", i)
						g.fixture(t, dir)
						c := dial(t, g.addr)
						c.login()
						c.must("CWD "+dir, 250)
						if c := sc.run(t, g, c, dir); c != nil {
							c.noop()
						}
						f := dial(t, g.addr)
						f.login()
						f.must("QUIT", 221)
					})
				}
			})
		})
	}
}

// portToOwnControlPort: a client on the gate's own address (here: both on
// loopback) names the gate's control port in PORT. The bounce rules alone
// would let it through (same address, port above 1023), and a file
// retrieved there would be read by a new session of the gate as commands;
// the gate refuses its own control address by name, so nothing is run.
func portToOwnControlPort(t *testing.T, g *gate, c *client, dir string) *client {
	script := "USER " + clientUser + "\r\nPASS " + clientPass + "\r\nMKD bounced-" + dir + "\r\nQUIT\r\n"
	if err := os.WriteFile(filepath.Join(g.p.root, dir, "script.txt"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(g.addr)
	p, _ := strconv.Atoi(port)
	c.must("TYPE I", 200)
	c.must("PORT "+portTuple(p), 501)
	if _, err := os.Stat(filepath.Join(g.p.root, "bounced-"+dir)); err == nil {
		t.Errorf("the gate ran a session with itself")
	}
	c.noop()
	return c
}

// portSteal opens the passive port from 127.0.0.2 first, then from the
// client's own address; the thief must get nothing and the listing must
// reach the client.
func portSteal(t *testing.T, c *client, port int) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	thief, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 here: %v", err)
	}
	defer thief.Close()
	real := c.dialData(port)
	c.must("NLST", 150)
	listing, err := io.ReadAll(real)
	if err != nil || !strings.Contains(string(listing), "present.txt\r\n") {
		t.Errorf("the client's listing: %q, %v", listing, err)
	}
	c.expect(226)
	thief.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := thief.Read(make([]byte, 64)); n > 0 || err == nil {
		t.Errorf("the thief read %d bytes (err %v); want its connection closed", n, err)
	}
}

func portStealEPSV(t *testing.T, g *gate, c *client, dir string) *client {
	portSteal(t, c, epsvPort(t, c.must("EPSV", 229)))
	return c
}

func portStealPASV(t *testing.T, g *gate, c *client, dir string) *client {
	portSteal(t, c, pasvPort(t, c.must("PASV", 227)))
	return c
}

func pasvPort(t *testing.T, msg string) int {
	t.Helper()
	i, j := strings.Index(msg, "("), strings.Index(msg, ")")
	f := strings.Split(msg[i+1:max(i+1, j)], ",")
	if i < 0 || j < i || len(f) != 6 {
		t.Fatalf("cannot parse PASV reply %q", msg)
	}
	p1, _ := strconv.Atoi(f[4])
	p2, _ := strconv.Atoi(f[5])
	return p1<<8 | p2
}

// onlyThiefConnects: the only connection to the passive port comes from
// another address. It is closed, and once DataConnTimeout has passed the
// transfer fails with 425.
func onlyThiefConnects(t *testing.T, g *gate, c *client, dir string) *client {
	port := epsvPort(t, c.must("EPSV", 229))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	thief, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 here: %v", err)
	}
	defer thief.Close()
	start := time.Now()
	c.write("RETR present.txt\r\n")
	c.expect(425)
	if d := time.Since(start); d < shortDataConn {
		t.Errorf("425 after %v; want it only after DataConnTimeout (%v)", d, shortDataConn)
	}
	return c
}

// noopFlood pipelines 10,000 NOOPs in one write, with a TYPE command after
// every 1,000th, and checks that every one is answered, in order.
func noopFlood(t *testing.T, g *gate, c *client, dir string) *client {
	const n, every = 10000, 1000
	var b strings.Builder
	var want []string // "NOOP", "I" or "A" in order
	for i := 1; i <= n; i++ {
		b.WriteString("NOOP\r\n")
		want = append(want, "NOOP")
		if i%every == 0 {
			typ := []string{"I", "A"}[i/every%2]
			b.WriteString("TYPE " + typ + "\r\n")
			want = append(want, typ)
		}
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() { // write while the replies are read, as a real client would
		c.conn.SetWriteDeadline(time.Now().Add(ctrlTimeout))
		_, err := io.WriteString(c.conn, b.String())
		errc <- err
	}()
	for i, w := range want {
		code, msg, err := c.read()
		ok := code == 200 && (w == "NOOP" && msg == "NOOP ok." ||
			w == "I" && strings.Contains(msg, "Binary") || w == "A" && strings.Contains(msg, "ASCII"))
		if !ok {
			t.Fatalf("reply %d of %d: got %d %q (err %v); want 200 for %s", i+1, len(want), code, msg, err, w)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pipelined commands answered in %v", len(want), time.Since(start).Round(time.Millisecond))
	return c
}

// trickle sends s one byte per second until the gate answers; it returns
// the reply and how long it took.
func trickle(t *testing.T, c *client, s string) (int, string, time.Duration) {
	start := time.Now()
	for i := 0; ; i++ {
		c.write(s[i%len(s) : i%len(s)+1])
		c.conn.SetReadDeadline(time.Now().Add(time.Second))
		code, msg, err := c.r.ReadResponse(0)
		if code != 0 {
			return code, msg, time.Since(start)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("trickle: %v", err)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("trickle: no reply within 30 s")
		}
	}
}

// slowlorisBeforeLogin: LoginTimeout counts from the connect, so bytes
// trickling in do not extend it; the session is closed with 421.
func slowlorisBeforeLogin(t *testing.T, g *gate, _ *client, dir string) *client {
	c := dial(t, g.addr)
	code, msg, took := trickle(t, c, "USER "+clientUser+"\r\n")
	if code != 421 || !strings.Contains(msg, "Login timeout") {
		t.Fatalf("got %d %q; want 421 Login timeout", code, msg)
	}
	if took > shortLogin+3*time.Second {
		t.Errorf("421 after %v; LoginTimeout is %v", took, shortLogin)
	}
	c.expectClosed()
	return nil
}

// slowlorisAfterLogin: the idle timer is armed before each command is
// read, so a command trickling in byte by byte never completes; 421.
func slowlorisAfterLogin(t *testing.T, g *gate, c *client, dir string) *client {
	code, msg, took := trickle(t, c, "NOOP\r\n")
	if code != 421 || !strings.Contains(msg, "Idle timeout") {
		t.Fatalf("got %d %q; want 421 Idle timeout", code, msg)
	}
	if took > shortIdle+3*time.Second {
		t.Errorf("421 after %v; IdleTimeout is %v", took, shortIdle)
	}
	c.expectClosed()
	return nil
}

// bigFile makes a 64 MiB sparse file: far more than the socket buffers
// and the SFTP read-ahead hold, and free to make.
func bigFile(t *testing.T, g *gate, dir, name string) {
	f, err := os.Create(filepath.Join(g.p.root, dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
}

// retrNeverRead: the client opens the data connection and never reads.
// Nothing moves once the buffers are full, and TransferIdleTimeout aborts
// the transfer with 426.
func retrNeverRead(t *testing.T, g *gate, c *client, dir string) *client {
	bigFile(t, g, dir, "big.bin")
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("RETR big.bin", 150)
	code, msg, err := c.read()
	if code != 426 {
		t.Fatalf("final reply %d %q (err %v); want 426", code, msg, err)
	}
	d.Close()
	return c
}

// storNeverWritten: the client opens the data connection and sends
// nothing; 426, and no file appears.
func storNeverWritten(t *testing.T, g *gate, c *client, dir string) *client {
	d := c.epsv()
	c.must("STOR never.bin", 150)
	if code, msg, err := c.read(); code != 426 {
		t.Fatalf("final reply %d %q (err %v); want 426", code, msg, err)
	}
	d.Close()
	assertAbsent(t, filepath.Join(g.p.root, dir, "never.bin"))
	return c
}

// storStallsActive: an active-mode upload sends a little and stops; 426,
// and the partial upload never appears under its name.
func storStallsActive(t *testing.T, g *gate, c *client, dir string) *client {
	accept := c.active()
	c.must("STOR stalled.bin", 150)
	d := accept()
	d.Write([]byte("a little"))
	if code, msg, err := c.read(); code != 426 {
		t.Fatalf("final reply %d %q (err %v); want 426", code, msg, err)
	}
	assertAbsent(t, filepath.Join(g.p.root, dir, "stalled.bin"))
	return c
}

// quitDuringStalledStor: QUIT waits for the running transfer (RFC 959
// 4.1.1); the stalled transfer ends with 426, then QUIT is answered.
func quitDuringStalledStor(t *testing.T, g *gate, c *client, dir string) *client {
	d := c.epsv()
	c.must("STOR q.bin", 150)
	d.Write([]byte("x"))
	c.write("QUIT\r\n")
	for _, want := range []int{426, 221} {
		if code, msg, err := c.read(); code != want {
			t.Fatalf("got %d %q (err %v); want %d", code, msg, err, want)
		}
	}
	c.expectClosed()
	return nil
}

// aborAfterPASV: ABOR without a transfer closes the prepared passive
// listener; the port no longer accepts and the next RETR has no data
// connection.
func aborAfterPASV(t *testing.T, g *gate, c *client, dir string) *client {
	port := pasvPort(t, c.must("PASV", 227))
	c.must("ABOR", 225)
	if d, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 2*time.Second); err == nil {
		d.Close()
		t.Errorf("the passive port %d still accepts after ABOR", port)
	}
	c.must("RETR present.txt", 425)
	return c
}

// aborBeforeDataConn: the transfer waits for the data connection, which
// never comes; ABOR stops the wait: 426 for the transfer, 226 for ABOR.
func aborBeforeDataConn(t *testing.T, g *gate, c *client, dir string) *client {
	c.must("EPSV", 229)
	c.write("STOR waiting.bin\r\n")
	c.write("ABOR\r\n")
	for _, want := range []int{426, 226} {
		if code, msg, err := c.read(); code != want {
			t.Fatalf("got %d %q (err %v); want %d", code, msg, err, want)
		}
	}
	assertAbsent(t, filepath.Join(g.p.root, dir, "waiting.bin"))
	return c
}

// startBigRetr starts a RETR of a 64 MiB file and reads its first bytes.
func startBigRetr(t *testing.T, g *gate, c *client, dir string) *net.TCPConn {
	bigFile(t, g, dir, "big.bin")
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("RETR big.bin", 150)
	d.SetReadDeadline(time.Now().Add(ctrlTimeout))
	if _, err := io.ReadFull(d, make([]byte, 64<<10)); err != nil {
		t.Fatalf("read the first data: %v", err)
	}
	return d
}

func expect426Then226(t *testing.T, c *client) {
	t.Helper()
	for _, want := range []int{426, 226} {
		if code, msg, err := c.read(); code != want {
			t.Fatalf("after ABOR: got %d %q (err %v); want %d", code, msg, err, want)
		}
	}
}

func aborAfter150Retr(t *testing.T, g *gate, c *client, dir string) *client {
	d := startBigRetr(t, g, c, dir)
	c.write("ABOR\r\n")
	expect426Then226(t, c)
	d.Close()
	return c
}

// aborUrgent sends ABOR as RFC 959 4.1.3 asks and classic clients do:
// Telnet IP, then IAC DM as TCP urgent data (the Synch), then ABOR.
func aborUrgent(t *testing.T, g *gate, c *client, dir string) *client {
	d := startBigRetr(t, g, c, dir)
	c.write("\xff\xf4\xff")
	raw, err := c.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), []byte{0xf2}, syscall.MSG_OOB, nil)
		return true
	})
	if serr != nil {
		t.Fatalf("send urgent DM: %v", serr)
	}
	c.write("ABOR\r\n")
	expect426Then226(t, c)
	d.Close()
	return c
}

func aborAfter150Stor(t *testing.T, g *gate, c *client, dir string) *client {
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("STOR aborted.bin", 150)
	d.Write(make([]byte, 100<<10))
	c.write("ABOR\r\n")
	expect426Then226(t, c)
	d.Close()
	assertAbsent(t, filepath.Join(g.p.root, dir, "aborted.bin"))
	return c
}

func aborAfter226(t *testing.T, g *gate, c *client, dir string) *client {
	d := c.epsv()
	c.must("RETR present.txt", 150)
	io.ReadAll(d)
	d.Close()
	c.expect(226)
	c.must("ABOR", 225)
	return c
}

// pipelinedBehindTransfer: commands sent while a transfer runs wait for it
// (all but ABOR, STAT and NOOP), so the replies stay in order.
func pipelinedBehindTransfer(t *testing.T, g *gate, c *client, dir string) *client {
	d := c.epsv()
	c.write("RETR present.txt\r\nSIZE present.txt\r\nPWD\r\n")
	c.expect(150)
	io.ReadAll(d)
	d.Close()
	for _, want := range []int{226, 213, 257} {
		if code, msg, err := c.read(); code != want {
			t.Fatalf("got %d %q (err %v); want %d", code, msg, err, want)
		}
	}
	return c
}

// storOntoDirectory: a STOR whose target is a directory is refused with
// 550 before the 150 (RFC 959 allows no 550 after it, and vsftpd refuses
// first too); the directory and its content stay, and no temporary file
// is left behind.
func storOntoDirectory(t *testing.T, g *gate, c *client, dir string) *client {
	c.epsv()
	code, msg := c.cmd("STOR sub")
	if code != 550 && code != 553 {
		t.Fatalf("STOR onto a directory: %d %q; want 550 or 553 before any 150", code, msg)
	}
	if b, err := os.ReadFile(filepath.Join(g.p.root, dir, "sub", "inner.txt")); err != nil || string(b) != "inner\n" {
		t.Errorf("sub/inner.txt after STOR onto sub: %q, %v", b, err)
	}
	assertNoPartFiles(t, filepath.Join(g.p.root, dir))
	c.noop()
	return c
}

func appeCreates(t *testing.T, g *gate, c *client, dir string) *client {
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("APPE created.bin", 150)
	data := make([]byte, 300<<10)
	rand.Read(data)
	d.Write(data)
	d.Close()
	c.expect(226)
	if b, err := os.ReadFile(filepath.Join(g.p.root, dir, "created.bin")); err != nil || !bytes.Equal(b, data) {
		t.Errorf("created.bin: %d bytes, %v; want the %d bytes sent", len(b), err, len(data))
	}
	return c
}

// restHugeStor: REST at the largest int64 is a valid number, so it is
// taken (350); the partner cannot write there, and the STOR fails without
// harming the file.
func restHugeStor(t *testing.T, g *gate, c *client, dir string) *client {
	c.must("REST 9223372036854775807", 350)
	d := c.epsv()
	c.must("STOR present.txt", 150)
	d.Write([]byte("x"))
	d.Close()
	if code, msg, err := c.read(); code/100 != 4 && code/100 != 5 {
		t.Fatalf("final reply %d %q (err %v); want a failure", code, msg, err)
	} else {
		t.Logf("REST 9223372036854775807 + STOR: %d %s", code, msg)
	}
	if b, _ := os.ReadFile(filepath.Join(g.p.root, dir, "present.txt")); string(b) != "present\n" {
		t.Errorf("present.txt after the failed STOR: %q", b)
	}
	return c
}

func restAtEndRetr(t *testing.T, g *gate, c *client, dir string) *client {
	c.must("REST 8", 350)
	d := c.epsv()
	c.must("RETR present.txt", 150)
	if b, err := io.ReadAll(d); len(b) != 0 || err != nil {
		t.Errorf("RETR from the end: %q, %v; want nothing", b, err)
	}
	d.Close()
	c.expect(226)
	return c
}

func assertAbsent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (err %v); want it absent", p, err)
	}
}

func assertNoPartFiles(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Errorf("temporary upload %s left in %s", e.Name(), dir)
		}
	}
}

// TestManySessionsDropped opens 10,000 sessions and drops each without
// QUIT, in every way a client can vanish: before the greeting is read,
// after it, in the middle of a line, after USER, with a reset instead of a
// close; 1 in 100 logs in first, so an upstream connection is dropped
// too. Afterwards no session may be left, the partner must have no
// connection left, and a fresh session must log in.
func TestManySessionsDropped(t *testing.T) {
	const total, workers, loginEvery = 10000, 16, 100
	// Every session comes from 127.0.0.1, and a dropped session stays
	// counted until the gate reads the end of its connection: no session
	// limits here.
	p := inProcessPartner(t)
	g := startGate(t, p, true, func(s *proxy.Server) { s.MaxSessions, s.MaxSessionsPerAddr = -1, -1 })
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := dropSession(g, i, i%loginEvery == 0); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d sessions failed, first: %s", len(failures), total, failures[0])
	}
	opened := time.Since(start)
	peers.WaitFor(t, 30*time.Second, func() bool { return g.srv.ActiveSessions() == 0 })
	// Sessions have given back their pooled channels; the pool's idle
	// connections to the partner stay (until its IdleTimeout).
	peers.WaitFor(t, 30*time.Second, func() bool { _, ch := g.pool.Stats(); return ch == 0 })
	if conns, _ := g.pool.Stats(); p.conns() > conns {
		t.Errorf("the partner has %d connections; the pool holds %d", p.conns(), conns)
	}
	t.Logf("%d sessions opened and dropped in %v; all gone %v later", total, opened.Round(time.Millisecond),
		(time.Since(start) - opened).Round(time.Millisecond))
	// A session leaves the count just before it writes its last record.
	count := func(typ string) int { return strings.Count(g.records.String(), `"record":"`+typ+`"`) }
	peers.WaitFor(t, 10*time.Second, func() bool { return count("session_end") == total })
	if n := count("session_start"); n != total {
		t.Errorf("records: %d session_start; want %d", n, total)
		starts := map[string]bool{}
		for _, l := range strings.Split(g.records.String(), "\n") {
			if i := strings.Index(l, `"session":"`); i >= 0 && strings.Contains(l, `"record":"session_start"`) {
				starts[l[i:i+24]] = true
			}
		}
		for _, l := range strings.Split(g.records.String(), "\n") {
			if i := strings.Index(l, `"session":"`); i >= 0 && !starts[l[i:i+24]] {
				t.Logf("record of a session without session_start: %s", l)
			}
		}
	}
	c := dial(t, g.addr)
	c.login()
	c.must("PWD", 257)
	c.must("QUIT", 221)
}

// dropSession opens one session and drops it in way i%6 (with a login
// first when login is set).
func dropSession(g *gate, i int, login bool) error {
	conn, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c := conn.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(ctrlTimeout))
	if i%6 == 5 {
		c.SetLinger(0) // a reset, not a FIN
	}
	readReply := func() error {
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		if n < 4 || buf[3] != ' ' && buf[3] != '-' {
			return fmt.Errorf("session %d: reply %q", i, buf[:n])
		}
		return nil
	}
	if login {
		if err := readReply(); err != nil {
			return err
		}
		for _, line := range []string{"USER " + clientUser, "PASS " + clientPass} {
			if _, err := io.WriteString(c, line+"\r\n"); err != nil {
				return err
			}
			if err := readReply(); err != nil {
				return err
			}
		}
		return nil
	}
	switch i % 6 {
	case 0: // before the greeting is read
	case 1:
		return readReply()
	case 2: // half a line
		_, err = io.WriteString(c, "NO")
	case 3:
		_, err = io.WriteString(c, "USER "+clientUser+"\r\n")
	case 4: // a command, then gone before the reply
		_, err = io.WriteString(c, "SYST\r\nHELP\r\n")
	case 5:
		err = readReply()
	}
	return err
}
