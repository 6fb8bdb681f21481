package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"time"
)

// Front-end TLS (RFC 4217): clients that can (z/OS with AT-TLS, lftp,
// curl --ssl-reqd) may protect their own leg of the session with AUTH TLS;
// the partner's leg is always protected regardless. The commands are
// always ftpgate's own, never passed to a partner.

// tlsHandshakeTimeout bounds a front-end TLS handshake, control or data.
const tlsHandshakeTimeout = 15 * time.Second

// cmdAUTH upgrades the control connection to TLS. A second AUTH (a
// renegotiation) is refused.
func (s *session) cmdAUTH(arg string) reply {
	if s.srv.TLSConfig == nil {
		return rep(codeNotImplemented, "AUTH is not offered here.")
	}
	if s.tls {
		return rep(codeBadSequence, "TLS is already in use.")
	}
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "TLS", "TLS-C", "SSL", "TLS-P":
	default:
		return rep(codeParamNotImpl, "Unsupported security mechanism; use AUTH TLS.")
	}
	// The 234 goes out in clear; the handshake follows at once. The
	// client sends nothing between the two, so no byte is buffered.
	s.reply(rep(234, "AUTH TLS successful."))
	tc := tls.Server(s.conn, s.srv.TLSConfig)
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.log.Info().Err(err).Msg("front-end TLS handshake failed")
		s.quit, s.endReason = true, "TLS handshake failed"
		return reply{}
	}
	tc.SetDeadline(time.Time{})
	// s.conn stays the TCP connection: deadlines and Close on it govern
	// the TLS layer too, and other goroutines use it. Only the reader
	// and the writer move onto TLS.
	s.wmu.Lock()
	s.bw.Reset(tc)
	s.wmu.Unlock()
	s.lr = newLineReader(bufio.NewReaderSize(tc, 4096), s.srv.maxLine())
	s.tls = true
	st := tc.ConnectionState()
	s.log.Info().Str("tls", tls.VersionName(st.Version)).Str("cipher", tls.CipherSuiteName(st.CipherSuite)).Msg("front-end TLS")
	return reply{}
}

func (s *session) cmdPBSZ(arg string) reply {
	if !s.tls {
		return rep(codeBadSequence, "AUTH TLS first.")
	}
	s.pbsz = true
	return rep(codeOK, "PBSZ=0")
}

// cmdPROT sets the data-connection protection: P (TLS) or C (clear, unless
// the server requires TLS). S and E are RFC 2228 levels TLS cannot give.
func (s *session) cmdPROT(arg string) reply {
	if !s.tls || !s.pbsz {
		return rep(codeBadSequence, "PBSZ first.")
	}
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "P":
		s.protP = true
		return rep(codeOK, "Protection level set to Private.")
	case "C":
		if s.srv.RequireTLS {
			return rep(534, "Clear data connections are not allowed here.")
		}
		s.protP = false
		return rep(codeOK, "Protection level set to Clear.")
	case "S", "E":
		return rep(536, "Protection level not supported.")
	}
	return rep(codeSyntaxArg, "Unrecognised PROT level.")
}

// cmdCCC would turn the control connection back to clear text: refused.
func (s *session) cmdCCC(string) reply {
	return rep(534, "Request denied for policy reasons: the control connection stays protected.")
}

// protectData wraps a data connection in TLS when the client asked for
// PROT P. ftpgate is the TLS server on data connections too (RFC 4217
// section 7), whichever side connected.
func (s *session) protectData(ctx context.Context, c net.Conn) (net.Conn, error) {
	if !s.protP {
		return c, nil
	}
	tc := tls.Server(c, s.srv.TLSConfig)
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// tlsRequired reports a command refused because TLS is required and the
// control connection is still clear: before TLS only AUTH, FEAT, HELP,
// NOOP, QUIT and SYST are allowed, so no password crosses in clear.
func (s *session) tlsRequired(verb string) bool {
	if !s.srv.RequireTLS || s.tls {
		return false
	}
	switch verb {
	case "AUTH", "FEAT", "HELP", "NOOP", "QUIT", "SYST":
		return false
	}
	return true
}
