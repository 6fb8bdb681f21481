package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// otherUser stands for every user no list names; only rules without users
// or groups match it. It cannot clash with a real name: names never hold
// control characters.
const otherUser = "\x00other"

// Lint looks for parts of a valid policy that can never take effect,
// which are almost always mistakes, and returns one finding per part,
// located at its line and ordered by line:
//
//   - a rule that can never match, because earlier rules match every
//     session it would (first match wins), or because the users lists of
//     its source zones refuse all its users;
//   - a route that no rule lets through (a policy with rules only);
//   - a zone network that can never match, because more specific networks
//     of other zones hold every address in it.
//
// Lint is pure and does no I/O; ftpgate check prints its findings as
// errors. A nil or empty policy has none.
func (p *Policy) Lint() []FieldError {
	if p == nil {
		return nil
	}
	var out []FieldError
	add := func(line int, format string, args ...any) {
		out = append(out, FieldError{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	a := p.atoms()
	for j := range p.rules {
		r := &p.rules[j]
		covering, possible := p.coveredBy(j, a)
		switch {
		case !possible:
			add(r.line, "rule %q can never match: the users lists of its source zones refuse every user it names", r.name)
		case covering != nil:
			verb := "take"
			if len(covering) == 1 {
				verb = "takes"
			}
			add(r.line, "rule %q can never match: %s before it already %s every session it would match (the first match wins)", r.name, describeRules(p, covering), verb)
		}
	}
	if p.hasRules {
		for i := range p.routes {
			if why := p.routeDead(i, a); why != "" {
				add(p.routes[i].Line, "route %q can never be used: %s", p.routes[i].Name, why)
			}
		}
	}
	if z := p.zones; z != nil {
		for _, f := range deadNetworks(z.srcNets, func(i int) string { return z.sources[i].name }) {
			add(f.line, "network %s of source zone %q can never match: more specific networks of zones %s hold every address in it", f.prefix, f.zone, strings.Join(f.others, ", "))
		}
		for _, f := range deadNetworks(z.dstNets, func(i int) string { return z.dests[i].name }) {
			add(f.line, "network %s of destination zone %q can never match: more specific networks of zones %s hold every address in it", f.prefix, f.zone, strings.Join(f.others, ", "))
		}
	}
	slices.SortStableFunc(out, func(x, y FieldError) int { return cmp.Compare(x.Line, y.Line) })
	return out
}

// atoms are the classes of sessions rules can tell apart: every source
// zone and none, every destination zone and none, every user some list
// names and everyone else. A rule matches an atom entirely or not at all,
// so checking each atom checks every session.
type atoms struct {
	from, to, users []string
}

func (p *Policy) atoms() atoms {
	a := atoms{from: []string{""}, to: []string{""}}
	if p.zones != nil {
		for _, s := range p.zones.sources {
			a.from = append(a.from, s.name)
		}
		for _, d := range p.zones.dests {
			a.to = append(a.to, d.name)
		}
	}
	seen := map[string]bool{}
	addSet := func(m map[string]bool) {
		for u := range m {
			if !seen[u] {
				seen[u] = true
				a.users = append(a.users, u)
			}
		}
	}
	for i := range p.rules {
		addSet(p.rules[i].users)
	}
	if p.zones != nil {
		for _, s := range p.zones.sources {
			addSet(s.users)
		}
	}
	slices.Sort(a.users)
	a.users = append(a.users, otherUser)
	return a
}

// zoneAdmits reports whether the users list of source zone name (if it
// has one) lets user in.
func (p *Policy) zoneAdmits(zone, user string) bool {
	if zone == "" || p.zones == nil {
		return true
	}
	for _, s := range p.zones.sources {
		if s.name == zone {
			return !s.hasList || s.users[user]
		}
	}
	return true
}

// coveredBy checks rule j over every atom it matches. possible is false
// when zone users lists refuse every such atom; covering lists the
// earlier rules that take every possible atom, nil when some atom reaches
// rule j.
func (p *Policy) coveredBy(j int, a atoms) (covering []int, possible bool) {
	r := &p.rules[j]
	took := map[int]bool{}
	for _, f := range a.from {
		if !r.matchesFrom(f) {
			continue
		}
		for _, t := range a.to {
			if !r.matchesTo(t) {
				continue
			}
			for _, u := range a.users {
				if !r.matchesUser(u) || !p.zoneAdmits(f, u) {
					continue
				}
				possible = true
				first := -1
				for i := 0; i < j; i++ {
					if p.rules[i].matches(f, t, u) {
						first = i
						break
					}
				}
				if first < 0 {
					return nil, true
				}
				took[first] = true
			}
		}
	}
	if !possible {
		return nil, false
	}
	for i := range took {
		covering = append(covering, i)
	}
	slices.Sort(covering)
	return covering, true
}

func describeRules(p *Policy, idx []int) string {
	var parts []string
	for _, i := range idx {
		parts = append(parts, fmt.Sprintf("%q (line %d)", p.rules[i].name, p.rules[i].line))
	}
	if len(parts) == 1 {
		return "rule " + parts[0]
	}
	return "rules " + strings.Join(parts, ", ")
}

// routeDead tells why no session can use route i, or "" when one can.
func (p *Policy) routeDead(i int, a atoms) string {
	rt := &p.routes[i]
	user := asciiLower(rt.User)
	dest := p.zones.destName(p.routeDest[i])
	scheme := rt.Upstream.Scheme
	var blockers []string
	admitted := false
	for _, f := range a.from {
		if !p.zoneAdmits(f, user) {
			continue
		}
		admitted = true
		r := p.firstRule(f, dest, user)
		switch {
		case r == nil:
			blockers = appendOnce(blockers, "no rule matches")
		case r.action == ActionBlock:
			blockers = appendOnce(blockers, fmt.Sprintf("rule %q blocks", r.name))
		case !r.allowsScheme(scheme):
			blockers = appendOnce(blockers, fmt.Sprintf("rule %q does not allow %s", r.name, scheme))
		case rt.Auth == AuthLocal && rt.PasswordBcrypt == "" && p.userFiles[p.ruleUsersFile(r)][user] == "":
			blockers = appendOnce(blockers, fmt.Sprintf("rule %q's local_users_file %s has no entry for the user", r.name, p.ruleUsersFile(r)))
		default:
			return ""
		}
	}
	if !admitted {
		return fmt.Sprintf("the users list of every source zone refuses user %q", rt.User)
	}
	return fmt.Sprintf("for user %q to destination zone %s, from every source zone: %s", rt.User, zoneText(dest), strings.Join(blockers, ", "))
}

// ruleUsersFile is the local_users_file that applies under r.
func (p *Policy) ruleUsersFile(r *rule) string {
	if r.usersFile != "" {
		return r.usersFile
	}
	return p.usersFile
}

func (p *Policy) firstRule(zone, dest, user string) *rule {
	for i := range p.rules {
		if p.rules[i].matches(zone, dest, user) {
			return &p.rules[i]
		}
	}
	return nil
}

func appendOnce(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

type deadNet struct {
	prefix netip.Prefix
	zone   string
	line   int
	others []string
}

// deadNetworks finds the networks every address of which is in a more
// specific network of another zone.
func deadNetworks(nets []zoneNet, name func(int) string) []deadNet {
	var out []deadNet
	for _, n := range nets {
		var inner []zoneNet
		for _, m := range nets {
			if m.zone != n.zone && m.prefix.Bits() > n.prefix.Bits() && n.prefix.Overlaps(m.prefix) {
				inner = append(inner, m)
			}
		}
		if len(inner) == 0 || !covered(n.prefix, inner) {
			continue
		}
		var others []string
		for _, m := range inner {
			others = appendOnce(others, fmt.Sprintf("%q", name(m.zone)))
		}
		out = append(out, deadNet{prefix: n.prefix, zone: name(n.zone), line: n.line, others: others})
	}
	return out
}

// covered reports whether the union of nets holds every address of p.
// It halves p where nets only partly cover it; each net ends the descent
// within its own prefix length, so the work is bounded by len(nets) times
// the address length.
func covered(p netip.Prefix, nets []zoneNet) bool {
	var overlapping []zoneNet
	for _, m := range nets {
		if m.prefix.Bits() <= p.Bits() && m.prefix.Contains(p.Addr()) {
			return true
		}
		if p.Overlaps(m.prefix) {
			overlapping = append(overlapping, m)
		}
	}
	if len(overlapping) == 0 || p.Bits() >= p.Addr().BitLen() {
		return false
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hiAddr := p.Addr().AsSlice()
	bit := p.Bits()
	hiAddr[bit/8] |= 0x80 >> (bit % 8)
	ha, _ := netip.AddrFromSlice(hiAddr)
	hi := netip.PrefixFrom(ha, p.Bits()+1)
	return covered(lo, overlapping) && covered(hi, overlapping)
}
