// Package audit is the one place ftpgate's records come from: every
// command/reply pair, every transfer (its start, its progress and its end),
// every policy decision, every session start and end, and every refused
// login. Callers use the typed methods of Emitter and never build a record by
// hand, so masking a secret (the PASS argument) happens here and cannot be
// forgotten at a call site.
//
// Typical use:
//
//	key, err := audit.KeyFromFile("/run/secrets/audit-key")
//	file, err := audit.NewFileSink("/var/log/ftpgate/audit.log", audit.FileOptions{})
//	seq, mac, err := audit.LastRecord("/var/log/ftpgate/audit.log")
//	em, err := audit.NewEmitter(audit.Options{
//		Sinks: []audit.Sink{file}, Key: key, StartSeq: seq + 1, PrevMAC: mac,
//	})
//	defer em.Close()
//	...
//	if err := em.Ready(); err != nil { /* refuse the transfer with 4xx */ }
//
// # Records
//
// A record is one JSON object on one line, ended by "\n":
//
//	{"v":1,"seq":42,"time":"2026-11-25T10:11:12.123456Z","record":"command","session":"s1","client":"192.0.2.7:50312","user":"alice","cmd":"PASS","arg":"****","code":230,"reply":"Logged in.","duration_s":0.012,"mac":"<64 hex digits>"}
//
// Every record begins with "v" (the schema version, SchemaVersion), "seq",
// "time" (UTC, microseconds) and "record" (its type, one of the Type
// constants), in that order. Records about a session go on with "session",
// "client" and, once known, "user". Field names are snake_case and stable; a
// field is only ever added, and removing or renaming one bumps "v". Values
// chosen by the client (user, cmd, arg, name, path) that are not valid UTF-8
// are written with U+FFFD in place of each bad byte and repeated exactly, in
// base64, in a companion field with the suffix "_b64" ("name_b64"). Strings
// longer than 8 KiB are cut and end in "…[truncated]".
//
// # The chain
//
// "seq" counts records 1, 2, 3, ... without gaps over the life of a chain,
// across restarts (see LastRecord and Options.StartSeq) and across files
// (rotation only changes where the next line goes). With a Key, every record
// ends with a "mac" member:
//
//	mac(n) = HMAC-SHA256(key, mac(n-1) || body(n))
//
// where mac(n-1) is the 32 raw bytes of the previous record's MAC (32 zero
// bytes before the first record of a chain), and body(n) is the record's line
// without its newline and without its mac member: the line is body(n) with
// its final "}" replaced by `,"mac":"` + hex(mac(n)) + `"}`, the hex in
// lower case. The definition is on bytes, not on parsed JSON, so no
// canonical form is involved: Verify strips the fixed-length suffix,
// restores the "}" and recomputes. Someone who can edit the files but does
// not hold the key cannot change, remove, insert or reorder a record without
// Verify noticing; removing the newest records (the tail) is the one change a
// chain alone cannot reveal, which is what a second sink (syslog to a SIEM)
// is for.
//
// Without a key records carry "seq" but no "mac", and Verify can only check
// that the sequence is continuous: a MAC under an empty or fixed key would
// look like protection and be none.
//
// # Sinks and failure
//
// The Emitter is the only writer: it serialises records under one mutex,
// assigns seq, computes the MAC and hands each line to every Sink in turn. A
// sink that fails does not stop the others. Its failed records wait in a
// bounded per-sink backlog and are written, in order, before the next record
// once the sink works again; Err reports the failure until then, and Ready
// is what the proxy asks before each transfer ("no transfer without a
// record", unless Options.FailOpen). The package logs nothing.
package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SchemaVersion is the value of every record's "v" field. It changes only
// when a field is removed or changes meaning; new fields do not change it.
const SchemaVersion = 1

// Record types, the value of the "record" field.
const (
	TypeSessionStart  = "session_start"
	TypeSessionEnd    = "session_end"
	TypeCommand       = "command"
	TypeTransferStart = "transfer_start"
	TypeProgress      = "progress"
	TypeTransfer      = "transfer" // the end of a transfer
	TypeDecision      = "decision"
	TypeLogin         = "login"
	TypeLoginFailure  = "login_failure"
	TypeRotate        = "rotate" // written by Emitter.Rotate, first in a reopened file
)

// Confidence values of a transfer record: how sure ftpgate is that the
// "sha256" and "bytes_client" fields describe the whole file as the client
// sent or received it. The proxy decides which applies; the package only
// records it.
const (
	// ConfidenceHigh: the transfer ended normally on both sides and the
	// byte counts agree with what the partner reports.
	ConfidenceHigh = "high"
	// ConfidenceNoEOF: the data connection ended without a clean end of
	// stream (no TLS close_notify, a reset), so the client may have sent or
	// received less than it meant to; the hash covers what arrived.
	ConfidenceNoEOF = "noeof"
	// ConfidenceLow: the counts disagree, or the transfer was aborted; the
	// hash covers the bytes that moved, not a whole file.
	ConfidenceLow = "low"
	// ConfidenceUnknown: no hash was computed.
	ConfidenceUnknown = "unknown"
)

// ErrClosed is returned by Err, Ready and Rotate after Close.
var ErrClosed = errors.New("audit: emitter closed")

// defaultBacklog is the per-sink backlog when Options.Backlog is zero. At a
// few hundred bytes per record it holds well under 1 MiB per sink, enough to
// ride out a syslog reconnect (see SyslogOptions.MaxBackoff) at a busy
// gate's rate of tens of records per second.
const defaultBacklog = 1024

// Options configures an Emitter. NewEmitter copies it; changing it later has
// no effect.
type Options struct {
	// Sinks receive every record, in this order. At least one is
	// required. The Emitter owns them: Close closes them.
	Sinks []Sink
	// Key keys the MAC chain. The zero Key means records carry no "mac".
	Key Key
	// StartSeq is the seq of the first record this Emitter writes. Zero
	// means 1, a new chain. To continue a chain after a restart, use
	// LastRecord and set StartSeq to its seq + 1.
	StartSeq uint64
	// PrevMAC is the MAC of the record before StartSeq (from LastRecord).
	// Empty means 32 zero bytes, a new chain. Ignored without a Key.
	PrevMAC []byte
	// FailOpen lets transfers go on while a sink is failing: Ready then
	// always returns nil (Err still reports the failure). The default,
	// false, is "no transfer without a record": Ready returns the sink's
	// error and the proxy refuses new transfers with a 4xx reply.
	FailOpen bool
	// Backlog is how many records each sink keeps while it fails, to write
	// them in order once it works again; beyond it the oldest are dropped
	// (counted by Lost, and visible to Verify as missing records). Zero
	// means 1024; negative means no backlog.
	Backlog int
	// Now gives the "time" field. Nil means time.Now.
	Now func() time.Time
}

// Emitter writes records. It is safe for concurrent use; one Emitter serves
// the whole process, since a chain has exactly one writer.
type Emitter struct {
	// Immutable after NewEmitter.
	keyed    bool
	failOpen bool
	backlog  int // < 0: none
	now      func() time.Time

	mu     sync.Mutex // guards the fields below and serialises sink writes
	sinks  []sinkState
	seq    uint64            // seq of the last record made; 0 before the first
	prev   [sha256.Size]byte // MAC of that record; zero at the start of a chain
	mac    hash.Hash         // HMAC-SHA256 under the key; nil without a key
	sum    [sha256.Size]byte // scratch for mac.Sum
	enc    enc               // the record being built, reused
	closed bool

	// errMu guards errs and errClosed. It is separate from mu so that Err,
	// asked before every transfer, never waits behind a slow sink.
	errMu     sync.Mutex
	errs      []*SinkError // per sink: the first error of its current failure
	errClosed bool

	failures atomic.Uint64
	lost     atomic.Uint64
}

type sinkState struct {
	sink    Sink
	name    string
	pending [][]byte // records this sink has not taken yet, oldest first
}

// SinkError is what Err returns while a sink fails.
type SinkError struct {
	Sink  string    // the sink's String(), or its type
	Since time.Time // when its current failure began
	Err   error     // the first error of the failure
}

func (e *SinkError) Error() string { return e.Err.Error() }
func (e *SinkError) Unwrap() error { return e.Err }

// NewEmitter returns an Emitter that writes to opt.Sinks.
func NewEmitter(opt Options) (*Emitter, error) {
	if len(opt.Sinks) == 0 {
		return nil, errors.New("audit: no sinks")
	}
	e := &Emitter{
		failOpen: opt.FailOpen,
		backlog:  opt.Backlog,
		now:      opt.Now,
		errs:     make([]*SinkError, len(opt.Sinks)),
		enc:      enc{b: make([]byte, 0, 512)},
	}
	if e.backlog == 0 {
		e.backlog = defaultBacklog
	}
	if e.now == nil {
		e.now = time.Now
	}
	for i, s := range opt.Sinks {
		if s == nil {
			return nil, fmt.Errorf("audit: sink %d is nil", i)
		}
		e.sinks = append(e.sinks, sinkState{sink: s, name: sinkName(s)})
	}
	if opt.StartSeq > 0 {
		e.seq = opt.StartSeq - 1
	}
	if !opt.Key.IsZero() {
		e.keyed = true
		e.mac = hmac.New(sha256.New, opt.Key.b)
		switch len(opt.PrevMAC) {
		case 0:
		case sha256.Size:
			copy(e.prev[:], opt.PrevMAC)
		default:
			return nil, errBadPrevMAC
		}
	}
	return e, nil
}

// New returns an Emitter without a key that writes JSON lines to w (nil
// means io.Discard). It is NewEmitter with one NewWriterSink(w).
func New(w io.Writer) *Emitter {
	if w == nil {
		w = io.Discard
	}
	e, err := NewEmitter(Options{Sinks: []Sink{NewWriterSink(w)}})
	if err != nil {
		panic(err) // unreachable: one non-nil sink, no key
	}
	return e
}

// Err returns nil when every sink took every record so far, else a
// *SinkError for the first failing sink (in Options.Sinks order): the first
// error since that sink last succeeded. A sink's error clears once it takes
// a record again (its backlog first). After Close, Err returns ErrClosed.
func (e *Emitter) Err() error {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	if e.errClosed {
		return ErrClosed
	}
	for _, se := range e.errs {
		if se != nil {
			return se
		}
	}
	return nil
}

// Ready returns nil when a new transfer may start: every sink is healthy,
// or Options.FailOpen is set. Otherwise it returns Err's error, and the
// proxy refuses the transfer with a 4xx reply.
func (e *Emitter) Ready() error {
	if e.failOpen {
		return nil
	}
	return e.Err()
}

// Failures returns how many sink writes have failed since NewEmitter,
// counting each sink and each attempt.
func (e *Emitter) Failures() uint64 { return e.failures.Load() }

// Lost returns how many times a record was given up for a sink: dropped from
// a full backlog, not written before Close, or made after Close.
func (e *Emitter) Lost() uint64 { return e.lost.Load() }

// Last returns the seq and MAC of the last record made (the MAC is nil
// without a key). A record counts as made once it has its seq, whether or
// not every sink has taken it.
func (e *Emitter) Last() (seq uint64, mac []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.keyed {
		mac = bytes.Clone(e.prev[:])
	}
	return e.seq, mac
}

// Rotate asks every sink that is a Rotator (FileSink) to reopen its file,
// then writes a "rotate" record, so that a reopened file starts with a
// record at once and LastRecord on it continues the chain. Call it after an
// external tool renamed the file (logrotate without copytruncate). The error
// joins the sinks' errors; a sink that failed to reopen is marked failing.
func (e *Emitter) Rotate() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	var errs []error
	for i := range e.sinks {
		r, ok := e.sinks[i].sink.(Rotator)
		if !ok {
			continue
		}
		if err := r.Rotate(); err != nil {
			e.failures.Add(1)
			e.setErr(i, err)
			errs = append(errs, err)
		}
	}
	e.beginLocked(TypeRotate)
	e.emitLocked()
	return errors.Join(errs...)
}

// Close writes what the backlogs still hold (one attempt each), closes every
// sink and returns their errors joined. Records made after Close are lost
// (counted by Lost). Close is idempotent.
func (e *Emitter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for i := range e.sinks {
		st := &e.sinks[i]
		if err := e.flushLocked(st); err != nil {
			e.lost.Add(uint64(len(st.pending)))
			errs = append(errs, fmt.Errorf("audit: %s: %d records not written: %w", st.name, len(st.pending), err))
			st.pending = nil
		}
		if err := st.sink.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	e.errMu.Lock()
	e.errClosed = true
	e.errMu.Unlock()
	return errors.Join(errs...)
}

// beginLocked starts a record of type typ in e.enc, with the seq it will
// have if emitLocked commits it.
func (e *Emitter) beginLocked(typ string) *enc {
	r := &e.enc
	r.b = append(r.b[:0], `{"v":`...)
	r.b = strconv.AppendInt(r.b, SchemaVersion, 10)
	r.uint("seq", e.seq+1)
	r.time("time", e.now())
	r.str("record", typ)
	return r
}

func (e *Emitter) beginSessionLocked(typ string, s *Session) *enc {
	r := e.beginLocked(typ)
	r.str("session", s.ID)
	r.str("client", s.Client)
	if s.User != "" {
		r.clientStr("user", s.User)
	}
	if s.Zone != "" {
		r.str("zone", s.Zone)
	}
	if s.Insecure {
		r.bool("insecure", true)
	}
	return r
}

// emitLocked closes the record in e.enc, computes its MAC, commits its seq
// and writes it to every sink.
func (e *Emitter) emitLocked() {
	if e.closed {
		e.lost.Add(1)
		return
	}
	b := append(e.enc.b, '}')
	if e.keyed {
		e.mac.Reset()
		e.mac.Write(e.prev[:])
		e.mac.Write(b)
		sum := e.mac.Sum(e.sum[:0])
		copy(e.prev[:], sum)
		b = append(b[:len(b)-1], `,"mac":"`...)
		b = appendHex(b, sum)
		b = append(b, '"', '}')
	}
	e.enc.b = b
	e.seq++
	for i := range e.sinks {
		st := &e.sinks[i]
		err := e.flushLocked(st)
		if err == nil {
			err = e.writeLocked(st, b)
		} else {
			e.queueLocked(st, b)
		}
		e.setErr(i, err)
	}
}

// writeLocked writes one record to st, queueing it when the sink failed
// before taking it.
func (e *Emitter) writeLocked(st *sinkState, line []byte) error {
	err := st.sink.Write(line)
	if err == nil {
		return nil
	}
	e.failures.Add(1)
	if !errors.Is(err, ErrNotDurable) {
		e.queueLocked(st, line)
	}
	return err
}

// flushLocked writes st's backlog in order and stops at the first record
// the sink does not take.
func (e *Emitter) flushLocked(st *sinkState) error {
	for len(st.pending) > 0 {
		err := st.sink.Write(st.pending[0])
		if err != nil {
			e.failures.Add(1)
			if !errors.Is(err, ErrNotDurable) {
				return err
			}
		}
		st.pending[0] = nil
		st.pending = st.pending[1:]
		if err != nil {
			return err
		}
	}
	st.pending = nil // let the backing array go once drained
	return nil
}

func (e *Emitter) queueLocked(st *sinkState, line []byte) {
	if e.backlog < 0 {
		e.lost.Add(1)
		return
	}
	if len(st.pending) >= e.backlog {
		st.pending[0] = nil
		st.pending = st.pending[1:]
		e.lost.Add(1)
	}
	st.pending = append(st.pending, bytes.Clone(line))
}

// setErr records the outcome of a write to sink i: a nil err clears its
// failure, a non-nil one starts a failure unless one is already running.
func (e *Emitter) setErr(i int, err error) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	switch {
	case err == nil:
		e.errs[i] = nil
	case e.errs[i] == nil:
		e.errs[i] = &SinkError{Sink: e.sinks[i].name, Since: e.now(), Err: err}
	}
}

func appendHex(b, src []byte) []byte {
	for _, c := range src {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

// Session identifies the FTP session a record belongs to.
type Session struct {
	ID     string // unique per process run
	Client string // client address, host:port
	User   string // the USER argument, once known
	Zone   string // the client's source zone, once the policy decided
	// Insecure marks every record of a session carried to a plain-FTP
	// partner under a warn rule.
	Insecure bool
}

// SessionStart records a new control connection, before the greeting.
// server is the local address the client connected to.
func (e *Emitter) SessionStart(s Session, server string) {
	e.SessionStartWith(s, SessionStartInfo{Server: server})
}

// SessionStartInfo is what a session_start record can say. Empty fields
// other than Server are left out of the record.
type SessionStartInfo struct {
	Server        string // local address the client connected to
	TLS           string // front-end TLS, e.g. "TLS 1.3", once known
	Upstream      string // the route's upstream host:port, when known at start
	UpstreamProto string // "sftp", "ftps"
	HostKey       string // the upstream host key's SHA-256 fingerprint
}

// SessionStartWith records a new control connection with the facts known
// at its start.
func (e *Emitter) SessionStartWith(s Session, info SessionStartInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeSessionStart, &s)
	r.str("server", info.Server)
	r.strOmit("tls", info.TLS)
	r.strOmit("upstream", info.Upstream)
	r.strOmit("upstream_protocol", info.UpstreamProto)
	r.strOmit("host_key", info.HostKey)
	e.emitLocked()
}

// SessionEnd records the end of a control connection with its totals.
type SessionEnd struct {
	Reason        string // "quit", "client closed", "idle timeout", "shutdown", ...
	Commands      int
	Transfers     int
	BytesIn       int64 // from the client to the partner
	BytesOut      int64 // from the partner to the client
	Duration      time.Duration
	Upstream      string
	UpstreamProto string
	HostKey       string
}

// SessionEnd records the end of a control connection.
func (e *Emitter) SessionEnd(s Session, end SessionEnd) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeSessionEnd, &s)
	r.str("reason", end.Reason)
	r.int("commands", int64(end.Commands))
	r.int("transfers", int64(end.Transfers))
	r.int("bytes_in", end.BytesIn)
	r.int("bytes_out", end.BytesOut)
	r.seconds("duration_s", end.Duration)
	r.str("upstream", end.Upstream)
	r.str("upstream_protocol", end.UpstreamProto)
	r.str("host_key", end.HostKey)
	e.emitLocked()
}

// Command records one command and the reply ftpgate gave. The argument of
// PASS (and ACCT, which may carry an account password) is masked here.
func (e *Emitter) Command(s Session, verb, arg string, code int, text string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeCommand, &s)
	r.clientStr("cmd", verb)
	r.clientStr("arg", MaskArg(verb, arg))
	r.int("code", int64(code))
	r.str("reply", text)
	r.seconds("duration_s", d)
	e.emitLocked()
}

// MaskArg returns arg as it may be recorded: PASS and ACCT arguments are
// replaced by "****" (the length is not revealed either).
func MaskArg(verb, arg string) string {
	switch strings.ToUpper(verb) {
	case "PASS", "ACCT":
		if arg == "" {
			return ""
		}
		return "****"
	}
	return arg
}

// TransferStart describes a transfer about to move data. Its record is
// written before the first byte flows, so that a transfer that never ends
// (a crash, a kill) still left a trace.
type TransferStart struct {
	ID         string // optional; ties the start, progress and end records of one transfer ("xfer")
	Direction  string // "retrieve", "store", "append", "list"
	ClientName string // the name as the client sent it
	Path       string // the upstream path
	Type       string // "A" or "I"
	Offset     int64  // REST offset
	Upstream   string
}

// TransferStart records a transfer about to start.
func (e *Emitter) TransferStart(s Session, t TransferStart) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeTransferStart, &s)
	r.strOmit("xfer", t.ID)
	r.str("direction", t.Direction)
	r.clientStr("name", t.ClientName)
	r.clientStr("path", t.Path)
	r.str("type", t.Type)
	r.int("offset", t.Offset)
	r.str("upstream", t.Upstream)
	e.emitLocked()
}

// Progress describes a long transfer still running.
type Progress struct {
	ID         string // as in TransferStart ("xfer")
	Direction  string
	ClientName string
	Path       string
	Bytes      int64         // bytes on the client's data connection so far
	Elapsed    time.Duration // since the transfer started
}

// Progress records a running transfer's progress; "rate_bps" is the
// average since its start.
func (e *Emitter) Progress(s Session, p Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeProgress, &s)
	r.strOmit("xfer", p.ID)
	r.str("direction", p.Direction)
	r.clientStr("name", p.ClientName)
	r.clientStr("path", p.Path)
	r.int("bytes", p.Bytes)
	r.seconds("elapsed_s", p.Elapsed)
	r.float("rate_bps", rate(p.Bytes, p.Elapsed))
	e.emitLocked()
}

// Transfer describes a finished (or failed) data transfer.
type Transfer struct {
	ID         string // as in TransferStart ("xfer"); optional
	Direction  string // "retrieve", "store", "append", "list"
	ClientName string // the name as the client sent it
	Path       string // the upstream path
	Type       string // "A" or "I"
	Offset     int64  // REST offset
	BytesFTP   int64  // bytes on the client's data connection
	BytesUp    int64  // bytes read from or written to the partner
	Duration   time.Duration
	Upstream   string
	Result     string // "ok", "aborted", "failed"
	Error      string // the cause when not ok; never a secret
	// SHA256 is the hex SHA-256 of the bytes as the client sent or
	// received them (after TYPE A conversion on a retrieve, before it on a
	// store). Empty leaves "sha256" out of the record.
	SHA256 string
	// Confidence says how far SHA256 and BytesFTP describe the whole file:
	// one of the Confidence constants. Empty leaves it out.
	Confidence string
}

// Transfer records the end of a transfer.
func (e *Emitter) Transfer(s Session, t Transfer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeTransfer, &s)
	r.strOmit("xfer", t.ID)
	r.str("direction", t.Direction)
	r.clientStr("name", t.ClientName)
	r.clientStr("path", t.Path)
	r.str("type", t.Type)
	r.int("offset", t.Offset)
	r.int("bytes_client", t.BytesFTP)
	r.int("bytes_upstream", t.BytesUp)
	r.seconds("duration_s", t.Duration)
	r.float("rate_bps", rate(t.BytesFTP, t.Duration))
	r.str("upstream", t.Upstream)
	r.str("result", t.Result)
	r.strOmit("sha256", t.SHA256)
	r.strOmit("confidence", t.Confidence)
	r.strOmit("error", t.Error)
	e.emitLocked()
}

// rate is bytes per second, 0 for a zero or negative duration.
func rate(n int64, d time.Duration) float64 {
	if sec := d.Seconds(); sec > 0 {
		return float64(n) / sec
	}
	return 0
}

// Decision records a policy decision: the rule that matched, what it decided
// ("allow", "deny", a route name) and why.
func (e *Emitter) Decision(s Session, rule, action, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeDecision, &s)
	r.str("rule", rule)
	r.str("action", action)
	r.str("reason", reason)
	e.emitLocked()
}

// Login is what a login record says: the decision that let the session in
// and the facts of the secured connection to the partner, which exist only
// once the partner has been dialled.
type Login struct {
	Rule          string // the route or rule that allowed the login
	Auth          string // "local" or "passthrough"
	Upstream      string // the partner, scheme://user@host:port/dir (no secrets)
	UpstreamProto string // "sftp", "ftps", "ftpes"
	ServerVersion string // the partner's SSH version string or FTP greeting
	HostKey       string // SHA256 fingerprint of the host key or certificate
	KeyExchange   string // SSH key exchange
	Cipher        string // SSH cipher (client to server) or TLS cipher suite
	MAC           string // SSH MAC (empty for AEAD ciphers)
	TLSVersion    string // for FTPS partners
	PeerSubject   string // the partner certificate's subject
	Insecure      bool   // a plain-FTP partner allowed by a warn rule
}

// Login records a successful login with the upstream connection's facts.
func (e *Emitter) Login(s Session, l Login) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeLogin, &s)
	r.str("rule", l.Rule)
	r.str("auth", l.Auth)
	r.str("upstream", l.Upstream)
	r.str("upstream_protocol", l.UpstreamProto)
	r.strOmit("server_version", l.ServerVersion)
	r.strOmit("host_key", l.HostKey)
	r.strOmit("kex", l.KeyExchange)
	r.strOmit("cipher", l.Cipher)
	r.strOmit("mac_alg", l.MAC)
	r.strOmit("tls_version", l.TLSVersion)
	r.strOmit("peer_subject", l.PeerSubject)
	if l.Insecure {
		r.bool("insecure", true)
	}
	e.emitLocked()
}

// LoginFailure records a refused login with the rule that decided and the
// reason. The password is not a parameter, so it cannot be recorded.
func (e *Emitter) LoginFailure(s Session, rule, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.beginSessionLocked(TypeLoginFailure, &s)
	r.str("rule", rule)
	r.str("reason", reason)
	e.emitLocked()
}
