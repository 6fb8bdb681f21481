package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// MinKeyBytes is the shortest key accepted: 128 bits, the HMAC key length
// that NIST SP 800-107 asks for at the 128-bit security level and more than
// FIPS 140-3's 112-bit floor for HMAC keys.
const MinKeyBytes = 16

// maxKeyFileBytes bounds how much of a key file is read, so that a path
// pointing at a large file by mistake fails fast instead of being hashed.
const maxKeyFileBytes = 64 << 10

// ErrShortKey is returned (wrapped) for key material shorter than
// MinKeyBytes.
var ErrShortKey = fmt.Errorf("audit: key shorter than %d bytes", MinKeyBytes)

// Key is the secret that keys the record chain's HMAC. The zero Key means
// "no key": records then carry no "mac" field and Verify can check only that
// sequence numbers are continuous.
//
// A Key never prints its material: String, GoString and every fmt verb
// give "audit.Key(redacted)", and encoding/json sees no exported field. Key
// material is raw bytes, whatever they are: a key file is used as it is
// (after trimming one trailing newline), and a key given in an environment
// variable is the string's bytes, not decoded from hex or base64 — so a
// 64-character hex string is a 64-byte key and works the same from a file or
// from the environment.
type Key struct {
	b []byte // never nil unless the Key is zero; never changed after NewKey
}

// NewKey returns a Key holding a copy of material, which must be at least
// MinKeyBytes long.
func NewKey(material []byte) (Key, error) {
	if len(material) < MinKeyBytes {
		return Key{}, fmt.Errorf("%w (got %d)", ErrShortKey, len(material))
	}
	return Key{b: bytes.Clone(material)}, nil
}

// KeyFromFile reads a key from the file at path: its raw bytes, less one
// trailing "\n" or "\r\n" (which editors and `echo` add, and which a mounted
// secret keeps). Errors name the file, never its content.
func KeyFromFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("audit: key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return Key{}, fmt.Errorf("audit: key file %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return Key{}, fmt.Errorf("audit: key file %s: longer than %d bytes", path, maxKeyFileBytes)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	k, err := NewKey(b)
	clear(b)
	if err != nil {
		return Key{}, fmt.Errorf("audit: key file %s: %w", path, err)
	}
	return k, nil
}

// IsZero reports whether k is the zero Key (no key).
func (k Key) IsZero() bool { return len(k.b) == 0 }

// String returns "audit.Key(redacted)", or "audit.Key(none)" for the zero
// Key.
func (k Key) String() string {
	if k.IsZero() {
		return "audit.Key(none)"
	}
	return "audit.Key(redacted)"
}

// GoString is String, so %#v redacts too.
func (k Key) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb (%x, %d, %v, ...) prints
// the material.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// errBadPrevMAC reports a PrevMAC of the wrong length.
var errBadPrevMAC = errors.New("audit: PrevMAC must be 32 bytes (a SHA-256 HMAC) or empty")
