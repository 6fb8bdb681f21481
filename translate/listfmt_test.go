package translate_test

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/ftpgate/ftpgate/translate"
)

// listFakeInfo is an fs.FileInfo with every field set by the test.
type listFakeInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	sys   any
}

func (fi listFakeInfo) Name() string       { return fi.name }
func (fi listFakeInfo) Size() int64        { return fi.size }
func (fi listFakeInfo) Mode() fs.FileMode  { return fi.mode }
func (fi listFakeInfo) ModTime() time.Time { return fi.mtime }
func (fi listFakeInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi listFakeInfo) Sys() any           { return fi.sys }

// listFakeOwner offers owner, group and link count the way a backend that
// knows them would, on the FileInfo itself or in its Sys value.
type listFakeOwner struct {
	owner, group string
	links        uint64
}

func (o listFakeOwner) Owner() string { return o.owner }
func (o listFakeOwner) Group() string { return o.group }
func (o listFakeOwner) Links() uint64 { return o.links }

type listFakeOwnedInfo struct {
	listFakeInfo
	listFakeOwner
}

// listNow is the clock for every listing test: 25 Nov 2026 14:30 UTC.
var listNow = time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)

func listFile(name string, size int64, mode fs.FileMode, mtime time.Time) listFakeInfo {
	return listFakeInfo{name: name, size: size, mode: mode, mtime: mtime}
}

var listLineTests = []struct {
	name string
	fi   fs.FileInfo
	want string
}{
	{
		"recent file",
		listFile("report.txt", 1234, 0o644, time.Date(2026, 11, 20, 9, 5, 0, 0, time.UTC)),
		"-rw-r--r--    1 ftp      ftp          1234 Nov 20 09:05 report.txt\r\n",
	},
	{
		"directory modified now",
		listFile("incoming", 4096, fs.ModeDir|0o755, listNow),
		"drwxr-xr-x    1 ftp      ftp          4096 Nov 25 14:30 incoming\r\n",
	},
	{
		"symlink",
		listFile("latest", 9, fs.ModeSymlink|0o777, listNow.Add(-time.Hour)),
		"lrwxrwxrwx    1 ftp      ftp             9 Nov 25 13:30 latest\r\n",
	},
	{
		"setuid executable",
		listFile("su", 0, fs.ModeSetuid|0o755, listNow),
		"-rwsr-xr-x    1 ftp      ftp             0 Nov 25 14:30 su\r\n",
	},
	{
		"setuid without owner execute",
		listFile("odd", 0, fs.ModeSetuid|0o644, listNow),
		"-rwSr--r--    1 ftp      ftp             0 Nov 25 14:30 odd\r\n",
	},
	{
		"setgid with and without group execute",
		listFile("sg", 0, fs.ModeSetgid|0o750, listNow),
		"-rwxr-s---    1 ftp      ftp             0 Nov 25 14:30 sg\r\n",
	},
	{
		"setgid without group execute",
		listFile("sG", 0, fs.ModeSetgid|0o740, listNow),
		"-rwxr-S---    1 ftp      ftp             0 Nov 25 14:30 sG\r\n",
	},
	{
		"sticky directory",
		listFile("tmp", 0, fs.ModeDir|fs.ModeSticky|0o777, listNow),
		"drwxrwxrwt    1 ftp      ftp             0 Nov 25 14:30 tmp\r\n",
	},
	{
		"sticky without other execute",
		listFile("tmp2", 0, fs.ModeDir|fs.ModeSticky|0o776, listNow),
		"drwxrwxrwT    1 ftp      ftp             0 Nov 25 14:30 tmp2\r\n",
	},
	{
		"named pipe",
		listFile("fifo", 0, fs.ModeNamedPipe|0o600, listNow),
		"prw-------    1 ftp      ftp             0 Nov 25 14:30 fifo\r\n",
	},
	{
		"socket",
		listFile("sock", 0, fs.ModeSocket|0o755, listNow),
		"srwxr-xr-x    1 ftp      ftp             0 Nov 25 14:30 sock\r\n",
	},
	{
		"character device",
		listFile("null", 0, fs.ModeDevice|fs.ModeCharDevice|0o666, listNow),
		"crw-rw-rw-    1 ftp      ftp             0 Nov 25 14:30 null\r\n",
	},
	{
		"block device",
		listFile("sda", 0, fs.ModeDevice|0o660, listNow),
		"brw-rw----    1 ftp      ftp             0 Nov 25 14:30 sda\r\n",
	},
	{
		"no permissions",
		listFile("locked", 0, 0, listNow),
		"----------    1 ftp      ftp             0 Nov 25 14:30 locked\r\n",
	},
	{
		"old file shows year",
		listFile("old.dat", 1, 0o644, time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)),
		"-rw-r--r--    1 ftp      ftp             1 May 01  2025 old.dat\r\n",
	},
	{
		"exactly 182 days old shows time",
		listFile("edge", 1, 0o644, listNow.Add(-182*24*time.Hour)),
		"-rw-r--r--    1 ftp      ftp             1 May 27 14:30 edge\r\n",
	},
	{
		"a second over 182 days shows year",
		listFile("edge", 1, 0o644, listNow.Add(-182*24*time.Hour-time.Second)),
		"-rw-r--r--    1 ftp      ftp             1 May 27  2026 edge\r\n",
	},
	{
		"future file shows year",
		listFile("future", 1, 0o644, listNow.Add(time.Minute)),
		"-rw-r--r--    1 ftp      ftp             1 Nov 25  2026 future\r\n",
	},
	{
		"time shown in UTC",
		listFile("zoned", 1, 0o644, time.Date(2026, 11, 25, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*60*60))),
		"-rw-r--r--    1 ftp      ftp             1 Nov 24 23:00 zoned\r\n",
	},
	{
		"size wider than column",
		listFile("huge.bin", 12345678901, 0o644, listNow),
		"-rw-r--r--    1 ftp      ftp      12345678901 Nov 25 14:30 huge.bin\r\n",
	},
	{
		"name with spaces",
		listFile("my file .txt", 3, 0o644, listNow),
		"-rw-r--r--    1 ftp      ftp             3 Nov 25 14:30 my file .txt\r\n",
	},
	{
		"owner on the FileInfo",
		listFakeOwnedInfo{
			listFile("data", 10, 0o640, listNow),
			listFakeOwner{"alice", "staff", 3},
		},
		"-rw-r-----    3 alice    staff          10 Nov 25 14:30 data\r\n",
	},
	{
		"long owner in Sys",
		listFakeInfo{name: "data", size: 10, mode: fs.ModeDir | 0o750, mtime: listNow,
			sys: listFakeOwner{"averyverylongowner", "longgroupname", 12345}},
		"drwxr-x--- 12345 averyverylongowner longgroupname       10 Nov 25 14:30 data\r\n",
	},
	{
		"hostile owner cannot break the line",
		listFakeOwnedInfo{
			listFile("data", 10, 0o640, listNow),
			listFakeOwner{"ev\r\nil", "a b", 0},
		},
		"-rw-r-----    1 ev??il   a?b            10 Nov 25 14:30 data\r\n",
	},
	{
		"empty owner",
		listFakeOwnedInfo{
			listFile("data", 10, 0o640, listNow),
			listFakeOwner{"", "", 1},
		},
		"-rw-r-----    1 ?        ?              10 Nov 25 14:30 data\r\n",
	},
	{
		"sftp ids",
		listFakeInfo{name: "x.txt", size: 5, mode: 0o600, mtime: listNow,
			sys: &sftp.FileStat{UID: 1000, GID: 100}},
		"-rw-------    1 1000     100             5 Nov 25 14:30 x.txt\r\n",
	},
	{
		"nil sftp stat",
		listFakeInfo{name: "x.txt", size: 5, mode: 0o600, mtime: listNow, sys: (*sftp.FileStat)(nil)},
		"-rw-------    1 ftp      ftp             5 Nov 25 14:30 x.txt\r\n",
	},
}

func TestAppendListLine(t *testing.T) {
	for _, tc := range listLineTests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(translate.AppendListLine(nil, tc.fi, listNow)); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAppendListLineAppends(t *testing.T) {
	var fi fs.FileInfo = listFile("a", 1, 0o644, listNow)
	dst := []byte("prefix\r\n")
	got := string(translate.AppendListLine(dst, fi, listNow))
	want := "prefix\r\n-rw-r--r--    1 ftp      ftp             1 Nov 25 14:30 a\r\n"
	if got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	buf := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(100, func() {
		buf = translate.AppendListLine(buf[:0], fi, listNow)
	}); allocs != 0 {
		t.Errorf("got %v allocs per line into a large enough buffer; want 0", allocs)
	}
}

var listMLSxTests = []struct {
	name string
	fi   fs.FileInfo
	typ  string
	want string
}{
	{
		"file",
		listFile("report.txt", 1234, 0o644, listNow),
		"",
		"type=file;size=1234;modify=20261125143000;perm=adfrw;unix.mode=0644; ",
	},
	{
		"directory",
		listFile("incoming", 4096, fs.ModeDir|0o755, listNow),
		"",
		"type=dir;modify=20261125143000;perm=flcdmpe;unix.mode=0755; ",
	},
	{
		"current directory",
		listFile(".", 4096, fs.ModeDir|0o755, listNow),
		"cdir",
		"type=cdir;modify=20261125143000;perm=flcdmpe;unix.mode=0755; ",
	},
	{
		"parent directory",
		listFile("..", 4096, fs.ModeDir|0o555, listNow),
		"pdir",
		"type=pdir;modify=20261125143000;perm=le;unix.mode=0555; ",
	},
	{
		"read-only file",
		listFile("ro", 7, 0o444, listNow),
		"",
		"type=file;size=7;modify=20261125143000;perm=r;unix.mode=0444; ",
	},
	{
		"write-only directory",
		listFile("dropbox", 0, fs.ModeDir|0o300, listNow),
		"",
		"type=dir;modify=20261125143000;perm=fcdmpe;unix.mode=0300; ",
	},
	{
		"writable but not searchable directory",
		listFile("odd", 0, fs.ModeDir|0o600, listNow),
		"",
		"type=dir;modify=20261125143000;perm=fld;unix.mode=0600; ",
	},
	{
		"no permissions",
		listFile("locked", 0, 0, listNow),
		"",
		"type=file;size=0;modify=20261125143000;perm=;unix.mode=00; ",
	},
	{
		"setuid and sticky bits in unix.mode",
		listFile("su", 10, fs.ModeSetuid|fs.ModeSticky|0o755, listNow),
		"",
		"type=file;size=10;modify=20261125143000;perm=adfrw;unix.mode=05755; ",
	},
	{
		"setgid directory",
		listFile("shared", 0, fs.ModeDir|fs.ModeSetgid|0o775, listNow),
		"",
		"type=dir;modify=20261125143000;perm=flcdmpe;unix.mode=02775; ",
	},
	{
		"symlink is a file",
		listFile("latest", 9, fs.ModeSymlink|0o777, listNow),
		"",
		"type=file;size=9;modify=20261125143000;perm=adfrw;unix.mode=0777; ",
	},
	{
		"modify in UTC",
		listFile("zoned", 1, 0o644, time.Date(2026, 11, 25, 1, 2, 3, 999, time.FixedZone("UTC-5", -5*60*60))),
		"",
		"type=file;size=1;modify=20261125060203;perm=adfrw;unix.mode=0644; ",
	},
	{
		"no modification time",
		listFile("timeless", 1, 0o644, time.Time{}),
		"",
		"type=file;size=1;perm=adfrw;unix.mode=0644; ",
	},
	{
		"big size",
		listFile("huge.bin", 1<<62, 0o644, listNow),
		"",
		"type=file;size=4611686018427387904;modify=20261125143000;perm=adfrw;unix.mode=0644; ",
	},
}

func TestAppendMLSxFacts(t *testing.T) {
	for _, tc := range listMLSxTests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(translate.AppendMLSxFacts(nil, tc.fi, tc.typ)); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestListableName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"plain", "report.txt", true},
		{"spaces", "my file", true},
		{"dot", ".", true},
		{"utf-8", "Grüße.txt", true},
		{"empty", "", false},
		{"CR", "a\rb", false},
		{"LF", "a\nb", false},
		{"injected line", "x\r\n-rw-r--r-- 1 root root 0 Jan 01 00:00 passwd", false},
		{"NUL", "a\x00b", false},
		{"trailing LF", "name\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := translate.ListableName(tc.in); got != tc.want {
				t.Errorf("ListableName(%q) = %v; want %v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzListLine(f *testing.F) {
	for _, tc := range listLineTests {
		f.Add(tc.fi.Name(), tc.fi.Size(), uint32(tc.fi.Mode()), tc.fi.ModTime().Unix())
	}
	for _, tc := range listMLSxTests {
		f.Add(tc.fi.Name(), tc.fi.Size(), uint32(tc.fi.Mode()), tc.fi.ModTime().Unix())
	}
	f.Add("evil\r\nline", int64(-1), uint32(0xffffffff), int64(-1<<62))
	f.Fuzz(func(t *testing.T, name string, size int64, mode uint32, sec int64) {
		fi := listFile(name, size, fs.FileMode(mode), time.Unix(sec, 0))
		prefix := []byte("previous line\r\n")

		line := translate.AppendListLine(bytes.Clone(prefix), fi, listNow)
		if !bytes.HasPrefix(line, prefix) {
			t.Fatalf("AppendListLine changed dst: got %q", line)
		}
		line = line[len(prefix):]
		if line[10] != ' ' {
			t.Fatalf("AppendListLine(%q): mode column is not 10 bytes: %q", name, line)
		}
		if translate.ListableName(name) {
			s := string(line)
			if !strings.HasSuffix(s, " "+name+"\r\n") {
				t.Fatalf("AppendListLine(%q) = %q; want it to end in the name and CRLF", name, s)
			}
			if strings.Count(s, "\r\n") != 1 || strings.Count(s, "\r") != 1 || strings.Count(s, "\n") != 1 {
				t.Fatalf("AppendListLine(%q) = %q; want exactly one CRLF, at the end", name, s)
			}
		}

		facts := string(translate.AppendMLSxFacts(nil, fi, ""))
		if !strings.HasPrefix(facts, "type=") || !strings.HasSuffix(facts, "; ") {
			t.Fatalf("AppendMLSxFacts = %q; want type=... ending in \"; \"", facts)
		}
		if strings.ContainsAny(facts[:len(facts)-1], " \r\n") {
			t.Fatalf("AppendMLSxFacts = %q; want no space or line end before the last", facts)
		}
	})
}
