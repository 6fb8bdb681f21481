package zos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/test/peers"
	"github.com/ftpgate/ftpgate/translate"
)

// The logins the decks use. batchPass is a RACF password phrase: it holds
// blanks, and the z/OS client sends it whole after "PASS ".
const (
	batchUser   = "ZOSBATCH"
	batchPass   = "zOS pass phrase 2026 ok"
	netrcUser   = "ZOSNETRC"
	netrcPass   = "NetrcPw-2026x"
	partnerUser = "zosjob"
	partnerPass = "zOS partner phrase with blanks"
)

// buffer collects what concurrent writers write.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// gateShutdownTimeout bounds how long the cleanup waits for Serve to return
// and for every session to end after Close.
const gateShutdownTimeout = 10 * time.Second

// gate is an in-process ftpgate.
type gate struct {
	Addr    string
	Records *buffer // audit records, JSON lines
	Logs    *buffer // diagnostics
}

// errWaitingForMVS reports that policy.Load does not know the route key
// mvs yet: another change adds it.
var errWaitingForMVS = errors.New("waiting for the mvs route key")

// loadPolicy loads policyYAML. When the only errors are on the lines in
// mvsLines (the mvs: keys), it returns errWaitingForMVS.
func loadPolicy(t testing.TB, policyYAML string, mvsLines []int) (*policy.Policy, error) {
	t.Helper()
	pol, err := policy.Load(strings.NewReader(policyYAML), "zos-policy.yaml")
	if err == nil {
		return pol, nil
	}
	var le *policy.LoadError
	if len(mvsLines) > 0 && errors.As(err, &le) && len(le.Errs) > 0 {
		onlyMVS := true
		for _, fe := range le.Errs {
			found := false
			for _, l := range mvsLines {
				found = found || fe.Line == l
			}
			onlyMVS = onlyMVS && found
		}
		if onlyMVS {
			return nil, fmt.Errorf("%w: %v", errWaitingForMVS, err)
		}
	}
	t.Fatalf("policy.Load: %v\n%s", err, policyYAML)
	return nil, err
}

// startGate starts a proxy.Server on listen (127.0.0.1:0 or [::1]:0) wired as "ftpgate serve"
// wires it by default (cmd/ftpgate): the policy, an SFTP dialer behind the
// connection pool, an audit emitter writing JSON lines and a zerolog
// logger at debug level. LoginFailDelay is 10 ms so refused logins do not
// slow the suite. The cleanup closes the server, waits for every session
// to end, closes the pool and checks that no password reached records or
// logs.
func startGate(t testing.TB, pol *policy.Policy, listen string, secrets ...string) *gate {
	t.Helper()
	g := &gate{Records: &buffer{}, Logs: &buffer{}}
	pool := &translate.Pool{Dialer: &translate.SFTPDialer{
		DialTimeout:      10 * time.Second,
		HandshakeTimeout: 20 * time.Second,
		Getenv:           func(string) string { return "" },
	}}
	srv := &proxy.Server{
		Dialer:         pool,
		Policy:         func() *policy.Policy { return pol },
		Audit:          audit.New(g.Records),
		Logger:         zerolog.New(g.Logs).Level(zerolog.DebugLevel).With().Timestamp().Str("component", "ftpgate").Logger(),
		Greeting:       "ftpgate z/OS deck test ready.",
		LoginFailDelay: 10 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, proxy.ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(gateShutdownTimeout):
			t.Errorf("Serve did not return within %v of Close", gateShutdownTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), gateShutdownTimeout)
		defer cancel()
		if err := peers.Poll(ctx, func() bool { return srv.ActiveSessions() == 0 }); err != nil {
			t.Errorf("%d sessions still open %v after Close", srv.ActiveSessions(), gateShutdownTimeout)
		}
		pool.Close()
		for _, s := range secrets {
			for name, text := range map[string]string{"records": g.Records.String(), "logs": g.Logs.String()} {
				if strings.Contains(text, s) {
					t.Errorf("a password (%d bytes) appears in the %s", len(s), name)
				}
			}
		}
		if t.Failed() {
			t.Logf("ftpgate log, last 6 KiB:\n%s", lastBytes(g.Logs.String(), 6<<10))
			t.Logf("ftpgate records, last 6 KiB:\n%s", lastBytes(g.Records.String(), 6<<10))
		}
	})
	g.Addr = ln.Addr().String()
	return g
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// bcryptHash hashes password at bcrypt.MinCost, which keeps logins fast.
func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// record is one audit record, with the fields the deck tests look at.
type record struct {
	Record     string `json:"record"`
	Cmd        string `json:"cmd"`
	Arg        string `json:"arg"`
	Code       int    `json:"code"`
	Direction  string `json:"direction"`
	Name       string `json:"name"`
	Path       string `json:"path"`
	Result     string `json:"result"`
	Confidence string `json:"confidence"`
}

// records decodes the gate's records, failing t on a line that is not JSON.
func (g *gate) records(t testing.TB) []record {
	t.Helper()
	var out []record
	for _, line := range strings.Split(strings.TrimSpace(g.Records.String()), "\n") {
		if line == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, line)
		}
		out = append(out, r)
	}
	return out
}
