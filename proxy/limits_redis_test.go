package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// testRedis is a real redis-server on 127.0.0.1 and a random port, with
// persistence off, started by startRedis.
type testRedis struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startRedis starts redis-server for t, or skips t when it is not
// installed. The cleanup stops it and, when t failed, prints its log.
func startRedis(t testing.TB) *testRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found (install redis-server; .ci/run does)")
	}
	// go-redis logs every failed dial to stderr; the tests that stop the
	// server check the errors they get instead.
	redis.SetLogger(&logging.VoidLogger{})
	dir := t.TempDir()
	r := &testRedis{log: filepath.Join(dir, "redis.log")}
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", r.log)
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		r.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
		if r.waitReady(5 * time.Second) {
			break
		}
		r.Stop()
		if attempt == 3 {
			b, _ := os.ReadFile(r.log)
			t.Fatalf("redis-server did not start on %s:\n%s", r.Addr, b)
		}
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("redis-server log:\n%s", b)
		}
	})
	return r
}

// waitReady reports whether the server answered PING within d.
func (r *testRedis) waitReady(d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case <-r.done:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", r.Addr, 100*time.Millisecond)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			c.Close()
			if bytes.HasPrefix(buf[:n], []byte("+PONG")) {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Stop kills the server and waits for it to exit.
func (r *testRedis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
}

// client returns a client for r, closed by t's cleanup, with the options
// ftpgate uses (short timeouts, no retries beyond one).
func (r *testRedis) client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr, Protocol: 2, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: 1, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// limitStep is one step of a limiter scenario: at the clock offset at,
// a login from addr as user fails, succeeds, or is checked.
type limitStep struct {
	at   time.Duration
	op   string // "fail", "success" or "check"
	addr string
	user string
	// For "check": whether the login may be tried, and if not, until
	// when (as an offset from the start).
	wantOK    bool
	wantUntil time.Duration
}

// limitCase is a scenario run against every LoginLimiter.
type limitCase struct {
	name                string
	maxFailures         int
	window              time.Duration
	lockout, maxLockout time.Duration
	steps               []limitStep
}

// fails returns n failures at offset at.
func fails(n int, at time.Duration, addr, user string) []limitStep {
	s := make([]limitStep, n)
	for i := range s {
		s[i] = limitStep{at: at, op: "fail", addr: addr, user: user}
	}
	return s
}

func steps(groups ...[]limitStep) []limitStep {
	var out []limitStep
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func check(at time.Duration, addr, user string, ok bool, until time.Duration) []limitStep {
	return []limitStep{{at: at, op: "check", addr: addr, user: user, wantOK: ok, wantUntil: until}}
}

func success(at time.Duration, addr, user string) []limitStep {
	return []limitStep{{at: at, op: "success", addr: addr, user: user}}
}

const (
	a1 = "192.0.2.1"
	a2 = "192.0.2.2"
)

// limitCases are the semantics MemoryLimiter defines; RedisLimiter must
// follow every one of them.
var limitCases = []limitCase{
	{
		name: "below the limit", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(2, 0, a1, "job1"), check(time.Second, a1, "job1", true, 0)),
	},
	{
		name: "limit reached locks the address and the user", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(3, 0, a1, "job1"),
			check(time.Second, a1, "job1", false, time.Minute),
			check(time.Second, a2, "job1", false, time.Minute),
			check(time.Second, a1, "job2", false, time.Minute),
			check(time.Second, a2, "job2", true, 0)),
	},
	{
		name: "user names are case-folded", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(1, 0, "192.0.2.10", "Job1"), fails(1, 0, "192.0.2.11", "JOB1"), fails(1, 0, "192.0.2.12", "job1"),
			check(time.Second, a2, "jOb1", false, time.Minute)),
	},
	{
		name: "an IPv6 address is its own key", maxFailures: 2, lockout: time.Minute,
		steps: steps(fails(1, 0, "2001:db8::1", "u1"), fails(1, 0, "2001:db8::1", "u2"),
			check(0, "2001:db8::1", "u3", false, time.Minute),
			check(0, "2001:db8::2", "u3", true, 0)),
	},
	{
		name: "the lockout ends", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(3, 0, a1, "job1"),
			check(time.Minute-time.Millisecond, a1, "job1", false, time.Minute),
			check(time.Minute, a1, "job1", true, 0)),
	},
	{
		name: "failures older than the window do not count", maxFailures: 3, window: 10 * time.Minute, lockout: time.Minute,
		steps: steps(fails(1, 0, a1, "job1"), fails(1, 5*time.Minute, a1, "job1"), fails(1, 10*time.Minute, a1, "job1"),
			check(10*time.Minute, a1, "job1", true, 0),
			fails(1, 11*time.Minute, a1, "job1"),
			check(11*time.Minute, a1, "job1", false, 12*time.Minute)),
	},
	{
		name: "lockouts double up to the maximum", maxFailures: 3, lockout: time.Minute, maxLockout: 3 * time.Minute,
		steps: steps(fails(3, 0, a1, "job1"), check(0, a1, "job1", false, time.Minute),
			fails(3, 2*time.Minute, a1, "job1"), check(2*time.Minute, a1, "job1", false, 4*time.Minute),
			fails(3, 5*time.Minute, a1, "job1"), check(5*time.Minute, a1, "job1", false, 8*time.Minute),
			check(8*time.Minute, a1, "job1", true, 0)),
	},
	{
		name: "failures during a lockout lead to a longer one", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(3, 0, a1, "job1"), fails(3, 10*time.Second, a1, "job1"),
			check(10*time.Second, a1, "job1", false, 10*time.Second+2*time.Minute)),
	},
	{
		name: "success clears the user's failures, not the address's", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(2, 0, a1, "job1"), success(time.Second, a1, "job1"), fails(1, 2*time.Second, a1, "job1"),
			check(3*time.Second, a2, "job1", true, 0),
			check(3*time.Second, a1, "job2", false, time.Minute+2*time.Second)),
	},
	{
		name: "success clears the user's lockout and strikes", maxFailures: 3, lockout: time.Minute,
		steps: steps(fails(3, 0, a1, "job1"), success(time.Second, a2, "job1"),
			check(time.Second, a2, "job1", true, 0),
			check(time.Second, a1, "job1", false, time.Minute),
			fails(3, 2*time.Second, a2, "job1"),
			// The user starts again at the first lockout; a2's is its first too.
			check(2*time.Second, "192.0.2.99", "job1", false, time.Minute+2*time.Second)),
	},
	{
		name: "zero values mean 5 failures and 1 minute",
		steps: steps(fails(4, 0, a1, "job1"), check(0, a1, "job1", true, 0),
			fails(1, time.Second, a1, "job1"), check(time.Second, a1, "job1", false, time.Minute+time.Second)),
	},
}

// runLimitCase runs c against the limiter that mk returns for the clock
// now, a pointer the steps move.
func runLimitCase(t *testing.T, c limitCase, mk func(c limitCase, now func() time.Time) LoginLimiter) {
	base := time.UnixMilli(1_900_000_000_000)
	at := time.Duration(0)
	lim := mk(c, func() time.Time { return base.Add(at) })
	for i, s := range c.steps {
		at = s.at
		addr := netip.MustParseAddr(s.addr)
		switch s.op {
		case "fail":
			lim.Failure(addr, s.user)
		case "success":
			lim.Success(addr, s.user)
		case "check":
			ok, until, err := lim.Check(addr, s.user)
			if err != nil {
				t.Fatalf("step %d: Check(%s, %s): %v", i, s.addr, s.user, err)
			}
			var want time.Time
			if !s.wantOK {
				want = base.Add(s.wantUntil)
			}
			if ok != s.wantOK || !until.Equal(want) {
				t.Fatalf("step %d at %v: Check(%s, %s) = %v, until +%v; want %v, until +%v",
					i, s.at, s.addr, s.user, ok, sinceOrZero(until, base), s.wantOK, s.wantUntil)
			}
		}
	}
}

func sinceOrZero(t, base time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return t.Sub(base)
}

func TestMemoryLimiterCases(t *testing.T) {
	for _, c := range limitCases {
		t.Run(c.name, func(t *testing.T) {
			runLimitCase(t, c, func(c limitCase, now func() time.Time) LoginLimiter {
				return &MemoryLimiter{MaxFailures: c.maxFailures, Window: c.window, Lockout: c.lockout, MaxLockout: c.maxLockout, Now: now}
			})
		})
	}
}

func TestRedisLimiterCases(t *testing.T) {
	r := startRedis(t)
	client := r.client(t)
	for i, c := range limitCases {
		t.Run(c.name, func(t *testing.T) {
			runLimitCase(t, c, func(c limitCase, now func() time.Time) LoginLimiter {
				return &RedisLimiter{Client: client, Prefix: fmt.Sprintf("case%d:", i),
					MaxFailures: c.maxFailures, Window: c.window, Lockout: c.lockout, MaxLockout: c.maxLockout, Now: now}
			})
		})
	}
}

// TestRedisLimiterSharedAndAtomic runs two limiters (two replicas) on
// Redis's own clock: failures counted by both add up, every failure is
// counted exactly once under concurrency, and the keys expire.
func TestRedisLimiterSharedAndAtomic(t *testing.T) {
	r := startRedis(t)
	client := r.client(t)
	mk := func() *RedisLimiter {
		return &RedisLimiter{Client: r.client(t), MaxFailures: 10, Lockout: time.Minute, MaxLockout: time.Hour}
	}
	replicaA, replicaB := mk(), mk()
	addr := netip.MustParseAddr("198.51.100.7")
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		lim := replicaA
		if i%2 == 1 {
			lim = replicaB
		}
		wg.Go(func() { lim.Failure(addr, "Batch") })
	}
	wg.Wait()
	ok, until, err := replicaB.Check(addr, "batch")
	if err != nil || ok {
		t.Fatalf("Check after 20 failures = %v, %v; want locked out", ok, err)
	}
	// 20 failures with a limit of 10: exactly two lockouts, the second
	// twice as long.
	ctx := t.Context()
	for _, k := range []string{"ftpgate:lock:addr:198.51.100.7", "ftpgate:lock:user:batch"} {
		strikes, err := client.HGet(ctx, k, "strikes").Int()
		if err != nil || strikes != 2 {
			t.Errorf("%s strikes = %d, %v; want 2", k, strikes, err)
		}
		ttl, err := client.PTTL(ctx, k).Result()
		if err != nil || ttl <= time.Hour || ttl > time.Hour+2*time.Minute+time.Second {
			t.Errorf("%s TTL = %v, %v; want about 2 m lockout + 1 h", k, ttl, err)
		}
	}
	if d := until.Sub(start); d < 2*time.Minute-time.Second || d > 2*time.Minute+5*time.Second {
		t.Errorf("locked out for %v; want 2 minutes (the second lockout)", d)
	}
	replicaA.Success(netip.MustParseAddr("198.51.100.8"), "BATCH")
	if ok, _, err := replicaB.Check(netip.MustParseAddr("198.51.100.8"), "batch"); err != nil || !ok {
		t.Errorf("after a success from another address: ok=%v err=%v; want the user cleared", ok, err)
	}
	if ok, _, _ := replicaB.Check(addr, "other"); ok {
		t.Errorf("the address's lockout was cleared by the user's success")
	}
}

// TestRedisLimiterDown checks that the limiter fails closed: with Redis
// stopped, Check returns an error quickly, and Failure and Success log.
func TestRedisLimiterDown(t *testing.T) {
	r := startRedis(t)
	var logs syncBuffer
	lim := &RedisLimiter{Client: r.client(t), Timeout: 300 * time.Millisecond, Logger: newTestLogger(&logs)}
	addr := netip.MustParseAddr("192.0.2.5")
	if ok, _, err := lim.Check(addr, "u"); err != nil || !ok {
		t.Fatalf("Check with Redis up = %v, %v", ok, err)
	}
	r.Stop()
	start := time.Now()
	ok, _, err := lim.Check(addr, "u")
	if err == nil || ok {
		t.Fatalf("Check with Redis down = %v, %v; want an error", ok, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Check took %v with Redis down; want about the 300 ms timeout at most", d)
	}
	if !strings.Contains(err.Error(), "redis limiter") {
		t.Errorf("error %q does not name the limiter", err)
	}
	lim.Failure(addr, "u")
	lim.Success(addr, "u")
	if s := logs.String(); !strings.Contains(s, "could not count a failed login") || !strings.Contains(s, "could not clear") {
		t.Errorf("Failure and Success errors not logged:\n%s", s)
	}
	unset := &RedisLimiter{}
	if _, _, err := unset.Check(addr, "u"); err == nil {
		t.Errorf("Check without a client: no error")
	}
}

// TestRedisLimiterDownRefusesLogin runs the proxy with a RedisLimiter
// whose server is gone: the login gets 421 and the record says why.
func TestRedisLimiterDownRefusesLogin(t *testing.T) {
	r := startRedis(t)
	lim := &RedisLimiter{Client: r.client(t), Timeout: 300 * time.Millisecond}
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.Limiter = lim }})
	r.Stop()
	c := dialFTP(t, p.Addr)
	c.expect("USER demo", 331)
	if code, _ := c.send("PASS " + clientPass); code != 421 {
		t.Fatalf("PASS with Redis down: %d; want 421", code)
	}
	if rec := p.Records.String(); !strings.Contains(rec, "login limiter unavailable: proxy: redis limiter") {
		t.Errorf("no record names the unavailable limiter:\n%s", rec)
	}
}

func TestRedisSessionCounter(t *testing.T) {
	r := startRedis(t)
	ctx := t.Context()
	a := &RedisSessionCounter{Client: r.client(t), Replica: "a"}
	b := &RedisSessionCounter{Client: r.client(t), Replica: "b"}
	addr := netip.MustParseAddr("192.0.2.20")
	acquire := func(c *RedisSessionCounter, limit int, want bool) func() {
		t.Helper()
		ok, release, err := c.Acquire(addr, limit)
		if err != nil || ok != want {
			t.Fatalf("replica %s Acquire(limit %d) = %v, %v; want %v", c.Replica, limit, ok, err, want)
		}
		return release
	}
	relA := acquire(a, 2, true)
	relB := acquire(b, 2, true)
	acquire(a, 2, false) // two open, one on each replica
	acquire(b, 2, false)
	acquire(b, 0, true)() // no limit
	if ok, _, _ := a.Acquire(netip.MustParseAddr("192.0.2.21"), 2); !ok {
		t.Fatalf("another address is refused")
	}
	relB()
	relB() // a second call does nothing
	relB2 := acquire(a, 2, true)
	acquire(b, 2, false)
	relA()
	relB2()

	// A renewal rewrites the replica's counts from its own: a count that
	// Redis lost (here: deleted by hand) comes back.
	relA = acquire(a, 1, true)
	client := r.client(t)
	client.Del(ctx, "ftpgate:sessions:replica:a")
	acquire(b, 1, true)() // lost: b sees no session from a
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	acquire(b, 1, false)
	relA()
	acquire(b, 1, true)()

	// A replica that stops renewing (crashed) stops counting after its
	// lease.
	crashed := &RedisSessionCounter{Client: r.client(t), Replica: "crashed", Lease: 300 * time.Millisecond}
	if ok, _, err := crashed.Acquire(addr, 1); !ok || err != nil {
		t.Fatalf("crashed replica Acquire = %v, %v", ok, err)
	}
	acquire(a, 1, false)
	time.Sleep(400 * time.Millisecond)
	acquire(a, 1, true)()

	// Run renews until stopped, then removes the replica.
	runner := &RedisSessionCounter{Client: r.client(t), Replica: "runner", Lease: 300 * time.Millisecond}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(rctx) }()
	relRun := func() func() {
		ok, rel, err := runner.Acquire(addr, 1)
		if !ok || err != nil {
			t.Fatalf("runner Acquire = %v, %v", ok, err)
		}
		return rel
	}()
	time.Sleep(500 * time.Millisecond) // past the lease: renewed meanwhile
	acquire(a, 1, false)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	acquire(a, 1, true)()
	relRun()

	// Redis down: Acquire fails closed.
	r.Stop()
	if ok, rel, err := a.Acquire(addr, 5); err == nil || ok || rel != nil {
		t.Fatalf("Acquire with Redis down = %v, %v; want an error", ok, err)
	}
}
