package translate_test

import (
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/translate"
)

// The three mapping configurations most tests run against.
var (
	mvsFlat = translate.MVSNames{Mode: translate.MVSMap, Root: "/data/mvs"}
	mvsDirs = translate.MVSNames{Mode: translate.MVSMap, Root: "/data/mvs", QualifiersAsDirs: true}
	// mvsLowerTxt is a Unix partner with lower-case files: qualifiers as
	// directories, members as .txt files.
	mvsLowerTxt = translate.MVSNames{Mode: translate.MVSMap, Root: "/data/mvs", QualifiersAsDirs: true,
		Fold: translate.FoldLower, MemberSuffix: ".txt"}
)

// Names at and just over the limits.
const (
	mvs44   = "AAAAAAAA.BBBBBBBB.CCCCCCCC.DDDDDDDD.EEEEEEEE" // 5 × 8 + 4 periods
	mvs45   = "AAAAAAAA.BBBBBBBB.CCCCCCCC.DDDDDDDD.EEEE.FFFF"
	mvsPre4 = "AAAAAAAA.BBBBBBBB.CCCCCCCC.DDDDDDDD." // 36 characters of prefix
)

func TestMVSLimitConstants(t *testing.T) {
	if len(mvs44) != 44 || len(mvs45) != 45 || len(mvsPre4) != 36 {
		t.Fatalf("test constants have lengths %d, %d, %d; want 44, 45, 36", len(mvs44), len(mvs45), len(mvsPre4))
	}
}

// mvsResolveTests are arguments as JCL FTP steps send them. flat, dirs and
// lowerTxt are the upstream paths with mvsFlat, mvsDirs and mvsLowerTxt; next
// is newCWD (the same for all three). When err is set, all three fail with
// it and leave the working directory alone.
var mvsResolveTests = []struct {
	name                 string
	cwd, arg             string
	flat, dirs, lowerTxt string
	next                 string
	err                  error
}{
	// Fully qualified names.
	{name: "quoted data set", cwd: "PAYJOB.", arg: "'PAY.DAILY.EXTRACT'",
		flat: "/data/mvs/PAY.DAILY.EXTRACT", dirs: "/data/mvs/PAY/DAILY/EXTRACT", lowerTxt: "/data/mvs/pay/daily/extract",
		next: "PAY.DAILY.EXTRACT."},
	{name: "quoted member", cwd: "PAYJOB.", arg: "'SYS1.PROCLIB(IEFBR14)'",
		flat: "/data/mvs/SYS1.PROCLIB/IEFBR14", dirs: "/data/mvs/SYS1/PROCLIB/IEFBR14", lowerTxt: "/data/mvs/sys1/proclib/iefbr14.txt",
		next: "PAYJOB."},
	{name: "quoted prefix for CWD", cwd: "PAYJOB.", arg: "'HLQ.'",
		flat: "/data/mvs", dirs: "/data/mvs/HLQ", lowerTxt: "/data/mvs/hlq", next: "HLQ."},
	{name: "quoted two-level prefix", cwd: "PAYJOB.", arg: "'HLQ.SUB.'",
		flat: "/data/mvs", dirs: "/data/mvs/HLQ/SUB", lowerTxt: "/data/mvs/hlq/sub", next: "HLQ.SUB."},
	{name: "quoted name ignores a Unix cwd", cwd: "/u/pay", arg: "'PAY.X'",
		flat: "/data/mvs/PAY.X", dirs: "/data/mvs/PAY/X", lowerTxt: "/data/mvs/pay/x", next: "PAY.X."},
	{name: "lower case is upper-cased", cwd: "PAYJOB.", arg: "'pay.Daily.extract'",
		flat: "/data/mvs/PAY.DAILY.EXTRACT", dirs: "/data/mvs/PAY/DAILY/EXTRACT", lowerTxt: "/data/mvs/pay/daily/extract",
		next: "PAY.DAILY.EXTRACT."},
	{name: "lower case member", cwd: "PAYJOB.", arg: "'sys1.proclib(iefbr14)'",
		flat: "/data/mvs/SYS1.PROCLIB/IEFBR14", dirs: "/data/mvs/SYS1/PROCLIB/IEFBR14", lowerTxt: "/data/mvs/sys1/proclib/iefbr14.txt",
		next: "PAYJOB."},
	{name: "national characters and hyphen", cwd: "", arg: "'$SYS.@A-1.#B'",
		flat: "/data/mvs/$SYS.@A-1.#B", dirs: "/data/mvs/$SYS/@A-1/#B", lowerTxt: "/data/mvs/$sys/@a-1/#b", next: "$SYS.@A-1.#B."},
	{name: "absolute generation is a plain name", cwd: "", arg: "'PAY.GDG.G0001V00'",
		flat: "/data/mvs/PAY.GDG.G0001V00", dirs: "/data/mvs/PAY/GDG/G0001V00", lowerTxt: "/data/mvs/pay/gdg/g0001v00", next: "PAY.GDG.G0001V00."},

	// Relative names.
	{name: "unquoted relative to prefix", cwd: "HLQ.", arg: "x.y",
		flat: "/data/mvs/HLQ.X.Y", dirs: "/data/mvs/HLQ/X/Y", lowerTxt: "/data/mvs/hlq/x/y", next: "HLQ.X.Y."},
	{name: "unquoted member relative to prefix", cwd: "HLQ.", arg: "JCL(RUN1)",
		flat: "/data/mvs/HLQ.JCL/RUN1", dirs: "/data/mvs/HLQ/JCL/RUN1", lowerTxt: "/data/mvs/hlq/jcl/run1.txt", next: "HLQ."},
	{name: "unquoted prefix extends prefix", cwd: "HLQ.", arg: "SUB.",
		flat: "/data/mvs", dirs: "/data/mvs/HLQ/SUB", lowerTxt: "/data/mvs/hlq/sub", next: "HLQ.SUB."},
	{name: "unquoted with no prefix is fully qualified", cwd: "", arg: "PAY.X",
		flat: "/data/mvs/PAY.X", dirs: "/data/mvs/PAY/X", lowerTxt: "/data/mvs/pay/x", next: "PAY.X."},
	{name: "member name in PDS working directory", cwd: "PAY.JCL(", arg: "run1",
		flat: "/data/mvs/PAY.JCL/RUN1", dirs: "/data/mvs/PAY/JCL/RUN1", lowerTxt: "/data/mvs/pay/jcl/run1.txt", next: "PAY.JCL("},
	{name: "dotted name in PDS working directory uses it as prefix", cwd: "PAY.JCL(", arg: "X.Y",
		flat: "/data/mvs/PAY.JCL.X.Y", dirs: "/data/mvs/PAY/JCL/X/Y", lowerTxt: "/data/mvs/pay/jcl/x/y", next: "PAY.JCL.X.Y."},
	{name: "lower-case cwd is accepted", cwd: "hlq.", arg: "x",
		flat: "/data/mvs/HLQ.X", dirs: "/data/mvs/HLQ/X", lowerTxt: "/data/mvs/hlq/x", next: "HLQ.X."},

	// CDUP.
	{name: "CDUP drops a qualifier", cwd: "HLQ.SUB.", arg: "..",
		flat: "/data/mvs", dirs: "/data/mvs/HLQ", lowerTxt: "/data/mvs/hlq", next: "HLQ."},
	{name: "CDUP stops at the high-level qualifier", cwd: "HLQ.", arg: "..",
		flat: "/data/mvs", dirs: "/data/mvs/HLQ", lowerTxt: "/data/mvs/hlq", next: "HLQ."},
	{name: "CDUP from a PDS", cwd: "PAY.JCL(", arg: "..",
		flat: "/data/mvs", dirs: "/data/mvs/PAY", lowerTxt: "/data/mvs/pay", next: "PAY."},
	{name: "CDUP with no prefix", cwd: "", arg: "..",
		flat: "/data/mvs", dirs: "/data/mvs", lowerTxt: "/data/mvs", next: ""},

	// Limits.
	{name: "44 characters exactly", cwd: "", arg: "'" + mvs44 + "'",
		flat: "/data/mvs/" + mvs44, dirs: "/data/mvs/AAAAAAAA/BBBBBBBB/CCCCCCCC/DDDDDDDD/EEEEEEEE",
		lowerTxt: "/data/mvs/aaaaaaaa/bbbbbbbb/cccccccc/dddddddd/eeeeeeee", next: mvs44 + "."},
	{name: "45 characters", cwd: "", arg: "'" + mvs45 + "'", err: translate.ErrBadName},
	{name: "44 characters with the prefix", cwd: mvsPre4, arg: "EEEEEEEE",
		flat: "/data/mvs/" + mvs44, dirs: "/data/mvs/AAAAAAAA/BBBBBBBB/CCCCCCCC/DDDDDDDD/EEEEEEEE",
		lowerTxt: "/data/mvs/aaaaaaaa/bbbbbbbb/cccccccc/dddddddd/eeeeeeee", next: mvs44 + "."},
	{name: "45 characters with the prefix", cwd: mvsPre4, arg: "EEEE.FFFF", err: translate.ErrBadName},
	{name: "8-character qualifier", cwd: "", arg: "'ABCDEFGH.X'",
		flat: "/data/mvs/ABCDEFGH.X", dirs: "/data/mvs/ABCDEFGH/X", lowerTxt: "/data/mvs/abcdefgh/x", next: "ABCDEFGH.X."},
	{name: "9-character qualifier", cwd: "", arg: "'ABCDEFGHI.X'", err: translate.ErrBadName},
	{name: "9-character last qualifier", cwd: "", arg: "'X.ABCDEFGHI'", err: translate.ErrBadName},
	{name: "8-character member", cwd: "", arg: "'A.PDS(ABCDEFGH)'",
		flat: "/data/mvs/A.PDS/ABCDEFGH", dirs: "/data/mvs/A/PDS/ABCDEFGH", lowerTxt: "/data/mvs/a/pds/abcdefgh.txt", next: ""},
	{name: "9-character member", cwd: "", arg: "'A.PDS(ABCDEFGHI)'", err: translate.ErrBadName},
	{name: "9-character member name in PDS cwd", cwd: "A.PDS(", arg: "ABCDEFGHI", err: translate.ErrBadName},

	// Bad characters and forms.
	{name: "first character a digit", cwd: "", arg: "'1ABC'", err: translate.ErrBadName},
	{name: "later qualifier starts with a digit", cwd: "", arg: "'A.1B'", err: translate.ErrBadName},
	{name: "member starts with a digit", cwd: "", arg: "'A.PDS(1MEM)'", err: translate.ErrBadName},
	{name: "empty quotes", cwd: "HLQ.", arg: "''", err: translate.ErrBadName},
	{name: "lone quote", cwd: "HLQ.", arg: "'", err: translate.ErrBadName},
	{name: "unbalanced opening quote", cwd: "HLQ.", arg: "'A.B", err: translate.ErrBadName},
	{name: "unbalanced closing quote", cwd: "HLQ.", arg: "A.B'", err: translate.ErrBadName},
	{name: "quote inside", cwd: "HLQ.", arg: "'A.'B'", err: translate.ErrBadName},
	{name: "parentheses without member", cwd: "", arg: "'A.B()'", err: translate.ErrBadName},
	{name: "unbalanced parenthesis", cwd: "", arg: "'A.B(MEM'", err: translate.ErrBadName},
	{name: "closing parenthesis only", cwd: "", arg: "'A.B)'", err: translate.ErrBadName},
	{name: "text after member", cwd: "", arg: "'A.B(MEM)X'", err: translate.ErrBadName},
	{name: "two members", cwd: "", arg: "'A.B(M)(N)'", err: translate.ErrBadName},
	{name: "prefix with member", cwd: "", arg: "'A.(MEM)'", err: translate.ErrBadName},
	{name: "empty qualifier", cwd: "", arg: "'A..B'", err: translate.ErrBadName},
	{name: "leading period", cwd: "", arg: "'.A'", err: translate.ErrBadName},
	{name: "only a period", cwd: "", arg: "'.'", err: translate.ErrBadName},
	{name: "empty argument", cwd: "HLQ.", arg: "", err: translate.ErrBadName},
	{name: "blank inside", cwd: "", arg: "'A B'", err: translate.ErrBadName},
	{name: "underscore", cwd: "HLQ.", arg: "file_1", err: translate.ErrBadName},
	{name: "long s is not S", cwd: "", arg: "'\u017fYS1.X'", err: translate.ErrBadName},
	{name: "CR LF inside", cwd: "", arg: "'A.B\r\nDELE X'", err: translate.ErrBadName},
	{name: "NUL inside", cwd: "", arg: "'A.B\x00'", err: translate.ErrBadName},
	{name: "pattern where a name is needed", cwd: "", arg: "'A.PDS(MEM*)'", err: translate.ErrBadName},
	{name: "data set pattern where a name is needed", cwd: "HLQ.", arg: "D*", err: translate.ErrBadName},
	{name: "wildcard in a prefix", cwd: "", arg: "'A*.'", err: translate.ErrBadName},
	{name: "wildcard in a middle qualifier", cwd: "", arg: "'A.*.B'", err: translate.ErrBadName},
	{name: "invalid working directory", cwd: "HLQ", arg: "X", err: translate.ErrBadName},
	{name: "working directory with a wildcard", cwd: "H*.", arg: "X", err: translate.ErrBadName},

	// GDG.
	{name: "GDG new generation", cwd: "", arg: "'PAY.GDG(+1)'", err: translate.ErrRelativeGDG},
	{name: "GDG current generation", cwd: "", arg: "'PAY.GDG(0)'", err: translate.ErrRelativeGDG},
	{name: "GDG previous generation", cwd: "", arg: "'PAY.GDG(-1)'", err: translate.ErrRelativeGDG},
	{name: "GDG relative to prefix", cwd: "PAY.", arg: "GDG(+1)", err: translate.ErrRelativeGDG},
	{name: "GDG beyond 255", cwd: "", arg: "'PAY.GDG(+256)'", err: translate.ErrBadName},
	{name: "GDG without sign", cwd: "", arg: "'PAY.GDG(1)'", err: translate.ErrBadName},
	{name: "GDG plus zero", cwd: "", arg: "'PAY.GDG(+0)'", err: translate.ErrBadName},

	// Path traversal: none of these can leave Root.
	{name: "Unix traversal is a Unix name", cwd: "HLQ.", arg: "../../etc", err: translate.ErrNotMVS},
	{name: "quoted Unix traversal", cwd: "HLQ.", arg: "'../../etc'", err: translate.ErrBadName},
	{name: "quoted absolute path", cwd: "HLQ.", arg: "'/etc/passwd'", err: translate.ErrBadName},
	{name: "slash inside a quoted qualifier", cwd: "", arg: "'A/B.C'", err: translate.ErrBadName},
	{name: "slash inside an unquoted qualifier", cwd: "HLQ.", arg: "A/B.C", err: translate.ErrNotMVS},
	{name: "dot-dot as member", cwd: "", arg: "'A.PDS(..)'", err: translate.ErrBadName},
	{name: "path as member", cwd: "", arg: "'A.PDS(../X)'", err: translate.ErrBadName},
	{name: "dot-dot as quoted name", cwd: "HLQ.", arg: "'..'", err: translate.ErrBadName},
	{name: "backslash traversal", cwd: "HLQ.", arg: `..\..\X`, err: translate.ErrBadName},
	{name: "absolute Unix path", cwd: "HLQ.", arg: "/etc/passwd", err: translate.ErrNotMVS},
	{name: "unquoted name in a Unix cwd", cwd: "/u/pay", arg: "x.csv", err: translate.ErrNotMVS},
	{name: "CDUP in a Unix cwd", cwd: "/u/pay", arg: "..", err: translate.ErrNotMVS},
}

func TestMVSResolve(t *testing.T) {
	for _, tc := range mvsResolveTests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				cfg  translate.MVSNames
				name string
				want string
			}{
				{mvsFlat, "flat", tc.flat},
				{mvsDirs, "dirs", tc.dirs},
				{mvsLowerTxt, "lowerTxt", tc.lowerTxt},
			} {
				up, next, err := c.cfg.Resolve(tc.cwd, tc.arg)
				if tc.err != nil {
					if !errors.Is(err, tc.err) || up != "" || next != tc.cwd {
						t.Errorf("%s: Resolve(%q, %q) = %q, %q, %v; want \"\", %q, %v", c.name, tc.cwd, tc.arg, up, next, err, tc.cwd, tc.err)
					}
					continue
				}
				if err != nil || up != c.want || next != tc.next {
					t.Errorf("%s: Resolve(%q, %q) = %q, %q, %v; want %q, %q, nil", c.name, tc.cwd, tc.arg, up, next, err, c.want, tc.next)
				}
			}
		})
	}
}

func TestMVSResolveOffAndVerbatim(t *testing.T) {
	off := translate.MVSNames{Root: "/data/mvs", QualifiersAsDirs: true}
	verbatim := translate.MVSNames{Mode: translate.MVSVerbatim, Root: "/data/mvs"}
	for _, tc := range mvsResolveTests {
		t.Run(tc.name, func(t *testing.T) {
			if up, next, err := off.Resolve(tc.cwd, tc.arg); err != translate.ErrNotMVS || up != "" || next != tc.cwd {
				t.Errorf("off: Resolve(%q, %q) = %q, %q, %v; want \"\", %q, ErrNotMVS", tc.cwd, tc.arg, up, next, err, tc.cwd)
			}
			if up, next, err := verbatim.Resolve(tc.cwd, tc.arg); err != nil || up != tc.arg || next != tc.cwd {
				t.Errorf("verbatim: Resolve(%q, %q) = %q, %q, %v; want %q, %q, nil", tc.cwd, tc.arg, up, next, err, tc.arg, tc.cwd)
			}
			if _, _, err := off.Chdir(tc.cwd, tc.arg, nil); err != translate.ErrNotMVS {
				t.Errorf("off: Chdir(%q, %q) error = %v; want ErrNotMVS", tc.cwd, tc.arg, err)
			}
			if dir, pat, err := off.Pattern(tc.cwd, tc.arg); err != translate.ErrNotMVS || dir != "" || pat != "" {
				t.Errorf("off: Pattern(%q, %q) = %q, %q, %v; want ErrNotMVS", tc.cwd, tc.arg, dir, pat, err)
			}
			if dir, pat, err := verbatim.Pattern(tc.cwd, tc.arg); err != nil || dir != tc.arg || pat != "" {
				t.Errorf("verbatim: Pattern(%q, %q) = %q, %q, %v; want %q, \"\", nil", tc.cwd, tc.arg, dir, pat, err, tc.arg)
			}
			if name, ok := verbatim.Display(tc.cwd, tc.arg, "PAY.X"); !ok || name != "PAY.X" {
				t.Errorf("verbatim: Display = %q, %v; want the entry unchanged", name, ok)
			}
			if name, ok := off.Display(tc.cwd, tc.arg, "PAY.X"); ok {
				t.Errorf("off: Display = %q, true; want false", name)
			}
		})
	}
}

// TestMVSJCLSession follows the commands of a typical JCL FTP step through
// a session, keeping the working directory as the proxy would.
func TestMVSJCLSession(t *testing.T) {
	pds := map[string]bool{"/data/mvs/PROD.JCLLIB": true}
	isPDS := func(p string) bool { return pds[p] }
	steps := []struct {
		verb, arg string
		want      string // upstream path
		cwd       string // working directory afterwards
	}{
		{"CWD", "'PROD.PAYROLL.'", "/data/mvs", "PROD.PAYROLL."},              // cd 'PROD.PAYROLL.'
		{"STOR", "DAILY.EXTRACT", "/data/mvs/PROD.PAYROLL.DAILY.EXTRACT", ""}, // put 'HLQ.LOCAL' DAILY.EXTRACT
		{"STOR", "'HLQ.LOCAL.DS'", "/data/mvs/HLQ.LOCAL.DS", ""},              // put 'HLQ.LOCAL.DS' (no remote name)
		{"STOR", "'PROD.JCLLIB(RUN1)'", "/data/mvs/PROD.JCLLIB/RUN1", ""},     // put 'HLQ.JCL(RUN1)' 'PROD.JCLLIB(RUN1)'
		{"CWD", "'PROD.JCLLIB'", "/data/mvs/PROD.JCLLIB", "PROD.JCLLIB("},     // cd 'PROD.JCLLIB', a PDS
		{"STOR", "RUN2", "/data/mvs/PROD.JCLLIB/RUN2", ""},                    // mput 'HLQ.JCL(*)'
		{"DELE", "RUN3", "/data/mvs/PROD.JCLLIB/RUN3", ""},                    // mdelete
		{"CDUP", "..", "/data/mvs", "PROD."},                                  // cdup
		{"CWD", "PAYROLL", "/data/mvs/PROD.PAYROLL", "PROD.PAYROLL."},         // cd PAYROLL (not a PDS)
		{"RETR", "'PROD.PAYROLL.DAILY.EXTRACT'", "/data/mvs/PROD.PAYROLL.DAILY.EXTRACT", ""},
	}
	cwd := mvsFlat.InitialCWD("payjob")
	if cwd != "PAYJOB." {
		t.Fatalf("InitialCWD(%q) = %q; want %q", "payjob", cwd, "PAYJOB.")
	}
	for _, s := range steps {
		var up, next string
		var err error
		if s.verb == "CWD" || s.verb == "CDUP" {
			up, next, err = mvsFlat.Chdir(cwd, s.arg, isPDS)
		} else {
			// Data commands never move the working directory.
			up, _, err = mvsFlat.Resolve(cwd, s.arg)
			next = cwd
		}
		if err != nil || up != s.want {
			t.Fatalf("%s %s in %q: got %q, %v; want %q", s.verb, s.arg, cwd, up, err, s.want)
		}
		if s.cwd != "" && next != s.cwd {
			t.Fatalf("%s %s in %q: working directory %q; want %q", s.verb, s.arg, cwd, next, s.cwd)
		}
		cwd = next
	}
}

func TestMVSChdir(t *testing.T) {
	always := func(string) bool { return true }
	never := func(string) bool { return false }
	tests := []struct {
		name     string
		cfg      translate.MVSNames
		cwd, arg string
		isPDS    func(string) bool
		up, next string
		err      error
	}{
		{"PDS by the partner's directory", mvsFlat, "HLQ.", "'PAY.JCL'", always, "/data/mvs/PAY.JCL", "PAY.JCL(", nil},
		{"not a PDS is a prefix", mvsFlat, "HLQ.", "'PAY.JCL'", never, "/data/mvs/PAY.JCL", "PAY.JCL.", nil},
		{"nil isPDS means prefix", mvsFlat, "HLQ.", "'PAY.JCL'", nil, "/data/mvs/PAY.JCL", "PAY.JCL.", nil},
		{"relative PDS", mvsDirs, "PAY.", "JCL", always, "/data/mvs/PAY/JCL", "PAY.JCL(", nil},
		{"lower-case PDS path asked", mvsLowerTxt, "PAY.", "jcl", func(p string) bool { return p == "/data/mvs/pay/jcl" }, "/data/mvs/pay/jcl", "PAY.JCL(", nil},
		{"CDUP from PDS", mvsFlat, "PAY.JCL(", "..", always, "/data/mvs", "PAY.", nil},
		{"member is not a directory", mvsFlat, "HLQ.", "'PAY.JCL(RUN1)'", always, "", "HLQ.", translate.ErrNotDir},
		{"member in PDS cwd is not a directory", mvsFlat, "PAY.JCL(", "RUN1", always, "", "PAY.JCL(", translate.ErrNotDir},
		{"GDG", mvsFlat, "HLQ.", "'PAY.GDG(0)'", always, "", "HLQ.", translate.ErrRelativeGDG},
		{"pattern", mvsFlat, "HLQ.", "'PAY.*'", always, "", "HLQ.", translate.ErrBadName},
		{"Unix directory", mvsFlat, "HLQ.", "/u/pay", always, "", "HLQ.", translate.ErrNotMVS},
		{"from Unix back to MVS", mvsFlat, "/u/pay", "'PAY.'", always, "/data/mvs", "PAY.", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, next, err := tc.cfg.Chdir(tc.cwd, tc.arg, tc.isPDS)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || up != tc.up || next != tc.next {
				t.Errorf("Chdir(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.cwd, tc.arg, up, next, err, tc.up, tc.next, tc.err)
			}
		})
	}

	t.Run("prefix never asks isPDS", func(t *testing.T) {
		ask := func(p string) bool { t.Errorf("isPDS(%q) asked for a name ending in a period", p); return true }
		if _, next, err := mvsFlat.Chdir("HLQ.", "'PAY.JCL.'", ask); err != nil || next != "PAY.JCL." {
			t.Errorf("Chdir(%q) = %q, %v; want %q", "'PAY.JCL.'", next, err, "PAY.JCL.")
		}
		if _, next, err := mvsFlat.Chdir("PAY.JCL.", "..", ask); err != nil || next != "PAY." {
			t.Errorf("Chdir(..) = %q, %v; want %q", next, err, "PAY.")
		}
	})
}

// mvsListTests give, for one NLST argument, the directory and pattern to
// list and what NLST shows for each entry found there ("" leaves it out).
var mvsListTests = []struct {
	name     string
	cfg      translate.MVSNames
	cwd, arg string
	dir      string
	pattern  string
	members  bool // entries are members (shown bare)
	show     map[string]string
}{
	{"prefix, no argument", mvsFlat, "PAY.", "", "/data/mvs", "PAY.*", false, map[string]string{
		"PAY.DAILY":                "DAILY",
		"PAY.DAILY.X":              "DAILY.X",
		"PAY.JCL":                  "JCL",
		"pay.lower":                "",
		"OTHER.X":                  "",
		".PAY.X.ftpgate-0123.part": "",
		"PAY.TOOLONGQUAL":          "",
		"PAY.":                     "",
		"PAY.X(Y)":                 "",
	}},
	{"prefix, star is one qualifier", mvsFlat, "PAY.", "*", "/data/mvs", "PAY.*", false, map[string]string{
		"PAY.DAILY":   "DAILY",
		"PAY.DAILY.X": "",
	}},
	{"prefix, relative pattern", mvsFlat, "PAY.", "DAILY.*", "/data/mvs", "PAY.DAILY.*", false, map[string]string{
		"PAY.DAILY.X":   "DAILY.X",
		"PAY.DAILY.X.Y": "",
		"PAY.DAILY":     "",
	}},
	{"quoted pattern is shown quoted", mvsFlat, "PAY.", "'PAY.D*'", "/data/mvs", "PAY.D*", false, map[string]string{
		"PAY.DAILY": "'PAY.DAILY'",
		"PAY.X":     "",
	}},
	{"quoted prefix is shown quoted", mvsFlat, "HLQ.", "'PAY.'", "/data/mvs", "PAY.*", false, map[string]string{
		"PAY.DAILY": "'PAY.DAILY'",
	}},
	{"exact name", mvsFlat, "PAY.", "DAILY", "/data/mvs", "PAY.DAILY", false, map[string]string{
		"PAY.DAILY": "DAILY",
	}},
	{"no prefix lists everything", mvsFlat, "", "", "/data/mvs", "*", false, map[string]string{
		"PAY.X": "PAY.X",
		"A":     "A",
		"lower": "",
	}},
	{"question mark", mvsFlat, "PAY.", "D?", "/data/mvs", "PAY.D?", false, map[string]string{
		"PAY.D1": "D1",
		"PAY.D":  "",
	}},
	{"member pattern", mvsFlat, "PAY.", "'PAY.JCL(RUN*)'", "/data/mvs/PAY.JCL", "RUN*", true, map[string]string{
		"RUN1":        "RUN1",
		"RUN":         "RUN",
		"RUNTOOLONG1": "",
		"OTHER":       "",
		"run2":        "",
	}},
	{"exact member", mvsFlat, "PAY.", "'PAY.JCL(RUN1)'", "/data/mvs/PAY.JCL", "RUN1", true, map[string]string{
		"RUN1": "RUN1",
	}},
	{"PDS working directory, no argument", mvsFlat, "PAY.JCL(", "", "/data/mvs/PAY.JCL", "*", true, map[string]string{
		"RUN1": "RUN1",
		"A.B":  "",
	}},
	{"PDS working directory, star", mvsFlat, "PAY.JCL(", "*", "/data/mvs/PAY.JCL", "*", true, map[string]string{
		"RUN1": "RUN1",
	}},
	{"PDS working directory, dotted pattern", mvsFlat, "PAY.JCL(", "X.*", "/data/mvs", "PAY.JCL.X.*", false, map[string]string{
		"PAY.JCL.X.A": "X.A",
	}},
	{"dirs, prefix", mvsDirs, "PAY.", "", "/data/mvs/PAY", "*", false, map[string]string{
		"DAILY": "DAILY",
		"JCL":   "JCL",
		"a.b":   "",
		"A.B":   "",
	}},
	{"dirs, quoted pattern elsewhere", mvsDirs, "PAY.", "'SYS1.PROC*'", "/data/mvs/SYS1", "PROC*", false, map[string]string{
		"PROCLIB": "'SYS1.PROCLIB'",
	}},
	{"dirs, relative deeper pattern", mvsDirs, "PAY.", "SUB.X*", "/data/mvs/PAY/SUB", "X*", false, map[string]string{
		"XY": "SUB.XY",
	}},
	{"lower txt, prefix", mvsLowerTxt, "PAY.", "", "/data/mvs/pay", "*", false, map[string]string{
		"daily":     "DAILY",
		"DAILY":     "",
		"jcl":       "JCL",
		"daily.txt": "",
	}},
	{"lower txt, members", mvsLowerTxt, "PAY.", "'PAY.JCL(RUN*)'", "/data/mvs/pay/jcl", "run*.txt", true, map[string]string{
		"run1.txt": "RUN1",
		"run1":     "",
		"RUN1.txt": "",
		"run1.TXT": "",
	}},
	{"lower txt, PDS working directory", mvsLowerTxt, "PAY.JCL(", "", "/data/mvs/pay/jcl", "*.txt", true, map[string]string{
		"run1.txt": "RUN1",
	}},
	{"suffix with pattern characters", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", MemberSuffix: "[*]"},
		"", "'A.PDS(M*)'", "/r/A.PDS", `M*\[\*]`, true, map[string]string{
			"M1[*]": "M1",
			"M1[x]": "",
			"M1":    "",
		}},
	{"root is the whole partner", translate.MVSNames{Mode: translate.MVSMap, Root: "/"},
		"PAY.", "*", "/", "PAY.*", false, map[string]string{
			"PAY.X": "X",
		}},
}

func TestMVSPatternAndDisplay(t *testing.T) {
	for _, tc := range mvsListTests {
		t.Run(tc.name, func(t *testing.T) {
			dir, pat, err := tc.cfg.Pattern(tc.cwd, tc.arg)
			if err != nil || dir != tc.dir || pat != tc.pattern {
				t.Fatalf("Pattern(%q, %q) = %q, %q, %v; want %q, %q, nil", tc.cwd, tc.arg, dir, pat, err, tc.dir, tc.pattern)
			}
			for entry, want := range tc.show {
				got, ok := tc.cfg.Display(tc.cwd, tc.arg, entry)
				if got != want || ok != (want != "") {
					t.Errorf("Display(%q, %q, %q) = %q, %v; want %q", tc.cwd, tc.arg, entry, got, ok, want)
				}
				if !ok || tc.members {
					continue
				}
				// The client's RETR of the name shown must reach the
				// file that was listed.
				up, _, err := tc.cfg.Resolve(tc.cwd, got)
				if want := path.Join(dir, entry); err != nil || up != want {
					t.Errorf("Resolve(%q, %q) = %q, %v; want %q, the entry listed", tc.cwd, got, up, err, want)
				}
			}
		})
	}
}

func TestMVSPatternErrors(t *testing.T) {
	tests := []struct {
		name     string
		cwd, arg string
		err      error
	}{
		{"GDG", "PAY.", "'PAY.GDG(+1)'", translate.ErrRelativeGDG},
		{"wildcard in middle qualifier", "PAY.", "'PAY.*.X'", translate.ErrBadName},
		{"wildcard in data set and member", "PAY.", "'PAY.J*(R*)'", translate.ErrBadName},
		{"wildcard in prefix", "PAY.", "'P*.'", translate.ErrBadName},
		{"bad name", "PAY.", "'1X.*'", translate.ErrBadName},
		{"too long with prefix", mvsPre4, "EEEE.FFF*", translate.ErrBadName},
		{"Unix pattern", "PAY.", "/u/pay/*.csv", translate.ErrNotMVS},
		{"Unix cwd", "/u/pay", "*", translate.ErrNotMVS},
		{"Unix cwd, no argument", "/u/pay", "", translate.ErrNotMVS},
		{"invalid cwd", "PAY", "", translate.ErrBadName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, cfg := range []translate.MVSNames{mvsFlat, mvsDirs, mvsLowerTxt} {
				if dir, pat, err := cfg.Pattern(tc.cwd, tc.arg); !errors.Is(err, tc.err) || dir != "" || pat != "" {
					t.Errorf("Pattern(%q, %q) = %q, %q, %v; want %v", tc.cwd, tc.arg, dir, pat, err, tc.err)
				}
				if name, ok := cfg.Display(tc.cwd, tc.arg, "X"); ok {
					t.Errorf("Display(%q, %q, X) = %q, true; want false", tc.cwd, tc.arg, name)
				}
			}
		})
	}
}

func TestMVSDisplayRefusesPathEntries(t *testing.T) {
	for _, entry := range []string{"", ".", "..", "A/B", "../PAY.X"} {
		if name, ok := mvsFlat.Display("PAY.", "", entry); ok {
			t.Errorf("Display(%q) = %q, true; want false", entry, name)
		}
	}
}

var mvsParseTests = []struct {
	name string
	in   string
	want translate.MVSName // when valid
	str  string            // String() of the result
	bad  string            // part of the reason when invalid
}{
	{name: "quoted", in: "'PAY.DAILY.EXTRACT'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"PAY", "DAILY", "EXTRACT"}}, str: "'PAY.DAILY.EXTRACT'"},
	{name: "unquoted lower case", in: "x.y", want: translate.MVSName{Qualifiers: []string{"X", "Y"}}, str: "X.Y"},
	{name: "member", in: "'SYS1.PROCLIB(IEFBR14)'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"SYS1", "PROCLIB"}, Member: "IEFBR14"}, str: "'SYS1.PROCLIB(IEFBR14)'"},
	{name: "prefix", in: "'HLQ.'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"HLQ"}, Prefix: true}, str: "'HLQ.'"},
	{name: "unquoted prefix", in: "sub.", want: translate.MVSName{Qualifiers: []string{"SUB"}, Prefix: true}, str: "SUB."},
	{name: "member pattern", in: "'A.PDS(mem*)'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"A", "PDS"}, Member: "MEM*", Wildcard: true}, str: "'A.PDS(MEM*)'"},
	{name: "member pattern with ?", in: "PDS(M?N)", want: translate.MVSName{Qualifiers: []string{"PDS"}, Member: "M?N", Wildcard: true}, str: "PDS(M?N)"},
	{name: "last qualifier pattern", in: "'A.B*'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"A", "B*"}, Wildcard: true}, str: "'A.B*'"},
	{name: "star alone", in: "*", want: translate.MVSName{Qualifiers: []string{"*"}, Wildcard: true}, str: "*"},
	{name: "GDG +1", in: "'A.B(+1)'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"A", "B"}, GDG: true, Generation: 1}, str: "'A.B(+1)'"},
	{name: "GDG 0", in: "'A.B(0)'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"A", "B"}, GDG: true}, str: "'A.B(0)'"},
	{name: "GDG -1", in: "'A.B(-1)'", want: translate.MVSName{Quoted: true, Qualifiers: []string{"A", "B"}, GDG: true, Generation: -1}, str: "'A.B(-1)'"},
	{name: "GDG leading zeros", in: "A.B(+001)", want: translate.MVSName{Qualifiers: []string{"A", "B"}, GDG: true, Generation: 1}, str: "A.B(+1)"},
	{name: "GDG -255", in: "A.B(-255)", want: translate.MVSName{Qualifiers: []string{"A", "B"}, GDG: true, Generation: -255}, str: "A.B(-255)"},
	{name: "44 characters", in: mvs44, want: translate.MVSName{Qualifiers: strings.Split(mvs44, ".")}, str: mvs44},
	{name: "44 characters and a member", in: mvs44 + "(MEMBER)", want: translate.MVSName{Qualifiers: strings.Split(mvs44, "."), Member: "MEMBER"}, str: mvs44 + "(MEMBER)"},
	{name: "44 characters and a period", in: mvs44 + ".", want: translate.MVSName{Qualifiers: strings.Split(mvs44, "."), Prefix: true}, str: mvs44 + "."},

	{name: "45 characters", in: mvs45, bad: "45 characters"},
	{name: "9-character qualifier", in: "'ABCDEFGHI'", bad: "longer than 8"},
	{name: "first character a digit", in: "'1ABC'", bad: "must start with"},
	{name: "hyphen first", in: "'-ABC'", bad: "must start with"},
	{name: "underscore", in: "A_B", bad: "may hold only"},
	{name: "9-character member", in: "'A(ABCDEFGHI)'", bad: "longer than 8"},
	{name: "member starting with a hyphen is a bad generation", in: "'A(-ABC)'", bad: "relative generation"},
	{name: "empty quotes", in: "''", bad: "empty name"},
	{name: "unbalanced quote", in: "'A.B", bad: "unbalanced quote"},
	{name: "parentheses without member", in: "'A.B()'", bad: "empty member"},
	{name: "empty qualifier", in: "'A..B'", bad: "empty qualifier"},
	{name: "trailing periods", in: "'A..'", bad: "empty qualifier"},
	{name: "slash", in: "'A/B.C'", bad: "may hold only"},
	{name: "wildcard in member and qualifier", in: "'A*(B*)'", bad: "may hold only"},
	{name: "GDG and period", in: "'A.(+1)'", bad: "prefix"},
	{name: "GDG 256", in: "'A(+256)'", bad: "beyond 255"},
	{name: "GDG four digits", in: "'A(+0001)'", bad: "not a number"},
	{name: "GDG sign only", in: "'A(+)'", bad: "not a number"},
	{name: "GDG -0", in: "'A(-0)'", bad: "written (0)"},
}

func TestParseMVSName(t *testing.T) {
	for _, tc := range mvsParseTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := translate.ParseMVSName(tc.in)
			if tc.bad != "" {
				var ne *translate.MVSNameError
				if !errors.As(err, &ne) || !errors.Is(err, translate.ErrBadName) || !strings.Contains(ne.Reason, tc.bad) || ne.Name != tc.in {
					t.Fatalf("ParseMVSName(%q) = %+v, %v; want an *MVSNameError wrapping ErrBadName, reason containing %q", tc.in, got, err, tc.bad)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseMVSName(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Errorf("String() = %q; want %q", s, tc.str)
			}
		})
	}
}

func TestMVSNameErrorClipsName(t *testing.T) {
	long := "'" + strings.Repeat("A", 10000) + "'"
	_, err := translate.ParseMVSName(long)
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error for a 10002-byte name is %d bytes; want a short one: %v", len(err.Error()), err)
	}
	_, _, err = mvsFlat.Resolve("", "'A.B\r\nX'")
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error %q holds the client's CR LF; want it quoted", err)
	}
}

func TestMVSValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  translate.MVSNames
		ok   bool
	}{
		{"zero value is off", translate.MVSNames{}, true},
		{"verbatim needs nothing", translate.MVSNames{Mode: translate.MVSVerbatim}, true},
		{"map", mvsLowerTxt, true},
		{"root slash", translate.MVSNames{Mode: translate.MVSMap, Root: "/"}, true},
		{"default prefix", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", DefaultPrefix: "prod.pay"}, true},
		{"default prefix with period", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", DefaultPrefix: "PROD.PAY."}, true},
		{"unknown mode", translate.MVSNames{Mode: 7, Root: "/r"}, false},
		{"no root", translate.MVSNames{Mode: translate.MVSMap}, false},
		{"relative root", translate.MVSNames{Mode: translate.MVSMap, Root: "data/mvs"}, false},
		{"unclean root", translate.MVSNames{Mode: translate.MVSMap, Root: "/data/../mvs"}, false},
		{"trailing slash", translate.MVSNames{Mode: translate.MVSMap, Root: "/data/"}, false},
		{"control character in root", translate.MVSNames{Mode: translate.MVSMap, Root: "/da\nta"}, false},
		{"unknown fold", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", Fold: 9}, false},
		{"slash in suffix", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", MemberSuffix: "/../x"}, false},
		{"backslash in suffix", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", MemberSuffix: `\x`}, false},
		{"blank in suffix", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", MemberSuffix: " x"}, false},
		{"long suffix", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", MemberSuffix: "." + strings.Repeat("x", 32)}, false},
		{"bad default prefix", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", DefaultPrefix: "1BAD"}, false},
		{"default prefix with wildcard", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", DefaultPrefix: "A*"}, false},
		{"default prefix with member", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", DefaultPrefix: "A(B)"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v; want ok=%v", err, tc.ok)
			}
			if tc.ok || tc.cfg.Mode != translate.MVSMap && tc.cfg.Mode != 7 {
				return
			}
			// An invalid configuration maps nothing.
			if up, _, err := tc.cfg.Resolve("", "'A.B'"); err == nil {
				t.Errorf("Resolve with an invalid configuration = %q, nil; want an error", up)
			}
			if _, _, err := tc.cfg.Pattern("", "'A.*'"); err == nil {
				t.Errorf("Pattern with an invalid configuration succeeded; want an error")
			}
			if got := tc.cfg.InitialCWD("payjob"); got != "" {
				t.Errorf("InitialCWD with an invalid configuration = %q; want \"\"", got)
			}
		})
	}
}

func TestMVSInitialCWD(t *testing.T) {
	tests := []struct {
		name string
		cfg  translate.MVSNames
		user string
		want string
	}{
		{"user name is the HLQ", mvsFlat, "payjob", "PAYJOB."},
		{"8 characters", mvsFlat, "PAYJOB01", "PAYJOB01."},
		{"too long for a qualifier", mvsFlat, "payrolljob", ""},
		{"starts with a digit", mvsFlat, "1job", ""},
		{"user@host", mvsFlat, "ops@host.example", ""},
		{"empty", mvsFlat, "", ""},
		{"default prefix wins", translate.MVSNames{Mode: translate.MVSMap, Root: "/r", DefaultPrefix: "prod.pay"}, "payjob", "PROD.PAY."},
		{"off", translate.MVSNames{}, "payjob", ""},
		{"verbatim", translate.MVSNames{Mode: translate.MVSVerbatim}, "payjob", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.InitialCWD(tc.user); got != tc.want {
				t.Errorf("InitialCWD(%q) = %q; want %q", tc.user, got, tc.want)
			}
		})
	}
}

func TestMVSWorkingDirName(t *testing.T) {
	for cwd, want := range map[string]string{
		"PAY.":      "'PAY.'",
		"PAY.SUB.":  "'PAY.SUB.'",
		"PAY.JCL(":  "'PAY.JCL'",
		"/u/pay":    "/u/pay",
		"":          "",
		"PAY":       "",
		"PAY..":     "",
		"'PAY.'":    "",
		"PAY.J*(":   "",
		"PAY.(M)(":  "",
		"PAY.X(+1(": "",
	} {
		if got := translate.WorkingDirName(cwd); got != want {
			t.Errorf("WorkingDirName(%q) = %q; want %q", cwd, got, want)
		}
	}
}

func TestMVSModeAndFoldStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{translate.MVSOff.String(), "off"},
		{translate.MVSMap.String(), "map"},
		{translate.MVSVerbatim.String(), "verbatim"},
		{translate.MVSMode(9).String(), "MVSMode(9)"},
		{translate.FoldNone.String(), "none"},
		{translate.FoldLower.String(), "lower"},
		{translate.FoldUpper.String(), "upper"},
		{translate.MVSFold(-1).String(), "MVSFold(-1)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q; want %q", c.got, c.want)
		}
	}
	upper := mvsDirs
	upper.Fold = translate.FoldUpper
	if a, _, _ := upper.Resolve("", "'pay.x(m)'"); a != "/data/mvs/PAY/X/M" {
		t.Errorf("FoldUpper: got %q; want %q", a, "/data/mvs/PAY/X/M")
	}
}

// mvsRoots are the roots the fuzz test maps under.
var mvsRoots = []string{"/data/mvs", "/", "/srv/x.y"}

// mvsUnderRoot reports whether p lies in root: the security property of MVSMap.
func mvsUnderRoot(root, p string) bool {
	p = path.Clean(p)
	if root == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// FuzzMVSResolve checks that no argument, working directory or listed entry
// makes the mapping panic or leave Root, and that parsed names round-trip
// through String.
func FuzzMVSResolve(f *testing.F) {
	for _, tc := range mvsResolveTests {
		f.Add(tc.cwd, tc.arg, "PAY.X", false, uint8(0), "", uint8(0))
		f.Add(tc.cwd, tc.arg, "run1.txt", true, uint8(1), ".txt", uint8(1))
	}
	for _, tc := range mvsParseTests {
		f.Add("PAY.", tc.in, "X", true, uint8(2), "", uint8(2))
	}
	for _, tc := range mvsListTests {
		for entry := range tc.show {
			f.Add(tc.cwd, tc.arg, entry, tc.cfg.QualifiersAsDirs, uint8(tc.cfg.Fold), tc.cfg.MemberSuffix, uint8(0))
		}
	}
	f.Add("PAY.JCL(", "..", "..", false, uint8(0), "/..", uint8(1))
	f.Fuzz(func(t *testing.T, cwd, arg, entry string, dirs bool, fold uint8, suffix string, root uint8) {
		if n, err := translate.ParseMVSName(arg); err == nil {
			s := n.String()
			n2, err := translate.ParseMVSName(s)
			if err != nil || !reflect.DeepEqual(n, n2) || n2.String() != s {
				t.Fatalf("ParseMVSName(%q) = %+v, String %q, which parses as %+v, %v", arg, n, s, n2, err)
			}
		} else if !errors.Is(err, translate.ErrBadName) {
			t.Fatalf("ParseMVSName(%q) error %v does not wrap ErrBadName", arg, err)
		}

		m := translate.MVSNames{
			Mode:             translate.MVSMap,
			Root:             mvsRoots[int(root)%len(mvsRoots)],
			QualifiersAsDirs: dirs,
			Fold:             translate.MVSFold(fold % 4), // 3 is invalid
			MemberSuffix:     suffix,
		}
		valid := m.Validate() == nil
		checkPath := func(what, p string) {
			t.Helper()
			if !valid {
				t.Fatalf("%s(%q, %q) = %q with an invalid configuration %+v; want an error", what, cwd, arg, p, m)
			}
			if !mvsUnderRoot(m.Root, p) || path.Clean(p) != p {
				t.Fatalf("%s(%q, %q) = %q, outside root %q", what, cwd, arg, p, m.Root)
			}
		}
		checkCWD := func(what, next string) {
			t.Helper()
			if next != "" && next != cwd && translate.WorkingDirName(next) == "" {
				t.Fatalf("%s(%q, %q) gives working directory %q, which is not valid", what, cwd, arg, next)
			}
		}

		up, next, err := m.Resolve(cwd, arg)
		if err == nil {
			checkPath("Resolve", up)
			checkCWD("Resolve", next)
		} else if next != cwd {
			t.Fatalf("Resolve(%q, %q) failed (%v) but changed the working directory to %q", cwd, arg, err, next)
		}
		for _, isPDS := range []func(string) bool{nil, func(string) bool { return true }} {
			if up, next, err := m.Chdir(cwd, arg, isPDS); err == nil {
				checkPath("Chdir", up)
				checkCWD("Chdir", next)
			}
		}
		dir, pat, perr := m.Pattern(cwd, arg)
		if perr == nil {
			checkPath("Pattern", dir)
			if strings.Contains(pat, "/") {
				t.Fatalf("Pattern(%q, %q) = %q, %q: the pattern holds a slash", cwd, arg, dir, pat)
			}
			if _, err := path.Match(pat, "X"); err != nil {
				t.Fatalf("Pattern(%q, %q) = %q, %q: %v", cwd, arg, dir, pat, err)
			}
		}
		if name, ok := m.Display(cwd, arg, entry); ok {
			if perr != nil || name == "" || strings.ContainsAny(name, "/\r\n") {
				t.Fatalf("Display(%q, %q, %q) = %q (Pattern error %v)", cwd, arg, entry, name, perr)
			}
			if ok, _ := path.Match(pat, entry); !ok {
				t.Fatalf("Display(%q, %q, %q) = %q for an entry the pattern %q does not match", cwd, arg, entry, name, pat)
			}
			// A data set name shown (quoted or dotted, so not a bare
			// member) must lead back to the entry.
			if strings.ContainsAny(name, "'.") {
				if back, _, err := m.Resolve(cwd, name); err != nil || back != path.Join(dir, entry) {
					t.Fatalf("Display(%q, %q, %q) = %q, which resolves to %q, %v; want %q", cwd, arg, entry, name, back, err, path.Join(dir, entry))
				}
			}
		}
		// The file a name maps to is listed under that name.
		if err == nil && perr == nil && path.Dir(up) == dir {
			if ok, _ := path.Match(pat, path.Base(up)); ok {
				if _, ok := m.Display(cwd, arg, path.Base(up)); !ok {
					t.Fatalf("Display(%q, %q, %q) = false for the file the name maps to (pattern %q in %q)", cwd, arg, path.Base(up), pat, dir)
				}
			}
		}
	})
}
