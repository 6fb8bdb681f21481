package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// testKey returns a fixed key for tests; material is what it was made
// from.
func testKey(t testing.TB) (k Key, material []byte) {
	t.Helper()
	material = []byte("0123456789abcdef-test-key")
	k, err := NewKey(material)
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return k, material
}

// fakeClock returns a Now that starts at a fixed time and moves 1 ms per
// call. It is safe for concurrent use.
func fakeClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 25, 10, 11, 12, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// newTestEmitter returns a keyed Emitter writing to a buffer.
func newTestEmitter(t testing.TB, opt Options) (*Emitter, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	if opt.Key.IsZero() {
		opt.Key, _ = testKey(t)
	}
	if opt.Now == nil {
		opt.Now = fakeClock()
	}
	opt.Sinks = append([]Sink{NewWriterSink(buf)}, opt.Sinks...)
	e, err := NewEmitter(opt)
	if err != nil {
		t.Fatalf("NewEmitter: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e, buf
}

// lines splits JSON lines output; every line must end with "\n".
func lines(t testing.TB, b []byte) []string {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("output does not end with a newline: %q", b[max(0, len(b)-40):])
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

func decode(t testing.TB, line string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("record is not JSON: %v\n%s", err, line)
	}
	return m
}

var sess = Session{ID: "s1", Client: "192.0.2.7:50312", User: "alice"}

// emitOneOfEach writes one record of every type.
func emitOneOfEach(e *Emitter) {
	e.SessionStart(sess, "127.0.0.1:2121")
	e.SessionStartWith(sess, SessionStartInfo{Server: "127.0.0.1:2121", TLS: "TLS 1.3", Upstream: "sftp.example:22", UpstreamProto: "sftp", HostKey: "SHA256:abc"})
	e.Command(sess, "PASS", "hunter2", 230, "Logged in.", 12*time.Millisecond)
	e.TransferStart(sess, TransferStart{ID: "x1", Direction: "store", ClientName: "a.txt", Path: "/in/a.txt", Type: "I", Upstream: "sftp.example:22"})
	e.Progress(sess, Progress{ID: "x1", Direction: "store", ClientName: "a.txt", Path: "/in/a.txt", Bytes: 1 << 20, Elapsed: 2 * time.Second})
	e.Transfer(sess, Transfer{ID: "x1", Direction: "store", ClientName: "a.txt", Path: "/in/a.txt", Type: "I", BytesFTP: 4096, BytesUp: 4096, Duration: time.Second, Upstream: "sftp.example:22", Result: "ok", SHA256: strings.Repeat("ab", 32), Confidence: ConfidenceHigh})
	e.Decision(sess, "zone-dmz", "deny", "STOR to prod")
	e.LoginFailure(sess, "r1", "unknown user")
	e.SessionEnd(sess, SessionEnd{Reason: "quit", Commands: 3, Transfers: 1, BytesIn: 4096, Duration: 3 * time.Second, Upstream: "sftp.example:22", UpstreamProto: "sftp"})
}

func TestRecordFields(t *testing.T) {
	e, buf := newTestEmitter(t, Options{})
	emitOneOfEach(e)
	if err := e.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	got := lines(t, buf.Bytes())
	tests := []struct {
		record string
		fields map[string]string // field: its value as JSON text; "" only checks presence
	}{
		{TypeSessionStart, map[string]string{"server": `"127.0.0.1:2121"`, "user": `"alice"`}},
		{TypeSessionStart, map[string]string{"tls": `"TLS 1.3"`, "upstream": `"sftp.example:22"`, "upstream_protocol": `"sftp"`, "host_key": `"SHA256:abc"`}},
		{TypeCommand, map[string]string{"cmd": `"PASS"`, "arg": `"****"`, "code": "230", "reply": `"Logged in."`, "duration_s": "0.012"}},
		{TypeTransferStart, map[string]string{"xfer": `"x1"`, "direction": `"store"`, "name": `"a.txt"`, "path": `"/in/a.txt"`, "type": `"I"`, "offset": "0", "upstream": `"sftp.example:22"`}},
		{TypeProgress, map[string]string{"xfer": `"x1"`, "bytes": "1048576", "elapsed_s": "2", "rate_bps": "524288"}},
		{TypeTransfer, map[string]string{"bytes_client": "4096", "bytes_upstream": "4096", "rate_bps": "4096", "result": `"ok"`, "sha256": `"` + strings.Repeat("ab", 32) + `"`, "confidence": `"high"`}},
		{TypeDecision, map[string]string{"rule": `"zone-dmz"`, "action": `"deny"`, "reason": `"STOR to prod"`}},
		{TypeLoginFailure, map[string]string{"rule": `"r1"`, "reason": `"unknown user"`}},
		{TypeSessionEnd, map[string]string{"reason": `"quit"`, "commands": "3", "transfers": "1", "bytes_in": "4096", "bytes_out": "0", "duration_s": "3", "host_key": `""`}},
		{TypeRotate, nil},
	}
	if len(got) != len(tests) {
		t.Fatalf("got %d records; want %d", len(got), len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.record, func(t *testing.T) {
			line := got[i]
			wantPrefix := fmt.Sprintf(`{"v":1,"seq":%d,"time":"2026-11-25T10:11:12.`, i+1)
			if !strings.HasPrefix(line, wantPrefix) {
				t.Errorf("got line %s; want it to start with %s", line, wantPrefix)
			}
			m := decode(t, line)
			if m["record"] != tc.record {
				t.Errorf("got record %v; want %s", m["record"], tc.record)
			}
			if tc.record != TypeRotate && (m["session"] != "s1" || m["client"] != sess.Client) {
				t.Errorf("got session %v client %v; want s1 %s", m["session"], m["client"], sess.Client)
			}
			for k, want := range tc.fields {
				v, ok := m[k]
				if !ok {
					t.Errorf("field %q missing", k)
					continue
				}
				js, _ := json.Marshal(v)
				if want != "" && string(js) != want {
					t.Errorf("field %q: got %s; want %s", k, js, want)
				}
			}
			if mac, ok := m["mac"].(string); !ok || len(mac) != 64 {
				t.Errorf("got mac %v; want 64 hex digits", m["mac"])
			}
			if strings.Contains(line, "hunter2") {
				t.Errorf("the password reached a record: %s", line)
			}
		})
	}
}

// TestMACDefinition recomputes each MAC from the definition in the package
// comment, independently of the verifier.
func TestMACDefinition(t *testing.T) {
	key, material := testKey(t)
	e, buf := newTestEmitter(t, Options{Key: key})
	emitOneOfEach(e)
	prev := make([]byte, 32)
	for i, line := range lines(t, buf.Bytes()) {
		const suffix = len(`,"mac":"`) + 64 + len(`"}`)
		body := line[:len(line)-suffix] + "}"
		macHex := line[len(line)-suffix+len(`,"mac":"`) : len(line)-2]
		h := hmac.New(sha256.New, material)
		h.Write(prev)
		h.Write([]byte(body))
		want := h.Sum(nil)
		if got := hex.EncodeToString(want); got != macHex {
			t.Fatalf("record %d: got mac %s; want %s", i+1, macHex, got)
		}
		prev = want
	}
	seq, mac := e.Last()
	if seq != 9 || !bytes.Equal(mac, prev) {
		t.Errorf("Last: got %d %x; want 9 %x", seq, mac, prev)
	}
}

func TestUnkeyedRecordsHaveNoMAC(t *testing.T) {
	buf := &syncBuffer{}
	e := New(buf)
	emitOneOfEach(e)
	for i, line := range lines(t, buf.Bytes()) {
		m := decode(t, line)
		if _, ok := m["mac"]; ok {
			t.Errorf("record %d has a mac without a key: %s", i+1, line)
		}
		if got := m["seq"].(json.Number).String(); got != fmt.Sprint(i+1) {
			t.Errorf("record %d: got seq %s; want %d", i+1, got, i+1)
		}
	}
	res, err := Verify(Key{}, Input{Name: "out", R: bytes.NewReader(buf.Bytes())})
	if err != nil || !res.OK() || res.MACs || res.Records != 9 {
		t.Errorf("Verify: got %+v, %v; want whole, 9 records, no MACs", res, err)
	}
	if seq, mac := e.Last(); seq != 9 || mac != nil {
		t.Errorf("Last: got %d %x; want 9 nil", seq, mac)
	}
}

func TestMaskArg(t *testing.T) {
	tests := []struct {
		name, verb, arg, want string
	}{
		{"PASS masked", "PASS", "hunter2", "****"},
		{"lower-case pass masked", "pass", "hunter2", "****"},
		{"ACCT masked", "ACCT", "acct-secret", "****"},
		{"empty PASS stays empty", "PASS", "", ""},
		{"length not revealed", "PASS", strings.Repeat("x", 100), "****"},
		{"USER kept", "USER", "alice", "alice"},
		{"RETR kept", "RETR", "a.txt", "a.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaskArg(tc.verb, tc.arg); got != tc.want {
				t.Errorf("MaskArg(%q, %q): got %q; want %q", tc.verb, tc.arg, got, tc.want)
			}
		})
	}
}

func TestHostileStrings(t *testing.T) {
	tests := []struct {
		name string
		s    string
	}{
		{"quotes and backslashes", `a"b\c"}{"seq":1`},
		{"newlines", "a\nb\r\nc\n{\"v\":1}\n"},
		{"NUL and controls", "a\x00b\x01\x1f\x7f"},
		{"invalid UTF-8", "a\xffb\xc3(\xed\xa0\x80"},
		{"line separators", "a\u2028b\u2029c"},
		{"fake mac suffix", `x","mac":"` + strings.Repeat("0", 64) + `"}`},
		{"valid multi-byte", "Grüße/日本語/🙂"},
		{"long", strings.Repeat("é", maxStringBytes)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, buf := newTestEmitter(t, Options{})
			s := Session{ID: "s1", Client: "c", User: tc.s}
			e.Command(s, "RETR", tc.s, 550, tc.s, 0)
			e.Transfer(s, Transfer{ClientName: tc.s, Path: tc.s, Error: tc.s})
			out := buf.Bytes()
			got := lines(t, out)
			if len(got) != 2 {
				t.Fatalf("got %d lines; want 2 (one per record):\n%s", len(got), out)
			}
			for _, line := range got {
				if !utf8.ValidString(line) || !json.Valid([]byte(line)) {
					t.Fatalf("not one valid JSON line: %q", line)
				}
				m := decode(t, line)
				for _, k := range []string{"user", "arg", "name", "path"} {
					v, ok := m[k].(string)
					if !ok {
						continue
					}
					checkClientString(t, k, tc.s, v, m)
				}
			}
			key, _ := testKey(t)
			res, err := Verify(key, Input{Name: "out", R: bytes.NewReader(out)})
			if err != nil || !res.OK() {
				t.Errorf("Verify: got %v, %v; want whole", res, err)
			}
		})
	}
}

// checkClientString checks that a client-chosen value in field k reads back
// as in: exactly when it is valid UTF-8 and short enough, else through the
// _b64 companion field.
func checkClientString(t testing.TB, k, in, got string, m map[string]any) {
	t.Helper()
	capped := in
	if len(in) > maxStringBytes {
		if !strings.HasSuffix(got, truncatedMark) {
			t.Errorf("%s: a long value does not end with %q", k, truncatedMark)
		}
		capped = in[:maxStringBytes]
		got = strings.TrimSuffix(got, truncatedMark)
		if !strings.HasPrefix(capped, got) {
			t.Errorf("%s: got %q…; want a prefix of the input", k, got[:min(len(got), 40)])
		}
	} else if utf8.ValidString(in) && got != in {
		t.Errorf("%s: got %q; want %q", k, got, in)
	}
	b64, hasB64 := m[k+"_b64"].(string)
	if utf8.ValidString(in) {
		if hasB64 {
			t.Errorf("%s_b64 present for a valid UTF-8 value", k)
		}
		return
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !hasB64 || err != nil || string(raw) != capped {
		t.Errorf("%s_b64: got %q (%v); want the exact bytes %q", k, b64, err, capped)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`"\`, `"\"\\"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x00\x1f", `"\u0000\u001f"`},
		{"\xff", `"\ufffd"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"é", `"é"`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := string(appendString(nil, tc.in)); got != tc.want {
				t.Errorf("appendString(%q): got %s; want %s", tc.in, got, tc.want)
			}
		})
	}
}

// flakyWriter fails while fail is set.
type flakyWriter struct {
	mu   sync.Mutex
	fail bool
	buf  bytes.Buffer
}

var errDiskFull = errors.New("disk full")

func (w *flakyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return 0, errDiskFull
	}
	return w.buf.Write(p)
}

func (w *flakyWriter) setFail(v bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = v
}

func (w *flakyWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

func TestSinkFailure(t *testing.T) {
	key, _ := testKey(t)
	tests := []struct {
		name      string
		failOpen  bool
		backlog   int
		failing   int // records emitted while the sink fails
		wantLost  uint64
		wantWhole bool // the flaky sink's copy verifies once it recovers
	}{
		{"backlog catches up", false, 0, 5, 0, true},
		{"fail open still reports", true, 0, 5, 0, true},
		{"backlog overflow loses the oldest", false, 2, 5, 3, false},
		{"no backlog loses each", false, -1, 5, 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flaky := &flakyWriter{}
			good := &syncBuffer{}
			e, err := NewEmitter(Options{
				Sinks:    []Sink{NewWriterSink(good), NewWriterSink(flaky)},
				Key:      key,
				FailOpen: tc.failOpen,
				Backlog:  tc.backlog,
				Now:      fakeClock(),
			})
			if err != nil {
				t.Fatalf("NewEmitter: %v", err)
			}
			defer e.Close()
			e.Command(sess, "NOOP", "", 200, "ok", 0)
			if err := e.Err(); err != nil {
				t.Fatalf("Err before the failure: got %v; want nil", err)
			}
			flaky.setFail(true)
			for range tc.failing {
				e.Command(sess, "NOOP", "", 200, "ok", 0)
			}
			err = e.Err()
			var se *SinkError
			if !errors.As(err, &se) || !errors.Is(err, errDiskFull) || se.Sink != "writer" {
				t.Fatalf("Err while failing: got %v; want a *SinkError from writer wrapping %v", err, errDiskFull)
			}
			if got := e.Failures(); got < uint64(tc.failing) {
				t.Errorf("Failures: got %d; want at least %d", got, tc.failing)
			}
			if err := e.Ready(); (err == nil) != tc.failOpen {
				t.Errorf("Ready while failing: got %v; want nil only with FailOpen", err)
			}
			flaky.setFail(false)
			e.Command(sess, "NOOP", "", 200, "ok", 0)
			if err := e.Err(); err != nil {
				t.Errorf("Err after recovery: got %v; want nil", err)
			}
			if err := e.Ready(); err != nil {
				t.Errorf("Ready after recovery: got %v; want nil", err)
			}
			if got := e.Lost(); got != tc.wantLost {
				t.Errorf("Lost: got %d; want %d", got, tc.wantLost)
			}
			n := 2 + tc.failing
			if res, err := Verify(key, Input{"good", bytes.NewReader(good.Bytes())}); err != nil || !res.OK() || res.Records != n {
				t.Errorf("the healthy sink: got %v, %v; want whole with %d records", res, err, n)
			}
			res, err := Verify(key, Input{"flaky", bytes.NewReader(flaky.bytes())})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.OK() != tc.wantWhole {
				t.Errorf("the recovered sink: got %v; want whole=%v", res, tc.wantWhole)
			}
			if !tc.wantWhole && (res.Problem == nil || res.Problem.Kind != ProblemMissing) {
				t.Errorf("the recovered sink: got %v; want %q", res.Problem, ProblemMissing)
			}
		})
	}
}

// notDurableSink takes every record but reports the first one as not
// durable, like a FileSink whose fsync failed.
type notDurableSink struct {
	buf   bytes.Buffer
	calls int
}

func (s *notDurableSink) Write(line []byte) error {
	s.calls++
	s.buf.Write(line)
	s.buf.WriteByte('\n')
	if s.calls == 1 {
		return fmt.Errorf("sync: %w", ErrNotDurable)
	}
	return nil
}

func (s *notDurableSink) Close() error { return nil }

func TestNotDurableIsNotWrittenTwice(t *testing.T) {
	s := &notDurableSink{}
	e, _ := newTestEmitter(t, Options{Sinks: []Sink{s}})
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	if err := e.Err(); !errors.Is(err, ErrNotDurable) {
		t.Errorf("Err: got %v; want ErrNotDurable", err)
	}
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	if err := e.Err(); err != nil {
		t.Errorf("Err after a durable write: got %v; want nil", err)
	}
	if got := len(lines(t, s.buf.Bytes())); got != 2 {
		t.Errorf("got %d records in the sink; want 2 (none written twice)", got)
	}
}

func TestConcurrentEmit(t *testing.T) {
	key, _ := testKey(t)
	e, buf := newTestEmitter(t, Options{Key: key})
	const goroutines, each = 100, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			s := Session{ID: fmt.Sprintf("s%d", g), Client: "c"}
			for i := range each {
				switch i % 3 {
				case 0:
					e.Command(s, "NOOP", "", 200, "ok", 0)
				case 1:
					e.Transfer(s, Transfer{Direction: "retrieve", BytesFTP: int64(i)})
				default:
					_ = e.Err()
					e.Progress(s, Progress{Bytes: int64(i), Elapsed: time.Second})
				}
			}
		})
	}
	wg.Wait()
	out := buf.Bytes()
	seen := make(map[string]bool)
	for _, line := range lines(t, out) {
		seq := decode(t, line)["seq"].(json.Number).String()
		if seen[seq] {
			t.Fatalf("seq %s appears twice", seq)
		}
		seen[seq] = true
	}
	res, err := Verify(key, Input{"out", bytes.NewReader(out)})
	if err != nil || !res.OK() || res.Records != goroutines*each {
		t.Errorf("Verify: got %v, %v; want whole with %d records", res, err, goroutines*each)
	}
}

func TestClose(t *testing.T) {
	e, buf := newTestEmitter(t, Options{})
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: got %v; want nil", err)
	}
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	if got := len(lines(t, buf.Bytes())); got != 1 {
		t.Errorf("got %d records; want 1 (none after Close)", got)
	}
	for name, err := range map[string]error{"Err": e.Err(), "Ready": e.Ready(), "Rotate": e.Rotate()} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v; want ErrClosed", name, err)
		}
	}
	if got := e.Lost(); got != 1 {
		t.Errorf("Lost: got %d; want 1", got)
	}
}

func TestNewEmitterErrors(t *testing.T) {
	key, _ := testKey(t)
	tests := []struct {
		name string
		opt  Options
	}{
		{"no sinks", Options{}},
		{"nil sink", Options{Sinks: []Sink{nil}}},
		{"short PrevMAC", Options{Sinks: []Sink{NewWriterSink(io.Discard)}, Key: key, PrevMAC: []byte{1, 2, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := NewEmitter(tc.opt); err == nil {
				e.Close()
				t.Errorf("NewEmitter: got nil error; want one")
			}
		})
	}
}

func TestNewNilWriter(t *testing.T) {
	e := New(nil)
	e.Command(sess, "NOOP", "", 200, "ok", 0)
	if err := e.Err(); err != nil {
		t.Errorf("Err: got %v; want nil", err)
	}
}

func BenchmarkEmit(b *testing.B) {
	key, _ := testKey(b)
	e, err := NewEmitter(Options{Sinks: []Sink{NewWriterSink(io.Discard)}, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s := Session{ID: "3f2a9c", Client: "192.0.2.7:50312", User: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		e.Command(s, "RETR", "/data/incoming/report-2026-11-25.csv", 226, "Transfer complete.", 1500*time.Microsecond)
	}
}

func BenchmarkEmitNoKey(b *testing.B) {
	e := New(io.Discard)
	s := Session{ID: "3f2a9c", Client: "192.0.2.7:50312", User: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		e.Command(s, "RETR", "/data/incoming/report-2026-11-25.csv", 226, "Transfer complete.", 1500*time.Microsecond)
	}
}
