package translate

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// MVS data set names.
//
// The z/OS FTP client, which runs most of the batch jobs ftpgate serves, names
// remote files the way z/OS names data sets: 'PAY.DAILY.EXTRACT' (quoted:
// fully qualified), 'SYS1.PROCLIB(IEFBR14)' (a member of a partitioned data
// set, PDS), DAILY.EXTRACT (unquoted: relative to the working directory, which
// on z/OS is a prefix such as 'PAY.'), 'PAY.' after CWD (a new prefix), and
// patterns such as 'JCL.LIB(RUN*)' for MGET and MDELETE. A Unix SFTP partner
// has no data sets, so a route can map these names to paths under one
// directory; a z/OS partner reached over FTPS understands them itself, so a
// route can pass them through untouched. MVSNames holds that per-route choice
// and the functions here apply it. They are pure: no I/O, no clock, no state
// outside their arguments. The proxy keeps the session's working directory as
// a string and hands it in on every call.
//
// Mapping with Mode MVSMap, Root "/data/mvs", working directory 'PAY.':
//
//	client sends                 QualifiersAsDirs=false          QualifiersAsDirs=true
//	'PAY.DAILY.EXTRACT'          /data/mvs/PAY.DAILY.EXTRACT     /data/mvs/PAY/DAILY/EXTRACT
//	DAILY.EXTRACT                /data/mvs/PAY.DAILY.EXTRACT     /data/mvs/PAY/DAILY/EXTRACT
//	'SYS1.PROCLIB(IEFBR14)'      /data/mvs/SYS1.PROCLIB/IEFBR14  /data/mvs/SYS1/PROCLIB/IEFBR14
//	CWD 'PAY.'                   prefix PAY. (dir /data/mvs)     prefix PAY. (dir /data/mvs/PAY)
//	'PAY.GDG(+1)'                error wrapping ErrRelativeGDG   same
//	/u/pay/x.csv, sub/x.csv      ErrNotMVS: a Unix path, the caller's business
//
// Fold lower-cases (FoldLower) the mapped part, never Root, and MemberSuffix
// is added to member file names: 'A.PDS(MEM)' → /data/mvs/a.pds/mem.txt with
// FoldLower and ".txt". A PDS is a directory at the path its name maps to, and
// its members are the files in it.
//
// The working directory (the cwd arguments and results) is one of:
//
//	""            no prefix: an unquoted name is fully qualified
//	"PAY.DAILY."  a prefix (always ends in a period)
//	"PAY.JCL("    a PDS: an unquoted member name is a member of PAY.JCL
//	"/u/pay"      a Unix directory (starts with "/"): unquoted names are Unix
//	              names relative to it, quoted names are still data sets
//
// These forms are part of the API: the proxy may store, log and compare them.
// WorkingDirName turns one into what PWD shows.

// MVS naming limits, from z/OS DFSMS Using Data Sets, "Data set names": a
// data set name is at most 44 characters counting the periods (the quotes and
// a member name are not part of it), a qualifier 1 to 8 characters, and a
// member name 1 to 8 characters. A generation data group keeps at most 255
// generations, which bounds a relative generation number.
const (
	mvsMaxName       = 44
	mvsMaxQualifier  = 8
	mvsMaxGeneration = 255
	// mvsMaxSuffix bounds MemberSuffix so that a member file name (8
	// characters and the suffix) stays far below any file system's limit.
	mvsMaxSuffix = 32
	// mvsMaxErrName is how much of a client-chosen name an error repeats.
	mvsMaxErrName = 64
)

// MVS naming errors. Resolve, Chdir and Pattern return them wrapped in an
// *MVSNameError that says what was wrong.
var (
	// ErrNotMVS means the argument is not handled as a data set name: the
	// route's Mode is MVSOff, or in MVSMap the argument is a Unix name (it
	// contains "/", or it is unquoted and the working directory is a Unix
	// directory). The caller applies its Unix path logic, exactly as it
	// would without MVS naming. It is never wrapped.
	ErrNotMVS = errors.New("translate: not an MVS data set name")
	// ErrBadName means the argument is not a valid data set name or
	// pattern. The proxy answers 553 (RFC 959: file name not allowed), as
	// z/OS does, never 500 or 501.
	ErrBadName = errors.New("translate: invalid data set name")
	// ErrRelativeGDG means the name is a relative generation such as
	// 'PAY.GDG(+1)'. Which data set that is depends on the catalog, which a
	// Unix partner does not have, so it cannot be mapped to a path.
	ErrRelativeGDG = errors.New("translate: relative GDG generation cannot be mapped to a path")
)

// MVSNameError reports a name that cannot be used. Err is ErrBadName,
// ErrRelativeGDG, or ErrNotDir (Chdir to a member).
type MVSNameError struct {
	Name   string // as the client sent it
	Reason string // what is wrong, for the log; may quote part of Name
	Err    error
}

func (e *MVSNameError) Error() string {
	return "translate: data set name " + mvsQuote(e.Name) + ": " + e.Reason
}

func (e *MVSNameError) Unwrap() error { return e.Err }

// mvsQuote quotes a client-chosen string for an error, cut to
// mvsMaxErrName bytes so a long argument is not repeated in full.
func mvsQuote(s string) string {
	if len(s) > mvsMaxErrName {
		return strconv.Quote(s[:mvsMaxErrName]) + "..."
	}
	return strconv.Quote(s)
}

// MVSMode says whether a route treats names as data set names.
type MVSMode int

const (
	// MVSOff treats every name as a Unix path: Resolve, Chdir and Pattern
	// return ErrNotMVS. It is the zero value, the right choice for a
	// client that sends Unix names.
	MVSOff MVSMode = iota
	// MVSMap maps data set names to paths under Root, for a Unix partner.
	MVSMap
	// MVSVerbatim passes names through unchanged, for a partner that is
	// itself z/OS (reached over FTPS) and resolves them as the client
	// meant. The partner keeps the working directory.
	MVSVerbatim
)

func (m MVSMode) String() string {
	switch m {
	case MVSOff:
		return "off"
	case MVSMap:
		return "map"
	case MVSVerbatim:
		return "verbatim"
	}
	return "MVSMode(" + strconv.Itoa(int(m)) + ")"
}

// MVSFold says how the case of a mapped name appears in the upstream path.
// Names are upper case once parsed, because z/OS folds them, so 'pay.x' and
// 'PAY.X' are the same data set.
type MVSFold int

const (
	// FoldNone keeps the parsed name as it is, which is upper case.
	FoldNone MVSFold = iota
	// FoldLower lower-cases the mapped part, for partners whose files are
	// conventionally lower case.
	FoldLower
	// FoldUpper upper-cases the mapped part. It gives the same paths as
	// FoldNone and exists so that a configuration can say so explicitly.
	FoldUpper
)

func (f MVSFold) String() string {
	switch f {
	case FoldNone:
		return "none"
	case FoldLower:
		return "lower"
	case FoldUpper:
		return "upper"
	}
	return "MVSFold(" + strconv.Itoa(int(f)) + ")"
}

// MVSNames configures how MVS data set names become upstream paths on one
// route. The zero value is MVSOff. It is a plain value, safe to copy and to
// use from many sessions at once; check it with Validate when the route is
// loaded (every method also refuses an invalid one).
type MVSNames struct {
	Mode MVSMode
	// Root is the upstream directory every mapped data set lies under,
	// such as "/data/mvs": absolute and clean (path.Clean(Root) == Root).
	// No name can map outside it. Used only in MVSMap.
	Root string
	// QualifiersAsDirs maps each qualifier to a directory level:
	// 'HLQ.A.B' → Root/HLQ/A/B. When false, the whole name is one file
	// name: Root/HLQ.A.B, and a PDS is the directory Root/HLQ.A.PDS. With
	// true, a data set and a prefix of the same name (A.B and A.B.C) cannot
	// both exist upstream, and a PDS looks like a prefix directory.
	QualifiersAsDirs bool
	// Fold sets the case of the mapped part of the path (not Root, not
	// MemberSuffix).
	Fold MVSFold
	// MemberSuffix is appended to the file name of every member:
	// ".txt" maps 'A.PDS(MEM)' to Root/A.PDS/MEM.txt. Empty by default. At
	// most 32 printable ASCII characters, without "/" or "\".
	MemberSuffix string
	// DefaultPrefix is the working directory a session starts in, such as
	// "PAY." (the trailing period may be left out). Empty means the login
	// user name, as z/OS does: user PAYJOB starts in 'PAYJOB.'. See
	// InitialCWD.
	DefaultPrefix string
}

// Validate reports a configuration that cannot be used: an unknown Mode, and
// in MVSMap a Root that is not absolute and clean, an unknown Fold, a bad
// MemberSuffix or a DefaultPrefix that is not a data set name prefix.
func (m MVSNames) Validate() error {
	switch m.Mode {
	case MVSOff, MVSVerbatim:
		return nil
	case MVSMap:
	default:
		return fmt.Errorf("translate: MVS names: unknown mode %v", m.Mode)
	}
	if m.Root == "" || m.Root[0] != '/' || path.Clean(m.Root) != m.Root || mvsHasControl(m.Root) {
		return fmt.Errorf("translate: MVS names: root %q is not an absolute, clean path", m.Root)
	}
	if m.Fold < FoldNone || m.Fold > FoldUpper {
		return fmt.Errorf("translate: MVS names: unknown fold %v", m.Fold)
	}
	if len(m.MemberSuffix) > mvsMaxSuffix {
		return fmt.Errorf("translate: MVS names: member suffix is longer than %d bytes", mvsMaxSuffix)
	}
	for i := 0; i < len(m.MemberSuffix); i++ {
		if c := m.MemberSuffix[i]; c <= ' ' || c > '~' || c == '/' || c == '\\' {
			return fmt.Errorf("translate: MVS names: member suffix %q may hold only printable ASCII other than / and \\", m.MemberSuffix)
		}
	}
	if m.DefaultPrefix != "" {
		if _, err := mvsParsePrefix(m.DefaultPrefix); err != nil {
			return fmt.Errorf("translate: MVS names: default prefix: %w", err)
		}
	}
	return nil
}

func mvsHasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// InitialCWD returns the working directory a session starts in: the
// DefaultPrefix when set, otherwise the login user name as high-level
// qualifier ("payjob" → "PAYJOB."), which is what the z/OS FTP server does.
// The caller passes the name the job logged in with (for a user@host login,
// the user part). A name that is not a valid qualifier (longer than 8
// characters, say) gives "": no prefix, so unquoted names are fully
// qualified. Outside MVSMap the result is "", and the caller starts in its
// Unix home directory.
func (m MVSNames) InitialCWD(user string) string {
	if m.Mode != MVSMap || m.Validate() != nil {
		return ""
	}
	if m.DefaultPrefix != "" {
		q, _ := mvsParsePrefix(m.DefaultPrefix)
		return mvsPrefixCWD(q)
	}
	u := mvsUpper(user)
	if reason, wild := mvsCheckQualifier(u, false, "user"); reason != "" || wild {
		return ""
	}
	return u + "."
}

// mvsParsePrefix accepts "A.B." or "A.B" as a prefix and returns its
// qualifiers.
func mvsParsePrefix(s string) ([]string, error) {
	n, err := ParseMVSName("'" + strings.TrimSuffix(s, ".") + ".'")
	if err != nil {
		return nil, err
	}
	if n.Wildcard {
		return nil, &MVSNameError{Name: s, Reason: "a prefix cannot hold a wildcard", Err: ErrBadName}
	}
	return n.Qualifiers, nil
}

// MVSName is a parsed data set name, in upper case. The zero value is not a
// valid name.
type MVSName struct {
	// Quoted is true for a fully qualified name ('A.B'); an unquoted name
	// is relative to the working directory.
	Quoted bool
	// Qualifiers are the parts between periods, each 1-8 characters.
	Qualifiers []string
	// Member is the PDS member in parentheses, "" if none. It may hold
	// wildcards (see Wildcard).
	Member string
	// Prefix is set for the "HLQ." form, a name ending in a period, which
	// names a working directory prefix (CWD 'HLQ.') rather than a data set.
	Prefix bool
	// Wildcard is set when the last qualifier or the member holds * or ?,
	// which only a pattern (NLST for MGET and MDELETE) may do.
	Wildcard bool
	// GDG is set for a relative generation such as 'A.GDG(+1)'; Generation
	// then holds the number (+1 → 1, 0 → 0, -1 → -1) and Member is "".
	GDG        bool
	Generation int
}

// String returns the name as a client would send it; ParseMVSName of the
// result gives n back.
func (n MVSName) String() string {
	var b strings.Builder
	if n.Quoted {
		b.WriteByte('\'')
	}
	b.WriteString(strings.Join(n.Qualifiers, "."))
	if n.Prefix {
		b.WriteByte('.')
	}
	switch {
	case n.GDG:
		b.WriteByte('(')
		if n.Generation > 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(n.Generation))
		b.WriteByte(')')
	case n.Member != "":
		b.WriteString("(" + n.Member + ")")
	}
	if n.Quoted {
		b.WriteByte('\'')
	}
	return b.String()
}

// ParseMVSName parses one data set name or pattern as a client sends it:
//
//	'PAY.DAILY'       fully qualified (Quoted)
//	DAILY             relative to the working directory
//	'PAY.JCL(RUN1)'   a member
//	'PAY.' or SUB.    a prefix, for CWD
//	'PAY.JCL(RUN*)'   a member pattern; 'PAY.D*' a data set pattern
//	'PAY.GDG(+1)'     a relative generation: (+1) to (+255), (0), (-1) to (-255)
//
// Lower case is accepted and upper-cased (ASCII only), as z/OS does. A
// qualifier is 1-8 characters: A-Z, #, @ or $ first, then also 0-9 and -.
// The name, without quotes and member, is at most 44 characters. A member is
// 1-8 characters with the same rules. The wildcards * and ? may appear in the
// member, or in the last qualifier of a name without member; never in a
// prefix. Errors wrap ErrBadName.
func ParseMVSName(s string) (MVSName, error) {
	bad := func(reason string) (MVSName, error) {
		return MVSName{}, &MVSNameError{Name: s, Reason: reason, Err: ErrBadName}
	}
	var n MVSName
	body := s
	if strings.HasPrefix(body, "'") {
		if len(body) < 2 || body[len(body)-1] != '\'' {
			return bad("unbalanced quote")
		}
		body = body[1 : len(body)-1]
		n.Quoted = true
	}
	if strings.IndexByte(body, '\'') >= 0 {
		return bad("unbalanced quote")
	}
	if body == "" {
		return bad("empty name")
	}
	body = mvsUpper(body)

	if i := strings.IndexByte(body, '('); i >= 0 {
		if body[len(body)-1] != ')' {
			return bad("unbalanced parenthesis")
		}
		inner := body[i+1 : len(body)-1]
		body = body[:i]
		if strings.ContainsAny(inner, "()") {
			return bad("unbalanced parenthesis")
		}
		if inner == "" {
			return bad("empty member name in ()")
		}
		if c := inner[0]; c == '+' || c == '-' || mvsAllDigits(inner) {
			g, reason := mvsParseGeneration(inner)
			if reason != "" {
				return bad(reason)
			}
			n.GDG, n.Generation = true, g
		} else {
			reason, wild := mvsCheckQualifier(inner, true, "member")
			if reason != "" {
				return bad(reason)
			}
			n.Member, n.Wildcard = inner, wild
		}
	} else if strings.IndexByte(body, ')') >= 0 {
		return bad("unbalanced parenthesis")
	}

	if strings.HasSuffix(body, ".") {
		if n.Member != "" || n.GDG {
			return bad("a prefix (a name ending in a period) cannot have a member")
		}
		n.Prefix = true
		body = body[:len(body)-1]
	}
	if body == "" {
		return bad("empty name")
	}
	if len(body) > mvsMaxName {
		return bad(fmt.Sprintf("name is %d characters long; the limit is %d", len(body), mvsMaxName))
	}
	n.Qualifiers = strings.Split(body, ".")
	for i, q := range n.Qualifiers {
		wildOK := i == len(n.Qualifiers)-1 && !n.Prefix && n.Member == "" && !n.GDG
		reason, wild := mvsCheckQualifier(q, wildOK, "qualifier")
		if reason != "" {
			return bad(reason)
		}
		n.Wildcard = n.Wildcard || wild
	}
	return n, nil
}

func mvsAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// mvsParseGeneration parses a relative generation number: +1 to +255, 0, or
// -1 to -255, with at most three digits.
func mvsParseGeneration(s string) (int, string) {
	sign, digits := 0, s
	switch s[0] {
	case '+':
		sign, digits = 1, s[1:]
	case '-':
		sign, digits = -1, s[1:]
	}
	if digits == "" || len(digits) > 3 {
		return 0, "relative generation " + mvsQuote(s) + " is not a number from -255 to +255"
	}
	v := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, "relative generation " + mvsQuote(s) + " is not a number from -255 to +255"
		}
		v = v*10 + int(c-'0')
	}
	switch {
	case v > mvsMaxGeneration:
		return 0, "relative generation " + mvsQuote(s) + " is beyond 255"
	case sign == 0 && v != 0:
		return 0, "relative generation " + mvsQuote(s) + " needs a sign: (+1) or (-1)"
	case sign != 0 && v == 0:
		return 0, "relative generation " + mvsQuote(s) + " is written (0)"
	}
	if sign < 0 {
		v = -v
	}
	return v, ""
}

func mvsIsNational(c byte) bool { return c == '#' || c == '@' || c == '$' }
func mvsFirstChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || mvsIsNational(c)
}
func mvsRestChar(c byte) bool {
	return mvsFirstChar(c) || '0' <= c && c <= '9' || c == '-'
}

// mvsCheckQualifier checks an upper-case qualifier or member name and reports
// whether it holds a wildcard (only when wildOK). The reason is "" when q is
// valid. what names q in the reason.
func mvsCheckQualifier(q string, wildOK bool, what string) (reason string, wild bool) {
	switch {
	case q == "":
		return "empty " + what, false
	case len(q) > mvsMaxQualifier:
		return what + " " + mvsQuote(q) + " is longer than 8 characters", false
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case wildOK && (c == '*' || c == '?'):
			wild = true
		case i == 0 && !mvsFirstChar(c):
			return what + " " + mvsQuote(q) + " must start with A-Z, #, @ or $", false
		case i > 0 && !mvsRestChar(c):
			return what + " " + mvsQuote(q) + " may hold only A-Z, 0-9, #, @, $ and -", false
		}
	}
	return "", wild
}

// mvsUpper upper-cases ASCII letters only. strings.ToUpper would also map
// some non-ASCII letters onto ASCII ones (U+017F long s becomes S), letting a
// character z/OS would refuse pass as a valid one.
func mvsUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func mvsLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// The working directory, parsed.
type mvsCWDKind int

const (
	mvsNoPrefix mvsCWDKind = iota // "": no prefix
	mvsInPrefix                   // "A.B."
	mvsInPDS                      // "A.PDS("
	mvsInUnix                     // "/u/x"
)

type mvsCWD struct {
	kind  mvsCWDKind
	quals []string
}

func mvsParseCWD(cwd string) (mvsCWD, error) {
	switch {
	case cwd == "":
		return mvsCWD{}, nil
	case cwd[0] == '/':
		return mvsCWD{kind: mvsInUnix}, nil
	}
	kind := mvsInPrefix
	switch cwd[len(cwd)-1] {
	case '.':
	case '(':
		kind = mvsInPDS
	default:
		return mvsCWD{}, &MVSNameError{Name: cwd, Reason: "not a working directory (want \"\", \"A.B.\", \"A.PDS(\" or a Unix path)", Err: ErrBadName}
	}
	n, err := ParseMVSName("'" + cwd[:len(cwd)-1] + "'")
	if err != nil || n.Prefix || n.Member != "" || n.GDG || n.Wildcard {
		return mvsCWD{}, &MVSNameError{Name: cwd, Reason: "not a working directory (want \"\", \"A.B.\", \"A.PDS(\" or a Unix path)", Err: ErrBadName}
	}
	return mvsCWD{kind: kind, quals: n.Qualifiers}, nil
}

func mvsPrefixCWD(quals []string) string {
	if len(quals) == 0 {
		return ""
	}
	return strings.Join(quals, ".") + "."
}

func mvsPDSCWD(quals []string) string { return strings.Join(quals, ".") + "(" }

// parent is the working directory CDUP (or CWD ..) leads to: one qualifier
// less, and the PDS's name without its last qualifier for a PDS. A single
// qualifier is the top: 'PAY.' stays 'PAY.', as "/" stays "/".
func (c mvsCWD) parent() []string {
	switch {
	case len(c.quals) > 1:
		return c.quals[:len(c.quals)-1]
	default:
		return c.quals
	}
}

// WorkingDirName returns the working directory as PWD shows it: "'PAY.'"
// for a prefix, "'PAY.JCL'" for a PDS (the proxy may add that it is a
// partitioned data set, as z/OS does), the path itself for a Unix directory,
// and "" for no prefix or an invalid cwd.
func WorkingDirName(cwd string) string {
	c, err := mvsParseCWD(cwd)
	if err != nil {
		return ""
	}
	switch c.kind {
	case mvsInPrefix:
		return "'" + mvsPrefixCWD(c.quals) + "'"
	case mvsInPDS:
		return "'" + strings.Join(c.quals, ".") + "'"
	case mvsInUnix:
		return cwd
	}
	return ""
}

// mvsIsUnixArg reports whether an argument is a Unix name in MVSMap: an
// unquoted name containing "/". Such names are never valid data set names,
// so a job can mix 'PAY.X' and /u/pay/x.csv in one session.
func mvsIsUnixArg(arg string) bool {
	return !strings.HasPrefix(arg, "'") && strings.Contains(arg, "/")
}

// mvsAbsolute combines a parsed argument with the working directory into a
// fully qualified name (Quoted set).
func mvsAbsolute(c mvsCWD, arg string) (MVSName, error) {
	n, err := ParseMVSName(arg)
	if err != nil {
		return MVSName{}, err
	}
	if n.Quoted || c.kind == mvsNoPrefix || c.kind == mvsInUnix {
		n.Quoted = true
		return n, nil
	}
	if c.kind == mvsInPDS && len(n.Qualifiers) == 1 && !n.Prefix && n.Member == "" && !n.GDG {
		// A single name in a PDS working directory is a member. Member
		// and qualifier rules are the same, so it is valid as one.
		return MVSName{Quoted: true, Qualifiers: c.quals, Member: n.Qualifiers[0], Wildcard: n.Wildcard}, nil
	}
	// In a prefix, and for anything else in a PDS (A.B, SUB., X(MEM)),
	// the working directory's name is the prefix. z/OS refuses such names
	// in a PDS; accepting them keeps QualifiersAsDirs, where a PDS and a
	// prefix look alike upstream, working either way.
	q := make([]string, 0, len(c.quals)+len(n.Qualifiers))
	q = append(append(q, c.quals...), n.Qualifiers...)
	if l := len(strings.Join(q, ".")); l > mvsMaxName {
		return MVSName{}, &MVSNameError{Name: arg, Reason: fmt.Sprintf("name is %d characters long with the prefix %s; the limit is %d", l, mvsPrefixCWD(c.quals), mvsMaxName), Err: ErrBadName}
	}
	n.Qualifiers, n.Quoted = q, true
	return n, nil
}

func (m MVSNames) fold(s string) string {
	if m.Fold == FoldLower {
		return mvsLower(s)
	}
	return s // FoldNone and FoldUpper: parsed names are upper case already
}

// dsnPath is the upstream path of a data set, and of a PDS's directory.
func (m MVSNames) dsnPath(quals []string) string {
	sep := "."
	if m.QualifiersAsDirs {
		sep = "/"
	}
	return path.Join(m.Root, m.fold(strings.Join(quals, sep)))
}

// prefixDir is the upstream directory the data sets under a prefix are in.
func (m MVSNames) prefixDir(quals []string) string {
	if !m.QualifiersAsDirs || len(quals) == 0 {
		return m.Root
	}
	return m.dsnPath(quals)
}

func (m MVSNames) memberPath(quals []string, member string) string {
	return path.Join(m.dsnPath(quals), m.fold(member)+m.MemberSuffix)
}

// mvsResolved is what resolve found.
type mvsResolved struct {
	path    string
	next    string  // the working directory CWD would set
	name    MVSName // fully qualified; zero for ".."
	dataSet bool    // a data set name without member: a PDS or a prefix for CWD
}

// resolve does the work of Resolve and Chdir in MVSMap.
func (m MVSNames) resolve(cwd, arg string) (mvsResolved, error) {
	if err := m.Validate(); err != nil {
		return mvsResolved{}, err
	}
	c, err := mvsParseCWD(cwd)
	if err != nil {
		return mvsResolved{}, err
	}
	if mvsIsUnixArg(arg) || c.kind == mvsInUnix && !strings.HasPrefix(arg, "'") {
		return mvsResolved{}, ErrNotMVS
	}
	if arg == ".." {
		p := c.parent()
		return mvsResolved{path: m.prefixDir(p), next: mvsPrefixCWD(p)}, nil
	}
	n, err := mvsAbsolute(c, arg)
	if err != nil {
		return mvsResolved{}, err
	}
	switch {
	case n.Wildcard:
		return mvsResolved{}, &MVSNameError{Name: arg, Reason: "a pattern where one name is needed", Err: ErrBadName}
	case n.GDG:
		return mvsResolved{}, &MVSNameError{Name: arg, Reason: "relative generation " + n.String(), Err: ErrRelativeGDG}
	case n.Prefix:
		return mvsResolved{path: m.prefixDir(n.Qualifiers), next: mvsPrefixCWD(n.Qualifiers), name: n}, nil
	case n.Member != "":
		return mvsResolved{path: m.memberPath(n.Qualifiers, n.Member), next: cwd, name: n}, nil
	}
	return mvsResolved{path: m.dsnPath(n.Qualifiers), next: mvsPrefixCWD(n.Qualifiers), name: n, dataSet: true}, nil
}

// Resolve maps the argument of a command that names one file or directory
// (RETR, STOR, APPE, DELE, RNFR, RNTO, SIZE, MDTM, MKD, RMD, CWD) to an
// upstream path, given the session's working directory cwd.
//
// In MVSMap, a quoted name is fully qualified and an unquoted one is
// relative to cwd (see the package's mapping table). upstream is the data
// set's file, a member's file inside its PDS directory, or for a prefix the
// directory its data sets are in (Root itself unless QualifiersAsDirs). It
// always lies under Root. newCWD is the working directory a CWD to arg
// gives: the prefix itself for 'PAY.', the name as a prefix for a data set
// name ('PAY.X' → "PAY.X."), the parent for ".." (CDUP), and cwd unchanged
// for a member. Use Chdir for CWD: it can tell a PDS from a prefix.
//
// Errors: ErrNotMVS for a Unix name (see ErrNotMVS), and *MVSNameError
// wrapping ErrBadName (invalid name, or a pattern) or ErrRelativeGDG.
//
// In MVSOff the result is always ErrNotMVS. In MVSVerbatim, upstream is arg
// unchanged and newCWD is cwd: the partner resolves names and keeps the
// working directory.
func (m MVSNames) Resolve(cwd, arg string) (upstream, newCWD string, err error) {
	switch m.Mode {
	case MVSOff:
		return "", cwd, ErrNotMVS
	case MVSVerbatim:
		return arg, cwd, nil
	}
	r, err := m.resolve(cwd, arg)
	if err != nil {
		return "", cwd, err
	}
	return r.path, r.next, nil
}

// Chdir is Resolve for CWD and CDUP (arg ".."). z/OS makes 'PAY.JCL' (no
// trailing period) a PDS working directory if the catalog says PAY.JCL is
// partitioned, and a prefix 'PAY.JCL.' otherwise. Chdir has no catalog, so
// it asks isPDS, passing the upstream path of the data set; the proxy
// answers whether that is a directory on the partner (Stat). A nil isPDS
// means never. A name ending in a period is always a prefix and isPDS is not
// asked. In a PDS working directory ("PAY.JCL("), an unquoted single name is
// a member: CWD 'PAY.JCL' then STOR RUN1 stores 'PAY.JCL(RUN1)'.
//
// With QualifiersAsDirs a prefix directory and a PDS directory look alike,
// so a Stat-based isPDS makes every existing directory a PDS; that differs
// from a prefix only when MemberSuffix is set (the member file gets the
// suffix). Jobs can end prefixes with a period to be unambiguous.
//
// Chdir to a member fails with an *MVSNameError wrapping ErrNotDir. Other
// results are as for Resolve.
func (m MVSNames) Chdir(cwd, arg string, isPDS func(upstream string) bool) (upstream, newCWD string, err error) {
	if m.Mode != MVSMap {
		return m.Resolve(cwd, arg)
	}
	r, err := m.resolve(cwd, arg)
	switch {
	case err != nil:
		return "", cwd, err
	case r.name.Member != "":
		return "", cwd, &MVSNameError{Name: arg, Reason: "a member is not a working directory", Err: ErrNotDir}
	case r.dataSet && isPDS != nil && isPDS(r.path):
		return r.path, mvsPDSCWD(r.name.Qualifiers), nil
	}
	return r.path, r.next, nil
}

// mvsListing is what listing found: where to look and how to name the
// entries.
type mvsListing struct {
	dir, glob string
	cwd       mvsCWD
	cwdText   string
	// members lists the PDS quals; otherwise data sets whose names start
	// with dirQuals (the directory's qualifiers with QualifiersAsDirs,
	// none without) are listed.
	members  bool
	quals    []string
	dirQuals []string
	// pattern is the fully qualified data set pattern, one entry per
	// qualifier; nil lists every data set under quals at any depth.
	pattern []string
	quoted  bool
}

func (m MVSNames) listing(cwd, arg string) (mvsListing, error) {
	if err := m.Validate(); err != nil {
		return mvsListing{}, err
	}
	c, err := mvsParseCWD(cwd)
	if err != nil {
		return mvsListing{}, err
	}
	if mvsIsUnixArg(arg) || c.kind == mvsInUnix && !strings.HasPrefix(arg, "'") {
		return mvsListing{}, ErrNotMVS
	}
	l := mvsListing{cwd: c, cwdText: cwd}
	var n MVSName
	switch arg {
	case "":
		switch c.kind {
		case mvsInPDS:
			n = MVSName{Quoted: true, Qualifiers: c.quals, Member: "*", Wildcard: true}
		default:
			n = MVSName{Quoted: true, Qualifiers: c.quals, Prefix: true}
		}
	default:
		if n, err = mvsAbsolute(c, arg); err != nil {
			return mvsListing{}, err
		}
		l.quoted = strings.HasPrefix(arg, "'")
	}
	switch {
	case n.GDG:
		return mvsListing{}, &MVSNameError{Name: arg, Reason: "relative generation " + n.String(), Err: ErrRelativeGDG}
	case n.Member != "":
		l.members, l.quals = true, n.Qualifiers
		l.dir = m.dsnPath(n.Qualifiers)
		l.glob = m.fold(n.Member) + mvsGlobEscape(m.MemberSuffix)
	case n.Prefix:
		l.quals = n.Qualifiers
		l.dir = m.prefixDir(n.Qualifiers)
		switch {
		case m.QualifiersAsDirs:
			l.glob, l.dirQuals = "*", n.Qualifiers
		case len(n.Qualifiers) == 0:
			l.glob = "*"
		default:
			l.glob = m.fold(mvsPrefixCWD(n.Qualifiers)) + "*"
		}
	default:
		l.pattern = n.Qualifiers
		if m.QualifiersAsDirs {
			l.dirQuals = n.Qualifiers[:len(n.Qualifiers)-1]
			l.dir = m.prefixDir(l.dirQuals)
			l.glob = m.fold(n.Qualifiers[len(n.Qualifiers)-1])
		} else {
			l.dir = m.Root
			l.glob = m.fold(strings.Join(n.Qualifiers, "."))
		}
	}
	return l, nil
}

// mvsGlobEscape quotes path.Match's special characters, for MemberSuffix.
// Names themselves hold none but the wildcards * and ?, which stay
// wildcards.
func mvsGlobEscape(s string) string {
	if !strings.ContainsAny(s, `*?[\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Pattern maps the argument of NLST or LIST to the upstream directory to
// read and a path.Match pattern over the base names in it. The z/OS client's
// MGET and MDELETE send NLST with a pattern, then RETR or DELE each name
// returned. arg may be empty (the working directory):
//
//	cwd "PAY." arg ""                  every data set under PAY.
//	cwd "PAY." arg "*" or "D*"         data sets PAY.x, PAY.Dx (one qualifier)
//	cwd "PAY.JCL(" arg "" or "RUN*"    members of PAY.JCL
//	'PAY.JCL(RUN*)', 'PAY.JCL(RUN1)'   members of PAY.JCL
//	'PAY.D*', 'PAY.DAILY'              data sets matching, or that one
//
// Without QualifiersAsDirs every data set is a file in Root, so the pattern
// is over whole names (PAY.D*) and may match more than the request (a * in
// path.Match also crosses periods: PAY.D* matches PAY.DAILY.X). With
// QualifiersAsDirs a listing reads one directory level; deeper qualifiers
// and PDSes show as directories. In both cases Display is the authority: it
// names each entry the way the client asked for it and refuses entries that
// do not belong. A data set name without wildcard lists that one name, as
// NLST of a file does; a PDS's members need 'PAY.JCL(*)' or a PDS working
// directory.
//
// Errors are as for Resolve. In MVSVerbatim, dir is arg and pattern is "":
// the partner lists.
func (m MVSNames) Pattern(cwd, arg string) (dir, pattern string, err error) {
	switch m.Mode {
	case MVSOff:
		return "", "", ErrNotMVS
	case MVSVerbatim:
		return arg, "", nil
	}
	l, err := m.listing(cwd, arg)
	if err != nil {
		return "", "", err
	}
	return l.dir, l.glob, nil
}

// Display returns the name NLST shows for entry, a base name read from the
// directory Pattern(cwd, arg) returned, or false when the entry must be left
// out: it does not match, or it is no name a z/OS client could ask for
// (wrong case for Fold, an invalid qualifier, a temporary file).
//
//   - A member is shown bare: RUN1.
//   - A data set asked for by a quoted pattern is shown quoted and fully
//     qualified: 'PAY.DAILY'.
//   - A data set asked for relative to the working directory is shown
//     relative to it, unquoted: DAILY for 'PAY.DAILY' in 'PAY.'.
//
// Every data set name shown resolves, with the same cwd, back to the entry,
// so the client's RETR or DELE of it reaches the file that was listed. In
// MVSVerbatim the entry is returned as it is; in MVSOff, or for an arg
// Pattern refuses, the result is false.
func (m MVSNames) Display(cwd, arg, entry string) (string, bool) {
	switch m.Mode {
	case MVSOff:
		return "", false
	case MVSVerbatim:
		return entry, true
	}
	if entry == "" || entry == "." || entry == ".." || strings.Contains(entry, "/") {
		return "", false
	}
	l, err := m.listing(cwd, arg)
	if err != nil {
		return "", false
	}
	if ok, _ := path.Match(l.glob, entry); !ok {
		return "", false
	}
	full := path.Join(l.dir, entry)

	if l.members {
		if !strings.HasSuffix(entry, m.MemberSuffix) {
			return "", false
		}
		mem := mvsUpper(strings.TrimSuffix(entry, m.MemberSuffix))
		if reason, _ := mvsCheckQualifier(mem, false, "member"); reason != "" || m.memberPath(l.quals, mem) != full {
			return "", false
		}
		return mem, true
	}

	name := mvsUpper(entry)
	if len(l.dirQuals) > 0 {
		name = strings.Join(l.dirQuals, ".") + "." + name
	}
	n, err := ParseMVSName("'" + name + "'")
	if err != nil || n.Prefix || n.Member != "" || n.GDG || n.Wildcard {
		return "", false
	}
	q := n.Qualifiers
	if l.pattern == nil {
		if len(q) <= len(l.quals) || !mvsHasQualPrefix(q, l.quals) {
			return "", false
		}
	} else {
		if len(q) != len(l.pattern) {
			return "", false
		}
		for i := range q {
			if ok, _ := path.Match(l.pattern[i], q[i]); !ok {
				return "", false
			}
		}
	}
	if m.dsnPath(q) != full {
		return "", false
	}
	if !l.quoted && (l.cwd.kind == mvsNoPrefix || mvsHasQualPrefix(q, l.cwd.quals) && len(q) > len(l.cwd.quals)) {
		rel := strings.Join(q[len(l.cwd.quals):], ".")
		if r, err := m.resolve(l.cwdText, rel); err == nil && r.path == full && r.dataSet {
			return rel, true
		}
	}
	return n.String(), true
}

func mvsHasQualPrefix(q, prefix []string) bool {
	if len(q) < len(prefix) {
		return false
	}
	for i := range prefix {
		if q[i] != prefix[i] {
			return false
		}
	}
	return true
}
