package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	p := loadZonePolicy(t)
	tests := []struct {
		name   string
		from   string
		user   string
		to     string
		tls    bool
		zone   string
		dest   string
		route  string
		rule   string
		action string
		lines  []string // pieces of String(), in order
	}{
		{
			name: "explain names zone, route, destination, rule and controls", from: "10.20.1.5", user: "PAYJOB",
			zone: "batch", dest: "payhost", route: "payroll", rule: "payroll", action: ActionUpgrade,
			lines: []string{
				`login        USER "PAYJOB" from 10.20.1.5, control connection not protected`,
				"zone         batch (network 10.20.0.0/16)",
				"route        payroll",
				"destination  sftp.pay.partner.example: zone payhost (sftp.pay.partner.example)",
				"  1. dmz-blocked (line 56, block): no: from [dmz] does not include source zone \"batch\"",
				"  4. payroll (line 72, upgrade): matches",
				"decision     allow by payroll, action upgrade",
				"partner      sftp://payuser@sftp.pay.partner.example:22/inbound/pay (auth local)",
				"controls     never DELE, RMD, SITE CHMOD; paths /inbound/pay, /outbound; uploads up to 2147483648 bytes; PORT/EPRT rejected; passive ports 50000-50099",
			},
		},
		{
			name: "explain a block names the blocking rule", from: "192.0.2.9", user: "PAYJOB",
			zone: "dmz", dest: "payhost", rule: "dmz-blocked", action: ActionBlock,
			lines: []string{"  1. dmz-blocked (line 56, block): matches", "decision     refuse by dmz-blocked, action block"},
		},
		{
			name: "explain with a partner is a user@host login", from: "10.20.1.5", user: "ops", to: "files.partner.example",
			zone: "batch", dest: "partners", rule: "partners", action: ActionUpgrade,
			lines: []string{`USER "ops@files.partner.example"`, "destination  files.partner.example: zone partners (*.partner.example)", "partner      sftp://ops@files.partner.example:22"},
		},
		{
			name: "explain with an IPv6 partner adds brackets", from: "10.20.1.5", user: "ops", to: "2001:db8::1",
			zone: "batch", rule: RuleUserAtHost, action: ActionBlock,
			lines: []string{`USER "ops@[2001:db8::1]"`, `host "2001:db8::1" is not in user_at_host.allow_hosts`},
		},
		{
			name: "explain notes a route user given with a partner", from: "10.20.1.5", user: "PAYJOB", to: "files.partner.example",
			zone: "batch", dest: "partners", rule: "partners", action: ActionUpgrade,
			lines: []string{`note         "PAYJOB" is also the user of route "payroll"`},
		},
		{
			name: "explain a warn rule says insecure", from: "10.20.1.5", user: "OLDJOB",
			zone: "batch", dest: "legacy", route: "legacy", rule: "legacy-migration", action: ActionWarn,
			lines: []string{"insecure     plain FTP", "read-only"},
		},
		{
			name: "explain a client in no zone", from: "172.16.0.1", user: "TLSJOB", tls: true,
			zone: "", dest: "partners", route: "tlsjob", rule: "tls-only", action: ActionUpgrade,
			lines: []string{"control connection protected (AUTH TLS)", "zone         none: no source zone holds 172.16.0.1", "TLS required"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := p.Explain(LoginRequest{Client: netip.MustParseAddr(tc.from), User: tc.user, TLS: tc.tls}, tc.to)
			if e.Zone != tc.zone || e.DestZone != tc.dest || e.Route != tc.route || e.Rule != tc.rule || e.Action != tc.action {
				t.Errorf("Explain = zone %q, dest %q, route %q, rule %q, action %q; want %q, %q, %q, %q, %q",
					e.Zone, e.DestZone, e.Route, e.Rule, e.Action, tc.zone, tc.dest, tc.route, tc.rule, tc.action)
			}
			s := e.String()
			rest := s
			for _, l := range tc.lines {
				i := strings.Index(rest, l)
				if i < 0 {
					t.Fatalf("String() lacks %q (in order):\n%s", l, s)
				}
				rest = rest[i+len(l):]
			}
		})
	}
}

func TestExplainMatchesLogin(t *testing.T) {
	p := loadZonePolicy(t)
	for _, tc := range ruleLoginTests {
		var addr netip.Addr
		if tc.from != "" {
			addr = netip.MustParseAddr(tc.from)
		}
		req := LoginRequest{Client: addr, User: tc.user, TLS: tc.tls}
		d, e := p.Login(req), p.Explain(req, "")
		if e.Decision.Allow != d.Allow || e.Decision.Rule != d.Rule || e.Decision.Reason != d.Reason {
			t.Errorf("%s: Explain decided %+v; Login %+v", tc.name, e.Decision, d)
		}
	}
}

func TestExplainWithoutRulesOrZones(t *testing.T) {
	p := mustLoad(t, loginPolicy)
	s := p.Explain(LoginRequest{Client: netip.MustParseAddr("192.0.2.1"), User: "alice"}, "").String()
	for _, want := range []string{"zone         none: the policy defines no zones", "decision     allow by alice, action upgrade", "policy without rules"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	var nilPolicy *Policy
	if e := nilPolicy.Explain(LoginRequest{User: "x"}, "h.example"); e.Decision.Allow || e.Rule != RuleUserAtHost {
		t.Errorf("nil policy Explain = %+v; want a refusal", e)
	}
}
