package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
)

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read
// at once (the miekg/dns shutdown trick).
var aLongTimeAgo = time.Unix(1, 0)

// session is one control connection. Fields without a note are owned by
// the serve goroutine; the transfer goroutine reads them only after they
// were captured at transfer start.
type session struct {
	srv     *Server
	conn    net.Conn // immutable
	id      string   // immutable
	remote  netip.AddrPort
	local   netip.AddrPort
	log     zerolog.Logger
	started time.Time
	ctx     context.Context // ends when the session ends
	cancel  context.CancelFunc

	lr  *lineReader
	wmu sync.Mutex    // guards bw: replies come from serve and from transfers
	bw  *bufio.Writer // guarded by wmu

	smu     sync.Mutex   // serialises state transitions and their hook calls
	state   atomic.Int32 // SessionState
	closing atomic.Bool  // Shutdown asked this session to end
	dmu     sync.Mutex   // serialises read-deadline changes

	user       string
	loggedIn   bool
	decision   policy.Decision
	up         translate.Upstream
	upInfo     translate.ConnInfo
	upLost     atomic.Bool // the upstream connection broke; next use ends the session
	cwd        string
	typ        byte // 'A' or 'I'
	rest       int64
	renameFrom string
	epsvAll    bool
	data       *dataSetup
	site       []string
	filetype   string // SITE FILETYPE in force; "" or "SEQ" for files
	tls        bool   // the control connection is protected (AUTH TLS)
	pbsz       bool   // PBSZ was sent after AUTH TLS
	protP      bool   // data connections are protected (PROT P)
	quit       bool
	endReason  string

	xmu  sync.Mutex
	xfer *transfer // guarded by xmu; the running transfer or nil

	commands  int
	transfers atomic.Int64
	bytesIn   atomic.Int64
	bytesOut  atomic.Int64
}

func (srv *Server) newSession(c net.Conn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		srv:     srv,
		conn:    c,
		id:      fmt.Sprintf("%s-%d", srv.idPrefixLocked(), srv.nextID.Add(1)),
		started: time.Now(),
		ctx:     ctx,
		cancel:  cancel,
		bw:      bufio.NewWriterSize(c, 4096),
		typ:     'A', // RFC 959 default; the z/OS client relies on it
	}
	s.remote = addrPortOf(c.RemoteAddr())
	s.local = addrPortOf(c.LocalAddr())
	s.lr = newLineReader(bufio.NewReaderSize(c, 4096), srv.maxLine())
	s.log = srv.Logger.With().Str("session", s.id).Str("remote", s.remote.String()).Logger()
	return s
}

func (srv *Server) idPrefixLocked() string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.idPrefix
}

// addrPortOf returns a TCP address with IPv4-mapped IPv6 addresses
// unmapped, so that zone matching and the PORT check see plain IPv4.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *session) setState(st SessionState) { s.transition(-1, st) }

// transition moves the session to state to, if it is in state from (any
// state when from is negative). Closed is final. The hook is called under
// smu, so it sees the transitions in the order they happened.
func (s *session) transition(from, to SessionState) {
	s.smu.Lock()
	defer s.smu.Unlock()
	cur := SessionState(s.state.Load())
	if cur == StateClosed || (from >= 0 && cur != from) {
		return
	}
	s.state.Store(int32(to))
	if h := s.srv.SessionState; h != nil {
		h(s.id, to)
	}
}

func (s *session) recordSession() audit.Session {
	return audit.Session{ID: s.id, Client: s.remote.String(), User: s.user,
		Zone: s.decision.Zone, Insecure: s.decision.Insecure}
}

// refuse answers a connection the server will not serve and closes it.
// The refusal is recorded: limits are visible in the trail.
func (s *session) refuse(r reply) {
	s.srv.Audit.SessionEnd(s.recordSession(), audit.SessionEnd{Reason: "refused: " + r.text()})
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	s.reply(r)
	s.conn.Close()
	s.cancel()
}

// serve runs the session until the client quits, the connection breaks,
// a timeout fires or the server shuts down.
func (s *session) serve() {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("panic", fmt.Sprint(v)).Str("stack", string(debug.Stack())).Msg("session panic")
			s.reply(rep(codeUnavailable, "Internal error, closing connection."))
			s.endReason = "internal error"
		}
		s.finish()
	}()
	setOOBInline(s.conn)
	if sc := s.srv.SessionCounter; sc != nil {
		// Shared with the other replicas; asked here, not in the accept
		// loop, so a slow store holds up only this connection.
		ok, release, err := sc.Acquire(s.remote.Addr(), s.srv.maxSessionsPerAddr())
		switch {
		case err != nil:
			s.log.Error().Err(err).Msg("session counter unavailable: connection refused")
			s.srv.Audit.LoginFailure(s.recordSession(), "limits", "session counter unavailable: "+err.Error())
			s.reply(rep(codeUnavailable, "Service not available, try again later."))
			s.endReason = "session counter unavailable"
			return
		case !ok:
			s.reply(rep(codeUnavailable, "Too many sessions from your address, try again later."))
			s.endReason = "too many sessions from the address"
			return
		}
		defer release()
	}
	s.srv.observer().SessionStarted()
	s.setState(StateNew)
	s.srv.Audit.SessionStart(s.recordSession(), s.local.String())
	greeting := s.srv.Greeting
	if greeting == "" {
		greeting = "ftpgate ready."
	}
	s.reply(rep(codeReady, greeting))

	for !s.quit {
		s.armReadDeadline()
		line, err := s.lr.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				r := rep(codeSyntax, "Command line too long.")
				s.reply(r)
				s.srv.Audit.Command(s.recordSession(), "", "", r.code, r.text(), 0)
				continue
			}
			s.readFailed(err)
			return
		}
		s.commands++
		verb, arg := parseCommand(line)
		s.dispatch(verb, arg)
	}
	if s.endReason == "" {
		s.endReason = "quit"
	}
}

// readFailed ends the session after a failed control read: shutdown, a
// timeout (421 with the reason) or a client that went away (no reply).
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case s.closing.Load():
		s.waitTransfer()
		s.reply(rep(codeUnavailable, "Service shutting down, closing control connection."))
		s.endReason = "shutdown"
	case errors.As(err, &ne) && ne.Timeout():
		if s.loggedIn {
			s.reply(rep(codeUnavailable, "Idle timeout, closing control connection."))
			s.endReason = "idle timeout"
		} else {
			s.reply(rep(codeUnavailable, "Login timeout, closing control connection."))
			s.endReason = "login timeout"
		}
	default:
		s.endReason = "client closed"
	}
}

// finish releases everything the session holds and writes its last
// record. Runs once, on the serve goroutine.
func (s *session) finish() {
	s.setState(StateClosed)
	s.abortTransfer(errSessionEnded, 2*time.Second)
	s.cancel()
	s.data.close()
	s.conn.Close()
	if s.up != nil {
		s.up.Close()
	}
	s.srv.trackSession(s, false)
	result := "refused"
	if s.loggedIn {
		result = "ok"
	}
	s.srv.observer().SessionEnded(result)
	s.srv.Audit.SessionEnd(s.recordSession(), audit.SessionEnd{
		Reason:        s.endReason,
		Commands:      s.commands,
		Transfers:     int(s.transfers.Load()),
		BytesIn:       s.bytesIn.Load(),
		BytesOut:      s.bytesOut.Load(),
		Duration:      time.Since(s.started),
		Upstream:      s.upInfo.Endpoint,
		UpstreamProto: s.upInfo.Protocol,
		HostKey:       s.upInfo.HostKey,
	})
}

// armReadDeadline sets the control connection's read deadline from the
// session's state: past when shutting down, none while a transfer runs
// (the client is busy on the data connection), the login deadline before
// login, the idle timeout after.
func (s *session) armReadDeadline() {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	var d time.Time
	switch {
	case s.closing.Load() && s.currentTransfer() == nil:
		d = aLongTimeAgo
	case s.currentTransfer() != nil:
	case !s.loggedIn:
		if t := s.srv.loginTimeout(); t > 0 {
			d = s.started.Add(t)
		}
	default:
		if t := s.srv.idleTimeout(); t > 0 {
			d = time.Now().Add(t)
		}
	}
	s.conn.SetReadDeadline(d)
}

// wakeForShutdown marks the session as closing and, unless it is
// transferring, wakes its blocked read so it can say 421 and go.
func (s *session) wakeForShutdown() {
	s.closing.Store(true)
	if s.currentTransfer() == nil {
		s.dmu.Lock()
		s.conn.SetReadDeadline(aLongTimeAgo)
		s.dmu.Unlock()
	}
}

// abort closes the session's connections at once (Server.Close, or the
// end of Shutdown's grace period).
func (s *session) abort() {
	s.closing.Store(true)
	if x := s.currentTransfer(); x != nil {
		x.cancel()
	}
	s.conn.Close()
}

func (s *session) currentTransfer() *transfer {
	s.xmu.Lock()
	defer s.xmu.Unlock()
	return s.xfer
}

// reply writes r on the control connection. Safe for concurrent use.
func (s *session) reply(r reply) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writeReplyLocked(r)
}

// writeReplyLocked writes r; the caller holds wmu.
func (s *session) writeReplyLocked(r reply) {
	s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := r.writeTo(s.bw); err != nil {
		s.log.Debug().Err(err).Msg("control write failed")
		s.bw.Reset(s.conn)
	}
}

// maxRecordedVerb bounds how much of an unknown verb goes into a record:
// the client chose it.
const maxRecordedVerb = 16

// dispatch runs one command through the command table: unknown verbs get
// 502, commands that need a login get 530 before it, bad arguments 501.
// Every command except a started transfer is recorded here; a transfer
// records its command with its final reply.
func (s *session) dispatch(verb, arg string) {
	start := time.Now()
	spec, known := commands[verb]
	if known && !spec.duringTransfer {
		s.waitTransfer()
	}
	if verb != "RNTO" && verb != "RNFR" {
		s.renameFrom = ""
	}
	var r reply
	fwd := s.forwarder()
	switch {
	case s.tlsRequired(verb):
		r = rep(codeNotLoggedIn, "TLS required: send AUTH TLS first.")
	case fwd != nil && !localVerbs[verb] && !(verb == "STAT" && s.currentTransfer() != nil):
		switch {
		case strings.ContainsRune(arg, 0):
			r = rep(codeSyntaxArg, "NUL in argument.")
		case filetypeBlocks[verb] && s.filetype != "" && !s.decision.SiteFiletypeAllowed(s.filetype):
			r = rep(codeFileUnavailable, "FILETYPE="+s.filetype+" is in force and not allowed through ftpgate; send SITE FILETYPE=SEQ.")
		case s.upLost.Load():
			r = rep(codeUnavailable, "Connection to the partner was lost, closing control connection.")
		case s.policyRefuses(verb, arg, &r):
		default:
			s.waitTransfer()
			r = s.forward(fwd, verb, arg)
		}
	case !known:
		if len(verb) > maxRecordedVerb {
			verb = verb[:maxRecordedVerb]
		}
		r = rep(codeNotImplemented, "Command not implemented.")
	case spec.needsLogin && !s.loggedIn:
		r = rep(codeNotLoggedIn, "Please login with USER and PASS.")
	case spec.arg == argNone && arg != "":
		r = rep(codeSyntaxArg, verb+" takes no argument.")
	case spec.arg == argRequired && strings.TrimSpace(arg) == "":
		r = rep(codeSyntaxArg, verb+" needs an argument.")
	case strings.ContainsRune(arg, 0):
		r = rep(codeSyntaxArg, "NUL in argument.")
	case filetypeBlocks[verb] && s.filetype != "" && s.filetype != "SEQ":
		r = rep(codeFileUnavailable, "FILETYPE="+s.filetype+" is in force and not allowed through ftpgate; send SITE FILETYPE=SEQ.")
	case s.loggedIn && s.policyRefuses(verb, arg, &r):
	case spec.needsLogin && s.upLost.Load() && spec.usesUpstream:
		r = rep(codeUnavailable, "Connection to the partner was lost, closing control connection.")
		s.quit, s.endReason = true, "upstream lost"
	default:
		r = spec.run(s, arg)
	}
	if r.isZero() {
		return
	}
	s.reply(r)
	s.srv.Audit.Command(s.recordSession(), verb, arg, r.code, r.text(), time.Since(start))
	if r.code == codeUnavailable {
		s.quit = true
		if s.endReason == "" {
			s.endReason = r.text()
		}
	}
}

// opCtx bounds one upstream operation.
func (s *session) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.srv.upstreamTimeout())
}
