package translate_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ftpgate/ftpgate/translate"
)

// asciiReaderTests are the upload cases: client text in, partner text out.
var asciiReaderTests = []struct {
	name string
	in   string
	want string
}{
	{"empty", "", ""},
	{"only CR", "\r", "\r"},
	{"only LF", "\n", "\n"},
	{"CRLF", "\r\n", "\n"},
	{"two CRs", "\r\r", "\r\r"},
	{"CR CRLF keeps first CR", "\r\r\n", "\r\n"},
	{"LF CR", "\n\r", "\n\r"},
	{"CRLF lines", "one\r\ntwo\r\n", "one\ntwo\n"},
	{"mixed line ends", "a\nb\r\nc\rd", "a\nb\nc\rd"},
	{"CR at EOF", "abc\r", "abc\r"},
	{"CRLF at EOF", "abc\r\n", "abc\n"},
	{"blank lines", "\r\n\r\n\r\n", "\n\n\n"},
	{"no line ends", "plain text", "plain text"},
	{"binary bytes kept", "\x00\r\n\xff\r\x80", "\x00\n\xff\r\x80"},
}

// asciiWriterTests are the download cases: partner text in, client text out.
var asciiWriterTests = []struct {
	name string
	in   string
	want string
}{
	{"empty", "", ""},
	{"only LF", "\n", "\r\n"},
	{"only CR", "\r", "\r"},
	{"CRLF unchanged", "\r\n", "\r\n"},
	{"two LFs", "\n\n", "\r\n\r\n"},
	{"CRLF then LF", "\r\n\n", "\r\n\r\n"},
	{"LF lines", "one\ntwo\n", "one\r\ntwo\r\n"},
	{"mixed line ends", "a\nb\r\nc", "a\r\nb\r\nc"},
	{"CR CRLF unchanged", "\r\r\n", "\r\r\n"},
	{"LF CR", "\n\r", "\r\n\r"},
	{"bare CR kept", "a\rb\n", "a\rb\r\n"},
	{"no line ends", "plain text", "plain text"},
	{"binary bytes kept", "\x00\n\xff\r\n", "\x00\r\n\xff\r\n"},
}

// asciiFromCRLF is the reference for the reader: bytes.ReplaceAll finds
// non-overlapping CRLF pairs left to right, which is exactly the rule.
func asciiFromCRLF(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// asciiToCRLF is the reference for the writer, one byte at a time.
func asciiToCRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)*2)
	prev := byte(0)
	for _, c := range b {
		if c == '\n' && prev != '\r' {
			out = append(out, '\r')
		}
		out = append(out, c)
		prev = c
	}
	return out
}

// asciiReadAll reads r to its end with reads of at most size bytes. It
// fails the test on a run of empty reads, which would hang io.ReadAll.
func asciiReadAll(t testing.TB, r io.Reader, size int) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, size)
	empty := 0
	for {
		n, err := r.Read(buf)
		if n < 0 || n > size {
			t.Fatalf("Read returned n=%d for a %d-byte buffer", n, size)
		}
		out = append(out, buf[:n]...)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		if n == 0 {
			empty++
			if empty > 100 {
				t.Fatalf("Read returned 0, nil %d times in a row", empty)
			}
		} else {
			empty = 0
		}
	}
}

// asciiSources returns readers of in that deliver it in different pieces,
// so the CR of a CRLF lands at the end of a read in some of them.
func asciiSources(in string) map[string]func() io.Reader {
	src := map[string]func() io.Reader{
		"whole":     func() io.Reader { return strings.NewReader(in) },
		"one byte":  func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"half":      func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
		"data+EOF":  func() io.Reader { return iotest.DataErrReader(strings.NewReader(in)) },
		"one+EOF":   func() io.Reader { return iotest.DataErrReader(iotest.OneByteReader(strings.NewReader(in))) },
		"empty+all": func() io.Reader { return &asciiChunkReader{data: []byte(in), sizes: []int{0, len(in) + 1}} },
	}
	for k := 0; k <= len(in); k++ {
		src[fmt.Sprintf("split at %d", k)] = func() io.Reader {
			return io.MultiReader(strings.NewReader(in[:k]), strings.NewReader(in[k:]))
		}
	}
	return src
}

func TestASCIIReader(t *testing.T) {
	for _, tc := range asciiReaderTests {
		t.Run(tc.name, func(t *testing.T) {
			if ref := string(asciiFromCRLF([]byte(tc.in))); ref != tc.want {
				t.Fatalf("reference gives %q; table wants %q", ref, tc.want)
			}
			for srcName, src := range asciiSources(tc.in) {
				for _, size := range []int{1, 2, 3, 4096} {
					got, err := asciiReadAll(t, translate.NewASCIIReader(src()), size)
					if err != nil {
						t.Fatalf("%s, %d-byte reads: error %v", srcName, size, err)
					}
					if string(got) != tc.want {
						t.Errorf("%s, %d-byte reads: got %q; want %q", srcName, size, got, tc.want)
					}
				}
			}
		})
	}
}

func TestASCIIReaderZeroLengthRead(t *testing.T) {
	r := translate.NewASCIIReader(strings.NewReader("a\r\n"))
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
	got, err := io.ReadAll(r)
	if string(got) != "a\n" || err != nil {
		t.Fatalf("got %q, %v; want %q, nil", got, err, "a\n")
	}
}

func TestASCIIReaderErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"error after text", "a\r\nb", "a\nb"},
		{"error right after CR", "ab\r", "ab\r"},
		{"error after CRLF", "ab\r\n", "ab\n"},
		{"error at once", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 4096} {
				for _, oneByte := range []bool{false, true} {
					var src io.Reader = strings.NewReader(tc.in)
					if oneByte {
						src = iotest.OneByteReader(src)
					}
					r := translate.NewASCIIReader(io.MultiReader(src, iotest.ErrReader(errBoom)))
					got, err := asciiReadAll(t, r, size)
					if string(got) != tc.want || !errors.Is(err, errBoom) {
						t.Errorf("%d-byte reads, one byte=%v: got %q, %v; want %q, %v", size, oneByte, got, err, tc.want, errBoom)
					}
					if n, err := r.Read(make([]byte, 8)); n != 0 || !errors.Is(err, errBoom) {
						t.Errorf("Read after error = %d, %v; want 0, %v", n, err, errBoom)
					}
				}
			}
		})
	}
}

func TestASCIIWriter(t *testing.T) {
	for _, tc := range asciiWriterTests {
		t.Run(tc.name, func(t *testing.T) {
			if ref := string(asciiToCRLF([]byte(tc.in))); ref != tc.want {
				t.Fatalf("reference gives %q; table wants %q", ref, tc.want)
			}
			check := func(how string, chunks []string) {
				t.Helper()
				var out bytes.Buffer
				w := translate.NewASCIIWriter(&out)
				for _, c := range chunks {
					n, err := w.Write([]byte(c))
					if n != len(c) || err != nil {
						t.Fatalf("%s: Write(%q) = %d, %v; want %d, nil", how, c, n, err, len(c))
					}
				}
				if got := out.String(); got != tc.want {
					t.Errorf("%s: got %q; want %q", how, got, tc.want)
				}
			}
			check("one write", []string{tc.in})
			for k := 0; k <= len(tc.in); k++ {
				check(fmt.Sprintf("split at %d", k), []string{tc.in[:k], tc.in[k:]})
			}
			var bytewise []string
			for i := range len(tc.in) {
				bytewise = append(bytewise, tc.in[i:i+1])
			}
			check("one byte per write", bytewise)
		})
	}
}

// TestASCIIWriterBufferEdges puts line ends on and around the end of the
// writer's internal buffer (64 KiB of output) within one Write.
func TestASCIIWriterBufferEdges(t *testing.T) {
	for _, end := range []string{"\n", "\r\n", "\r", "\n\n"} {
		for k := 64<<10 - 4; k <= 64<<10+2; k++ {
			in := []byte(strings.Repeat("x", k) + end + "y" + end)
			want := asciiToCRLF(in)
			var out bytes.Buffer
			n, err := translate.NewASCIIWriter(&out).Write(in)
			if n != len(in) || err != nil {
				t.Fatalf("%d bytes then %q: Write = %d, %v; want %d, nil", k, end, n, err, len(in))
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%d bytes then %q: got %q at the end; want %q", k, end, out.Bytes()[k-2:], want[k-2:])
			}
		}
	}
}

// asciiLimitWriter accepts limit bytes in all, then fails. With short set
// it returns a short count without an error instead, which breaks the
// io.Writer contract the way a buggy writer would.
type asciiLimitWriter struct {
	buf   bytes.Buffer
	limit int
	short bool
	err   error
}

func (w *asciiLimitWriter) Write(p []byte) (int, error) {
	room := w.limit - w.buf.Len()
	if len(p) <= room {
		return w.buf.Write(p)
	}
	w.buf.Write(p[:room])
	if w.short {
		return room, nil
	}
	return room, w.err
}

func TestASCIIWriterErrors(t *testing.T) {
	errBoom := errors.New("boom")
	manyLF := strings.Repeat("\n", 200000)
	tests := []struct {
		name    string
		in      string
		limit   int
		short   bool
		wantN   int
		wantErr error
	}{
		{"fits", "abc", 10, false, 3, nil},
		{"nothing accepted", "a\nb", 0, false, 0, errBoom},
		{"fails inside inserted CRLF", "a\nb", 2, false, 1, errBoom},
		{"fails after CRLF", "a\nb", 3, false, 2, errBoom},
		{"fails after existing CRLF", "a\r\nb", 3, false, 3, errBoom},
		{"short write is an error", "abcdef", 4, true, 4, io.ErrShortWrite},
		// 200000 LFs make 400000 bytes, more than one internal buffer.
		{"fails in a later buffer", manyLF, 100001, false, 50000, errBoom},
		{"fails at a buffer end", manyLF, 64 << 10, false, 32 << 10, errBoom},
		// The CR fills the first buffer exactly; its LF, alone in the
		// next, must count as one output byte, not two.
		{"fails after LF of a CRLF split by the buffer", strings.Repeat("x", 64<<10-1) + "\r\ny", 64<<10 + 1, false, 64<<10 + 1, errBoom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lw := &asciiLimitWriter{limit: tc.limit, short: tc.short, err: errBoom}
			w := translate.NewASCIIWriter(lw)
			n, err := w.Write([]byte(tc.in))
			if n != tc.wantN || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Write = %d, %v; want %d, %v", n, err, tc.wantN, tc.wantErr)
			}
			// What the client got must be the conversion of the bytes
			// reported as consumed, plus at most the CR of a split CRLF.
			want := asciiToCRLF([]byte(tc.in[:n]))
			got := lw.buf.Bytes()
			if !bytes.HasPrefix(got, want) || len(got)-len(want) > 1 {
				t.Errorf("client got %d bytes; want the %d of the consumed input (+1 at most)", len(got), len(want))
			}
			if tc.wantErr != nil {
				if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, tc.wantErr) {
					t.Errorf("Write after error = %d, %v; want 0, %v", n, err, tc.wantErr)
				}
			}
		})
	}
}

// asciiText returns size bytes of text with LF line ends of varying
// length, a few bare CRs and no CRLF, made the same way on every run.
func asciiText(size int) []byte {
	b := make([]byte, size)
	x := uint32(1)
	for i := range b {
		x = x*1664525 + 1013904223
		switch r := x >> 24; {
		case r < 4:
			b[i] = '\n'
		case r == 4:
			b[i] = '\r'
		default:
			b[i] = 'a' + byte(r%26)
		}
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\rx"))
}

func TestASCIILarge(t *testing.T) {
	text := asciiText(10 << 20)
	var wire bytes.Buffer
	n, err := io.Copy(translate.NewASCIIWriter(&wire), bytes.NewReader(text))
	if n != int64(len(text)) || err != nil {
		t.Fatalf("copy through writer = %d, %v; want %d, nil", n, err, len(text))
	}
	want := asciiToCRLF(text)
	if !bytes.Equal(wire.Bytes(), want) {
		t.Fatalf("writer output differs from the reference (got %d bytes; want %d)", wire.Len(), len(want))
	}
	// One Write of everything fills the internal buffer many times over.
	var once bytes.Buffer
	if n, err := translate.NewASCIIWriter(&once).Write(text); n != len(text) || err != nil {
		t.Fatalf("one Write = %d, %v; want %d, nil", n, err, len(text))
	}
	if !bytes.Equal(once.Bytes(), want) {
		t.Fatalf("one-Write output differs from the reference (got %d bytes; want %d)", once.Len(), len(want))
	}
	var back bytes.Buffer
	if _, err := io.Copy(&back, translate.NewASCIIReader(&wire)); err != nil {
		t.Fatalf("copy through reader: %v", err)
	}
	if !bytes.Equal(back.Bytes(), text) {
		t.Fatalf("round trip differs (got %d bytes; want %d)", back.Len(), len(text))
	}
}

// asciiRepeatReader delivers pattern over and over and never ends.
type asciiRepeatReader struct {
	pattern []byte
	off     int
}

func (r *asciiRepeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.pattern[r.off:])
		n += c
		r.off = (r.off + c) % len(r.pattern)
	}
	return n, nil
}

func TestASCIIEndless(t *testing.T) {
	t.Run("reader", func(t *testing.T) {
		// "\r\n" with 3-byte reads puts a CR at the end of every other read.
		r := translate.NewASCIIReader(&asciiRepeatReader{pattern: []byte("\r\n")})
		buf := make([]byte, 3)
		total := 0
		for total < 1<<20 {
			n, err := r.Read(buf)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if bytes.Count(buf[:n], []byte("\n")) != n {
				t.Fatalf("got %q; want only LFs", buf[:n])
			}
			total += n
		}
		big := make([]byte, 32<<10)
		if allocs := testing.AllocsPerRun(100, func() { r.Read(big) }); allocs != 0 {
			t.Errorf("got %v allocs per Read; want 0", allocs)
		}
	})
	t.Run("writer", func(t *testing.T) {
		w := translate.NewASCIIWriter(io.Discard)
		chunk := bytes.Repeat([]byte("\n"), 100<<10)
		if allocs := testing.AllocsPerRun(100, func() {
			if _, err := w.Write(chunk); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}); allocs != 0 {
			t.Errorf("got %v allocs per Write; want 0", allocs)
		}
	})
}

// asciiChunkReader returns data in reads of the given sizes, cycling
// through them; a size of 0 is an empty read with no error.
type asciiChunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *asciiChunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	size := r.sizes[r.i%len(r.sizes)]
	r.i++
	n := copy(p[:min(size, len(p))], r.data)
	r.data = r.data[n:]
	return n, nil
}

func FuzzASCIIRoundTrip(f *testing.F) {
	for _, tc := range asciiWriterTests {
		f.Add([]byte(tc.in))
	}
	for _, tc := range asciiReaderTests {
		f.Add([]byte(tc.want))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		// A CRLF in the partner's text comes back as LF by design; any
		// other text must survive download and re-upload unchanged.
		if bytes.Contains(text, []byte("\r\n")) {
			return
		}
		var wire bytes.Buffer
		if n, err := translate.NewASCIIWriter(&wire).Write(text); n != len(text) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", text, n, err, len(text))
		}
		for i, c := range wire.Bytes() {
			if c == '\n' && (i == 0 || wire.Bytes()[i-1] != '\r') {
				t.Fatalf("writer output %q has a bare LF at %d", wire.Bytes(), i)
			}
		}
		back, err := io.ReadAll(translate.NewASCIIReader(&wire))
		if err != nil || !bytes.Equal(back, text) {
			t.Fatalf("round trip of %q: got %q, %v; want %q, nil", text, back, err, text)
		}
	})
}

func FuzzASCIIChunking(f *testing.F) {
	for _, tc := range asciiReaderTests {
		f.Add([]byte(tc.in), []byte{1})
		f.Add([]byte(tc.in), []byte{0, 2, 1})
	}
	for _, tc := range asciiWriterTests {
		f.Add([]byte(tc.in), []byte{3, 0, 1})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(cuts) == 0 {
			cuts = []byte{1}
		}
		// Read sizes and read-buffer sizes are 1..64 and 1..4, so the
		// source's chunking and the caller's both vary.
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = 1 + int(c&63)
		}
		bufSize := 1 + int(cuts[0]>>6)

		wantR := asciiFromCRLF(data)
		gotR, err := asciiReadAll(t, translate.NewASCIIReader(bytes.NewReader(data)), len(data)+1)
		if err != nil || !bytes.Equal(gotR, wantR) {
			t.Fatalf("reader, one read of %q: got %q, %v; want %q", data, gotR, err, wantR)
		}
		gotR, err = asciiReadAll(t, translate.NewASCIIReader(&asciiChunkReader{data: data, sizes: sizes}), bufSize)
		if err != nil || !bytes.Equal(gotR, wantR) {
			t.Fatalf("reader, %q in reads of %v into %d bytes: got %q, %v; want %q", data, sizes, bufSize, gotR, err, wantR)
		}

		// Writes cycle through sizes 0..255, so empty writes occur too.
		wantW := asciiToCRLF(data)
		var out bytes.Buffer
		w := translate.NewASCIIWriter(&out)
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := min(int(cuts[i%len(cuts)]), len(rest))
			if i%len(cuts) == len(cuts)-1 && n == 0 {
				n = 1 // make progress even if every cut is zero
			}
			if got, err := w.Write(rest[:n]); got != n || err != nil {
				t.Fatalf("Write(%q) = %d, %v; want %d, nil", rest[:n], got, err, n)
			}
			rest = rest[n:]
		}
		if !bytes.Equal(out.Bytes(), wantW) {
			t.Fatalf("writer, %q in writes of %v: got %q; want %q", data, cuts, out.Bytes(), wantW)
		}
	})
}

// BenchmarkASCIIReader reports MB/s of output: each op fills 32 KiB from
// an endless upload.
func BenchmarkASCIIReader(b *testing.B) {
	for _, bc := range []struct {
		name string
		line []byte
	}{
		{"lines", append(bytes.Repeat([]byte("x"), 70), '\r', '\n')},
		{"CRLF only", []byte("\r\n")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// A long pattern keeps the source's own copying cheap.
			pattern := bytes.Repeat(bc.line, (64<<10)/len(bc.line))
			r := translate.NewASCIIReader(&asciiRepeatReader{pattern: pattern})
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkASCIIWriter reports MB/s of input: each op writes one 32 KiB
// chunk, as io.Copy would.
func BenchmarkASCIIWriter(b *testing.B) {
	for _, bc := range []struct {
		name string
		line []byte
	}{
		{"lines", append(bytes.Repeat([]byte("x"), 71), '\n')},
		{"LF only", []byte("\n")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			chunk := bytes.Repeat(bc.line, (32<<10)/len(bc.line))
			w := translate.NewASCIIWriter(io.Discard)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
