// Package audit is the one place ftpgate's records come from: every
// command/reply pair, every transfer, every session start and end, and every
// refused login. Callers use the typed methods of Emitter and never build a
// record by hand, so masking a secret (the PASS argument) happens here and
// cannot be forgotten at a call site.
//
// Records are JSON lines written through zerolog, one object per line, with
// stable field names (see the README's record reference). A record's
// "record" field names its type.
package audit

import (
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Record types, the value of the "record" field.
const (
	TypeSessionStart = "session_start"
	TypeSessionEnd   = "session_end"
	TypeCommand      = "command"
	TypeTransfer     = "transfer"
	TypeLoginFailure = "login_failure"
)

// Emitter writes records. It is safe for concurrent use; one Emitter serves
// the whole process.
type Emitter struct {
	log zerolog.Logger
	seq atomic.Uint64
}

// New returns an Emitter that writes JSON lines to w. Writes to w are
// serialised by the emitter (zerolog writes each record with one Write).
func New(w io.Writer) *Emitter {
	return &Emitter{log: zerolog.New(zerolog.SyncWriter(w)).With().Timestamp().Logger()}
}

// Session identifies the FTP session a record belongs to.
type Session struct {
	ID     string // unique per process run
	Client string // client address, host:port
	User   string // the USER argument, once known
}

func (e *Emitter) event(typ string, s Session) *zerolog.Event {
	ev := e.log.Log().Str("record", typ).Uint64("seq", e.seq.Add(1)).Str("session", s.ID).Str("client", s.Client)
	if s.User != "" {
		ev = ev.Str("user", s.User)
	}
	return ev
}

// SessionStart records a new control connection, before the greeting.
func (e *Emitter) SessionStart(s Session, server string) {
	e.event(TypeSessionStart, s).Str("server", server).Send()
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

func (e *Emitter) SessionEnd(s Session, end SessionEnd) {
	e.event(TypeSessionEnd, s).
		Str("reason", end.Reason).
		Int("commands", end.Commands).
		Int("transfers", end.Transfers).
		Int64("bytes_in", end.BytesIn).
		Int64("bytes_out", end.BytesOut).
		Float64("duration_s", end.Duration.Seconds()).
		Str("upstream", end.Upstream).
		Str("upstream_protocol", end.UpstreamProto).
		Str("host_key", end.HostKey).
		Send()
}

// Command records one command and the reply ftpgate gave. The argument of
// PASS (and ACCT, which may carry an account password) is masked here.
func (e *Emitter) Command(s Session, verb, arg string, code int, text string, d time.Duration) {
	e.event(TypeCommand, s).
		Str("cmd", verb).
		Str("arg", MaskArg(verb, arg)).
		Int("code", code).
		Str("reply", text).
		Float64("duration_s", d.Seconds()).
		Send()
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

// Transfer describes a finished (or failed) data transfer.
type Transfer struct {
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
}

func (e *Emitter) Transfer(s Session, t Transfer) {
	rate := 0.0
	if sec := t.Duration.Seconds(); sec > 0 {
		rate = float64(t.BytesFTP) / sec
	}
	ev := e.event(TypeTransfer, s).
		Str("direction", t.Direction).
		Str("name", t.ClientName).
		Str("path", t.Path).
		Str("type", t.Type).
		Int64("offset", t.Offset).
		Int64("bytes_client", t.BytesFTP).
		Int64("bytes_upstream", t.BytesUp).
		Float64("duration_s", t.Duration.Seconds()).
		Float64("rate_bps", rate).
		Str("upstream", t.Upstream).
		Str("result", t.Result)
	if t.Error != "" {
		ev = ev.Str("error", t.Error)
	}
	ev.Send()
}

// LoginFailure records a refused login with the rule that decided and the
// reason. The password is not a parameter, so it cannot be recorded.
func (e *Emitter) LoginFailure(s Session, rule, reason string) {
	e.event(TypeLoginFailure, s).Str("rule", rule).Str("reason", reason).Send()
}
