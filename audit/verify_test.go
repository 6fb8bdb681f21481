package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// makeChain returns the lines (without newlines) of a chain of n records:
// commands on even indexes, transfers of 4096+i bytes on odd ones.
func makeChain(t testing.TB, key Key, n int) []string {
	t.Helper()
	buf := &syncBuffer{}
	opt := Options{Sinks: []Sink{NewWriterSink(buf)}, Key: key, Now: fakeClock()}
	e, err := NewEmitter(opt)
	if err != nil {
		t.Fatalf("NewEmitter: %v", err)
	}
	for i := range n {
		if i%2 == 0 {
			e.Command(sess, "CWD", fmt.Sprintf("/d%d", i), 250, "ok", time.Millisecond)
		} else {
			e.Transfer(sess, Transfer{Direction: "retrieve", ClientName: "f", Path: "/f", Type: "I", BytesFTP: int64(4096 + i), BytesUp: int64(4096 + i), Duration: time.Second, Result: "ok"})
		}
	}
	e.Close()
	return lines(t, buf.Bytes())
}

func join(ls []string) []byte {
	if len(ls) == 0 {
		return nil
	}
	return []byte(strings.Join(ls, "\n") + "\n")
}

func TestVerify(t *testing.T) {
	key, _ := testKey(t)
	otherKey, _ := NewKey([]byte("another-key-of-enough-length"))
	const n = 20
	chain := makeChain(t, key, n)
	unkeyed := makeChain(t, Key{}, n)
	edit := func(f func(ls []string) []string) func() []byte {
		return func() []byte { return join(f(slices.Clone(chain))) }
	}
	tests := []struct {
		name      string
		input     func() []byte
		v         Verifier // Key defaults to key unless noKey
		noKey     bool
		wantKind  ProblemKind // "" means whole
		wantLine  int
		wantSeq   uint64
		wantCount int // records found in order
		detail    string
	}{
		{name: "whole", input: edit(func(ls []string) []string { return ls }), wantCount: n},
		{name: "empty input", input: func() []byte { return nil }},
		{name: "modified byte count", input: edit(func(ls []string) []string {
			ls[5] = strings.Replace(ls[5], `"bytes_client":4101`, `"bytes_client":4102`, 1)
			return ls
		}), wantKind: ProblemModified, wantLine: 6, wantSeq: 6, wantCount: 5},
		{name: "deleted record", input: edit(func(ls []string) []string {
			return slices.Delete(ls, 7, 8)
		}), wantKind: ProblemMissing, wantLine: 8, wantSeq: 9, wantCount: 7, detail: "1 record missing"},
		{name: "deleted records", input: edit(func(ls []string) []string {
			return slices.Delete(ls, 7, 10)
		}), wantKind: ProblemMissing, wantLine: 8, wantSeq: 11, wantCount: 7, detail: "3 records missing (8 to 10)"},
		{name: "swapped neighbours", input: edit(func(ls []string) []string {
			ls[10], ls[11] = ls[11], ls[10]
			return ls
		}), wantKind: ProblemReordered, wantLine: 11, wantSeq: 12, wantCount: 10, detail: "seq 11 comes later, at in:12"},
		{name: "swapped apart", input: edit(func(ls []string) []string {
			ls[10], ls[12] = ls[12], ls[10]
			return ls
		}), wantKind: ProblemReordered, wantLine: 11, wantSeq: 13, wantCount: 10, detail: "seq 11 comes later, at in:13"},
		{name: "duplicated", input: edit(func(ls []string) []string {
			return slices.Insert(ls, 4, ls[3])
		}), wantKind: ProblemReordered, wantLine: 5, wantSeq: 4, wantCount: 4},
		{name: "seq edited", input: edit(func(ls []string) []string {
			ls[8] = strings.Replace(ls[8], `"seq":9,`, `"seq":99,`, 1)
			return ls
		}), wantKind: ProblemModified, wantLine: 9, wantSeq: 99, wantCount: 8, detail: "its seq was changed"},
		{name: "cut mid-line", input: func() []byte {
			b := join(chain)
			return b[:len(b)-len(chain[n-1])/2]
		}, wantKind: ProblemTruncated, wantLine: n, wantCount: n - 1, detail: "mid-record"},
		{name: "last newline cut", input: func() []byte {
			b := join(chain)
			return b[:len(b)-1]
		}, wantKind: ProblemTruncated, wantLine: n, wantSeq: n, wantCount: n - 1},
		{name: "wrong key", input: edit(func(ls []string) []string { return ls }), v: Verifier{Key: otherKey},
			wantKind: ProblemModified, wantLine: 1, wantSeq: 1, detail: "the key is wrong"},
		{name: "oldest records gone", input: edit(func(ls []string) []string { return ls[3:] }),
			wantKind: ProblemMissing, wantLine: 1, wantSeq: 4, detail: "give the older files first"},
		{name: "oldest records gone, partial", input: edit(func(ls []string) []string { return ls[3:] }), v: Verifier{Key: key, Partial: true},
			wantCount: n - 3},
		{name: "partial still checks the rest", input: edit(func(ls []string) []string {
			ls[5] = strings.Replace(ls[5], `"bytes_client":4101`, `"bytes_client":4102`, 1)
			return ls[3:]
		}), v: Verifier{Key: key, Partial: true}, wantKind: ProblemModified, wantLine: 3, wantSeq: 6, wantCount: 2},
		{name: "newest records gone (undetectable)", input: edit(func(ls []string) []string { return ls[:n-3] }), wantCount: n - 3},
		{name: "not JSON", input: edit(func(ls []string) []string {
			ls[2] = "garbage"
			return ls
		}), wantKind: ProblemMalformed, wantLine: 3, wantCount: 2},
		{name: "empty line", input: edit(func(ls []string) []string { return slices.Insert(ls, 2, "") }),
			wantKind: ProblemMalformed, wantLine: 3, wantCount: 2, detail: "empty line"},
		{name: "line too long", input: edit(func(ls []string) []string {
			return slices.Insert(ls, 2, strings.Repeat("x", maxLineBytes+1))
		}), wantKind: ProblemMalformed, wantLine: 3, wantCount: 2, detail: "longer than"},
		{name: "old schema", input: edit(func(ls []string) []string {
			ls[0] = `{"seq":1,"record":"command"}`
			return ls
		}), wantKind: ProblemMalformed, wantLine: 1, detail: `no "v" field`},
		{name: "mac case changed", input: edit(func(ls []string) []string {
			i := strings.LastIndex(ls[1], `"mac":"`) + len(`"mac":"`)
			ls[1] = ls[1][:i] + strings.ToUpper(ls[1][i:len(ls[1])-2]) + `"}`
			return ls
		}), wantKind: ProblemUnsigned, wantLine: 2, wantSeq: 2, wantCount: 1},
		{name: "unsigned chain with a key", input: func() []byte { return join(unkeyed) }, wantKind: ProblemUnsigned, wantLine: 1, wantSeq: 1},
		{name: "unsigned chain without a key", input: func() []byte { return join(unkeyed) }, noKey: true, wantCount: n},
		{name: "keyed chain without a key", input: edit(func(ls []string) []string { return ls }), noKey: true, wantCount: n},
		{name: "without a key, deletion still found", input: edit(func(ls []string) []string { return slices.Delete(ls, 7, 8) }), noKey: true,
			wantKind: ProblemMissing, wantLine: 8, wantSeq: 9, wantCount: 7},
		{name: "start from resume point", input: edit(func(ls []string) []string { return ls[10:] }),
			v: Verifier{Key: key, StartSeq: 11, PrevMAC: macOf(t, chain[9])}, wantCount: n - 10},
		{name: "resume point with the wrong mac", input: edit(func(ls []string) []string { return ls[10:] }),
			v: Verifier{Key: key, StartSeq: 11, PrevMAC: macOf(t, chain[8])}, wantKind: ProblemModified, wantLine: 1, wantSeq: 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			if v.Key.IsZero() && !tc.noKey {
				v.Key = key
			}
			res, err := v.Verify(Input{Name: "in", R: bytes.NewReader(tc.input())})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Records != tc.wantCount {
				t.Errorf("got %d records in order; want %d", res.Records, tc.wantCount)
			}
			if tc.wantKind == "" {
				if res.Problem != nil {
					t.Fatalf("got problem %v; want a whole chain", res.Problem)
				}
				return
			}
			p := res.Problem
			if p == nil {
				t.Fatalf("got a whole chain (%v); want %s at line %d", res, tc.wantKind, tc.wantLine)
			}
			if p.Kind != tc.wantKind || p.Line != tc.wantLine || p.File != "in" {
				t.Errorf("got %s at %s:%d; want %s at in:%d (%v)", p.Kind, p.File, p.Line, tc.wantKind, tc.wantLine, p)
			}
			if tc.wantSeq != 0 && p.Seq != tc.wantSeq {
				t.Errorf("got seq %d; want %d (%v)", p.Seq, tc.wantSeq, p)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("got detail %q; want it to contain %q", p.Detail, tc.detail)
			}
		})
	}
}

func macOf(t testing.TB, line string) []byte {
	t.Helper()
	var mac [32]byte
	if _, ok := splitMAC([]byte(line), &mac); !ok {
		t.Fatalf("no mac in %s", line)
	}
	return mac[:]
}

func TestVerifyAcrossInputs(t *testing.T) {
	key, _ := testKey(t)
	chain := makeChain(t, key, 30)
	parts := []Input{
		{"a", bytes.NewReader(join(chain[:10]))},
		{"b", bytes.NewReader(join(chain[10:20]))},
		{"c", bytes.NewReader(join(chain[20:]))},
	}
	res, err := Verify(key, parts...)
	if err != nil || !res.OK() || res.Records != 30 || res.FirstSeq != 1 || res.LastSeq != 30 {
		t.Errorf("three files in order: got %v, %v; want whole, seq 1 to 30", res, err)
	}
	if !strings.HasPrefix(res.String(), "chain whole: 30 records, seq 1 to 30") {
		t.Errorf("String: got %q", res.String())
	}
	res, err = Verify(key, Input{"a", bytes.NewReader(join(chain[:10]))}, Input{"c", bytes.NewReader(join(chain[20:]))})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Problem; p == nil || p.Kind != ProblemMissing || p.File != "c" || p.Line != 1 || p.Want != 11 {
		t.Errorf("middle file left out: got %v; want %s at c:1 wanting seq 11", p, ProblemMissing)
	}
	res, err = Verify(key, Input{"b", bytes.NewReader(join(chain[10:20]))}, Input{"a", bytes.NewReader(join(chain[:10]))})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Problem; p == nil || p.Kind != ProblemReordered || p.File != "b" || !strings.Contains(p.Detail, "comes later, at a:1") {
		t.Errorf("files out of order: got %v; want %s at b:1, seq 1 later at a:1", p, ProblemReordered)
	}
	// A file cut in the middle of the list is truncated, not glued to the
	// next file's first line.
	cut := join(chain[:10])
	res, _ = Verify(key, Input{"a", bytes.NewReader(cut[:len(cut)-1])}, Input{"b", bytes.NewReader(join(chain[10:20]))})
	if p := res.Problem; p == nil || p.Kind != ProblemTruncated || p.File != "a" || p.Line != 10 {
		t.Errorf("first file lost its last newline: got %v; want %s at a:10", p, ProblemTruncated)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read failed") }

func TestVerifyReadError(t *testing.T) {
	key, _ := testKey(t)
	if _, err := Verify(key, Input{"bad", errReader{}}); err == nil {
		t.Errorf("Verify over a failing reader: got nil error; want one")
	}
	v := Verifier{Key: key}
	if _, err := v.VerifyFiles(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("VerifyFiles of a missing file: got %v; want fs.ErrNotExist", err)
	}
}

// TestRotationChain writes 1000 records into two files, renaming the first
// away and reopening in the middle (external rotation), and verifies them.
func TestRotationChain(t *testing.T) {
	key, _ := testKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	fsink, err := NewFileSink(path, FileOptions{Fsync: FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEmitter(Options{Sinks: []Sink{fsink}, Key: key, Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if i == 500 {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			if err := e.Rotate(); err != nil {
				t.Fatalf("Rotate: %v", err)
			}
		}
		e.Transfer(sess, Transfer{Direction: "store", ClientName: fmt.Sprintf("f%d", i), BytesFTP: int64(i)})
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	first, _ := os.ReadFile(path + ".1")
	second, _ := os.ReadFile(path)
	if got := strings.Count(string(first), "\n"); got != 500 {
		t.Errorf("first file: got %d records; want 500", got)
	}
	if !strings.Contains(strings.SplitN(string(second), "\n", 2)[0], `"record":"rotate"`) {
		t.Errorf("second file does not start with a rotate record")
	}
	v := Verifier{Key: key}
	res, err := v.VerifyFiles(path+".1", path)
	if err != nil || !res.OK() || res.Records != 1001 {
		t.Errorf("VerifyFiles: got %v, %v; want whole with 1001 records", res, err)
	}
	// The second file alone verifies as a partial chain.
	v.Partial = true
	if res, err := v.VerifyFiles(path); err != nil || !res.OK() || !res.StartUnchecked || res.FirstSeq != 501 {
		t.Errorf("second file, partial: got %v, %v; want whole from seq 501", res, err)
	}
	// Continuing from the first file's result checks the second fully.
	r1, _ := (&Verifier{Key: key}).VerifyFiles(path + ".1")
	v = Verifier{Key: key, StartSeq: r1.LastSeq + 1, PrevMAC: r1.LastMAC}
	if res, err := v.VerifyFiles(path); err != nil || !res.OK() || res.StartUnchecked {
		t.Errorf("second file from the first's LastSeq/LastMAC: got %v, %v; want whole", res, err)
	}
}

func TestResume(t *testing.T) {
	key, _ := testKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	run := func(path string, n int, resume bool) {
		t.Helper()
		fsink, err := NewFileSink(path, FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		opt := Options{Sinks: []Sink{fsink}, Key: key, Now: fakeClock()}
		if resume {
			seq, mac, err := LastRecord(path)
			if err != nil {
				t.Fatalf("LastRecord: %v", err)
			}
			opt.StartSeq, opt.PrevMAC = seq+1, mac
		}
		e, err := NewEmitter(opt)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			e.Command(sess, "NOOP", "", 200, "ok", 0)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(path string) Result {
		t.Helper()
		res, err := (&Verifier{Key: key}).VerifyFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	if seq, mac, err := LastRecord(path); seq != 0 || mac != nil || err != nil {
		t.Fatalf("LastRecord of a missing file: got %d %x %v; want 0 nil nil", seq, mac, err)
	}
	run(path, 10, true)
	run(path, 10, true)
	if res := verify(path); !res.OK() || res.Records != 20 {
		t.Fatalf("after a resumed restart: got %v; want whole with 20 records", res)
	}

	// A crash mid-record: the cut line is skipped by LastRecord and stays
	// on a line of its own for Verify to report.
	b, _ := os.ReadFile(path)
	ls := lines(t, b)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(ls[len(ls)-1][:40])
	f.Close()
	if seq, _, err := LastRecord(path); seq != 20 || err != nil {
		t.Fatalf("LastRecord after a cut line: got %d, %v; want 20, nil", seq, err)
	}
	run(path, 5, true)
	res := verify(path)
	if p := res.Problem; p == nil || p.Kind != ProblemMalformed || p.Line != 21 || res.Records != 20 {
		t.Errorf("after a crash mid-record: got %v; want %s at line 21 after 20 records", res, ProblemMalformed)
	}
	b, _ = os.ReadFile(path)
	after := lines(t, b)[21:]
	res, err = Verify(key, Input{"rest", strings.NewReader(strings.Join(after, "\n") + "\n")})
	if err != nil || res.Problem == nil || res.Problem.Kind != ProblemMissing || res.Problem.Seq != 21 {
		// Without the older lines the rest starts at seq 21: it is the
		// continuation, not a new chain.
		t.Errorf("records after the cut line: got %v; want them to start at seq 21", res)
	}

	// A restart without resuming starts a new chain in the same file,
	// which Verify reports.
	path = filepath.Join(dir, "other.log")
	run(path, 5, true)
	run(path, 1, false)
	res = verify(path)
	if p := res.Problem; p == nil || p.Kind != ProblemReordered || p.Line != 6 || p.Seq != 1 {
		t.Errorf("after a restart without resume: got %v; want %s at line 6, seq 1", p, ProblemReordered)
	}
}

func TestLastRecord(t *testing.T) {
	key, _ := testKey(t)
	chain := makeChain(t, key, 3)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		setup   func() string
		wantSeq uint64
		wantMAC bool
		wantErr bool
	}{
		{"missing file", func() string { return filepath.Join(dir, "none") }, 0, false, false},
		{"empty file", func() string { return write("empty", "") }, 0, false, false},
		{"whole file", func() string { return write("whole", string(join(chain))) }, 3, true, false},
		{"cut last line", func() string { return write("cut", string(join(chain))+chain[0][:30]) }, 3, true, false},
		{"only a cut line", func() string { return write("onlycut", chain[0][:30]) }, 0, false, false},
		{"garbage last line", func() string { return write("garbage", string(join(chain))+"garbage\n") }, 0, false, true},
		{"unkeyed", func() string { return write("unkeyed", `{"v":1,"seq":7,"record":"command"}`+"\n") }, 7, false, false},
		{"empty after a size rotation", func() string {
			write("rot."+time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(rotatedLayout), string(join(chain[:2])))
			write("rot."+time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).Format(rotatedLayout), string(join(chain)))
			write("rot.notatime", "garbage\n")
			return write("rot", "")
		}, 3, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, mac, err := LastRecord(tc.setup())
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v; want error %v", err, tc.wantErr)
			}
			if seq != tc.wantSeq || (mac != nil) != tc.wantMAC {
				t.Errorf("got seq %d mac %x; want seq %d, mac present %v", seq, mac, tc.wantSeq, tc.wantMAC)
			}
			if tc.wantMAC && !bytes.Equal(mac, macOf(t, chain[2])) {
				t.Errorf("got mac %x; want the last record's %x", mac, macOf(t, chain[2]))
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	key, _ := testKey(f)
	chain := makeChain(f, key, 6)
	f.Add(join(chain), uint16(0))
	f.Add(join(chain), uint16(200))
	f.Add(join(slices.Delete(slices.Clone(chain), 2, 3)), uint16(0))
	f.Add(join(chain)[:300], uint16(0))
	f.Add([]byte("\n\n{}\n"), uint16(1))
	f.Add([]byte(`{"v":1,"seq":1,"mac":"`+strings.Repeat("0", 64)+`"}`+"\n"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		at := min(int(split), len(data))
		for _, v := range []Verifier{{Key: key}, {}, {Key: key, Partial: true}, {StartSeq: 5}} {
			res, err := v.Verify(Input{"a", bytes.NewReader(data[:at])}, Input{"b", bytes.NewReader(data[at:])})
			if err != nil {
				t.Fatalf("Verify: unexpected read error %v", err)
			}
			if res.Records > bytes.Count(data, []byte("\n")) {
				t.Fatalf("got %d records from %d lines", res.Records, bytes.Count(data, []byte("\n")))
			}
			if p := res.Problem; p != nil && (p.Kind == "" || p.Detail == "" || p.Line < 1) {
				t.Fatalf("incomplete problem %+v", p)
			}
			if res.OK() && res.Records > 0 && res.LastSeq-res.FirstSeq+1 != uint64(res.Records) {
				t.Fatalf("whole chain with seqs %d to %d but %d records", res.FirstSeq, res.LastSeq, res.Records)
			}
		}
	})
}

// FuzzRecordStrings checks that any client-chosen strings give one valid
// JSON line per record that reads back exactly and verifies.
func FuzzRecordStrings(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "a\nb", "\x00", "\xff\xfe", "\u2028", "日本"} {
		f.Add(s, s)
	}
	key, _ := testKey(f)
	f.Fuzz(func(t *testing.T, user, name string) {
		e, buf := newTestEmitter(t, Options{Key: key})
		s := Session{ID: "s", Client: "c", User: user}
		e.Command(s, "RETR", name, 226, name, 0)
		e.Transfer(s, Transfer{ClientName: name, Path: name, Error: name})
		e.Close()
		out := buf.Bytes()
		ls := lines(t, out)
		if len(ls) != 2 {
			t.Fatalf("got %d lines; want 2", len(ls))
		}
		for _, line := range ls {
			m := decode(t, line)
			if user != "" {
				checkClientString(t, "user", user, m["user"].(string), m)
			}
			for _, k := range []string{"arg", "name", "path"} {
				if v, ok := m[k].(string); ok {
					checkClientString(t, k, name, v, m)
				}
			}
		}
		if res, err := Verify(key, Input{"out", bytes.NewReader(out)}); err != nil || !res.OK() {
			t.Fatalf("Verify: got %v, %v; want whole", res, err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	key, _ := testKey(b)
	data := join(makeChain(b, key, 10000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Verify(key, Input{"in", bytes.NewReader(data)})
		if err != nil || !res.OK() {
			b.Fatalf("got %v, %v", res, err)
		}
	}
}
