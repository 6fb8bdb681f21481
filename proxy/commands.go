package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
)

// argRule says whether a command takes an argument.
type argRule int

const (
	argOptional argRule = iota
	argNone
	argRequired
)

// commandSpec is one row of the command table. The dispatcher enforces
// the flags, so handlers only do their own work.
type commandSpec struct {
	run            func(s *session, arg string) reply
	needsLogin     bool
	usesUpstream   bool // needs a working upstream session
	duringTransfer bool // may run while a transfer is in progress
	arg            argRule
	help           string
}

// commands is the command table: verb → spec. It is filled once by init
// and never changed. Aliases (XPWD, XCWD, ...) are listed explicitly.
var commands map[string]commandSpec

func init() {
	login := func(c commandSpec) commandSpec { c.needsLogin = true; return c }
	up := func(c commandSpec) commandSpec { c.needsLogin, c.usesUpstream = true, true; return c }
	commands = map[string]commandSpec{
		"USER": {run: (*session).cmdUSER, arg: argRequired, help: "USER name or name@host[:port]"},
		"PASS": {run: (*session).cmdPASS, help: "PASS password"},
		"ACCT": {run: (*session).cmdACCT, help: "ACCT account (not needed)"},
		"QUIT": {run: (*session).cmdQUIT, arg: argNone},
		"NOOP": {run: (*session).cmdNOOP, arg: argNone, duringTransfer: true},
		"SYST": {run: (*session).cmdSYST, arg: argNone},
		"FEAT": {run: (*session).cmdFEAT, arg: argNone},
		"OPTS": {run: (*session).cmdOPTS, arg: argRequired},
		"HELP": {run: (*session).cmdHELP},
		"STAT": {run: (*session).cmdSTAT, duringTransfer: true},
		"ABOR": {run: (*session).cmdABOR, arg: argNone, duringTransfer: true},
		"ALLO": {run: (*session).cmdALLO},
		"MODE": {run: (*session).cmdMODE, arg: argRequired},
		"STRU": {run: (*session).cmdSTRU, arg: argRequired},
		"TYPE": login(commandSpec{run: (*session).cmdTYPE, arg: argRequired}),
		"PWD":  login(commandSpec{run: (*session).cmdPWD, arg: argNone}),
		"XPWD": login(commandSpec{run: (*session).cmdPWD, arg: argNone}),
		"CWD":  up(commandSpec{run: (*session).cmdCWD, arg: argRequired}),
		"XCWD": up(commandSpec{run: (*session).cmdCWD, arg: argRequired}),
		"CDUP": up(commandSpec{run: (*session).cmdCDUP, arg: argNone}),
		"XCUP": up(commandSpec{run: (*session).cmdCDUP, arg: argNone}),
		"PORT": login(commandSpec{run: (*session).cmdPORT, arg: argRequired}),
		"EPRT": login(commandSpec{run: (*session).cmdEPRT, arg: argRequired}),
		"PASV": login(commandSpec{run: (*session).cmdPASV, arg: argNone}),
		"EPSV": login(commandSpec{run: (*session).cmdEPSV}),
		"REST": login(commandSpec{run: (*session).cmdREST, arg: argRequired}),
		"RETR": up(commandSpec{run: (*session).cmdRETR, arg: argRequired}),
		"STOR": up(commandSpec{run: (*session).cmdSTOR, arg: argRequired}),
		"STOU": up(commandSpec{run: (*session).cmdSTOU}),
		"APPE": up(commandSpec{run: (*session).cmdAPPE, arg: argRequired}),
		"LIST": up(commandSpec{run: (*session).cmdLIST}),
		"NLST": up(commandSpec{run: (*session).cmdNLST}),
		"MLSD": up(commandSpec{run: (*session).cmdMLSD}),
		"MLST": up(commandSpec{run: (*session).cmdMLST}),
		"SIZE": up(commandSpec{run: (*session).cmdSIZE, arg: argRequired}),
		"MDTM": up(commandSpec{run: (*session).cmdMDTM, arg: argRequired}),
		"MFMT": up(commandSpec{run: (*session).cmdMFMT, arg: argRequired}),
		"DELE": up(commandSpec{run: (*session).cmdDELE, arg: argRequired}),
		"RMD":  up(commandSpec{run: (*session).cmdRMD, arg: argRequired}),
		"XRMD": up(commandSpec{run: (*session).cmdRMD, arg: argRequired}),
		"MKD":  up(commandSpec{run: (*session).cmdMKD, arg: argRequired}),
		"XMKD": up(commandSpec{run: (*session).cmdMKD, arg: argRequired}),
		"RNFR": up(commandSpec{run: (*session).cmdRNFR, arg: argRequired}),
		"RNTO": up(commandSpec{run: (*session).cmdRNTO, arg: argRequired}),
		"SITE": login(commandSpec{run: (*session).cmdSITE, arg: argRequired}),
		"AUTH": {run: (*session).cmdAUTH, arg: argRequired},
		"PBSZ": {run: (*session).cmdPBSZ, arg: argRequired},
		"PROT": {run: (*session).cmdPROT, arg: argRequired},
		"CCC":  {run: (*session).cmdCCC, arg: argNone},
	}
}

// features is the FEAT list (RFC 2389). LANG is deliberately absent: the
// z/OS client sends "LANG en" when it is listed, and there is nothing to
// translate.
var features = []string{
	"EPRT",
	"EPSV",
	"MDTM",
	"MFMT",
	"MLST type*;size*;modify*;perm*;unix.mode*;",
	"PASV",
	"REST STREAM",
	"SIZE",
	"TVFS",
	"UTF8",
}

// ---- login ----

func (s *session) cmdUSER(arg string) reply {
	if s.loggedIn {
		return rep(codeNotLoggedIn, "Cannot change to another user.")
	}
	s.user = arg
	s.setState(StateAuthenticating)
	return rep(codeNeedPassword, "Please specify the password.")
}

// cmdPASS takes the whole argument as the password, blanks included: the
// z/OS client sends password phrases and "old/new/new" forms.
func (s *session) cmdPASS(arg string) reply {
	if s.loggedIn {
		return rep(codeLoggedIn, "Already logged in.")
	}
	if s.user == "" {
		return rep(codeBadSequence, "Login with USER first.")
	}
	if lim := s.srv.Limiter; lim != nil {
		ok, until, err := lim.Check(s.remote.Addr(), s.user)
		switch {
		case err != nil:
			// The shared store is unreachable: fail closed.
			s.log.Error().Err(err).Msg("login limiter unavailable: login refused")
			s.srv.Audit.LoginFailure(s.recordSession(), "limits", "login limiter unavailable: "+err.Error())
			s.srv.observer().LoginFailed("", "limiter")
			return rep(codeUnavailable, "Service not available, try again later.")
		case !ok:
			reason := "locked out after repeated failed logins until " + until.UTC().Format(time.RFC3339)
			s.srv.observer().LoginFailed("", "lockout")
			return s.loginFailed("lockout", reason)
		}
	}
	dec := s.srv.Policy().Login(policy.LoginRequest{Client: s.remote.Addr(), User: s.user, TLS: s.tls})
	// VerifyPassword runs first, also for a denied login (it spends one
	// bcrypt comparison then), so the reply time does not tell whether
	// the user exists.
	passwordOK := dec.VerifyPassword(arg)
	obs := s.srv.observer()
	if !dec.Allow {
		s.srv.Audit.Decision(s.recordSession(), dec.Rule, "deny", dec.Reason)
		obs.Decision(dec.Rule, "deny")
		obs.LoginFailed(dec.Rule, "policy")
		return s.loginFailed(dec.Rule, dec.Reason)
	}
	s.srv.Audit.Decision(s.recordSession(), dec.Rule, "allow", "route to "+dec.Upstream.String())
	obs.Decision(dec.Rule, "allow")
	if !passwordOK {
		obs.LoginFailed(dec.Rule, "password")
		return s.loginFailed(dec.Rule, "password does not match")
	}
	var pw translate.Password
	if dec.Auth == policy.AuthPassthrough {
		pw = translate.Password(arg)
	}
	ctx, cancel := context.WithTimeout(s.ctx, max(s.srv.loginTimeout(), 5*time.Second))
	defer cancel()
	dialStart := time.Now()
	up, err := s.srv.Dialer.Dial(ctx, dec.Upstream, pw)
	obs.UpstreamDialed(dec.Rule, dec.Upstream.Scheme, time.Since(dialStart), err == nil)
	if err != nil {
		var hke *translate.HostKeyError
		switch {
		case errors.As(err, &hke):
			obs.LoginFailed(dec.Rule, "hostkey")
			s.log.Error().Err(err).Str("upstream", dec.Upstream.String()).Str("presented", hke.Fingerprint).Bool("unknown", hke.Unknown).
				Msg("upstream host key not trusted: session refused")
			s.srv.Audit.LoginFailure(s.recordSession(), dec.Rule, err.Error())
			return rep(codeUnavailable, "Service not available: the partner could not be verified.")
		case errors.Is(err, translate.ErrAuth):
			obs.LoginFailed(dec.Rule, "partner")
			return s.loginFailed(dec.Rule, "partner refused the login")
		default:
			obs.LoginFailed(dec.Rule, "unavailable")
			s.log.Warn().Err(err).Str("upstream", dec.Upstream.String()).Msg("upstream unavailable")
			s.srv.Audit.LoginFailure(s.recordSession(), dec.Rule, "partner unavailable: "+err.Error())
			return rep(codeUnavailable, "Service not available: the partner cannot be reached.")
		}
	}
	home := dec.Upstream.Dir
	fwd, forwarding := up.(translate.Forwarder)
	switch {
	case home == "":
		home, err = up.Home(ctx)
	case forwarding:
		// The partner keeps its own working directory: start it there.
		var r translate.Reply
		if r, err = fwd.Forward(ctx, "CWD", home); err == nil && r.Code/100 != 2 {
			err = fmt.Errorf("proxy: CWD %s: partner answered %d: %w", home, r.Code, translate.ErrNotFound)
		}
	default:
		var fi fs.FileInfo
		if fi, err = up.Stat(ctx, home); err == nil && !fi.IsDir() {
			err = translate.ErrNotDir
		}
	}
	if err != nil {
		up.Close()
		s.log.Warn().Err(err).Str("upstream", dec.Upstream.String()).Msg("upstream start directory unusable")
		s.srv.Audit.LoginFailure(s.recordSession(), dec.Rule, "start directory unusable: "+err.Error())
		return rep(codeUnavailable, "Service not available: the partner's start directory is unusable.")
	}
	if lim := s.srv.Limiter; lim != nil {
		lim.Success(s.remote.Addr(), s.user)
	}
	s.up, s.decision, s.loggedIn = up, dec, true
	s.cwd = path.Clean("/" + home)
	if d, ok := up.(translate.Describer); ok {
		s.upInfo = d.ConnInfo()
	}
	s.log = s.log.With().Str("user", s.user).Logger()
	s.srv.Audit.Login(s.recordSession(), audit.Login{
		Rule: dec.Rule, Auth: dec.Auth.String(), Upstream: dec.Upstream.String(),
		UpstreamProto: s.upInfo.Protocol, ServerVersion: s.upInfo.ServerVersion, HostKey: s.upInfo.HostKey,
		KeyExchange: s.upInfo.KeyExchange, Cipher: firstNonEmpty(s.upInfo.Cipher, s.upInfo.CipherSuite), MAC: s.upInfo.MAC,
		TLSVersion: s.upInfo.TLSVersion, PeerSubject: s.upInfo.PeerSubject, Insecure: s.upInfo.Insecure,
	})
	s.setState(StateReady)
	s.log.Info().Str("rule", dec.Rule).Str("upstream", dec.Upstream.String()).Str("host_key", s.upInfo.HostKey).Msg("login")
	return rep(codeLoggedIn, "Login successful.")
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// loginFailed records the refusal, counts it against the address and
// the user, and waits LoginFailDelay before the 530, to slow down password
// guessing.
func (s *session) loginFailed(rule, reason string) reply {
	s.srv.Audit.LoginFailure(s.recordSession(), rule, reason)
	if lim := s.srv.Limiter; lim != nil && rule != "lockout" {
		lim.Failure(s.remote.Addr(), s.user)
	}
	s.log.Info().Str("rule", rule).Str("reason", reason).Msg("login refused")
	if d := s.srv.loginFailDelay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
	}
	s.setState(StateNew)
	return rep(codeNotLoggedIn, "Login incorrect.")
}

// cmdACCT answers 202: no account is ever needed. It never answers 332,
// which the z/OS client cannot handle.
func (s *session) cmdACCT(string) reply { return rep(codeNotImplemented2, "ACCT not needed.") }

func (s *session) cmdQUIT(string) reply {
	s.quit = true
	return rep(codeClosing, "Goodbye.")
}

func (s *session) cmdNOOP(string) reply { return rep(codeOK, "NOOP ok.") }

// cmdSYST answers as Unix servers do; clients pick their LIST parser from it.
func (s *session) cmdSYST(string) reply { return rep(codeSystemType, "UNIX Type: L8") }

func (s *session) cmdFEAT(string) reply {
	lines := append([]string{"Features:"}, features...)
	if s.srv.TLSConfig != nil {
		lines = append(lines, "AUTH TLS", "PBSZ", "PROT")
	}
	return reply{code: codeSystemStatus, lines: append(lines, "End")}
}

func (s *session) cmdOPTS(arg string) reply {
	opt, val, _ := strings.Cut(arg, " ")
	switch strings.ToUpper(opt) {
	case "UTF8", "UTF-8":
		if v := strings.ToUpper(strings.TrimSpace(val)); v == "ON" || v == "" {
			return rep(codeOK, "Always in UTF8 mode.")
		}
		return rep(codeParamNotImpl, "UTF8 cannot be switched off.")
	case "MLST":
		return rep(codeOK, "MLST OPTS type;size;modify;perm;unix.mode;")
	}
	return rep(codeSyntaxArg, "Option not understood.")
}

func (s *session) cmdHELP(arg string) reply {
	if arg != "" {
		if c, ok := commands[strings.ToUpper(strings.TrimSpace(arg))]; ok && c.help != "" {
			return rep(codeHelp, "Syntax: "+c.help)
		}
	}
	verbs := make([]string, 0, len(commands))
	for v := range commands {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	lines := []string{"The following commands are recognized."}
	for i := 0; i < len(verbs); i += 8 {
		lines = append(lines, strings.Join(verbs[i:min(i+8, len(verbs))], " "))
	}
	return reply{code: codeHelp, lines: append(lines, "Help OK.")}
}

func (s *session) cmdSTAT(arg string) reply {
	if t := s.currentTransfer(); t != nil {
		return rep(codeFileStatus, fmt.Sprintf("Status: %d bytes transferred so far.", t.moved.Load()))
	}
	if arg == "" {
		lines := []string{"ftpgate status:", "Connected from " + s.remote.String()}
		if s.loggedIn {
			lines = append(lines, "Logged in as "+s.user, "Upstream "+s.decision.Upstream.String())
		} else {
			lines = append(lines, "Not logged in")
		}
		lines = append(lines, "TYPE: "+typeName(s.typ)+", MODE: Stream, STRU: File")
		if len(s.site) > 0 {
			lines = append(lines, "SITE parameters: "+strings.Join(s.site, " "))
		}
		return reply{code: codeSystemStatus, lines: append(lines, "End of status")}
	}
	if !s.loggedIn {
		return rep(codeNotLoggedIn, "Please login with USER and PASS.")
	}
	if s.upLost.Load() {
		return rep(codeUnavailable, "Connection to the partner was lost, closing control connection.")
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	entries, err := s.listing(ctx, stripListFlags(arg))
	if err != nil {
		return replyFor(err, false)
	}
	lines := []string{"Status follows:"}
	now := time.Now()
	var buf []byte
	for _, fi := range entries {
		buf = translate.AppendListLine(buf[:0], fi, now)
		lines = append(lines, strings.TrimRight(string(buf), "\r\n"))
	}
	return reply{code: codeFileStatus, lines: append(lines, "End of status")}
}

func (s *session) cmdABOR(string) reply {
	if s.abortTransfer(errAborted, 5*time.Second) {
		return rep(codeTransferOK, "ABOR successful.")
	}
	s.data.close()
	s.data = nil
	return rep(codeNoTransfer, "No transfer to abort.")
}

func (s *session) cmdALLO(string) reply {
	return rep(codeNotImplemented2, "ALLO not needed.")
}

// ---- representation ----

func typeName(t byte) string {
	if t == 'I' {
		return "BINARY"
	}
	return "ASCII"
}

// cmdTYPE accepts the types the z/OS client sends, in any letter case:
// A, A N, I and L 8. EBCDIC, Telnet and ASA formats and other byte sizes
// are refused honestly with 504.
func (s *session) cmdTYPE(arg string) reply {
	f := strings.Fields(strings.ToUpper(arg))
	switch {
	case len(f) == 1 && f[0] == "A", len(f) == 2 && f[0] == "A" && f[1] == "N":
		s.typ = 'A'
		return rep(codeOK, "Switching to ASCII mode.")
	case len(f) == 1 && f[0] == "I", len(f) == 2 && f[0] == "L" && f[1] == "8":
		s.typ = 'I'
		return rep(codeOK, "Switching to Binary mode.")
	case len(f) >= 1 && len(f) <= 2 && (f[0] == "A" || f[0] == "E" || f[0] == "L"):
		return rep(codeParamNotImpl, "Type not implemented.")
	}
	return rep(codeSyntaxArg, "Unrecognised TYPE.")
}

func (s *session) cmdMODE(arg string) reply {
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "S":
		return rep(codeOK, "Mode set to S.")
	case "B", "C":
		return rep(codeParamNotImpl, "Only stream mode is implemented.")
	}
	return rep(codeSyntaxArg, "Unrecognised MODE.")
}

func (s *session) cmdSTRU(arg string) reply {
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "F":
		return rep(codeOK, "Structure set to F.")
	case "R", "P":
		return rep(codeParamNotImpl, "Only file structure is implemented.")
	}
	return rep(codeSyntaxArg, "Unrecognised STRU.")
}

// ---- directories ----

// resolve turns a client path into an absolute upstream path.
func (s *session) resolve(arg string) string {
	if arg == "" {
		return s.cwd
	}
	if !strings.HasPrefix(arg, "/") {
		arg = s.cwd + "/" + arg
	}
	return path.Clean(arg)
}

func (s *session) cmdPWD(string) reply {
	return rep(codePathCreated, quotePath(s.cwd)+" is the current directory.")
}

func (s *session) cmdCWD(arg string) reply {
	p := s.resolve(arg)
	ctx, cancel := s.opCtx()
	defer cancel()
	fi, err := s.up.Stat(ctx, p)
	if err != nil {
		return s.upstreamErr(err)
	}
	if !fi.IsDir() {
		return rep(codeFileUnavailable, "Not a directory.")
	}
	s.cwd = p
	return rep(codeFileOK, "Directory successfully changed.")
}

func (s *session) cmdCDUP(string) reply { return s.cmdCWD("..") }

func (s *session) cmdMKD(arg string) reply {
	p := s.resolve(arg)
	ctx, cancel := s.opCtx()
	defer cancel()
	if err := s.up.Mkdir(ctx, p); err != nil {
		return s.upstreamErr(err)
	}
	return rep(codePathCreated, quotePath(p)+" created.")
}

func (s *session) cmdRMD(arg string) reply {
	ctx, cancel := s.opCtx()
	defer cancel()
	if err := s.up.Rmdir(ctx, s.resolve(arg)); err != nil {
		return s.upstreamErr(err)
	}
	return rep(codeFileOK, "Remove directory operation successful.")
}

// upstreamErr maps an error of a non-transfer upstream operation; a lost
// upstream also ends the session (421).
func (s *session) upstreamErr(err error) reply {
	r := replyFor(err, false)
	if r.code == codeUnavailable {
		s.upLost.Store(true)
	}
	if r.code == codeLocalError || r.code == codeUnavailable {
		s.log.Warn().Err(err).Msg("upstream operation failed")
	}
	return r
}

// ---- files ----

func (s *session) cmdDELE(arg string) reply {
	ctx, cancel := s.opCtx()
	defer cancel()
	if err := s.up.Remove(ctx, s.resolve(arg)); err != nil {
		return s.upstreamErr(err)
	}
	return rep(codeFileOK, "Delete operation successful.")
}

func (s *session) cmdRNFR(arg string) reply {
	p := s.resolve(arg)
	ctx, cancel := s.opCtx()
	defer cancel()
	if _, err := s.up.Stat(ctx, p); err != nil {
		return s.upstreamErr(err)
	}
	s.renameFrom = p
	return rep(codePending, "Ready for RNTO.")
}

func (s *session) cmdRNTO(arg string) reply {
	from := s.renameFrom
	s.renameFrom = ""
	if from == "" {
		return rep(codeBadSequence, "RNFR required first.")
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	if err := s.up.Rename(ctx, from, s.resolve(arg)); err != nil {
		return s.upstreamErr(err)
	}
	return rep(codeFileOK, "Rename successful.")
}

func (s *session) cmdSIZE(arg string) reply {
	ctx, cancel := s.opCtx()
	defer cancel()
	fi, err := s.up.Stat(ctx, s.resolve(arg))
	if err != nil {
		return s.upstreamErr(err)
	}
	if !fi.Mode().IsRegular() {
		return rep(codeFileUnavailable, "Could not get file size.")
	}
	return rep(codeFileStatus, strconv.FormatInt(fi.Size(), 10))
}

const mdtmLayout = "20060102150405"

func (s *session) cmdMDTM(arg string) reply {
	ctx, cancel := s.opCtx()
	defer cancel()
	fi, err := s.up.Stat(ctx, s.resolve(arg))
	if err != nil {
		return s.upstreamErr(err)
	}
	return rep(codeFileStatus, fi.ModTime().UTC().Format(mdtmLayout))
}

// cmdMFMT sets a modification time (draft-somers-ftp-mfxx): "MFMT
// YYYYMMDDHHMMSS[.sss] path", in UTC.
func (s *session) cmdMFMT(arg string) reply {
	ts, name, ok := strings.Cut(arg, " ")
	if !ok || name == "" {
		return rep(codeSyntaxArg, "Syntax: MFMT YYYYMMDDHHMMSS path")
	}
	ts, _, _ = strings.Cut(ts, ".")
	mtime, err := time.ParseInLocation(mdtmLayout, ts, time.UTC)
	if err != nil || len(ts) != len(mdtmLayout) {
		return rep(codeSyntaxArg, "Bad time stamp.")
	}
	ch, ok := s.up.(translate.Chtimer)
	if !ok {
		return rep(codeNotImplemented, "Not supported by the partner.")
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	p := s.resolve(name)
	if err := ch.Chtimes(ctx, p, mtime); err != nil {
		return s.upstreamErr(err)
	}
	return rep(codeFileStatus, "Modify="+mtime.Format(mdtmLayout)+"; "+name)
}

func (s *session) cmdREST(arg string) reply {
	n, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64)
	if err != nil || n < 0 {
		return rep(codeSyntaxArg, "REST needs a non-negative byte offset.")
	}
	s.rest = n
	return rep(codePending, "Restart position accepted ("+strconv.FormatInt(n, 10)+").")
}

// takeRest returns and clears the REST offset: it applies to the next
// transfer only.
func (s *session) takeRest() int64 {
	n := s.rest
	s.rest = 0
	return n
}

func (s *session) cmdRETR(arg string) reply {
	p := s.resolve(arg)
	offset := s.takeRest()
	ctx, cancel := s.opCtx()
	fi, err := s.up.Stat(ctx, p)
	cancel()
	if err != nil {
		return s.upstreamErr(err)
	}
	if fi.IsDir() {
		return rep(codeFileUnavailable, "Not a plain file.")
	}
	if offset > fi.Size() {
		return rep(codeFileUnavailable, "Restart offset beyond the end of the file.")
	}
	typ, up := s.typ, s.up
	return s.startTransfer(xferSpec{
		verb: "RETR", arg: arg,
		rec:      audit.Transfer{Direction: "retrieve", ClientName: arg, Path: p, Type: string(typ), Offset: offset},
		preamble: fmt.Sprintf("Opening %s mode data connection for %s (%d bytes).", typeName(typ), arg, fi.Size()),
		run: func(ctx context.Context, data *dataConn) (int64, error) {
			return retrieveTo(ctx, up, p, offset, data, typ)
		},
	})
}

// retrieveTo copies an upstream file to the client, converting line ends
// for TYPE A.
func retrieveTo(ctx context.Context, up translate.Upstream, p string, offset int64, data io.Writer, typ byte) (int64, error) {
	if typ != 'A' {
		return up.Retrieve(ctx, p, offset, data)
	}
	w := translate.NewASCIIWriter(data)
	n, err := up.Retrieve(ctx, p, offset, w)
	if f, ok := w.(interface{ Flush() error }); ok && err == nil {
		err = f.Flush()
	}
	return n, err
}

func (s *session) cmdSTOR(arg string) reply {
	offset := s.takeRest()
	return s.store("STOR", arg, s.resolve(arg), translate.StoreOptions{Offset: offset}, "store")
}

func (s *session) cmdAPPE(arg string) reply {
	s.takeRest()
	return s.store("APPE", arg, s.resolve(arg), translate.StoreOptions{Append: true}, "append")
}

// cmdSTOU stores under a name ftpgate makes up; RFC 1123 4.1.2.9 asks for
// the name in the 150 reply ("FILE: name").
func (s *session) cmdSTOU(arg string) reply {
	s.takeRest()
	name := "ftpgate." + time.Now().UTC().Format("20060102150405") + "." + randomHex(4)
	r := s.store("STOU", arg, s.resolve(name), translate.StoreOptions{}, "store")
	return r
}

func (s *session) store(verb, arg, p string, opt translate.StoreOptions, dir string) reply {
	typ, up, max := s.typ, s.up, s.decision.MaxFileSize()
	// Refuse before the 150 what the partner would refuse anyway: RFC
	// 959 allows no 550 after a STOR's preliminary reply, and a target
	// that is a directory or lies in a missing one is known now.
	// The target is asked first: when it exists (an overwrite) its
	// directory does too, so one round trip settles it.
	ctx, cancel := s.opCtx()
	defer cancel()
	target, err := up.Stat(ctx, p)
	switch {
	case err == nil && target.IsDir():
		return rep(codeFileUnavailable, "Is a directory.")
	case err != nil:
		parent, perr := up.Stat(ctx, path.Dir(p))
		if perr != nil {
			return s.upstreamErr(perr)
		}
		if !parent.IsDir() {
			return rep(codeFileUnavailable, "Not a directory.")
		}
	}
	preamble := fmt.Sprintf("Ok to send data (%s mode).", typeName(typ))
	if verb == "STOU" {
		preamble = "FILE: " + path.Base(p)
	}
	return s.startTransfer(xferSpec{
		verb: verb, arg: arg,
		rec:      audit.Transfer{Direction: dir, ClientName: arg, Path: p, Type: string(typ), Offset: opt.Offset},
		preamble: preamble,
		run: func(ctx context.Context, data *dataConn) (int64, error) {
			var r io.Reader = data
			if max > 0 {
				r = &limitReader{r: data, max: max}
			}
			if typ == 'A' {
				r = translate.NewASCIIReader(r)
			}
			return up.Store(ctx, p, r, opt)
		},
	})
}

// ---- listings ----

// stripListFlags drops leading "ls" options ("-la", "-a") that clients
// send with LIST, as vsftpd does; ftpgate's listing always shows all.
func stripListFlags(arg string) string {
	arg = strings.TrimSpace(arg)
	for strings.HasPrefix(arg, "-") {
		_, rest, _ := strings.Cut(arg, " ")
		arg = strings.TrimSpace(rest)
	}
	return arg
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// listing returns the entries to list for arg: a directory's contents, a
// single file, or (with a glob in the last element) the matching entries.
func (s *session) listing(ctx context.Context, arg string) ([]fs.FileInfo, error) {
	p := s.resolve(arg)
	if arg != "" && hasGlob(path.Base(p)) {
		dir, pattern := path.Split(p)
		entries, err := s.up.ReadDir(ctx, path.Clean(dir))
		if err != nil {
			return nil, err
		}
		var out []fs.FileInfo
		for _, fi := range entries {
			if ok, _ := path.Match(pattern, fi.Name()); ok {
				out = append(out, fi)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("proxy: no match for %q: %w", arg, translate.ErrNotFound)
		}
		return out, nil
	}
	fi, err := s.up.Stat(ctx, p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []fs.FileInfo{fi}, nil
	}
	return s.up.ReadDir(ctx, p)
}

// listTransfer sends a listing, already formatted, over a data connection.
func (s *session) listTransfer(verb, arg string, body []byte) reply {
	return s.startTransfer(xferSpec{
		verb: verb, arg: arg,
		rec:      audit.Transfer{Direction: "list", ClientName: arg, Path: s.resolve(stripListFlags(arg)), Type: "A"},
		preamble: "Here comes the directory listing.",
		run: func(ctx context.Context, data *dataConn) (int64, error) {
			n, err := data.Write(body)
			return int64(n), err
		},
	})
}

func (s *session) cmdLIST(arg string) reply {
	ctx, cancel := s.opCtx()
	entries, err := s.listing(ctx, stripListFlags(arg))
	cancel()
	if err != nil {
		return s.upstreamErr(err)
	}
	now := time.Now()
	var body []byte
	for _, fi := range entries {
		if translate.ListableName(fi.Name()) {
			body = translate.AppendListLine(body, fi, now)
		}
	}
	return s.listTransfer("LIST", arg, body)
}

// cmdNLST sends bare names with CRLF; a pattern is matched against the
// directory (the z/OS client's MGET and MDELETE depend on it) and no match
// is 550.
func (s *session) cmdNLST(arg string) reply {
	a := stripListFlags(arg)
	ctx, cancel := s.opCtx()
	entries, err := s.listing(ctx, a)
	var target fs.FileInfo
	if err == nil && a != "" && !hasGlob(path.Base(a)) {
		target, err = s.up.Stat(ctx, s.resolve(a))
	}
	cancel()
	if err != nil {
		return s.upstreamErr(err)
	}
	// Names come back as the client must send them to RETR or DELE them
	// from where it is, as vsftpd and the z/OS server answer: "NLST sub"
	// and "NLST sub/*.txt" give "sub/x.txt", "NLST x.txt" gives "x.txt".
	prefix := ""
	switch {
	case a == "":
	case hasGlob(path.Base(a)):
		if d := path.Dir(a); d != "." {
			prefix = strings.TrimSuffix(d, "/") + "/"
		}
	case target != nil && target.IsDir():
		prefix = strings.TrimSuffix(a, "/") + "/"
	case target != nil:
		if translate.ListableName(a) {
			return s.listTransfer("NLST", arg, []byte(a+"\r\n"))
		}
	}
	var body []byte
	for _, fi := range entries {
		if translate.ListableName(fi.Name()) {
			body = append(append(append(body, prefix...), fi.Name()...), '\r', '\n')
		}
	}
	return s.listTransfer("NLST", arg, body)
}

func (s *session) cmdMLSD(arg string) reply {
	p := s.resolve(arg)
	ctx, cancel := s.opCtx()
	defer cancel()
	fi, err := s.up.Stat(ctx, p)
	if err != nil {
		return s.upstreamErr(err)
	}
	if !fi.IsDir() {
		return rep(codeFileUnavailable, "Not a directory.")
	}
	entries, err := s.up.ReadDir(ctx, p)
	if err != nil {
		return s.upstreamErr(err)
	}
	body := translate.AppendMLSxFacts(nil, fi, "cdir")
	body = append(append(body, '.'), '\r', '\n')
	for _, e := range entries {
		if translate.ListableName(e.Name()) {
			body = translate.AppendMLSxFacts(body, e, "")
			body = append(append(body, e.Name()...), '\r', '\n')
		}
	}
	return s.listTransfer("MLSD", arg, body)
}

// cmdMLST answers on the control connection (RFC 3659 7.2): one facts line
// for the object, starting with a space.
func (s *session) cmdMLST(arg string) reply {
	p := s.resolve(arg)
	ctx, cancel := s.opCtx()
	defer cancel()
	fi, err := s.up.Stat(ctx, p)
	if err != nil {
		return s.upstreamErr(err)
	}
	facts := string(translate.AppendMLSxFacts(nil, fi, ""))
	return reply{code: codeFileOK, lines: []string{"Listing " + p, " " + facts + p, "End"}}
}

// ---- SITE ----

// maxSiteParams bounds what a session remembers of SITE commands.
const maxSiteParams = 64

// cmdSITE handles SITE CHMOD and SITE HELP; any other SITE parameters
// (the z/OS client's LRECL=, RECFM=, BLKSIZE=, ...) are accepted with 200
// and recorded, so a batch job that sends them keeps return code 0.
func (s *session) cmdSITE(arg string) reply {
	sub, rest, _ := strings.Cut(strings.TrimSpace(arg), " ")
	switch strings.ToUpper(sub) {
	case "HELP":
		return reply{code: codeHelp, lines: []string{"SITE commands:", "CHMOD mode path", "HELP", "Other parameters are accepted and recorded."}}
	case "CHMOD":
		mode, name, ok := strings.Cut(strings.TrimSpace(rest), " ")
		m, err := strconv.ParseUint(mode, 8, 32)
		if !ok || err != nil || m > 0o7777 || strings.TrimSpace(name) == "" {
			return rep(codeSyntaxArg, "Syntax: SITE CHMOD octal-mode path")
		}
		if s.upLost.Load() {
			return rep(codeUnavailable, "Connection to the partner was lost, closing control connection.")
		}
		ch, ok := s.up.(translate.Chmoder)
		if !ok {
			return rep(codeNotImplemented, "Not supported by the partner.")
		}
		ctx, cancel := s.opCtx()
		defer cancel()
		if err := ch.Chmod(ctx, s.resolve(name), fs.FileMode(m)&fs.ModePerm|unixSpecial(m)); err != nil {
			return s.upstreamErr(err)
		}
		return rep(codeOK, "SITE CHMOD command ok.")
	}
	if ft, ok := siteFiletype(arg); ok {
		s.filetype = ft
		if !s.decision.SiteFiletypeAllowed(ft) {
			// JES submits jobs and SQL runs Db2 queries on a z/OS partner;
			// the talk's advice is to switch both off. The mode is kept,
			// so the transfers that follow are refused too: the z/OS
			// client ignores an error to a typed SITE and would otherwise
			// upload the JCL as a plain file.
			s.log.Warn().Str("filetype", ft).Msg("SITE FILETYPE refused")
			return rep(codeFileUnavailable, "SITE FILETYPE="+ft+" is not allowed through ftpgate.")
		}
	}
	if len(s.site) < maxSiteParams {
		s.site = append(s.site, arg)
	}
	return rep(codeOK, "SITE parameters accepted.")
}

// siteFiletype finds a FILETYPE parameter among SITE parameters. z/OS
// accepts the keyword abbreviated down to FILE, in any case.
func siteFiletype(arg string) (string, bool) {
	var ft string
	found := false
	for _, tok := range strings.Fields(arg) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok || len(k) < 4 || !strings.HasPrefix("FILETYPE", strings.ToUpper(k)) {
			continue
		}
		ft, found = strings.ToUpper(v), true
	}
	return ft, found
}

// filetypeBlocks lists the commands refused while FILETYPE=JES or SQL is
// in force: with those modes they would submit jobs, fetch job output or
// run queries rather than move files.
var filetypeBlocks = map[string]bool{
	"STOR": true, "APPE": true, "STOU": true, "RETR": true, "LIST": true, "NLST": true, "DELE": true, "MLSD": true,
}

// unixSpecial converts setuid, setgid and sticky bits from their octal
// form to fs.FileMode bits.
func unixSpecial(m uint64) fs.FileMode {
	var f fs.FileMode
	if m&0o4000 != 0 {
		f |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		f |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		f |= fs.ModeSticky
	}
	return f
}

// ---- data connections ----

func (s *session) setData(d *dataSetup) {
	s.data.close()
	s.data = d
}

// passiveRange is the rule's passive port range, or the server's.
func (s *session) passiveRange() PortRange {
	if pr := s.decision.DataPorts().PassivePorts; pr.Min != 0 {
		return PortRange{Min: pr.Min, Max: pr.Max}
	}
	return s.srv.PassivePorts
}

// checkActive applies the bounce protections to a PORT/EPRT target.
func (s *session) checkActive(ap netip.AddrPort) (reply, bool) {
	rules := s.decision.DataPorts()
	if !rules.Active {
		s.log.Warn().Str("rule", s.decision.Rule).Msg("refused PORT/EPRT: the rule allows passive mode only")
		return rep(codeNotImplemented, "Active mode is not allowed here; use PASV or EPSV."), false
	}
	if !s.srv.AllowForeignDataAddress && !rules.ForeignAddress && ap.Addr().Unmap() != s.remote.Addr() {
		s.log.Warn().Str("target", ap.String()).Msg("refused data connection to a foreign address")
		return rep(codeSyntaxArg, "Data connection to another address refused."), false
	}
	if ap.Addr().Unmap() == s.local.Addr() && ap.Port() == s.local.Port() {
		// The gateway's own control port: a file retrieved there would
		// run as commands in a session from the gateway's own address.
		s.log.Warn().Str("target", ap.String()).Msg("refused data connection to the gateway's own control port")
		return rep(codeSyntaxArg, "Data connection to this server's control port refused."), false
	}
	if !s.srv.AllowLowDataPorts && !rules.LowPorts && ap.Port() < 1024 {
		s.log.Warn().Str("target", ap.String()).Msg("refused data connection to a low port")
		return rep(codeSyntaxArg, "Data connection to a port below 1024 refused."), false
	}
	return reply{}, true
}

func (s *session) cmdPORT(arg string) reply {
	if s.epsvAll {
		return rep(codeBadSequence, "EPSV ALL in force, use EPSV.")
	}
	ap, err := parsePORT(arg)
	if err != nil {
		return rep(codeSyntaxArg, "Illegal PORT command.")
	}
	if r, ok := s.checkActive(ap); !ok {
		return r
	}
	s.setData(&dataSetup{active: ap})
	return rep(codeOK, "PORT command successful.")
}

func (s *session) cmdEPRT(arg string) reply {
	if s.epsvAll {
		return rep(codeBadSequence, "EPSV ALL in force, use EPSV.")
	}
	ap, err := parseEPRT(arg)
	if errors.Is(err, errUnknownNetProto) {
		return rep(codeBadProtocol, "Network protocol not supported, use (1,2).")
	}
	if err != nil {
		return rep(codeSyntaxArg, "Illegal EPRT command.")
	}
	if r, ok := s.checkActive(ap); !ok {
		return r
	}
	s.setData(&dataSetup{active: ap})
	return rep(codeOK, "EPRT command successful.")
}

func (s *session) cmdPASV(string) reply {
	if s.epsvAll {
		return rep(codeBadSequence, "EPSV ALL in force, use EPSV.")
	}
	local := s.local.Addr()
	if !local.Is4() {
		return rep(codeBadProtocol, "PASV is for IPv4; use EPSV.")
	}
	ln, err := listenPassive(s.ctx, local, s.passiveRange())
	if err != nil {
		s.log.Warn().Err(err).Msg("passive listen failed")
		return rep(codeCantOpenData, "Cannot open passive connection.")
	}
	port := addrPortOf(ln.Addr()).Port()
	if w := s.srv.WrapPassiveListener; w != nil {
		ln = w(ln)
	}
	s.setData(&dataSetup{pasv: ln, peer: s.remote.Addr()})
	adv := local
	if a := s.srv.PassiveAddress; a.IsValid() && a.Unmap().Is4() {
		adv = a.Unmap()
	}
	return rep(codePassive, formatPASV(netip.AddrPortFrom(adv, port)))
}

func (s *session) cmdEPSV(arg string) reply {
	local := s.local.Addr()
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "ALL":
		s.epsvAll = true
		return rep(codeOK, "EPSV ALL ok.")
	case "":
	case "1":
		if !local.Is4() {
			return rep(codeBadProtocol, "Network protocol not supported, use (2).")
		}
	case "2":
		if !local.Is6() {
			return rep(codeBadProtocol, "Network protocol not supported, use (1).")
		}
	default:
		return rep(codeSyntaxArg, "Unrecognised EPSV argument.")
	}
	ln, err := listenPassive(s.ctx, local, s.passiveRange())
	if err != nil {
		s.log.Warn().Err(err).Msg("passive listen failed")
		return rep(codeCantOpenData, "Cannot open passive connection.")
	}
	port := addrPortOf(ln.Addr()).Port()
	if w := s.srv.WrapPassiveListener; w != nil {
		ln = w(ln)
	}
	s.setData(&dataSetup{pasv: ln, peer: s.remote.Addr()})
	return rep(codeExtPassive, fmt.Sprintf("Entering Extended Passive Mode (|||%d|).", port))
}
