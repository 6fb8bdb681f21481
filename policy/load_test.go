package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Fingerprints in the form ssh-keygen -l prints; their keys do not matter.
const (
	testPin1 = "SHA256:uOAGZrL67rNLBXGFd18qsI0vjPhZ1XfeJDrTaV7cAME"
	testPin2 = "SHA256:C7zlqZ0jDZpKj9I/VsZNm2+pH5YxzySAJRTA5ldWOpM"
)

// testHash returns a cheap bcrypt hash of password.
func testHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword: %v", err)
	}
	return string(h)
}

// fixture replaces HASH, PIN1 and PIN2 in a YAML text. The replacements
// keep line numbers as they are.
func fixture(t testing.TB, text string) string {
	t.Helper()
	return strings.NewReplacer(
		"HASH", testHash(t, "s3cret"),
		"PIN1", testPin1,
		"PIN2", testPin2,
	).Replace(text)
}

func mustLoad(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Load(strings.NewReader(fixture(t, text)), "test.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

const fullPolicy = `# every key the format has
version: 1
known_hosts: /etc/ftpgate/known_hosts
user_at_host:
  enabled: true
  scheme: sftp
  allow_hosts: ["*.example.com", "10.0.0.0/8", "127.0.0.1", "[::1]", "sftp.partner.test"]
  port: 2022
  known_hosts: /etc/ftpgate/uah_known_hosts
  host_key_sha256: ["PIN2"]
  use_fstat: true
  concurrent_reads: false
routes:
  - name: payroll
    user: PAYJOB
    auth: local
    password_bcrypt: "HASH"
    upstream: sftp://payuser@sftp.partner.test:2222/inbound/pay%20roll
    upstream_password: {env: PAY_PW}
    upstream_key: /etc/ftpgate/keys/pay_ed25519
    upstream_key_passphrase: {file: /run/secrets/pay_key_pw}
    known_hosts: /etc/ftpgate/known_hosts.pay
    host_key_sha256: ["PIN1", "PIN2"]
    use_fstat: true
    concurrent_reads: false
  - user: alice
    upstream: sftp://Files.Example.com
  - user: batch
    password_bcrypt: "HASH"
    upstream: sftp://b@[2001:db8::5]/out
    upstream_password:
      file: /run/secrets/b
    host_key_sha256: [PIN1]
    concurrent_reads: true
`

func TestLoadFullPolicy(t *testing.T) {
	text := fixture(t, fullPolicy)
	p, err := Load(strings.NewReader(text), "full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The hash is the same in both local routes: fixture makes one.
	hash := text[strings.Index(text, "$2a$"):]
	hash = hash[:strings.IndexByte(hash, '"')]

	want := []Route{
		{
			Name:           "payroll",
			User:           "PAYJOB",
			Auth:           AuthLocal,
			PasswordBcrypt: hash,
			Line:           14,
			Upstream: Upstream{
				Scheme:            "sftp",
				Host:              "sftp.partner.test",
				Port:              2222,
				User:              "payuser",
				Dir:               "/inbound/pay roll",
				Password:          Secret{Env: "PAY_PW"},
				KeyFile:           "/etc/ftpgate/keys/pay_ed25519",
				KeyPassphrase:     Secret{File: "/run/secrets/pay_key_pw"},
				KnownHosts:        "/etc/ftpgate/known_hosts.pay",
				HostKeySHA256:     []string{testPin1, testPin2},
				UseFstat:          true,
				NoConcurrentReads: true,
			},
		},
		{
			Name: "alice",
			User: "alice",
			Auth: AuthPassthrough,
			Line: 26,
			Upstream: Upstream{
				Scheme:     "sftp",
				Host:       "Files.Example.com",
				Port:       22,
				KnownHosts: "/etc/ftpgate/known_hosts", // the top-level default
			},
		},
		{
			Name:           "batch",
			User:           "batch",
			Auth:           AuthLocal,
			PasswordBcrypt: hash,
			Line:           28,
			Upstream: Upstream{
				Scheme:        "sftp",
				Host:          "2001:db8::5",
				Port:          22,
				User:          "b",
				Dir:           "/out",
				Password:      Secret{File: "/run/secrets/b"},
				HostKeySHA256: []string{testPin1}, // pins only: no default
			},
		},
	}
	got := p.Routes()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Routes():\ngot  %+v\nwant %+v", got, want)
	}

	if !p.UserAtHostEnabled() {
		t.Fatalf("UserAtHostEnabled() = false; want true")
	}
	d := p.Login(LoginRequest{User: "bob@host.example.com"})
	wantUp := Upstream{
		Scheme:            "sftp",
		Host:              "host.example.com",
		Port:              2022,
		User:              "bob",
		KnownHosts:        "/etc/ftpgate/uah_known_hosts",
		HostKeySHA256:     []string{testPin2},
		UseFstat:          true,
		NoConcurrentReads: true,
	}
	if !d.Allow || !reflect.DeepEqual(d.Upstream, wantUp) {
		t.Errorf("Login(bob@host.example.com) = %+v; want allowed with upstream %+v", d, wantUp)
	}
}

func TestRoutesReturnsACopy(t *testing.T) {
	p := mustLoad(t, fullPolicy)
	rs := p.Routes()
	rs[0].User = "changed"
	rs[0].Upstream.HostKeySHA256[0] = "changed"
	again := p.Routes()
	if again[0].User != "PAYJOB" || again[0].Upstream.HostKeySHA256[0] != testPin1 {
		t.Errorf("Routes() after changing its result: got %q, %q; want PAYJOB, %s", again[0].User, again[0].Upstream.HostKeySHA256[0], testPin1)
	}
	d := p.Login(LoginRequest{User: "payjob"})
	d.Route.Upstream.HostKeySHA256[0] = "changed"
	d.Upstream.HostKeySHA256[1] = "changed"
	if got := p.Routes()[0].Upstream.HostKeySHA256; got[0] != testPin1 || got[1] != testPin2 {
		t.Errorf("Routes() after changing a decision: got %q; want the pins unchanged", got)
	}
}

func TestLoadEmpty(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{"empty file", ""},
		{"only whitespace", "\n\n  \n"},
		{"only comments", "# nothing yet\n# really\n"},
		{"document marker only", "---\n"},
		{"null document", "~\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(strings.NewReader(tc.text), "empty.yaml")
			if err != nil {
				t.Fatalf("Load(%q) error: %v; want an empty policy", tc.text, err)
			}
			if got := p.Routes(); len(got) != 0 {
				t.Errorf("Routes() = %v; want none", got)
			}
			if p.UserAtHostEnabled() {
				t.Errorf("UserAtHostEnabled() = true; want false")
			}
			for _, user := range []string{"alice", "", "bob@localhost"} {
				if d := p.Login(LoginRequest{User: user}); d.Allow {
					t.Errorf("Login(%q) allowed: %+v; want denied", user, d)
				}
			}
		})
	}
}

// loadErrorTests lists invalid policies with every message Load must give,
// each as a line number and a piece of the message. Load must give no other
// message, so a case also proves that one mistake is not reported twice.
var loadErrorTests = []struct {
	name string
	text string
	want []wantErr
}{
	{
		name: "version missing",
		text: "known_hosts: /k\n",
		want: []wantErr{{1, "version is required"}},
	},
	{
		name: "version 2",
		text: "\nversion: 2\n",
		want: []wantErr{{2, "version 2 is not supported"}},
	},
	{
		name: "version not a number",
		text: "version: one\n",
		want: []wantErr{{1, `want a whole number, got "one"`}},
	},
	{
		name: "top level is a list",
		text: "- version: 1\n",
		want: []wantErr{{1, "the policy must be a mapping"}},
	},
	{
		name: "unknown top-level key",
		text: "version: 1\nknown_host: /k\n",
		want: []wantErr{{2, `unknown key "known_host" in the top level`}},
	},
	{
		name: "unknown key in a route",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    upstream: sftp://h
  - user: b
    upstream: sftp://h
    pasword_bcrypt: x
`,
		want: []wantErr{{8, `unknown key "pasword_bcrypt" in route`}},
	},
	{
		name: "unknown key in user_at_host",
		text: `version: 1
user_at_host:
  enabled: false
  allowed_hosts: [a]
`,
		want: []wantErr{{4, `unknown key "allowed_hosts" in user_at_host`}},
	},
	{
		name: "unknown key in a secret reference",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_password:
      evn: PW
`,
		want: []wantErr{{8, `unknown key "evn" in secret reference`}},
	},
	{
		name: "key given twice in a route",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    upstream: sftp://h
    user: b
`,
		want: []wantErr{{6, `key "user" is given twice (first at line 4)`}},
	},
	{
		name: "second document",
		text: "version: 1\n---\nversion: 1\n",
		want: []wantErr{{2, "a second YAML document is not allowed"}},
	},
	{
		name: "empty second document",
		text: "version: 1\n---\n",
		want: []wantErr{{2, "a second YAML document is not allowed"}},
	},
	{
		name: "YAML syntax error",
		text: "version: 1\nroutes: [\n",
		want: []wantErr{{2, "did not find expected node content"}},
	},
	{
		name: "routes not a list",
		text: "version: 1\nroutes:\n  user: a\n",
		want: []wantErr{{3, "want a list of routes, got a mapping"}},
	},
	{
		name: "route not a mapping keeps later lines right",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - [a]\n  - plain\n  -\n  - user: b\n",
		want: []wantErr{
			{4, "want a route (a mapping of keys), got a list"},
			{5, "want a route (a mapping of keys), got a plain value"},
			{6, "empty route"},
			{7, `route "b": upstream is required`},
		},
	},
	{
		name: "user_at_host not a mapping",
		text: "version: 1\nuser_at_host: true\n",
		want: []wantErr{{2, "want a mapping of user_at_host settings, got a plain value"}},
	},
	{
		name: "list with a bad item still checks the good ones",
		text: "version: 1\nknown_hosts: /k\nuser_at_host:\n  enabled: true\n  allow_hosts: [[x], \"10.*\"]\n",
		want: []wantErr{
			{5, "want a string, got a list"},
			{5, `allow_hosts entry "10.*": looks like an IP address pattern`},
		},
	},
	{
		name: "route user missing",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - upstream: sftp://h\n",
		want: []wantErr{{4, "user is required"}},
	},
	{
		name: "route user with @",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a@b\n    upstream: sftp://h\n",
		want: []wantErr{{4, `route user "a@b" must not contain @`}},
	},
	{
		name: "duplicate user ignoring case names both lines",
		text: `version: 1
known_hosts: /k
routes:
  - user: PayJob
    upstream: sftp://h
  - user: payjob
    upstream: sftp://h
`,
		want: []wantErr{{6, `route user "payjob" is already used by the route at line 4`}},
	},
	{
		name: "duplicate route name",
		text: `version: 1
known_hosts: /k
routes:
  - name: x
    user: a
    upstream: sftp://h
  - name: x
    user: b
    upstream: sftp://h
`,
		want: []wantErr{{7, `route name "x" is already used by the route at line 4`}},
	},
	{
		name: "reserved route name",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - name: default-deny\n    user: a\n    upstream: sftp://h\n",
		want: []wantErr{{4, `route name "default-deny" is reserved`}},
	},
	{
		name: "bad auth value",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    auth: bcrypt\n    upstream: sftp://h\n",
		want: []wantErr{{5, `auth "bcrypt" is not valid; want local or passthrough`}},
	},
	{
		name: "auth local without password_bcrypt",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    auth: local
    upstream: sftp://u@h
    upstream_key: /key
`,
		want: []wantErr{{4, "auth local needs password_bcrypt"}},
	},
	{
		name: "auth local without upstream credentials",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
`,
		want: []wantErr{{4, "auth local needs upstream_password or upstream_key"}},
	},
	{
		name: "auth local without upstream user",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://h/dir
    upstream_password: {env: PW}
`,
		want: []wantErr{{6, "auth local needs the partner user in the upstream URL"}},
	},
	{
		name: "passthrough with upstream_password",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    upstream: sftp://h
    upstream_password: {env: PW}
`,
		want: []wantErr{{6, "upstream_password is not allowed with auth passthrough: the client's password is used"}},
	},
	{
		name: "passthrough with upstream_key",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    auth: passthrough
    upstream: sftp://h
    upstream_key: /key
`,
		want: []wantErr{{7, "upstream_key is not allowed with auth passthrough: the client's password is used"}},
	},
	{
		name: "passthrough with password_bcrypt",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    auth: passthrough
    password_bcrypt: HASH
    upstream: sftp://h
`,
		want: []wantErr{{6, "password_bcrypt is only used with auth local"}},
	},
	{
		name: "password_bcrypt not a bcrypt hash",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: "$1$md5crypt$abc"
    upstream: sftp://u@h
    upstream_key: /key
`,
		want: []wantErr{{5, "password_bcrypt is not a bcrypt hash"}},
	},
	{
		name: "upstream missing",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n",
		want: []wantErr{{4, "upstream is required"}},
	},
	{
		name: "upstream scheme ftp",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: ftp://h\n",
		want: []wantErr{{5, `scheme "ftp" not supported`}},
	},
	{
		name: "upstream without scheme",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: h:22\n",
		want: []wantErr{{5, "want sftp://[user@]host[:port][/dir]"}},
	},
	{
		name: "upstream with password",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://u:hunter2@h\n",
		want: []wantErr{{5, "the URL must not hold a password"}},
	},
	{
		name: "upstream with password and bad port does not repeat the password",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://u:hunter2@h:x\n",
		want: []wantErr{{5, "not a valid URL"}},
	},
	{
		name: "upstream port out of range",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://h:70000\n",
		want: []wantErr{{5, `port "70000" is out of range`}},
	},
	{
		name: "upstream port zero",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://h:0/x\n",
		want: []wantErr{{5, `port "0" is out of range`}},
	},
	{
		name: "upstream with query",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://h/x?y=1\n",
		want: []wantErr{{5, "must not have a query"}},
	},
	{
		name: "upstream without host",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp:///x\n",
		want: []wantErr{{5, "the URL names no host"}},
	},
	{
		name: "no host-key source",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: sftp://h\n",
		want: []wantErr{{3, `route "a" has no host-key source`}},
	},
	{
		name: "empty pin list is no host-key source",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://h\n    host_key_sha256: []\n",
		want: []wantErr{{4, `route "a" has no host-key source`}},
	},
	{
		name: "bad fingerprints",
		text: `version: 1
routes:
  - user: a
    upstream: sftp://h
    host_key_sha256:
      - PIN1
      - "SHA256:short"
      - "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"
      - "SHA256:uOAGZrL67rNLBXGFd18qsI0vjPhZ1XfeJDrTaV7cAME="
`,
		want: []wantErr{
			{7, `host_key_sha256 "SHA256:short" is not a SHA-256 host-key fingerprint`},
			{8, `host_key_sha256 "MD5:16:27`},
			{9, `host_key_sha256 "SHA256:uOAGZrL67rNLBXGFd18qsI0vjPhZ1XfeJDrTaV7cAME="`},
		},
	},
	{
		name: "pin not a string",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: sftp://h\n    host_key_sha256: [{x: 1}]\n",
		want: []wantErr{{5, "want a string, got a mapping"}},
	},
	{
		name: "secret with env and file",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_password: {env: PW, file: /pw}
`,
		want: []wantErr{{7, "upstream_password: set exactly one of env and file"}},
	},
	{
		name: "secret with neither",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_password: {}
`,
		want: []wantErr{{7, "upstream_password: set one of env or file"}},
	},
	{
		name: "secret that is a string",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_password: hunter2
`,
		want: []wantErr{{7, "want a secret reference, {env: NAME} or {file: PATH}; got a plain value"}},
	},
	{
		name: "secret with a bad variable name",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_password: {env: "PAY-PW"}
`,
		want: []wantErr{{7, `"PAY-PW" is not an environment variable name`}},
	},
	{
		name: "key passphrase without key",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_password: {env: PW}
    upstream_key_passphrase: {env: KPW}
`,
		want: []wantErr{{8, "upstream_key_passphrase is set but upstream_key is not"}},
	},
	{
		name: "use_fstat not a boolean",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: sftp://h\n    use_fstat: sometimes\n",
		want: []wantErr{{6, `want true or false, got "sometimes"`}},
	},
	{
		name: "user_at_host enabled without allow_hosts",
		text: "version: 1\nknown_hosts: /k\nuser_at_host:\n  enabled: true\n",
		want: []wantErr{{4, "user_at_host: allow_hosts is empty"}},
	},
	{
		name: "user_at_host enabled with an empty allow_hosts",
		text: "version: 1\nknown_hosts: /k\nuser_at_host:\n  enabled: true\n  allow_hosts: []\n",
		want: []wantErr{{5, "user_at_host: allow_hosts is empty"}},
	},
	{
		name: "user_at_host enabled without a host-key source",
		text: "version: 1\nuser_at_host:\n  enabled: true\n  allow_hosts: [a.example]\n",
		want: []wantErr{{3, "user_at_host has no host-key source"}},
	},
	{
		name: "user_at_host bad values",
		text: `version: 1
known_hosts: /k
user_at_host:
  enabled: true
  scheme: ftps
  port: 0
  allow_hosts:
    - "10.0.0.0/33"
    - "host[.example"
    - "10.0.*"
    - "[10.0.0.1]"
    - "h:22"
    - ""
    - "fe80::1%eth0"
`,
		want: []wantErr{
			{5, `user_at_host: scheme "ftps" not supported`},
			{6, "user_at_host: port 0 is out of range 1-65535"},
			{8, `allow_hosts entry "10.0.0.0/33": not a valid CIDR prefix`},
			{9, `allow_hosts entry "host[.example": not a valid pattern`},
			{10, `allow_hosts entry "10.0.*": looks like an IP address pattern`},
			{11, `allow_hosts entry "[10.0.0.1]": not a valid IPv6 address in brackets`},
			{12, `allow_hosts entry "h:22": not a host-name pattern`},
			{13, `allow_hosts entry "": empty entry`},
			{14, `allow_hosts entry "fe80::1%eth0": IPv6 zones are not supported`},
		},
	},
	{
		name: "user_at_host allow_hosts not a list",
		text: "version: 1\nknown_hosts: /k\nuser_at_host:\n  enabled: true\n  allow_hosts: \"*.example.com\"\n",
		want: []wantErr{{5, `want a list of strings, got "*.example.com"`}},
	},
	{
		name: "every problem in one file, in line order",
		text: `version: 3
routes:
  - user: a
    upstream: gopher://h
    bogus: 1
  - user: A
    upstream: sftp://h
    known_hosts: /k
`,
		want: []wantErr{
			{1, "version 3 is not supported"},
			{3, `route "a" has no host-key source`},
			{4, `scheme "gopher" not supported`},
			{5, `unknown key "bogus" in route`},
			{6, `route user "A" is already used by the route at line 3`},
		},
	},
}

type wantErr struct {
	line int
	msg  string
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range loadErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			text := fixture(t, tc.text)
			p, err := Load(strings.NewReader(text), "p.yaml")
			if err == nil {
				t.Fatalf("Load succeeded with %d routes; want errors %v", len(p.Routes()), tc.want)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load error %T %v; want *LoadError", err, err)
			}
			if len(le.Errs) != len(tc.want) {
				t.Errorf("got %d errors; want %d:\n%v", len(le.Errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i >= len(le.Errs) {
					break
				}
				got := le.Errs[i]
				if got.File != "p.yaml" || got.Line != w.line || !strings.Contains(got.Msg, w.msg) {
					t.Errorf("error %d: got %q; want p.yaml:%d: ...%s...", i, got.Error(), w.line, w.msg)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q holds the password from the URL", err)
			}
		})
	}
}

func TestLoadErrorFormat(t *testing.T) {
	_, err := Load(strings.NewReader("version: 2\nfoo: 1\n"), "/etc/ftpgate/policy.yaml")
	want := "/etc/ftpgate/policy.yaml:1: version 2 is not supported; this ftpgate reads version 1\n" +
		`/etc/ftpgate/policy.yaml:2: unknown key "foo" in the top level`
	if err == nil || err.Error() != want {
		t.Fatalf("Load error:\ngot  %v\nwant %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 1 {
		t.Errorf("errors.As(err, *FieldError) = %v; want the first problem, at line 1", fe)
	}
}

func TestLoadUserAtHostDisabledNeedsNoHostKeys(t *testing.T) {
	p := mustLoad(t, "version: 1\nuser_at_host:\n  enabled: false\n  allow_hosts: []\n")
	if p.UserAtHostEnabled() {
		t.Errorf("UserAtHostEnabled() = true; want false")
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(name, []byte(fixture(t, fullPolicy)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadFile(name)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if got := len(p.Routes()); got != 3 {
		t.Errorf("LoadFile: got %d routes; want 3", got)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nnope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("LoadFile(bad) error %v; want it located as %s:2", err, bad)
	}

	_, err = LoadFile(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing) error %v; want fs.ErrNotExist", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	text := "version: 1\n" + strings.Repeat("# padding\n", maxPolicyBytes/10+1)
	_, err := Load(strings.NewReader(text), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(%d bytes) error %v; want a size error", len(text), err)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte("# none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `version: 1
known_hosts: ` + kh + `
routes:
  - user: a
    password_bcrypt: HASH
    upstream: sftp://u@h
    upstream_key: ` + filepath.Join(dir, "missing_key") + `
    upstream_password: {file: ` + dir + `}
  - user: b
    upstream: sftp://h
    known_hosts: ` + kh + `
`
	p := mustLoad(t, text)
	errs := p.CheckFiles()
	want := []struct {
		line   int
		msg    string
		target error
	}{
		{7, "upstream_key " + filepath.Join(dir, "missing_key") + ": ", fs.ErrNotExist},
		{8, "upstream_password file " + dir + ": is a directory", errIsDir},
	}
	if len(errs) != len(want) {
		t.Fatalf("CheckFiles() = %v; want %d errors", errs, len(want))
	}
	for i, w := range want {
		var fe *FieldError
		if !errors.As(errs[i], &fe) || fe.Line != w.line || !strings.Contains(fe.Msg, w.msg) || !errors.Is(errs[i], w.target) {
			t.Errorf("CheckFiles()[%d] = %v; want line %d, %q, wrapping %v", i, errs[i], w.line, w.msg, w.target)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to Load: it must never panic, and it must
// return either a policy or a *LoadError whose every message is located.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fixture(f, fullPolicy)))
	for _, tc := range loadErrorTests {
		f.Add([]byte(fixture(f, tc.text)))
	}
	f.Add([]byte(fixture(f, ftpsPolicy)))
	for _, tc := range ftpsLoadErrorTests {
		f.Add([]byte(fixture(f, tc.text)))
	}
	f.Add([]byte(fixture(f, zonePolicy)))
	for _, tc := range ruleLoadErrorTests {
		f.Add([]byte(fixture(f, tc.text)))
	}
	for _, tc := range lintTests {
		f.Add([]byte(fixture(f, tc.text)))
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("version: 1\nroutes:\n  - &r {user: a, upstream: 'sftp://h', known_hosts: /k}\n  - *r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(strings.NewReader(string(data)), "fuzz.yaml")
		if err != nil {
			if p != nil {
				t.Fatalf("Load returned a policy and an error %v", err)
			}
			var le *LoadError
			if errors.As(err, &le) {
				if len(le.Errs) == 0 {
					t.Fatalf("Load returned an empty *LoadError")
				}
				for _, e := range le.Errs {
					if e.Msg == "" || e.File != "fuzz.yaml" || e.Line < 0 {
						t.Fatalf("Load returned an error without a message: %+v", e)
					}
				}
			}
			return
		}
		// A policy that loads holds only complete routes, and each one
		// can be logged in to.
		for _, r := range p.Routes() {
			up := r.Upstream
			if r.Line < 1 || r.Name == "" || up.Host == "" || up.Port < 1 || up.Port > 65535 ||
				!up.IsFTPS() && up.KnownHosts == "" && len(up.HostKeySHA256) == 0 {
				t.Fatalf("Load accepted an incomplete route %+v", r)
			}
			// Without rules every route can be logged in to; with
			// rules, the rules decide.
			if d := p.Login(LoginRequest{User: r.User}); !d.Allow && !p.HasRules() {
				t.Fatalf("Login(%q) denied for a loaded route: %+v", r.User, d)
			}
			if r.Upstream.IsPlainFTP() && !p.HasRules() {
				t.Fatalf("Load accepted a plain-FTP route without rules: %+v", r)
			}
		}
		_ = p.Login(LoginRequest{User: "x@localhost"})
		for _, fe := range p.Lint() {
			if fe.Msg == "" || fe.Line < 1 {
				t.Fatalf("Lint finding without a location: %+v", fe)
			}
		}
	})
}
