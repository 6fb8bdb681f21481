package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Rule names used in decisions that do not come from a route. Load refuses
// routes named like them, so Decision.Rule is never ambiguous.
const (
	RuleUserAtHost  = "user@host"
	RuleDefaultDeny = "default-deny"
)

// ErrDenied is matched (with errors.Is) by every *DenyError.
var ErrDenied = errors.New("policy: login denied")

// DenyError is the error form of a refusal: of a login (Decision.Err), or
// of a command or path (Decision.Command, Decision.Path).
type DenyError struct {
	Rule   string
	Reason string
	// Code is the FTP reply the proxy should give: 530 for a refused
	// login, 550, 553 or 502 for a refused command (see CodeDenied,
	// CodeNameNotAllowed and CodeNotAvailable). Zero counts as 530.
	Code int
}

func (e *DenyError) Error() string {
	if e.Code == 0 || e.Code == CodeNotLoggedIn {
		return "policy: login denied by " + e.Rule + ": " + e.Reason
	}
	return "policy: command refused by " + e.Rule + ": " + e.Reason
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DenyError) Is(target error) bool { return target == ErrDenied }

// Err returns nil for an allowing decision and a *DenyError with Code 530
// otherwise.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return &DenyError{Rule: d.Rule, Reason: d.Reason, Code: CodeNotLoggedIn}
}

// Policy is a loaded, validated and compiled policy. It is immutable and
// safe for concurrent use; the zero Policy and a nil *Policy deny every
// login.
type Policy struct {
	name       string
	routes     []Route
	byUser     map[string]int  // ASCII-lower-cased route user -> index in routes
	routeDest  []int           // destination zone of each route, -1 for none
	userAtHost *userAtHostRule // nil when user@host routing is off
	files      []fileRef       // files the policy names, for CheckFiles

	zones  *zoneTable
	groups groupTable
	// rules is the rules section in file order; hasRules tells a file
	// without a rules section (routes and user_at_host decide) from one
	// with rules.
	rules    []rule
	hasRules bool
	// usersFile is the top-level local_users_file; userFiles holds the
	// hashes of every local_users_file by path (user ASCII-lower-cased).
	usersFile string
	userFiles map[string]map[string]string
	included  []string // files Load read besides the policy itself
}

// userAtHostRule is the compiled user_at_host section, present only when
// it is enabled.
type userAtHostRule struct {
	// template holds Scheme, the default Port, the host-key settings and
	// the SFTP options; Login fills in Host, User and a given port.
	template Upstream
	allow    []hostMatcher
	line     int
}

// fileRef is a file named in the policy, checked by CheckFiles.
type fileRef struct {
	what string // the key that names it, for messages
	path string
	line int
}

// UserAtHostEnabled reports whether "USER name@host" logins are routed.
func (p *Policy) UserAtHostEnabled() bool {
	return p != nil && p.userAtHost != nil
}

// Routes returns a copy of the effective routes, in file order, with
// defaults applied (name, auth, port, host-key sources). Changing the copy
// does not change the policy.
func (p *Policy) Routes() []Route {
	if p == nil || len(p.routes) == 0 {
		return nil
	}
	rs := make([]Route, len(p.routes))
	for i := range p.routes {
		rs[i] = p.routes[i].clone()
	}
	return rs
}

func (r Route) clone() Route {
	r.Upstream = r.Upstream.clone()
	return r
}

// Login decides which partner a login goes to, and how. It is a pure
// function of the policy and the request: it does no I/O, never resolves a
// name and never panics, and it denies anything the policy does not allow.
//
// A USER argument holding '@' is a user@host login: it is split at the last
// '@' into a partner user name and host[:port] ([v6] or [v6]:port for IPv6
// literals), and allowed only when user_at_host is enabled and the host is
// on its allow list. Any other name is looked up among the routes without
// regard to ASCII case. A denying decision always has a Rule and a Reason.
//
// Names on the user_at_host allow list are matched as names: a name that
// resolves to an internal address is still allowed, and CIDR entries match
// only logins that give an IP literal. Whoever dials may add a check on the
// resolved address.
//
// The client's address puts it in a source zone (the zone with the
// longest matching network), and the partner (the route's host, or the
// host of a user@host login) in a destination zone. A zone with a users
// list refuses everyone else. When the policy has a rules section, the
// first rule whose from, to and users match decides; no match is a denial.
// For user@host logins, rules and zone users lists match the name before
// the '@'.
//
// An allowing decision does not yet log anyone in: for AuthLocal the caller
// must check the password with VerifyPassword, and for AuthPassthrough the
// partner checks it.
func (p *Policy) Login(req LoginRequest) Decision {
	return p.decide(req, nil)
}

// decide is Login, with an optional trace of the steps for Explain.
func (p *Policy) decide(req LoginRequest, tr *tracer) Decision {
	var zt *zoneTable
	if p != nil {
		zt = p.zones
	}
	zi, znet := zt.sourceZoneOf(req.Client)
	zone := zt.sourceName(zi)
	tr.source(req.Client, zone, znet)

	var d Decision
	var ident string
	dest, destEntry := -1, ""
	var uah *userAtHostLogin
	if strings.Contains(req.User, "@") {
		var login userAtHostLogin
		d, login = p.loginUserAtHost(req)
		if d.Allow {
			uah = &login
			ident = asciiLower(login.name)
			dest, destEntry = zt.destZoneOf(login.addr, login.host)
		}
	} else {
		d = p.loginRoute(req)
		if d.Allow {
			ident = asciiLower(req.User)
			dest = p.routeDest[p.byUser[ident]]
		}
	}
	d.Zone = zone
	if !d.Allow {
		return finish(d)
	}
	d.DestZone = zt.destName(dest)
	tr.dest(d.Upstream.Host, d.DestZone, destEntry, d.Route)

	if zi >= 0 {
		if sz := &zt.sources[zi]; sz.hasList && !sz.users[ident] {
			return finish(Decision{
				Rule:     "zone:" + zone,
				Reason:   fmt.Sprintf("user %q is not on the users list of source zone %q (line %d)", clip(ident), zone, sz.line),
				Zone:     zone,
				DestZone: d.DestZone,
			})
		}
	}

	if !p.hasRules {
		d.Action = ActionUpgrade
		return p.localHash(d, p.usersFile, d.Rule)
	}
	for i := range p.rules {
		r := &p.rules[i]
		ok := r.matches(zone, d.DestZone, ident)
		if tr != nil {
			tr.rule(r, r.why(zone, d.DestZone, ident))
		}
		if ok {
			return p.apply(r, d, req, uah)
		}
	}
	return finish(Decision{
		Rule: RuleDefaultDeny,
		Reason: fmt.Sprintf("no rule matches source zone %s, destination zone %s and user %q",
			zoneText(zone), zoneText(d.DestZone), clip(ident)),
		Zone:     zone,
		DestZone: d.DestZone,
	})
}

// finish makes a denying decision consistent: no route, no upstream, no
// controls, action block.
func finish(d Decision) Decision {
	if !d.Allow {
		return Decision{Rule: d.Rule, Reason: d.Reason, Zone: d.Zone, DestZone: d.DestZone, Action: ActionBlock}
	}
	return d
}

// apply turns the first matching rule and the routing decision d into the
// final decision.
func (p *Policy) apply(r *rule, d Decision, req LoginRequest, uah *userAtHostLogin) Decision {
	refuse := func(format string, args ...any) Decision {
		return finish(Decision{Rule: r.name, Reason: fmt.Sprintf(format, args...), Zone: d.Zone, DestZone: d.DestZone})
	}
	if r.action == ActionBlock {
		return refuse("blocked by rule %q (line %d): source zone %s, destination zone %s",
			r.name, r.line, zoneText(d.Zone), zoneText(d.DestZone))
	}
	if uah != nil && r.uahScheme != d.Upstream.Scheme {
		d.Upstream = uah.upstream(r.uahScheme, p.userAtHost)
	}
	switch s := d.Upstream.Scheme; {
	case s == "ftp" && !r.plainFTP:
		return refuse("rule %q (line %d) does not allow plain FTP to %s: that needs action: warn with plain_ftp: true",
			r.name, r.line, d.Upstream.Host)
	case !r.allowsScheme(s):
		return refuse("rule %q (line %d) allows protocols %s; the partner is reached over %s",
			r.name, r.line, listText(r.protocols), s)
	}
	if r.ctl.requireTLS && !req.TLS {
		return refuse("rule %q (line %d) requires a protected control connection: send AUTH TLS before USER", r.name, r.line)
	}
	file := p.usersFile
	if r.usersFile != "" {
		file = r.usersFile
	}
	d = p.localHash(d, file, r.name)
	if !d.Allow {
		return finish(d)
	}
	d.Reason = fmt.Sprintf("rule %q (line %d, %s): %s", r.name, r.line, r.action, d.Reason)
	d.Rule = r.name
	d.Action = r.action
	d.Insecure = d.Upstream.IsPlainFTP()
	d.ctl = &r.ctl
	return d
}

// localHash fills in the bcrypt hash of an AuthLocal route that has none
// of its own from the local_users_file file, or refuses the login when
// the file has no entry for the route's user.
func (p *Policy) localHash(d Decision, file, rule string) Decision {
	if d.Auth != AuthLocal || d.Route == nil || d.Route.PasswordBcrypt != "" {
		return d
	}
	if h := p.userFiles[file][asciiLower(d.Route.User)]; h != "" && file != "" {
		d.Route.PasswordBcrypt = h
		return d
	}
	why := "no local_users_file applies"
	if file != "" {
		why = "local_users_file " + file + " has no entry for it"
	}
	return finish(Decision{
		Rule:     rule,
		Reason:   fmt.Sprintf("route %q uses auth local without password_bcrypt, and %s", d.Route.Name, why),
		Zone:     d.Zone,
		DestZone: d.DestZone,
	})
}

func (p *Policy) loginRoute(req LoginRequest) Decision {
	if p != nil {
		if i, ok := p.byUser[asciiLower(req.User)]; ok {
			r := p.routes[i].clone()
			d := Decision{
				Allow:    true,
				Rule:     r.Name,
				Reason:   "route " + strconv.Quote(r.Name) + " matches user " + strconv.Quote(req.User),
				Auth:     r.Auth,
				Route:    &r,
				Upstream: r.Upstream.clone(),
			}
			if r.Auth == AuthPassthrough && d.Upstream.User == "" {
				d.Upstream.User = req.User
			}
			return d
		}
	}
	return deny(RuleDefaultDeny, "no route for user")
}

// userAtHostLogin is a parsed and allowed "USER name@host[:port]".
type userAtHostLogin struct {
	name string
	addr netip.Addr // for an IP literal
	host string     // lower-cased name otherwise
	port int        // 0 when the login gave none
}

// upstream builds the partner of a user@host login for scheme. The sftp
// form comes from the user_at_host template (host keys, SFTP options); an
// FTPS or plain-FTP partner gets its scheme's default port unless the
// login gave one, and an FTPS certificate is checked against the system
// roots and the host name.
func (u *userAtHostLogin) upstream(scheme string, rule *userAtHostRule) Upstream {
	var up Upstream
	if scheme == "sftp" && rule != nil {
		up = rule.template.clone()
	} else {
		up = Upstream{Scheme: scheme, Port: defaultPorts[scheme]}
	}
	up.User = u.name
	up.Dir = ""
	if u.addr.IsValid() {
		up.Host = u.addr.String()
	} else {
		up.Host = u.host
	}
	if u.port != 0 {
		up.Port = u.port
	}
	return up
}

func (p *Policy) loginUserAtHost(req LoginRequest) (Decision, userAtHostLogin) {
	i := strings.LastIndexByte(req.User, '@')
	name, hostport := req.User[:i], req.User[i+1:]
	if p == nil || p.userAtHost == nil {
		return deny(RuleUserAtHost, "user@host routing is not enabled"), userAtHostLogin{}
	}
	if name == "" {
		return deny(RuleUserAtHost, "no user name before '@'"), userAtHostLogin{}
	}
	if hasControl(name) {
		return deny(RuleUserAtHost, "the user name holds control characters"), userAtHostLogin{}
	}
	addr, host, port, msg := parseHostPort(hostport)
	if msg != "" {
		return deny(RuleUserAtHost, msg), userAtHostLogin{}
	}
	rule := p.userAtHost
	login := userAtHostLogin{name: name, addr: addr, host: host, port: port}
	for _, m := range rule.allow {
		if !m.match(addr, host) {
			continue
		}
		up := login.upstream("sftp", rule)
		return Decision{
			Allow:    true,
			Rule:     RuleUserAtHost,
			Reason:   fmt.Sprintf("host %q is allowed by user_at_host.allow_hosts entry %q", up.Host, m.entry),
			Auth:     AuthPassthrough,
			Upstream: up,
		}, login
	}
	shown := host
	if addr.IsValid() {
		shown = addr.String()
	}
	return deny(RuleUserAtHost, fmt.Sprintf("host %q is not in user_at_host.allow_hosts", shown)), userAtHostLogin{}
}

// parseHostPort parses the part of a user@host login after the '@': host,
// host:port, [v6] or [v6]:port. It returns the address for an IP literal
// (IPv4-mapped IPv6 unmapped) or the lower-cased host name, the port (0 when
// none was given), or a message saying what is wrong. Messages quote the
// input with %q, since it comes from the client.
func parseHostPort(s string) (addr netip.Addr, name string, port int, msg string) {
	if s == "" {
		return addr, "", 0, "no host after '@'"
	}
	host, portStr, hasPort := "", "", false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return addr, "", 0, fmt.Sprintf("host %q: missing ']'", clip(s))
		}
		host, rest := s[1:end], s[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			portStr, hasPort = rest[1:], true
		default:
			return addr, "", 0, fmt.Sprintf("host %q: unexpected text after ']'", clip(s))
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return addr, "", 0, fmt.Sprintf("host %q: brackets must hold an IPv6 address", clip(s))
		}
		addr = a.Unmap()
	} else {
		switch strings.Count(s, ":") {
		case 0:
			host = s
		case 1:
			i := strings.IndexByte(s, ':')
			host, portStr, hasPort = s[:i], s[i+1:], true
		default:
			return addr, "", 0, fmt.Sprintf("host %q: write an IPv6 address in brackets, as [2001:db8::1]:22", clip(s))
		}
		if host == "" {
			return addr, "", 0, "no host after '@'"
		}
		if a, err := netip.ParseAddr(host); err == nil {
			addr = a.Unmap()
		} else if validHostName(host) {
			name = asciiLower(host)
		} else {
			return addr, "", 0, fmt.Sprintf("host %q is not a valid host name or IP address", clip(host))
		}
	}
	if hasPort {
		n, ok := parsePort(portStr)
		if !ok {
			return netip.Addr{}, "", 0, fmt.Sprintf("port %q is not a number in 1-65535", clip(portStr))
		}
		port = n
	}
	return addr, name, port, ""
}

// clip shortens client-supplied text for a reason, so a long USER argument
// cannot flood the log.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func deny(rule, reason string) Decision {
	return Decision{Rule: rule, Reason: reason}
}

// timingHash is a bcrypt hash (cost 10, the usual cost of route hashes) of
// a throw-away string. VerifyPassword compares against it when it has no
// real hash, so that a refused user name costs as much time as a wrong
// password and the reply time does not tell which user names exist.
const timingHash = "$2a$10$quCEzlYRAFMnwluPsRXnZeVeWl64PhV56JPAij3.2fZBTFsw2yLk6"

// maxBcryptPassword is the longest password bcrypt looks at; bcrypt ignores
// every byte beyond it, so a longer password is refused rather than checked
// by its first 72 bytes only.
const maxBcryptPassword = 72

// VerifyPassword checks the client's password for an allowing decision.
//
// For AuthLocal it compares the password with the route's bcrypt hash.
// That is deliberately slow (tens of milliseconds at cost 10, doubling with
// each cost step): it is what makes a stolen hash hard to crack, and it
// limits online guessing, so call it once per PASS and never while holding
// a lock. For AuthPassthrough it returns true without looking at the
// password: the partner decides when the proxy logs in with it.
//
// A denying decision, or an AuthLocal decision without a route, returns
// false after the same bcrypt work, so the time taken does not reveal
// whether the user name exists; a caller that answers PASS for an unknown
// user should call it too. Empty passwords and passwords longer than
// 72 bytes never match.
func (d Decision) VerifyPassword(password string) bool {
	if d.Allow && d.Auth == AuthPassthrough {
		return true
	}
	hash := timingHash
	ok := d.Allow && d.Auth == AuthLocal && d.Route != nil && d.Route.PasswordBcrypt != ""
	if ok {
		hash = d.Route.PasswordBcrypt
	}
	if len(password) > maxBcryptPassword {
		password = password[:maxBcryptPassword]
		ok = false
	}
	if password == "" {
		ok = false
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	return ok && err == nil
}
