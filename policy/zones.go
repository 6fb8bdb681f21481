package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// AnyZone in a rule's from or to list matches every zone, and also a
// client or partner that is in no zone.
const AnyZone = "any"

// sourceZone is one compiled zones.sources entry.
type sourceZone struct {
	name     string
	line     int
	networks []netip.Prefix
	// users is the allowed users list (ASCII-lower-cased, groups
	// expanded); nil means every user may log in from the zone.
	users   map[string]bool
	listed  []string // users and "group:" entries as written, for Explain
	hasList bool
}

// destZone is one compiled zones.destinations entry.
type destZone struct {
	name string
	line int
}

// zoneNet is one network of a zone, for longest-prefix matching.
type zoneNet struct {
	prefix netip.Prefix
	zone   int // index into sources or dests
	line   int
}

// zoneHost is one host-name pattern of a destination zone.
type zoneHost struct {
	glob    string // lower-case path.Match pattern
	literal int    // characters that are not pattern characters
	exact   bool   // no pattern characters at all
	zone    int
	line    int
}

// zoneTable is the compiled zones section. Matching follows NETACCESS: an
// address belongs to the zone of the longest prefix that holds it, so a
// /32 carved out of a /24 is its own zone.
type zoneTable struct {
	sources []sourceZone
	srcNets []zoneNet // longest prefix first
	dests   []destZone
	dstNets []zoneNet // longest prefix first
	// dstHosts are tried most specific first: exact names, then patterns
	// with more literal characters; ties go to the zone written first.
	dstHosts []zoneHost
}

// sourceZoneOf returns the index of the client's source zone and the
// network that put it there, or -1. IPv4-mapped IPv6 is unmapped first.
func (z *zoneTable) sourceZoneOf(a netip.Addr) (int, netip.Prefix) {
	if z == nil || !a.IsValid() {
		return -1, netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	for _, n := range z.srcNets {
		if n.prefix.Contains(a) {
			return n.zone, n.prefix
		}
	}
	return -1, netip.Prefix{}
}

// destZoneOf returns the index of the destination zone of a partner given
// as an address (matched against networks) or a lower-case host name
// (matched against host patterns; names are never resolved), or -1, with
// the entry that matched.
func (z *zoneTable) destZoneOf(a netip.Addr, host string) (int, string) {
	if z == nil {
		return -1, ""
	}
	if a.IsValid() {
		a = a.Unmap().WithZone("")
		for _, n := range z.dstNets {
			if n.prefix.Contains(a) {
				return n.zone, n.prefix.String()
			}
		}
		return -1, ""
	}
	if host == "" {
		return -1, ""
	}
	host = asciiLower(host)
	for _, h := range z.dstHosts {
		if ok, err := path.Match(h.glob, host); ok && err == nil {
			return h.zone, h.glob
		}
	}
	return -1, ""
}

func (z *zoneTable) sourceName(i int) string {
	if i < 0 {
		return ""
	}
	return z.sources[i].name
}

func (z *zoneTable) destName(i int) string {
	if i < 0 {
		return ""
	}
	return z.dests[i].name
}

// keyLine is a mapping key with its line.
type keyLine struct {
	key  string
	line int
}

// mapKeys returns the scalar keys of mapping n in file order.
func mapKeys(n *yaml.Node) []keyLine {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var ks []keyLine
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode {
			ks = append(ks, keyLine{k.Value, k.Line})
		}
	}
	return ks
}

// validName reports whether s can name a zone, a group or a rule: ASCII
// letters, digits, '_', '-' and '.', starting with a letter or digit, at
// most 64 bytes. Names show up in logs and metric labels.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

const nameRules = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 characters"

// groupTable maps group names to their members, ASCII-lower-cased.
type groupTable map[string][]string

func (l *loader) compileGroups(raw map[string]field[[]field[string]], node *yaml.Node) groupTable {
	g := make(groupTable)
	for _, k := range mapKeys(node) {
		f, ok := raw[k.key]
		if !ok {
			continue
		}
		switch {
		case !validName(k.key):
			l.errorf(k.line, "group name %q is not valid: use %s", k.key, nameRules)
			continue
		case k.key == AnyZone:
			l.errorf(k.line, "group name %q is reserved", k.key)
			continue
		}
		if f.Bad {
			continue
		}
		members := []string{}
		seen := map[string]int{}
		for _, u := range f.V {
			if u.Bad {
				continue
			}
			if msg := checkUserEntry(u.V); msg != "" {
				l.errorf(u.Line, "group %q: user %q %s", k.key, u.V, msg)
				continue
			}
			key := asciiLower(u.V)
			if first, dup := seen[key]; dup {
				l.errorf(u.Line, "group %q: user %q is listed twice (first at line %d; users are matched without regard to case)", k.key, u.V, first)
				continue
			}
			seen[key] = u.Line
			members = append(members, key)
		}
		if len(f.V) == 0 {
			l.errorf(k.line, "group %q is empty; list its users or remove it", k.key)
		}
		g[k.key] = members
	}
	return g
}

// checkUserEntry validates a user name in a users or groups list.
func checkUserEntry(u string) string {
	switch {
	case u == "":
		return "is empty"
	case hasControl(u):
		return "contains control characters"
	}
	return ""
}

// userSet compiles a users list and a groups list into one set of
// ASCII-lower-cased names. what names the owner for messages. It returns
// the set, the entries as written (groups as "group:NAME") and whether
// either list was given.
func (l *loader) userSet(users, groups *field[[]field[string]], gt groupTable, what string) (map[string]bool, []string, bool) {
	if !users.Set && !groups.Set {
		return nil, nil, false
	}
	set := map[string]bool{}
	var listed []string
	seen := map[string]int{}
	if users.ok() {
		for _, u := range users.V {
			if u.Bad {
				continue
			}
			if msg := checkUserEntry(u.V); msg != "" {
				l.errorf(u.Line, "%s: user %q %s", what, u.V, msg)
				continue
			}
			key := asciiLower(u.V)
			if first, dup := seen[key]; dup {
				l.errorf(u.Line, "%s: user %q is listed twice (first at line %d; users are matched without regard to case)", what, u.V, first)
				continue
			}
			seen[key] = u.Line
			set[key] = true
			listed = append(listed, u.V)
		}
		if len(users.V) == 0 {
			l.errorf(users.Line, "%s: users is empty; list users or remove the key (no key means every user)", what)
		}
	}
	if groups.ok() {
		gseen := map[string]bool{}
		for _, g := range groups.V {
			if g.Bad {
				continue
			}
			members, ok := gt[g.V]
			switch {
			case !ok:
				l.errorf(g.Line, "%s: group %q is not defined under groups", what, g.V)
				continue
			case gseen[g.V]:
				l.errorf(g.Line, "%s: group %q is listed twice", what, g.V)
				continue
			}
			gseen[g.V] = true
			for _, m := range members {
				set[m] = true
			}
			listed = append(listed, "group:"+g.V)
		}
		if len(groups.V) == 0 {
			l.errorf(groups.Line, "%s: groups is empty; list groups or remove the key", what)
		}
	}
	return set, listed, true
}

// compileZones compiles the zones section. node is the zones mapping.
func (l *loader) compileZones(raw *rawZones, node *yaml.Node, gt groupTable) *zoneTable {
	z := &zoneTable{}
	if raw == nil {
		return z
	}
	srcNode, dstNode := mapValue(node, "sources"), mapValue(node, "destinations")
	names := map[string]int{} // every zone name -> line, for clashes

	type netOwner struct {
		zone string
		line int
	}
	srcSeen := map[netip.Prefix]netOwner{}
	for _, k := range mapKeys(srcNode) {
		rz, ok := raw.Sources[k.key]
		if !ok || !l.zoneName(k, names, "source") {
			continue
		}
		label := fmt.Sprintf("source zone %q", k.key)
		sz := sourceZone{name: k.key, line: k.line}
		idx := len(z.sources)
		for _, n := range l.networks(&rz.Networks, label) {
			if o, dup := srcSeen[n.prefix]; dup {
				if o.zone == k.key {
					l.errorf(n.line, "%s: network %s is listed twice (first at line %d)", label, n.prefix, o.line)
				} else {
					l.errorf(n.line, "%s: network %s is already in source zone %q at line %d; an address belongs to exactly one zone", label, n.prefix, o.zone, o.line)
				}
				continue
			}
			srcSeen[n.prefix] = netOwner{k.key, n.line}
			n.zone = idx
			sz.networks = append(sz.networks, n.prefix)
			z.srcNets = append(z.srcNets, n)
		}
		if !rz.Networks.Set {
			l.errorf(k.line, "%s: networks is required (CIDR prefixes or addresses, IPv4 or IPv6)", label)
		}
		sz.users, sz.listed, sz.hasList = l.userSet(&rz.Users, &rz.Groups, gt, label)
		z.sources = append(z.sources, sz)
	}

	dstSeen := map[netip.Prefix]netOwner{}
	hostSeen := map[string]netOwner{}
	for _, k := range mapKeys(dstNode) {
		rz, ok := raw.Destinations[k.key]
		if !ok || !l.zoneName(k, names, "destination") {
			continue
		}
		label := fmt.Sprintf("destination zone %q", k.key)
		idx := len(z.dests)
		for _, n := range l.networks(&rz.Networks, label) {
			if o, dup := dstSeen[n.prefix]; dup {
				if o.zone == k.key {
					l.errorf(n.line, "%s: network %s is listed twice (first at line %d)", label, n.prefix, o.line)
				} else {
					l.errorf(n.line, "%s: network %s is already in destination zone %q at line %d; a partner belongs to exactly one zone", label, n.prefix, o.zone, o.line)
				}
				continue
			}
			dstSeen[n.prefix] = netOwner{k.key, n.line}
			n.zone = idx
			z.dstNets = append(z.dstNets, n)
		}
		if rz.Hosts.ok() {
			for _, h := range rz.Hosts.V {
				if h.Bad {
					continue
				}
				m, msg := compileHostPattern(h.V)
				switch {
				case msg != "":
					l.errorf(h.Line, "%s: hosts entry %q: %s", label, h.V, msg)
					continue
				case m.prefix.IsValid():
					l.errorf(h.Line, "%s: hosts entry %q is an address; list addresses and CIDR prefixes under networks", label, h.V)
					continue
				}
				if o, dup := hostSeen[m.glob]; dup {
					if o.zone == k.key {
						l.errorf(h.Line, "%s: host pattern %q is listed twice (first at line %d)", label, h.V, o.line)
					} else {
						l.errorf(h.Line, "%s: host pattern %q is already in destination zone %q at line %d", label, h.V, o.zone, o.line)
					}
					continue
				}
				hostSeen[m.glob] = netOwner{k.key, h.Line}
				lit := 0
				for i := 0; i < len(m.glob); i++ {
					if !strings.ContainsRune("*?[]^\\", rune(m.glob[i])) {
						lit++
					}
				}
				z.dstHosts = append(z.dstHosts, zoneHost{glob: m.glob, literal: lit, exact: lit == len(m.glob), zone: idx, line: h.Line})
			}
			if len(rz.Hosts.V) == 0 {
				l.errorf(rz.Hosts.Line, "%s: hosts is empty; list host names or patterns, or remove the key", label)
			}
		}
		if !rz.Networks.Set && !rz.Hosts.Set {
			l.errorf(k.line, "%s: give networks (CIDR prefixes, addresses) or hosts (names, patterns such as \"*.partner.example\")", label)
		}
		z.dests = append(z.dests, destZone{name: k.key, line: k.line})
	}

	longestFirst := func(a, b zoneNet) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) }
	slices.SortStableFunc(z.srcNets, longestFirst)
	slices.SortStableFunc(z.dstNets, longestFirst)
	slices.SortStableFunc(z.dstHosts, func(a, b zoneHost) int {
		if a.exact != b.exact {
			if a.exact {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.literal, a.literal)
	})
	return z
}

// zoneName checks a zone name and that no other zone has it.
func (l *loader) zoneName(k keyLine, names map[string]int, kind string) bool {
	switch {
	case k.key == AnyZone:
		l.errorf(k.line, "%s zone name %q is reserved: in a rule it means every zone", kind, k.key)
		return false
	case !validName(k.key):
		l.errorf(k.line, "%s zone name %q is not valid: use %s", kind, k.key, nameRules)
		return false
	}
	if first, dup := names[k.key]; dup {
		l.errorf(k.line, "zone name %q is already used at line %d; source and destination zones share one name space", k.key, first)
		return false
	}
	names[k.key] = k.line
	return true
}

// networks compiles a list of CIDR prefixes and addresses.
func (l *loader) networks(f *field[[]field[string]], label string) []zoneNet {
	if !f.ok() {
		return nil
	}
	if len(f.V) == 0 {
		l.errorf(f.Line, "%s: networks is empty", label)
	}
	var out []zoneNet
	for _, e := range f.V {
		if e.Bad {
			continue
		}
		p, msg := parseNetwork(e.V)
		if msg != "" {
			l.errorf(e.Line, "%s: network %q %s", label, e.V, msg)
			continue
		}
		out = append(out, zoneNet{prefix: p, line: e.Line})
	}
	return out
}

// parseNetwork parses a CIDR prefix or a single address (IPv6 optionally
// in brackets). Host bits must be zero: "10.1.2.3/8" is more likely a typo
// than a wish for 10.0.0.0/8.
func parseNetwork(s string) (netip.Prefix, string) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			return p, "is not a CIDR prefix or an address"
		case p.Addr().Is4In6():
			return p, "is IPv4-mapped; write it in IPv4 form (clients are matched unmapped)"
		case p.Masked() != p:
			return p, fmt.Sprintf("has bits set beyond the prefix length; did you mean %s?", p.Masked())
		}
		return p, ""
	}
	a := s
	if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
		a = a[1 : len(a)-1]
	}
	addr, err := netip.ParseAddr(a)
	switch {
	case err != nil:
		return netip.Prefix{}, "is not a CIDR prefix or an address"
	case addr.Zone() != "":
		return netip.Prefix{}, "has an IPv6 zone; zones are not supported"
	case addr.Is4In6():
		return netip.Prefix{}, "is IPv4-mapped; write it in IPv4 form (clients are matched unmapped)"
	}
	return netip.PrefixFrom(addr, addr.BitLen()), ""
}
