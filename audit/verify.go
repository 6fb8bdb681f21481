package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxLineBytes is the longest record line Verify and LastRecord accept,
// newline excluded. The emitter's string cap (maxStringBytes) keeps real
// records far below it; the bound is there so that a hostile or corrupt
// file cannot make the verifier buffer without limit.
const maxLineBytes = 1 << 20

// macMember is what precedes the hex MAC at the end of a keyed record; the
// line ends with macMember + 64 lowercase hex digits + `"}`.
const macMember = `,"mac":"`

const macSuffixLen = len(macMember) + 2*sha256.Size + len(`"}`)

// ProblemKind classifies what Verify found wrong.
type ProblemKind string

const (
	// ProblemMalformed: a line is not a v1 record (not JSON, no seq, empty,
	// or longer than 1 MiB).
	ProblemMalformed ProblemKind = "malformed"
	// ProblemTruncated: a file's last line has no newline: it was cut,
	// usually mid-record.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemMissing: seq jumps forward and the skipped seqs do not appear
	// later: records were removed (or never written: see Emitter.Lost).
	ProblemMissing ProblemKind = "missing record"
	// ProblemReordered: a seq repeats, goes back, or comes before a seq
	// that appears later: records were moved or duplicated.
	ProblemReordered ProblemKind = "reordered or duplicated"
	// ProblemModified: a record is in its place but its MAC does not
	// match: its content was changed (or the key is wrong).
	ProblemModified ProblemKind = "modified"
	// ProblemUnsigned: a key was given but a record carries no MAC.
	ProblemUnsigned ProblemKind = "unsigned"
)

// Problem is the first thing Verify found wrong. It is an error, so a
// command can print it as one.
type Problem struct {
	Kind   ProblemKind
	File   string // the Input's name
	Line   int    // 1-based line in File
	Seq    uint64 // the seq on that line; 0 when it has none
	Want   uint64 // the seq expected there; 0 when not known
	Detail string
}

// Error returns "FILE:LINE: KIND: DETAIL".
func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Detail)
}

// Result is what Verify found.
type Result struct {
	// Records counts the records found in order (before the problem, if
	// there is one).
	Records int
	// FirstSeq and LastSeq are the seqs of the first and last of them; 0
	// when Records is 0.
	FirstSeq, LastSeq uint64
	// LastMAC is the MAC of the last record found in order; with LastSeq
	// it lets a later run verify newer files alone (Verifier.StartSeq =
	// LastSeq + 1, Verifier.PrevMAC = LastMAC).
	LastMAC []byte
	// MACs is true when MACs were checked (a key was given). Without a key
	// only the seq order was checked, which anyone can forge.
	MACs bool
	// StartUnchecked is true when Verifier.Partial made the first record
	// the start of the chain: its own MAC could not be checked.
	StartUnchecked bool
	// Problem is the first problem found, nil when the chain is whole.
	Problem *Problem
}

// OK reports whether the chain is whole.
func (r Result) OK() bool { return r.Problem == nil }

// String summarises r in one line, for `ftpgate audit verify`.
func (r Result) String() string {
	if r.Problem != nil {
		return r.Problem.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chain whole: %d records", r.Records)
	if r.Records > 0 {
		fmt.Fprintf(&b, ", seq %d to %d", r.FirstSeq, r.LastSeq)
	}
	switch {
	case !r.MACs:
		b.WriteString(" (no key: MACs not checked, seq order only)")
	case r.StartUnchecked:
		fmt.Fprintf(&b, " (partial: the MAC of seq %d, the first, not checked)", r.FirstSeq)
	}
	return b.String()
}

// Input is one file to verify: its name, for problems, and its content.
type Input struct {
	Name string
	R    io.Reader
}

// Verify checks that inputs, read in order as one stream, hold a whole
// chain starting at seq 1, under key (the zero Key checks seq order only).
// It is Verifier{Key: key}.Verify.
func Verify(key Key, inputs ...Input) (Result, error) {
	v := Verifier{Key: key}
	return v.Verify(inputs...)
}

// Verifier checks record chains. The zero Verifier checks seq order from
// seq 1, without MACs.
//
// Give a chain's files in order, oldest first (after rotation by a
// FileSink: audit.log.<time> files in name order, then audit.log). The
// chain continues from one file to the next. Verify stops at the first
// problem. Removing the newest records, or whole newest files, leaves a
// shorter chain that is still whole: compare Result.LastSeq with another
// copy (syslog) or with Emitter.Last to notice that.
type Verifier struct {
	// Key checks MACs; the zero Key checks seq order only.
	Key Key
	// StartSeq is the seq the first record must carry. Zero means 1.
	StartSeq uint64
	// PrevMAC is the MAC of the record before StartSeq. Empty means 32
	// zero bytes, the start of a chain.
	PrevMAC []byte
	// Partial accepts a first record with any seq and takes its MAC
	// without checking it (its predecessor is not given): for verifying
	// the newer files of a chain whose older files are gone. Everything
	// after the first record is checked as usual. StartSeq and PrevMAC are
	// ignored.
	Partial bool
}

// Verify reads inputs in order, line by line, and returns what it found.
// A problem in the chain is reported in Result.Problem with a nil error;
// the error is for a failure to read an input.
func (v *Verifier) Verify(inputs ...Input) (Result, error) {
	src := &lineSrc{n: len(inputs), open: func(i int) (Input, func(), error) {
		return inputs[i], func() {}, nil
	}}
	return v.run(src)
}

// VerifyFiles is Verify over the files at paths, opened one at a time.
func (v *Verifier) VerifyFiles(paths ...string) (Result, error) {
	src := &lineSrc{n: len(paths), open: func(i int) (Input, func(), error) {
		f, err := os.Open(paths[i])
		if err != nil {
			return Input{}, nil, fmt.Errorf("audit: verify: %w", err)
		}
		return Input{Name: paths[i], R: f}, func() { f.Close() }, nil
	}}
	defer src.close()
	return v.run(src)
}

// record is one parsed line.
type record struct {
	seq    uint64
	body   []byte // the line without its mac member and final "}"; nil when it has no mac
	mac    [sha256.Size]byte
	hasMAC bool
}

// chain checks MACs. Without a key its methods accept everything.
type chain struct {
	h   hash.Hash // nil without a key
	sum [sha256.Size]byte
}

var closeBrace = []byte{'}'}

// ok reports whether r's MAC follows from prev.
func (c *chain) ok(prev *[sha256.Size]byte, r *record) bool {
	if c.h == nil {
		return true
	}
	if !r.hasMAC {
		return false
	}
	c.h.Reset()
	c.h.Write(prev[:])
	c.h.Write(r.body)
	c.h.Write(closeBrace)
	return hmac.Equal(c.h.Sum(c.sum[:0]), r.mac[:])
}

func (v *Verifier) run(src *lineSrc) (res Result, err error) {
	res.MACs = !v.Key.IsZero()
	c := &chain{}
	if res.MACs {
		c.h = hmac.New(sha256.New, v.Key.b)
	}
	var prev [sha256.Size]byte
	defer func() {
		if res.MACs && res.Records > 0 {
			res.LastMAC = bytes.Clone(prev[:])
		}
	}()
	want := uint64(1)
	if !v.Partial {
		switch len(v.PrevMAC) {
		case 0:
		case sha256.Size:
			copy(prev[:], v.PrevMAC)
		default:
			return res, errBadPrevMAC
		}
		if v.StartSeq > 0 {
			want = v.StartSeq
		}
	}
	for {
		ln, err := src.next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		p := &Problem{File: ln.file, Line: ln.no, Want: want}
		r, detail := parseLine(&ln)
		p.Seq = r.seq
		switch {
		case !ln.nl:
			p.Kind = ProblemTruncated
			p.Detail = fmt.Sprintf("the last line of %s has no newline: the file was cut", ln.file)
			if detail != "" {
				p.Detail += " mid-record (" + detail + ")"
			}
			res.Problem = p
			return res, nil
		case detail != "":
			p.Kind, p.Detail = ProblemMalformed, detail
			res.Problem = p
			return res, nil
		}
		if res.MACs && !r.hasMAC {
			p.Kind = ProblemUnsigned
			p.Detail = fmt.Sprintf("seq %d does not end with a mac (64 lowercase hex digits), but a key was given", r.seq)
			res.Problem = p
			return res, nil
		}
		switch {
		case res.Records == 0 && v.Partial:
			res.StartUnchecked = res.MACs
		case r.seq == want && c.ok(&prev, &r):
		default:
			v.classify(p, src, c, &r, &res)
			res.Problem = p
			return res, nil
		}
		if res.Records == 0 {
			res.FirstSeq = r.seq
		}
		res.Records++
		res.LastSeq = r.seq
		prev = r.mac
		want = r.seq + 1
	}
}

// classify fills in p for record r, which is not the one expected at its
// place (p.Want), looking ahead in src where that tells removal, reordering
// and modification apart.
func (v *Verifier) classify(p *Problem, src *lineSrc, c *chain, r *record, res *Result) {
	want := p.Want
	if r.seq == want {
		p.Kind = ProblemModified
		p.Detail = fmt.Sprintf("seq %d: the mac does not match the record", r.seq)
		if res.Records == 0 {
			p.Detail += " (it was changed, or the key is wrong)"
		}
		return
	}
	// The seq is wrong. If the next record follows this one, both in seq
	// (want+1) and, with a key, in the chain (its MAC builds on this
	// record's MAC), this record is in its place and its seq was edited.
	mac := r.mac
	next, ok := src.nextRecord()
	if ok && next.r.seq == want+1 && (c.h == nil || c.ok(&mac, &next.r)) {
		p.Kind = ProblemModified
		p.Detail = fmt.Sprintf("the record in the place of seq %d says seq %d: its seq was changed", want, r.seq)
		return
	}
	if r.seq < want {
		p.Kind = ProblemReordered
		p.Detail = fmt.Sprintf("want seq %d, got seq %d again or out of order", want, r.seq)
		return
	}
	// A jump forward: reordered if want comes later, else removed.
	for ok && next.r.seq != want {
		next, ok = src.nextRecordAny()
	}
	if ok {
		p.Kind = ProblemReordered
		p.Detail = fmt.Sprintf("want seq %d, got seq %d; seq %d comes later, at %s:%d", want, r.seq, want, next.file, next.no)
		return
	}
	p.Kind = ProblemMissing
	n := r.seq - want
	if n == 1 {
		p.Detail = fmt.Sprintf("want seq %d, got seq %d: 1 record missing", want, r.seq)
	} else {
		p.Detail = fmt.Sprintf("want seq %d, got seq %d: %d records missing (%d to %d)", want, r.seq, n, want, r.seq-1)
	}
	if res.Records == 0 && !v.Partial {
		p.Detail += fmt.Sprintf("; the input starts at seq %d: give the older files first, or verify a partial chain", r.seq)
	}
}

// parseLine parses a line's seq and MAC. A non-empty detail says why the
// line is not a record.
func parseLine(ln *line) (r record, detail string) {
	switch {
	case ln.tooLong:
		return r, fmt.Sprintf("line longer than %d bytes", maxLineBytes)
	case len(ln.b) == 0:
		return r, "empty line"
	}
	var head struct {
		V   *int64  `json:"v"`
		Seq *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(ln.b, &head); err != nil {
		return r, "not a JSON record: " + err.Error()
	}
	switch {
	case head.V == nil:
		return r, `no "v" field (not a v1 record)`
	case *head.V != SchemaVersion:
		return r, fmt.Sprintf("schema version %d, want %d", *head.V, SchemaVersion)
	case head.Seq == nil:
		return r, `no "seq" field`
	case *head.Seq == 0:
		return r, "seq 0 (seqs start at 1)"
	}
	r.seq = *head.Seq
	r.body, r.hasMAC = splitMAC(ln.b, &r.mac)
	return r, ""
}

// splitMAC returns the body of a keyed line (without `,"mac":"…"}`) and
// decodes its MAC into mac. ok is false when the line does not end with a
// mac member of 64 lowercase hex digits.
func splitMAC(b []byte, mac *[sha256.Size]byte) (body []byte, ok bool) {
	n := len(b) - macSuffixLen
	if n < 1 || b[len(b)-2] != '"' || b[len(b)-1] != '}' || string(b[n:n+len(macMember)]) != macMember {
		return nil, false
	}
	digits := b[n+len(macMember) : len(b)-2]
	for _, c := range digits {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	if _, err := hex.Decode(mac[:], digits); err != nil {
		return nil, false
	}
	return b[:n], true
}

// line is one line of input. b is valid until the next call of next.
type line struct {
	b       []byte // without the newline
	nl      bool   // the line ended with "\n"
	tooLong bool   // longer than maxLineBytes; b is empty
	file    string
	no      int
}

// lineSrc reads the lines of several inputs as one stream.
type lineSrc struct {
	n       int
	open    func(i int) (Input, func(), error)
	i       int           // next input to open
	rd      *bufio.Reader // reused for every input
	br      *bufio.Reader // rd while an input is open, else nil
	closeFn func()
	name    string
	no      int
	buf     []byte
}

// next returns the next line, or io.EOF after the last input.
func (l *lineSrc) next() (line, error) {
	for {
		if l.br == nil {
			if l.i == l.n {
				return line{}, io.EOF
			}
			in, closeFn, err := l.open(l.i)
			if err != nil {
				return line{}, err
			}
			l.i++
			l.name, l.no, l.closeFn = in.Name, 0, closeFn
			if l.rd == nil {
				l.rd = bufio.NewReaderSize(in.R, 64<<10)
			} else {
				l.rd.Reset(in.R)
			}
			l.br = l.rd
		}
		l.buf = l.buf[:0]
		tooLong := false
		for {
			frag, err := l.br.ReadSlice('\n')
			if !tooLong {
				if len(l.buf)+len(frag) > maxLineBytes+1 {
					tooLong, l.buf = true, l.buf[:0]
				} else {
					l.buf = append(l.buf, frag...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && len(l.buf) == 0 && !tooLong {
				l.close()
				break // on to the next input
			}
			if err != nil && err != io.EOF {
				return line{}, fmt.Errorf("audit: verify %s: %w", l.name, err)
			}
			l.no++
			ln := line{b: l.buf, tooLong: tooLong, file: l.name, no: l.no}
			if err == nil {
				ln.nl = true
				if !tooLong {
					ln.b = l.buf[:len(l.buf)-1]
				}
			}
			return ln, nil
		}
	}
}

// positioned is a record with its place.
type positioned struct {
	r    record
	file string
	no   int
}

// nextRecord returns the next line as a record; ok is false at the end or
// when the next line is not a record.
func (l *lineSrc) nextRecord() (positioned, bool) {
	ln, err := l.next()
	if err != nil {
		return positioned{}, false
	}
	r, detail := parseLine(&ln)
	return positioned{r: r, file: ln.file, no: ln.no}, detail == ""
}

// nextRecordAny returns the next line that is a record, skipping others;
// ok is false at the end.
func (l *lineSrc) nextRecordAny() (positioned, bool) {
	for {
		ln, err := l.next()
		if err != nil {
			return positioned{}, false
		}
		if r, detail := parseLine(&ln); detail == "" {
			return positioned{r: r, file: ln.file, no: ln.no}, true
		}
	}
}

func (l *lineSrc) close() {
	if l.closeFn != nil {
		l.closeFn()
		l.closeFn = nil
	}
	l.br = nil
}

// LastRecord returns the seq and MAC (nil when the record has none) of the
// last complete record in the file at path, so that a restarted ftpgate
// continues the chain: Options{StartSeq: seq + 1, PrevMAC: mac}. A cut last
// line (a crash mid-write) is skipped: the record before it is the last one
// whole, and the cut line stays for Verify to report.
//
// A missing or empty file means a new chain (0, nil, nil), unless a file
// rotated by a FileSink (RotatedName) sits next to it: then the newest of
// those is read, which covers a crash between a size rotation and the first
// write to the new file. Files renamed by other tools are not searched;
// Emitter.Rotate writes a record into the reopened file at once so that
// this window stays small. A last line that is not a record is an error:
// the caller decides whether to start a new chain.
func LastRecord(path string) (seq uint64, mac []byte, err error) {
	seq, mac, found, err := lastRecordIn(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, nil, err
	}
	if found {
		return seq, mac, nil
	}
	rotated, err := newestRotated(path)
	if err != nil || rotated == "" {
		return 0, nil, err
	}
	seq, mac, _, err = lastRecordIn(rotated)
	return seq, mac, err
}

// lastRecordIn reads the last complete line of one file. found is false
// when the file holds no complete line.
func lastRecordIn(path string) (seq uint64, mac []byte, found bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, false, fmt.Errorf("audit: last record: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, false, fmt.Errorf("audit: last record: %w", err)
	}
	size := fi.Size()
	off := max(0, size-(maxLineBytes+2))
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return 0, nil, false, fmt.Errorf("audit: last record: %s: %w", path, err)
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		if off > 0 {
			return 0, nil, false, fmt.Errorf("audit: last record: %s: last line longer than %d bytes", path, maxLineBytes)
		}
		return 0, nil, false, nil
	}
	start := bytes.LastIndexByte(buf[:end], '\n') + 1
	if start == 0 && off > 0 {
		return 0, nil, false, fmt.Errorf("audit: last record: %s: last line longer than %d bytes", path, maxLineBytes)
	}
	ln := line{b: buf[start:end], nl: true}
	r, detail := parseLine(&ln)
	if detail != "" {
		return 0, nil, false, fmt.Errorf("audit: last record: %s: last complete line: %s", path, detail)
	}
	if r.hasMAC {
		mac = bytes.Clone(r.mac[:])
	}
	return r.seq, mac, true, nil
}

// newestRotated returns the newest file named RotatedName(path, t) for some
// t, or "" when there is none.
func newestRotated(path string) (string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("audit: last record: %w", err)
	}
	newest := ""
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if _, err := time.Parse(rotatedLayout, suffix); err != nil {
			continue
		}
		if e.Name() > newest {
			newest = e.Name()
		}
	}
	if newest == "" {
		return "", nil
	}
	return filepath.Join(dir, newest), nil
}
