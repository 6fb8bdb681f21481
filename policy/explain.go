package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Explanation tells how the policy decides one login, step by step: what
// ftpgate check --explain prints. It is a plain value; String formats it.
type Explanation struct {
	Client netip.Addr
	User   string // the login name explained: user@host when a partner was given
	TLS    bool   // whether the control connection was taken as protected

	Zone        string       // source zone, "" for none
	ZoneNetwork netip.Prefix // the network that put the client in Zone
	DestHost    string       // the partner's host, "" when no partner was found
	DestZone    string       // destination zone, "" for none
	DestMatch   string       // the network or host pattern that matched
	Route       string       // the route's name, "" for none
	Rule        string       // what decided (Decision.Rule)
	Action      string       // upgrade, warn or block

	// Steps lists the rules tried, in order, with why each did not match
	// or "matches" for the one that did. Empty for a policy without rules
	// or when the login was refused before the rules.
	Steps []string
	// Notes holds remarks about the request itself.
	Notes []string

	Decision Decision

	hasRules bool
	hasZones bool
}

// tracer records the steps of a decision for Explain. A nil *tracer
// records nothing, so Login pays nothing for it.
type tracer struct {
	e *Explanation
	p *Policy
}

func (t *tracer) source(_ netip.Addr, _ string, n netip.Prefix) {
	if t != nil {
		t.e.ZoneNetwork = n
	}
}

func (t *tracer) dest(host, zone, entry string, r *Route) {
	if t == nil {
		return
	}
	t.e.DestHost, t.e.DestZone = host, zone
	if entry == "" && r != nil && t.p != nil {
		_, entry = t.p.zones.destZoneOf(routeHostKey(host))
	}
	t.e.DestMatch = entry
}

func (t *tracer) rule(r *rule, why string) {
	if t == nil {
		return
	}
	if why == "" {
		why = "matches"
	} else {
		why = "no: " + why
	}
	t.e.Steps = append(t.e.Steps, fmt.Sprintf("%s (line %d, %s): %s", r.name, r.line, r.action, why))
}

// Explain decides req as Login would and tells how. to, when not empty,
// names the partner host (host, host:port, or an IPv6 address): the login
// is then explained as "USER name@to", a user@host login, since a route's
// partner is fixed by the route. Explain is pure, like Login.
func (p *Policy) Explain(req LoginRequest, to string) Explanation {
	e := Explanation{Client: req.Client, TLS: req.TLS}
	if p != nil {
		e.hasRules = p.hasRules
		e.hasZones = p.zones != nil && (len(p.zones.sources) > 0 || len(p.zones.dests) > 0)
	}
	if to = strings.TrimSpace(to); to != "" {
		switch {
		case strings.Contains(req.User, "@"):
			e.Notes = append(e.Notes, "the user name already names a partner; the given partner is ignored")
		default:
			if a, err := netip.ParseAddr(to); err == nil && a.Is6() {
				to = "[" + to + "]"
			}
			if p != nil {
				if i, ok := p.byUser[asciiLower(req.User)]; ok {
					e.Notes = append(e.Notes, fmt.Sprintf("%q is also the user of route %q; without a partner the route would decide", req.User, p.routes[i].Name))
				}
			}
			req.User += "@" + to
		}
	}
	e.User = req.User
	d := p.decide(req, &tracer{e: &e, p: p})
	e.Decision = d
	e.Zone, e.DestZone = d.Zone, d.DestZone
	e.Rule, e.Action = d.Rule, d.Action
	if d.Route != nil {
		e.Route = d.Route.Name
	}
	return e
}

// String formats the explanation for a terminal, one fact per line.
func (e Explanation) String() string {
	var b strings.Builder
	line := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s %s\n", k, fmt.Sprintf(format, args...))
	}
	tls := "not protected"
	if e.TLS {
		tls = "protected (AUTH TLS)"
	}
	client := "(no address)"
	if e.Client.IsValid() {
		client = e.Client.String()
	}
	line("login", "USER %s from %s, control connection %s", strconv.Quote(e.User), client, tls)
	for _, n := range e.Notes {
		line("note", "%s", n)
	}
	switch {
	case e.Zone != "":
		line("zone", "%s (network %s)", e.Zone, e.ZoneNetwork)
	case e.hasZones:
		line("zone", "none: no source zone holds %s; only rules without from (or from: [any]) match", client)
	default:
		line("zone", "none: the policy defines no zones")
	}
	if e.Route != "" {
		line("route", "%s", e.Route)
	}
	if e.DestHost != "" {
		switch {
		case e.DestZone != "":
			line("destination", "%s: zone %s (%s)", e.DestHost, e.DestZone, e.DestMatch)
		default:
			line("destination", "%s: no destination zone", e.DestHost)
		}
	}
	if len(e.Steps) > 0 {
		b.WriteString("rules\n")
		for i, s := range e.Steps {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, s)
		}
	}
	d := e.Decision
	verdict := "refuse"
	if d.Allow {
		verdict = "allow"
	}
	line("decision", "%s by %s, action %s", verdict, e.Rule, e.Action)
	line("reason", "%s", d.Reason)
	if d.Allow {
		line("partner", "%s (auth %s)", d.Upstream, d.Auth)
		if d.Insecure {
			line("insecure", "plain FTP: every record of the session is marked insecure")
		}
		line("controls", "%s", strings.Join(d.describeControls(), "; "))
	}
	return b.String()
}

// describeControls lists the session controls of an allowing decision in
// words.
func (d Decision) describeControls() []string {
	c := d.ctl
	if c == nil {
		return []string{"policy without rules: every command and path, SITE FILETYPE=SEQ only, PORT/EPRT to the client's own address and ports from 1024"}
	}
	var out []string
	if c.requireTLS {
		out = append(out, "TLS required")
	}
	if c.readOnly {
		out = append(out, "read-only")
	}
	if c.allow != nil {
		out = append(out, "only "+sortedKeys(c.allow))
	}
	if len(c.deny) > 0 {
		out = append(out, "never "+sortedKeys(c.deny))
	}
	if c.paths != nil {
		out = append(out, "paths "+strings.Join(c.paths, ", "))
	}
	if c.maxSize > 0 {
		out = append(out, fmt.Sprintf("uploads up to %d bytes", c.maxSize))
	}
	if len(c.filetypes) > 0 {
		out = append(out, "SITE FILETYPE "+sortedKeys(c.filetypes)+" allowed")
	}
	if len(c.diag) > 0 {
		out = append(out, "SITE "+sortedKeys(c.diag)+" allowed")
	}
	switch p := c.ports; {
	case !p.Active:
		out = append(out, "PORT/EPRT rejected")
	case p.ForeignAddress && p.LowPorts:
		out = append(out, "PORT/EPRT to any address and port")
	case p.ForeignAddress:
		out = append(out, "PORT/EPRT to any address, ports from 1024")
	case p.LowPorts:
		out = append(out, "PORT/EPRT to the client's own address, any port")
	default:
		out = append(out, "PORT/EPRT to the client's own address, ports from 1024")
	}
	if !c.ports.PassivePorts.IsZero() {
		out = append(out, "passive ports "+c.ports.PassivePorts.String())
	}
	return out
}
