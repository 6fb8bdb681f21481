package translate

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ftpgate/ftpgate/policy"
)

// FTPSDialer opens FTPS sessions to partners: "ftpes" routes with explicit
// TLS (AUTH TLS on the FTP port, RFC 4217) and "ftps" routes with implicit
// TLS (TLS from the first byte, port 990). Its zero value is ready to use
// with the defaults documented on each field. A dialer may be shared by
// many sessions; it holds no per-session state.
//
// A session never falls back to clear text: a partner that refuses AUTH
// TLS, PBSZ or PROT P is refused, and so is one whose certificate cannot be
// verified (*CertError). Every data connection is TLS-protected and
// resumes the control connection's TLS session, as vsftpd
// (require_ssl_reuse) and ProFTPD require.
type FTPSDialer struct {
	// DialTimeout bounds each TCP connect, of the control connection and
	// of every data connection. Zero means 10 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the whole login (greeting, AUTH TLS, the TLS
	// handshake, USER, PASS, PBSZ, PROT, FEAT) and each data connection's
	// TLS handshake. Zero means 20 s.
	HandshakeTimeout time.Duration
	// ReplyTimeout bounds the wait for each reply on the control
	// connection, including the final reply after a transfer's last byte
	// and the ABOR dialogue. Zero means 30 s.
	ReplyTimeout time.Duration
	// IdleTimeout bounds how long a data connection may move no byte in
	// either direction before the transfer fails. Zero means 60 s.
	IdleTimeout time.Duration
	// MaxListEntries caps a directory listing read by ReadDir. Zero means
	// 100,000.
	MaxListEntries int
	// Getenv resolves environment-variable secrets. Nil means os.Getenv.
	Getenv func(string) string
	// MaxTLSVersion caps the TLS version offered, as a crypto/tls
	// constant. Zero means the highest crypto/tls supports. It exists for
	// interoperability tests that must prove both TLS 1.2 and 1.3 work
	// against the same server; routes set only a minimum.
	MaxTLSVersion uint16
}

func (d *FTPSDialer) dialTimeout() time.Duration {
	return orDefault(d.DialTimeout, 10*time.Second)
}

func (d *FTPSDialer) handshakeTimeout() time.Duration {
	return orDefault(d.HandshakeTimeout, 20*time.Second)
}

func (d *FTPSDialer) replyTimeout() time.Duration {
	return orDefault(d.ReplyTimeout, 30*time.Second)
}

func (d *FTPSDialer) idleTimeout() time.Duration {
	return orDefault(d.IdleTimeout, 60*time.Second)
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

func (d *FTPSDialer) getenv() func(string) string {
	if d.Getenv != nil {
		return d.Getenv
	}
	return os.Getenv
}

// Dial connects to up, secures the control connection (AUTH TLS for
// ftpes, implicit TLS for ftps), verifies the partner's certificate, logs
// in with USER and PASS, and switches data protection on (PBSZ 0, PROT P).
// password is the client's password for passthrough routes; for routes
// with their own credentials it is empty and up.Password is used.
//
// The result implements Upstream, Forwarder and Describer.
//
// Errors wrap ErrUnreachable (no TCP connection), *CertError (which also
// matches *HostKeyError: the session must be refused), ErrAuth (the
// partner refused the login), ErrUnsupported (the partner refused AUTH TLS
// or PROT P: ftpgate never continues in clear text) or ErrConnLost.
func (d *FTPSDialer) Dial(ctx context.Context, up policy.Upstream, password Password) (Upstream, error) {
	if !up.IsFTPS() {
		return nil, fmt.Errorf("translate: scheme %q: %w", up.Scheme, ErrUnsupported)
	}
	addr := up.Address()
	if up.User == "" {
		return nil, fmt.Errorf("translate: no user name for %s: %w", addr, ErrAuth)
	}
	pw := string(password)
	if pw == "" && !up.Password.IsZero() {
		var err error
		if pw, err = up.Password.Resolve(d.getenv()); err != nil {
			return nil, fmt.Errorf("translate: upstream password: %w", err)
		}
	}
	if pw == "" {
		return nil, fmt.Errorf("translate: no password for %s: %w", addr, ErrAuth)
	}
	if err := checkArg(up.User); err != nil {
		return nil, fmt.Errorf("translate: user name: %w", err)
	}
	if checkArg(pw) != nil {
		return nil, fmt.Errorf("translate: the password holds CR, LF or NUL: %w", ErrAuth)
	}
	ts, err := d.tlsConfig(up)
	if err != nil {
		return nil, err
	}

	nd := net.Dialer{Timeout: d.dialTimeout(), KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("translate: dial %s: %w", addr, errors.Join(ErrUnreachable, err))
	}
	// One deadline covers the whole login; a cancelled context expires
	// it at once.
	raw.SetDeadline(time.Now().Add(d.handshakeTimeout()))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	u := &ftpsUpstream{
		d:            *d,
		addr:         addr,
		tls:          ts,
		useReplyAddr: up.PassiveUseReplyAddress,
		maxDir:       d.maxList(),
		info:         ConnInfo{Protocol: up.Scheme, Endpoint: addr},
	}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		u.host = ap.Addr().Unmap()
	}
	if err := u.login(ctx, raw, up, pw); err != nil {
		raw.Close()
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = errors.Join(err, ctx.Err())
		}
		return nil, err
	}
	if !stop() {
		u.conn.Close()
		return nil, fmt.Errorf("translate: dial %s: %w", addr, errors.Join(ErrConnLost, ctx.Err()))
	}
	raw.SetDeadline(time.Time{})
	u.ready = true
	return u, nil
}

func (d *FTPSDialer) maxList() int {
	if d.MaxListEntries > 0 {
		return d.MaxListEntries
	}
	return 100_000
}

// ftpsUpstream is one logged-in FTPS control connection. Its methods are
// called from one goroutine at a time (the Upstream contract), except
// Close.
type ftpsUpstream struct {
	d            FTPSDialer // a copy: the caller's dialer may change
	addr         string     // host:port dialled
	host         netip.Addr // the control connection's peer, for data connections
	tls          *tlsSetup
	useReplyAddr bool // dial the address of 227 replies (passive_use_reply_address)
	maxDir       int
	info         ConnInfo

	// Owned by the goroutine running an operation (op held).
	conn        net.Conn // the TLS control connection
	rr          replyReader
	w           *bufio.Writer
	feat        map[string]string // FEAT lines: upper-case name -> parameters
	noEPSV      bool              // the partner refused EPSV once; use PASV
	curType     string            // TYPE the partner has, "" unknown (its default)
	clientType  string            // TYPE the client asked for through Forward, "" none
	pendingRest string            // REST argument forwarded for the next transfer
	broken      error             // set when the control connection is no longer in step
	ready       bool              // logged in; cmd sets its own deadlines from now on

	// op is held by every operation, so Close can tell an idle
	// connection (QUIT politely) from a busy one (just close).
	op sync.Mutex

	mu     sync.Mutex
	data   net.Conn // the data connection in use, or nil; guarded by mu
	closed bool     // guarded by mu
}

var (
	_ Dialer    = (*FTPSDialer)(nil)
	_ Upstream  = (*ftpsUpstream)(nil)
	_ Forwarder = (*ftpsUpstream)(nil)
	_ Describer = (*ftpsUpstream)(nil)
)

// login runs the dialogue from the greeting to PROT P on raw, which has a
// deadline. It sets u.conn, u.rr, u.w, u.feat and u.info.
func (u *ftpsUpstream) login(ctx context.Context, raw net.Conn, up policy.Upstream, pw string) error {
	addr := u.addr
	if up.Scheme == "ftpes" {
		u.rr = replyReader{br: bufio.NewReader(raw)}
		u.w = bufio.NewWriter(raw)
		greet, err := u.greeting()
		if err != nil {
			return err
		}
		u.info.ServerVersion = replyText(greet)
		rep, err := u.cmd("AUTH", "TLS")
		if err != nil {
			return err
		}
		if rep.Code != 234 {
			return fmt.Errorf("translate: %s refused AUTH TLS; ftpgate never continues in clear text: %w",
				addr, errors.Join(ErrUnsupported, newReplyError("AUTH", rep)))
		}
		// Anything sent after the 234 and before the handshake was
		// injected by someone on the path (the STARTTLS injection
		// attack): refuse it.
		if u.rr.br.Buffered() > 0 {
			return fmt.Errorf("translate: %s sent data after 234 AUTH TLS, before the TLS handshake: %w", addr, ErrConnLost)
		}
	}
	tc := tls.Client(raw, u.tls.ctrl)
	if err := tc.HandshakeContext(ctx); err != nil {
		if ce := certError(u.tls.ctrl.ServerName, err); ce != nil {
			return ce
		}
		return fmt.Errorf("translate: tls handshake with %s: %w", addr, errors.Join(ErrConnLost, err))
	}
	u.conn = tc
	u.rr = replyReader{br: bufio.NewReader(tc)}
	u.w = bufio.NewWriter(tc)
	if up.Scheme == "ftps" {
		greet, err := u.greeting()
		if err != nil {
			return err
		}
		u.info.ServerVersion = replyText(greet)
	}

	rep, err := u.cmd("USER", up.User)
	if err != nil {
		return err
	}
	if rep.Code == 331 {
		// The password goes only into the command; errors name the
		// verb, never the argument.
		if rep, err = u.cmd("PASS", pw); err != nil {
			return err
		}
	}
	switch {
	case rep.Code == 230 || rep.Code == 202:
	case rep.Code == 332:
		return fmt.Errorf("translate: login to %s as %q: the partner wants an account (ACCT): %w", addr, up.User,
			errors.Join(ErrAuth, newReplyError("PASS", rep)))
	case rep.Code == 530 || rep.Code == 532 || rep.Code/100 == 5 || rep.Code/100 == 3:
		return fmt.Errorf("translate: login to %s as %q: %w", addr, up.User, errors.Join(ErrAuth, newReplyError("PASS", rep)))
	default:
		return fmt.Errorf("translate: login to %s as %q: %w", addr, up.User, errors.Join(ErrConnLost, newReplyError("PASS", rep)))
	}

	for _, c := range [][2]string{{"PBSZ", "0"}, {"PROT", "P"}} {
		rep, err := u.cmd(c[0], c[1])
		if err != nil {
			return err
		}
		if rep.Code/100 != 2 {
			return fmt.Errorf("translate: %s refused %s %s; ftpgate never moves data in clear text: %w",
				addr, c[0], c[1], errors.Join(ErrUnsupported, newReplyError(c[0], rep)))
		}
	}

	u.feat = make(map[string]string)
	if rep, err := u.cmd("FEAT", ""); err != nil {
		return err
	} else if rep.Code == 211 && len(rep.Lines) > 2 {
		for _, l := range rep.Lines[1 : len(rep.Lines)-1] {
			name, params, _ := strings.Cut(strings.TrimSpace(l), " ")
			if name != "" && len(u.feat) < 200 {
				u.feat[strings.ToUpper(name)] = params
			}
		}
	}

	cs := tc.ConnectionState()
	u.info.TLSVersion = tls.VersionName(cs.Version)
	u.info.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		u.info.HostKey = CertFingerprint(leaf.Raw)
		u.info.HostKeyType = leaf.PublicKeyAlgorithm.String()
		u.info.PeerSubject = leaf.Subject.String()
	}
	return nil
}

// greeting reads the 220 the partner greets with, after any 120 ("ready in
// a few minutes").
func (u *ftpsUpstream) greeting() (Reply, error) {
	for range 4 {
		rep, err := u.read()
		if err != nil {
			return Reply{}, err
		}
		switch {
		case rep.Code == 120:
			continue
		case rep.Code == 220:
			return rep, nil
		case rep.Code == 421:
			return Reply{}, fmt.Errorf("translate: %s: %w", u.addr, newReplyError("", rep))
		default:
			return Reply{}, fmt.Errorf("translate: %s greeted with an unexpected reply: %w", u.addr,
				errors.Join(ErrConnLost, newReplyError("", rep)))
		}
	}
	return Reply{}, fmt.Errorf("translate: %s never became ready: %w", u.addr, ErrConnLost)
}

// send writes one command. The caller has set the deadlines.
func (u *ftpsUpstream) send(verb, arg string) error {
	u.w.WriteString(verb)
	if arg != "" {
		u.w.WriteByte(' ')
		u.w.WriteString(arg)
	}
	u.w.WriteString("\r\n")
	if err := u.w.Flush(); err != nil {
		return u.fail(fmt.Errorf("translate: send %s to %s: %w", verb, u.addr, errors.Join(ErrConnLost, err)))
	}
	return nil
}

// read reads one reply. The caller has set the deadline.
func (u *ftpsUpstream) read() (Reply, error) {
	rep, err := u.rr.next()
	if err != nil {
		return Reply{}, u.fail(fmt.Errorf("translate: reply from %s: %w", u.addr, errors.Join(ErrConnLost, err)))
	}
	return rep, nil
}

// cmd sends a command and reads the first reply to it, which may be a
// preliminary (1yz) one, within ReplyTimeout. During login the dial
// deadline is in force instead.
func (u *ftpsUpstream) cmd(verb, arg string) (Reply, error) {
	if u.broken != nil {
		return Reply{}, u.broken
	}
	if u.ready {
		u.conn.SetDeadline(time.Now().Add(u.d.replyTimeout()))
		defer u.conn.SetDeadline(time.Time{})
	}
	if err := u.send(verb, arg); err != nil {
		return Reply{}, err
	}
	return u.read()
}

// fail marks the control connection as out of step and returns err. Every
// later operation fails with the same error.
func (u *ftpsUpstream) fail(err error) error {
	if u.broken == nil {
		u.broken = err
	}
	return err
}

// begin starts an operation: it takes op and ends the whole session if
// ctx ends before the operation does, since a command whose reply never
// came leaves the control connection out of step. The returned function
// ends the operation.
func (u *ftpsUpstream) begin(ctx context.Context) (end func(), err error) {
	u.op.Lock()
	if u.isClosed() {
		u.op.Unlock()
		return nil, fmt.Errorf("translate: %s: session closed: %w", u.addr, ErrConnLost)
	}
	if u.broken != nil {
		u.op.Unlock()
		return nil, u.broken
	}
	stop := context.AfterFunc(ctx, func() { u.closeConns() })
	return func() {
		stop()
		u.op.Unlock()
	}, nil
}

// beginTransfer starts an operation that moves data. It does not end the
// session when ctx ends: transfer answers a cancelled context with ABOR
// and keeps the session.
func (u *ftpsUpstream) beginTransfer() (end func(), err error) {
	u.op.Lock()
	if u.isClosed() {
		u.op.Unlock()
		return nil, fmt.Errorf("translate: %s: session closed: %w", u.addr, ErrConnLost)
	}
	if u.broken != nil {
		u.op.Unlock()
		return nil, u.broken
	}
	return u.op.Unlock, nil
}

// do runs one command as a whole operation and checks that the reply is
// in class want (2 or 3).
func (u *ftpsUpstream) do(ctx context.Context, op, name, verb, arg string, want int) (Reply, error) {
	end, err := u.begin(ctx)
	if err != nil {
		return Reply{}, err
	}
	defer end()
	return u.expect(ctx, op, name, verb, arg, want)
}

// expect sends a command within an operation and maps a reply outside
// class want to an error.
func (u *ftpsUpstream) expect(ctx context.Context, op, name, verb, arg string, want int) (Reply, error) {
	if err := checkArg(arg); err != nil {
		return Reply{}, fmt.Errorf("translate: %s %s: %w", op, name, err)
	}
	rep, err := u.cmd(verb, arg)
	if err != nil {
		return Reply{}, u.mapErr(ctx, op, name, err)
	}
	if rep.Code/100 != want {
		return rep, u.mapErr(ctx, op, name, newReplyError(verb, rep))
	}
	return rep, nil
}

// mapErr wraps an error of an operation on name. Reply errors carry their
// sentinel already (ReplyError.Unwrap); a cancelled context turns any
// failure into ErrConnLost, because the session was closed to stop it.
func (u *ftpsUpstream) mapErr(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && !errors.Is(err, ErrConnLost) {
		err = errors.Join(ErrConnLost, ctx.Err(), err)
	} else if ctx.Err() != nil {
		err = errors.Join(ctx.Err(), err)
	}
	return fmt.Errorf("translate: %s %s: %w", op, name, err)
}

// checkArg refuses a command argument that would end the command line
// early and smuggle a second command to the partner.
func checkArg(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return fmt.Errorf("argument holds CR, LF or NUL: %w", ErrPermission)
	}
	return nil
}

// setType makes the partner's representation type t ("I", "A") unless it
// already is.
func (u *ftpsUpstream) setType(ctx context.Context, t string) error {
	if u.curType == t {
		return nil
	}
	if _, err := u.expect(ctx, "type", t, "TYPE", t, 2); err != nil {
		return err
	}
	u.curType = t
	return nil
}

func (u *ftpsUpstream) ConnInfo() ConnInfo { return u.info }

func (u *ftpsUpstream) isClosed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.closed
}

// closeConns closes the control and data connections without a word to
// the partner; whatever is in flight fails with ErrConnLost.
func (u *ftpsUpstream) closeConns() {
	u.mu.Lock()
	u.closed = true
	data := u.data
	u.mu.Unlock()
	if data != nil {
		data.Close()
	}
	u.conn.Close()
}

// Close ends the session: QUIT when the connection is idle, then close.
// An operation in flight is interrupted and fails with ErrConnLost.
func (u *ftpsUpstream) Close() error {
	if u.isClosed() {
		return nil
	}
	if u.op.TryLock() {
		if u.broken == nil {
			u.conn.SetDeadline(time.Now().Add(min(u.d.replyTimeout(), 5*time.Second)))
			if u.send("QUIT", "") == nil {
				u.read()
			}
		}
		u.closeConns()
		u.op.Unlock()
		return nil
	}
	u.closeConns()
	return nil
}

// Home returns the partner's working directory (PWD).
func (u *ftpsUpstream) Home(ctx context.Context) (string, error) {
	rep, err := u.do(ctx, "pwd", "", "PWD", "", 2)
	if err != nil {
		return "", err
	}
	dir, err := parsePathReply(strings.Join(rep.Lines, " "))
	if err != nil {
		return "", fmt.Errorf("translate: pwd: %w", err)
	}
	return dir, nil
}

// Stat describes name with MLST when the partner lists it in FEAT.
// Otherwise it asks SIZE (and MDTM) for a file and tries CWD for a
// directory, returning to the working directory afterwards.
func (u *ftpsUpstream) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	end, err := u.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if _, ok := u.feat["MLST"]; ok {
		rep, err := u.expect(ctx, "stat", name, "MLST", name, 2)
		if err != nil {
			return nil, err
		}
		for _, l := range rep.Lines[1:max(1, len(rep.Lines)-1)] {
			if !strings.HasPrefix(l, " ") {
				continue
			}
			fi, _, err := parseMLSxEntry(l[1:])
			if err != nil {
				return nil, fmt.Errorf("translate: stat %s: %w", name, errors.Join(ErrConnLost, err))
			}
			fi.name = path.Base(name)
			return fi, nil
		}
		return nil, fmt.Errorf("translate: stat %s: %w: MLST reply without an entry", name, errBadReply)
	}
	return u.statByProbing(ctx, name)
}

func (u *ftpsUpstream) statByProbing(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := u.setType(ctx, "I"); err != nil {
		return nil, err
	}
	rep, sizeErr := u.expect(ctx, "stat", name, "SIZE", name, 2)
	if sizeErr == nil {
		size, err := strconv.ParseInt(strings.TrimSpace(rep.Lines[0]), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("translate: stat %s: %w: SIZE reply %q", name, errBadReply, replyText(rep))
		}
		fi := &ftpFileInfo{name: path.Base(name), size: size, mode: 0o644}
		if rep, err := u.expect(ctx, "stat", name, "MDTM", name, 2); err == nil {
			if t, err := parseFTPTime(strings.TrimSpace(rep.Lines[0])); err == nil {
				fi.mtime = t
			}
		} else if u.broken != nil {
			return nil, err
		}
		return fi, nil
	}
	if u.broken != nil {
		return nil, sizeErr
	}
	// Not a file, or SIZE unsupported: a directory if CWD accepts it.
	pwd, err := u.expect(ctx, "stat", name, "PWD", "", 2)
	if err != nil {
		return nil, err
	}
	cwd, err := parsePathReply(strings.Join(pwd.Lines, " "))
	if err != nil {
		return nil, fmt.Errorf("translate: stat %s: %w", name, err)
	}
	if _, err := u.expect(ctx, "stat", name, "CWD", name, 2); err != nil {
		if u.broken != nil {
			return nil, err
		}
		return nil, sizeErr
	}
	if _, err := u.expect(ctx, "stat", name, "CWD", cwd, 2); err != nil {
		return nil, err
	}
	return &ftpFileInfo{name: path.Base(name), mode: fs.ModeDir | 0o755}, nil
}

// ReadDir lists dir with MLSD when the partner lists MLST in FEAT (RFC
// 3659 section 7.8), otherwise with LIST, whose Unix-style lines it parses
// (lines of other formats are skipped).
func (u *ftpsUpstream) ReadDir(ctx context.Context, dir string) ([]fs.FileInfo, error) {
	end, err := u.beginTransfer()
	if err != nil {
		return nil, err
	}
	defer end()
	_, mlsd := u.feat["MLST"]
	verb := "LIST"
	if mlsd {
		verb = "MLSD"
	}
	lw := &listWriter{max: u.maxDir, mlsd: mlsd, now: time.Now()}
	final, _, err := u.transfer(ctx, dataOp{verb: verb, arg: dir, dst: lw})
	if err != nil {
		if lw.err != nil {
			return nil, fmt.Errorf("translate: readdir %s: %w", dir, lw.err)
		}
		return nil, u.mapErr(ctx, "readdir", dir, err)
	}
	if final.Code/100 != 2 {
		return nil, u.mapErr(ctx, "readdir", dir, newReplyError(verb, final))
	}
	if err := lw.flush(); err != nil {
		return nil, fmt.Errorf("translate: readdir %s: %w", dir, err)
	}
	return lw.list, nil
}

// listWriter parses a listing as it arrives, line by line, so a listing
// is never held whole, and stops at max entries.
type listWriter struct {
	max  int
	mlsd bool
	now  time.Time
	buf  []byte
	list []fs.FileInfo
	err  error
}

func (lw *listWriter) Write(p []byte) (int, error) {
	if lw.err != nil {
		return 0, lw.err
	}
	n := len(p)
	for len(p) > 0 {
		i := strings.IndexByte(string(p), '\n')
		if i < 0 {
			lw.buf = append(lw.buf, p...)
			if len(lw.buf) > maxReplyLine {
				lw.err = fmt.Errorf("%w: listing line longer than %d bytes", errBadReply, maxReplyLine)
				return 0, lw.err
			}
			break
		}
		lw.buf = append(lw.buf, p[:i]...)
		p = p[i+1:]
		if err := lw.line(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (lw *listWriter) line() error {
	line := strings.TrimSuffix(string(lw.buf), "\r")
	lw.buf = lw.buf[:0]
	if line == "" {
		return nil
	}
	var fi *ftpFileInfo
	if lw.mlsd {
		var typ string
		var err error
		if fi, typ, err = parseMLSxEntry(line); err != nil {
			lw.err = err
			return err
		}
		if typ == "cdir" || typ == "pdir" || fi.name == "." || fi.name == ".." {
			return nil
		}
		fi.name = path.Base(fi.name)
	} else {
		var ok bool
		if fi, ok = parseListLine(line, lw.now); !ok {
			return nil
		}
	}
	if len(lw.list) >= lw.max {
		lw.err = fmt.Errorf("more than %d entries: %w", lw.max, ErrTooLarge)
		return lw.err
	}
	lw.list = append(lw.list, fi)
	return nil
}

func (lw *listWriter) flush() error {
	if len(lw.buf) > 0 {
		return lw.line()
	}
	return lw.err
}

// size asks the partner for a file's size in TYPE I; ok is false when the
// partner does not say.
func (u *ftpsUpstream) size(ctx context.Context, name string) (n int64, ok bool, err error) {
	if err := u.setType(ctx, "I"); err != nil {
		return 0, false, err
	}
	rep, err := u.expect(ctx, "size", name, "SIZE", name, 2)
	if err != nil {
		if u.broken != nil {
			return 0, false, err
		}
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(strings.TrimSpace(rep.Lines[0]), 10, 64)
	return n, perr == nil && n >= 0, nil
}

// Retrieve copies name from offset (REST) to w in TYPE I. When the partner
// answers SIZE, fewer bytes than it announced fail with ErrShortTransfer.
func (u *ftpsUpstream) Retrieve(ctx context.Context, name string, offset int64, w io.Writer) (int64, error) {
	end, err := u.beginTransfer()
	if err != nil {
		return 0, err
	}
	defer end()
	size, sized, err := u.size(ctx, name)
	if err != nil {
		return 0, err
	}
	op := dataOp{verb: "RETR", arg: name, dst: w}
	if offset > 0 {
		op.rest = strconv.FormatInt(offset, 10)
	}
	final, n, err := u.transfer(ctx, op)
	if err != nil {
		return n, u.mapErr(ctx, "retrieve", name, err)
	}
	if final.Code/100 != 2 {
		return n, u.mapErr(ctx, "retrieve", name, newReplyError("RETR", final))
	}
	if want := size - offset; sized && n < want {
		return n, fmt.Errorf("translate: retrieve %s: got %d of %d bytes: %w", name, n, want, ErrShortTransfer)
	}
	return n, nil
}

// Store writes r to name in TYPE I. By default the data goes to a
// temporary name beside the target (STOR), whose size is checked (SIZE)
// before it is renamed over the target (RNFR, RNTO); on failure the
// temporary file is deleted. opt.Append uses APPE and opt.Offset REST and
// STOR, both in place.
func (u *ftpsUpstream) Store(ctx context.Context, name string, r io.Reader, opt StoreOptions) (int64, error) {
	end, err := u.beginTransfer()
	if err != nil {
		return 0, err
	}
	defer end()
	if err := u.setType(ctx, "I"); err != nil {
		return 0, err
	}
	target, verb, before := name, "STOR", opt.Offset
	switch {
	case opt.Append:
		verb = "APPE"
		n, ok, err := u.size(ctx, name)
		if err != nil {
			return 0, err
		}
		before = 0
		if ok {
			before = n
		}
	case opt.Offset > 0:
	default:
		if target, err = tempName(name); err != nil {
			return 0, err
		}
	}
	op := dataOp{verb: verb, arg: target, src: r, upload: true}
	if opt.Offset > 0 && !opt.Append {
		op.rest = strconv.FormatInt(opt.Offset, 10)
	}
	final, n, err := u.transfer(ctx, op)
	if err == nil && final.Code/100 != 2 {
		err = newReplyError(verb, final)
	}
	if err == nil {
		// The reply says the partner has the data; SIZE says it wrote
		// all of it (INTEROP.md: TLS 1.3 uploads could lose their tail).
		if got, ok, serr := u.size(ctx, target); serr != nil {
			err = serr
		} else if ok && got != before+n {
			err = fmt.Errorf("partner holds %d bytes after storing %d from offset %d: %w", got, n, before, ErrShortTransfer)
		}
	}
	if err == nil && target != name {
		if _, err = u.expect(ctx, "store", name, "RNFR", target, 3); err == nil {
			_, err = u.expect(ctx, "store", name, "RNTO", name, 2)
		}
	}
	if err != nil {
		if target != name && u.broken == nil && !u.isClosed() {
			u.expect(ctx, "store", name, "DELE", target, 2)
		}
		return n, u.mapErr(ctx, "store", name, err)
	}
	return n, nil
}

func (u *ftpsUpstream) Remove(ctx context.Context, name string) error {
	_, err := u.do(ctx, "remove", name, "DELE", name, 2)
	return err
}

func (u *ftpsUpstream) Rename(ctx context.Context, from, to string) error {
	end, err := u.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if _, err := u.expect(ctx, "rename", from, "RNFR", from, 3); err != nil {
		return err
	}
	_, err = u.expect(ctx, "rename", from, "RNTO", to, 2)
	return err
}

func (u *ftpsUpstream) Mkdir(ctx context.Context, name string) error {
	_, err := u.do(ctx, "mkdir", name, "MKD", name, 2)
	return err
}

func (u *ftpsUpstream) Rmdir(ctx context.Context, name string) error {
	_, err := u.do(ctx, "rmdir", name, "RMD", name, 2)
	return err
}

// forwardRefused lists verbs Forward never sends for the client. The proxy
// keeps the login, the security dialogue (RFC 2228, RFC 4217), the data
// connections and the session's end to itself, and data-transfer verbs go
// through Transfer.
var forwardRefused = map[string]bool{
	"USER": true, "PASS": true, "ACCT": true, "REIN": true, "QUIT": true,
	"AUTH": true, "ADAT": true, "PBSZ": true, "PROT": true, "CCC": true, "MIC": true, "CONF": true, "ENC": true,
	"PORT": true, "EPRT": true, "LPRT": true, "PASV": true, "EPSV": true, "LPSV": true, "SPSV": true,
	"ABOR": true,
	"RETR": true, "STOR": true, "STOU": true, "APPE": true, "LIST": true, "NLST": true, "MLSD": true,
}

// maxForwardArg bounds a forwarded argument; the proxy's own line limit is
// normally lower.
const maxForwardArg = 4096

// Forward sends one command that uses no data connection and returns the
// partner's reply (after any preliminary replies). Refusals by the partner
// are replies, not errors; the error is for a connection that failed.
// Verbs the proxy must handle itself (login, AUTH, PBSZ, PROT, CCC, data
// connection set-up, ABOR, QUIT) and data-transfer verbs are never sent:
// they fail with ErrUnsupported. TYPE and REST are remembered: TYPE so
// that Transfer runs in the client's type even after Retrieve or Store
// switched to TYPE I, REST so that it can be repeated right before the
// transfer command, after the EPSV that sets the data connection up.
func (u *ftpsUpstream) Forward(ctx context.Context, verb, arg string) (Reply, error) {
	verb = strings.ToUpper(verb)
	if !validVerb(verb) {
		return Reply{}, fmt.Errorf("translate: forward: verb %q: %w", clip([]byte(verb), 10), ErrUnsupported)
	}
	if forwardRefused[verb] {
		return Reply{}, fmt.Errorf("translate: forward %s: the proxy handles it: %w", verb, ErrUnsupported)
	}
	if err := checkArg(arg); err != nil || len(arg) > maxForwardArg {
		return Reply{}, fmt.Errorf("translate: forward %s: bad argument: %w", verb, ErrPermission)
	}
	end, err := u.begin(ctx)
	if err != nil {
		return Reply{}, err
	}
	defer end()
	rep, err := u.cmd(verb, arg)
	for err == nil && rep.Code/100 == 1 {
		u.conn.SetDeadline(time.Now().Add(u.d.replyTimeout()))
		rep, err = u.read()
		u.conn.SetDeadline(time.Time{})
	}
	if err != nil {
		return Reply{}, u.mapErr(ctx, "forward", verb, err)
	}
	u.pendingRest = ""
	switch verb {
	case "TYPE":
		if rep.Code/100 == 2 {
			t := strings.ToUpper(strings.Join(strings.Fields(arg), " "))
			u.curType, u.clientType = t, t
		}
	case "REST":
		if rep.Code == 350 {
			u.pendingRest = arg
		}
	}
	return rep, nil
}

// validVerb accepts 3 or 4 ASCII letters, RFC 959's command form, and a
// few longer verbs in use (XCRC, XMD5, OPTS...) up to 8.
func validVerb(v string) bool {
	if len(v) < 3 || len(v) > 8 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// transferVerbs maps the verbs Transfer runs to their direction: true for
// uploads.
var transferVerbs = map[string]bool{
	"RETR": false, "LIST": false, "NLST": false, "MLSD": false,
	"STOR": true, "STOU": true, "APPE": true,
}

// Transfer runs a data-transfer command for the client (see Forwarder). It
// uses the TYPE the client chose through Forward and repeats a forwarded
// REST right before the command. When ctx ends during the transfer, the
// partner is sent ABOR, the data connection is reset, and the partner's
// replies are read (its 426 comes back as final) before Transfer returns
// an error wrapping ctx.Err().
//
// err is nil when the bytes arrived as the partner sent them; the final
// reply then says what the partner made of the transfer and is relayed as
// it is. err is non-nil when the copy failed on ftpgate's side (the
// client's data connection, the partner's data connection, or an abort);
// final is then the partner's reply if it came, for the record, and must
// not be relayed as a success.
func (u *ftpsUpstream) Transfer(ctx context.Context, verb, arg string, open func(prelim Reply) (io.ReadWriter, error)) (Reply, int64, error) {
	verb = strings.ToUpper(verb)
	upload, ok := transferVerbs[verb]
	if !ok {
		return Reply{}, 0, fmt.Errorf("translate: transfer %q: %w", clip([]byte(verb), 10), ErrUnsupported)
	}
	if err := checkArg(arg); err != nil || len(arg) > maxForwardArg {
		return Reply{}, 0, fmt.Errorf("translate: transfer %s: bad argument: %w", verb, ErrPermission)
	}
	end, err := u.beginTransfer()
	if err != nil {
		return Reply{}, 0, err
	}
	defer end()
	want := u.clientType
	if want == "" && u.curType != "" {
		want = "A" // we changed it; the client expects RFC 959's default
	}
	if want != "" && want != u.curType {
		if err := u.setType(ctx, want); err != nil {
			return Reply{}, 0, err
		}
	}
	op := dataOp{verb: verb, arg: arg, open: open, upload: upload, rest: u.pendingRest}
	u.pendingRest = ""
	return u.transfer(ctx, op)
}
