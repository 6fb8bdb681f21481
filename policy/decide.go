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

// DenyError is the error form of a denying Decision, for callers that want
// to pass a refusal up as an error.
type DenyError struct {
	Rule   string
	Reason string
}

func (e *DenyError) Error() string {
	return "policy: login denied by " + e.Rule + ": " + e.Reason
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DenyError) Is(target error) bool { return target == ErrDenied }

// Err returns nil for an allowing decision and a *DenyError otherwise.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return &DenyError{Rule: d.Rule, Reason: d.Reason}
}

// Policy is a loaded, validated and compiled policy. It is immutable and
// safe for concurrent use; the zero Policy and a nil *Policy deny every
// login.
type Policy struct {
	name       string
	routes     []Route
	byUser     map[string]int  // ASCII-lower-cased route user -> index in routes
	userAtHost *userAtHostRule // nil when user@host routing is off
	files      []fileRef       // files the policy names, for CheckFiles
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
// An allowing decision does not yet log anyone in: for AuthLocal the caller
// must check the password with VerifyPassword, and for AuthPassthrough the
// partner checks it.
func (p *Policy) Login(req LoginRequest) Decision {
	if strings.Contains(req.User, "@") {
		return p.loginUserAtHost(req)
	}
	if p != nil {
		if i, ok := p.byUser[asciiLower(req.User)]; ok {
			r := p.routes[i].clone()
			d := Decision{
				Allow:    true,
				Rule:     r.Name,
				Reason:   "route " + strconv.Quote(r.Name) + " matches user " + strconv.Quote(req.User),
				Auth:     r.Auth,
				Route:    &r,
				Upstream: r.Upstream,
			}
			d.Upstream = r.Upstream.clone()
			if r.Auth == AuthPassthrough && d.Upstream.User == "" {
				d.Upstream.User = req.User
			}
			return d
		}
	}
	return deny(RuleDefaultDeny, "no route for user")
}

func (p *Policy) loginUserAtHost(req LoginRequest) Decision {
	i := strings.LastIndexByte(req.User, '@')
	name, hostport := req.User[:i], req.User[i+1:]
	if p == nil || p.userAtHost == nil {
		return deny(RuleUserAtHost, "user@host routing is not enabled")
	}
	if name == "" {
		return deny(RuleUserAtHost, "no user name before '@'")
	}
	if hasControl(name) {
		return deny(RuleUserAtHost, "the user name holds control characters")
	}
	addr, host, port, msg := parseHostPort(hostport)
	if msg != "" {
		return deny(RuleUserAtHost, msg)
	}
	rule := p.userAtHost
	for _, m := range rule.allow {
		if !m.match(addr, host) {
			continue
		}
		up := rule.template.clone()
		up.User = name
		up.Dir = ""
		if addr.IsValid() {
			up.Host = addr.String()
		} else {
			up.Host = host
		}
		if port != 0 {
			up.Port = port
		}
		return Decision{
			Allow:    true,
			Rule:     RuleUserAtHost,
			Reason:   fmt.Sprintf("host %q is allowed by user_at_host.allow_hosts entry %q", up.Host, m.entry),
			Auth:     AuthPassthrough,
			Upstream: up,
		}
	}
	shown := host
	if addr.IsValid() {
		shown = addr.String()
	}
	return deny(RuleUserAtHost, fmt.Sprintf("host %q is not in user_at_host.allow_hosts", shown))
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
