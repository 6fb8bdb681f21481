package translate

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/ftpgate/ftpgate/policy"
)

// CertFingerprint formats the SHA-256 fingerprint of a certificate's DER
// bytes the way ssh-keygen prints host-key fingerprints: "SHA256:" and the
// unpadded standard base64 of the digest. ConnInfo.HostKey, CertError and
// the policy's tls_cert_sha256 pins all use this form.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// CertError reports an FTPS partner whose certificate ftpgate does not
// trust. The session must be refused; there is no setting that accepts such
// a partner.
//
// It matches *HostKeyError with errors.As, so the proxy treats an untrusted
// certificate exactly like an untrusted SSH host key: Unknown is true when
// the chain could not be verified (unknown authority, expired, wrong host
// name) and false when the chain is valid but the leaf is not one of the
// pinned certificates, which may be an attack.
type CertError struct {
	Host        string // the name verified (tls_server_name or the host)
	Fingerprint string // CertFingerprint of the leaf presented; "" if none
	Subject     string // the leaf's subject
	// Reason is one of "unknown authority", "expired or not yet valid",
	// "host name mismatch", "invalid certificate", "no certificate" and
	// "pin mismatch".
	Reason string
	Err    error // the x509 error, nil for a pin mismatch
}

func (e *CertError) Error() string {
	s := "translate: certificate of " + e.Host + " not trusted: " + e.Reason
	if e.Subject != "" {
		s += " (subject " + e.Subject + ", " + e.Fingerprint + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the equivalent *HostKeyError and the x509 error.
func (e *CertError) Unwrap() []error {
	hke := &HostKeyError{Host: e.Host, Unknown: e.Reason != "pin mismatch", Fingerprint: e.Fingerprint}
	if e.Err == nil {
		return []error{hke}
	}
	return []error{hke, e.Err}
}

// certError turns a handshake error caused by verification into a
// *CertError. It returns nil for other errors.
func certError(host string, err error) *CertError {
	var ce *CertError
	if errors.As(err, &ce) {
		return ce
	}
	var ve *tls.CertificateVerificationError
	if !errors.As(err, &ve) {
		return nil
	}
	e := &CertError{Host: host, Reason: "invalid certificate", Err: ve.Err}
	if len(ve.UnverifiedCertificates) > 0 {
		leaf := ve.UnverifiedCertificates[0]
		e.Fingerprint, e.Subject = CertFingerprint(leaf.Raw), leaf.Subject.String()
	} else {
		e.Reason = "no certificate"
	}
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	switch {
	case errors.As(ve.Err, &ua):
		e.Reason = "unknown authority"
	case errors.As(ve.Err, &he):
		e.Reason = "host name mismatch"
	case errors.As(ve.Err, &ci) && ci.Reason == x509.Expired:
		e.Reason = "expired or not yet valid"
	}
	return e
}

// tlsSetup is the TLS configuration of one control connection and its data
// connections.
type tlsSetup struct {
	// ctrl is the control connection's config. data is the same config
	// for data connections: it shares the session cache, so every data
	// connection resumes the control connection's TLS session, which
	// vsftpd (require_ssl_reuse) and ProFTPD require.
	ctrl, data *tls.Config
	cache      *sessionCache
}

// tlsConfig builds the TLS configuration for up: the roots (tls_ca_file or
// the system's), the host name to verify, the minimum version and TLS 1.2
// suites, the client certificate, the pins, and a session cache of its own.
// Files are read here, at dial time, so a rotated certificate or CA file is
// picked up by the next session.
func (d *FTPSDialer) tlsConfig(up policy.Upstream) (*tlsSetup, error) {
	serverName := up.TLSServerName
	if serverName == "" {
		serverName = up.Host
	}
	cfg := &tls.Config{
		ServerName:   serverName,
		MinVersion:   up.TLSMinVersion,
		MaxVersion:   d.MaxTLSVersion,
		CipherSuites: slices.Clone(up.TLSCiphers),
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		return nil, fmt.Errorf("translate: tls: minimum version %#x is below TLS 1.2", cfg.MinVersion)
	}
	if up.TLSCAFile != "" {
		pem, err := os.ReadFile(up.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("translate: tls_ca_file %s: %w", up.TLSCAFile, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("translate: tls_ca_file %s holds no PEM certificate", up.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if up.TLSClientCert != "" || up.TLSClientKey != "" {
		// The parse errors of crypto/tls never contain key material.
		cert, err := tls.LoadX509KeyPair(up.TLSClientCert, up.TLSClientKey)
		if err != nil {
			return nil, fmt.Errorf("translate: client certificate %s: %w", up.TLSClientCert, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	pins := slices.Clone(up.TLSCertSHA256)
	// VerifyConnection runs after the chain and name checks, on full and
	// on resumed handshakes alike; VerifyPeerCertificate would be skipped
	// on resumption, so a data connection would escape the pin.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &CertError{Host: serverName, Reason: "no certificate"}
		}
		leaf := cs.PeerCertificates[0]
		fp := CertFingerprint(leaf.Raw)
		if len(pins) > 0 && !slices.Contains(pins, fp) {
			return &CertError{Host: serverName, Fingerprint: fp, Subject: leaf.Subject.String(), Reason: "pin mismatch"}
		}
		return nil
	}
	cache := &sessionCache{}
	cfg.ClientSessionCache = cache
	data := cfg.Clone()
	data.ClientSessionCache = dataSessionCache{cache}
	return &tlsSetup{ctrl: cfg, data: data, cache: cache}, nil
}

// sessionCache is the TLS session cache of one control connection and its
// data connections. It holds the latest session per key (the server name,
// the same for the control and all data connections). One cache per control
// connection: a cache shared by two control connections let a data
// connection resume the other session, which ProFTPD refuses with 425
// (INTEROP.md).
//
// Data connections see it through dataSessionCache, which may add
// sessions (the tickets a server sends on a resumed data connection) but
// never delete one: crypto/tls deletes the session it tried when a
// handshake fails, and a data connection whose handshake is cut short (the
// partner refused the command, an abort) would otherwise leave every later
// data connection nothing to resume.
type sessionCache struct {
	mu       sync.Mutex
	sessions map[string]*tls.ClientSessionState // guarded by mu
}

func (c *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[key]
	return s, ok
}

func (c *sessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil {
		delete(c.sessions, key)
		return
	}
	if c.sessions == nil {
		c.sessions = make(map[string]*tls.ClientSessionState)
	}
	c.sessions[key] = cs
}

// dataSessionCache is a data connection's view of the control connection's
// sessionCache: deletions are ignored.
type dataSessionCache struct{ c *sessionCache }

func (d dataSessionCache) Get(key string) (*tls.ClientSessionState, bool) { return d.c.Get(key) }

func (d dataSessionCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		d.c.Put(key, cs)
	}
}
