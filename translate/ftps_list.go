package translate

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// ftpFileInfo is a file described by an FTPS partner, in an MLST or MLSD
// line (RFC 3659 section 7) or a Unix-style LIST line.
type ftpFileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi *ftpFileInfo) Name() string       { return fi.name }
func (fi *ftpFileInfo) Size() int64        { return fi.size }
func (fi *ftpFileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *ftpFileInfo) ModTime() time.Time { return fi.mtime }
func (fi *ftpFileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *ftpFileInfo) Sys() any           { return nil }

// parseMLSxEntry parses one MLSD line or the entry line of an MLST reply
// (without its leading space): "fact=value;fact=value; name". It returns
// the type fact in lower case as well ("file", "dir", "cdir", "pdir", or
// an OS-specific value), so MLSD can skip the "." and ".." entries.
//
// Facts are matched without regard to case. size (or sizd for
// directories), modify (UTC, YYYYMMDDHHMMSS with optional fraction) and
// UNIX.mode are used; other facts are ignored. Without UNIX.mode the
// permission bits are 0755 for directories and 0644 for files.
func parseMLSxEntry(line string) (*ftpFileInfo, string, error) {
	facts, name, ok := strings.Cut(line, " ")
	if !ok || name == "" {
		return nil, "", fmt.Errorf("%w: MLSx entry without a name", errBadReply)
	}
	fi := &ftpFileInfo{name: name}
	typ := ""
	perm, havePerm := fs.FileMode(0), false
	for f := range strings.SplitSeq(facts, ";") {
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, "", fmt.Errorf("%w: MLSx fact without '='", errBadReply)
		}
		switch strings.ToLower(k) {
		case "type":
			typ = strings.ToLower(v)
		case "size", "sizd":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, "", fmt.Errorf("%w: MLSx size %q", errBadReply, clip([]byte(v), 30))
			}
			fi.size = n
		case "modify":
			t, err := parseFTPTime(v)
			if err != nil {
				return nil, "", err
			}
			fi.mtime = t
		case "unix.mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return nil, "", fmt.Errorf("%w: MLSx UNIX.mode %q", errBadReply, clip([]byte(v), 30))
			}
			perm, havePerm = fs.FileMode(m)&fs.ModePerm, true
		}
	}
	switch {
	case typ == "dir" || typ == "cdir" || typ == "pdir":
		fi.mode = fs.ModeDir
		if !havePerm {
			perm = 0o755
		}
	case strings.HasPrefix(typ, "os.unix=slink") || strings.HasPrefix(typ, "os.unix=symlink"):
		fi.mode = fs.ModeSymlink
		if !havePerm {
			perm = 0o777
		}
	default:
		if !havePerm {
			perm = 0o644
		}
	}
	fi.mode |= perm
	return fi, typ, nil
}

// parseFTPTime parses an RFC 3659 time-val, YYYYMMDDHHMMSS[.sss], in UTC.
func parseFTPTime(v string) (time.Time, error) {
	base, frac, _ := strings.Cut(v, ".")
	t, err := time.Parse("20060102150405", base)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q", errBadReply, clip([]byte(v), 30))
	}
	if frac != "" {
		if len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
			return time.Time{}, fmt.Errorf("%w: time %q", errBadReply, clip([]byte(v), 30))
		}
		ns, _ := strconv.Atoi((frac + "000000000")[:9])
		t = t.Add(time.Duration(ns))
	}
	return t, nil
}

// parseListLine parses one line of a Unix-style LIST listing, as vsftpd,
// ProFTPD and most Unix servers send it:
//
//	drwxr-xr-x    2 ftp      ftp          4096 Mar 07 12:34 name
//	-rw-r--r--    1 ftp      ftp        123456 Mar 07  2023 name with spaces
//
// It reports false for lines it does not understand ("total 12" and
// listings of other systems); callers skip those. Times without a year are
// taken to be within the year before now, as ls prints them.
func parseListLine(line string, now time.Time) (*ftpFileInfo, bool) {
	rest := line
	var f [8]string
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			return nil, false
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	// ls pads the columns before the name, never the name: exactly one
	// space separates them, and any more belong to the name.
	name := rest
	perms := f[0]
	if len(perms) < 10 || name == "" {
		return nil, false
	}
	size, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil || size < 0 {
		return nil, false
	}
	var mode fs.FileMode
	switch perms[0] {
	case '-':
	case 'd':
		mode = fs.ModeDir
	case 'l':
		mode = fs.ModeSymlink
		if i := strings.Index(name, " -> "); i >= 0 {
			name = name[:i]
		}
	default:
		mode = fs.ModeIrregular
	}
	for i, c := range perms[1:10] {
		if c != '-' {
			mode |= 1 << (8 - i)
		}
	}
	mtime, ok := parseListTime(f[5], f[6], f[7], now)
	if !ok || name == "." || name == ".." {
		return nil, false
	}
	return &ftpFileInfo{name: path.Base(name), size: size, mode: mode, mtime: mtime}, true
}

func parseListTime(month, day, yearOrTime string, now time.Time) (time.Time, bool) {
	if len(day) == 1 {
		day = "0" + day
	}
	if strings.Contains(yearOrTime, ":") {
		t, err := time.Parse("Jan 02 15:04 2006", month+" "+day+" "+yearOrTime+" "+strconv.Itoa(now.Year()))
		if err != nil {
			return time.Time{}, false
		}
		if t.After(now.Add(24 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
		return t, true
	}
	t, err := time.Parse("Jan 02 2006", month+" "+day+" "+yearOrTime)
	return t, err == nil
}
