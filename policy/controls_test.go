package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// sessions are decisions of zonePolicy (and one of a policy without
// rules) that the control tables ask questions of.
func sessions(t testing.TB) map[string]Decision {
	t.Helper()
	p := loadZonePolicy(t)
	login := func(from, user string) Decision {
		d := p.Login(LoginRequest{Client: netip.MustParseAddr(from), User: user})
		if !d.Allow {
			t.Fatalf("Login(%s, %s) refused: %s", from, user, d.Reason)
		}
		return d
	}
	return map[string]Decision{
		"payroll": login("10.20.1.5", "PAYJOB"),
		"legacy":  login("10.20.1.5", "OLDJOB"),
		"sysprog": login("10.20.9.5", "SYSPROG1"),
		"jes":     login("10.20.1.5", "RPTJOB@files.partner.example"),
		"lab":     login("198.51.100.7", "LABJOB"),
		"plain":   login("10.20.1.5", "ops@files.partner.example"),
		"norules": mustLoad(t, loginPolicy).Login(LoginRequest{User: "alice"}),
		"refused": p.Login(LoginRequest{Client: netip.MustParseAddr("192.0.2.1"), User: "PAYJOB"}),
	}
}

var commandTests = []struct {
	name    string
	session string
	verb    string
	arg     string
	code    int    // 0: allowed
	reason  string // a piece of the reason
}{
	{name: "policy without rules allows every command", session: "norules", verb: "DELE", arg: "x"},
	{name: "policy without rules allows ordinary SITE parameters", session: "norules", verb: "SITE", arg: "LRECL=80 RECFM=FB"},
	{name: "policy without rules refuses SITE FILETYPE=JES", session: "norules", verb: "SITE", arg: "FILETYPE=JES", code: 550, reason: "SITE FILETYPE=JES is not allowed"},
	{name: "policy without rules refuses abbreviated SITE FILE=SQL", session: "norules", verb: "site", arg: "file=sql", code: 550, reason: "FILETYPE=SQL"},
	{name: "policy without rules allows SITE FILETYPE=SEQ", session: "norules", verb: "SITE", arg: "FILETYPE=SEQ"},
	{name: "policy without rules allows PORT", session: "norules", verb: "PORT", arg: "10,0,0,1,4,1"},
	{name: "rule without controls allows STOR", session: "plain", verb: "STOR", arg: "x"},
	{name: "SITE FILETYPE=JES refused by default under a rule", session: "plain", verb: "SITE", arg: "FILETYPE=JES", code: 550, reason: "allow_site_filetype"},
	{name: "SITE FILETYPE=JES allowed by rule", session: "jes", verb: "SITE", arg: "FILETYPE=JES"},
	{name: "SITE FILETYPE=SQL still refused where only JES is allowed", session: "jes", verb: "SITE", arg: "LRECL=80 FILETYPE=SQL", code: 550, reason: "FILETYPE=SQL"},
	{name: "SITE DUMP refused by default", session: "plain", verb: "SITE", arg: "DUMP", code: 550, reason: "allow_site_diagnostics"},
	{name: "SITE DEBUG with options refused by default", session: "payroll", verb: "SITE", arg: "DEBUG=(ALL)", code: 550, reason: "SITE DEBUG"},
	{name: "SITE DEBUG allowed for sysprogs", session: "sysprog", verb: "SITE", arg: "DEBUG=(ALL)"},
	{name: "SITE TRACE refused for sysprogs when not listed", session: "sysprog", verb: "SITE", arg: "TRACE", code: 550},
	{name: "deny list refuses DELE", session: "payroll", verb: "DELE", arg: "x", code: 550, reason: `rule "payroll" (line 72) denies DELE`},
	{name: "deny list covers the X-form alias", session: "payroll", verb: "XRMD", arg: "d", code: 550, reason: "denies RMD"},
	{name: "deny list refuses SITE CHMOD", session: "payroll", verb: "SITE", arg: "CHMOD 644 x", code: 550, reason: "denies SITE CHMOD"},
	{name: "deny list leaves other commands alone", session: "payroll", verb: "STOR", arg: "x"},
	{name: "PORT rejected by rule", session: "payroll", verb: "PORT", arg: "10,20,1,5,200,1", code: 502, reason: "active: false"},
	{name: "EPRT rejected by rule", session: "payroll", verb: "EPRT", arg: "|2|::1|5000|", code: 502},
	{name: "PASV always allowed", session: "payroll", verb: "PASV"},
	{name: "session commands always allowed", session: "lab", verb: "QUIT"},
	{name: "read-only refuses STOR", session: "legacy", verb: "STOR", arg: "x", code: 550, reason: "is read-only: STOR"},
	{name: "read-only refuses APPE", session: "legacy", verb: "APPE", arg: "x", code: 550},
	{name: "read-only refuses RNFR", session: "legacy", verb: "RNFR", arg: "x", code: 550},
	{name: "read-only refuses MFMT", session: "legacy", verb: "MFMT", arg: "20240101000000 x", code: 550},
	{name: "read-only refuses MDTM that sets a time", session: "legacy", verb: "MDTM", arg: "20240101000000 x", code: 550},
	{name: "read-only allows MDTM that asks", session: "legacy", verb: "MDTM", arg: "x"},
	{name: "read-only refuses SITE CHMOD", session: "legacy", verb: "SITE", arg: "CHMOD 600 x", code: 550, reason: "read-only: SITE CHMOD"},
	{name: "read-only allows RETR", session: "legacy", verb: "RETR", arg: "x"},
	{name: "read-only refuses a command the policy does not know", session: "legacy", verb: "XCRC", arg: "x", code: 502},
	{name: "allow list permits a listed verb", session: "lab", verb: "RETR", arg: "x"},
	{name: "allow list refuses an unlisted verb", session: "lab", verb: "STOR", arg: "x", code: 550, reason: "does not list STOR in allow_commands"},
	{name: "allow list permits a listed SITE parameter", session: "lab", verb: "SITE", arg: "LRECL=80"},
	{name: "allow list refuses an unlisted SITE parameter", session: "lab", verb: "SITE", arg: "LRECL=80 RECFM=FB", code: 550, reason: "SITE RECFM"},
	{name: "allow list still allows SITE FILETYPE=SEQ", session: "lab", verb: "SITE", arg: "FILETYPE=SEQ"},
	{name: "allow list refuses an unknown verb with 502", session: "lab", verb: "HASH", arg: "x", code: 502},
	{name: "deny list mode lets an unknown verb through to the proxy", session: "payroll", verb: "HASH", arg: "x"},
	{name: "refused login refuses every command with 530", session: "refused", verb: "NOOP", code: 530},
	{name: "zero decision refuses every command", session: "zero", verb: "RETR", arg: "x", code: 530},
}

func TestCommand(t *testing.T) {
	ss := sessions(t)
	for _, tc := range commandTests {
		t.Run(tc.name, func(t *testing.T) {
			d := ss[tc.session] // "zero" is the zero Decision
			err := d.Command(tc.verb, tc.arg)
			checkDeny(t, "Command("+tc.verb+", "+tc.arg+")", err, d, tc.code, tc.reason)
		})
	}
}

func checkDeny(t *testing.T, what string, err error, d Decision, code int, reason string) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("%s = %v; want nil", what, err)
		}
		return
	}
	var de *DenyError
	if !errors.As(err, &de) {
		t.Fatalf("%s = %v; want a *DenyError with code %d", what, err, code)
	}
	if de.Code != code || !strings.Contains(de.Reason, reason) || de.Rule == "" || !errors.Is(err, ErrDenied) {
		t.Errorf("%s = code %d, rule %q, reason %q; want code %d, a reason containing %q", what, de.Code, de.Rule, de.Reason, code, reason)
	}
	if d.Allow && de.Rule != d.Rule {
		t.Errorf("%s names rule %q; want the session's rule %q", what, de.Rule, d.Rule)
	}
	if code != 530 && !strings.HasPrefix(err.Error(), "policy: command refused by ") {
		t.Errorf("%s error text %q", what, err)
	}
}

var pathTests = []struct {
	name    string
	session string
	verb    string
	path    string
	code    int
	reason  string
}{
	{name: "policy without rules allows every path", session: "norules", verb: "STOR", path: "/etc/passwd"},
	{name: "path equal to a prefix allowed", session: "payroll", verb: "CWD", path: "/inbound/pay"},
	{name: "path under a prefix allowed", session: "payroll", verb: "STOR", path: "/inbound/pay/2024/x.dat"},
	{name: "path under the second prefix allowed", session: "payroll", verb: "RETR", path: "/outbound/x"},
	{name: "path outside prefixes refused with 553 on STOR", session: "payroll", verb: "STOR", path: "/etc/x", code: 553, reason: `path "/etc/x" is outside its paths (/inbound/pay, /outbound)`},
	{name: "path outside prefixes refused with 553 on APPE", session: "payroll", verb: "APPE", path: "/tmp/x", code: 553},
	{name: "path outside prefixes refused with 553 on STOU", session: "payroll", verb: "STOU", path: "/tmp/x", code: 553},
	{name: "path outside prefixes refused with 553 on MKD", session: "payroll", verb: "XMKD", path: "/tmp/d", code: 553},
	{name: "path outside prefixes refused with 553 on RNTO", session: "payroll", verb: "RNTO", path: "/tmp/x", code: 553},
	{name: "path outside prefixes refused with 550 on RETR", session: "payroll", verb: "RETR", path: "/etc/passwd", code: 550},
	{name: "path outside prefixes refused with 550 on RNFR", session: "payroll", verb: "RNFR", path: "/etc/passwd", code: 550},
	{name: "look-alike prefix refused", session: "payroll", verb: "STOR", path: "/inbound/payroll/x", code: 553},
	{name: "dot-dot is cleaned before the check", session: "payroll", verb: "RETR", path: "/inbound/pay/../../etc/passwd", code: 550, reason: `"/etc/passwd"`},
	{name: "dot-dot that stays inside allowed", session: "payroll", verb: "RETR", path: "/inbound/pay/a/../b"},
	{name: "relative path refused", session: "payroll", verb: "RETR", path: "inbound/pay/x", code: 550, reason: "not absolute"},
	{name: "CWD to a parent of a prefix allowed", session: "payroll", verb: "CWD", path: "/inbound"},
	{name: "CDUP to the root allowed", session: "payroll", verb: "CDUP", path: "/"},
	{name: "LIST of a parent of a prefix refused", session: "payroll", verb: "LIST", path: "/inbound", code: 550},
	{name: "CWD beside a prefix refused", session: "payroll", verb: "CWD", path: "/inbox", code: 550},
	{name: "read-only refuses STOR whatever the path", session: "legacy", verb: "STOR", path: "/in/x", code: 550, reason: "read-only"},
	{name: "read-only refuses DELE", session: "legacy", verb: "DELE", path: "/in/x", code: 550},
	{name: "read-only refuses SITE CHMOD", session: "legacy", verb: "SITE CHMOD", path: "/in/x", code: 550},
	{name: "read-only allows RETR anywhere without paths", session: "legacy", verb: "RETR", path: "/in/x"},
	{name: "refused login refuses every path with 530", session: "refused", verb: "RETR", path: "/", code: 530},
}

func TestPath(t *testing.T) {
	ss := sessions(t)
	for _, tc := range pathTests {
		t.Run(tc.name, func(t *testing.T) {
			d := ss[tc.session]
			checkDeny(t, "Path("+tc.verb+", "+tc.path+")", d.Path(tc.verb, tc.path), d, tc.code, tc.reason)
		})
	}
}

func TestSessionControls(t *testing.T) {
	ss := sessions(t)
	tests := []struct {
		name       string
		session    string
		ports      DataPortRules
		maxSize    int64
		requireTLS bool
		filetypes  []string // allowed, of SEQ JES SQL FOO
	}{
		{name: "policy without rules keeps the proxy's defaults", session: "norules",
			ports: DataPortRules{Active: true}, filetypes: []string{"SEQ"}},
		{name: "rule defaults protect PORT and EPRT", session: "plain",
			ports: DataPortRules{Active: true}, filetypes: []string{"SEQ"}},
		{name: "PORT rejected and passive range by rule", session: "payroll",
			ports: DataPortRules{PassivePorts: PortRange{50000, 50099}}, maxSize: 2 << 30, filetypes: []string{"SEQ"}},
		{name: "foreign address and low ports allowed by rule", session: "lab",
			ports: DataPortRules{Active: true, ForeignAddress: true, LowPorts: true}, filetypes: []string{"SEQ"}},
		{name: "SITE FILETYPE=JES allowed by rule", session: "jes",
			ports: DataPortRules{Active: true}, filetypes: []string{"SEQ", "JES"}},
		{name: "refused login allows nothing", session: "refused", filetypes: []string{"SEQ"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ss[tc.session]
			if got := d.DataPorts(); got != tc.ports {
				t.Errorf("DataPorts() = %+v; want %+v", got, tc.ports)
			}
			if got := d.MaxFileSize(); got != tc.maxSize {
				t.Errorf("MaxFileSize() = %d; want %d", got, tc.maxSize)
			}
			if got := d.RequireTLS(); got != tc.requireTLS {
				t.Errorf("RequireTLS() = %v; want %v", got, tc.requireTLS)
			}
			for _, ft := range []string{"SEQ", "seq", "JES", "SQL", "FOO", ""} {
				want := false
				for _, a := range tc.filetypes {
					want = want || strings.EqualFold(a, ft)
				}
				if got := d.SiteFiletypeAllowed(ft); got != want {
					t.Errorf("SiteFiletypeAllowed(%q) = %v; want %v", ft, got, want)
				}
			}
		})
	}
	tls := loadZonePolicy(t).Login(LoginRequest{Client: netip.MustParseAddr("10.20.1.5"), User: "TLSJOB", TLS: true})
	if !tls.RequireTLS() {
		t.Errorf("RequireTLS() = false under require_tls: true")
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"100MiB", 100 << 20, true},
		{"100mb", 100e6, true},
		{"2 GB", 2e9, true},
		{"512K", 512 << 10, true},
		{"1TiB", 1 << 40, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"1.5GB", 0, false},
		{"10 parsecs", 0, false},
		{"9999999999TB", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, msg := parseSize(tc.in)
		if (msg == "") != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %q; want %d, ok %v", tc.in, got, msg, tc.want, tc.ok)
		}
	}
}
