package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/proxy"
)

// scaleConfig configures running several replicas behind a TCP load
// balancer: the PROXY protocol from the balancer, and the failed-login
// lockouts shared through Redis. The zero value (nothing set) is one
// replica on its own.
type scaleConfig struct {
	// ProxyProtocolFrom lists the load balancers (IP addresses or CIDR
	// prefixes, comma-separated). A connection from one of them must open
	// with a PROXY protocol header (v1 or v2), which gives the client's
	// address; one without is closed. A control connection from anywhere
	// else must not send one (that would be a client claiming another
	// address): it is closed when it does. Empty: no PROXY protocol.
	ProxyProtocolFrom string `env:"PROXY_PROTOCOL_FROM"`
	// ProxyHeaderTimeout bounds the wait for a load balancer's header.
	ProxyHeaderTimeout time.Duration `env:"PROXY_PROTOCOL_TIMEOUT" envDefault:"5s"`
	// RedisURL, redis://[user:password@]host:port/db or rediss:// for
	// TLS, shares the lockouts between replicas. Empty: each replica
	// keeps its own in memory. The password is never logged.
	RedisURL string `env:"REDIS_URL"`
	// RedisPrefix starts every key ftpgate writes.
	RedisPrefix string `env:"REDIS_PREFIX" envDefault:"ftpgate:"`
	// RedisTimeout bounds each Redis round trip; a login waits at most
	// this long for the lockout check.
	RedisTimeout time.Duration `env:"REDIS_TIMEOUT" envDefault:"500ms"`
}

// check validates the scale-out settings. Its errors never hold the Redis
// password.
func (c scaleConfig) check() error {
	if _, err := c.balancers(); err != nil {
		return err
	}
	if c.ProxyHeaderTimeout <= 0 {
		return errors.New("FTPGATE_PROXY_PROTOCOL_TIMEOUT: must be positive")
	}
	if c.RedisURL != "" {
		if _, err := c.redisOptions(); err != nil {
			return err
		}
		if c.RedisTimeout <= 0 {
			return errors.New("FTPGATE_REDIS_TIMEOUT: must be positive")
		}
		if c.RedisPrefix == "" {
			return errors.New("FTPGATE_REDIS_PREFIX: must not be empty")
		}
	}
	return nil
}

// balancers parses FTPGATE_PROXY_PROTOCOL_FROM.
func (c scaleConfig) balancers() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(c.ProxyProtocolFrom, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("FTPGATE_PROXY_PROTOCOL_FROM: %q is not an IP address or CIDR prefix", f)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// redactedRedisURL is FTPGATE_REDIS_URL with its password replaced, for
// logs and errors.
func (c scaleConfig) redactedRedisURL() string {
	u, err := url.Parse(c.RedisURL)
	if err != nil {
		return "(unparsable URL, not shown)"
	}
	return u.Redacted()
}

// redisPassword returns the password in FTPGATE_REDIS_URL, if any.
func (c scaleConfig) redisPassword() string {
	u, err := url.Parse(c.RedisURL)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// redact removes the Redis password from an error text.
func (c scaleConfig) redact(s string) string {
	if pw := c.redisPassword(); pw != "" {
		s = strings.ReplaceAll(s, pw, "xxxxx")
		// The %-escaped form, as in the URL: UserPassword("", pw) is ":" + it.
		if esc := url.UserPassword("", pw).String()[1:]; esc != pw {
			s = strings.ReplaceAll(s, esc, "xxxxx")
		}
	}
	return s
}

// redisOptions parses FTPGATE_REDIS_URL and sets what a lockout check
// needs: short timeouts, one retry, RESP2 (every Redis version and its
// look-alikes speak it) and none of go-redis's optional handshakes.
func (c scaleConfig) redisOptions() (*redis.Options, error) {
	if _, err := url.Parse(c.RedisURL); err != nil {
		// url.Parse's error repeats the whole URL, password included.
		return nil, errors.New("FTPGATE_REDIS_URL: not a valid URL (the value is not shown: it may hold a password)")
	}
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("FTPGATE_REDIS_URL %s: %s", c.redactedRedisURL(), c.redact(err.Error()))
	}
	if opt.Protocol == 0 {
		opt.Protocol = 2
	}
	opt.DisableIdentity = true
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = c.RedisTimeout, c.RedisTimeout, c.RedisTimeout
	opt.PoolTimeout = c.RedisTimeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries, opt.DialerRetries = 1, 1
	return opt, nil
}

// scaleOut applies the scale-out settings to a server built by
// config.server and its control listener: it returns the listener to
// serve (reading PROXY headers from the balancers), sets the server's
// passive listener wrapper and, with FTPGATE_REDIS_URL, replaces the
// in-memory lockouts by shared ones. stop closes what it opened; call it
// after the server has stopped.
func (c config) scaleOut(srv *proxy.Server, ln net.Listener, log zerolog.Logger) (_ net.Listener, stop func(), _ error) {
	s := c.Scale
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	stop = func() {}
	lbs, _ := s.balancers()
	if len(lbs) > 0 {
		ln = newLBListener(ln, lbs, s.ProxyHeaderTimeout, true, log)
		srv.WrapPassiveListener = func(pl net.Listener) net.Listener {
			return newLBListener(pl, lbs, s.ProxyHeaderTimeout, false, log)
		}
		log.Info().Str("proxy_protocol_from", s.ProxyProtocolFrom).Msg("PROXY protocol required from the load balancers")
	}
	if s.RedisURL == "" {
		return ln, stop, nil
	}
	if c.LockoutFailures <= 0 {
		log.Warn().Msg("FTPGATE_REDIS_URL is set but lockouts are off (FTPGATE_LOCKOUT_FAILURES=0): Redis is not used")
		return ln, stop, nil
	}
	opt, _ := s.redisOptions()
	redis.SetLogger(redisLogger{log: log, scale: s})
	client := redis.NewClient(opt)
	counter := &proxy.RedisSessionCounter{Client: client, Prefix: s.RedisPrefix, Timeout: s.RedisTimeout, Logger: log}
	srv.SessionCounter = counter
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { counter.Run(runCtx); close(ran) }()
	stop = func() { stopRun(); <-ran; client.Close() }
	srv.Limiter = &proxy.RedisLimiter{
		Client: client, Prefix: s.RedisPrefix, Timeout: s.RedisTimeout, Logger: log,
		MaxFailures: c.LockoutFailures, Window: c.LockoutWindow, Lockout: c.Lockout, MaxLockout: c.LockoutMax,
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.RedisTimeout)
	defer cancel()
	ev := log.Info()
	if err := client.Ping(ctx).Err(); err != nil {
		ev = log.Error().Str("error", s.redact(err.Error())).Str("effect", "logins are refused (421) until Redis answers")
	}
	ev.Str("redis", s.redactedRedisURL()).Str("prefix", s.RedisPrefix).Msg("failed-login lockouts shared through Redis")
	return ln, stop, nil
}

// redisLogger sends go-redis's own messages (failed dials, pool trouble)
// to the diagnostic log at debug level: the limiter reports the errors
// that matter itself, once per login.
type redisLogger struct {
	log   zerolog.Logger
	scale scaleConfig
}

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Str("library", "go-redis").Msg(l.scale.redact(fmt.Sprintf(format, v...)))
}

// errSpoofedHeader closes a control connection that sends a PROXY header
// without coming from a load balancer.
var errSpoofedHeader = errors.New("PROXY protocol header from an address that is not a load balancer")

// lbListener accepts connections from load balancers that speak the
// PROXY protocol and, on the same port, directly from anyone else.
//
// The header of a balancer's connection is read in a goroutine of its
// own, up to the header timeout, so a balancer that connects and sends
// nothing holds up no other connection: FTP servers speak first, and
// proxy.Server reads the client address as soon as it accepts.
type lbListener struct {
	net.Listener // the raw listener, for Addr
	pp           *proxyproto.Listener
	control      bool // a control listener: check direct connections for a header
	log          zerolog.Logger

	conns chan net.Conn // connections ready to serve
	errs  chan error    // accept errors of the raw listener
	done  chan struct{} // closed by Close
	once  sync.Once

	mu       sync.Mutex
	deadline time.Time                     // guarded by mu; for proxy's passive accept
	pending  map[*proxyproto.Conn]struct{} // guarded by mu: headers being read
}

// newLBListener wraps ln. Connections from lbs must carry a PROXY header
// (v1 or v2, TCP over IPv4 or IPv6, or LOCAL for the balancer's health
// checks), read within timeout. For the others: on a control listener a
// header is refused; on a passive listener the bytes are the client's data
// and are passed on untouched (a header from there is never read, so it
// cannot change the client's address).
func newLBListener(ln net.Listener, lbs []netip.Prefix, timeout time.Duration, control bool, log zerolog.Logger) *lbListener {
	l := &lbListener{
		Listener: ln,
		control:  control,
		log:      log,
		conns:    make(chan net.Conn),
		errs:     make(chan error),
		done:     make(chan struct{}),
	}
	l.pp = &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: timeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if fromBalancer(o.Upstream, lbs) {
				return proxyproto.REQUIRE, nil
			}
			// SKIP hands over the raw connection: go-proxyproto's REJECT
			// would wait for the client's first bytes, which an FTP
			// client sends only after our greeting.
			return proxyproto.SKIP, nil
		},
		ValidateHeader: validateHeader,
	}
	go l.acceptLoop()
	return l
}

func fromBalancer(a net.Addr, lbs []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range lbs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// validateHeader accepts LOCAL (health checks) and PROXY for TCP over
// IPv4 or IPv6; UDP and Unix-socket headers describe no FTP client.
func validateHeader(h *proxyproto.Header) error {
	if h.Command.IsLocal() {
		return nil
	}
	if tp := h.TransportProtocol; !tp.IsStream() || !(tp.IsIPv4() || tp.IsIPv6()) {
		return fmt.Errorf("PROXY header for transport %#x; want TCP over IPv4 or IPv6", byte(tp))
	}
	if _, ok := h.SourceAddr.(*net.TCPAddr); !ok {
		return errors.New("PROXY header without a TCP source address")
	}
	return nil
}

func (l *lbListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.pp.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-l.done:
				return
			}
			continue
		}
		delay = 0
		if pc, ok := c.(*proxyproto.Conn); ok {
			go l.handshake(pc)
			continue
		}
		var dc net.Conn = &directConn{Conn: c}
		if l.control {
			dc = &guardedConn{directConn: directConn{Conn: c}, log: l.log}
		}
		l.deliver(dc)
	}
}

// handshake reads a balancer's header and hands the connection on, or
// closes it when the header is missing or bad.
func (l *lbListener) handshake(pc *proxyproto.Conn) {
	if !l.track(pc, true) {
		pc.Close()
		return
	}
	hdr := pc.ProxyHeader()
	l.track(pc, false)
	if hdr == nil {
		_, err := pc.Read(nil) // the header's error, kept by the Conn
		if err == nil {
			err = errors.New("no header")
		}
		l.log.Warn().Str("load_balancer", pc.Raw().RemoteAddr().String()).Str("error", err.Error()).Str("listener", l.kind()).
			Msg("connection from a load balancer without a valid PROXY header: closed")
		pc.Close()
		return
	}
	l.deliver(&lbConn{Conn: pc})
}

// track adds pc to the connections whose header is being read, or
// removes it. It reports false when the listener is closed.
func (l *lbListener) track(pc *proxyproto.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.pending, pc)
		return true
	}
	select {
	case <-l.done:
		return false
	default:
	}
	if l.pending == nil {
		l.pending = make(map[*proxyproto.Conn]struct{})
	}
	l.pending[pc] = struct{}{}
	return true
}

func (l *lbListener) kind() string {
	if l.control {
		return "control"
	}
	return "passive"
}

func (l *lbListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection ready to serve.
func (l *lbListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	d := l.deadline
	l.mu.Unlock()
	var expired <-chan time.Time
	if !d.IsZero() {
		wait := time.Until(d)
		if wait <= 0 {
			return nil, l.opError(os.ErrDeadlineExceeded)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, l.opError(net.ErrClosed)
	case <-expired:
		return nil, l.opError(os.ErrDeadlineExceeded)
	}
}

func (l *lbListener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: err}
}

// SetDeadline bounds the Accept calls that start after it, as
// net.TCPListener's does; proxy uses it for passive connections.
func (l *lbListener) SetDeadline(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deadline = t
	return nil
}

// Close closes the raw listener and the connections accepted but not yet
// handed on.
func (l *lbListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		for pc := range l.pending {
			pc.Close()
		}
		l.mu.Unlock()
		err = l.Listener.Close()
	})
	return err
}

// lbConn is a connection through a load balancer: RemoteAddr is the
// client's address from the header.
type lbConn struct {
	*proxyproto.Conn
}

// LocalAddr is this replica's own address, not the balancer's from the
// header: passive listeners are opened on it.
func (c *lbConn) LocalAddr() net.Addr { return c.Raw().LocalAddr() }

// NetConn returns the TCP connection, as tls.Conn's does, so proxy can
// end a broken transfer with a reset.
func (c *lbConn) NetConn() net.Conn { return c.Raw() }

// CloseWrite sends FIN, for the end of a good transfer.
func (c *lbConn) CloseWrite() error { return closeWrite(c.Raw()) }

// directConn is a connection from a client that is not a load balancer.
type directConn struct {
	net.Conn
}

func (c *directConn) NetConn() net.Conn { return c.Conn }
func (c *directConn) CloseWrite() error { return closeWrite(c.Conn) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// guardedConn is a direct control connection. Its first bytes are checked
// for a PROXY header (the v1 "PROXY" or the v2 signature); one fails the
// read and so ends the session. No FTP command starts like either. Bytes
// that begin like a signature are held back until they differ from it, so
// a client that sends the start of one and waits is not answered.
type guardedConn struct {
	directConn
	log zerolog.Logger

	// Used only by the reading goroutine.
	decided bool
	held    []byte
}

var (
	sigV1 = []byte("PROXY")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

func (c *guardedConn) Read(b []byte) (int, error) {
	for !c.decided {
		if bytes.HasPrefix(c.held, sigV1) || bytes.HasPrefix(c.held, sigV2) {
			c.log.Warn().Str("remote", c.RemoteAddr().String()).Msg("PROXY protocol header from an address that is not a load balancer: connection closed")
			return 0, errSpoofedHeader
		}
		if !bytes.HasPrefix(sigV1, c.held) && !bytes.HasPrefix(sigV2, c.held) {
			c.decided = true
			break
		}
		var buf [len("\r\n\r\n\x00\r\nQUIT\n")]byte
		n, err := c.Conn.Read(buf[:len(buf)-len(c.held)])
		c.held = append(c.held, buf[:n]...)
		if err != nil {
			c.decided = true
			if len(c.held) == 0 {
				return 0, err
			}
			break
		}
	}
	if len(c.held) > 0 {
		n := copy(b, c.held)
		c.held = c.held[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
