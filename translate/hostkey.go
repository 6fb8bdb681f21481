package translate

import (
	"crypto/ed25519"
	"errors"

	"net"
	"slices"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ftpgate/ftpgate/policy"
)

// hostKeyChecker verifies the partner's host key against a known_hosts file
// and pinned SHA-256 fingerprints. A key is accepted if either source
// accepts it. There is no way to accept an unknown key: policy validation
// refuses an upstream without a host-key source, and so does this type.
//
// One checker serves one dial; it remembers what it saw so Dial can tell a
// host-key refusal from a login refusal without matching error text.
type hostKeyChecker struct {
	known  ssh.HostKeyCallback // nil without a known_hosts file
	pinned []string

	ok            bool  // a key was presented and accepted
	err           error // the refusal, a *HostKeyError
	presented     string
	presentedType string
}

func newHostKeyChecker(up policy.Upstream) (*hostKeyChecker, error) {
	hk := &hostKeyChecker{pinned: up.HostKeySHA256}
	if up.KnownHosts != "" {
		cb, err := knownhosts.New(up.KnownHosts)
		if err != nil {
			return nil, err
		}
		hk.known = cb
	}
	if hk.known == nil && len(hk.pinned) == 0 {
		return nil, errors.New("no known_hosts file and no pinned fingerprint: refusing to accept any host key")
	}
	return hk, nil
}

func (hk *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	hk.presented, hk.presentedType = fp, key.Type()
	if slices.Contains(hk.pinned, fp) {
		hk.ok = true
		return nil
	}
	unknown := len(hk.pinned) == 0
	if hk.known != nil {
		err := hk.known(hostname, remote, key)
		if err == nil {
			hk.ok = true
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			// A revoked key or a malformed file: refuse, as "changed".
			unknown = false
		} else if len(ke.Want) > 0 {
			unknown = false
		}
	}
	hk.err = &HostKeyError{Host: hostname, Unknown: unknown, Fingerprint: fp}
	return hk.err
}

// algorithms returns the host-key algorithms recorded in known_hosts for
// addr, so the server is asked for the key type we can verify. Without
// this, a server with an ed25519 and an RSA key may offer the one that is
// not recorded, which looks exactly like a changed key.
func (hk *hostKeyChecker) algorithms(addr string) []string {
	if hk.known == nil || len(hk.pinned) > 0 {
		return nil
	}
	// Ask the callback about a key no host has; its KeyError lists the
	// keys recorded for addr.
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil
	}
	tcp, _ := net.ResolveTCPAddr("tcp", addr)
	var ke *knownhosts.KeyError
	if err := hk.known(addr, tcp, probe); !errors.As(err, &ke) {
		return nil
	}
	var algs []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algs = append(algs, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algs = append(algs, t)
		}
	}
	return slices.Compact(algs)
}

// Fingerprint formats a key's SHA-256 fingerprint as OpenSSH prints it.
func Fingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }
