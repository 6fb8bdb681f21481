package scaleout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/test/peers"
)

// logBuffer collects a process's output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a program started by startProc, stopped by the test's cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer // stdout and stderr
	done chan struct{}
	err  error // set before done is closed
}

// startProc starts name with args and env (nil: the test's own). The
// cleanup stops it (SIGTERM, then SIGKILL after 10 s) and prints the end
// of its output when t failed.
func startProc(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output, last 8 KiB:\n%s", p.name, lastBytes(p.out.String(), 8<<10))
		}
	})
	return p
}

// stop ends the process with SIGTERM, then SIGKILL, and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// waitListening waits until addr accepts TCP connections, failing t if
// p exits first or 10 s pass.
func waitListening(t *testing.T, p *proc, addr string) {
	t.Helper()
	peers.WaitFor(t, 10*time.Second, func() bool {
		if p.exited() {
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.name, addr, p.err, p.out.String())
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// freePort returns a TCP port free on ip a moment ago.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s (this test needs the whole of 127.0.0.0/8 on loopback, as Linux has): %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeRange returns the first of n consecutive ports that are free on
// every one of ips, below the kernel's ephemeral range so that outgoing
// connections do not take them meanwhile.
func freeRange(t *testing.T, n int, ips ...string) int {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		base := 20000 + rand.IntN(10000-n)
		if rangeFree(base, n, ips) {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found between 20000 and 30000", n)
	return 0
}

func rangeFree(base, n int, ips []string) bool {
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		for _, ip := range ips {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				return false
			}
			open = append(open, l)
		}
	}
	return true
}

// buildFTPGate builds the ftpgate binary from the working tree into dir.
// When cmd/ftpgate/serve.go does not yet call the scale-out hook, the
// build uses an overlay of serve.go with the hook lines added before the
// gateway is built (the lines the scale-out report asks for).
func buildFTPGate(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	serveGo := filepath.Join(root, "cmd", "ftpgate", "serve.go")
	src, err := os.ReadFile(serveGo)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ftpgate")
	args := []string{"build", "-o", bin}
	if !bytes.Contains(src, []byte("cfg.scaleOut(")) {
		const anchor = "\tg := &gateway{"
		const hook = "\tsln, stopScale, err := cfg.scaleOut(srv, ln, log)\n" +
			"\tif err != nil {\n" +
			"\t\tln.Close()\n" +
			"\t\tfmt.Fprintln(stderr, \"ftpgate: scale-out:\", err)\n" +
			"\t\treturn 2\n" +
			"\t}\n" +
			"\tdefer stopScale()\n" +
			"\tln = sln\n"
		if bytes.Count(src, []byte(anchor)) != 1 {
			t.Fatalf("cmd/ftpgate/serve.go has no single %q to put the scale-out hook before; update buildFTPGate", anchor)
		}
		patched := bytes.Replace(src, []byte(anchor), []byte(hook+anchor), 1)
		pf := filepath.Join(dir, "serve.go")
		if err := os.WriteFile(pf, patched, 0o644); err != nil {
			t.Fatal(err)
		}
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": {serveGo: pf}})
		of := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(of, ov, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-overlay", of)
		t.Logf("serve.go does not call cfg.scaleOut yet: building with the hook added by an overlay")
	}
	cmd := exec.Command("go", append(args, "./cmd/ftpgate")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startRedis starts redis-server on 127.0.0.1 and a free port, with
// persistence off and the given password.
func startRedis(t *testing.T, dir, password string) (*proc, string) {
	t.Helper()
	port := freePort(t, "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := startProc(t, nil, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--requirepass", password)
	waitListening(t, p, addr)
	return p, addr
}

// haproxyConfig is HAProxy in TCP mode: the control port balanced round
// robin over the replicas, and each replica's passive range forwarded to
// it on the same port, all with PROXY protocol v2. Without "check" HAProxy
// opens no health-check connections, so every connection a replica sees
// is a client's.
const haproxyConfig = `global
    maxconn 256

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    source 127.0.0.1

frontend ftp
    bind 127.0.0.1:{{ftp}}
    default_backend replicas

backend replicas
    balance roundrobin
    server a {{a}} send-proxy-v2
    server b {{b}} send-proxy-v2

frontend passive_a
    bind 127.0.0.1:{{pasvA}}
    default_backend passive_a

backend passive_a
    # No port: the same port the client connected to.
    server a {{aHost}} send-proxy-v2

frontend passive_b
    bind 127.0.0.1:{{pasvB}}
    default_backend passive_b

backend passive_b
    server b {{bHost}} send-proxy-v2
`

// replica is one ftpgate process.
type replica struct {
	name  string // "A" or "B"
	addr  string // its own FTP address
	audit string // its audit file
	p     *proc
}

// records returns the replica's audit records.
func (r *replica) records(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(r.audit)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("replica %s: bad record %q: %v", r.name, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// find returns the records of type typ for which match is true.
func find(recs []map[string]any, typ string, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, m := range recs {
		if m["record"] == typ && (match == nil || match(m)) {
			out = append(out, m)
		}
	}
	return out
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func dump(recs []map[string]any) string {
	var b strings.Builder
	for _, m := range recs {
		j, _ := json.Marshal(m)
		fmt.Fprintf(&b, "%s\n", j)
	}
	return b.String()
}
