package policy

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// rule is one compiled entry of the rules section.
type rule struct {
	name string
	line int
	// from and to hold zone names; nil means any zone, including none.
	from, to []string
	// users holds ASCII-lower-cased names (groups expanded); nil means
	// any user.
	users  map[string]bool
	listed []string // users and "group:" entries as written
	action string

	// upgrade and warn rules only.
	protocols []string // allowed upstream schemes, "ftp" only via plainFTP
	uahScheme string   // scheme of user@host sessions
	plainFTP  bool
	usersFile string // local_users_file; "" means the policy's
	ctl       controls
}

func (r *rule) matchesFrom(zone string) bool {
	return r.from == nil || zone != "" && slices.Contains(r.from, zone)
}

func (r *rule) matchesTo(zone string) bool {
	return r.to == nil || zone != "" && slices.Contains(r.to, zone)
}

func (r *rule) matchesUser(ident string) bool {
	return r.users == nil || r.users[ident]
}

// allowsScheme reports whether an upgrade or warn rule lets a session go
// to a partner with this scheme.
func (r *rule) allowsScheme(s string) bool {
	if s == "ftp" {
		return r.plainFTP
	}
	return slices.Contains(r.protocols, s)
}

// matches reports whether the rule matches a session from source zone
// zone to destination zone dest by user ident (ASCII-lower-cased).
func (r *rule) matches(zone, dest, ident string) bool {
	return r.matchesFrom(zone) && r.matchesTo(dest) && r.matchesUser(ident)
}

// why tells why a rule does not match, or "" when it does.
func (r *rule) why(zone, dest, ident string) string {
	switch {
	case !r.matchesFrom(zone):
		return fmt.Sprintf("from %s does not include source zone %s", listText(r.from), zoneText(zone))
	case !r.matchesTo(dest):
		return fmt.Sprintf("to %s does not include destination zone %s", listText(r.to), zoneText(dest))
	case !r.matchesUser(ident):
		return fmt.Sprintf("users %s do not include %q", listText(r.listed), ident)
	}
	return ""
}

func listText(l []string) string {
	if l == nil {
		return "[any]"
	}
	return "[" + strings.Join(l, ", ") + "]"
}

func zoneText(z string) string {
	if z == "" {
		return "(none)"
	}
	return strconv.Quote(z)
}

// secureSchemes are the protocols an upgrade may use, in the order
// protocols defaults to.
var secureSchemes = []string{"sftp", "ftps", "ftpes"}

func (l *loader) compileRules(raws []rawRule, items []*yaml.Node, z *zoneTable, gt groupTable, p *Policy) []rule {
	var rules []rule
	names := map[string]int{}
	srcNames, dstNames := map[string]bool{}, map[string]bool{}
	for _, s := range z.sources {
		srcNames[s.name] = true
	}
	for _, d := range z.dests {
		dstNames[d.name] = true
	}
	for i := range raws {
		line, dpLine := 0, 0
		if i < len(items) {
			line = items[i].Line
			if k := mapKey(items[i], "data_ports"); k != nil {
				dpLine = k.Line
			}
		}
		r, ok := l.compileRule(&raws[i], line, dpLine, srcNames, dstNames, gt, p)
		if r.name != "" {
			if first, dup := names[r.name]; dup {
				l.errorf(raws[i].Name.Line, "rule name %q is already used by the rule at line %d", r.name, first)
				ok = false
			} else {
				names[r.name] = line
			}
		}
		if ok {
			rules = append(rules, r)
		}
	}
	return rules
}

func (l *loader) compileRule(raw *rawRule, line, dpLine int, srcNames, dstNames map[string]bool, gt groupTable, p *Policy) (rule, bool) {
	nerr := len(l.errs)
	r := rule{line: line}
	switch {
	case raw.Name.Bad:
	case !raw.Name.Set:
		l.errorf(line, "rule: name is required; it names the rule in logs, records and ftpgate check")
	case reservedRuleNames[raw.Name.V]:
		l.errorf(raw.Name.Line, "rule name %q is reserved", raw.Name.V)
	case !validName(raw.Name.V):
		l.errorf(raw.Name.Line, "rule name %q is not valid: use %s", raw.Name.V, nameRules)
	default:
		r.name = raw.Name.V
	}
	label := "rule"
	if r.name != "" {
		label = "rule " + strconv.Quote(r.name)
	}

	r.from = l.zoneRefs(&raw.From, "from", "source", srcNames, label)
	r.to = l.zoneRefs(&raw.To, "to", "destination", dstNames, label)
	r.users, r.listed, _ = l.userSet(&raw.Users, &raw.Groups, gt, label)

	switch {
	case raw.Action.Bad:
	case !raw.Action.Set:
		l.errorf(line, "%s: action is required: upgrade, block or warn", label)
	case raw.Action.V == ActionUpgrade, raw.Action.V == ActionBlock, raw.Action.V == ActionWarn:
		r.action = raw.Action.V
	default:
		l.errorf(raw.Action.Line, "%s: action %q is not valid; want upgrade, block or warn", label, raw.Action.V)
	}

	if r.action == ActionBlock {
		l.noOptions(raw, label, dpLine)
		return r, len(l.errs) == nerr
	}

	r.plainFTP = raw.PlainFTP.ok() && raw.PlainFTP.V
	switch {
	case r.action == ActionWarn && raw.PlainFTP.ok() && !raw.PlainFTP.V:
		l.errorf(raw.PlainFTP.Line, "%s: a warn rule exists to let plain FTP through; set plain_ftp: true, or use action: upgrade", label)
	case r.action == ActionWarn && !raw.PlainFTP.Set:
		l.errorf(line, "%s: action warn needs plain_ftp: true, to say in so many words that sessions may go to ftp:// partners in clear text; otherwise use action: upgrade", label)
	case r.action == ActionUpgrade && raw.PlainFTP.Set:
		l.errorf(raw.PlainFTP.Line, "%s: plain_ftp is only allowed with action: warn, the migration mode that marks every record insecure", label)
		r.plainFTP = false
	}

	r.protocols = slices.Clone(secureSchemes)
	if raw.Protocols.ok() {
		r.protocols = nil
		for _, e := range raw.Protocols.V {
			if e.Bad {
				continue
			}
			s := asciiLower(e.V)
			switch {
			case s == "ftp":
				l.errorf(e.Line, "%s: protocols: plain ftp is not listed here; it needs action: warn with plain_ftp: true", label)
			case !slices.Contains(secureSchemes, s):
				l.errorf(e.Line, "%s: protocols: %q is not valid; want sftp, ftps or ftpes", label, e.V)
			case slices.Contains(r.protocols, s):
				l.errorf(e.Line, "%s: protocols: %q is listed twice", label, e.V)
			default:
				r.protocols = append(r.protocols, s)
			}
		}
		if len(raw.Protocols.V) == 0 {
			l.errorf(raw.Protocols.Line, "%s: protocols is empty; list sftp, ftps or ftpes, or remove the key to allow all three", label)
		}
	}

	switch {
	case raw.UserAtHostScheme.Bad:
	case raw.UserAtHostScheme.Set:
		s := asciiLower(raw.UserAtHostScheme.V)
		switch {
		case s == "ftp" && !r.plainFTP:
			l.errorf(raw.UserAtHostScheme.Line, "%s: user_at_host_scheme ftp needs action: warn with plain_ftp: true", label)
		case s == "ftp":
			r.uahScheme = s
		case !slices.Contains(secureSchemes, s):
			l.errorf(raw.UserAtHostScheme.Line, "%s: user_at_host_scheme %q is not valid; want sftp, ftps, ftpes (or ftp under a warn rule)", label, raw.UserAtHostScheme.V)
		case !slices.Contains(r.protocols, s) && len(r.protocols) > 0:
			l.errorf(raw.UserAtHostScheme.Line, "%s: user_at_host_scheme %s is not among its protocols %v", label, s, r.protocols)
		default:
			r.uahScheme = s
		}
	case slices.Contains(r.protocols, "sftp"):
		r.uahScheme = "sftp"
	case len(r.protocols) > 0:
		r.uahScheme = r.protocols[0]
	}

	if raw.LocalUsersFile.ok() {
		r.usersFile = l.usersFile(&raw.LocalUsersFile, label, p)
	}

	r.ctl = l.compileControls(raw, r.name, line, label)
	return r, len(l.errs) == nerr
}

// noOptions reports the upgrade and warn options on a block rule.
func (l *loader) noOptions(raw *rawRule, label string, dpLine int) {
	for _, k := range []struct {
		set  bool
		line int
		key  string
	}{
		{raw.Protocols.Set, raw.Protocols.Line, "protocols"},
		{raw.UserAtHostScheme.Set, raw.UserAtHostScheme.Line, "user_at_host_scheme"},
		{raw.PlainFTP.Set, raw.PlainFTP.Line, "plain_ftp"},
		{raw.LocalUsersFile.Set, raw.LocalUsersFile.Line, "local_users_file"},
		{raw.RequireTLS.Set, raw.RequireTLS.Line, "require_tls"},
		{raw.ReadOnly.Set, raw.ReadOnly.Line, "read_only"},
		{raw.AllowCommands.Set, raw.AllowCommands.Line, "allow_commands"},
		{raw.DenyCommands.Set, raw.DenyCommands.Line, "deny_commands"},
		{raw.AllowSiteFiletype.Set, raw.AllowSiteFiletype.Line, "allow_site_filetype"},
		{raw.AllowSiteDiagnostics.Set, raw.AllowSiteDiagnostics.Line, "allow_site_diagnostics"},
		{raw.Paths.Set, raw.Paths.Line, "paths"},
		{raw.MaxFileSize.Set, raw.MaxFileSize.Line, "max_file_size"},
		{raw.DataPorts != nil, dpLine, "data_ports"},
	} {
		if k.set {
			l.errorf(k.line, "%s: %s has no meaning with action: block, which refuses the login", label, k.key)
		}
	}
}

// zoneRefs compiles a from or to list: zone names, or "any".
func (l *loader) zoneRefs(f *field[[]field[string]], key, kind string, known map[string]bool, label string) []string {
	if !f.ok() {
		return nil
	}
	if len(f.V) == 0 {
		l.errorf(f.Line, "%s: %s is empty; name %s zones, or remove the key (or write [any]) to match every zone", label, key, kind)
		return nil
	}
	var out []string
	anyLine := 0
	for _, e := range f.V {
		if e.Bad {
			continue
		}
		switch {
		case e.V == AnyZone:
			anyLine = e.Line
		case !known[e.V]:
			l.errorf(e.Line, "%s: %s: %s zone %q is not defined under zones.%s", label, key, kind, e.V, map[string]string{"source": "sources", "destination": "destinations"}[kind])
		case slices.Contains(out, e.V):
			l.errorf(e.Line, "%s: %s: zone %q is listed twice", label, key, e.V)
		default:
			out = append(out, e.V)
		}
	}
	if anyLine > 0 {
		if len(f.V) > 1 {
			l.errorf(anyLine, "%s: %s: any matches every zone; list it alone", label, key)
		}
		return nil
	}
	if out == nil {
		// Every entry was wrong and has been reported; match nothing
		// rather than everything.
		return []string{}
	}
	return out
}

func (l *loader) compileControls(raw *rawRule, name string, line int, label string) controls {
	c := defaultControls(name, line)
	c.requireTLS = raw.RequireTLS.ok() && raw.RequireTLS.V
	c.readOnly = raw.ReadOnly.ok() && raw.ReadOnly.V
	if raw.AllowCommands.ok() {
		c.allow = l.commandList(&raw.AllowCommands, "allow_commands", label, true)
	}
	if raw.DenyCommands.ok() {
		c.deny = l.commandList(&raw.DenyCommands, "deny_commands", label, false)
	}
	for v := range c.allow {
		if c.deny[v] {
			l.errorf(raw.AllowCommands.Line, "%s: %s is in both allow_commands and deny_commands", label, v)
		}
	}
	c.filetypes = l.keywordList(&raw.AllowSiteFiletype, "allow_site_filetype", label, siteFiletypes,
		"SEQ is always allowed; list JES (job submission and output) or SQL (Db2 queries)")
	c.diag = l.keywordList(&raw.AllowSiteDiagnostics, "allow_site_diagnostics", label, siteDiagnostics,
		"want DUMP, DEBUG or TRACE")

	if raw.Paths.ok() {
		c.paths = []string{}
		for _, e := range raw.Paths.V {
			if e.Bad {
				continue
			}
			switch {
			case !strings.HasPrefix(e.V, "/"):
				l.errorf(e.Line, "%s: paths: %q is not an absolute path on the partner", label, e.V)
				continue
			case hasControl(e.V):
				l.errorf(e.Line, "%s: paths: %q contains control characters", label, e.V)
				continue
			}
			pc := path.Clean(e.V)
			if pc != e.V && pc+"/" != e.V {
				l.errorf(e.Line, "%s: paths: %q is not a clean path; write %q", label, e.V, pc)
				continue
			}
			if slices.Contains(c.paths, pc) {
				l.errorf(e.Line, "%s: paths: %q is listed twice", label, e.V)
				continue
			}
			c.paths = append(c.paths, pc)
		}
		if len(raw.Paths.V) == 0 {
			l.errorf(raw.Paths.Line, "%s: paths is empty; list path prefixes, or remove the key to allow every path", label)
		}
	}

	if raw.MaxFileSize.ok() {
		n, msg := parseSize(raw.MaxFileSize.V)
		if msg != "" {
			l.errorf(raw.MaxFileSize.Line, "%s: max_file_size %q %s", label, raw.MaxFileSize.V, msg)
		}
		c.maxSize = n
	}

	if dp := raw.DataPorts; dp != nil {
		if dp.Active.ok() {
			c.ports.Active = dp.Active.V
		}
		c.ports.ForeignAddress = dp.ForeignAddress.ok() && dp.ForeignAddress.V
		c.ports.LowPorts = dp.LowPorts.ok() && dp.LowPorts.V
		if !c.ports.Active {
			for _, k := range []struct {
				f   field[bool]
				key string
			}{{dp.ForeignAddress, "foreign_address"}, {dp.LowPorts, "low_ports"}} {
				if k.f.ok() && k.f.V {
					l.errorf(k.f.Line, "%s: data_ports: %s applies to PORT and EPRT, which active: false rejects", label, k.key)
				}
			}
		}
		if dp.PassivePorts.ok() {
			pr, msg := parsePortRange(dp.PassivePorts.V)
			if msg != "" {
				l.errorf(dp.PassivePorts.Line, "%s: data_ports: passive_ports %q %s", label, dp.PassivePorts.V, msg)
			}
			c.ports.PassivePorts = pr
		}
	}
	return c
}

// commandList compiles allow_commands or deny_commands: verbs, and SITE
// parameters as "SITE NAME".
func (l *loader) commandList(f *field[[]field[string]], key, label string, allow bool) map[string]bool {
	set := map[string]bool{}
	if len(f.V) == 0 {
		l.errorf(f.Line, "%s: %s is empty; list commands or remove the key", label, key)
	}
	for _, e := range f.V {
		if e.Bad {
			continue
		}
		words := strings.Fields(strings.ToUpper(e.V))
		if len(words) == 0 || len(words) > 2 {
			l.errorf(e.Line, "%s: %s: %q is not a command; write a verb (DELE) or a SITE parameter (SITE CHMOD)", label, key, e.V)
			continue
		}
		v := canonicalVerb(words[0])
		entry := v
		switch {
		case dataPortVerbs[v]:
			l.errorf(e.Line, "%s: %s: %s is governed by data_ports (active: false rejects PORT and EPRT)", label, key, v)
			continue
		case sessionVerbs[v]:
			l.errorf(e.Line, "%s: %s: %s is always allowed; no FTP client can work without it", label, key, v)
			continue
		case !listableVerbs[v]:
			l.errorf(e.Line, "%s: %s: %q is not a command the policy controls (want one of %s)", label, key, e.V, sortedKeys(listableVerbs))
			continue
		case len(words) == 2 && v != "SITE":
			l.errorf(e.Line, "%s: %s: %q: only SITE takes a parameter name here", label, key, e.V)
			continue
		case len(words) == 2:
			n := words[1]
			if len(n) >= 4 && strings.HasPrefix("FILETYPE", n) {
				n = "FILETYPE"
			}
			if !validSiteName(n) {
				l.errorf(e.Line, "%s: %s: %q is not a SITE parameter name", label, key, e.V)
				continue
			}
			switch {
			case allow && n == "FILETYPE":
				l.errorf(e.Line, "%s: %s: SITE FILETYPE=SEQ is always allowed; allow JES or SQL with allow_site_filetype", label, key)
				continue
			case allow && siteDiagnostics[n]:
				l.errorf(e.Line, "%s: %s: allow SITE %s with allow_site_diagnostics", label, key, n)
				continue
			}
			entry = "SITE " + n
		}
		if set[entry] {
			l.errorf(e.Line, "%s: %s: %s is listed twice", label, key, entry)
			continue
		}
		set[entry] = true
	}
	return set
}

func validSiteName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// keywordList compiles a list of upper-case keywords from a known set.
func (l *loader) keywordList(f *field[[]field[string]], key, label string, known map[string]bool, hint string) map[string]bool {
	if !f.ok() {
		return nil
	}
	set := map[string]bool{}
	if len(f.V) == 0 {
		l.errorf(f.Line, "%s: %s is empty; remove the key", label, key)
	}
	for _, e := range f.V {
		if e.Bad {
			continue
		}
		k := strings.ToUpper(strings.TrimSpace(e.V))
		switch {
		case !known[k]:
			l.errorf(e.Line, "%s: %s: %q is not valid; %s", label, key, e.V, hint)
		case set[k]:
			l.errorf(e.Line, "%s: %s: %s is listed twice", label, key, k)
		default:
			set[k] = true
		}
	}
	return set
}

func sortedKeys(m map[string]bool) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

// sizeUnits are the suffixes max_file_size takes: decimal (KB, MB, ...)
// and binary (KiB, MiB, ...), any case, and K/M/G/T as binary.
var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1 << 10, "KIB": 1 << 10, "KB": 1e3,
	"M": 1 << 20, "MIB": 1 << 20, "MB": 1e6,
	"G": 1 << 30, "GIB": 1 << 30, "GB": 1e9,
	"T": 1 << 40, "TIB": 1 << 40, "TB": 1e12,
}

// parseSize parses a byte count with an optional unit: 1048576, 100MiB,
// 2 GB, 512K. It returns a message on failure.
func parseSize(s string) (int64, string) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 || i > 18 {
		return 0, "is not a size: want a whole number of bytes with an optional unit (KB, MB, GB, KiB, MiB, GiB, ...)"
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	unit, ok := sizeUnits[strings.ToUpper(strings.TrimSpace(t[i:]))]
	switch {
	case err != nil || !ok:
		return 0, "is not a size: want a whole number of bytes with an optional unit (KB, MB, GB, KiB, MiB, GiB, ...)"
	case n == 0:
		return 0, "is zero; remove the key for no limit"
	case n > math.MaxInt64/unit:
		return 0, "is too large"
	}
	return n * unit, ""
}

// parsePortRange parses "min-max" (or a single port) with 1024 <= min <=
// max <= 65535.
func parsePortRange(s string) (PortRange, string) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		hi = lo
	}
	a, okA := parsePort(strings.TrimSpace(lo))
	b, okB := parsePort(strings.TrimSpace(hi))
	switch {
	case !okA || !okB:
		return PortRange{}, "is not a port range such as 50000-50099"
	case a > b:
		return PortRange{}, "runs backwards; write the lower port first"
	case a < 1024:
		return PortRange{}, "starts below 1024; passive listeners use unprivileged ports"
	}
	return PortRange{Min: uint16(a), Max: uint16(b)}, ""
}
