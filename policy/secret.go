package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// maxSecretBytes bounds a secret file. Passwords and passphrases are short;
// the bound keeps a mistaken path (a log, /dev/zero) from being read whole.
const maxSecretBytes = 64 << 10

// String names the reference, "env:NAME" or "file:PATH", or "none" for the
// zero Secret. It never returns the secret's value, so a Secret is safe to
// log and to print with %v.
func (s Secret) String() string {
	switch {
	case s.Env != "" && s.File != "":
		return "env:" + s.Env + "+file:" + s.File // invalid; Load refuses it
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return "none"
}

// IsZero reports whether s refers to nothing.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" }

// Resolve reads the secret's value. getenv looks up environment variables;
// nil means os.Getenv (tests pass their own). An environment variable that
// is unset or empty is an error. A file's contents are returned with one
// trailing "\n" or "\r\n" removed, as left by echo or an editor; an empty
// result is an error, and so is a file larger than 64 KiB.
//
// Errors name the variable or file but never hold any part of the value.
// Call Resolve when dialling, not when loading, so a rotated secret (a
// Kubernetes mount, say) is picked up by the next session.
func (s Secret) Resolve(getenv func(string) string) (string, error) {
	switch {
	case s.Env != "" && s.File != "":
		return "", fmt.Errorf("policy: secret %s: set exactly one of env and file", s)
	case s.Env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		v := getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("policy: secret %s: the environment variable is unset or empty", s)
		}
		return v, nil
	case s.File != "":
		return readSecretFile(s.File)
	}
	return "", errors.New("policy: secret none: no env or file set")
}

func readSecretFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", secretFileError(name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", secretFileError(name, err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("policy: secret file %s is larger than %d bytes", name, maxSecretBytes)
	}
	v := string(b)
	if t, ok := strings.CutSuffix(v, "\r\n"); ok {
		v = t
	} else {
		v = strings.TrimSuffix(v, "\n")
	}
	if v == "" {
		return "", fmt.Errorf("policy: secret file %s is empty", name)
	}
	return v, nil
}

// secretFileError names the file once, keeping the fs error in the chain
// for errors.Is(err, fs.ErrNotExist) and friends.
func secretFileError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("policy: secret file %s: %w", name, err)
}

// String gives the upstream as a URL, scheme://user@host:port/dir, for logs
// and for ftpgate check. It holds no secret: passwords and passphrases are
// references and are left out, and so is the key file.
func (u Upstream) String() string {
	uu := url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), Path: u.Dir}
	if u.User != "" {
		uu.User = url.User(u.User)
	}
	return uu.String()
}
