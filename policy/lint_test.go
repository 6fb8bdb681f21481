package policy

import (
	"strings"
	"testing"
)

// lintHead has zones, groups and a route; the cases' rules start at 18.
const lintHead = `version: 1
known_hosts: /k
zones:
  sources:
    a:
      networks: [10.1.0.0/16]
    b:
      networks: [10.2.0.0/16]
      users: [x]
  destinations:
    p:
      hosts: ["*.p.example"]
groups:
  g: [x, y]
routes:
  - user: x
    upstream: sftp://h.p.example
`

var lintTests = []struct {
	name string
	text string
	want []wantErr
}{
	{
		name: "rule after a catch-all can never match",
		text: lintHead + `rules:
  - name: all
    action: upgrade
  - name: late
    from: [a]
    users: [x]
    action: block
`,
		want: []wantErr{{21, `rule "late" can never match: rule "all" (line 19) before it already takes every session`}},
	},
	{
		name: "rule covered by two earlier rules together can never match",
		text: lintHead + `rules:
  - name: from-a
    from: [a]
    action: upgrade
  - name: not-a
    from: [b]
    action: block
  - name: nowhere
    action: block
  - name: ab
    from: [a, b]
    action: block
`,
		want: []wantErr{{27, `rule "ab" can never match: rules "from-a" (line 19), "not-a" (line 22) before it`}},
	},
	{
		name: "an earlier rule that only overlaps hides nothing",
		text: lintHead + `rules:
  - name: x-from-a
    from: [a]
    users: [x]
    action: upgrade
  - name: g-from-a
    from: [a]
    groups: [g]
    action: upgrade
`,
	},
	{
		name: "earlier rule for a group hides a later rule for one member",
		text: lintHead + `rules:
  - name: group
    groups: [g]
    action: upgrade
  - name: member
    users: [Y]
    action: block
`,
		want: []wantErr{{22, `rule "member" can never match: rule "group" (line 19)`}},
	},
	{
		name: "rule whose source zone refuses all its users can never match",
		text: lintHead + `rules:
  - name: y-from-b
    from: [b]
    users: [y]
    action: upgrade
  - name: rest
    action: upgrade
`,
		want: []wantErr{{19, `rule "y-from-b" can never match: the users lists of its source zones refuse every user`}},
	},
	{
		name: "route that every rule blocks can never be used",
		text: lintHead + `rules:
  - name: no-x
    users: [x]
    action: block
  - name: rest
    action: upgrade
`,
		want: []wantErr{{16, `route "x" can never be used: for user "x" to destination zone "p", from every source zone: rule "no-x" blocks`}},
	},
	{
		name: "route whose protocol no rule allows can never be used",
		text: lintHead + `rules:
  - name: ftps-only
    action: upgrade
    protocols: [ftps, ftpes]
`,
		want: []wantErr{{16, `route "x" can never be used: for user "x" to destination zone "p", from every source zone: rule "ftps-only" does not allow sftp`}},
	},
	{
		name: "route no rule matches can never be used",
		text: lintHead + `rules:
  - name: others
    to: [p]
    users: [z]
    action: upgrade
`,
		want: []wantErr{{16, `from every source zone: no rule matches`}},
	},
	{
		name: "network covered by more specific networks of other zones can never match",
		text: `version: 1
zones:
  sources:
    wide:
      networks: [10.0.0.0/24, 10.9.0.0/16]
    low:
      networks: [10.0.0.0/25]
    high:
      networks: [10.0.0.128/26, 10.0.0.192/26]
  destinations:
    d1:
      networks: ["2001:db8::/127"]
    d2:
      networks: ["2001:db8::", "2001:db8::1"]
`,
		want: []wantErr{
			{5, `network 10.0.0.0/24 of source zone "wide" can never match: more specific networks of zones "high", "low" hold every address in it`},
			{12, `network 2001:db8::/127 of destination zone "d1" can never match`},
		},
	},
	{
		name: "partly covered network is fine",
		text: "version: 1\nzones:\n  sources:\n    wide:\n      networks: [10.0.0.0/24]\n    low:\n      networks: [10.0.0.0/25, 10.0.0.128/26]\n",
	},
	{
		name: "policy without rules has no rule findings",
		text: lintHead,
	},
}

func TestLint(t *testing.T) {
	for _, tc := range lintTests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.text)
			got := p.Lint()
			if len(got) != len(tc.want) {
				t.Errorf("Lint() = %d findings; want %d:\n%v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if i >= len(got) {
					break
				}
				if got[i].File != "test.yaml" || got[i].Line != w.line || !strings.Contains(got[i].Msg, w.msg) {
					t.Errorf("finding %d: got %q; want test.yaml:%d: ...%s...", i, got[i].Error(), w.line, w.msg)
				}
			}
		})
	}
}

func TestLintCleanPolicies(t *testing.T) {
	if f := loadZonePolicy(t).Lint(); len(f) != 0 {
		t.Errorf("zonePolicy Lint() = %v; want no findings", f)
	}
	if f := mustLoad(t, loginPolicy).Lint(); len(f) != 0 {
		t.Errorf("loginPolicy Lint() = %v; want no findings", f)
	}
	var p *Policy
	if f := p.Lint(); f != nil {
		t.Errorf("nil Lint() = %v", f)
	}
}

func TestLintRouteWithoutHashUnderItsRule(t *testing.T) {
	text := `version: 1
known_hosts: /k
local_users_file: /top
routes:
  - user: a
    auth: local
    upstream: sftp://u@h
    upstream_password: {env: PW}
rules:
  - name: other-file
    users: [b]
    action: upgrade
    local_users_file: /rule
  - name: rest
    action: upgrade
`
	p := mustLoadFiles(t, text, map[string]string{"/top": fixture(t, "b:HASH\n"), "/rule": fixture(t, "a:HASH\n")})
	got := p.Lint()
	if len(got) != 1 || got[0].Line != 5 || !strings.Contains(got[0].Msg, `rule "rest"'s local_users_file /top has no entry for the user`) {
		t.Errorf("Lint() = %v; want route a at line 5 without an entry under rule rest", got)
	}
}
