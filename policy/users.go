package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxUsersFileBytes bounds a local_users_file. A bcrypt line is about 80
// bytes, so this is room for tens of thousands of users.
const maxUsersFileBytes = 4 << 20

// readUsersFile reads a local_users_file. It refuses anything but a
// regular file, so a mistaken path (a FIFO, /dev/zero) cannot block or
// fill memory.
func readUsersFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if fi.IsDir() {
		return nil, errIsDir
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("is not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxUsersFileBytes+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(b) > maxUsersFileBytes {
		return nil, fmt.Errorf("is larger than %d bytes", maxUsersFileBytes)
	}
	return b, nil
}

// usersFile validates a local_users_file key, reads the file once per
// path and keeps its hashes in p.userFiles. It returns the path.
func (l *loader) usersFile(f *field[string], label string, p *Policy) string {
	if f.V == "" {
		l.errorf(f.Line, "%s: local_users_file is empty; give a file path or remove the key", label)
		return ""
	}
	if _, done := p.userFiles[f.V]; done {
		return f.V
	}
	if p.userFiles == nil {
		p.userFiles = map[string]map[string]string{}
	}
	hashes := map[string]string{}
	p.userFiles[f.V] = hashes
	p.files = append(p.files, fileRef{what: "local_users_file", path: f.V, line: f.Line})
	p.included = append(p.included, f.V)
	read := l.readFile
	if read == nil {
		read = readUsersFile
	}
	data, err := read(f.V)
	if err != nil {
		l.errorf(f.Line, "%s: local_users_file %s: %v", label, f.V, err)
		return f.V
	}
	l.parseUsers(f.V, data, hashes)
	return f.V
}

// parseUsers reads htpasswd lines, "user:hash", into hashes (keyed by the
// ASCII-lower-cased user). Blank lines and lines starting with '#' are
// skipped. Only bcrypt hashes are accepted: htpasswd's MD5 ($apr1$), SHA-1
// ({SHA}) and crypt forms are too cheap to guess. Problems are located in
// the users file; no message holds a hash.
func (l *loader) parseUsers(name string, data []byte, hashes map[string]string) {
	errorf := func(line int, format string, args ...any) {
		l.errs = append(l.errs, FieldError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	first := map[string]int{}
	for i, text := range strings.Split(string(data), "\n") {
		n := i + 1
		text = strings.TrimSuffix(text, "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		switch {
		case !ok:
			errorf(n, "want user:bcrypt-hash, as htpasswd -B writes")
			continue
		case user == "" || hasControl(user):
			errorf(n, "the user name is empty or holds control characters")
			continue
		case !validBcrypt(hash):
			errorf(n, "user %q: only bcrypt hashes ($2a$, $2b$, $2y$; htpasswd -B) are accepted", clip(user))
			continue
		}
		key := asciiLower(user)
		if f, dup := first[key]; dup {
			errorf(n, "user %q is already listed at line %d (users are matched without regard to case)", clip(user), f)
			continue
		}
		first[key] = n
		hashes[key] = hash
	}
}
