package policy

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Reply codes a *DenyError carries in Code, for the proxy to answer with.
const (
	// CodeNotLoggedIn (530) refuses a login, and every command of a
	// session whose login was refused.
	CodeNotLoggedIn = 530
	// CodeDenied (550) refuses a command the rule does not allow: a
	// listed or unlisted verb, a SITE parameter, a write on a read-only
	// session, or a path outside the rule's paths for a verb that does
	// not create a name.
	CodeDenied = 550
	// CodeNameNotAllowed (553, "file name not allowed") refuses a path
	// outside the rule's paths for the verbs that create a name: STOR,
	// STOU, APPE, MKD and RNTO.
	CodeNameNotAllowed = 553
	// CodeNotAvailable (502) refuses PORT and EPRT under data_ports
	// active: false (z/OS PORTCOMMAND REJECT), and, under a rule with
	// allow_commands or read_only, any verb the policy does not know, so
	// a client falls back as it would with a server that lacks it.
	CodeNotAvailable = 502
)

// PortRange is an inclusive range of TCP ports. The zero PortRange means
// "not set": the server's own passive range applies.
type PortRange struct {
	Min, Max uint16
}

// IsZero reports whether the range is not set.
func (r PortRange) IsZero() bool { return r.Min == 0 && r.Max == 0 }

// String is "min-max", or "" for the zero range.
func (r PortRange) String() string {
	if r.IsZero() {
		return ""
	}
	return strconv.Itoa(int(r.Min)) + "-" + strconv.Itoa(int(r.Max))
}

// DataPortRules are a rule's data-connection protections, after z/OS
// PORTCOMMAND, PORTCOMMANDPORT and PORTCOMMANDIPADDR.
type DataPortRules struct {
	// Active allows PORT and EPRT at all (false: PORTCOMMAND REJECT).
	Active bool
	// ForeignAddress allows PORT/EPRT to name an address other than the
	// client's own. Off by default: it is the FTP bounce attack.
	ForeignAddress bool
	// LowPorts allows PORT/EPRT to name a port below 1024 (false:
	// PORTCOMMANDPORT NOLOWPORTS).
	LowPorts bool
	// PassivePorts is the rule's passive port range; zero means the
	// server's range.
	PassivePorts PortRange
}

// controls are the session controls of one upgrade or warn rule,
// compiled once and shared (read-only) by every Decision it makes.
type controls struct {
	rule       string
	line       int
	requireTLS bool
	readOnly   bool
	// allow is nil when every command is allowed; otherwise it holds the
	// canonical verbs and "SITE PARAM" entries allowed.
	allow     map[string]bool
	deny      map[string]bool
	filetypes map[string]bool // JES, SQL
	diag      map[string]bool // DUMP, DEBUG, TRACE
	paths     []string        // clean absolute prefixes; nil means any
	maxSize   int64
	ports     DataPortRules
}

// defaultControls are those of a rule that sets none.
func defaultControls(name string, line int) controls {
	return controls{rule: name, line: line, ports: DataPortRules{Active: true}}
}

// verbAliases maps the RFC 775 X-forms to the verbs they stand for.
var verbAliases = map[string]string{
	"XMKD": "MKD", "XRMD": "RMD", "XPWD": "PWD", "XCWD": "CWD", "XCUP": "CDUP",
}

// sessionVerbs are always allowed by Command: without them no FTP client
// can hold a session. Lists may not name them.
var sessionVerbs = map[string]bool{
	"USER": true, "PASS": true, "ACCT": true, "QUIT": true, "NOOP": true, "SYST": true,
	"FEAT": true, "OPTS": true, "HELP": true, "STAT": true, "TYPE": true, "MODE": true,
	"STRU": true, "ABOR": true, "AUTH": true, "PBSZ": true, "PROT": true, "CCC": true,
	"REST": true, "ALLO": true, "PWD": true, "CWD": true, "CDUP": true, "PASV": true,
	"EPSV": true, "LANG": true, "CLNT": true,
}

// dataPortVerbs are governed by data_ports, not by command lists.
var dataPortVerbs = map[string]bool{"PORT": true, "EPRT": true}

// listableVerbs are the verbs allow_commands and deny_commands may name.
var listableVerbs = map[string]bool{
	"RETR": true, "STOR": true, "STOU": true, "APPE": true, "DELE": true, "RMD": true,
	"MKD": true, "RNFR": true, "RNTO": true, "LIST": true, "NLST": true, "MLSD": true,
	"MLST": true, "SIZE": true, "MDTM": true, "MFMT": true, "SITE": true,
}

// writeVerbs change the partner's files; read_only refuses them.
var writeVerbs = map[string]bool{
	"STOR": true, "STOU": true, "APPE": true, "DELE": true, "RMD": true, "MKD": true,
	"RNFR": true, "RNTO": true, "MFMT": true,
}

// nameVerbs create a name: a path outside the rule's paths gets 553.
var nameVerbs = map[string]bool{"STOR": true, "STOU": true, "APPE": true, "MKD": true, "RNTO": true}

// siteSubcommands take their arguments as words, not KEY=value pairs, so
// only their first word is a parameter name.
var siteSubcommands = map[string]bool{
	"CHMOD": true, "HELP": true, "UTIME": true, "SYMLINK": true, "CPFR": true, "CPTO": true,
	"UMASK": true, "IDLE": true,
}

// siteWrites are SITE subcommands that change the partner's files.
var siteWrites = map[string]bool{"CHMOD": true, "UTIME": true, "SYMLINK": true, "CPFR": true, "CPTO": true}

// siteDiagnostics are refused unless allow_site_diagnostics lists them,
// as the talk restricts EZB.FTP.*.*.SITE.DUMP/DEBUG to system programmers.
var siteDiagnostics = map[string]bool{"DUMP": true, "DEBUG": true, "TRACE": true}

// siteFiletypes are the z/OS FILETYPE values other than SEQ: JES submits
// jobs and fetches their output, SQL runs Db2 queries.
var siteFiletypes = map[string]bool{"JES": true, "SQL": true}

func canonicalVerb(v string) string {
	v = strings.ToUpper(strings.TrimSpace(v))
	if a, ok := verbAliases[v]; ok {
		return a
	}
	return v
}

// siteParams returns the parameter names of a SITE argument, upper-cased,
// with FILETYPE abbreviations (z/OS accepts FILE, FILET, ...) spelled out,
// and the FILETYPE values given.
func siteParams(arg string) (names, filetypes []string) {
	toks := strings.Fields(arg)
	for i, t := range toks {
		if i > 0 && (!strings.Contains(t, "=") || siteSubcommands[names[0]]) {
			continue
		}
		k, v, _ := strings.Cut(t, "=")
		if j := strings.IndexByte(k, '('); j >= 0 {
			k = k[:j]
		}
		k = strings.ToUpper(k)
		if len(k) >= 4 && strings.HasPrefix("FILETYPE", k) {
			k = "FILETYPE"
			filetypes = append(filetypes, strings.ToUpper(v))
		}
		names = append(names, k)
	}
	return names, filetypes
}

// isMDTMSet reports whether an MDTM argument sets the time ("MDTM
// YYYYMMDDHHMMSS[.sss] path", a form some servers accept) rather than
// asking for it.
func isMDTMSet(arg string) bool {
	ts, rest, ok := strings.Cut(strings.TrimSpace(arg), " ")
	if !ok || strings.TrimSpace(rest) == "" {
		return false
	}
	ts, _, _ = strings.Cut(ts, ".")
	if len(ts) != 14 {
		return false
	}
	return strings.Trim(ts, "0123456789") == ""
}

func (d Decision) denyf(code int, format string, args ...any) error {
	return &DenyError{Rule: d.Rule, Reason: fmt.Sprintf(format, args...), Code: code}
}

// notAllowed is the answer to any question about a session whose login
// was refused: nothing is allowed.
func (d Decision) notAllowed() error {
	rule := d.Rule
	if rule == "" {
		rule = RuleDefaultDeny
	}
	return &DenyError{Rule: rule, Reason: "the login was not allowed", Code: CodeNotLoggedIn}
}

// ruleLabel names the rule for a reason.
func (c *controls) label() string {
	return fmt.Sprintf("rule %q (line %d)", c.rule, c.line)
}

// Command decides whether the session may send verb with arg (the
// argument as the client sent it). It returns nil or a *DenyError whose
// Code is the reply to give: 550 for a command the rule refuses, 502 for
// PORT/EPRT when active mode is off (and for verbs the policy does not
// know, under a rule with allow_commands or read_only), 530 when the login
// itself was refused. Command looks at verbs and SITE parameters only;
// Path decides about the path a command names.
//
// Under a policy without rules every command is allowed except SITE
// FILETYPE=JES and FILETYPE=SQL (and any FILETYPE other than SEQ), which
// the proxy has always refused; a rule can allow them with
// allow_site_filetype. Under a rule, SITE DUMP, DEBUG and TRACE are
// refused unless allow_site_diagnostics lists them.
func (d Decision) Command(verb, arg string) error {
	if !d.Allow {
		return d.notAllowed()
	}
	v := canonicalVerb(verb)
	c := d.ctl
	if c == nil {
		if v == "SITE" {
			_, fts := siteParams(arg)
			for _, ft := range fts {
				if !d.SiteFiletypeAllowed(ft) {
					return d.denyf(CodeDenied, "SITE FILETYPE=%s is not allowed: the policy has no rule that allows it (allow_site_filetype)", clip(ft))
				}
			}
		}
		return nil
	}
	if dataPortVerbs[v] {
		if !c.ports.Active {
			return d.denyf(CodeNotAvailable, "%s rejects PORT and EPRT (data_ports active: false); use PASV or EPSV", c.label())
		}
		return nil
	}
	if sessionVerbs[v] {
		return nil
	}
	if !listableVerbs[v] {
		if c.allow != nil || c.readOnly {
			return d.denyf(CodeNotAvailable, "%s does not allow %s: the policy does not know the command", c.label(), clip(v))
		}
		return nil
	}
	if c.readOnly && (writeVerbs[v] || v == "MDTM" && isMDTMSet(arg)) {
		return d.denyf(CodeDenied, "%s is read-only: %s is refused", c.label(), v)
	}
	if c.deny[v] {
		return d.denyf(CodeDenied, "%s denies %s", c.label(), v)
	}
	if c.allow != nil && !c.allow[v] && v != "SITE" {
		return d.denyf(CodeDenied, "%s does not list %s in allow_commands", c.label(), v)
	}
	if v != "SITE" {
		return nil
	}
	names, fts := siteParams(arg)
	for _, ft := range fts {
		if !d.SiteFiletypeAllowed(ft) {
			return d.denyf(CodeDenied, "%s does not allow SITE FILETYPE=%s (allow_site_filetype)", c.label(), clip(ft))
		}
	}
	for _, n := range names {
		entry := "SITE " + n
		switch {
		case c.readOnly && siteWrites[n]:
			return d.denyf(CodeDenied, "%s is read-only: SITE %s is refused", c.label(), clip(n))
		case c.deny[entry]:
			return d.denyf(CodeDenied, "%s denies SITE %s", c.label(), clip(n))
		case siteDiagnostics[n] && !c.diag[n]:
			return d.denyf(CodeDenied, "%s does not allow SITE %s (allow_site_diagnostics)", c.label(), n)
		case c.allow != nil && !c.allow["SITE"] && !c.allow[entry] && n != "FILETYPE" && !(siteDiagnostics[n] && c.diag[n]):
			return d.denyf(CodeDenied, "%s does not list SITE %s in allow_commands", c.label(), clip(n))
		}
	}
	return nil
}

// Path decides whether the session may apply verb to upstreamPath, the
// absolute path on the partner that the proxy resolved the client's
// argument to. verb is the FTP verb ("SITE CHMOD" or "CHMOD" for SITE
// CHMOD). It returns nil or a *DenyError: 550 for a write on a read-only
// session, and for a path outside the rule's paths; 553 instead when the
// verb creates a name (STOR, STOU, APPE, MKD, RNTO); 530 when the login was
// refused.
//
// The path is cleaned first (path.Clean), so "/in/../etc" is "/etc"; a
// path that is not absolute is refused when the rule has paths. It is
// allowed when it equals one of the rule's paths or lies beneath one
// ("/in" allows "/in/x" but not "/inbox"). CWD and CDUP may also move to
// a directory above one of the paths, so that a client can walk down to
// it; listing there is still refused. Under a policy without rules every
// path is allowed.
func (d Decision) Path(verb, upstreamPath string) error {
	if !d.Allow {
		return d.notAllowed()
	}
	c := d.ctl
	if c == nil {
		return nil
	}
	v := canonicalVerb(verb)
	if s, ok := strings.CutPrefix(v, "SITE "); ok {
		v = strings.TrimSpace(s)
	}
	if c.readOnly && (writeVerbs[v] || siteWrites[v]) {
		return d.denyf(CodeDenied, "%s is read-only: %s is refused", c.label(), v)
	}
	if c.paths == nil {
		return nil
	}
	code := CodeDenied
	if nameVerbs[v] {
		code = CodeNameNotAllowed
	}
	if !strings.HasPrefix(upstreamPath, "/") || strings.ContainsRune(upstreamPath, 0) {
		return d.denyf(code, "%s: path %q is not absolute", c.label(), clip(upstreamPath))
	}
	p := path.Clean(upstreamPath)
	for _, pre := range c.paths {
		if underPath(p, pre) {
			return nil
		}
		if (v == "CWD" || v == "CDUP") && underPath(pre, p) {
			return nil
		}
	}
	return d.denyf(code, "%s: path %q is outside its paths (%s)", c.label(), clip(p), strings.Join(c.paths, ", "))
}

// underPath reports whether clean absolute path p equals prefix or lies
// beneath it.
func underPath(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix) && p[len(prefix)] == '/'
}

// SiteFiletypeAllowed reports whether SITE FILETYPE=ft may be used. SEQ
// (ordinary files) always may; JES and SQL only under a rule that lists
// them in allow_site_filetype; any other value never.
func (d Decision) SiteFiletypeAllowed(ft string) bool {
	ft = strings.ToUpper(strings.TrimSpace(ft))
	if ft == "SEQ" {
		return true
	}
	return d.Allow && d.ctl != nil && d.ctl.filetypes[ft]
}

// MaxFileSize is the largest upload (STOR, STOU, APPE) the rule allows, in
// bytes; 0 means no limit. The proxy stops the transfer at that many bytes.
func (d Decision) MaxFileSize() int64 {
	if !d.Allow || d.ctl == nil {
		return 0
	}
	return d.ctl.maxSize
}

// DataPorts returns the data-connection protections of the session. Under
// a policy without rules they are the proxy's defaults: PORT and EPRT
// allowed, to the client's own address and ports from 1024 only, and the
// server's passive range. The proxy's own switches that loosen the
// protections (FTPGATE_ALLOW_FOREIGN_DATA_ADDRESS, FTPGATE_ALLOW_LOW_DATA_PORTS)
// are meant to be combined with these by "or". A refused login allows
// nothing.
func (d Decision) DataPorts() DataPortRules {
	switch {
	case !d.Allow:
		return DataPortRules{}
	case d.ctl == nil:
		return DataPortRules{Active: true}
	}
	return d.ctl.ports
}

// RequireTLS reports whether the rule requires a protected control
// connection. Login already refuses a request without TLS under such a
// rule; the proxy can use this to refuse a later CCC or PROT C as well.
func (d Decision) RequireTLS() bool {
	return d.Allow && d.ctl != nil && d.ctl.requireTLS
}
