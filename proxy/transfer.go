package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftpgate/ftpgate/audit"
)

// transfer is one data transfer running in its own goroutine, so that the
// control connection can still take ABOR, STAT and NOOP.
type transfer struct {
	done   chan struct{} // closed when the transfer goroutine has finished
	ctx    context.Context
	cancel context.CancelFunc // hard stop: also closes the upstream session

	mu      sync.Mutex
	data    net.Conn // guarded by mu; nil until the data connection is open
	stopped error    // guarded by mu; why the transfer was stopped from outside (errAborted, errSessionEnded)

	moved atomic.Int64 // client-side bytes so far, for STAT
}

// xferSpec describes a transfer to start; run does the work once the data
// connection is open and returns the bytes moved on the upstream side.
type xferSpec struct {
	verb, arg string
	rec       audit.Transfer
	preamble  string // text of the 150 reply
	run       func(ctx context.Context, data *dataConn) (upstream int64, err error)
	// forward marks a pass-through transfer: runForward opens the client's
	// data connection itself, when the partner has said yes.
	forward    bool
	runForward func(ctx context.Context, t *transfer, setup *dataSetup, x *xferSpec) (reply, int64, *dataConn, error)
}

// startTransfer takes the prepared data connection and starts the
// transfer goroutine. It returns the zero reply (the transfer sends its own
// replies) or an error reply when no data connection was prepared.
func (s *session) startTransfer(x xferSpec) reply {
	setup := s.data
	s.data = nil
	if setup == nil {
		return rep(codeCantOpenData, "Use PORT, EPRT, PASV or EPSV first.")
	}
	if err := s.srv.Audit.Ready(); err != nil {
		// No transfer without a record.
		setup.close()
		s.srv.observer().TransferRefused(s.decision.Rule)
		s.log.Error().Err(err).Msg("audit trail unavailable: transfer refused")
		return rep(codeLocalError, "Audit trail unavailable, transfer refused; try again later.")
	}
	x.rec.ID = fmt.Sprintf("%s-x%d", s.id, s.transfers.Load()+1)
	ctx, cancel := context.WithCancel(s.ctx)
	t := &transfer{done: make(chan struct{}), ctx: ctx, cancel: cancel}
	s.xmu.Lock()
	s.xfer = t
	s.xmu.Unlock()
	s.setState(StateTransferring)
	s.armReadDeadline()
	go s.runTransfer(t, setup, x, time.Now())
	return reply{}
}

// runTransfer is the transfer goroutine.
func (s *session) runTransfer(t *transfer, setup *dataSetup, x xferSpec, start time.Time) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Str("panic", fmt.Sprint(v)).Msg("transfer panic")
		}
		setup.close()
		t.cancel()
		s.clearTransfer(nil)
		s.transition(StateTransferring, StateReady)
		close(t.done)
		s.armReadDeadline()
	}()
	var final reply
	var upBytes int64
	var dc *dataConn
	var err error
	if x.forward {
		final, upBytes, dc, err = x.runForward(t.ctx, t, setup, &x)
	} else {
		final, upBytes, dc, err = s.transferBody(t, setup, x)
	}
	rec := x.rec
	rec.Duration = time.Since(start)
	rec.BytesUp = upBytes
	rec.Upstream = s.upInfo.Endpoint
	rec.Result = "ok"
	rec.Confidence = confidence(err, dc, t.stopCause())
	if dc != nil {
		rec.SHA256 = dc.sum()
		rec.BytesFTP = dc.n.Load()
		if rec.Direction == "store" || rec.Direction == "append" {
			s.bytesIn.Add(rec.BytesFTP)
		} else {
			s.bytesOut.Add(rec.BytesFTP)
		}
	}
	if err != nil {
		rec.Result = "failed"
		if errors.Is(t.stopCause(), errAborted) {
			rec.Result = "aborted"
		}
		rec.Error = err.Error()
		s.log.Info().Err(err).Str("cmd", x.verb).Int("code", final.code).Msg("transfer failed")
	}
	s.transfers.Add(1)
	s.srv.observer().TransferDone(s.decision.Rule, s.decision.Upstream.Scheme, rec.Direction, rec.Result, rec.BytesFTP, rec.Duration)
	// The records are written before the client hears the outcome, so a
	// client that acted on a 226 can always find its record.
	s.srv.Audit.Transfer(s.recordSession(), rec)
	s.srv.Audit.Command(s.recordSession(), x.verb, x.arg, final.code, final.text(), rec.Duration)
	s.clearTransfer(&final)
}

// transferBody opens the data connection, sends 150, runs the transfer and
// closes the data connection; it returns the final reply.
func (s *session) transferBody(t *transfer, setup *dataSetup, x xferSpec) (reply, int64, *dataConn, error) {
	conn, err := s.openData(t.ctx, setup)
	if err != nil {
		if cause := t.stopCause(); cause != nil {
			return rep(codeTransferAborted, "Transfer aborted."), 0, nil, errors.Join(cause, err)
		}
		return rep(codeCantOpenData, "Cannot open data connection."), 0, nil, err
	}
	dc := newDataConn(conn, &t.moved, s.srv.transferIdle(), t.cancel, !s.srv.DisableTransferHash)
	defer dc.stop()
	// A hard stop (Server.Close, the end of a drain, the idle watchdog)
	// must also wake a transfer blocked on the client's side.
	stopClose := context.AfterFunc(t.ctx, func() { abortiveClose(conn) })
	defer stopClose()
	t.mu.Lock()
	t.data = conn
	cause := t.stopped
	t.mu.Unlock()
	if cause != nil {
		abortiveClose(conn)
		return rep(codeTransferAborted, "Transfer aborted."), 0, dc, cause
	}
	s.srv.Audit.TransferStart(s.recordSession(), audit.TransferStart{
		ID: x.rec.ID, Direction: x.rec.Direction, ClientName: x.rec.ClientName,
		Path: x.rec.Path, Type: x.rec.Type, Offset: x.rec.Offset, Upstream: s.upInfo.Endpoint,
	})
	s.reply(rep(codeFileStatusOK, x.preamble))
	// The TLS handshake of a protected data connection follows the 150:
	// clients (curl, the z/OS client with AT-TLS) start it when they have
	// the preliminary reply, as vsftpd expects.
	if s.protP {
		tc, err := s.protectData(t.ctx, conn)
		if err != nil {
			return rep(codeCantOpenData, "TLS negotiation on the data connection failed."), 0, dc, err
		}
		t.mu.Lock()
		t.data = tc
		t.mu.Unlock()
		dc.Conn = tc
	}
	if every := s.srv.progressInterval(); every > 0 {
		stop := s.reportProgress(x.rec, &t.moved, every)
		defer stop()
	}

	n, err := x.run(t.ctx, dc)
	if err == nil {
		err = dc.closeGracefully()
	} else {
		abortiveClose(conn)
	}
	if err != nil {
		switch {
		case t.stopCause() != nil:
			return rep(codeTransferAborted, "Transfer aborted."), n, dc, errors.Join(t.stopCause(), err)
		case dc.failed():
			return rep(codeTransferAborted, "Data connection broken, transfer aborted."), n, dc, err
		case dc.idleExpired():
			return rep(codeTransferAborted, "Transfer timed out, aborted."), n, dc, err
		}
		r := replyFor(err, true)
		if r.code == codeTransferAborted && isConnLost(err) {
			s.upLost.Store(true)
		}
		return r, n, dc, err
	}
	return rep(codeTransferOK, "Transfer complete."), n, dc, nil
}

// clearTransfer ends the transfer's life as "running" and writes its
// final reply, both under the reply lock: a command that sees no running
// transfer therefore replies after the 226, and a client that reacts to
// the 226 at once (ABOR, STAT) never sees a transfer that has ended.
func (s *session) clearTransfer(final *reply) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.xmu.Lock()
	s.xfer = nil
	s.xmu.Unlock()
	if final != nil {
		s.writeReplyLocked(*final)
	}
}

// confidence rates a finished transfer as the z/OS client does: high when
// it completed without error, noeof when it was stopped (ABOR, a timeout,
// the session's end) before the end of the data, low when the client or
// the partner broke off, unknown when no data connection was made.
func confidence(err error, dc *dataConn, stopped error) string {
	switch {
	case dc == nil:
		return audit.ConfidenceUnknown
	case err == nil:
		return audit.ConfidenceHigh
	case stopped != nil || dc.idleExpired():
		return audit.ConfidenceNoEOF
	}
	return audit.ConfidenceLow
}

// reportProgress writes a progress record every interval until stop is
// called, so operators can watch long transfers.
func (s *session) reportProgress(rec audit.Transfer, moved *atomic.Int64, every time.Duration) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s.srv.Audit.Progress(s.recordSession(), audit.Progress{
					ID: rec.ID, Direction: rec.Direction, ClientName: rec.ClientName,
					Path: rec.Path, Bytes: moved.Load(), Elapsed: time.Since(start),
				})
			}
		}
	}()
	return func() { close(done) }
}

// Causes of a transfer stopped from outside its goroutine.
var (
	errAborted      = errors.New("proxy: transfer aborted by ABOR")
	errSessionEnded = errors.New("proxy: session ended during the transfer")
)

func (t *transfer) stopCause() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopped
}

// openData makes the data connection prepared by PORT/EPRT or PASV/EPSV.
func (s *session) openData(ctx context.Context, d *dataSetup) (net.Conn, error) {
	timeout := s.srv.dataConnTimeout()
	var c net.Conn
	var err error
	if d.pasv != nil {
		c, err = acceptData(ctx, d.pasv, d.peer, time.Now().Add(timeout))
	} else {
		local := s.local.Addr()
		if local.Is4() != d.active.Addr().Is4() {
			local = netip.Addr{} // let the kernel choose for the other family
		}
		c, err = dialData(ctx, local, d.active, timeout)
	}
	return c, err
}

// waitTransfer blocks until the running transfer, if any, has finished.
// Commands other than ABOR, STAT and NOOP wait here, which gives the
// queueing RFC 959 asks for.
func (s *session) waitTransfer() {
	if t := s.currentTransfer(); t != nil {
		<-t.done
	}
}

// abortTransfer stops the running transfer: it closes the data connection
// (the upstream side then sees a failed read or write and stops), and if
// the transfer has not ended within grace (an upstream that hangs), it
// cancels the transfer's context, which closes the upstream session too.
// It reports whether a transfer was running.
func (s *session) abortTransfer(cause error, grace time.Duration) bool {
	t := s.currentTransfer()
	if t == nil {
		return false
	}
	t.mu.Lock()
	if t.stopped == nil {
		t.stopped = cause
	}
	data := t.data
	t.mu.Unlock()
	if data != nil {
		abortiveClose(data)
	} else {
		// Still waiting for the data connection: stop waiting. Nothing
		// has reached the partner yet, so cancelling loses nothing.
		t.cancel()
	}
	select {
	case <-t.done:
	case <-time.After(grace):
		t.cancel()
		<-t.done
	}
	return true
}

// dataConn wraps a data connection: it counts bytes, remembers the first
// error of the connection itself (as opposed to the upstream's), and runs
// the transfer-idle watchdog, which cancels the transfer when no byte has
// moved for the timeout. The watchdog covers both a client that stops
// reading or writing and a partner that stops answering.
type dataConn struct {
	net.Conn
	n       *atomic.Int64
	hash    hash.Hash // SHA-256 of the bytes on the client's side; nil if off
	errMu   sync.Mutex
	err     error // first read or write error other than io.EOF
	idle    time.Duration
	watch   *time.Timer
	expired atomic.Bool
}

func newDataConn(c net.Conn, moved *atomic.Int64, idle time.Duration, cancel context.CancelFunc, hashOn bool) *dataConn {
	dc := &dataConn{Conn: c, n: moved, idle: idle}
	if hashOn {
		dc.hash = sha256.New()
	}
	if idle > 0 {
		dc.watch = time.AfterFunc(idle, func() {
			dc.expired.Store(true)
			abortiveClose(c)
			cancel()
		})
	}
	return dc
}

// sum is the hex SHA-256 of the bytes moved so far, or "" if hashing is off.
func (dc *dataConn) sum() string {
	if dc.hash == nil {
		return ""
	}
	return hex.EncodeToString(dc.hash.Sum(nil))
}

func (dc *dataConn) progress(p []byte, n int) {
	if n > 0 {
		if dc.hash != nil {
			dc.hash.Write(p[:n])
		}
		dc.n.Add(int64(n))
		if dc.watch != nil {
			dc.watch.Reset(dc.idle)
		}
	}
}

func (dc *dataConn) Read(p []byte) (int, error) {
	n, err := dc.Conn.Read(p)
	dc.progress(p, n)
	if err != nil && err != io.EOF {
		dc.setErr(err)
	}
	return n, err
}

func (dc *dataConn) Write(p []byte) (int, error) {
	n, err := dc.Conn.Write(p)
	dc.progress(p, n)
	if err != nil {
		dc.setErr(err)
	}
	return n, err
}

func (dc *dataConn) setErr(err error) {
	dc.errMu.Lock()
	if dc.err == nil {
		dc.err = err
	}
	dc.errMu.Unlock()
}

func (dc *dataConn) failed() bool {
	dc.errMu.Lock()
	defer dc.errMu.Unlock()
	return dc.err != nil && !dc.expired.Load()
}

func (dc *dataConn) idleExpired() bool { return dc.expired.Load() }

func (dc *dataConn) stop() {
	if dc.watch != nil {
		dc.watch.Stop()
	}
}

// abortiveClose ends a failed transfer with a TCP reset, not FIN. In
// stream mode the end of the data connection marks the end of the file, so
// a FIN after a broken download would let the client take a truncated
// file for a complete one; the reset tells it the data is incomplete
// even if it never reads the 426.
func abortiveClose(c net.Conn) {
	raw := c
	// tls.Conn and the PROXY-protocol wrapper both expose the TCP
	// connection underneath.
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		raw = u.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	raw.Close()
}

// closeGracefully ends a good transfer with FIN, never RST, and returns
// only when the client's TCP has acknowledged every byte: the final reply
// must not overtake data still queued for a slow reader (the z/OS client
// rates a transfer's check confidence High only when the 226 comes after
// the complete data and a FIN). CloseWrite sends the FIN (a TLS
// close_notify first on a protected connection); waitSent then waits,
// up to the transfer-idle timeout, until the kernel's send queue is empty.
// (SO_LINGER would do the same, but lingering closes kept passive ports
// from being bound again.)
// Nothing is left unread (a STOR was read to EOF, a RETR client sends
// nothing), so the close sends no RST. It does not wait for the client's
// own FIN: clients may read the 226 before they close their end.
func (dc *dataConn) closeGracefully() error {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := dc.Conn.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			dc.Conn.Close()
			return err
		}
	}
	raw := dc.Conn
	if u, ok := raw.(interface{ NetConn() net.Conn }); ok {
		raw = u.NetConn()
	}
	limit := dc.idle
	if limit <= 0 {
		limit = 120 * time.Second
	}
	waitSent(raw, time.Now().Add(limit))
	return dc.Conn.Close()
}
