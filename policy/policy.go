// Package policy is the single place where ftpgate decides who may use the
// gateway, which partner a session goes to, and how it logs in there.
//
// Loading (Load) is separate from deciding (Policy.Login): Load parses the
// strict YAML policy file, validates it and compiles it once; deciding is a
// pure function of the compiled policy and the request, with no I/O and no
// clock, and it denies by default. Credentials are references (a file or an
// environment variable) resolved only when the upstream is dialled, and their
// String methods never print a value.
//
// A policy may put clients and partners in zones (named networks, as z/OS
// NETACCESS does: the most specific network wins) and decide with ordered
// rules, first match wins, default deny: upgrade (SFTP or FTPS), block, or
// warn (a migration mode that may reach a plain-FTP partner and marks the
// session insecure). The Decision of an allowed login then carries the
// rule's session controls, which the proxy asks about as the session goes
// on: Command, Path, SiteFiletypeAllowed, MaxFileSize, DataPorts and
// RequireTLS, all pure. A policy without rules decides as routes and
// user_at_host always have. Policy.Explain tells how a login is decided,
// and Policy.Lint finds rules, routes and networks that can never take
// effect.
package policy

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// AuthMode says who checks the client's password.
type AuthMode int

const (
	// AuthPassthrough sends the client's password to the partner; the
	// partner's answer decides the login.
	AuthPassthrough AuthMode = iota
	// AuthLocal checks the client's password against a bcrypt hash in the
	// policy and logs in upstream with the route's own credentials, so a
	// batch job no longer carries the partner's password.
	AuthLocal
)

func (m AuthMode) String() string {
	if m == AuthLocal {
		return "local"
	}
	return "passthrough"
}

// Secret is a reference to a secret value: an environment variable or a file
// (for example one mounted by Kubernetes). The zero Secret refers to nothing.
// Its String method names the reference, never the value.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// Upstream describes the partner a session is carried to and how to log in
// there. It is a plain value: translate dials it, policy never does.
type Upstream struct {
	Scheme string // "sftp", "ftps" (implicit TLS) or "ftpes" (explicit TLS)
	Host   string // host name or IP literal, without brackets
	Port   int    // 1..65535
	User   string // login name at the partner
	Dir    string // start directory ("" means the partner's default)

	// Password is the partner password for AuthLocal routes. Empty for
	// passthrough, where the client's password is used.
	Password Secret
	// KeyFile is an SSH private key file (OpenSSH or PEM format) for
	// public-key login; KeyPassphrase unlocks it when it is encrypted.
	// SFTP only.
	KeyFile       string
	KeyPassphrase Secret

	// KnownHosts is an OpenSSH known_hosts file; HostKeySHA256 lists pinned
	// host-key fingerprints in OpenSSH form ("SHA256:base64"). For SFTP at
	// least one of them is set: validation refuses an upstream that would
	// accept any host key. FTPS upstreams leave both empty.
	KnownHosts    string
	HostKeySHA256 []string

	// UseFstat makes the SFTP client ask for sizes with fstat on the open
	// handle instead of stat on the name; some mainframe and "read-once"
	// servers (z/OS Co:Z, some MFT products) need it.
	UseFstat bool
	// NoConcurrentReads turns pkg/sftp's pipelined reads off, for servers
	// that cannot answer read requests out of order.
	NoConcurrentReads bool

	// The fields below apply to FTPS partners (Scheme "ftps" or "ftpes")
	// only; Load refuses them on SFTP routes. An FTPS partner's
	// certificate is always verified (chain and host name); there is no
	// setting that turns verification off.

	// TLSCAFile is a PEM file of the CA certificates the partner's chain
	// must lead to. Empty means the system roots.
	TLSCAFile string
	// TLSCertSHA256 pins the partner's leaf certificate, in addition to
	// the chain check: "SHA256:" and the unpadded base64 of the SHA-256 of
	// the certificate's DER bytes, the form host_key_sha256 uses. Empty
	// means no pin.
	TLSCertSHA256 []string
	// TLSMinVersion is the lowest TLS version accepted, as a crypto/tls
	// constant (0x0303 for TLS 1.2, 0x0304 for TLS 1.3). Zero means TLS
	// 1.2.
	TLSMinVersion uint16
	// TLSCiphers lists the TLS 1.2 cipher suites offered, as crypto/tls
	// IDs, in order of preference. Empty means Go's defaults. TLS 1.3
	// suites are not configurable.
	TLSCiphers []uint16
	// TLSClientCert and TLSClientKey are PEM files holding a client
	// certificate and its key for partners that require mutual TLS. Both
	// are set or neither.
	TLSClientCert string
	TLSClientKey  string
	// TLSServerName is the name sent as SNI and checked against the
	// partner's certificate. Empty means Host.
	TLSServerName string
	// PassiveUseReplyAddress makes the data connection go to the address a
	// 227 (PASV) reply names. By default that address is ignored and the
	// control connection's address is used, as z/OS PASSIVEIGNOREADDR
	// does, because partners behind NAT announce private addresses and a
	// hostile one could point the proxy at a third host.
	PassiveUseReplyAddress bool
}

// IsFTPS reports whether the upstream is an FTPS partner: "ftps" (implicit
// TLS) or "ftpes" (explicit TLS with AUTH TLS).
func (u Upstream) IsFTPS() bool { return u.Scheme == "ftps" || u.Scheme == "ftpes" }

// IsPlainFTP reports whether the upstream is a plain-FTP partner (scheme
// "ftp"): the session crosses the network in clear text. Load accepts such
// a route only when a rule with action warn and plain_ftp: true can match
// it, and Login allows it only under such a rule, with Decision.Insecure
// set.
func (u Upstream) IsPlainFTP() bool { return u.Scheme == "ftp" }

// speaksFTP reports whether the partner is reached with the FTP protocol
// (plain or over TLS) rather than SFTP: it logs in with USER and PASS, and
// SSH keys and SFTP options mean nothing there.
func (u Upstream) speaksFTP() bool { return u.IsFTPS() || u.IsPlainFTP() }

// clone returns a copy of u that shares no slices with u.
func (u Upstream) clone() Upstream {
	u.HostKeySHA256 = slices.Clone(u.HostKeySHA256)
	u.TLSCertSHA256 = slices.Clone(u.TLSCertSHA256)
	u.TLSCiphers = slices.Clone(u.TLSCiphers)
	return u
}

// Address is the host:port to dial.
func (u Upstream) Address() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// Route maps a proxy login name to a partner.
type Route struct {
	Name string // defaults to User
	User string // proxy login name, matched without regard to ASCII case
	Auth AuthMode
	// PasswordBcrypt is the bcrypt hash the client's password is checked
	// against when Auth is AuthLocal.
	PasswordBcrypt string
	Upstream       Upstream
	Line           int // line of the route in the policy file, for messages
}

// LoginRequest is what the proxy knows when a client has sent USER and PASS.
type LoginRequest struct {
	Client netip.Addr // the client's address; IPv4-mapped IPv6 is unmapped by Login
	User   string     // the USER argument exactly as sent
	// TLS reports whether the control connection is protected (AUTH TLS
	// done). A rule with require_tls: true refuses the login without it.
	TLS bool
}

// Actions a Decision can carry. A refused login always has ActionBlock,
// and an allowed one ActionUpgrade or ActionWarn.
const (
	// ActionUpgrade carries the session over SFTP or FTPS.
	ActionUpgrade = "upgrade"
	// ActionBlock refuses it.
	ActionBlock = "block"
	// ActionWarn is the migration mode of a rule with action: warn: the
	// session is allowed, and when it goes to a plain-FTP partner every
	// record of it is marked insecure (Decision.Insecure).
	ActionWarn = "warn"
)

// Decision is the answer to a LoginRequest. It is a plain value: the
// methods that answer later questions about the session (Command, Path,
// SiteFiletypeAllowed, MaxFileSize, DataPorts, RequireTLS) are pure
// functions of it and need no policy.
type Decision struct {
	Allow bool
	// Rule names what decided: a rule of the rules: section, a route name
	// (for a policy without rules), "user@host", "default-deny", or
	// "zone:NAME" when the users list of source zone NAME refused the user.
	Rule   string
	Reason string // why, for the log and the audit trail; never a secret
	Auth   AuthMode
	// Route is the matched route, nil for user@host sessions. For an
	// AuthLocal login whose hash comes from a local_users_file,
	// Route.PasswordBcrypt holds that hash.
	Route *Route
	// Upstream is the partner to dial, with user@host values filled in.
	Upstream Upstream

	// Zone is the client's source zone ("" when no zone's networks hold
	// the address), DestZone the partner's destination zone ("" when
	// none matches or the partner is not known).
	Zone     string
	DestZone string
	// Action is ActionUpgrade or ActionWarn for an allowed login and
	// ActionBlock for a refused one.
	Action string
	// Insecure is set when a warn rule lets the session go to a
	// plain-FTP partner: every record of the session should say so.
	Insecure bool

	// ctl holds the session controls of the rule that allowed the login;
	// nil for a policy without rules. It points into the immutable Policy.
	ctl *controls
}
