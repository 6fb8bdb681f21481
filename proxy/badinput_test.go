package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badInputCases are sent on a fresh logged-in (or not) session; each
// expects a reply code, and afterwards the session must still answer NOOP.
// Adding a case is one line.
var badInputCases = []struct {
	name   string
	login  bool
	line   string
	want   int
	noNOOP bool // the reply ends the session
}{
	{"unknown verb", false, "XYZZY", 502, false},
	{"unknown long verb", false, strings.Repeat("Q", 300), 502, false},
	{"empty line", false, "", 502, false},
	{"blank line", false, "   ", 502, false},
	{"command before login", false, "RETR x", 530, false},
	{"PWD before login", false, "PWD", 530, false},
	{"PORT before login", false, "PORT 127,0,0,1,4,1", 530, false},
	{"PASS before USER", false, "PASS x", 503, false},
	{"USER without argument", false, "USER", 501, false},
	{"NOOP with argument", false, "NOOP x", 501, false},
	{"overlong line", false, strings.Repeat("A", 5000), 500, false},
	{"NUL in argument", true, "CWD a\x00b", 501, false},
	{"invalid UTF-8 path", true, "CWD \xc3\x28", 550, false},
	{"IAC DONT swallows the argument", true, "CWD \xff\xfe", 501, false},
	{"IAC flood", true, strings.Repeat("\xff\xf1", 1000) + "NOOP", 200, false},
	{"TYPE E", true, "TYPE E", 504, false},
	{"TYPE L 7", true, "TYPE L 7", 504, false},
	{"TYPE nonsense", true, "TYPE Q", 501, false},
	{"TYPE lower case a n", true, "type a n", 200, false},
	{"MODE B", true, "MODE B", 504, false},
	{"MODE X", true, "MODE X", 501, false},
	{"STRU R", true, "STRU R", 504, false},
	{"REST negative", true, "REST -1", 501, false},
	{"REST huge", true, "REST 99999999999999999999999", 501, false},
	{"REST text", true, "REST abc", 501, false},
	{"PORT foreign address", true, "PORT 10,9,9,9,4,1", 501, false},
	{"PORT low port", true, "PORT 127,0,0,1,0,21", 501, false},
	{"PORT malformed", true, "PORT 127,0,0,1,4", 501, false},
	{"PORT overflow", true, "PORT 127,0,0,1,4,256", 501, false},
	{"EPRT foreign", true, "EPRT |1|10.9.9.9|2000|", 501, false},
	{"EPRT unknown protocol", true, "EPRT |9|10.9.9.9|2000|", 522, false},
	{"EPRT malformed", true, "EPRT 1|127.0.0.1|2000", 501, false},
	{"EPSV 2 on IPv4", true, "EPSV 2", 522, false},
	{"EPSV junk", true, "EPSV x", 501, false},
	{"RNTO without RNFR", true, "RNTO x", 503, false},
	{"RETR missing", true, "RETR no-such-file", 550, false},
	{"RETR a directory", true, "RETR .", 550, false},
	{"RETR without data connection", true, "RETR present.txt", 425, false},
	{"STOR without data connection", true, "STOR x", 425, false},
	{"SIZE of a directory", true, "SIZE .", 550, false},
	{"CWD to a file", true, "CWD present.txt", 550, false},
	{"DELE a directory", true, "DELE .", 550, false},
	{"RMD a file", true, "RMD present.txt", 550, false},
	{"MKD existing", true, "MKD .", 550, false},
	{"MFMT bad stamp", true, "MFMT 2020 present.txt", 501, false},
	{"SITE CHMOD bad mode", true, "SITE CHMOD 999 present.txt", 501, false},
	{"SITE z/OS parameters", true, "SITE LRECL=80 RECFM=FB BLKSIZE=27920", 200, false},
	{"SITE FIXrecfm", true, "SITE FIXrecfm 80 LRECL=80 RECFM=FB", 200, false},
	{"OPTS unknown", true, "OPTS FOO", 501, false},
	{"OPTS UTF8 ON", true, "OPTS UTF8 ON", 200, false},
	{"ACCT", true, "ACCT x", 202, false},
	{"ALLO", true, "ALLO 1000", 202, false},
	{"second USER after login", true, "USER other", 530, false},
	{"ABOR without transfer", true, "ABOR", 225, false},
	{"MLST missing", true, "MLST nothing-here", 550, false},
	{"path traversal above root", true, "CWD ../../../../../../../../", 250, false},
	{"QUIT with argument", true, "QUIT now", 501, false},
}

func TestBadInput(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	os.WriteFile(filepath.Join(p.Root, "present.txt"), []byte("x"), 0o644)
	for _, tc := range badInputCases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFTP(t, p.Addr)
			if tc.login {
				c.login("demo", clientPass)
			}
			code, msg := c.send(tc.line)
			if code != tc.want {
				t.Fatalf("%q: got %d %q; want %d", clip(tc.line), code, msg, tc.want)
			}
			if !tc.noNOOP {
				c.expect("NOOP", 200)
			}
		})
	}
	// The server still serves a fresh session.
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func TestEPSVAllRefusesOtherModes(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("EPSV ALL", 200)
	c.expect("PORT 127,0,0,1,4,1", 503)
	c.expect("PASV", 503)
	c.expect("EPRT |1|127.0.0.1|2000|", 503)
	c.list("LIST", modeEPSV)
}

func TestPassiveRefusesOtherHosts(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	msg := c.expect("EPSV", 229)
	port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
	// A connection from another local address (127.0.0.2) is a thief.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	thief, err := d.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2 here: %v", err)
	}
	defer thief.Close()
	real, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	c.expect("NLST", 150)
	thief.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _ := thief.Read(make([]byte, 10)); n != 0 {
		t.Errorf("the thief's connection got data")
	}
	io.ReadAll(real)
	real.Close()
	if code, _ := c.read(); code != 226 {
		t.Errorf("NLST final reply %d; want 226", code)
	}
}

func TestShutdownWaitsForTransfer(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	idle := dialFTP(t, p.Addr)
	idle.login("demo", clientPass)
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	conn := c.prepare(modeEPSV)
	c.expect("STOR drain.bin", 150)
	dc := conn()
	dc.Write([]byte("first half "))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- p.Srv.Shutdown(ctx)
	}()
	// The idle session is told at once; the transfer goes on.
	if code, _ := idle.read(); code != 421 {
		t.Errorf("idle session: got %d; want 421", code)
	}
	if _, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		t.Errorf("a new connection was accepted during shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a transfer was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	dc.Write([]byte("second half"))
	dc.Close()
	if code, msg := c.read(); code != 226 {
		t.Fatalf("transfer during shutdown: %d %q; want 226", code, msg)
	}
	if code, _ := c.read(); code != 421 {
		t.Errorf("after the transfer: got %d; want 421", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(p.Root, "drain.bin"))
	if string(got) != "first half second half" {
		t.Fatalf("upstream file %q", got)
	}
}

func TestShutdownDeadlineClosesTransfers(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	conn := c.prepare(modeEPSV)
	c.expect("STOR never.bin", 150)
	conn().Write([]byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v; want DeadlineExceeded", err)
	}
	waitNoSessions(t, p.Srv)
	if _, err := os.Stat(filepath.Join(p.Root, "never.bin")); err == nil {
		t.Errorf("an upload cut off by shutdown appeared under its final name")
	}
}

func TestIdleAndLoginTimeouts(t *testing.T) {
	p := startProxy(t, proxyOpts{mutate: func(s *Server) {
		s.IdleTimeout = 150 * time.Millisecond
		s.LoginTimeout = 300 * time.Millisecond
	}})
	c := dialFTP(t, p.Addr)
	if code, msg := c.read(); code != 421 || !strings.Contains(msg, "Login timeout") {
		t.Errorf("no login: got %d %q; want 421 login timeout", code, msg)
	}
	c2 := dialFTP(t, p.Addr)
	c2.login("demo", clientPass)
	if code, msg := c2.read(); code != 421 || !strings.Contains(msg, "Idle") {
		t.Errorf("idle: got %d %q; want 421 idle timeout", code, msg)
	}
}

func TestTransferIdleTimeout(t *testing.T) {
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.TransferIdleTimeout = 200 * time.Millisecond }})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	conn := c.prepare(modeEPSV)
	c.expect("STOR stalled.bin", 150)
	conn().Write([]byte("a little"))
	// ... and then nothing: the watchdog aborts the transfer.
	if code, msg := c.read(); code != 426 {
		t.Fatalf("stalled upload: %d %q; want 426", code, msg)
	}
	if _, err := os.Stat(filepath.Join(p.Root, "stalled.bin")); err == nil {
		t.Errorf("a stalled upload appeared under its final name")
	}
}

func TestMaxSessions(t *testing.T) {
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.MaxSessions = 2 }})
	dialFTP(t, p.Addr)
	dialFTP(t, p.Addr)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(buf), "421 ") {
		t.Fatalf("third session: got %q; want 421", buf)
	}
}

func TestManySessionsDroppedWithoutQuit(t *testing.T) {
	// All 200 come from 127.0.0.1 faster than they are accepted; the
	// per-address cap is not what this test is about.
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.MaxSessionsPerAddr = -1 }})
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			fmt.Fprintf(c, "USER demo\r\n")
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Srv.ActiveSessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.Srv.ActiveSessions(); n != 0 {
		t.Fatalf("%d sessions left after clients vanished", n)
	}
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
}

func TestSiteFiletypeJESIsRefusedAndRemembered(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	// The JES switch hides among ordinary parameters, abbreviated.
	c.expect("SITE LRECL=80 RECFM=FB filet=jes", 550)
	c.prepare(modeEPSV)
	c.expect("STOR JOB1", 550)
	c.expect("NLST", 550)
	c.expect("DELE JOB00042", 550)
	if _, err := os.Stat(filepath.Join(p.Root, "JOB1")); err == nil {
		t.Fatalf("the job was written upstream")
	}
	c.expect("SITE FILETYPE=SQL", 550)
	c.expect("RETR query.sql", 550)
	c.expect("SITE FILETYPE=SEQ", 200)
	c.stor("STOR", "data.txt", []byte("ok"), modeEPSV)
}

func TestLoginLockout(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	lim := &MemoryLimiter{MaxFailures: 3, Lockout: time.Minute, Now: func() time.Time { return now }}
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.Limiter = lim }})
	try := func(pass string) int {
		c := dialFTP(t, p.Addr)
		c.expect("USER demo", 331)
		code, _ := c.send("PASS " + pass)
		return code
	}
	for i := 0; i < 3; i++ {
		if code := try("wrong"); code != 530 {
			t.Fatalf("wrong password %d: %d", i, code)
		}
	}
	if code := try(clientPass); code != 530 {
		t.Fatalf("right password while locked out: %d; want 530", code)
	}
	if !strings.Contains(p.Records.String(), `"rule":"lockout"`) {
		t.Errorf("the lockout is not in the records")
	}
	now = now.Add(61 * time.Second)
	if code := try(clientPass); code != 230 {
		t.Fatalf("after the lockout: %d; want 230", code)
	}
	// The next lockout of the same address lasts twice as long.
	for i := 0; i < 3; i++ {
		try("wrong")
	}
	now = now.Add(61 * time.Second)
	if code := try(clientPass); code != 530 {
		t.Fatalf("second lockout ended after one minute; want two")
	}
}

func TestMaxSessionsPerAddr(t *testing.T) {
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.MaxSessionsPerAddr = 2 }})
	dialFTP(t, p.Addr)
	dialFTP(t, p.Addr)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(buf), "421 ") || !strings.Contains(string(buf), "your address") {
		t.Fatalf("third session from one address: %q", buf)
	}
	// Another address is still welcome.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	if c2, err := d.Dial("tcp", p.Addr); err == nil {
		defer c2.Close()
		c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		line := make([]byte, 4)
		io.ReadFull(c2, line)
		if string(line) != "220 " {
			t.Errorf("a session from 127.0.0.2: %q", line)
		}
	}
}
