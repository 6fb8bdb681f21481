package translate

import (
	"bytes"
	"io"
)

// FTP TYPE A (RFC 959 3.1.1.1) sends text with CRLF line ends on the data
// connection, while the partner's files use LF. The wrappers below convert
// between the two as the bytes stream past, so a transfer of any size needs
// a fixed amount of memory and no per-call allocation. Both remember a CR
// across calls, because the CR of a CRLF pair can arrive at the end of one
// chunk and its LF at the start of the next.

// asciiWriteBufSize is the size of the buffer an ASCII writer converts into.
// It is twice io.Copy's 32 KiB chunk, the largest a chunk of LF-only text can
// grow to, so a chunk from io.Copy always goes out in one write to the
// client's data connection rather than a full write and a small tail.
const asciiWriteBufSize = 64 << 10

// NewASCIIReader returns a reader for uploads in TYPE A: it reads text with
// CRLF line ends from r and returns it with LF line ends.
//
// A CR immediately followed by LF becomes LF. Any other CR is kept, and so is
// a bare LF, because TYPE A is about line ends, not about repairing the
// client's text; a lone CR may well be data. A CR that ends one read from r
// is held back until the next byte shows whether it starts a CRLF, and is
// returned as CR if r ends (or fails) right after it.
//
// Conversion happens in place in the caller's buffer. An error from r is
// returned after every byte that came before it, and again on each later
// call.
func NewASCIIReader(r io.Reader) io.Reader {
	return &asciiReader{r: r}
}

type asciiReader struct {
	r io.Reader
	// carry is a byte already taken from r but not yet returned, valid
	// when held is true. A carried CR is undecided: it is dropped if the
	// next byte is LF. Any other carried byte (left by a one-byte Read,
	// see readOne) is returned as is.
	carry byte
	held  bool
	// err is the first error from r. Once set, r is not read again.
	err error
}

func (a *asciiReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if a.held && len(p) == 1 {
			return a.readOne(p)
		}
		start := 0
		if a.held {
			p[0] = a.carry
			a.held = false
			start = 1
		}
		m := 0
		if a.err == nil {
			m, a.err = a.r.Read(p[start:])
		}
		n := a.convert(p[:start+m])
		// A read that yielded nothing but a held CR says nothing to the
		// caller; read again rather than return 0, nil. The next round
		// puts the CR in p[0] and reads at least one byte after it, so
		// this loops at most once more unless r itself returns 0, nil.
		if n == 0 && a.held && m > 0 {
			continue
		}
		if a.held {
			// The error, if any, waits until the held byte is out.
			return n, nil
		}
		return n, a.err
	}
}

// readOne handles a one-byte p while a byte is held: the held byte and the
// one after it cannot both fit, so the held byte goes out now and the byte
// read (if it is not the LF that cancels a held CR) becomes the new carry.
func (a *asciiReader) readOne(p []byte) (int, error) {
	if a.carry != '\r' || a.err != nil {
		p[0] = a.carry
		a.held = false
		return 1, nil
	}
	m, err := a.r.Read(p)
	a.err = err
	if m == 0 {
		if err != nil {
			p[0] = '\r'
			a.held = false
			return 1, nil
		}
		return 0, nil
	}
	if p[0] == '\n' {
		a.held = false
		return 1, nil
	}
	a.carry = p[0]
	p[0] = '\r'
	return 1, nil
}

// convert rewrites b in place, dropping each CR that is followed by LF, and
// returns the length of the result. A CR in the last byte of b is held back
// as a.carry unless r has already failed, in which case nothing can follow
// it. It moves whole runs between CRs with copy rather than byte by byte.
func (a *asciiReader) convert(b []byte) int {
	w, i := 0, 0
	for i < len(b) {
		j := 0 // a CR right at i, as in blank lines, skips the call
		if b[i] != '\r' {
			j = bytes.IndexByte(b[i:], '\r')
		}
		if j < 0 {
			if w != i {
				copy(b[w:], b[i:])
			}
			return w + len(b) - i
		}
		j += i
		if w != i && j > i {
			copy(b[w:], b[i:j])
		}
		w += j - i
		if j+1 < len(b) {
			if b[j+1] == '\n' {
				// Emit the LF here rather than as the start of the
				// next run, which saves a copy call per blank line.
				b[w] = '\n'
				i = j + 2
			} else {
				b[w] = '\r'
				i = j + 1
			}
			w++
			continue
		}
		if a.err == nil {
			a.carry, a.held = '\r', true
			return w
		}
		b[w] = '\r'
		return w + 1
	}
	return w
}

// NewASCIIWriter returns a writer for downloads in TYPE A: text written to
// it with LF (or CRLF) line ends goes to w with CRLF line ends.
//
// An LF not preceded by CR is written as CRLF; a CRLF already present is
// left alone, also when its CR ended the previous Write, so text that
// already has CRLF line ends passes through unchanged. Nothing is held
// between calls, so there is nothing to flush: when Write returns, all of
// its output has been written to w.
//
// Write converts through a fixed internal buffer, writing to w each time it
// fills, so memory does not grow with the size of p. On success it returns
// len(p). If w fails, Write returns the number of bytes of p whose converted
// form w accepted in full, and the error; the writer then keeps returning
// that error, since the client's copy is already incomplete.
func NewASCIIWriter(w io.Writer) io.Writer {
	return &asciiWriter{w: w, buf: make([]byte, asciiWriteBufSize)}
}

type asciiWriter struct {
	w   io.Writer
	buf []byte
	// lastCR says whether the last byte consumed, possibly in an earlier
	// Write, was CR, so an LF right after it is already a line end.
	lastCR bool
	err    error
}

func (a *asciiWriter) Write(p []byte) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	done := 0
	for done < len(p) {
		wasCR := a.lastCR
		in, out := a.fill(p[done:])
		wn, err := a.w.Write(a.buf[:out])
		if err == nil && wn < out {
			err = io.ErrShortWrite
		}
		if err != nil {
			a.err = err
			return done + asciiConsumed(p[done:done+in], wasCR, wn), err
		}
		done += in
	}
	return len(p), nil
}

// fill converts as much of p as fits into a.buf and returns the number of
// bytes of p used and of a.buf filled. An LF is never split from the CR
// inserted before it.
func (a *asciiWriter) fill(p []byte) (in, out int) {
	buf := a.buf
	for in < len(p) {
		// Text runs go through IndexByte and copy; an LF right at in
		// skips both, which keeps LF-dense input from costing two calls
		// per byte.
		if p[in] != '\n' {
			seg := p[in:]
			j := bytes.IndexByte(seg, '\n')
			if j >= 0 {
				seg = seg[:j]
			}
			c := copy(buf[out:], seg)
			if c == 0 {
				return in, out // buffer full
			}
			a.lastCR = seg[c-1] == '\r'
			in += c
			out += c
			if j < 0 || c < len(seg) {
				return in, out
			}
		}
		// p[in] is LF.
		if a.lastCR {
			if out == len(buf) {
				return in, out
			}
			buf[out] = '\n'
			out++
		} else {
			if out+2 > len(buf) {
				return in, out
			}
			buf[out], buf[out+1] = '\r', '\n'
			out += 2
		}
		in++
		a.lastCR = false
	}
	return in, out
}

// asciiConsumed returns how many bytes of p (converted with the CR state
// wasCR before it) had their whole converted form among the first written
// bytes of output. It runs only after a failed write, so it favours
// plainness over speed.
func asciiConsumed(p []byte, wasCR bool, written int) int {
	out := 0
	for i, c := range p {
		size := 1
		if c == '\n' && !wasCR {
			size = 2
		}
		if out+size > written {
			return i
		}
		out += size
		wasCR = c == '\r'
	}
	return len(p)
}
