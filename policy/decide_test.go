package policy

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

const loginPolicy = `version: 1
known_hosts: /etc/ftpgate/known_hosts
user_at_host:
  enabled: true
  allow_hosts:
    - "*.example.com"
    - "sftp.partner.test"
    - "10.0.0.0/8"
    - "127.0.0.1"
    - "[::1]"
    - "2001:db8::/32"
routes:
  - name: payroll
    user: PAYJOB
    password_bcrypt: "HASH"
    upstream: sftp://payuser@sftp.partner.test:2222/inbound/pay
    upstream_password: {env: PAY_PW}
  - user: alice
    upstream: sftp://files.partner.test/home
  - user: Bob
    upstream: sftp://robert@files.partner.test
  - user: kim
    upstream: sftp://files.partner.test
`

var loginTests = []struct {
	name   string
	user   string
	allow  bool
	rule   string
	auth   AuthMode
	reason string // a piece of the reason
	up     Upstream
}{
	{
		name: "route matches its user", user: "PAYJOB", allow: true, rule: "payroll", auth: AuthLocal,
		reason: `route "payroll" matches user "PAYJOB"`,
		up: Upstream{Scheme: "sftp", Host: "sftp.partner.test", Port: 2222, User: "payuser", Dir: "/inbound/pay",
			Password: Secret{Env: "PAY_PW"}, KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "route matches without regard to case", user: "PayJob", allow: true, rule: "payroll", auth: AuthLocal,
		up: Upstream{Scheme: "sftp", Host: "sftp.partner.test", Port: 2222, User: "payuser", Dir: "/inbound/pay",
			Password: Secret{Env: "PAY_PW"}, KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "passthrough route fills in the login name as sent", user: "ALICE", allow: true, rule: "alice", auth: AuthPassthrough,
		up: Upstream{Scheme: "sftp", Host: "files.partner.test", Port: 22, User: "ALICE", Dir: "/home",
			KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "passthrough route keeps the URL's user", user: "bob", allow: true, rule: "Bob", auth: AuthPassthrough,
		up: Upstream{Scheme: "sftp", Host: "files.partner.test", Port: 22, User: "robert",
			KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "route does not match Unicode case folding", user: "\u212Aim", rule: RuleDefaultDeny,
		reason: "no route for user",
	},
	{
		name: "unknown user is denied by default", user: "mallory", rule: RuleDefaultDeny, reason: "no route for user",
	},
	{
		name: "empty user is denied by default", user: "", rule: RuleDefaultDeny, reason: "no route for user",
	},
	{
		name: "user@host allowed by a glob", user: "bob@Host.Example.COM", allow: true, rule: RuleUserAtHost, auth: AuthPassthrough,
		reason: `"*.example.com"`,
		up:     Upstream{Scheme: "sftp", Host: "host.example.com", Port: 22, User: "bob", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host glob matches deeper names", user: "bob@a.b.example.com:2022", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "a.b.example.com", Port: 2022, User: "bob", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host glob does not match the bare domain", user: "bob@example.com", rule: RuleUserAtHost,
		reason: `host "example.com" is not in user_at_host.allow_hosts`,
	},
	{
		name: "user@host glob does not match a look-alike suffix", user: "bob@evil-example.com", rule: RuleUserAtHost,
		reason: `host "evil-example.com" is not in`,
	},
	{
		name: "user@host allowed by a literal name", user: "bob@sftp.partner.test", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "sftp.partner.test", Port: 22, User: "bob", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host splits at the last @", user: "bob@corp@sftp.partner.test", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "sftp.partner.test", Port: 22, User: "bob@corp", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host allowed by CIDR", user: "ops@10.20.30.40:2222", allow: true, rule: RuleUserAtHost,
		reason: `"10.0.0.0/8"`,
		up:     Upstream{Scheme: "sftp", Host: "10.20.30.40", Port: 2222, User: "ops", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host denied outside the CIDR", user: "ops@11.0.0.1", rule: RuleUserAtHost,
		reason: `host "11.0.0.1" is not in user_at_host.allow_hosts`,
	},
	{
		name: "user@host IPv4-mapped IPv6 is matched as IPv4", user: "ops@[::ffff:10.1.2.3]", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "10.1.2.3", Port: 22, User: "ops", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host allowed by a literal IP", user: "ops@127.0.0.1", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "127.0.0.1", Port: 22, User: "ops", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host IPv6 literal with brackets and port", user: "ops@[::1]:2222", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "::1", Port: 2222, User: "ops", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host IPv6 literal with brackets", user: "ops@[2001:DB8::7]", allow: true, rule: RuleUserAtHost,
		up: Upstream{Scheme: "sftp", Host: "2001:db8::7", Port: 22, User: "ops", KnownHosts: "/etc/ftpgate/known_hosts"},
	},
	{
		name: "user@host IPv6 without brackets", user: "ops@::1", rule: RuleUserAtHost, reason: "brackets",
	},
	{
		name: "user@host IPv4 in brackets", user: "ops@[127.0.0.1]", rule: RuleUserAtHost, reason: "must hold an IPv6 address",
	},
	{
		name: "user@host IPv6 zone", user: "ops@[fe80::1%eth0]", rule: RuleUserAtHost, reason: "must hold an IPv6 address",
	},
	{
		name: "user@host IPv6 denied outside the list", user: "ops@[::2]", rule: RuleUserAtHost,
		reason: `host "::2" is not in user_at_host.allow_hosts`,
	},
	{
		name: "user@host port 0", user: "ops@127.0.0.1:0", rule: RuleUserAtHost, reason: `port "0" is not a number in 1-65535`,
	},
	{
		name: "user@host port too large", user: "ops@127.0.0.1:65536", rule: RuleUserAtHost, reason: `port "65536"`,
	},
	{
		name: "user@host port with a sign", user: "ops@127.0.0.1:+22", rule: RuleUserAtHost, reason: `port "+22"`,
	},
	{
		name: "user@host empty port", user: "ops@[::1]:", rule: RuleUserAtHost, reason: `port ""`,
	},
	{
		name: "user@host text after brackets", user: "ops@[::1]x", rule: RuleUserAtHost, reason: "unexpected text after ']'",
	},
	{
		name: "user@host missing bracket", user: "ops@[::1", rule: RuleUserAtHost, reason: "missing ']'",
	},
	{
		name: "user@host empty name", user: "@host.example.com", rule: RuleUserAtHost, reason: "no user name before '@'",
	},
	{
		name: "user@host empty host", user: "bob@", rule: RuleUserAtHost, reason: "no host after '@'",
	},
	{
		name: "user@host empty host with port", user: "bob@:22", rule: RuleUserAtHost, reason: "no host after '@'",
	},
	{
		name: "user@host numeric name is not an address", user: "bob@127.1", rule: RuleUserAtHost, reason: "not a valid host name",
	},
	{
		name: "user@host hex name is not an address", user: "bob@0x7f.example.0x1", rule: RuleUserAtHost, reason: "not a valid host name",
	},
	{
		name: "user@host name with a slash", user: "bob@a.example.com/x", rule: RuleUserAtHost, reason: "not a valid host name",
	},
	{
		name: "user@host name with a trailing dot", user: "bob@a.example.com.", rule: RuleUserAtHost, reason: "not a valid host name",
	},
	{
		name: "user@host control characters in the name", user: "bo\x00b@a.example.com", rule: RuleUserAtHost, reason: "control characters",
	},
}

func TestLogin(t *testing.T) {
	p := mustLoad(t, loginPolicy)
	for _, tc := range loginTests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Login(LoginRequest{Client: netip.MustParseAddr("192.0.2.1"), User: tc.user})
			if d.Allow != tc.allow || d.Rule != tc.rule {
				t.Fatalf("Login(%q) = allow %v, rule %q (%s); want allow %v, rule %q", tc.user, d.Allow, d.Rule, d.Reason, tc.allow, tc.rule)
			}
			if d.Reason == "" || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Login(%q) reason %q; want one containing %q", tc.user, d.Reason, tc.reason)
			}
			if !tc.allow {
				if d.Route != nil || !reflect.DeepEqual(d.Upstream, Upstream{}) {
					t.Errorf("Login(%q) denied but has route %v, upstream %+v; want neither", tc.user, d.Route, d.Upstream)
				}
				if err := d.Err(); !errors.Is(err, ErrDenied) {
					t.Errorf("Login(%q).Err() = %v; want ErrDenied", tc.user, err)
				}
				return
			}
			if d.Auth != tc.auth {
				t.Errorf("Login(%q) auth %v; want %v", tc.user, d.Auth, tc.auth)
			}
			if !reflect.DeepEqual(d.Upstream, tc.up) {
				t.Errorf("Login(%q) upstream:\ngot  %+v\nwant %+v", tc.user, d.Upstream, tc.up)
			}
			if tc.rule == RuleUserAtHost {
				if d.Route != nil {
					t.Errorf("Login(%q) route %+v; want nil for user@host", tc.user, d.Route)
				}
			} else if d.Route == nil || d.Route.Name != tc.rule {
				t.Errorf("Login(%q) route %+v; want route %q", tc.user, d.Route, tc.rule)
			}
			if err := d.Err(); err != nil {
				t.Errorf("Login(%q).Err() = %v; want nil", tc.user, err)
			}
		})
	}
}

func TestLoginUserAtHostNotEnabled(t *testing.T) {
	for _, text := range []string{
		"version: 1\n",
		"version: 1\nuser_at_host:\n  enabled: false\n  allow_hosts: ['*']\n  known_hosts: /k\n",
	} {
		p := mustLoad(t, text)
		d := p.Login(LoginRequest{User: "bob@host.example.com"})
		if d.Allow || d.Rule != RuleUserAtHost || d.Reason != "user@host routing is not enabled" {
			t.Errorf("Login(bob@host.example.com) = %+v; want denied by user@host, not enabled", d)
		}
	}
}

func TestLoginNilPolicy(t *testing.T) {
	var p *Policy
	for _, user := range []string{"alice", "bob@h"} {
		if d := p.Login(LoginRequest{User: user}); d.Allow || d.Rule == "" || d.Reason == "" {
			t.Errorf("(*Policy)(nil).Login(%q) = %+v; want a denial with rule and reason", user, d)
		}
	}
	if p.Routes() != nil || p.UserAtHostEnabled() || p.CheckFiles() != nil {
		t.Errorf("nil *Policy: want no routes, user@host off, no file errors")
	}
}

func TestVerifyPassword(t *testing.T) {
	hash := testHash(t, "right horse")
	p := mustLoad(t, strings.Replace(loginPolicy, `"HASH"`, `"`+hash+`"`, 1))
	local := p.Login(LoginRequest{User: "payjob"})
	pass := p.Login(LoginRequest{User: "alice"})
	uah := p.Login(LoginRequest{User: "bob@host.example.com"})
	denied := p.Login(LoginRequest{User: "mallory"})
	long := strings.Repeat("x", 72)
	longHash := testHash(t, long)
	longRoute := Decision{Allow: true, Auth: AuthLocal, Route: &Route{PasswordBcrypt: longHash}}

	tests := []struct {
		name     string
		d        Decision
		password string
		want     bool
	}{
		{"local with the right password", local, "right horse", true},
		{"local with a wrong password", local, "wrong horse", false},
		{"local with an empty password", local, "", false},
		{"local with the right password and a suffix", local, "right horse ", false},
		{"local at bcrypt's 72-byte limit", longRoute, long, true},
		{"local beyond bcrypt's 72-byte limit", longRoute, long + "y", false},
		{"local decision without a route", Decision{Allow: true, Auth: AuthLocal}, "right horse", false},
		{"passthrough route leaves it to the partner", pass, "anything", true},
		{"user@host leaves it to the partner", uah, "anything", true},
		{"denied decision", denied, "right horse", false},
		{"zero decision", Decision{}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.VerifyPassword(tc.password); got != tc.want {
				t.Errorf("VerifyPassword(%q) = %v; want %v", tc.password, got, tc.want)
			}
		})
	}
}

func TestTimingHashIsBcrypt(t *testing.T) {
	cost, err := bcrypt.Cost([]byte(timingHash))
	if err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("bcrypt.Cost(timingHash) = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
}

// FuzzLogin checks that Login never panics, that a denial always carries a
// rule and a reason, and that an allowing decision names a dialable
// upstream.
func FuzzLogin(f *testing.F) {
	for _, tc := range loginTests {
		f.Add(tc.user)
	}
	p := mustLoad(f, loginPolicy)
	f.Fuzz(func(t *testing.T, user string) {
		d := p.Login(LoginRequest{User: user})
		if d.Rule == "" || d.Reason == "" {
			t.Fatalf("Login(%q) = %+v; want a rule and a reason", user, d)
		}
		if !d.Allow {
			if d.Route != nil {
				t.Fatalf("Login(%q) denied with a route: %+v", user, d)
			}
			return
		}
		up := d.Upstream
		if up.Scheme != "sftp" || up.Host == "" || up.Port < 1 || up.Port > 65535 || up.User == "" {
			t.Fatalf("Login(%q) allowed with upstream %+v; want scheme, host, port and user", user, up)
		}
		if up.KnownHosts == "" && len(up.HostKeySHA256) == 0 {
			t.Fatalf("Login(%q) allowed with no host-key source", user)
		}
		if d.Rule == RuleUserAtHost && !strings.Contains(user, "@") {
			t.Fatalf("Login(%q) routed as user@host without '@'", user)
		}
		if utf8.ValidString(user) && !strings.Contains(user, "@") && !strings.EqualFold(d.Route.User, user) {
			t.Fatalf("Login(%q) matched route user %q", user, d.Route.User)
		}
	})
}
