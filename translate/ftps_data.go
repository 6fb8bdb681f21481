package translate

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
	"time"
)

// dataOp is one command that moves data over a data connection.
type dataOp struct {
	verb, arg string
	rest      string // REST argument sent right before the command, "" for none
	upload    bool
	src       io.Reader // upload source, unless open supplies it
	dst       io.Writer // download sink, unless open supplies it
	// open, when set, is called with the preliminary reply and returns
	// the client's data connection (Forwarder.Transfer).
	open func(prelim Reply) (io.ReadWriter, error)
}

// errInterrupted is returned by readCtx when ctx ended during the wait.
// The reply reader keeps what it read, so reading can go on.
var errInterrupted = errors.New("translate: wait interrupted")

// transfer runs op: passive data connection (EPSV, else PASV), REST, the
// command, the data connection's TLS handshake (resuming the control
// connection's session), the copy, and the final reply. The caller holds
// the operation lock. See Forwarder.Transfer for what final and err mean.
//
// When ctx ends, the data connection is reset, the partner is sent ABOR,
// and its replies are read until the control connection is in step again,
// so the session stays usable.
func (u *ftpsUpstream) transfer(ctx context.Context, op dataOp) (final Reply, n int64, err error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, 0, fmt.Errorf("translate: %s: %w", op.verb, err)
	}
	if u.broken != nil {
		return Reply{}, 0, u.broken
	}
	if err := errors.Join(checkArg(op.arg), checkArg(op.rest)); err != nil {
		return Reply{}, 0, fmt.Errorf("translate: %s %s: %w", op.verb, clip([]byte(op.arg), 60), err)
	}
	addr, err := u.passive()
	if err != nil {
		return Reply{}, 0, err
	}
	nd := net.Dialer{Timeout: u.d.dialTimeout()}
	raw, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		// The partner listens for a connection that never comes; it
		// times out on its own and the next command still works.
		return Reply{}, 0, fmt.Errorf("translate: data connection to %s: %w", addr, errors.Join(ErrConnLost, err))
	}
	dc := &idleConn{Conn: raw, idle: u.d.idleTimeout()}
	u.setData(dc)
	defer func() {
		u.setData(nil)
		dc.Close()
	}()

	if op.rest != "" {
		rep, err := u.cmd("REST", op.rest)
		if err != nil {
			return Reply{}, 0, err
		}
		if rep.Code != 350 {
			return rep, 0, nil
		}
	}

	// The data connection's handshake runs beside the wait for the
	// preliminary reply: some servers accept TLS before they send 150,
	// others after.
	tc := tls.Client(dc, u.tls.data)
	hsDone := make(chan error, 1)
	hctx, hcancel := context.WithTimeout(ctx, u.d.handshakeTimeout())
	defer hcancel()

	u.conn.SetDeadline(time.Now().Add(u.d.replyTimeout()))
	if err := u.send(op.verb, op.arg); err != nil {
		return Reply{}, 0, err
	}
	go func() { hsDone <- tc.HandshakeContext(hctx) }()
	stop := interruptOn(ctx, func() {
		u.conn.SetReadDeadline(time.Unix(1, 0))
		dc.stop()
	})
	defer stop()

	prelim, err := u.readCtx(ctx)
	if errors.Is(err, errInterrupted) {
		dc.reset()
		<-hsDone
		stop()
		final, aerr := u.abort()
		return final, 0, u.aborted(ctx, op.verb, aerr)
	}
	if err != nil {
		dc.Close()
		<-hsDone
		return Reply{}, 0, err
	}
	if prelim.Code/100 != 1 {
		// Refused, or (rarely) done without a preliminary reply.
		dc.Close()
		<-hsDone
		u.conn.SetDeadline(time.Time{})
		return prelim, 0, nil
	}
	if err := <-hsDone; err != nil {
		dc.reset()
		stop()
		// The partner fails the transfer on its side too; read that.
		final, rerr := u.readFinal(ctx)
		if ce := certError(u.tls.data.ServerName, err); ce != nil {
			return final, 0, ce
		}
		return final, 0, fmt.Errorf("translate: tls handshake on the data connection to %s: %w",
			addr, errors.Join(ErrConnLost, err, rerr, replyErrorIf(op.verb, final)))
	}
	u.conn.SetDeadline(time.Time{})

	src, dst := op.src, op.dst
	if op.open != nil {
		client, err := op.open(prelim)
		if err != nil {
			dc.reset()
			stop()
			final, aerr := u.abort()
			return final, 0, fmt.Errorf("translate: %s: client data connection: %w", op.verb, errors.Join(err, aerr))
		}
		if op.upload {
			src = client
		} else {
			dst = client
		}
	}

	// Copy, noting which side failed: the partner's data connection or
	// the client's side.
	pc := &sideConn{rw: tc}
	if op.upload {
		n, err = io.Copy(pc, src)
		if err == nil {
			err = u.closeUpload(tc, dc)
			pc.err = err
		}
	} else {
		n, err = io.Copy(dst, pc)
		if err == nil {
			tc.Close()
		}
	}
	switch {
	case ctx.Err() != nil:
		dc.reset()
		stop()
		final, aerr := u.abort()
		return final, n, u.aborted(ctx, op.verb, aerr)
	case err != nil && pc.err == nil:
		// The client's side failed. Reset the partner's data
		// connection, so an upload is not taken for complete, and
		// abort.
		dc.reset()
		stop()
		final, aerr := u.abort()
		return final, n, fmt.Errorf("translate: %s: client side: %w", op.verb, errors.Join(ErrConnLost, err, aerr))
	case err != nil:
		dc.reset()
		stop()
		final, rerr := u.readFinal(ctx)
		return final, n, fmt.Errorf("translate: %s: data connection to %s: %w", op.verb, addr,
			errors.Join(ErrConnLost, err, rerr, replyErrorIf(op.verb, final)))
	}
	final, err = u.readFinal(ctx)
	if errors.Is(err, errInterrupted) {
		stop()
		final, aerr := u.abort()
		return final, n, u.aborted(ctx, op.verb, aerr)
	}
	return final, n, err
}

// closeUpload ends an upload gracefully: close_notify, then read the data
// connection to its end before closing it. Closing with unread data (TLS
// 1.3 session tickets the server sent on the data connection) would send a
// TCP reset, and vsftpd then drops the data it has not read yet, the tail
// of the file (INTEROP.md).
func (u *ftpsUpstream) closeUpload(tc *tls.Conn, dc *idleConn) error {
	if err := tc.CloseWrite(); err != nil {
		return err
	}
	dc.idle = min(dc.idle, u.d.replyTimeout())
	_, err := io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return dc.Close()
}

// readCtx reads a reply, returning errInterrupted when ctx ended during
// the wait (the interrupter set a past deadline). The reply reader keeps
// its place, so the reply can still be read.
func (u *ftpsUpstream) readCtx(ctx context.Context) (Reply, error) {
	rep, err := u.rr.next()
	if err == nil {
		return rep, nil
	}
	var ne net.Error
	if ctx.Err() != nil && errors.As(err, &ne) && ne.Timeout() {
		return Reply{}, errInterrupted
	}
	return Reply{}, u.fail(fmt.Errorf("translate: reply from %s: %w", u.addr, errors.Join(ErrConnLost, err)))
}

// readFinal reads the reply that ends a transfer, skipping preliminary
// ones, within ReplyTimeout.
func (u *ftpsUpstream) readFinal(ctx context.Context) (Reply, error) {
	u.conn.SetDeadline(time.Now().Add(u.d.replyTimeout()))
	defer u.conn.SetDeadline(time.Time{})
	for {
		rep, err := u.readCtx(ctx)
		if err != nil || rep.Code/100 != 1 {
			return rep, err
		}
	}
}

// abort sends ABOR, and NOOP right behind it, and reads replies until the
// NOOP's 200: whatever the partner says about the transfer (426, then 226
// or 225 for the ABOR, or 226 for a transfer that finished first) comes
// before it, so the control connection is in step afterwards however many
// replies the partner sent. final is the first 4yz or 5yz reply, else the
// first reply that is not preliminary. The caller has reset the data
// connection and stopped the interrupter.
func (u *ftpsUpstream) abort() (final Reply, err error) {
	if u.broken != nil {
		return Reply{}, u.broken
	}
	u.conn.SetDeadline(time.Now().Add(u.d.replyTimeout()))
	defer u.conn.SetDeadline(time.Time{})
	u.w.WriteString("ABOR\r\nNOOP\r\n")
	if err := u.w.Flush(); err != nil {
		return Reply{}, u.fail(fmt.Errorf("translate: send ABOR to %s: %w", u.addr, errors.Join(ErrConnLost, err)))
	}
	for range 8 {
		rep, err := u.read()
		if err != nil {
			return final, err
		}
		switch {
		case rep.Code == 200:
			return final, nil
		case rep.Code/100 == 1:
		case final.Code == 0, final.Code < 400 && rep.Code >= 400:
			// ProFTPD may answer the ABOR (226) before it reports
			// the transfer it aborted (426): the refusal is what
			// ended the transfer.
			final = rep
		}
	}
	return final, u.fail(fmt.Errorf("translate: %s did not answer NOOP after ABOR: %w", u.addr, ErrConnLost))
}

// aborted is the error of a transfer stopped because ctx ended.
func (u *ftpsUpstream) aborted(ctx context.Context, verb string, abortErr error) error {
	return fmt.Errorf("translate: %s aborted: %w", verb, errors.Join(ErrConnLost, context.Cause(ctx), abortErr))
}

// replyErrorIf returns a *ReplyError for a final reply that is not a
// success, for an error chain, and nil otherwise.
func replyErrorIf(verb string, rep Reply) error {
	if rep.Code == 0 || rep.Code/100 == 2 {
		return nil
	}
	return newReplyError(verb, rep)
}

// passive asks the partner for a passive data address: EPSV first (RFC
// 2428), then PASV for partners that refuse it, remembering the refusal.
// The address of a 227 reply is ignored unless the route says otherwise:
// the data connection goes to the control connection's host.
func (u *ftpsUpstream) passive() (string, error) {
	host := u.host.String()
	if !u.host.IsValid() {
		host, _, _ = net.SplitHostPort(u.addr)
	}
	if !u.noEPSV {
		rep, err := u.cmd("EPSV", "")
		if err != nil {
			return "", err
		}
		switch {
		case rep.Code == 229:
			port, err := parseEPSVReply(replyText(rep))
			if err != nil {
				return "", u.fail(fmt.Errorf("translate: EPSV to %s: %w", u.addr, errors.Join(ErrConnLost, err)))
			}
			return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
		case rep.Code/100 == 5:
			u.noEPSV = true
		default:
			return "", fmt.Errorf("translate: EPSV to %s: %w", u.addr, newReplyError("EPSV", rep))
		}
	}
	rep, err := u.cmd("PASV", "")
	if err != nil {
		return "", err
	}
	if rep.Code != 227 {
		return "", fmt.Errorf("translate: PASV to %s: %w", u.addr, newReplyError("PASV", rep))
	}
	ap, err := parsePASVReply(replyText(rep))
	if err != nil {
		return "", u.fail(fmt.Errorf("translate: PASV to %s: %w", u.addr, errors.Join(ErrConnLost, err)))
	}
	if u.useReplyAddr && !ap.Addr().IsUnspecified() {
		return ap.String(), nil
	}
	return net.JoinHostPort(host, strconv.Itoa(int(ap.Port()))), nil
}

func (u *ftpsUpstream) setData(c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c != nil && u.closed {
		c.Close()
	}
	u.data = c
}

// sideConn records the errors of the partner's data connection, so a
// failed copy can be blamed on the right side.
type sideConn struct {
	rw  io.ReadWriter
	err error
}

func (c *sideConn) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

func (c *sideConn) Write(p []byte) (int, error) {
	n, err := c.rw.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// idleConn is a data connection whose every read and write must make
// progress within idle. stop makes all further reads and writes fail at
// once, for aborts; a deadline set by one read cannot undo it.
type idleConn struct {
	net.Conn
	idle time.Duration

	mu      sync.Mutex
	stopped bool // guarded by mu
}

func (c *idleConn) arm(set func(time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return os.ErrDeadlineExceeded
	}
	return set(time.Now().Add(c.idle))
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.arm(c.Conn.SetReadDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	if err := c.arm(c.Conn.SetWriteDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *idleConn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.Conn.SetDeadline(time.Unix(1, 0))
}

// reset closes the connection with a TCP reset, so the partner sees an
// error, never a clean end of an upload.
func (c *idleConn) reset() {
	c.stop()
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Conn.Close()
}

// interruptOn runs f when ctx ends. The returned stop function makes sure
// f either never runs or has finished, so deadlines set after stop are not
// overwritten by a late f.
func interruptOn(ctx context.Context, f func()) (stop func()) {
	done := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		defer close(done)
		f()
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			if !cancel() {
				<-done
			}
		})
	}
}
