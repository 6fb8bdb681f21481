package policy

import (
	"errors"
	"io/fs"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// mustLoadFiles loads text (after fixture) with files standing in for the
// file system that local_users_file paths are read from.
func mustLoadFiles(t testing.TB, text string, files map[string]string) *Policy {
	t.Helper()
	p, err := loadData([]byte(fixture(t, text)), "test.yaml", fakeFiles(files))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func fakeFiles(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(s), nil
	}
}

// zonePolicy is the policy the rule tables decide with. Its line numbers
// appear in the error and lint tables, so add to its end only.
const zonePolicy = `version: 1
known_hosts: /etc/ftpgate/known_hosts
local_users_file: /etc/ftpgate/users
zones:
  sources:
    batch:
      networks: [10.20.0.0/16, "2001:db8:20::/48"]
    ops:
      networks: [10.20.9.0/24, "2001:db8:20:9::/64"]
      groups: [sysprogs]
    dmz:
      networks: [192.0.2.0/24]
    lab:
      networks: [198.51.100.0/24]
  destinations:
    partners:
      hosts: ["*.partner.example"]
      networks: [203.0.113.0/24]
    payhost:
      hosts: [sftp.pay.partner.example]
    legacy:
      hosts: [ftp.legacy.example]
groups:
  payroll: [PAYJOB, PAYJOB2]
  sysprogs: [SYSPROG1, sysprog2]
user_at_host:
  enabled: true
  allow_hosts: ["*.partner.example", "203.0.113.0/24", "ftp.legacy.example"]
routes:
  - name: payroll
    user: PAYJOB
    auth: local
    upstream: sftp://payuser@sftp.pay.partner.example/inbound/pay
    upstream_key: /etc/ftpgate/keys/pay
  - name: payroll2
    user: PAYJOB2
    password_bcrypt: "HASH"
    upstream: sftp://payuser@sftp.pay.partner.example/inbound/pay
    upstream_key: /etc/ftpgate/keys/pay
  - name: reports
    user: RPTJOB
    upstream: ftpes://reports.partner.example/out
  - name: legacy
    user: OLDJOB
    upstream: ftp://ftp.legacy.example/in
  - name: sysprog
    user: SYSPROG1
    upstream: sftp://mvs.partner.example
  - name: labroute
    user: LABJOB
    upstream: sftp://10.9.9.9
  - name: tlsjob
    user: TLSJOB
    upstream: sftp://files.partner.example
rules:
  - name: dmz-blocked
    from: [dmz]
    action: block
  - name: sysprog-diagnostics
    from: [ops]
    groups: [sysprogs]
    action: upgrade
    allow_site_diagnostics: [DUMP, DEBUG]
  - name: legacy-migration
    from: [batch]
    to: [legacy]
    users: [OLDJOB, migrator]
    action: warn
    plain_ftp: true
    user_at_host_scheme: ftp
    read_only: true
  - name: payroll
    from: [batch]
    to: [payhost]
    groups: [payroll]
    action: upgrade
    protocols: [sftp]
    paths: [/inbound/pay, /outbound]
    max_file_size: 2GiB
    deny_commands: [DELE, RMD, "SITE CHMOD"]
    data_ports:
      active: false
      passive_ports: 50000-50099
  - name: reports-jes
    from: [batch]
    to: [partners]
    users: [RPTJOB]
    action: upgrade
    protocols: [sftp]
    allow_site_filetype: [JES]
  - name: tls-only
    users: [TLSJOB]
    action: upgrade
    require_tls: true
  - name: partners-ftps
    from: [batch]
    to: [partners]
    users: [ftpsuser]
    action: upgrade
    user_at_host_scheme: ftpes
  - name: partners
    from: [batch, ops]
    to: [partners]
    action: upgrade
  - name: lab-anywhere
    from: [lab]
    action: upgrade
    allow_commands: [RETR, LIST, NLST, "SITE LRECL"]
    data_ports:
      foreign_address: true
      low_ports: true
`

// zoneUsers is the users file zonePolicy names.
var zoneUsers = map[string]string{
	"/etc/ftpgate/users": "# htpasswd -B\nPAYJOB:HASH\n\nsysprog1:HASH\n",
}

func loadZonePolicy(t testing.TB) *Policy {
	t.Helper()
	files := map[string]string{}
	for k, v := range zoneUsers {
		files[k] = fixture(t, v)
	}
	return mustLoadFiles(t, zonePolicy, files)
}

var ruleLoginTests = []struct {
	name     string
	from     string
	user     string
	tls      bool
	allow    bool
	rule     string
	action   string
	zone     string
	dest     string
	scheme   string // upstream scheme when allowed
	insecure bool
	reason   string // a piece of the reason
}{
	{
		name: "dmz zone blocked at login", from: "192.0.2.10", user: "PAYJOB",
		rule: "dmz-blocked", action: ActionBlock, zone: "dmz", dest: "payhost", reason: `blocked by rule "dmz-blocked"`,
	},
	{
		name: "group member allowed by its rule", from: "10.20.1.5", user: "payjob",
		allow: true, rule: "payroll", action: ActionUpgrade, zone: "batch", dest: "payhost", scheme: "sftp",
		reason: `rule "payroll"`,
	},
	{
		name: "most specific IPv4 prefix wins", from: "10.20.9.7", user: "SYSPROG1",
		allow: true, rule: "sysprog-diagnostics", action: ActionUpgrade, zone: "ops", dest: "partners", scheme: "sftp",
	},
	{
		name: "most specific IPv6 prefix wins", from: "2001:db8:20:9::42", user: "SYSPROG1",
		allow: true, rule: "sysprog-diagnostics", zone: "ops", dest: "partners", action: ActionUpgrade, scheme: "sftp",
	},
	{
		name: "IPv6 in the wider prefix gets the wider zone", from: "2001:db8:20:a::42", user: "SYSPROG1",
		allow: true, rule: "partners", zone: "batch", dest: "partners", action: ActionUpgrade, scheme: "sftp",
	},
	{
		name: "IPv4-mapped IPv6 client is matched as IPv4", from: "::ffff:10.20.9.7", user: "SYSPROG1",
		allow: true, rule: "sysprog-diagnostics", zone: "ops", dest: "partners", action: ActionUpgrade, scheme: "sftp",
	},
	{
		name: "zone users list refuses everyone else", from: "10.20.9.8", user: "PAYJOB",
		rule: "zone:ops", action: ActionBlock, zone: "ops", dest: "payhost", reason: `not on the users list of source zone "ops"`,
	},
	{
		name: "default deny without a matching rule", from: "10.99.0.1", user: "PAYJOB",
		rule: RuleDefaultDeny, action: ActionBlock, zone: "", dest: "payhost", reason: "no rule matches source zone (none)",
	},
	{
		name: "unknown user denied by default before the rules", from: "10.20.1.5", user: "mallory",
		rule: RuleDefaultDeny, action: ActionBlock, zone: "batch", reason: "no route for user",
	},
	{
		name: "first match wins over a later allow", from: "10.20.1.5", user: "PAYJOB2",
		allow: true, rule: "payroll", zone: "batch", dest: "payhost", action: ActionUpgrade, scheme: "sftp",
	},
	{
		name: "warn rule lets ftp:// through and marks insecure", from: "10.20.1.5", user: "OLDJOB",
		allow: true, rule: "legacy-migration", action: ActionWarn, zone: "batch", dest: "legacy", scheme: "ftp", insecure: true,
		reason: `rule "legacy-migration" (line 64, warn)`,
	},
	{
		name: "ftp:// route refused where no warn rule matches", from: "172.16.0.1", user: "OLDJOB",
		rule: RuleDefaultDeny, action: ActionBlock, zone: "", dest: "legacy",
	},
	{
		name: "ftp:// route refused by an upgrade rule", from: "198.51.100.7", user: "OLDJOB",
		rule: "lab-anywhere", action: ActionBlock, zone: "lab", dest: "legacy", reason: "needs action: warn with plain_ftp: true",
	},
	{
		name: "route partner outside the rule's protocols refused", from: "10.20.1.5", user: "RPTJOB",
		rule: "reports-jes", action: ActionBlock, zone: "batch", dest: "partners", reason: "allows protocols [sftp]; the partner is reached over ftpes",
	},
	{
		name: "require_tls refuses a login without AUTH TLS", from: "10.20.1.5", user: "TLSJOB",
		rule: "tls-only", action: ActionBlock, zone: "batch", dest: "partners", reason: "requires a protected control connection",
	},
	{
		name: "require_tls allows a login after AUTH TLS", from: "10.20.1.5", user: "TLSJOB", tls: true,
		allow: true, rule: "tls-only", action: ActionUpgrade, zone: "batch", dest: "partners", scheme: "sftp",
	},
	{
		name: "rule without from matches a client in no zone", from: "172.16.0.1", user: "TLSJOB", tls: true,
		allow: true, rule: "tls-only", action: ActionUpgrade, zone: "", dest: "partners", scheme: "sftp",
	},
	{
		name: "rule without to matches a partner in no zone", from: "198.51.100.7", user: "LABJOB",
		allow: true, rule: "lab-anywhere", action: ActionUpgrade, zone: "lab", dest: "", scheme: "sftp",
	},
	{
		name: "invalid client address is in no zone", from: "", user: "PAYJOB",
		rule: RuleDefaultDeny, action: ActionBlock, zone: "", dest: "payhost",
	},
	{
		name: "user@host gets sftp by default", from: "10.20.1.5", user: "ops@files.partner.example",
		allow: true, rule: "partners", action: ActionUpgrade, zone: "batch", dest: "partners", scheme: "sftp",
	},
	{
		name: "user@host gets the rule's user_at_host_scheme", from: "10.20.1.5", user: "ftpsuser@files.partner.example",
		allow: true, rule: "partners-ftps", action: ActionUpgrade, zone: "batch", dest: "partners", scheme: "ftpes",
	},
	{
		name: "user@host IP literal is matched against destination networks", from: "10.20.1.5", user: "ops@203.0.113.9",
		allow: true, rule: "partners", action: ActionUpgrade, zone: "batch", dest: "partners", scheme: "sftp",
	},
	{
		name: "user@host plain FTP under a warn rule", from: "10.20.1.5", user: "migrator@ftp.legacy.example",
		allow: true, rule: "legacy-migration", action: ActionWarn, zone: "batch", dest: "legacy", scheme: "ftp", insecure: true,
	},
	{
		name: "user@host rules match the name before the @", from: "10.20.1.5", user: "OLDJOB@ftp.partner.example",
		allow: true, rule: "partners", action: ActionUpgrade, zone: "batch", dest: "partners", scheme: "sftp",
	},
	{
		name: "user@host outside allow_hosts refused before the rules", from: "10.20.1.5", user: "ops@evil.example",
		rule: RuleUserAtHost, action: ActionBlock, zone: "batch", reason: "not in user_at_host.allow_hosts",
	},
	{
		name: "dmz blocks user@host too", from: "192.0.2.1", user: "ops@files.partner.example",
		rule: "dmz-blocked", action: ActionBlock, zone: "dmz", dest: "partners",
	},
}

func TestRuleLogin(t *testing.T) {
	p := loadZonePolicy(t)
	for _, tc := range ruleLoginTests {
		t.Run(tc.name, func(t *testing.T) {
			var addr netip.Addr
			if tc.from != "" {
				addr = netip.MustParseAddr(tc.from)
			}
			d := p.Login(LoginRequest{Client: addr, User: tc.user, TLS: tc.tls})
			if d.Allow != tc.allow || d.Rule != tc.rule || d.Action != tc.action {
				t.Fatalf("Login(%s, %q) = allow %v, rule %q, action %q (%s); want allow %v, rule %q, action %q",
					tc.from, tc.user, d.Allow, d.Rule, d.Action, d.Reason, tc.allow, tc.rule, tc.action)
			}
			if d.Zone != tc.zone || d.DestZone != tc.dest {
				t.Errorf("zones = %q -> %q; want %q -> %q", d.Zone, d.DestZone, tc.zone, tc.dest)
			}
			if d.Reason == "" || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q; want one containing %q", d.Reason, tc.reason)
			}
			if d.Insecure != tc.insecure {
				t.Errorf("Insecure = %v; want %v", d.Insecure, tc.insecure)
			}
			if !tc.allow {
				if d.Route != nil || !reflect.DeepEqual(d.Upstream, Upstream{}) {
					t.Errorf("denied with route %v, upstream %v", d.Route, d.Upstream)
				}
				var de *DenyError
				if err := d.Err(); !errors.As(err, &de) || de.Code != CodeNotLoggedIn || de.Rule != tc.rule {
					t.Errorf("Err() = %v; want a 530 *DenyError by %q", err, tc.rule)
				}
				return
			}
			if d.Upstream.Scheme != tc.scheme {
				t.Errorf("upstream %v; want scheme %s", d.Upstream, tc.scheme)
			}
		})
	}
}

func TestRuleLoginUserAtHostUpstreams(t *testing.T) {
	p := loadZonePolicy(t)
	tests := []struct {
		name string
		user string
		want string
	}{
		{"sftp from the user_at_host template", "ops@files.partner.example:2222", "sftp://ops@files.partner.example:2222"},
		{"ftpes with its default port", "ftpsuser@files.partner.example", "ftpes://ftpsuser@files.partner.example:21"},
		{"ftpes with the port given", "ftpsuser@files.partner.example:2121", "ftpes://ftpsuser@files.partner.example:2121"},
		{"plain ftp with its default port", "migrator@ftp.legacy.example", "ftp://migrator@ftp.legacy.example:21"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Login(LoginRequest{Client: netip.MustParseAddr("10.20.1.5"), User: tc.user})
			if !d.Allow || d.Upstream.String() != tc.want {
				t.Fatalf("Login(%q) = %v %v (%s); want allowed to %s", tc.user, d.Allow, d.Upstream, d.Reason, tc.want)
			}
			if d.Upstream.Scheme == "sftp" && d.Upstream.KnownHosts == "" {
				t.Errorf("sftp upstream without host-key source: %+v", d.Upstream)
			}
		})
	}
}

func TestLocalUsersFile(t *testing.T) {
	p := loadZonePolicy(t)
	batch := netip.MustParseAddr("10.20.1.5")
	local := p.Login(LoginRequest{Client: batch, User: "PAYJOB"})
	own := p.Login(LoginRequest{Client: batch, User: "PAYJOB2"})
	tests := []struct {
		name     string
		d        Decision
		password string
		want     bool
	}{
		{"hash from local_users_file accepts the password", local, "s3cret", true},
		{"hash from local_users_file refuses a wrong password", local, "s3cret!", false},
		{"route's own password_bcrypt still applies", own, "s3cret", true},
		{"route's own password_bcrypt refuses a wrong password", own, "nope", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.d.Allow || tc.d.Auth != AuthLocal {
				t.Fatalf("decision %+v; want an allowed auth local login", tc.d)
			}
			if got := tc.d.VerifyPassword(tc.password); got != tc.want {
				t.Errorf("VerifyPassword(%q) = %v; want %v", tc.password, got, tc.want)
			}
		})
	}
	if got := p.IncludedFiles(); len(got) != 1 || got[0] != "/etc/ftpgate/users" {
		t.Errorf("IncludedFiles() = %v; want [/etc/ftpgate/users]", got)
	}
	// The route table keeps the route as written: no hash from the file.
	for _, r := range p.Routes() {
		if r.Name == "payroll" && r.PasswordBcrypt != "" {
			t.Errorf("Routes() payroll has a hash from the users file")
		}
	}
}

func TestLocalUsersFilePerRule(t *testing.T) {
	text := `version: 1
known_hosts: /k
local_users_file: /top
routes:
  - user: a
    auth: local
    upstream: sftp://u@h
    upstream_password: {env: PW}
rules:
  - name: special
    from: [any]
    users: [a]
    to: [any]
    action: upgrade
    local_users_file: /rule
`
	p := mustLoadFiles(t, text, map[string]string{
		"/top":  fixture(t, "a:HASH\n"),
		"/rule": "A:" + testHash(t, "rule pw") + "\n",
	})
	d := p.Login(LoginRequest{User: "a"})
	if !d.Allow || !d.VerifyPassword("rule pw") || d.VerifyPassword("s3cret") {
		t.Errorf("rule's local_users_file does not override the policy's: %+v", d)
	}
}

func TestNoRulesKeepsTodaysBehaviour(t *testing.T) {
	p := mustLoad(t, loginPolicy)
	if p.HasRules() {
		t.Fatalf("HasRules() = true for a policy without rules")
	}
	d := p.Login(LoginRequest{Client: netip.MustParseAddr("192.0.2.1"), User: "PAYJOB"})
	if !d.Allow || d.Rule != "payroll" || d.Action != ActionUpgrade || d.Zone != "" || d.DestZone != "" || d.Insecure {
		t.Errorf("Login = %+v; want payroll, upgrade, no zones", d)
	}
	denied := p.Login(LoginRequest{User: "nobody"})
	if denied.Action != ActionBlock {
		t.Errorf("denied Action = %q; want block", denied.Action)
	}
}

// FuzzDecide feeds arbitrary addresses, users, verbs and paths to Login
// and to the decision's methods: nothing may panic, a denial always has a
// rule, a reason and action block, and an allowed session is upgrade or
// warn with a partner.
func FuzzDecide(f *testing.F) {
	for _, tc := range ruleLoginTests {
		f.Add(tc.from, tc.user, false, "STOR", "/inbound/pay/x", "LRECL=80")
	}
	for _, tc := range commandTests {
		f.Add("10.20.1.5", "PAYJOB", true, tc.verb, "/outbound", tc.arg)
	}
	for _, tc := range pathTests {
		f.Add("10.20.1.5", "PAYJOB", false, tc.verb, tc.path, "")
	}
	f.Add("::ffff:10.20.9.1", "sysprog1@[2001:db8::1]:22", true, "SITE", "/", "DUMP")
	p := loadZonePolicy(f)
	plain := mustLoad(f, loginPolicy)
	f.Fuzz(func(t *testing.T, from, user string, tls bool, verb, upath, arg string) {
		addr, _ := netip.ParseAddr(from)
		for _, pol := range []*Policy{p, plain, nil} {
			req := LoginRequest{Client: addr, User: user, TLS: tls}
			d := pol.Login(req)
			if d.Rule == "" || d.Reason == "" {
				t.Fatalf("Login(%+v) = %+v; want a rule and a reason", req, d)
			}
			if d.Allow != (d.Action != ActionBlock) || d.Action == "" {
				t.Fatalf("Login(%+v) allow %v with action %q", req, d.Allow, d.Action)
			}
			if d.Allow && (d.Upstream.Host == "" || d.Upstream.Port < 1 || d.Upstream.Scheme == "") {
				t.Fatalf("Login(%+v) allowed without a partner: %+v", req, d)
			}
			if d.Insecure && (!d.Allow || d.Action != ActionWarn || d.Upstream.Scheme != "ftp") {
				t.Fatalf("Login(%+v) insecure outside a warn rule: %+v", req, d)
			}
			if !d.Allow && d.Route != nil {
				t.Fatalf("Login(%+v) denied with a route", req)
			}
			for _, err := range []error{d.Command(verb, arg), d.Path(verb, upath)} {
				if err == nil {
					if !d.Allow {
						t.Fatalf("%q %q allowed on a refused login", verb, upath)
					}
					continue
				}
				var de *DenyError
				if !errors.As(err, &de) || de.Rule == "" || de.Reason == "" || !errors.Is(err, ErrDenied) {
					t.Fatalf("refusal %#v; want a *DenyError with rule and reason", err)
				}
				switch de.Code {
				case CodeDenied, CodeNameNotAllowed, CodeNotAvailable, CodeNotLoggedIn:
				default:
					t.Fatalf("refusal code %d", de.Code)
				}
				if utf8.ValidString(upath) && len(de.Reason) > 600 {
					t.Fatalf("reason of %d bytes: client text is not clipped", len(de.Reason))
				}
			}
			_ = d.SiteFiletypeAllowed(arg)
			if dp := d.DataPorts(); !d.Allow && dp.Active {
				t.Fatalf("refused login allows PORT")
			}
			if !d.Allow && (d.MaxFileSize() != 0 || d.RequireTLS()) {
				t.Fatalf("refused login has controls")
			}
			e := pol.Explain(req, "")
			if e.Decision.Allow != d.Allow || e.Rule != d.Rule || e.String() == "" {
				t.Fatalf("Explain(%+v) = %+v; Login gave %+v", req, e, d)
			}
		}
	})
}
