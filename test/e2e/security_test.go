package e2e

import (
	"crypto/ed25519"
	crand "crypto/rand"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ftpgate/ftpgate/test/peers"
)

// Passwords the security cases send besides clientPass; each is
// distinctive so a leak anywhere is found by a plain substring search.
const (
	wrongPass       = "Wr0ng-E2E-guess-pw-Zq81"
	passthroughPass = "Passthru-E2E-pw-4Kd7Yv"
)

// TestRefusedLogins checks that ftpgate refuses every login it cannot
// complete safely, with the right reply, and that no password it was given
// reaches the records, the log or the client.
func TestRefusedLogins(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	dir := t.TempDir()

	// known_hosts naming sshd's address with another key: a changed key,
	// which may be an attack.
	otherPub, _, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ssh.NewPublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	wrongKH := writeFile(t, dir, "known_hosts.wrong",
		[]byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, otherKey)+"\n"))
	// An empty known_hosts: the host is unknown.
	emptyKH := writeFile(t, dir, "known_hosts.empty", nil)

	userAtHost := fmt.Sprintf(`version: 1
user_at_host:
  enabled: true
  allow_hosts: ["127.0.0.1"]
  known_hosts: %q
`, s.KnownHostsFile)

	tests := []struct {
		name      string
		policy    string
		user      string
		pass      string
		want      int
		wantInLog string // a substring the log must hold
		wantRule  string // the login_failure record's rule
	}{
		{
			name:      "changed host key refuses the session",
			policy:    localPolicy(t, s, wrongKH),
			user:      clientUser,
			pass:      clientPass,
			want:      421,
			wantInLog: "host key",
			wantRule:  "e2e-route",
		},
		{
			name:      "unknown host key refuses the session",
			policy:    localPolicy(t, s, emptyKH),
			user:      clientUser,
			pass:      clientPass,
			want:      421,
			wantInLog: `"unknown":true`,
			wantRule:  "e2e-route",
		},
		{
			name:      "user@host password login to a keys-only partner is refused",
			policy:    userAtHost,
			user:      s.User + "@127.0.0.1:" + strconv.Itoa(s.Port),
			pass:      passthroughPass,
			want:      530,
			wantInLog: "partner refused the login",
			wantRule:  "user@host",
		},
		{
			name:      "wrong password on a local route",
			policy:    localPolicy(t, s, s.KnownHostsFile),
			user:      clientUser,
			pass:      wrongPass,
			want:      530,
			wantInLog: "password does not match",
			wantRule:  "e2e-route",
		},
	}
	// Cleanups run after the parallel subtests have finished.
	t.Cleanup(func() {
		assertNoSecret(t, map[string]string{"sshd log": s.Log()}, clientPass, wrongPass, passthroughPass)
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, records, logs := startGate(t, tc.policy)
			c := dialCtrl(t, addr)
			c.must("USER "+tc.user, 331)
			code, msg := c.cmd("PASS " + tc.pass)
			if code != tc.want {
				t.Errorf("PASS: reply %d %q; want %d", code, msg, tc.want)
			}
			if code == 421 {
				// 421 closes the control connection.
				c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := c.conn.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("after 421: read %d bytes, err %v; want EOF", n, err)
				}
			} else {
				// A refused login leaves the session usable, still logged out.
				c.must("PWD", 530)
				c.must("QUIT", 221)
			}

			peers.WaitFor(t, recordWait, func() bool {
				return hasRecord(t, records, func(r record) bool {
					return r.Record == "login_failure" && r.Rule == tc.wantRule
				})
			})
			if !strings.Contains(logs.String(), tc.wantInLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantInLog, logs.String())
			}
			if tc.want == 421 && !strings.Contains(logs.String(), s.HostKeyFingerprint) {
				t.Errorf("log lacks the host key the partner presented, %s:\n%s", s.HostKeyFingerprint, logs.String())
			}
			assertNoSecret(t, map[string]string{
				"records":       records.String(),
				"logs":          logs.String(),
				"client output": c.transcript.String(),
			}, clientPass, wrongPass, passthroughPass)
		})
	}
}

// TestUnknownUserTakesAsLongAsWrongPassword checks that PASS for a user
// name no route knows takes as long as a wrong password for a real one, so
// reply times do not reveal which user names exist: policy's
// Decision.VerifyPassword does the same bcrypt work for a denying decision,
// and the proxy must call it for every login. (Before ba48824 cmdPASS
// answered 530 for an unknown user without it: 10 ms against 62 ms.)
func TestUnknownUserTakesAsLongAsWrongPassword(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	// A route hash at bcrypt's default cost (10), the cost of the
	// policy's timing hash, as operators generate them.
	hash, err := bcrypt.GenerateFromPassword([]byte(clientPass), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	pol := localPolicyWithHash(s, s.KnownHostsFile, string(hash))
	addr, _, _ := startGate(t, pol)
	c := dialCtrl(t, addr)

	// The fastest of a few tries, to keep scheduling noise out.
	fastest := func(user string) time.Duration {
		best := time.Hour
		for range 3 {
			c.must("USER "+user, 331)
			start := time.Now()
			c.must("PASS "+wrongPass, 530)
			best = min(best, time.Since(start))
		}
		return best
	}
	known := fastest(clientUser)
	unknown := fastest("no-such-user")
	t.Logf("PASS with a wrong password: known user %v, unknown user %v", known, unknown)
	if unknown < known/2 {
		t.Errorf("PASS for an unknown user took %v, a wrong password for a known user %v; want about the same",
			unknown.Round(time.Millisecond), known.Round(time.Millisecond))
	}
}
