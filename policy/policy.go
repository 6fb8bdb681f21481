// Package policy is the single place where ftpgate decides who may use the
// gateway, which partner a session goes to, and how it logs in there.
//
// Loading (Load) is separate from deciding (Policy.Login): Load parses the
// strict YAML policy file, validates it and compiles it once; deciding is a
// pure function of the compiled policy and the request, with no I/O and no
// clock, and it denies by default. Credentials are references (a file or an
// environment variable) resolved only when the upstream is dialled, and their
// String methods never print a value.
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
	Client netip.Addr // the client's address, unmapped (IPv4 as IPv4)
	User   string     // the USER argument exactly as sent
}

// Decision is the answer to a LoginRequest.
type Decision struct {
	Allow  bool
	Rule   string // what decided: a route name, "user@host", or "default-deny"
	Reason string // why, for the log and the audit trail; never a secret
	Auth   AuthMode
	// Route is the matched route, nil for user@host sessions.
	Route *Route
	// Upstream is the partner to dial, with user@host values filled in.
	Upstream Upstream
}
