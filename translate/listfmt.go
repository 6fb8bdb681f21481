package translate

import (
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// The functions below turn fs.FileInfo values from the partner into the
// lines FTP clients expect: an "ls -l" line for LIST, and RFC 3659 facts for
// MLSD and MLST. They append to a caller's buffer, so a listing of many
// entries can be built in one reused slice.

// Layouts of the LIST date column. They are vsftpd's strftime formats
// "%b %d %H:%M" and "%b %d  %Y" (note: %d, a zero-padded day, not ls's
// space-padded %e), because vsftpd's output is what FTP clients' LIST
// parsers are most often tested against.
const (
	listRecentLayout = "Jan 02 15:04"
	listOldLayout    = "Jan 02  2006"
)

// listRecent is how far back a modification time may lie and still be shown
// with its time of day rather than its year: vsftpd's 182 days, its reading
// of ls's "six months".
const listRecent = 182 * 24 * time.Hour

// mlsxTimeLayout is the RFC 3659 2.3 time-val form, always in UTC.
const mlsxTimeLayout = "20060102150405"

// ownerInfo is what a backend's fs.FileInfo (or its Sys value) can offer to
// fill the owner, group and link count columns of a LIST line. Backends
// that know names (an FTPS partner's own listing, say) implement it; others
// get the anonymous defaults, as vsftpd shows with hide_ids.
type ownerInfo interface {
	Owner() string
	Group() string
	Links() uint64
}

// AppendListLine appends to dst one line describing fi in the form vsftpd
// prints for LIST, and returns the extended buffer:
//
//	-rw-r--r--    1 1000     1000         1234 Nov 25 14:30 report.txt\r\n
//
// That is the mode string, the link count (width 4), owner and group (left
// aligned, width 8), size (width 8), date and name, separated by single
// spaces. The date shows the time of day if the modification time lies at
// most 182 days before now and not after it, and the year otherwise; it is
// in UTC, as vsftpd prints by default, since the proxy's own zone means
// nothing to the client.
//
// Owner, group and link count come from an Owner, Group and Links method on
// fi or on fi.Sys(); failing that, from the numeric UID and GID of a
// *sftp.FileStat in fi.Sys() (as vsftpd prints ids without
// text_userdb_names); failing that, they are "ftp", "ftp" and 1. A link
// count of 0 is shown as 1. Since owner and group come from the partner,
// CR, LF, NUL and space in them become '?', and an empty one is "?", so
// they can neither break the line nor shift the columns clients split on.
//
// The name is appended as is: callers must skip entries for which
// ListableName is false, or the name could add lines of its own to the
// listing.
func AppendListLine(dst []byte, fi fs.FileInfo, now time.Time) []byte {
	owner, group, links := listOwner(fi)

	dst = appendModeString(dst, fi.Mode())
	dst = append(dst, ' ')
	var num [24]byte
	dst = appendPadLeft(dst, strconv.AppendUint(num[:0], links, 10), 4)
	dst = append(dst, ' ')
	dst = appendPadRight(dst, owner, 8)
	dst = append(dst, ' ')
	dst = appendPadRight(dst, group, 8)
	dst = append(dst, ' ')
	dst = appendPadLeft(dst, strconv.AppendInt(num[:0], fi.Size(), 10), 8)
	dst = append(dst, ' ')
	mtime := fi.ModTime()
	layout := listRecentLayout
	if mtime.After(now) || now.Sub(mtime) > listRecent {
		layout = listOldLayout
	}
	dst = mtime.UTC().AppendFormat(dst, layout)
	dst = append(dst, ' ')
	dst = append(dst, fi.Name()...)
	return append(dst, '\r', '\n')
}

// listOwner picks the owner, group and link count for fi as described at
// AppendListLine.
func listOwner(fi fs.FileInfo) (owner, group string, links uint64) {
	oi, ok := fi.(ownerInfo)
	if !ok {
		oi, ok = fi.Sys().(ownerInfo)
	}
	if ok {
		links = oi.Links()
		if links == 0 {
			links = 1
		}
		return listSafe(oi.Owner()), listSafe(oi.Group()), links
	}
	if st, ok := fi.Sys().(*sftp.FileStat); ok && st != nil {
		return strconv.FormatUint(uint64(st.UID), 10), strconv.FormatUint(uint64(st.GID), 10), 1
	}
	return "ftp", "ftp", 1
}

// listSafe replaces the bytes that would break a listing line. An empty
// value becomes "?" so the columns still split on spaces.
func listSafe(s string) string {
	if s == "" {
		return "?"
	}
	if !strings.ContainsAny(s, "\r\n\x00 ") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', 0, ' ':
			return '?'
		}
		return r
	}, s)
}

// appendModeString appends the ten-character mode column of ls -l. It is
// not fs.FileMode.String, which prints Go's own letters (for example
// "dtrwxrwxrwx" for a sticky directory) that FTP clients do not parse.
func appendModeString(dst []byte, m fs.FileMode) []byte {
	var s [10]byte
	switch {
	case m&fs.ModeDir != 0:
		s[0] = 'd'
	case m&fs.ModeSymlink != 0:
		s[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		s[0] = 'p'
	case m&fs.ModeSocket != 0:
		s[0] = 's'
	case m&fs.ModeCharDevice != 0:
		s[0] = 'c'
	case m&fs.ModeDevice != 0:
		s[0] = 'b'
	default:
		s[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			s[1+i] = rwx[i]
		} else {
			s[1+i] = '-'
		}
	}
	special := func(pos int, set bool, lower, upper byte) {
		if !set {
			return
		}
		if s[pos] == 'x' {
			s[pos] = lower
		} else {
			s[pos] = upper
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return append(dst, s[:]...)
}

func appendPadLeft(dst, s []byte, width int) []byte {
	for i := len(s); i < width; i++ {
		dst = append(dst, ' ')
	}
	return append(dst, s...)
}

func appendPadRight(dst []byte, s string, width int) []byte {
	dst = append(dst, s...)
	for i := len(s); i < width; i++ {
		dst = append(dst, ' ')
	}
	return dst
}

// AppendMLSxFacts appends the RFC 3659 facts for fi to dst, each ending in
// ';', followed by the single space that separates facts from the name:
//
//	type=file;size=1234;modify=20261125143000;perm=adfrw;unix.mode=0644;
//
// The caller appends the name (and, for MLSD, "\r\n"). typ is the type fact,
// "file", "dir", "cdir" or "pdir" (RFC 3659 7.5.1); if empty, it is "dir"
// for a directory and "file" for anything else, symbolic links included,
// since SFTP partners mostly follow them on open. size is left out for
// directories, and modify when fi has no modification time.
//
// perm (RFC 3659 7.5.5) is derived from the owner permission bits, because
// the partner only reports those and the proxy's login is usually the owner;
// it is advice to the client, and the partner still decides. For files: r
// if readable; a, w (append, store), d (delete) and f (rename) if writable.
// For directories: e (enter) if searchable; l (list) if readable; c, m, p
// (create files, make directories, purge) if writable and searchable; d and
// f if writable. Delete and rename really depend on the parent directory,
// which a single FileInfo does not show; the object's own write bit is the
// closest guess.
//
// unix.mode is the permission bits with setuid, setgid and sticky, in octal
// with a leading zero, as ProFTPD prints it.
func AppendMLSxFacts(dst []byte, fi fs.FileInfo, typ string) []byte {
	m := fi.Mode()
	if typ == "" {
		typ = "file"
		if m.IsDir() {
			typ = "dir"
		}
	}
	isDir := typ != "file"
	dst = append(dst, "type="...)
	dst = append(dst, typ...)
	dst = append(dst, ';')
	if !isDir {
		dst = append(dst, "size="...)
		dst = strconv.AppendInt(dst, fi.Size(), 10)
		dst = append(dst, ';')
	}
	if mt := fi.ModTime(); !mt.IsZero() {
		dst = append(dst, "modify="...)
		dst = mt.UTC().AppendFormat(dst, mlsxTimeLayout)
		dst = append(dst, ';')
	}
	dst = append(dst, "perm="...)
	r, w, x := m&0o400 != 0, m&0o200 != 0, m&0o100 != 0
	if isDir {
		dst = appendIf(dst, w, 'f')
		dst = appendIf(dst, r, 'l')
		dst = appendIf(dst, w && x, 'c')
		dst = appendIf(dst, w, 'd')
		dst = appendIf(dst, w && x, 'm')
		dst = appendIf(dst, w && x, 'p')
		dst = appendIf(dst, x, 'e')
	} else {
		dst = appendIf(dst, w, 'a')
		dst = appendIf(dst, w, 'd')
		dst = appendIf(dst, w, 'f')
		dst = appendIf(dst, r, 'r')
		dst = appendIf(dst, w, 'w')
	}
	dst = append(dst, ";unix.mode=0"...)
	dst = strconv.AppendUint(dst, uint64(unixMode(m)), 8)
	return append(dst, ';', ' ')
}

func appendIf(dst []byte, ok bool, c byte) []byte {
	if ok {
		return append(dst, c)
	}
	return dst
}

// unixMode returns the permission and special bits of m in their POSIX
// positions; fs.FileMode keeps setuid, setgid and sticky in high bits of
// its own.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// ListableName reports whether name may be sent in a listing. A name
// holding CR, LF or NUL would end its line early and let whoever named the
// file on the partner write lines of their own into the client's listing,
// and an empty name describes nothing, so callers leave such entries out.
func ListableName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "\r\n\x00")
}
