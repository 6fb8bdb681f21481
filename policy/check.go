package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
)

// CheckFiles looks at every file the policy names (known_hosts files, key
// files, secret files, and the top-level known_hosts) and returns one
// *FieldError per file that is missing, a directory, or cannot be opened,
// located at the line that names it. It opens regular files to test that
// they are readable but reads nothing from them. It is meant for ftpgate
// check; Load does not do it, so a policy can be validated on a machine that
// lacks the files. Each path is checked once.
func (p *Policy) CheckFiles() []error {
	if p == nil {
		return nil
	}
	files := slices.Clone(p.files)
	slices.SortStableFunc(files, func(a, b fileRef) int { return a.line - b.line })
	var errs []error
	done := make(map[string]bool)
	for _, f := range files {
		if f.path == "" || done[f.path] {
			continue
		}
		done[f.path] = true
		if err := checkFile(f.path); err != nil {
			errs = append(errs, &FieldError{
				File: p.name,
				Line: f.line,
				Msg:  fmt.Sprintf("%s %s: %v", f.what, f.path, err),
				Err:  err,
			})
		}
	}
	return errs
}

// errIsDir is reported for a path that names a directory.
var errIsDir = errors.New("is a directory")

func checkFile(name string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return unwrapPath(err)
	}
	if fi.IsDir() {
		return errIsDir
	}
	if !fi.Mode().IsRegular() {
		// A FIFO or device: opening it could block or have side
		// effects, so leave it alone.
		return nil
	}
	f, err := os.Open(name)
	if err != nil {
		return unwrapPath(err)
	}
	return f.Close()
}

// unwrapPath drops the *fs.PathError wrapper, whose text repeats the path
// the message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// IncludedFiles lists the files Load read besides the policy file itself
// (the local_users_file files), in the order the policy names them. A
// change to one of them takes effect only when the policy is loaded again,
// so whoever reloads on change should watch these too.
func (p *Policy) IncludedFiles() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.included)
}

// HasRules reports whether the policy has a rules section. Without one,
// routes and user_at_host decide alone, as before zones and rules.
func (p *Policy) HasRules() bool { return p != nil && p.hasRules }
