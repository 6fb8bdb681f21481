// Package proxy is ftpgate's FTP front end: it accepts plain-FTP control
// connections (RFC 959 with the extensions of RFC 2389, 2428 and 3659),
// runs one session per connection, and carries each session's file
// operations to the partner through a translate.Upstream.
//
// Typical use:
//
//	srv := &proxy.Server{Dialer: &translate.SFTPDialer{}, Policy: current, Audit: em, Logger: log}
//	go srv.Serve(ln)
//	...
//	srv.Shutdown(ctx)
//
// The package does not decide who may log in or where a session goes (that
// is the policy package's job), does not know SFTP (translate does), and
// does not format records (audit does).
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("proxy: server closed")

// Server is an FTP proxy server. Set the exported fields, then call Serve.
// The fields must not be changed after Serve is called.
type Server struct {
	// Dialer opens upstream sessions. Required.
	Dialer translate.Dialer
	// Policy returns the policy in force; it is called once per login, so
	// a reload takes effect for new sessions only. Required.
	Policy func() *policy.Policy
	// Audit receives every record. Required.
	Audit *audit.Emitter
	// Logger receives diagnostics (not records). The zero Logger discards.
	Logger zerolog.Logger

	// TLSConfig, if set, offers AUTH TLS to clients (RFC 4217). It must
	// hold the certificate; it is used as given.
	TLSConfig *tls.Config
	// RequireTLS refuses USER and every other command but AUTH, FEAT,
	// HELP, NOOP, QUIT and SYST until the control connection is protected,
	// and refuses PROT C. It needs TLSConfig.
	RequireTLS bool

	// Greeting is the text of the 220 reply. Empty means "ftpgate ready".
	Greeting string

	// LoginTimeout bounds the time from connect to a completed login,
	// including the upstream login. Zero means 60 s; negative means none.
	LoginTimeout time.Duration
	// IdleTimeout closes a logged-in control connection that sends no
	// command for this long while no transfer runs (421). Zero means
	// 300 s, vsftpd's default; negative means none.
	IdleTimeout time.Duration
	// DataConnTimeout bounds opening a data connection: the client's
	// connect in passive mode, our connect in active mode. Zero means
	// 30 s.
	DataConnTimeout time.Duration
	// TransferIdleTimeout aborts a transfer (426) when no byte moved for
	// this long. Zero means 120 s, the z/OS client's own inactivity timer;
	// negative means none.
	TransferIdleTimeout time.Duration
	// UpstreamTimeout bounds each upstream operation other than a
	// transfer's data (stat, list, rename, ...). Zero means 60 s.
	UpstreamTimeout time.Duration
	// ProgressInterval is how often a running transfer writes a progress
	// record. Zero means 30 s; negative means never.
	ProgressInterval time.Duration
	// DisableTransferHash turns off the SHA-256 of each transfer's client
	// bytes in the transfer record. It is on by default: the hash is the
	// evidence of what the client sent or received.
	DisableTransferHash bool
	// LoginFailDelay is waited before a 530 for a refused login, to slow
	// down password guessing. Zero means 1 s; negative means none.
	LoginFailDelay time.Duration

	// MaxSessions limits concurrent control connections; connections
	// beyond it get 421 and are closed. Zero means 1000; negative means no
	// limit.
	MaxSessions int
	// MaxSessionsPerAddr limits concurrent control connections from one
	// client address; beyond it 421. Zero means 50; negative means no
	// limit.
	MaxSessionsPerAddr int
	// Limiter, if set, locks out addresses and users after repeated
	// failed logins.
	Limiter LoginLimiter
	// SessionCounter, if set, enforces MaxSessionsPerAddr across replicas
	// (the in-memory count still applies to this replica).
	SessionCounter SessionCounter
	// MaxLineBytes limits a control line; a longer line gets 500 and the
	// session goes on. Zero means 4096.
	MaxLineBytes int

	// PassivePorts is the range passive listeners use. The zero value
	// lets the kernel choose.
	PassivePorts PortRange
	// PassiveAddress is the IPv4 address advertised in 227 replies, for a
	// proxy behind NAT. The zero value advertises the control connection's
	// local address.
	PassiveAddress netip.Addr
	// WrapPassiveListener, if set, wraps every passive data listener, for
	// example to read a PROXY protocol header when passive connections
	// come through a load balancer, so the port-steal check sees the real
	// client address.
	WrapPassiveListener func(net.Listener) net.Listener
	// AllowForeignDataAddress lets PORT and EPRT name an address other
	// than the client's own. Off by default: allowing it opens the FTP
	// bounce attack (z/OS PORTCOMMANDIPADDR NOREDIRECT is the default's
	// model).
	AllowForeignDataAddress bool
	// AllowLowDataPorts lets PORT and EPRT name a port below 1024. Off by
	// default, as z/OS PORTCOMMANDPORT NOLOWPORTS.
	AllowLowDataPorts bool

	// Observer, if set, receives events for metrics.
	Observer Observer

	// SessionState, if set, is called when a session changes state. For
	// tests and metrics; it must not block.
	SessionState func(id string, state SessionState)

	mu        sync.Mutex
	listeners map[*net.Listener]struct{} // guarded by mu
	sessions  map[*session]struct{}      // guarded by mu
	perAddr   map[netip.Addr]int         // guarded by mu: sessions by client address
	idPrefix  string                     // guarded by mu; set with the first listener
	closing   atomic.Bool
	nextID    atomic.Uint64
}

// SessionState is the state of a session, in the order a session goes
// through them.
type SessionState int32

const (
	StateNew SessionState = iota
	StateAuthenticating
	StateReady
	StateTransferring
	StateClosed
)

func (s SessionState) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateAuthenticating:
		return "authenticating"
	case StateReady:
		return "ready"
	case StateTransferring:
		return "transferring"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

func (srv *Server) loginTimeout() time.Duration { return defDur(srv.LoginTimeout, 60*time.Second) }
func (srv *Server) idleTimeout() time.Duration  { return defDur(srv.IdleTimeout, 300*time.Second) }
func (srv *Server) dataConnTimeout() time.Duration {
	return defDur(srv.DataConnTimeout, 30*time.Second)
}
func (srv *Server) transferIdle() time.Duration {
	return defDur(srv.TransferIdleTimeout, 120*time.Second)
}
func (srv *Server) upstreamTimeout() time.Duration {
	return defDur(srv.UpstreamTimeout, 60*time.Second)
}
func (srv *Server) loginFailDelay() time.Duration { return defDur(srv.LoginFailDelay, time.Second) }
func (srv *Server) progressInterval() time.Duration {
	return defDur(srv.ProgressInterval, 30*time.Second)
}

func (srv *Server) maxSessions() int {
	if srv.MaxSessions == 0 {
		return 1000
	}
	return srv.MaxSessions
}

func (srv *Server) maxLine() int {
	if srv.MaxLineBytes > 0 {
		return srv.MaxLineBytes
	}
	return 4096
}

// defDur returns d, or def when d is zero; a negative d means "no limit"
// and is returned as 0.
func defDur(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Serve accepts control connections on l and serves each in its own
// goroutine. It always returns a non-nil error; after Shutdown or Close it
// is ErrServerClosed.
func (srv *Server) Serve(l net.Listener) error {
	if srv.Dialer == nil || srv.Policy == nil || srv.Audit == nil {
		return errors.New("proxy: Server needs Dialer, Policy and Audit")
	}
	if !srv.trackListener(&l, true) {
		return ErrServerClosed
	}
	defer srv.trackListener(&l, false)

	var delay time.Duration // backoff after temporary accept errors
	for {
		c, err := l.Accept()
		if err != nil {
			if srv.closing.Load() {
				return ErrServerClosed
			}
			if isTemporaryAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				srv.Logger.Warn().Err(err).Dur("retry_in", delay).Msg("accept error")
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s := srv.newSession(c)
		if ok, why := srv.trackSession(s, true); !ok {
			srv.Logger.Warn().Str("remote", s.remote.String()).Str("why", string(why)).Msg("connection refused by a session limit")
			go s.refuse(rep(codeUnavailable, string(why)))
			continue
		}
		go s.serve()
	}
}

// isTemporaryAccept reports the accept errors that pass with time: out of
// descriptors, a connection aborted before accept, a timeout.
func isTemporaryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, errEMFILE) || errors.Is(err, errENFILE) || errors.Is(err, errECONNABORTED)
}

func (srv *Server) trackListener(l *net.Listener, add bool) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !add {
		delete(srv.listeners, l)
		return true
	}
	if srv.closing.Load() {
		return false
	}
	if srv.listeners == nil {
		srv.listeners = make(map[*net.Listener]struct{})
	}
	if srv.idPrefix == "" {
		srv.idPrefix = randomHex(3)
	}
	srv.listeners[l] = struct{}{}
	return true
}

// errTooMany explains a refused connection.
type refusal string

func (srv *Server) trackSession(s *session, add bool) (ok bool, why refusal) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	a := s.remote.Addr()
	if !add {
		if _, tracked := srv.sessions[s]; tracked {
			delete(srv.sessions, s)
			if srv.perAddr[a]--; srv.perAddr[a] <= 0 {
				delete(srv.perAddr, a)
			}
		}
		return true, ""
	}
	if srv.sessions == nil {
		srv.sessions = make(map[*session]struct{})
		srv.perAddr = make(map[netip.Addr]int)
	}
	if m := srv.maxSessions(); m > 0 && len(srv.sessions) >= m {
		return false, "Too many sessions, try again later."
	}
	if m := srv.maxSessionsPerAddr(); m > 0 && srv.perAddr[a] >= m {
		return false, "Too many sessions from your address, try again later."
	}
	srv.sessions[s] = struct{}{}
	srv.perAddr[a]++
	return true, ""
}

func (srv *Server) maxSessionsPerAddr() int {
	if srv.MaxSessionsPerAddr == 0 {
		return 50
	}
	return srv.MaxSessionsPerAddr
}

// Shutdown stops accepting connections, tells idle sessions the service is
// closing (421), and waits for running transfers to end, up to ctx. When
// ctx ends first it closes the rest and returns ctx's error.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.closing.Store(true)
	srv.closeListeners()
	poll := 5 * time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if srv.wakeIdleSessions() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			srv.closeSessions()
			return ctx.Err()
		case <-timer.C:
			poll = min(2*poll, 500*time.Millisecond)
			timer.Reset(poll)
		}
	}
}

// Close stops the server at once: listeners and every session are closed,
// transfers are broken off.
func (srv *Server) Close() error {
	srv.closing.Store(true)
	srv.closeListeners()
	srv.closeSessions()
	return nil
}

func (srv *Server) closeListeners() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for l := range srv.listeners {
		(*l).Close()
	}
}

// wakeIdleSessions asks every session that is not transferring to close
// and returns how many sessions remain.
func (srv *Server) wakeIdleSessions() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for s := range srv.sessions {
		s.wakeForShutdown()
	}
	return len(srv.sessions)
}

func (srv *Server) closeSessions() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for s := range srv.sessions {
		s.abort()
	}
}

// ActiveSessions reports the number of open control connections.
func (srv *Server) ActiveSessions() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}
