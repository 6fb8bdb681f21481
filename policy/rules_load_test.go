package policy

import (
	"errors"
	"strings"
	"testing"
)

// zoneHead is a policy head with zones and groups that the error cases
// build on: 14 lines, so their own lines start at 15.
const zoneHead = `version: 1
known_hosts: /k
zones:
  sources:
    batch:
      networks: [10.0.0.0/8]
    dmz:
      networks: [192.0.2.0/24]
  destinations:
    partners:
      hosts: ["*.partner.example"]
groups:
  payroll: [PAYJOB]
routes:
`

var ruleLoadErrorTests = []struct {
	name  string
	text  string
	files map[string]string
	want  []wantErr
}{
	{
		name: "ftp:// route without a warn rule is a load error at line 16",
		text: zoneHead + `  - user: old
    upstream: ftp://ftp.legacy.example
rules:
  - name: all
    action: upgrade
`,
		want: []wantErr{{16, `route "old": upstream ftp:// is plain FTP, and no rule with action: warn and plain_ftp: true can match it (destination zone (none), user "old")`}},
	},
	{
		name: "ftp:// route with a warn rule for another user is a load error",
		text: zoneHead + `  - user: old
    upstream: ftp://ftp.legacy.example
rules:
  - name: legacy
    users: [someone]
    action: warn
    plain_ftp: true
`,
		want: []wantErr{{16, `no rule with action: warn and plain_ftp: true can match it`}},
	},
	{
		name: "ftp:// route with a warn rule for another zone is a load error",
		text: zoneHead + `  - user: old
    upstream: ftp://ftp.legacy.example
rules:
  - name: legacy
    to: [partners]
    action: warn
    plain_ftp: true
`,
		want: []wantErr{{16, `no rule with action: warn and plain_ftp: true can match it`}},
	},
	{
		name: "ftp:// route without rules is refused as before",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftp://h\n",
		want: []wantErr{{4, "ftpgate never carries a session in clear text"}},
	},
	{
		name: "ftp:// route refuses SSH and TLS keys",
		text: zoneHead + `  - user: old
    upstream: ftp://ftp.legacy.example
    known_hosts: /k
    tls_ca_file: /ca
rules:
  - name: legacy
    action: warn
    plain_ftp: true
`,
		want: []wantErr{
			{17, "known_hosts applies to sftp upstreams only"},
			{18, "tls_ca_file applies to ftps:// and ftpes:// upstreams only"},
		},
	},
	{
		name: "warn rule needs plain_ftp",
		text: zoneHead + "rules:\n  - name: w\n    action: warn\n",
		want: []wantErr{{16, `rule "w": action warn needs plain_ftp: true`}},
	},
	{
		name: "warn rule with plain_ftp false",
		text: zoneHead + "rules:\n  - name: w\n    action: warn\n    plain_ftp: false\n",
		want: []wantErr{{18, "set plain_ftp: true, or use action: upgrade"}},
	},
	{
		name: "plain_ftp on an upgrade rule",
		text: zoneHead + "rules:\n  - name: u\n    action: upgrade\n    plain_ftp: true\n",
		want: []wantErr{{18, "plain_ftp is only allowed with action: warn"}},
	},
	{
		name: "rule needs a name and an action",
		text: zoneHead + "rules:\n  - from: [batch]\n",
		want: []wantErr{{16, "rule: name is required"}, {16, "rule: action is required"}},
	},
	{
		name: "rule name reserved, invalid, and given twice",
		text: zoneHead + `rules:
  - name: default-deny
    action: block
  - name: "a b"
    action: block
  - name: x
    action: block
  - name: x
    action: block
`,
		want: []wantErr{
			{16, `rule name "default-deny" is reserved`},
			{18, `rule name "a b" is not valid`},
			{22, `rule name "x" is already used by the rule at line 20`},
		},
	},
	{
		name: "unknown action",
		text: zoneHead + "rules:\n  - name: a\n    action: allow\n",
		want: []wantErr{{17, `action "allow" is not valid; want upgrade, block or warn`}},
	},
	{
		name: "rule names an undefined zone or group",
		text: zoneHead + `rules:
  - name: a
    from: [batch, lan]
    to: [batch]
    groups: [ops]
    action: block
`,
		want: []wantErr{
			{17, `from: source zone "lan" is not defined under zones.sources`},
			{18, `to: destination zone "batch" is not defined under zones.destinations`},
			{19, `group "ops" is not defined under groups`},
		},
	},
	{
		name: "any listed with other zones",
		text: zoneHead + "rules:\n  - name: a\n    from: [any, batch]\n    action: block\n",
		want: []wantErr{{17, "from: any matches every zone; list it alone"}},
	},
	{
		name: "empty from list",
		text: zoneHead + "rules:\n  - name: a\n    from: []\n    action: block\n",
		want: []wantErr{{17, "from is empty"}},
	},
	{
		name: "block rule with options",
		text: zoneHead + `rules:
  - name: b
    action: block
    read_only: true
    data_ports:
      active: false
`,
		want: []wantErr{
			{18, "read_only has no meaning with action: block"},
			{19, "data_ports has no meaning with action: block"},
		},
	},
	{
		name: "command lists",
		text: zoneHead + `rules:
  - name: c
    action: upgrade
    allow_commands: [PORT, QUIT, FROB, "SITE FILETYPE", "SITE DEBUG", RETR, "RETR X", retr]
    deny_commands: [RETR, "SITE CHMOD", xmkd]
`,
		want: []wantErr{
			{18, "PORT is governed by data_ports"},
			{18, "QUIT is always allowed"},
			{18, `"FROB" is not a command the policy controls`},
			{18, "SITE FILETYPE=SEQ is always allowed"},
			{18, "allow SITE DEBUG with allow_site_diagnostics"},
			{18, `"RETR X": only SITE takes a parameter name here`},
			{18, "RETR is listed twice"},
			{18, "RETR is in both allow_commands and deny_commands"},
		},
	},
	{
		name: "site keyword lists",
		text: zoneHead + `rules:
  - name: s
    action: upgrade
    allow_site_filetype: [SEQ, jes, JES]
    allow_site_diagnostics: [DUMP, LOUD]
`,
		want: []wantErr{
			{18, `"SEQ" is not valid; SEQ is always allowed`},
			{18, "JES is listed twice"},
			{19, `"LOUD" is not valid; want DUMP, DEBUG or TRACE`},
		},
	},
	{
		name: "paths must be clean and absolute",
		text: zoneHead + `rules:
  - name: p
    action: upgrade
    paths: [in, /a/../b, /ok/, /ok]
`,
		want: []wantErr{
			{18, `"in" is not an absolute path`},
			{18, `"/a/../b" is not a clean path; write "/b"`},
			{18, `"/ok" is listed twice`},
		},
	},
	{
		name: "max_file_size and passive_ports",
		text: zoneHead + `rules:
  - name: m
    action: upgrade
    max_file_size: 10 furlongs
    data_ports:
      active: false
      foreign_address: true
      passive_ports: 50100-50000
  - name: n
    action: upgrade
    data_ports: {passive_ports: 21-30}
`,
		want: []wantErr{
			{18, `max_file_size "10 furlongs" is not a size`},
			{21, "foreign_address applies to PORT and EPRT, which active: false rejects"},
			{22, "runs backwards"},
			{25, "starts below 1024"},
		},
	},
	{
		name: "protocols and user_at_host_scheme",
		text: zoneHead + `rules:
  - name: p
    action: upgrade
    protocols: [ftp, sftp, scp]
  - name: q
    action: upgrade
    protocols: [sftp]
    user_at_host_scheme: ftpes
  - name: r
    action: upgrade
    user_at_host_scheme: ftp
`,
		want: []wantErr{
			{18, "protocols: plain ftp is not listed here"},
			{18, `protocols: "scp" is not valid`},
			{22, "user_at_host_scheme ftpes is not among its protocols [sftp]"},
			{25, "user_at_host_scheme ftp needs action: warn with plain_ftp: true"},
		},
	},
	{
		name: "rules section present but empty",
		text: zoneHead + "rules: []\n",
		want: []wantErr{{15, "rules is empty"}},
	},
	{
		name: "unknown key in a rule",
		text: zoneHead + "rules:\n  - name: a\n    action: block\n    form: [batch]\n",
		want: []wantErr{{18, `unknown key "form" in rule`}},
	},
	{
		name: "same network in two source zones",
		text: "version: 1\nzones:\n  sources:\n    a:\n      networks: [10.0.0.0/8]\n    b:\n      networks: [10.0.0.0/8, 10.1.0.0/16, 10.1.0.0/16]\n",
		want: []wantErr{
			{7, `network 10.0.0.0/8 is already in source zone "a" at line 5; an address belongs to exactly one zone`},
			{7, "network 10.1.0.0/16 is listed twice"},
		},
	},
	{
		name: "networks must be networks",
		text: "version: 1\nzones:\n  sources:\n    a:\n      networks: [10.1.2.3/8, \"::ffff:10.0.0.0/104\", lan, \"fe80::1%eth0\", \"[2001:db8::1]\", 192.0.2.1]\n",
		want: []wantErr{
			{5, "did you mean 10.0.0.0/8?"},
			{5, "is IPv4-mapped"},
			{5, `"lan" is not a CIDR prefix or an address`},
			{5, "has an IPv6 zone"},
		},
	},
	{
		name: "zone names",
		text: "version: 1\nzones:\n  sources:\n    any:\n      networks: [10.0.0.0/8]\n    a:\n      networks: [10.1.0.0/16]\n  destinations:\n    a:\n      hosts: [x.example]\n    \"b c\":\n      hosts: [y.example]\n",
		want: []wantErr{
			{4, `source zone name "any" is reserved`},
			{9, `zone name "a" is already used at line 6`},
			{11, `destination zone name "b c" is not valid`},
		},
	},
	{
		name: "zones need networks or hosts",
		text: "version: 1\nzones:\n  sources:\n    a:\n      users: [x]\n  destinations:\n    d: {}\n",
		want: []wantErr{
			{4, `source zone "a": networks is required`},
			{7, `destination zone "d": give networks`},
		},
	},
	{
		name: "destination hosts are names and patterns",
		text: "version: 1\nzones:\n  destinations:\n    d:\n      hosts: [10.0.0.1, \"bad host\", \"*.ok.example\"]\n    e:\n      hosts: [\"*.OK.example\"]\n",
		want: []wantErr{
			{5, `hosts entry "10.0.0.1" is an address; list addresses and CIDR prefixes under networks`},
			{5, `hosts entry "bad host": not a host-name pattern`},
			{7, `host pattern "*.OK.example" is already in destination zone "d" at line 5`},
		},
	},
	{
		name: "groups",
		text: "version: 1\ngroups:\n  g: []\n  h: [a, A, \"\"]\n  any: [x]\nzones:\n  sources:\n    z:\n      networks: [10.0.0.0/8]\n      groups: [nope]\n",
		want: []wantErr{
			{3, `group "g" is empty`},
			{4, `group "h": user "A" is listed twice`},
			{4, `group "h": user "" is empty`},
			{5, `group name "any" is reserved`},
			{10, `group "nope" is not defined under groups`},
		},
	},
	{
		name: "missing local_users_file is a load error",
		text: "version: 1\nlocal_users_file: /nope\n",
		want: []wantErr{{2, "local_users_file: local_users_file /nope: file does not exist"}},
	},
	{
		name:  "local_users_file lines must be user:bcrypt",
		text:  "version: 1\nlocal_users_file: /u\n",
		files: map[string]string{"/u": "# users\nalice\nbob:{SHA}abc\ncarol:HASH\nCAROL:HASH\n:HASH\n"},
		want: []wantErr{
			{2, "want user:bcrypt-hash"},
			{3, `user "bob": only bcrypt hashes`},
			{5, `user "CAROL" is already listed at line 4`},
			{6, "the user name is empty"},
		},
	},
	{
		name:  "auth local without a hash needs an entry in local_users_file",
		text:  "version: 1\nknown_hosts: /k\nlocal_users_file: /u\nroutes:\n  - user: dave\n    auth: local\n    upstream: sftp://d@h\n    upstream_password: {env: X}\n",
		files: map[string]string{"/u": "carol:HASH\n"},
		want:  []wantErr{{5, `route "dave": auth local without password_bcrypt needs an entry for user "dave" in local_users_file (/u)`}},
	},
	{
		name: "auth local without a hash or a users file",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: dave\n    auth: local\n    upstream: sftp://d@h\n    upstream_password: {env: X}\n",
		want: []wantErr{{4, "auth local needs password_bcrypt"}},
	},
}

func TestLoadRuleErrors(t *testing.T) {
	for _, tc := range ruleLoadErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range tc.files {
				files[k] = fixture(t, v)
			}
			p, err := loadData([]byte(fixture(t, tc.text)), "p.yaml", fakeFiles(files))
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
				file := "p.yaml"
				if tc.files != nil && strings.Contains(tc.name, "lines must be") {
					file = "/u"
				}
				if got.File != file || got.Line != w.line || !strings.Contains(got.Msg, w.msg) {
					t.Errorf("error %d: got %q; want %s:%d: ...%s...", i, got.Error(), file, w.line, w.msg)
				}
				if strings.Contains(got.Msg, "$2a$04$") {
					t.Errorf("error %d holds a hash: %q", i, got.Msg)
				}
			}
		})
	}
}

func TestLoadZonePolicyExample(t *testing.T) {
	p := loadZonePolicy(t)
	if !p.HasRules() || len(p.Routes()) != 7 {
		t.Fatalf("HasRules %v, %d routes; want rules and 7 routes", p.HasRules(), len(p.Routes()))
	}
	for _, r := range p.Routes() {
		if r.Name == "legacy" && (!r.Upstream.IsPlainFTP() || r.Upstream.Port != 21) {
			t.Errorf("legacy route upstream %+v; want ftp on port 21", r.Upstream)
		}
	}
}
