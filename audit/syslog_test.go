package audit

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is an in-test syslog collector: it accepts connections and
// parses octet-counted frames (RFC 6587) from each.
type collector struct {
	ln    net.Listener
	conns chan *collConn
}

type collConn struct {
	c    net.Conn
	msgs chan string // closed when the connection ends
}

func startCollector(t *testing.T, cfg *tls.Config) *collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	col := &collector{ln: ln, conns: make(chan *collConn, 16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cc := &collConn{c: c, msgs: make(chan string, 100)}
			col.conns <- cc
			wg.Go(func() { readFrames(t, cc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case cc := <-col.conns:
				cc.c.Close()
				continue
			default:
			}
			break
		}
		wg.Wait()
	})
	return col
}

// readFrames parses "LEN SP MSG" frames until the connection ends.
func readFrames(t *testing.T, cc *collConn) {
	defer close(cc.msgs)
	defer cc.c.Close()
	br := bufio.NewReader(cc.c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) && n != "" {
				t.Errorf("collector: reading a frame length: %v", err)
			}
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size <= 0 || size > 1<<20 {
			t.Errorf("collector: bad frame length %q", n)
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			t.Errorf("collector: frame of %d bytes cut: %v", size, err)
			return
		}
		cc.msgs <- string(msg)
	}
}

func (col *collector) accept(t *testing.T) *collConn {
	t.Helper()
	select {
	case cc := <-col.conns:
		return cc
	case <-time.After(10 * time.Second):
		t.Fatalf("collector: no connection within 10 s")
		return nil
	}
}

func (cc *collConn) recv(t *testing.T) string {
	t.Helper()
	select {
	case m, ok := <-cc.msgs:
		if !ok {
			t.Fatalf("collector: connection ended; want a message")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("collector: no message within 10 s")
		return ""
	}
}

// rfc5424 matches the messages SyslogSink sends.
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S+) (\S+) - - - (\{.*\})$`)

func checkMessage(t *testing.T, msg string, wantPRI, wantHost, wantApp string) map[string]any {
	t.Helper()
	m := rfc5424.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("not an RFC 5424 message as sent by SyslogSink: %q", msg)
	}
	if m[1] != wantPRI || m[3] != wantHost || m[4] != wantApp {
		t.Errorf("got PRI %s HOST %s APP %s; want %s %s %s", m[1], m[3], m[4], wantPRI, wantHost, wantApp)
	}
	if _, err := time.Parse(time.RFC3339Nano, m[2]); err != nil {
		t.Errorf("TIMESTAMP %q: %v", m[2], err)
	}
	return decode(t, m[5])
}

func TestSyslogSinkFraming(t *testing.T) {
	col := startCollector(t, nil)
	key, _ := testKey(t)
	sink, err := NewSyslogSink(t.Context(), SyslogOptions{Addr: col.ln.Addr().String(), Hostname: "gate-1"})
	if err != nil {
		t.Fatalf("NewSyslogSink: %v", err)
	}
	e, err := NewEmitter(Options{Sinks: []Sink{sink}, Key: key, Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cc := col.accept(t)
	hostile := "a\nb\"c\x00d\xff"
	e.Command(Session{ID: "s1", Client: "c", User: hostile}, "PASS", "hunter2", 230, "ok", 0)
	e.Transfer(sess, Transfer{ClientName: hostile, BytesFTP: 7})
	var got []string
	for i := range 2 {
		msg := cc.recv(t)
		// 13 (log audit) * 8 + 6 (informational) = 110.
		rec := checkMessage(t, msg, "110", "gate-1", "ftpgate")
		if rec["seq"].(json.Number).String() != strconv.Itoa(i+1) {
			t.Errorf("message %d: got seq %v; want %d", i, rec["seq"], i+1)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("the password reached syslog")
		}
		got = append(got, msg[strings.Index(msg, "{"):])
	}
	res, err := Verify(key, Input{"syslog", strings.NewReader(strings.Join(got, "\n") + "\n")})
	if err != nil || !res.OK() {
		t.Errorf("the collected records: got %v, %v; want a whole chain", res, err)
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err: %v", err)
	}
}

func TestSyslogSinkReconnect(t *testing.T) {
	col := startCollector(t, nil)
	var now time.Time
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
	}
	now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	sink, err := NewSyslogSink(t.Context(), SyslogOptions{
		Addr: col.ln.Addr().String(), AppName: "gate", Facility: 16, DialTimeout: 2 * time.Second, Now: clock,
	})
	if err != nil {
		t.Fatalf("NewSyslogSink: %v", err)
	}
	e, err := NewEmitter(Options{Sinks: []Sink{sink}, Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	first := col.accept(t)
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	checkMessage(t, first.recv(t), "134", sink.opt.Hostname, "gate")

	// The collector drops the connection: the sink notices and the next
	// record goes over a new connection.
	first.c.Close()
	waitFor(t, func() bool { return !sink.connected() })
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	second := col.accept(t)
	rec := checkMessage(t, second.recv(t), "134", sink.opt.Hostname, "gate")
	if rec["seq"].(json.Number).String() != "2" {
		t.Errorf("after the reconnect: got seq %v; want 2", rec["seq"])
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err after the reconnect: %v", err)
	}

	// The collector goes away: the write fails after its retries, the
	// emitter reports it, and writes fail fast until the backoff ends.
	col.ln.Close()
	second.c.Close()
	waitFor(t, func() bool { return !sink.connected() })
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	if err := e.Ready(); err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("Ready with the collector gone: got %v; want the sink's error", err)
	}
	if err := sink.Write([]byte("{}")); err == nil || !strings.Contains(err.Error(), "down, next attempt in") {
		t.Errorf("Write during the backoff: got %v; want a fast failure", err)
	}
	advance(time.Second)
	if err := sink.Write([]byte("{}")); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Errorf("Write after the backoff: got %v; want a new attempt that fails", err)
	}
	if err := sink.Write([]byte("{}")); err == nil || !strings.Contains(err.Error(), "next attempt in 2s") {
		t.Errorf("second backoff: got %v; want it doubled to 2s", err)
	}
}

func TestSyslogSinkTLS(t *testing.T) {
	serverCfg, pool := selfSignedTLS(t)
	col := startCollector(t, serverCfg)
	sink, err := NewSyslogSink(t.Context(), SyslogOptions{Addr: col.ln.Addr().String(), TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatalf("NewSyslogSink: %v", err)
	}
	defer sink.Close()
	cc := col.accept(t)
	if err := sink.Write([]byte(`{"v":1,"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, cc.recv(t), "110", sink.opt.Hostname, "ftpgate")

	// An untrusted collector is refused.
	if _, err := NewSyslogSink(t.Context(), SyslogOptions{Addr: col.ln.Addr().String(), TLS: &tls.Config{}}); err == nil {
		t.Errorf("NewSyslogSink to an untrusted certificate: got nil error; want one")
	}
}

func TestSyslogOptionsErrors(t *testing.T) {
	col := startCollector(t, nil)
	addr := col.ln.Addr().String()
	tests := []struct {
		name string
		opt  SyslogOptions
	}{
		{"no address", SyslogOptions{}},
		{"address without port", SyslogOptions{Addr: "127.0.0.1"}},
		{"space in hostname", SyslogOptions{Addr: addr, Hostname: "gate 1"}},
		{"long app name", SyslogOptions{Addr: addr, AppName: strings.Repeat("a", 49)}},
		{"facility out of range", SyslogOptions{Addr: addr, Facility: 24}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := NewSyslogSink(t.Context(), tc.opt); err == nil {
				s.Close()
				t.Errorf("got nil error; want one")
			}
		})
	}
	// Nothing listens: the first connection fails at start-up.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if s, err := NewSyslogSink(ctx, SyslogOptions{Addr: dead}); err == nil {
		s.Close()
		t.Errorf("NewSyslogSink with nothing listening: got nil error; want one")
	}
}

// selfSignedTLS returns a server config with a certificate for 127.0.0.1
// and a pool that trusts it.
func selfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "collector"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}}, pool
}
