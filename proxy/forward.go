package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/translate"
)

// When the partner speaks FTP itself (an FTPS partner, possibly a z/OS FTP
// server), the session passes the client's dialogue through: SITE
// parameters, quoted MVS names, TYPE and MODE reach the partner, and its
// replies, multi-line ones included, come back as they were. ftpgate keeps
// to itself what belongs to the client's side of the gateway (login, the
// client's data connections, ABOR, QUIT, NOOP, FEAT, HELP) and refuses
// what would weaken the partner link's security.

// localVerbs are answered by ftpgate even on a pass-through session.
var localVerbs = map[string]bool{
	"USER": true, "PASS": true, "ACCT": true, "QUIT": true, "NOOP": true,
	"PORT": true, "EPRT": true, "PASV": true, "EPSV": true, "ABOR": true,
	"FEAT": true, "HELP": true, "OPTS": true,
	// The client's own leg: RFC 4217 on ftpgate's listener.
	"AUTH": true, "PBSZ": true, "PROT": true, "CCC": true,
}

// refusedVerbs would renegotiate the security of the link to the partner
// (RFC 2228 security data and protected commands, REIN: a new login on the
// same connection). AUTH, PBSZ, PROT and CCC never reach a partner either:
// they are ftpgate's own, for the client's leg.
var refusedVerbs = map[string]bool{
	"ADAT": true, "MIC": true, "CONF": true, "ENC": true, "REIN": true,
}

// forwardTransferVerbs use a data connection.
var forwardTransferVerbs = map[string]string{
	"RETR": "retrieve", "STOR": "store", "STOU": "store", "APPE": "append",
	"LIST": "list", "NLST": "list", "MLSD": "list",
}

// forward passes one command to an FTP-speaking partner.
func (s *session) forward(fwd translate.Forwarder, verb, arg string) reply {
	if refusedVerbs[verb] {
		s.log.Warn().Str("cmd", verb).Msg("refused a command that would weaken the partner link")
		return rep(534, "Request denied for policy reasons: ftpgate keeps the partner link protected.")
	}
	if verb == "SITE" {
		if ft, ok := siteFiletype(arg); ok {
			s.filetype = ft
			if !s.decision.SiteFiletypeAllowed(ft) {
				return rep(codeFileUnavailable, "SITE FILETYPE="+ft+" is not allowed through ftpgate.")
			}
		}
		if len(s.site) < maxSiteParams {
			s.site = append(s.site, arg)
		}
	}
	if dir, ok := forwardTransferVerbs[verb]; ok {
		return s.forwardTransfer(fwd, verb, arg, dir)
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	r, err := fwd.Forward(ctx, verb, arg)
	if err != nil {
		if errors.Is(err, translate.ErrUnsupported) {
			return rep(codeNotImplemented, "Command not implemented.")
		}
		return s.upstreamErr(err)
	}
	return reply{code: r.Code, lines: r.Lines}
}

// forwardTransfer runs a data command on the partner. The client's data
// connection is opened only when the partner has answered with its
// preliminary reply, so a refusal (550 for a missing data set) reaches the
// client without a data connection, as it would from the partner itself.
func (s *session) forwardTransfer(fwd translate.Forwarder, verb, arg, dir string) reply {
	rec := audit.Transfer{Direction: dir, ClientName: arg, Path: arg, Type: "partner"}
	return s.startTransfer(xferSpec{
		verb: verb, arg: arg, rec: rec, forward: true,
		runForward: func(ctx context.Context, t *transfer, setup *dataSetup, x *xferSpec) (reply, int64, *dataConn, error) {
			var dc *dataConn
			var openErr error
			final, n, err := fwd.Transfer(ctx, verb, arg, func(prelim translate.Reply) (io.ReadWriter, error) {
				conn, err := s.openData(ctx, setup)
				if err != nil {
					openErr = err
					return nil, err
				}
				dc = newDataConn(conn, &t.moved, s.srv.transferIdle(), t.cancel, !s.srv.DisableTransferHash)
				t.mu.Lock()
				t.data = conn
				t.mu.Unlock()
				context.AfterFunc(ctx, func() { abortiveClose(conn) })
				s.srv.Audit.TransferStart(s.recordSession(), audit.TransferStart{
					ID: x.rec.ID, Direction: x.rec.Direction, ClientName: x.rec.ClientName,
					Path: x.rec.Path, Type: x.rec.Type, Upstream: s.upInfo.Endpoint,
				})
				s.reply(reply{code: codeFileStatusOK, lines: prelim.Lines})
				if s.protP {
					tc, err := s.protectData(ctx, conn)
					if err != nil {
						openErr = err
						return nil, err
					}
					t.mu.Lock()
					t.data = tc
					t.mu.Unlock()
					dc.Conn = tc
				}
				return dc, nil
			})
			if dc != nil {
				defer dc.stop()
				if err == nil && final.Code/100 == 2 {
					err = dc.closeGracefully()
				} else {
					abortiveClose(dc.Conn)
				}
			}
			switch {
			case openErr != nil:
				return rep(codeCantOpenData, "Cannot open data connection."), n, nil, openErr
			case t.stopCause() != nil:
				return rep(codeTransferAborted, "Transfer aborted."), n, dc, errors.Join(t.stopCause(), err)
			case err != nil && dc != nil && dc.failed():
				return rep(codeTransferAborted, "Data connection broken, transfer aborted."), n, dc, err
			case err != nil:
				r := replyFor(err, true)
				if isConnLost(err) {
					s.upLost.Store(true)
				}
				return r, n, dc, err
			}
			r := reply{code: final.Code, lines: final.Lines}
			if final.Code/100 != 2 {
				err = fmt.Errorf("proxy: partner answered %d", final.Code)
			}
			return r, n, dc, err
		},
	})
}

// forwarder returns the session's pass-through partner, or nil when the
// partner is translated (SFTP).
func (s *session) forwarder() translate.Forwarder {
	if f, ok := s.up.(translate.Forwarder); ok && s.loggedIn {
		return f
	}
	return nil
}
