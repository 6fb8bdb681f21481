package policy

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// defaultPorts are the ports each upstream scheme defaults to: SSH, FTPS
// with implicit TLS (RFC 4217 section 2 calls it deprecated, but it is what
// port 990 speaks) and FTP with AUTH TLS on the FTP control port.
// Plain FTP (ftp) listens on the FTP control port.
var defaultPorts = map[string]int{"sftp": 22, "ftps": 990, "ftpes": 21, "ftp": 21}

// urlScheme returns the lower-cased scheme of s, "" when it has none. It
// looks only at the scheme, so it also answers for URLs that are
// otherwise wrong.
func urlScheme(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return ""
	}
	return asciiLower(scheme)
}

// parseUpstreamURL turns sftp://, ftps:// or ftpes://[user@]host[:port][/dir]
// into the address part of an Upstream; with plainFTP (a policy with
// rules) ftp:// as well. On failure it returns a message that does not
// repeat the URL, which may hold a password by mistake.
func parseUpstreamURL(s string, plainFTP bool) (Upstream, string) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Upstream{}, "not a valid URL: " + err.Error()
	}
	if u.Scheme == "" || u.Opaque != "" {
		return Upstream{}, "want sftp://[user@]host[:port][/dir] (or ftps:// or ftpes://)"
	}
	// url.Parse lower-cases the scheme.
	port, ok := defaultPorts[u.Scheme]
	switch {
	case u.Scheme == "ftp" && !plainFTP:
		return Upstream{}, "scheme \"ftp\" not supported: ftpgate never carries a session in clear text; use ftpes:// (AUTH TLS) or ftps:// (implicit TLS) (a migration can allow it for a partner with a rules: entry with action: warn and plain_ftp: true)"
	case !ok:
		return Upstream{}, "scheme " + strconv.Quote(u.Scheme) + " not supported (want sftp, ftps or ftpes)"
	}
	if _, has := u.User.Password(); has {
		return Upstream{}, "the URL must not hold a password; use upstream_password: {env: NAME} or {file: PATH}"
	}
	if u.RawQuery != "" || u.ForceQuery {
		return Upstream{}, "the URL must not have a query (?...)"
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return Upstream{}, "the URL must not have a fragment (#...)"
	}
	up := Upstream{Scheme: u.Scheme, Host: u.Hostname(), Port: port, Dir: u.Path}
	if u.User != nil {
		up.User = u.User.Username()
	}
	if up.Host == "" {
		return Upstream{}, "the URL names no host"
	}
	if hasControl(up.User) || hasControl(up.Dir) {
		return Upstream{}, "the URL holds control characters"
	}
	if strings.HasSuffix(u.Host, ":") {
		return Upstream{}, "empty port after host"
	}
	if p := u.Port(); p != "" {
		n, ok := parsePort(p)
		if !ok {
			return Upstream{}, "port " + strconv.Quote(p) + " is out of range 1-65535"
		}
		up.Port = n
	}
	return up, ""
}

// parsePort accepts 1 to 5 decimal digits with a value in 1..65535.
// strconv.Atoi alone would also take a sign.
func parsePort(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= 65535
}

// hostMatcher is one compiled allow_hosts entry: either a prefix, which
// IP literals are matched against, or a host-name glob, which names are.
// IP literals are never matched against globs, and names are never
// resolved to be matched against prefixes: deciding does no I/O.
type hostMatcher struct {
	entry  string       // as written in the policy, for reasons
	prefix netip.Prefix // valid for an address or CIDR entry
	glob   string       // lower-case path.Match pattern otherwise
}

func (m hostMatcher) match(addr netip.Addr, name string) bool {
	if m.prefix.IsValid() {
		return addr.IsValid() && m.prefix.Contains(addr)
	}
	if name == "" {
		return false
	}
	ok, err := path.Match(m.glob, name)
	return ok && err == nil
}

// compileHostPattern compiles one allow_hosts entry: a CIDR prefix, an IP
// address (IPv6 optionally in brackets) or a host-name glob with path.Match
// syntax, matched without regard to case. It returns a message on failure.
func compileHostPattern(s string) (hostMatcher, string) {
	m := hostMatcher{entry: s}
	switch {
	case s == "":
		return m, "empty entry"
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return m, "not a valid CIDR prefix"
		}
		if p.Addr().Is4In6() {
			return m, "write IPv4-mapped prefixes in IPv4 form"
		}
		m.prefix = p.Masked()
		return m, ""
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return m, "not a valid IPv6 address in brackets"
		}
		m.prefix = netip.PrefixFrom(a, a.BitLen())
		return m, ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return m, "IPv6 zones are not supported"
		}
		a = a.Unmap()
		m.prefix = netip.PrefixFrom(a, a.BitLen())
		return m, ""
	}
	g := asciiLower(s)
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		case c == '*', c == '?', c == '[', c == ']', c == '^', c == '\\':
		default:
			return m, "not a host-name pattern, CIDR prefix or IP address (unexpected " + strconv.QuoteRune(rune(c)) + ")"
		}
	}
	if _, err := path.Match(g, ""); err != nil {
		return m, "not a valid pattern: " + err.Error()
	}
	if looksNumeric(g) {
		return m, "looks like an IP address pattern; patterns match host names only, so use a CIDR prefix such as 10.0.0.0/8"
	}
	m.glob = g
	return m, ""
}

// looksNumeric reports whether a glob holds only digits, dots and pattern
// characters, with at least one digit: a pattern for addresses, which
// would never match a host name.
func looksNumeric(g string) bool {
	digit := false
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c >= '0' && c <= '9':
			digit = true
		case strings.IndexByte(".*?[]^\\-", c) >= 0:
		default:
			return false
		}
	}
	return digit
}

// validHostName reports whether s is a plausible DNS host name: labels of
// letters, digits, '-' and '_', 1 to 63 bytes each, 253 in all, no trailing
// dot, and a last label that is not all digits. The last rule refuses names
// such as "127.1" or "0x7f.1" that some resolvers read as IPv4 addresses,
// which would slip past the allow list's prefixes.
func validHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return false
	}
	// "0x7f" style: a hex number as the last label.
	if len(last) > 2 && (last[:2] == "0x" || last[:2] == "0X") && strings.Trim(last[2:], "0123456789abcdefABCDEF") == "" {
		return false
	}
	return true
}

// validFingerprint reports whether s is an OpenSSH SHA-256 fingerprint:
// "SHA256:" and the unpadded standard base64 of 32 bytes.
func validFingerprint(s string) bool {
	b64, ok := strings.CutPrefix(s, "SHA256:")
	if !ok {
		return false
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(b64)
	return err == nil && len(b) == 32
}

// normalizeCertPin accepts a certificate fingerprint as "SHA256:" and the
// base64 of the 32-byte digest (padded or not), or as 64 hex digits, with
// or without colons and with an optional "SHA256:" or "sha256 Fingerprint="
// prefix (openssl x509 -fingerprint -sha256 prints the latter). It returns
// the pin in the one form translate compares: "SHA256:" and unpadded
// standard base64, as ssh-keygen prints host-key fingerprints.
func normalizeCertPin(s string) (string, bool) {
	v := strings.TrimSpace(s)
	for _, p := range []string{"sha256 Fingerprint=", "SHA256 Fingerprint=", "SHA256:", "sha256:"} {
		if t, ok := strings.CutPrefix(v, p); ok {
			v = t
			break
		}
	}
	hexDigits := strings.ReplaceAll(v, ":", "")
	if len(hexDigits) == 64 {
		if b, err := hex.DecodeString(hexDigits); err == nil {
			return "SHA256:" + base64.RawStdEncoding.EncodeToString(b), true
		}
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(b) != 32 {
		return "", false
	}
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(b), true
}

// cipherSuiteID looks up a TLS 1.2 cipher suite by its crypto/tls name. It
// returns a message saying why a name is refused: unknown, insecure (RC4,
// 3DES, CBC with SHA-256 and the like, which tls.InsecureCipherSuites
// lists), or a TLS 1.3 suite, which Go does not let a program choose.
func cipherSuiteID(name string) (uint16, string) {
	for _, cs := range tls.CipherSuites() {
		if cs.Name != name {
			continue
		}
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			return 0, "is a TLS 1.3 suite; TLS 1.3 suites cannot be chosen, Go always offers all three"
		}
		return cs.ID, ""
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if cs.Name == name {
			return 0, "is insecure and not allowed"
		}
	}
	return 0, "is not a known cipher suite name (want a crypto/tls name such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
}

// validIPLiteral reports whether s is an IP address without zone or
// brackets.
func validIPLiteral(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// validBcrypt reports whether h parses as a bcrypt hash.
func validBcrypt(h string) bool {
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// asciiLower lower-cases ASCII letters only. Route users are matched
// without regard to ASCII case; Unicode folding (strings.EqualFold) would
// also let, for example, the Kelvin sign match "k".
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// hasControl reports whether s holds an ASCII control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
