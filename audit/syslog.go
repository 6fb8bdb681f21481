package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SyslogOptions configures a SyslogSink. NewSyslogSink copies it (and
// clones TLS).
type SyslogOptions struct {
	// Addr is the collector's host:port. Required.
	Addr string
	// TLS, when not nil, wraps the connection in TLS (RFC 5425). Its
	// ServerName defaults to Addr's host, as tls.Dialer does. Nil means
	// plain TCP (RFC 6587).
	TLS *tls.Config
	// AppName is the APP-NAME field. Empty means "ftpgate".
	AppName string
	// Hostname is the HOSTNAME field. Empty means os.Hostname(), or "-"
	// when that fails or is not a valid RFC 5424 HOSTNAME.
	Hostname string
	// Facility is the syslog facility of every message, sent with
	// severity 6 (informational). Zero means 13, "log audit".
	Facility int
	// DialTimeout bounds one connection attempt, TLS handshake included.
	// Zero means 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one message. Zero means 5 s; negative
	// means none.
	WriteTimeout time.Duration
	// Retries is how many connection attempts one Write makes when the
	// connection is down, before it gives up. Zero means 2.
	Retries int
	// MaxBackoff caps the pause after a Write gave up: during the pause,
	// Writes fail at once instead of dialing, so a collector that is down
	// costs the Emitter (which writes under its lock) a dial timeout now
	// and then, not on every record. The pause starts at 1 s and doubles.
	// Zero means 30 s.
	MaxBackoff time.Duration
	// Dial opens the TCP connection. Nil means a net.Dialer. It is a seam
	// for tests and for dialing through a proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now gives the TIMESTAMP field and drives the backoff. Nil means
	// time.Now.
	Now func() time.Time
}

// syslogSeverityInfo is RFC 5424's severity 6, "informational": records are
// events, not alarms.
const syslogSeverityInfo = 6

// syslogFacilityAudit is RFC 5424's facility 13, "log audit".
const syslogFacilityAudit = 13

// SyslogSink sends records to a syslog collector (a SIEM) as RFC 5424
// messages over TCP or TLS, framed by octet counting (RFC 6587 section
// 3.4.1):
//
//	LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - MSG
//
// MSG is the record's JSON, PROCID, MSGID and STRUCTURED-DATA are "-".
//
// TCP syslog has no acknowledgements: a record written into a connection
// the collector has just closed can be lost without an error. The sink
// watches each connection for the collector's close and reconnects before
// the next write, which narrows that window to the moment of the close;
// Verify over the file sink, and comparing seqs with the collector, finds
// what remains.
type SyslogSink struct {
	opt    SyslogOptions // immutable, defaults applied
	header []byte        // "<PRI>1 " and, after the timestamp, " HOST APP - - - "; immutable
	prefix int           // len of "<PRI>1 " in header

	mu      sync.Mutex // guards the fields below
	conn    *syslogConn
	closed  bool
	lastErr error         // why the last Write gave up
	backoff time.Duration // current pause after giving up
	retryAt time.Time     // no dialing before this
	msg     []byte
	frame   []byte
}

var _ Sink = (*SyslogSink)(nil)

// syslogConn is one connection and the goroutine that notices when the
// collector closes it.
type syslogConn struct {
	c    net.Conn
	dead atomic.Bool   // set by watchSyslogConn when a read fails
	done chan struct{} // closed when watchSyslogConn returns
}

// NewSyslogSink validates opt and connects once, within ctx: a collector
// that cannot be reached at start-up is an error, not a silent gap. ctx
// bounds that first connection only; later reconnects use DialTimeout.
func NewSyslogSink(ctx context.Context, opt SyslogOptions) (*SyslogSink, error) {
	if _, _, err := net.SplitHostPort(opt.Addr); err != nil {
		return nil, fmt.Errorf("audit: syslog address %q: %w", opt.Addr, err)
	}
	if opt.TLS != nil {
		opt.TLS = opt.TLS.Clone()
	}
	if opt.AppName == "" {
		opt.AppName = "ftpgate"
	}
	if !validHeaderField(opt.AppName, 48) {
		return nil, fmt.Errorf("audit: syslog APP-NAME %q: want 1 to 48 printable ASCII characters", opt.AppName)
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
		if !validHeaderField(opt.Hostname, 255) {
			opt.Hostname = "-"
		}
	}
	if !validHeaderField(opt.Hostname, 255) {
		return nil, fmt.Errorf("audit: syslog HOSTNAME %q: want 1 to 255 printable ASCII characters", opt.Hostname)
	}
	if opt.Facility == 0 {
		opt.Facility = syslogFacilityAudit
	}
	if opt.Facility < 0 || opt.Facility > 23 {
		return nil, fmt.Errorf("audit: syslog facility %d: want 0 to 23", opt.Facility)
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 5 * time.Second
	}
	if opt.Retries <= 0 {
		opt.Retries = 2
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	if opt.Dial == nil {
		d := &net.Dialer{}
		opt.Dial = d.DialContext
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &SyslogSink{opt: opt}
	s.header = append(s.header, '<')
	s.header = strconv.AppendInt(s.header, int64(opt.Facility*8+syslogSeverityInfo), 10)
	s.header = append(s.header, ">1 "...)
	s.prefix = len(s.header)
	s.header = append(s.header, ' ')
	s.header = append(s.header, opt.Hostname...)
	s.header = append(s.header, ' ')
	s.header = append(s.header, opt.AppName...)
	s.header = append(s.header, " - - - "...)

	ctx, cancel := context.WithTimeout(ctx, opt.DialTimeout)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return s, nil
}

// validHeaderField reports whether v is a valid RFC 5424 header field:
// 1 to max characters of PRINTUSASCII (33 to 126).
func validHeaderField(v string, max int) bool {
	if len(v) == 0 || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 33 || v[i] > 126 {
			return false
		}
	}
	return true
}

// String names the sink in errors.
func (s *SyslogSink) String() string { return "syslog " + s.opt.Addr }

// dial connects, with TLS if configured, and starts the watcher.
func (s *SyslogSink) dial(ctx context.Context) (*syslogConn, error) {
	c, err := s.opt.Dial(ctx, "tcp", s.opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("audit: syslog %s: %w", s.opt.Addr, err)
	}
	if s.opt.TLS != nil {
		cfg := s.opt.TLS
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(s.opt.Addr)
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("audit: syslog %s: TLS handshake: %w", s.opt.Addr, err)
		}
		c = tc
	}
	sc := &syslogConn{c: c, done: make(chan struct{})}
	go watchSyslogConn(sc)
	return sc, nil
}

// watchSyslogConn reads from a collector connection until it fails. A
// collector sends nothing, so a read that returns means the collector
// closed the connection (or TLS sent something we ignore, such as session
// tickets, which are read and dropped here). It ends when the connection
// is closed.
func watchSyslogConn(sc *syslogConn) {
	defer close(sc.done)
	_, _ = io.Copy(io.Discard, sc.c)
	sc.dead.Store(true)
}

func (sc *syslogConn) close() {
	sc.c.Close()
	<-sc.done
}

// Write sends one record. When the connection is down it reconnects (up to
// Retries attempts) and sends the record on the new connection; after that
// it gives up, and Writes fail at once until the backoff pause ends.
func (s *SyslogSink) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("audit: syslog %s: %w", s.opt.Addr, net.ErrClosed)
	}
	s.build(line)
	if s.conn != nil {
		if !s.conn.dead.Load() {
			err := s.send()
			if err == nil {
				return nil
			}
			s.lastErr = err
		}
		s.conn.close()
		s.conn = nil
	}
	now := s.opt.Now()
	if now.Before(s.retryAt) {
		return fmt.Errorf("audit: syslog %s: down, next attempt in %s: %w", s.opt.Addr, s.retryAt.Sub(now).Round(time.Millisecond), s.lastErr)
	}
	for range s.opt.Retries {
		ctx, cancel := context.WithTimeout(context.Background(), s.opt.DialTimeout)
		c, err := s.dial(ctx)
		cancel()
		if err != nil {
			s.lastErr = err
			continue
		}
		s.conn = c
		if err := s.send(); err != nil {
			s.lastErr = err
			s.conn.close()
			s.conn = nil
			continue
		}
		s.backoff = 0
		return nil
	}
	s.backoff = min(max(2*s.backoff, time.Second), s.opt.MaxBackoff)
	s.retryAt = s.opt.Now().Add(s.backoff)
	return fmt.Errorf("audit: syslog %s: gave up after %d attempts: %w", s.opt.Addr, s.opt.Retries, s.lastErr)
}

// build frames line into s.frame: LEN SP header-with-timestamp MSG.
func (s *SyslogSink) build(line []byte) {
	s.msg = append(s.msg[:0], s.header[:s.prefix]...)
	s.msg = s.opt.Now().UTC().AppendFormat(s.msg, timeLayout)
	s.msg = append(s.msg, s.header[s.prefix:]...)
	s.msg = append(s.msg, line...)
	s.frame = strconv.AppendInt(s.frame[:0], int64(len(s.msg)), 10)
	s.frame = append(s.frame, ' ')
	s.frame = append(s.frame, s.msg...)
}

// send writes s.frame to the current connection.
func (s *SyslogSink) send() error {
	c := s.conn.c
	if s.opt.WriteTimeout > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
	}
	if _, err := c.Write(s.frame); err != nil {
		return fmt.Errorf("audit: syslog %s: %w", s.opt.Addr, err)
	}
	return nil
}

// Close closes the connection. Later Writes fail with net.ErrClosed.
func (s *SyslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn == nil {
		return nil
	}
	err := s.conn.c.Close()
	<-s.conn.done
	s.conn = nil
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("audit: syslog %s: %w", s.opt.Addr, err)
	}
	return nil
}

// connected reports whether the sink holds a connection it believes alive.
// For tests.
func (s *SyslogSink) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil && !s.conn.dead.Load()
}
