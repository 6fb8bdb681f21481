package translate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

var replyTests = []struct {
	name string
	in   string
	want []Reply // every reply in, in order
	err  error   // the error after them (io.EOF when in ends cleanly)
}{
	{"single line", "220 ready\r\n", []Reply{{220, []string{"ready"}}}, io.EOF},
	{"bare LF", "200 ok\n", []Reply{{200, []string{"ok"}}}, io.EOF},
	{"code alone", "226\r\n", []Reply{{226, []string{""}}}, io.EOF},
	{"code and space", "226 \r\n", []Reply{{226, []string{""}}}, io.EOF},
	{
		"multi-line, RFC 959 4.2 example",
		"123-First line\r\nSecond line\r\n  234 A line beginning with numbers\r\n123 The last line\r\n",
		[]Reply{{123, []string{"First line", "Second line", "  234 A line beginning with numbers", "The last line"}}},
		io.EOF,
	},
	{
		"lines inside that look like replies",
		"214-help\r\n214-still help\r\n200 another code\r\n214x not the end\r\n214\tnot either\r\n214 end\r\n",
		[]Reply{{214, []string{"help", "214-still help", "200 another code", "214x not the end", "214\tnot either", "end"}}},
		io.EOF,
	},
	{"multi-line ended by the code alone", "211-Features:\r\n MLST\r\n211\r\n", []Reply{{211, []string{"Features:", " MLST", ""}}}, io.EOF},
	{"two replies", "150 go\r\n226 done\r\n", []Reply{{150, []string{"go"}}, {226, []string{"done"}}}, io.EOF},
	{"CR inside kept", "200 a\rb\r\n", []Reply{{200, []string{"a\rb"}}}, io.EOF},
	{"no code", "hello\r\n", nil, errBadReply},
	{"first digit 6", "600 no\r\n", nil, errBadReply},
	{"first digit 0", "099 no\r\n", nil, errBadReply},
	{"letter after code", "200x\r\n", nil, errBadReply},
	{"two digits", "20\r\n", nil, errBadReply},
	{"cut short", "220 rea", nil, io.ErrUnexpectedEOF},
	{"multi-line cut short", "211-a\r\nb\r\n", nil, io.ErrUnexpectedEOF},
	{"line too long", "200 " + strings.Repeat("x", maxReplyLine) + "\r\n", nil, errBadReply},
	{"empty", "", nil, io.EOF},
}

func readAll(in string) ([]Reply, error) {
	br := bufio.NewReader(strings.NewReader(in))
	var got []Reply
	for {
		rep, err := readReply(br)
		if err != nil {
			return got, err
		}
		got = append(got, rep)
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range replyTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readReply(%q) = %+v; want %+v", tc.in, got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("readReply(%q) error %v; want %v", tc.in, err, tc.err)
			}
		})
	}
}

func TestReadReplyBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("211-start\r\n")
	for range maxReplyLines + 1 {
		b.WriteString(" x\r\n")
	}
	b.WriteString("211 end\r\n")
	if _, err := readAll(b.String()); !errors.Is(err, errBadReply) {
		t.Errorf("reply with %d lines: error %v; want errBadReply", maxReplyLines+1, err)
	}
	b.Reset()
	b.WriteString("211-start\r\n")
	line := " " + strings.Repeat("y", 4000) + "\r\n"
	for range maxReplyBytes/len(line) + 2 {
		b.WriteString(line)
	}
	b.WriteString("211 end\r\n")
	if _, err := readAll(b.String()); !errors.Is(err, errBadReply) {
		t.Errorf("reply of %d bytes: error %v; want errBadReply", b.Len(), err)
	}
	// A long line that fits is read across bufio's 4 KiB buffer.
	long := strings.Repeat("z", maxReplyLine-10)
	got, err := readAll("200-" + long + "\r\n" + long + "\r\n200 " + long + "\r\n")
	if err != io.EOF || len(got) != 1 || got[0].Lines[1] != long {
		t.Errorf("reply with %d-byte lines: %d replies, error %v; want one, io.EOF", len(long), len(got), err)
	}
}

// TestReplyReaderResumes checks that a read interrupted by a deadline
// (how an abort wakes a waiting transfer) loses nothing: the reply that
// was arriving is read whole afterwards.
func TestReplyReaderResumes(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	rr := replyReader{br: bufio.NewReader(client)}
	go func() {
		io.WriteString(server, "226-first line\r\nmid")
	}()
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := rr.next()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("next() with a deadline = %v; want a timeout", err)
	}
	client.SetReadDeadline(time.Time{})
	go io.WriteString(server, "dle\r\n226 last\r\n")
	rep, err := rr.next()
	want := Reply{226, []string{"first line", "middle", "last"}}
	if err != nil || !reflect.DeepEqual(rep, want) {
		t.Errorf("next() after the timeout = %+v, %v; want %+v", rep, err, want)
	}
}

// FuzzReplyParser feeds arbitrary bytes to the reply reader: it must not
// panic, every reply must respect the bounds, and writing a reply out and
// reading it back must give the same reply.
func FuzzReplyParser(f *testing.F) {
	for _, tc := range replyTests {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _ := readAll(string(data))
		for _, rep := range got {
			if rep.Code < 100 || rep.Code > 599 || len(rep.Lines) == 0 || len(rep.Lines) > maxReplyLines+1 {
				t.Fatalf("readReply(%q) gave %v", data, rep)
			}
			for _, l := range rep.Lines {
				if strings.ContainsRune(l, '\n') || len(l) > maxReplyLine {
					t.Fatalf("readReply(%q) gave line %q", data, l)
				}
			}
			again, err := readAll(string(formatReply(rep)))
			if err != io.EOF || len(again) != 1 || !reflect.DeepEqual(again[0], rep) {
				t.Fatalf("round trip of %+v: got %+v, %v", rep, again, err)
			}
		}
	})
}

var pasvTests = []struct {
	in   string
	want string // "" for an error
}{
	{"Entering Passive Mode (127,0,0,1,195,80).", "127.0.0.1:50000"},
	{"Entering Passive Mode 10,1,2,3,4,5", "10.1.2.3:1029"},
	{"=192,168,0,1,0,21", "192.168.0.1:21"},
	{"Entering Passive Mode (0,0,0,0,200,1)", "0.0.0.0:51201"},
	{"(255,255,255,255,255,255)", "255.255.255.255:65535"},
	{"Entering Passive Mode (256,0,0,1,1,1)", ""},
	{"Entering Passive Mode (1,2,3,4,0,0)", ""},
	{"Entering Passive Mode (1,2,3,4,5)", ""},
	{"Entering Passive Mode (1,2,3,4,5,6789)", ""},
	{"Entering Passive Mode (1,2,3,4,5,0006)", ""},
	{"Entering Passive Mode (1, 2,3,4,5,6)", ""},
	{"no numbers", ""},
	{"", ""},
}

func TestParsePASVReply(t *testing.T) {
	for _, tc := range pasvTests {
		got, err := parsePASVReply(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("parsePASVReply(%q) = %v; want an error", tc.in, got)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("parsePASVReply(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		case err != nil && !errors.Is(err, errBadReply):
			t.Errorf("parsePASVReply(%q) error %v; want errBadReply", tc.in, err)
		}
	}
}

func FuzzParsePASVReply(f *testing.F) {
	for _, tc := range pasvTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parsePASVReply(s)
		if err != nil {
			return
		}
		if !ap.Addr().Is4() || ap.Port() == 0 {
			t.Fatalf("parsePASVReply(%q) = %v", s, ap)
		}
		b := ap.Addr().As4()
		again, err := parsePASVReply(fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d).", b[0], b[1], b[2], b[3], ap.Port()>>8, ap.Port()&0xff))
		if err != nil || again != ap {
			t.Fatalf("round trip of %v: %v, %v", ap, again, err)
		}
	})
}

var epsvTests = []struct {
	in   string
	want uint16 // 0 for an error
}{
	{"Entering Extended Passive Mode (|||50000|)", 50000},
	{"Entering Extended Passive Mode (!!!21!)", 21},
	{"(|||65535|)", 65535},
	{"(|||0|)", 0},
	{"(|||65536|)", 0},
	{"(|||123456|)", 0},
	{"(||1|2|)", 0},
	{"(|1.2.3.4||50000|)", 0},
	{"(1111)", 0},
	{"(|||50000)", 0},
	{"(|||50000|", 0},
	{"(|||-1|)", 0},
	{"|||50000|", 0},
	{"(|||+80|)", 0},
	{"", 0},
}

func TestParseEPSVReply(t *testing.T) {
	for _, tc := range epsvTests {
		got, err := parseEPSVReply(tc.in)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("parseEPSVReply(%q) = %d; want an error", tc.in, got)
		case tc.want != 0 && (err != nil || got != tc.want):
			t.Errorf("parseEPSVReply(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseEPSVReply(f *testing.F) {
	for _, tc := range epsvTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		port, err := parseEPSVReply(s)
		if err != nil {
			return
		}
		if port == 0 {
			t.Fatalf("parseEPSVReply(%q) = 0 without an error", s)
		}
		if again, err := parseEPSVReply(fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", port)); err != nil || again != port {
			t.Fatalf("round trip of %d: %d, %v", port, again, err)
		}
	})
}

func TestParsePathReply(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"/home/u" is the current directory`, "/home/u"},
		{`"/a ""quoted"" dir" created`, `/a "quoted" dir`},
		{`"'PAY.DATA.'" is working directory.`, "'PAY.DATA.'"},
		{`""`, ""},
		{`no quotes`, "\x00"},
		{`"unterminated`, "\x00"},
	}
	for _, tc := range tests {
		got, err := parsePathReply(tc.in)
		if tc.want == "\x00" {
			if err == nil {
				t.Errorf("parsePathReply(%q) = %q; want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parsePathReply(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMLSxEntry(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		size    int64
		mode    fs.FileMode
		mtime   time.Time
		typ     string
		wantErr bool
	}{
		{in: "type=file;size=123;modify=20240102030405;UNIX.mode=0640; a b.txt", name: "a b.txt", size: 123, mode: 0o640,
			mtime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), typ: "file"},
		{in: "Type=DIR;Modify=20240102030405.5; sub", name: "sub", mode: fs.ModeDir | 0o755,
			mtime: time.Date(2024, 1, 2, 3, 4, 5, 500_000_000, time.UTC), typ: "dir"},
		{in: "type=cdir;sizd=4096; .", name: ".", size: 4096, mode: fs.ModeDir | 0o755, typ: "cdir"},
		{in: "type=OS.unix=slink:/x;size=1; l", name: "l", size: 1, mode: fs.ModeSymlink | 0o777, typ: "os.unix=slink:/x"},
		{in: "size=5; noType", name: "noType", size: 5, mode: 0o644},
		{in: "type=file;size=-1; x", wantErr: true},
		{in: "type=file;modify=2024; x", wantErr: true},
		{in: "type=file;UNIX.mode=9; x", wantErr: true},
		{in: "type=file;novalue; x", wantErr: true},
		{in: "type=file;size=1;", wantErr: true},
	}
	for _, tc := range tests {
		fi, typ, err := parseMLSxEntry(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseMLSxEntry(%q) = %+v; want an error", tc.in, fi)
			}
			continue
		}
		if err != nil || fi.Name() != tc.name || fi.Size() != tc.size || fi.Mode() != tc.mode || !fi.ModTime().Equal(tc.mtime) || typ != tc.typ {
			t.Errorf("parseMLSxEntry(%q) = %+v, %q, %v; want %s %d %v %v %q", tc.in, fi, typ, err, tc.name, tc.size, tc.mode, tc.mtime, tc.typ)
		}
	}
}

func TestParseListLine(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in    string
		ok    bool
		name  string
		size  int64
		mode  fs.FileMode
		mtime time.Time
	}{
		{"-rw-r--r--    1 103      105      33554432 Nov 25 02:44 a.bin", true, "a.bin", 33554432, 0o644, time.Date(2025, 11, 25, 2, 44, 0, 0, time.UTC)},
		{"drwxr-xr-x   2 tester   tester       4096 Mar  7 12:34 my dir", true, "my dir", 4096, fs.ModeDir | 0o755, time.Date(2026, 3, 7, 12, 34, 0, 0, time.UTC)},
		{"-rw-------    1 ftp      ftp             5 Jan 02  2023  lead", true, " lead", 5, 0o600, time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"lrwxrwxrwx    1 0        0               7 Mar 01 10:00 link -> target", true, "link", 7, fs.ModeSymlink | 0o777, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"total 12", false, "", 0, 0, time.Time{}},
		{"drwxr-xr-x    2 0        0            4096 Mar 01 10:00 .", false, "", 0, 0, time.Time{}},
		{"-rw-r--r--    1 0        0              x1 Mar 01 10:00 a", false, "", 0, 0, time.Time{}},
		{"-rw-r--r--    1 0        0               1 Foo 01 10:00 a", false, "", 0, 0, time.Time{}},
		{"PAY.DATA  3390   2024/01/02  1  15  FB  80  27920  PS  PAY.DATA", false, "", 0, 0, time.Time{}},
	}
	for _, tc := range tests {
		fi, ok := parseListLine(tc.in, now)
		if ok != tc.ok {
			t.Errorf("parseListLine(%q) ok = %v; want %v (%+v)", tc.in, ok, tc.ok, fi)
			continue
		}
		if ok && (fi.Name() != tc.name || fi.Size() != tc.size || fi.Mode() != tc.mode || !fi.ModTime().Equal(tc.mtime)) {
			t.Errorf("parseListLine(%q) = %q %d %v %v; want %q %d %v %v", tc.in, fi.Name(), fi.Size(), fi.Mode(), fi.ModTime(), tc.name, tc.size, tc.mode, tc.mtime)
		}
	}
}

func TestReplySentinel(t *testing.T) {
	tests := []struct {
		code int
		want error
	}{
		{421, ErrConnLost}, {425, ErrConnLost}, {426, ErrConnLost},
		{452, ErrNoSpace}, {552, ErrNoSpace},
		{500, ErrUnsupported}, {502, ErrUnsupported}, {504, ErrUnsupported},
		{530, ErrAuth}, {532, ErrAuth},
		{550, ErrNotFound}, {553, ErrPermission},
		{450, nil}, {451, nil}, {501, nil}, {551, nil}, {226, nil},
	}
	for _, tc := range tests {
		if got := ReplySentinel(tc.code); got != tc.want {
			t.Errorf("ReplySentinel(%d) = %v; want %v", tc.code, got, tc.want)
		}
		err := fmt.Errorf("wrapped: %w", newReplyError("RETR", Reply{tc.code, []string{"text"}}))
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("errors.Is(ReplyError %d, %v) = false", tc.code, tc.want)
		}
		var re *ReplyError
		if !errors.As(err, &re) || re.Code != tc.code || re.Verb != "RETR" {
			t.Errorf("errors.As(ReplyError %d) = %+v", tc.code, re)
		}
	}
}

func TestReplyErrorText(t *testing.T) {
	e := newReplyError("STOR", Reply{553, []string{"bad\x00name", strings.Repeat("x", 400)}})
	if strings.ContainsAny(e.Text, "\x00\r\n") || len(e.Text) > 310 {
		t.Errorf("ReplyError.Text = %q; want control characters replaced and the text shortened", e.Text)
	}
	if got := e.Error(); !strings.HasPrefix(got, "translate: partner refused STOR: 553 bad name") {
		t.Errorf("Error() = %q", got)
	}
}

func TestCertFingerprint(t *testing.T) {
	der := []byte("not really DER")
	sum := sha256.Sum256(der)
	want := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
	if got := CertFingerprint(der); got != want || len(got) != 7+43 {
		t.Errorf("CertFingerprint = %q; want %q", got, want)
	}
}

func TestListWriterLimits(t *testing.T) {
	lw := &listWriter{max: 2, mlsd: true}
	_, err := io.Copy(lw, strings.NewReader("type=cdir; .\r\ntype=file;size=1; a\r\ntype=file;size=2; b\r\ntype=file;size=3; c\r\n"))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("listing of 3 entries with max 2: error %v; want ErrTooLarge", err)
	}
	lw = &listWriter{max: 10, mlsd: true}
	_, err = io.Copy(lw, bytes.NewReader(bytes.Repeat([]byte("x"), maxReplyLine+1)))
	if !errors.Is(err, errBadReply) {
		t.Errorf("listing line of %d bytes: error %v; want errBadReply", maxReplyLine+1, err)
	}
	// A line split across writes, and a last line without CRLF.
	lw = &listWriter{max: 10, mlsd: true}
	for _, part := range []string{"type=file;si", "ze=7; a\r", "\ntype=dir; d"} {
		if _, err := lw.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.flush(); err != nil || len(lw.list) != 2 || lw.list[0].Size() != 7 || !lw.list[1].IsDir() {
		t.Errorf("split listing: %v, %+v", err, lw.list)
	}
}

func TestValidVerb(t *testing.T) {
	for v, want := range map[string]bool{"SITE": true, "CWD": true, "XCRC": true, "OPTS": true, "X": false, "SI TE": false,
		"1ABC": false, "ABCDEFGHI": false, "site": false, "A1B": true} {
		if got := validVerb(v); got != want {
			t.Errorf("validVerb(%q) = %v; want %v", v, got, want)
		}
	}
}
