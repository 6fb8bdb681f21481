package policy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxPolicyBytes bounds how much of a policy file Load reads. Real policies
// are a few kilobytes; the bound keeps a mistaken path (a log file, a device)
// from being read into memory whole.
const maxPolicyBytes = 4 << 20

// FieldError is one problem found in a policy file, located by file name and
// line, in the form "file:line: message" that editors and CI logs link to.
type FieldError struct {
	File string // the name given to Load, or the path given to LoadFile
	Line int    // 1-based line in File; 0 when no single line is to blame
	Msg  string // what is wrong; never a secret value
	Err  error  // the underlying error, if any (CheckFiles sets it to the fs error)
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns the underlying error, so errors.Is(err, fs.ErrNotExist)
// works on what CheckFiles returns.
func (e *FieldError) Unwrap() error { return e.Err }

// LoadError is every problem Load found in a policy file, ordered by line.
// Load reports them all at once rather than stopping at the first, so an
// operator can fix a file in one pass.
type LoadError struct {
	Errs []FieldError
}

// Error returns one "file:line: message" line per problem.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i := range e.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Errs[i].Error())
	}
	return b.String()
}

// Unwrap returns the individual problems as *FieldError values.
func (e *LoadError) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i := range e.Errs {
		errs[i] = &e.Errs[i]
	}
	return errs
}

// LoadFile reads and validates the policy file at path. Problems in the file
// come back as a *LoadError whose messages are located by path and line.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	return Load(f, path)
}

// Load reads a policy file, validates it and compiles it for Policy.Login.
// name is used only to locate messages ("name:line: message").
//
// The file is YAML, version 1:
//
//	version: 1                    # required
//	known_hosts: /etc/ftpgate/known_hosts  # default host-key source for routes
//	                              # (and user_at_host) that set neither
//	                              # known_hosts nor host_key_sha256
//	local_users_file: /etc/ftpgate/users   # htpasswd -B file: "user:$2y$..."
//	                              # lines, for auth local routes without
//	                              # password_bcrypt
//	user_at_host:                 # "USER name@host[:port]" logins; the client's
//	                              # password goes to the partner
//	  enabled: true               # default false
//	  scheme: sftp                # default and only value: sftp (a rule's
//	                              # user_at_host_scheme can choose FTPS)
//	  allow_hosts:                # required when enabled; a host must match one
//	    - "*.example.com"         # host-name glob, path.Match syntax, any case
//	    - 10.0.0.0/8              # CIDR prefix, matched by IP literals only
//	    - 127.0.0.1               # IP address; IPv6 also as [::1]
//	  port: 22                    # sftp port when the login names none; default 22
//	  known_hosts: /path          # host-key source; falls back to the top level
//	  host_key_sha256: ["SHA256:..."]
//	  use_fstat: false            # default false
//	  concurrent_reads: true      # default true
//	zones:                        # optional
//	  sources:                    # where clients come from
//	    batch:                    # name: letters, digits, _ - . ("any" is reserved)
//	      networks: [10.20.0.0/16, "2001:db8:20::/48"]  # required; CIDR or address
//	      users: [PAYJOB]         # optional: only these users may log in from
//	      groups: [payroll]       # here (users and groups together)
//	  destinations:               # where partners are
//	    partners:
//	      hosts: ["*.partner.example"]  # names and globs; never resolved
//	      networks: [203.0.113.0/24]    # matched by IP literals; one of the two
//	groups:                       # optional: named lists of users
//	  payroll: [PAYJOB, PAYJOB2]
//	routes:
//	  - name: payroll             # default: user; unique
//	    user: PAYJOB              # proxy login name, unique without regard to
//	                              # ASCII case; no '@'
//	    auth: local               # local or passthrough; default local when
//	                              # password_bcrypt is set, else passthrough
//	    password_bcrypt: "$2a$10$..."  # auth local: this, or an entry in a
//	                              # local_users_file
//	    upstream: sftp://payuser@sftp.partner.test:2222/inbound/pay
//	    upstream_password: {env: PAY_PW}         # or {file: /run/secrets/pay}
//	    upstream_key: /etc/ftpgate/keys/pay_ed25519
//	    upstream_key_passphrase: {file: /run/secrets/pay_key_pw}
//	    known_hosts: /etc/ftpgate/known_hosts
//	    host_key_sha256: ["SHA256:abc..."]  # as ssh-keygen -l prints
//	    use_fstat: false
//	    concurrent_reads: true
//	  - user: ledger              # an FTPS partner
//	    upstream: ftpes://ledger@ftp.partner.test/in   # or ftps:// (implicit TLS)
//	    tls_ca_file: /etc/ftpgate/partner-ca.pem       # default: system roots
//	    tls_cert_sha256: ["SHA256:abc..."]             # leaf pins, checked as well
//	    tls_min_version: "1.2"                         # "1.2" (default) or "1.3"
//	    tls_ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]  # TLS 1.2 only
//	    tls_client_cert: /etc/ftpgate/tls/client.pem   # mutual TLS: both or neither
//	    tls_client_key: /etc/ftpgate/tls/client.key
//	    tls_server_name: ftp.partner.test              # default: the URL's host
//	    passive_use_reply_address: false               # default false
//	rules:                        # optional; ordered, first match wins
//	  - name: dmz-blocked         # required, unique; letters, digits, _ - .
//	    from: [dmz]               # source zones; absent or [any]: every client,
//	                              # also one in no zone
//	    to: [partners]            # destination zones; absent or [any]: every partner
//	    users: [PAYJOB]           # absent (and no groups): every user
//	    groups: [payroll]
//	    action: block             # upgrade, block or warn; required
//	  - name: payroll             # upgrade and warn rules also take:
//	    action: upgrade
//	    protocols: [sftp]         # partner schemes allowed; default sftp, ftps, ftpes
//	    user_at_host_scheme: sftp # for user@host logins; default sftp (if allowed)
//	    local_users_file: /path   # replaces the top-level one under this rule
//	    require_tls: true         # refuse the login before AUTH TLS; default false
//	    read_only: true           # refuse STOR STOU APPE DELE RMD MKD RNFR RNTO
//	                              # MFMT, SITE CHMOD; default false
//	    allow_commands: [RETR, LIST, "SITE LRECL"]  # only these (session
//	                              # commands always); default: all
//	    deny_commands: [DELE, "SITE CHMOD"]
//	    allow_site_filetype: [JES]        # SEQ always; JES and SQL only if listed
//	    allow_site_diagnostics: [DEBUG]   # SITE DUMP, DEBUG, TRACE only if listed
//	    paths: [/inbound/pay]     # partner path prefixes; default: any path
//	    max_file_size: 2GiB       # bytes, or KB MB GB TB, KiB MiB GiB TiB
//	    data_ports:
//	      active: true            # PORT and EPRT at all; default true
//	      foreign_address: false  # to another address than the client's; default false
//	      low_ports: false        # to ports below 1024; default false
//	      passive_ports: 50000-50099      # default: the server's range
//	  - name: legacy
//	    action: warn              # migration mode: may go to ftp:// partners
//	    plain_ftp: true           # required with warn; marks sessions insecure
//
// The upstream URL is scheme://[user@]host[:port][/dir] with the scheme
// sftp (port 22 by default), ftps (FTP over implicit TLS, port 990) or
// ftpes (FTP with AUTH TLS, port 21). Plain ftp (port 21) is refused
// unless the policy has rules and a rule with action warn and plain_ftp:
// true could match the route (its destination zone and user); a session
// to it is then allowed only under such a rule. The URL-unescaped path is
// the start directory ("" for the partner's default), and a password in
// the URL is an error. An auth local route needs password_bcrypt (or an
// entry for its user in the top-level or a rule's local_users_file), a
// partner user in the URL, and upstream_password or (sftp only)
// upstream_key; an auth passthrough route may set none of those, and a URL
// without a user means "the client's login name". Every sftp upstream
// needs a host-key source: ftpgate never accepts a host key it cannot
// check. An FTPS upstream's certificate is always verified against
// tls_ca_file or the system roots and the host name (tls_server_name when
// set); tls_cert_sha256 pins are checked in addition. The tls_* keys are
// refused on sftp and ftp routes, passive_use_reply_address on sftp
// routes, and upstream_key, known_hosts, host_key_sha256, use_fstat and
// concurrent_reads on FTP and FTPS routes. user_at_host logins use sftp
// unless the rule that matches them sets user_at_host_scheme.
//
// Zones follow z/OS NETACCESS: a client belongs to the source zone with
// the longest network that holds its address (IPv4-mapped IPv6 unmapped
// first), and a network may not be in two zones. A partner belongs to the
// destination zone of the longest network holding its IP literal, or of
// the most specific host pattern matching its name (an exact name first,
// then the pattern with the most literal characters). A client or partner
// in no zone is matched only by rules without from (or to). Without a
// rules section, routes and user_at_host decide alone, as they always
// have. With one, a login that no rule matches is refused, and a route
// must still exist for the user (or user_at_host allow the host).
//
// Decoding is strict: an unknown key, a value of the wrong type, a key given
// twice and a second YAML document are all errors. Every problem found is
// returned together in a *LoadError, ordered by line (problems in a
// local_users_file come after, located in that file). An empty file (or
// one holding only comments) is a valid policy that denies every login.
//
// Load reads r and the local_users_file files the policy names: their
// hashes are part of the decision, so a missing or unreadable one is an
// error. It reads no other file (known_hosts, keys, secrets, certificates)
// and not the environment; CheckFiles looks at those files, and Lint
// looks for rules and networks that can never take effect.
func Load(r io.Reader, name string) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", name, err)
	}
	if len(data) > maxPolicyBytes {
		return nil, &LoadError{Errs: []FieldError{{
			File: name,
			Msg:  fmt.Sprintf("file is larger than %d bytes; is this really a policy file?", maxPolicyBytes),
		}}}
	}
	return loadData(data, name, nil)
}

// loadData is Load after reading; readFile reads local_users_file files
// (nil means readUsersFile, the file system). Tests pass their own.
func loadData(data []byte, name string, readFile func(string) ([]byte, error)) (*Policy, error) {
	l := &loader{name: name, readFile: readFile}
	p := l.load(data)
	if len(l.errs) > 0 {
		// The policy file's problems first, by line; then those of the
		// users files it names, by file and line.
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i], l.errs[j]
			if (a.File == name) != (b.File == name) {
				return a.File == name
			}
			if a.File != b.File {
				return a.File < b.File
			}
			return a.Line < b.Line
		})
		return nil, &LoadError{Errs: l.errs}
	}
	return p, nil
}

// loader collects the problems of one Load call.
type loader struct {
	name     string
	errs     []FieldError
	readFile func(string) ([]byte, error)
}

func (l *loader) errorf(line int, format string, args ...any) {
	l.errs = append(l.errs, FieldError{File: l.name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) load(data []byte) *Policy {
	p := &Policy{name: l.name}

	// First pass: the document as a node tree, to find the one document,
	// reject a second, and know on which line each route starts.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return p // empty or comments only: deny everything
		}
		l.yamlError(err)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.errorf(extra.Line, "a second YAML document is not allowed; a policy file holds exactly one")
	case errors.Is(err, io.EOF):
	default:
		l.yamlError(err)
	}
	if len(doc.Content) == 0 {
		return p
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return p // "---" or "~" alone: as empty
	}
	if root.Kind != yaml.MappingNode {
		l.errorf(root.Line, "the policy must be a mapping with the keys version, known_hosts, user_at_host and routes; got %s", describeNode(root))
		return nil
	}

	// Second pass: strict decoding into the raw structs, which reports
	// unknown keys, repeated keys and wrongly typed values.
	var raw rawPolicy
	sd := yaml.NewDecoder(bytes.NewReader(data))
	sd.KnownFields(true)
	if err := sd.Decode(&raw); err != nil {
		l.yamlError(err)
	}

	switch {
	case raw.Version.Bad:
	case !raw.Version.Set:
		l.errorf(root.Line, "version is required; add \"version: 1\"")
	case raw.Version.V != 1:
		l.errorf(raw.Version.Line, "version %d is not supported; this ftpgate reads version 1", raw.Version.V)
	}

	var topKH string
	if raw.KnownHosts.ok() {
		if raw.KnownHosts.V == "" {
			l.errorf(raw.KnownHosts.Line, "known_hosts is empty; give a file path or remove the key")
		}
		topKH = raw.KnownHosts.V
		p.files = append(p.files, fileRef{what: "known_hosts", path: topKH, line: raw.KnownHosts.Line})
	}

	if raw.LocalUsersFile.ok() {
		p.usersFile = l.usersFile(&raw.LocalUsersFile, "local_users_file", p)
	}

	if raw.UserAtHost != nil {
		line := root.Line
		if n := mapValue(root, "user_at_host"); n != nil {
			line = n.Line
		}
		p.userAtHost = l.compileUserAtHost(raw.UserAtHost, line, topKH, p)
	}

	p.groups = l.compileGroups(raw.Groups, mapValue(root, "groups"))
	p.zones = l.compileZones(raw.Zones, mapValue(root, "zones"), p.groups)
	if n := mapValue(root, "rules"); n != nil {
		p.hasRules = true
		items, empty := seqItems(n)
		for _, line := range empty {
			l.errorf(line, "empty rule; remove the \"-\" or give the rule's keys")
		}
		if len(items) == 0 && len(empty) == 0 && !l.hasErrorAt(n.Line) {
			l.errorf(n.Line, "rules is empty; list rules, or remove the key to let routes and user_at_host decide alone")
		}
		p.rules = l.compileRules(raw.Rules, items, p.zones, p.groups, p)
	}

	lines, empty := routeLines(mapValue(root, "routes"))
	for _, line := range empty {
		l.errorf(line, "empty route; remove the \"-\" or give the route's keys")
	}
	seen := make(map[string]int)  // lower-cased user -> line of first route
	names := make(map[string]int) // route name -> line of first route
	p.byUser = make(map[string]int)
	for i := range raw.Routes {
		line := root.Line
		if i < len(lines) {
			line = lines[i]
		}
		rt, ok := l.compileRoute(&raw.Routes[i], line, topKH, p)
		// Duplicates are looked for even among routes with other
		// problems, so that one pass reports them all.
		key := asciiLower(rt.User)
		firstUser, dupUser := seen[key]
		firstName, dupName := names[rt.Name]
		switch {
		case rt.User != "" && dupUser:
			l.errorf(line, "route user %q is already used by the route at line %d (users are matched without regard to case)", rt.User, firstUser)
			ok = false
		case rt.Name != "" && dupName:
			l.errorf(line, "route name %q is already used by the route at line %d", rt.Name, firstName)
			ok = false
		}
		if rt.User != "" && !dupUser {
			seen[key] = line
		}
		if rt.Name != "" && !dupName {
			names[rt.Name] = line
		}
		if ok {
			p.byUser[key] = len(p.routes)
			p.routes = append(p.routes, rt)
			upLine := raw.Routes[i].Upstream.Line
			if upLine == 0 {
				upLine = line
			}
			p.routeDest = append(p.routeDest, l.routeDestZone(&rt, upLine, p))
		}
	}
	return p
}

// hasErrorAt reports whether a problem has been reported at line.
func (l *loader) hasErrorAt(line int) bool {
	for _, e := range l.errs {
		if e.File == l.name && e.Line == line {
			return true
		}
	}
	return false
}

// routeDestZone finds the destination zone of a route's partner and, for
// a plain-FTP partner, checks that some warn rule with plain_ftp: true
// could let a session through to it.
func (l *loader) routeDestZone(rt *Route, upLine int, p *Policy) int {
	addr, host := routeHostKey(rt.Upstream.Host)
	dest, _ := p.zones.destZoneOf(addr, host)
	if !rt.Upstream.IsPlainFTP() {
		return dest
	}
	dz, user := p.zones.destName(dest), asciiLower(rt.User)
	for i := range p.rules {
		r := &p.rules[i]
		if r.action == ActionWarn && r.plainFTP && r.matchesTo(dz) && r.matchesUser(user) {
			return dest
		}
	}
	l.errorf(upLine, "route %q: upstream ftp:// is plain FTP, and no rule with action: warn and plain_ftp: true can match it (destination zone %s, user %q); add one, or use ftpes:// or ftps://",
		rt.Name, zoneText(dz), rt.User)
	return dest
}

// routeHostKey splits a route's host into an address or a lower-cased name
// for zone matching.
func routeHostKey(h string) (netip.Addr, string) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), ""
	}
	return netip.Addr{}, asciiLower(h)
}

// Rule names a route may not take, because decisions use them for other
// rules and the audit trail must stay unambiguous.
var reservedRuleNames = map[string]bool{
	RuleUserAtHost:  true,
	RuleDefaultDeny: true,
}

func (l *loader) compileRoute(raw *rawRoute, line int, topKH string, p *Policy) (Route, bool) {
	nerr := len(l.errs)
	rt := Route{Line: line}

	switch {
	case raw.User.Bad:
	case raw.User.V == "":
		l.errorf(line, "route: user is required")
	case strings.Contains(raw.User.V, "@"):
		l.errorf(raw.User.Line, "route user %q must not contain @; user@host logins are configured under user_at_host", raw.User.V)
	case hasControl(raw.User.V):
		l.errorf(raw.User.Line, "route user %q contains control characters", raw.User.V)
	default:
		rt.User = raw.User.V
	}

	rt.Name = rt.User
	if raw.Name.ok() {
		switch {
		case raw.Name.V == "":
			l.errorf(raw.Name.Line, "route name is empty; remove the key to use the user name")
		case reservedRuleNames[raw.Name.V]:
			l.errorf(raw.Name.Line, "route name %q is reserved", raw.Name.V)
		case hasControl(raw.Name.V):
			l.errorf(raw.Name.Line, "route name %q contains control characters", raw.Name.V)
		default:
			rt.Name = raw.Name.V
		}
	} else if reservedRuleNames[rt.Name] {
		l.errorf(line, "route user %q is a reserved rule name; give the route a different name", rt.Name)
	}

	// label names the route in messages, once it has a name.
	label := "route"
	if rt.Name != "" {
		label = "route " + strconv.Quote(rt.Name)
	}

	hasBcrypt := raw.PasswordBcrypt.ok() && raw.PasswordBcrypt.V != ""
	authOK := true
	switch {
	case raw.Auth.Bad:
		authOK = false
	case !raw.Auth.Set:
		if hasBcrypt {
			rt.Auth = AuthLocal
		}
	case raw.Auth.V == "local":
		rt.Auth = AuthLocal
	case raw.Auth.V == "passthrough":
		rt.Auth = AuthPassthrough
	default:
		authOK = false
		l.errorf(raw.Auth.Line, "auth %q is not valid; want local or passthrough", raw.Auth.V)
	}

	if raw.PasswordBcrypt.ok() {
		switch {
		case raw.PasswordBcrypt.V == "":
			l.errorf(raw.PasswordBcrypt.Line, "password_bcrypt is empty")
		case !validBcrypt(raw.PasswordBcrypt.V):
			// Never print the hash: it is not the password, but it
			// is still material for an offline guessing attack.
			l.errorf(raw.PasswordBcrypt.Line, "password_bcrypt is not a bcrypt hash (want $2a$, $2b$ or $2y$ with a cost, as htpasswd -B makes)")
		default:
			rt.PasswordBcrypt = raw.PasswordBcrypt.V
		}
	}

	up, upOK := l.compileUpstreamURL(&raw.Upstream, line, label, p.hasRules)
	rt.Upstream = up
	// ftps and ftp tell which scheme-specific keys apply: ftps for FTP
	// over TLS, ftp for any FTP partner (over TLS or plain), which logs in
	// with USER and PASS. They are taken from the URL's scheme even when
	// the rest of the URL is wrong, so that one mistake in the URL does
	// not also bring complaints about keys.
	ftps, ftp := up.IsFTPS(), up.speaksFTP()
	if !upOK && raw.Upstream.ok() {
		scheme := urlScheme(raw.Upstream.V)
		ftps = scheme == "ftps" || scheme == "ftpes"
		ftp = ftps || scheme == "ftp"
	}

	if authOK {
		switch rt.Auth {
		case AuthLocal:
			if !raw.PasswordBcrypt.Set {
				l.localUser(rt.User, line, label, p)
			}
			switch {
			case ftp && !raw.UpstreamPassword.Set:
				kind := "FTPS"
				if !ftps {
					kind = "FTP"
				}
				l.errorf(line, "%s: auth local needs upstream_password to log in at the %s partner", label, kind)
			case !ftp && !raw.UpstreamPassword.Set && !raw.UpstreamKey.Set:
				l.errorf(line, "%s: auth local needs upstream_password or upstream_key to log in at the partner", label)
			}
			if upOK && up.User == "" {
				l.errorf(raw.Upstream.Line, "%s: auth local needs the partner user in the upstream URL (%s://user@host/...)", label, up.Scheme)
			}
		case AuthPassthrough:
			if raw.PasswordBcrypt.Set {
				l.errorf(raw.PasswordBcrypt.Line, "%s: password_bcrypt is only used with auth local; with passthrough the partner checks the client's password", label)
			}
			if raw.UpstreamPassword.Set {
				l.errorf(raw.UpstreamPassword.Line, "%s: upstream_password is not allowed with auth passthrough: the client's password is used", label)
			}
			if raw.UpstreamKey.Set && !ftp {
				l.errorf(raw.UpstreamKey.Line, "%s: upstream_key is not allowed with auth passthrough: the client's password is used", label)
			}
		}
	}
	if ftp {
		// FTP logs in with USER and PASS; SSH keys and SFTP options
		// have no meaning there.
		for _, k := range []struct {
			set  bool
			line int
			key  string
		}{
			{raw.UpstreamKey.Set, raw.UpstreamKey.Line, "upstream_key"},
			{raw.UpstreamKeyPassphrase.Set && !raw.UpstreamKey.Set, raw.UpstreamKeyPassphrase.Line, "upstream_key_passphrase"},
			{raw.UseFstat.Set, raw.UseFstat.Line, "use_fstat"},
			{raw.ConcurrentReads.Set, raw.ConcurrentReads.Line, "concurrent_reads"},
		} {
			if k.set {
				l.errorf(k.line, "%s: %s applies to sftp upstreams only; an FTP or FTPS partner logs in with USER and PASS (upstream_password)", label, k.key)
			}
		}
		for _, k := range []struct {
			set  bool
			line int
			key  string
		}{
			{raw.KnownHosts.Set, raw.KnownHosts.Line, "known_hosts"},
			{raw.HostKeySHA256.Set, raw.HostKeySHA256.Line, "host_key_sha256"},
		} {
			if k.set {
				l.errorf(k.line, "%s: %s applies to sftp upstreams only; an FTPS partner's certificate is checked against tls_ca_file (or the system roots) and tls_cert_sha256", label, k.key)
			}
		}
	}

	rt.Upstream.Password = l.secret(&raw.UpstreamPassword, "upstream_password", p)
	if raw.UpstreamKey.ok() {
		if raw.UpstreamKey.V == "" {
			l.errorf(raw.UpstreamKey.Line, "upstream_key is empty; give a key file path or remove the key")
		}
		rt.Upstream.KeyFile = raw.UpstreamKey.V
		p.files = append(p.files, fileRef{what: "upstream_key", path: raw.UpstreamKey.V, line: raw.UpstreamKey.Line})
	}
	rt.Upstream.KeyPassphrase = l.secret(&raw.UpstreamKeyPassphrase, "upstream_key_passphrase", p)
	if raw.UpstreamKeyPassphrase.Set && !raw.UpstreamKey.Set && !ftp {
		l.errorf(raw.UpstreamKeyPassphrase.Line, "%s: upstream_key_passphrase is set but upstream_key is not", label)
	}

	if ftps {
		l.compileTLS(raw, &rt.Upstream, label, p)
		return rt, len(l.errs) == nerr
	}
	l.noTLSKeys(raw, label, ftp)
	if ftp {
		// Plain FTP: no certificate, no host key; only the passive
		// address choice applies.
		rt.Upstream.PassiveUseReplyAddress = raw.PassiveUseReplyAddress.ok() && raw.PassiveUseReplyAddress.V
		return rt, len(l.errs) == nerr
	}

	hk := l.hostKeys(&raw.KnownHosts, &raw.HostKeySHA256, topKH, line, label, true)
	if hk.knownHostsLine > 0 {
		p.files = append(p.files, fileRef{what: "known_hosts", path: hk.knownHosts, line: hk.knownHostsLine})
	}
	rt.Upstream.KnownHosts, rt.Upstream.HostKeySHA256 = hk.knownHosts, hk.pins
	rt.Upstream.UseFstat = raw.UseFstat.V
	rt.Upstream.NoConcurrentReads = raw.ConcurrentReads.Set && !raw.ConcurrentReads.Bad && !raw.ConcurrentReads.V

	return rt, len(l.errs) == nerr
}

// compileTLS validates the tls_* keys and passive_use_reply_address of an
// FTPS route into up. Certificate verification itself has no switch: it is
// always on.
func (l *loader) compileTLS(raw *rawRoute, up *Upstream, label string, p *Policy) {
	up.TLSCAFile = l.tlsFile(&raw.TLSCAFile, "tls_ca_file", label, p)
	up.TLSClientCert = l.tlsFile(&raw.TLSClientCert, "tls_client_cert", label, p)
	up.TLSClientKey = l.tlsFile(&raw.TLSClientKey, "tls_client_key", label, p)
	switch {
	case raw.TLSClientCert.Set && !raw.TLSClientKey.Set:
		l.errorf(raw.TLSClientCert.Line, "%s: tls_client_cert is set but tls_client_key is not; give both or neither", label)
	case raw.TLSClientKey.Set && !raw.TLSClientCert.Set:
		l.errorf(raw.TLSClientKey.Line, "%s: tls_client_key is set but tls_client_cert is not; give both or neither", label)
	}

	if raw.TLSCertSHA256.ok() {
		for _, fp := range raw.TLSCertSHA256.V {
			if fp.Bad {
				continue
			}
			pin, ok := normalizeCertPin(fp.V)
			if !ok {
				l.errorf(fp.Line, "%s: tls_cert_sha256 %q is not a SHA-256 certificate fingerprint (want \"SHA256:\" and 43 base64 characters, or 64 hex digits as openssl x509 -fingerprint -sha256 prints)", label, fp.V)
				continue
			}
			if !slices.Contains(up.TLSCertSHA256, pin) {
				up.TLSCertSHA256 = append(up.TLSCertSHA256, pin)
			}
		}
	}

	if raw.TLSMinVersion.ok() {
		switch raw.TLSMinVersion.V {
		case "1.2":
			up.TLSMinVersion = tls.VersionTLS12
		case "1.3":
			up.TLSMinVersion = tls.VersionTLS13
		case "1.0", "1.1", "1":
			l.errorf(raw.TLSMinVersion.Line, "%s: tls_min_version %s is not allowed; the lowest is 1.2", label, raw.TLSMinVersion.V)
		default:
			l.errorf(raw.TLSMinVersion.Line, "%s: tls_min_version %q is not valid; want \"1.2\" or \"1.3\"", label, raw.TLSMinVersion.V)
		}
	}

	if raw.TLSCiphers.ok() {
		if up.TLSMinVersion == tls.VersionTLS13 {
			l.errorf(raw.TLSCiphers.Line, "%s: tls_ciphers chooses TLS 1.2 suites, and tls_min_version 1.3 never uses them; remove one", label)
		}
		seen := make(map[uint16]int)
		for _, c := range raw.TLSCiphers.V {
			if c.Bad {
				continue
			}
			id, msg := cipherSuiteID(c.V)
			if msg != "" {
				l.errorf(c.Line, "%s: tls_ciphers: %q %s", label, c.V, msg)
				continue
			}
			if first, dup := seen[id]; dup {
				l.errorf(c.Line, "%s: tls_ciphers: %q is given twice (first at line %d)", label, c.V, first)
				continue
			}
			seen[id] = c.Line
			up.TLSCiphers = append(up.TLSCiphers, id)
		}
		if len(raw.TLSCiphers.V) == 0 {
			l.errorf(raw.TLSCiphers.Line, "%s: tls_ciphers is empty; list suites or remove the key to use Go's defaults", label)
		}
	}

	if raw.TLSServerName.ok() {
		name := raw.TLSServerName.V
		if validHostName(name) || validIPLiteral(name) {
			up.TLSServerName = name
		} else {
			l.errorf(raw.TLSServerName.Line, "%s: tls_server_name %q is not a host name or IP address", label, name)
		}
	}
	up.PassiveUseReplyAddress = raw.PassiveUseReplyAddress.ok() && raw.PassiveUseReplyAddress.V
}

// tlsFile validates a key naming a PEM file and notes it for CheckFiles.
func (l *loader) tlsFile(f *field[string], key, label string, p *Policy) string {
	if !f.ok() {
		return ""
	}
	if f.V == "" {
		l.errorf(f.Line, "%s: %s is empty; give a file path or remove the key", label, key)
		return ""
	}
	p.files = append(p.files, fileRef{what: key, path: f.V, line: f.Line})
	return f.V
}

// noTLSKeys reports the FTPS-only keys on a route that is not FTPS. A
// plain-FTP route (ftp) may still set passive_use_reply_address.
func (l *loader) noTLSKeys(raw *rawRoute, label string, ftp bool) {
	for _, k := range []struct {
		set  bool
		line int
		key  string
	}{
		{raw.TLSCAFile.Set, raw.TLSCAFile.Line, "tls_ca_file"},
		{raw.TLSCertSHA256.Set, raw.TLSCertSHA256.Line, "tls_cert_sha256"},
		{raw.TLSMinVersion.Set, raw.TLSMinVersion.Line, "tls_min_version"},
		{raw.TLSCiphers.Set, raw.TLSCiphers.Line, "tls_ciphers"},
		{raw.TLSClientCert.Set, raw.TLSClientCert.Line, "tls_client_cert"},
		{raw.TLSClientKey.Set, raw.TLSClientKey.Line, "tls_client_key"},
		{raw.TLSServerName.Set, raw.TLSServerName.Line, "tls_server_name"},
		{raw.PassiveUseReplyAddress.Set && !ftp, raw.PassiveUseReplyAddress.Line, "passive_use_reply_address"},
	} {
		if k.set {
			l.errorf(k.line, "%s: %s applies to ftps:// and ftpes:// upstreams only", label, k.key)
		}
	}
}

// compileUpstreamURL checks a route's upstream URL and turns it into the
// address part of an Upstream. Messages never repeat the URL itself, which
// may hold a password by mistake.
func (l *loader) compileUpstreamURL(f *field[string], line int, label string, plainFTP bool) (Upstream, bool) {
	if f.Bad {
		return Upstream{}, false
	}
	if f.V == "" {
		l.errorf(line, "%s: upstream is required (sftp://, ftps:// or ftpes://[user@]host[:port][/dir])", label)
		return Upstream{}, false
	}
	up, msg := parseUpstreamURL(f.V, plainFTP)
	if msg != "" {
		l.errorf(f.Line, "%s: upstream: %s", label, msg)
		return Upstream{}, false
	}
	return up, true
}

// hostKeySource is the effective host-key configuration of one upstream.
type hostKeySource struct {
	knownHosts     string
	knownHostsLine int // line of the route's own known_hosts; 0 for the default
	pins           []string
}

// hostKeys validates known_hosts and host_key_sha256 and applies the
// top-level known_hosts default, which is used only when neither is set.
// When required, it reports an error if no source remains: ftpgate never
// accepts a host key it cannot check.
func (l *loader) hostKeys(kh *field[string], pins *field[[]field[string]], topKH string, line int, what string, required bool) hostKeySource {
	var hk hostKeySource
	reported := kh.Bad || pins.Bad
	if kh.ok() {
		if kh.V == "" {
			l.errorf(kh.Line, "known_hosts is empty; give a file path or remove the key")
			reported = true
		}
		hk.knownHosts = kh.V
		hk.knownHostsLine = kh.Line
	}
	if pins.ok() {
		for _, fp := range pins.V {
			if fp.Bad {
				reported = true
				continue
			}
			if !validFingerprint(fp.V) {
				l.errorf(fp.Line, "host_key_sha256 %q is not a SHA-256 host-key fingerprint (want \"SHA256:\" and 43 base64 characters, as ssh-keygen -l prints)", fp.V)
				reported = true
				continue
			}
			hk.pins = append(hk.pins, fp.V)
		}
	}
	if !kh.Set && !pins.Set {
		hk.knownHosts = topKH
	}
	if required && !reported && hk.knownHosts == "" && len(hk.pins) == 0 {
		l.errorf(line, "%s has no host-key source: set known_hosts or host_key_sha256 (or a top-level known_hosts); ftpgate never accepts an unknown host key", what)
	}
	return hk
}

// secret validates a secret reference and notes a file reference for
// CheckFiles.
func (l *loader) secret(f *secretField, key string, p *Policy) Secret {
	if !f.Set || f.Bad {
		return Secret{}
	}
	s := f.V
	switch {
	case s.Env != "" && s.File != "":
		l.errorf(f.Line, "%s: set exactly one of env and file, not both", key)
	case s.Env == "" && s.File == "":
		l.errorf(f.Line, "%s: set one of env or file, e.g. {env: NAME} or {file: /run/secrets/name}", key)
	case s.Env != "" && !validEnvName(s.Env):
		l.errorf(f.Line, "%s: %q is not an environment variable name", key, s.Env)
	case s.File != "":
		p.files = append(p.files, fileRef{what: key + " file", path: s.File, line: f.Line})
	}
	return s
}

func (l *loader) compileUserAtHost(raw *rawUserAtHost, line int, topKH string, p *Policy) *userAtHostRule {
	rule := &userAtHostRule{
		template: Upstream{Scheme: "sftp", Port: 22},
		line:     line,
	}
	enabled := raw.Enabled.ok() && raw.Enabled.V

	if raw.Scheme.ok() && raw.Scheme.V != "sftp" {
		l.errorf(raw.Scheme.Line, "user_at_host: scheme %q not supported (want sftp)", raw.Scheme.V)
	}
	if raw.Port.ok() {
		if raw.Port.V < 1 || raw.Port.V > 65535 {
			l.errorf(raw.Port.Line, "user_at_host: port %d is out of range 1-65535", raw.Port.V)
		} else {
			rule.template.Port = raw.Port.V
		}
	}

	if raw.AllowHosts.ok() {
		for _, e := range raw.AllowHosts.V {
			if e.Bad {
				continue
			}
			m, msg := compileHostPattern(e.V)
			if msg != "" {
				l.errorf(e.Line, "user_at_host: allow_hosts entry %q: %s", e.V, msg)
				continue
			}
			rule.allow = append(rule.allow, m)
		}
	}
	if enabled && len(raw.AllowHosts.V) == 0 && !raw.AllowHosts.Bad {
		at := line
		if raw.AllowHosts.Set {
			at = raw.AllowHosts.Line
		}
		l.errorf(at, "user_at_host: allow_hosts is empty; with enabled: true list the host patterns, CIDR prefixes or IP addresses clients may reach")
	}

	// The values are checked even while the feature is off, but a
	// host-key source is required, and its file checked by CheckFiles,
	// only when it is on.
	hk := l.hostKeys(&raw.KnownHosts, &raw.HostKeySHA256, topKH, line, "user_at_host", enabled)
	if enabled && hk.knownHostsLine > 0 {
		p.files = append(p.files, fileRef{what: "known_hosts", path: hk.knownHosts, line: hk.knownHostsLine})
	}
	rule.template.KnownHosts, rule.template.HostKeySHA256 = hk.knownHosts, hk.pins
	rule.template.UseFstat = raw.UseFstat.V
	rule.template.NoConcurrentReads = raw.ConcurrentReads.Set && !raw.ConcurrentReads.Bad && !raw.ConcurrentReads.V

	if !enabled {
		return nil
	}
	return rule
}

// yamlLineRE matches the line prefix the YAML library puts on its messages.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlMsgRewrites turn the YAML library's messages, which name Go types,
// into ones that name parts of the policy file.
var yamlMsgRewrites = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^field (.+) not found in type (\S+)$`), `unknown key "$1" in $2`},
	{regexp.MustCompile(`^field (.+) already set in type (\S+)$`), `key "$1" is given twice in $2`},
	{regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`), `key "$1" is given twice (first at line $2)`},
}

var yamlTypeNames = strings.NewReplacer(
	"*policy.rawUserAtHost", "user_at_host",
	"policy.rawUserAtHost", "user_at_host",
	"policy.rawRoute", "route",
	"policy.rawPolicy", "the top level",
	"*policy.rawZones", "zones",
	"policy.rawZones", "zones",
	"policy.rawSourceZone", "a source zone",
	"policy.rawDestZone", "a destination zone",
	"policy.rawRule", "rule",
	"*policy.rawDataPorts", "data_ports",
	"policy.rawDataPorts", "data_ports",
)

// yamlKindRE matches the library's message for a value of the wrong kind,
// such as a list where a route should be.
var yamlKindRE = regexp.MustCompile(`^cannot unmarshal !!(\w+)(?: .*)? into (\S+)$`)

var yamlTagNames = map[string]string{"seq": "a list", "map": "a mapping"}

var yamlWantNames = map[string]string{
	"[]policy.rawRoute":               "a list of routes",
	"policy.rawRoute":                 "a route (a mapping of keys)",
	"*policy.rawUserAtHost":           "a mapping of user_at_host settings",
	"policy.rawUserAtHost":            "a mapping of user_at_host settings",
	"[]policy.rawRule":                "a list of rules",
	"policy.rawRule":                  "a rule (a mapping of keys)",
	"*policy.rawZones":                "a mapping with sources and destinations",
	"policy.rawZones":                 "a mapping with sources and destinations",
	"map[string]policy.rawSourceZone": "a mapping of source zones by name",
	"map[string]policy.rawDestZone":   "a mapping of destination zones by name",
	"policy.rawSourceZone":            "a source zone (a mapping with networks, users, groups)",
	"policy.rawDestZone":              "a destination zone (a mapping with networks, hosts)",
	"map[string]policy.field[[]github.com/ftpgate/ftpgate/policy.field[string]]": "a mapping of groups by name, each a list of users",
	"*policy.rawDataPorts": "a mapping of data_ports settings",
	"policy.rawDataPorts":  "a mapping of data_ports settings",
}

// yamlError turns an error from the YAML library into located messages.
func (l *loader) yamlError(err error) {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		line := 0
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = sm[2]
		} else {
			m = strings.TrimPrefix(m, "yaml: ")
		}
		if sm := yamlKindRE.FindStringSubmatch(m); sm != nil && yamlWantNames[sm[2]] != "" {
			got := yamlTagNames[sm[1]]
			if got == "" {
				got = "a plain value"
			}
			m = "want " + yamlWantNames[sm[2]] + ", got " + got
		}
		for _, rw := range yamlMsgRewrites {
			m = rw.re.ReplaceAllString(m, rw.repl)
		}
		m = yamlTypeNames.Replace(m)
		l.errs = append(l.errs, FieldError{File: l.name, Line: line, Msg: m})
	}
}

// mapKey returns the key node for key in mapping m, or nil.
func mapKey(m *yaml.Node, key string) *yaml.Node {
	m = resolveAlias(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k
		}
	}
	return nil
}

// mapValue returns the value node for key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	m = resolveAlias(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// routeLines returns the line of each item of the routes sequence that
// decodes into a rawRoute, and the lines of empty items. The YAML library
// drops items that are not mappings from the decoded slice (reporting those
// of the wrong kind, but not empty ones), so they are skipped here too,
// keeping lines[i] the line of raw.Routes[i].
func routeLines(n *yaml.Node) (lines, empty []int) {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil, nil
	}
	lines = make([]int, 0, len(n.Content))
	for _, item := range n.Content {
		switch r := resolveAlias(item); {
		case r == nil:
		case r.Kind == yaml.MappingNode:
			lines = append(lines, item.Line)
		case r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null":
			empty = append(empty, item.Line)
		}
	}
	return lines, empty
}

// seqItems is routeLines for the rules: the item nodes that decode into a
// rawRule, and the lines of empty items.
func seqItems(n *yaml.Node) (items []*yaml.Node, empty []int) {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil, nil
	}
	for _, item := range n.Content {
		switch r := resolveAlias(item); {
		case r == nil:
		case r.Kind == yaml.MappingNode:
			items = append(items, r)
		case r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null":
			empty = append(empty, item.Line)
		}
	}
	return items, empty
}

// localUser checks that an auth local route without password_bcrypt has
// an entry in a local_users_file: the top-level one or a rule's.
func (l *loader) localUser(user string, line int, label string, p *Policy) {
	var files []string
	if p.usersFile != "" {
		files = append(files, p.usersFile)
	}
	for i := range p.rules {
		if f := p.rules[i].usersFile; f != "" && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		l.errorf(line, "%s: auth local needs password_bcrypt, the hash the client's password is checked against (or a local_users_file with an entry for the user)", label)
		return
	}
	for _, f := range files {
		if p.userFiles[f][asciiLower(user)] != "" {
			return
		}
	}
	l.errorf(line, "%s: auth local without password_bcrypt needs an entry for user %q in local_users_file (%s)", label, user, strings.Join(files, ", "))
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	// A bounded walk: aliases cannot form cycles in a parsed document,
	// but there is no reason to trust that here.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// describeNode names what a node holds, for "want X, got Y" messages.
func describeNode(n *yaml.Node) string {
	n = resolveAlias(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an unexpected YAML node"
}
