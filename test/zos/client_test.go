package zos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// The z/OS FTP client, emulated from its documented behaviour (z/OS
// Communications Server IP User's Guide and Commands; IP and SNA Codes):
//
//   - Login: with EXTENSIONS UTF8, FEAT right after the greeting and "LANG
//     en" only when FEAT lists LANG (the trace in "UTF-8 enabled control
//     connection"); then USER, 331, PASS with everything after "PASS " (a
//     password phrase keeps its blanks), 230. 332 is never expected.
//   - The session starts in TYPE A, MODE S, STRU F and TYPE is sent only
//     for ascii and binary.
//   - Before every PUT (and each file of an MPUT) of a data set, with
//     SENDSITE on (the default), a SITE command by itself with the data
//     set's attributes: "SITE FIXrecfm 80 LRECL=80 RECFM=FB BLKSIZE=27920".
//   - PUT without a remote name stores under the quoted local name.
//   - Every transfer gets a fresh data connection: PORT (EPRT with EPSV4
//     or on IPv6) by default; with FWFRIENDLY, PASV (EPSV with EPSV4 or on
//     IPv6). Then exactly one preliminary reply (125 or 150) and a final
//     226 or 250.
//   - TYPE A data from the server uses CRLF line ends; each line is a
//     record.
//   - MGET and MDELETE send NLST with the pattern, read bare names, then
//     RETR or DELE each one.
//   - With EXIT (or CLIENTEXIT TRUE) the job ends at the first 4xx or 5xx
//     reply, except one to a typed SITE (or the SITE SENDSITE sends),
//     which the client reports and ignores. A 5xx to QUOTE SITE ends it.
//   - Check confidence is High only when the final reply arrives after the
//     data is complete and the data connection ended with a FIN, not a
//     reset.
//   - INACTTIME (120 s) bounds every wait, on both connections.

// Confidence is the z/OS client's check confidence for a transfer.
type Confidence string

const (
	ConfHigh Confidence = "High" // final reply after complete data, ended by FIN
	ConfLow  Confidence = "Low"  // anything else once data flowed
	ConfNone Confidence = "None" // no data connection was made
)

// Failure is an error the client met: a 4xx or 5xx reply (Code) or a
// local problem (Local, Code 0).
type Failure struct {
	Subcommand string // the deck's subcommand name: "put", "quote", ...
	Line       int    // the deck line
	Command    string // the FTP command that failed; "" for a local error
	Code       int
	Text       string // the reply text, or the local problem
	Ignored    bool   // a typed SITE: reported, never ends the job
}

func (f Failure) String() string {
	if f.Command == "" {
		return fmt.Sprintf("%s (line %d): %s", f.Subcommand, f.Line, f.Text)
	}
	return fmt.Sprintf("%s (line %d): %s -> %d %s", f.Subcommand, f.Line, f.Command, f.Code, f.Text)
}

// Transfer is one data transfer as the client saw it.
type Transfer struct {
	Subcommand string // the deck line's subcommand and arguments
	Command    string // "STOR X", "RETR Y", "NLST Z*"
	DataCmd    string // PORT, EPRT, PASV or EPSV
	Prelim     []int  // preliminary replies received, in order
	Final      int    // the final reply code; 0 if none came
	Bytes      int64  // data bytes moved
	Confidence Confidence
	Why        string // why the confidence is not High
}

// Result is what a job run produced.
type Result struct {
	// Ended is the error that ended the job under EXIT; nil when the job
	// ran to its end (or its QUIT).
	Ended *Failure
	// Errors are every error met, including ignored ones and, without
	// EXIT, those the job went on after.
	Errors []Failure
	// Violations are protocol rules the server broke, as the z/OS client
	// would see them (a second preliminary reply, a bare LF in TYPE A
	// data, a reset data connection, ...). A correct server causes none.
	Violations []string
	Transfers  []Transfer
	Sent       []string // every command line sent, PASS masked
	Listings   []string // data of dir and ls, as received
	Log        strings.Builder
}

// Job is one run of the z/OS FTP client in batch (EXEC PGM=FTP).
type Job struct {
	Deck    *Deck
	Addr    string // host:port the deck's host line resolves to
	FTPData FTPData
	Netrc   []NetrcEntry
	Exit    bool // PARM='host (EXIT'
	Local   *DataSets
	// LocalPrefix is the job's TSO prefix, the local working directory a
	// job starts in, such as "ZOSJOB.".
	LocalPrefix string
	// RecvRate, when positive, is how many bytes per second the job takes
	// from a data connection: a client that writes what it receives more
	// slowly than the network delivers it (to tape, to a busy volume).
	RecvRate int
}

// session is the state of one running job. It is used by one goroutine
// only, except for the data transfer helpers, which say what they share.
type session struct {
	job  *Job
	ctx  context.Context
	res  *Result
	exit bool

	conn net.Conn
	tp   *textproto.Reader
	bw   *bufio.Writer

	typ      byte // 'A' or 'I'; the session starts in TYPE A
	lcwd     LocalCWD
	sendSite bool
	newAttrs Attrs // LOCSITE attributes for data sets a GET creates
	ended    bool  // the job stops: EXIT after an error, QUIT, or a lost connection
}

// reply is one server reply; text holds every line, joined by "\n".
type reply struct {
	code int
	text string
}

// Run runs the job and returns what it saw. It never panics on server
// behaviour; everything wrong is in Result.
func (j *Job) Run(ctx context.Context) *Result {
	s := &session{
		job:      j,
		ctx:      ctx,
		res:      &Result{},
		exit:     j.Exit || j.FTPData.ClientExit,
		typ:      'A',
		lcwd:     LocalCWD(j.LocalPrefix),
		sendSite: j.FTPData.SendSite,
		newAttrs: defaultNewAttrs,
	}
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
	}()
	if !s.login() {
		return s.res
	}
	for _, c := range j.Deck.Cmds {
		if s.ended || ctx.Err() != nil {
			break
		}
		s.logf("EZA1736I %s", c)
		s.run(c)
	}
	if !s.ended {
		// End of INPUT: the client closes the session as QUIT does.
		s.do(Subcommand{Name: "quit"}, "QUIT", false, 221)
	}
	return s.res
}

func (s *session) logf(format string, args ...any) {
	fmt.Fprintf(&s.res.Log, format+"\n", args...)
}

func (s *session) violation(format string, args ...any) {
	v := fmt.Sprintf(format, args...)
	s.res.Violations = append(s.res.Violations, v)
	s.logf("VIOLATION %s", v)
}

// fail records an error; under EXIT it ends the job unless ignorable.
func (s *session) fail(f Failure) {
	s.res.Errors = append(s.res.Errors, f)
	s.logf("ERROR %s", f)
	if s.exit && !f.Ignored && !s.ended {
		s.res.Ended = &f
		s.ended = true
	}
}

func (s *session) localFail(c Subcommand, format string, args ...any) {
	s.fail(Failure{Subcommand: c.Name, Line: c.Line, Text: fmt.Sprintf(format, args...)})
}

func (s *session) deadline() time.Time { return time.Now().Add(s.job.FTPData.InactTime) }

// send writes one command line.
func (s *session) send(line string) error {
	shown := line
	if strings.HasPrefix(strings.ToUpper(line), "PASS ") {
		shown = "PASS ****"
	}
	s.res.Sent = append(s.res.Sent, shown)
	s.logf(">>> %s", shown)
	s.conn.SetWriteDeadline(s.deadline())
	if _, err := s.bw.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return s.bw.Flush()
}

// read reads one reply, multi-line or not.
func (s *session) read() (reply, error) {
	s.conn.SetReadDeadline(s.deadline())
	code, msg, err := s.tp.ReadResponse(0)
	if err != nil {
		var te *textproto.Error
		if !errors.As(err, &te) {
			return reply{}, err
		}
	}
	r := reply{code: code, text: msg}
	for _, l := range strings.Split(msg, "\n") {
		s.logf("%d %s", code, l)
	}
	return r, nil
}

// lost ends the job on a broken control connection.
func (s *session) lost(c Subcommand, cmd string, err error) {
	s.fail(Failure{Subcommand: c.Name, Line: c.Line, Command: cmd, Text: "control connection: " + err.Error()})
	s.ended = true
	if s.res.Ended == nil {
		f := s.res.Errors[len(s.res.Errors)-1]
		s.res.Ended = &f
	}
}

// do sends one command and judges its reply: a code in want is success;
// a 4xx or 5xx is an error (ignorable for a typed SITE); a preliminary
// reply where no transfer belongs is a violation. A 421 ends the job,
// EXIT or not: the server has closed the session.
func (s *session) do(c Subcommand, line string, ignorable bool, want ...int) (reply, bool) {
	if err := s.send(line); err != nil {
		s.lost(c, line, err)
		return reply{}, false
	}
	r, err := s.read()
	if err != nil {
		s.lost(c, line, err)
		return reply{}, false
	}
	for _, w := range want {
		if r.code == w {
			return r, true
		}
	}
	switch {
	case r.code >= 400:
		s.fail(Failure{Subcommand: c.Name, Line: c.Line, Command: line, Code: r.code, Text: r.text, Ignored: ignorable})
		if r.code == 421 {
			s.ended = true
		}
		return r, false
	case r.code < 200:
		s.violation("%s: preliminary reply %d to a command that opens no data connection", line, r.code)
		return r, false
	case len(want) > 0:
		// An unexpected positive reply: the client goes on, but a
		// correct server would not send it.
		s.violation("%s: reply %d; want one of %v", line, r.code, want)
	}
	return r, true
}

// login connects, reads the greeting and logs in.
func (s *session) login() bool {
	c := Subcommand{Name: "open"}
	d := net.Dialer{Timeout: s.job.FTPData.InactTime}
	conn, err := d.DialContext(s.ctx, "tcp", s.job.Addr)
	if err != nil {
		s.fail(Failure{Subcommand: "open", Text: "connect: " + err.Error()})
		s.ended = true
		return false
	}
	s.conn = conn
	s.tp = textproto.NewReader(bufio.NewReader(conn))
	s.bw = bufio.NewWriter(conn)
	for {
		r, err := s.read()
		if err != nil {
			s.lost(c, "", err)
			return false
		}
		if r.code == 120 {
			continue // service ready in nnn minutes: wait for the 220
		}
		if r.code != 220 {
			s.fail(Failure{Subcommand: "open", Code: r.code, Command: "(greeting)", Text: r.text})
			s.ended = true
			return false
		}
		break
	}
	if s.job.FTPData.ExtensionsUTF8 {
		// FEAT comes before the login; its errors do not end the job.
		r, ok := s.do(Subcommand{Name: "feat"}, "FEAT", true, 211)
		if ok && featureListed(r.text, "LANG") {
			s.do(Subcommand{Name: "lang"}, "LANG en", true, 200)
		}
		if s.ended {
			return false
		}
	}
	user, pass := s.job.Deck.User, s.job.Deck.Password
	if e, ok := lookupNetrc(s.job.Netrc, s.job.Deck.Host); ok && user == "" {
		user, pass = e.Login, e.Password
	}
	r, ok := s.do(Subcommand{Name: "user"}, "USER "+user, false, 331, 230)
	if ok && r.code == 331 {
		r, ok = s.do(Subcommand{Name: "pass"}, "PASS "+pass, false, 230, 202)
	}
	if r.code == 332 {
		// The server wants ACCT, which a batch job has no way to give.
		s.violation("332 (account needed) after login; the z/OS client never expects it")
		s.fail(Failure{Subcommand: "pass", Command: "PASS ****", Code: r.code, Text: r.text})
		ok = false
	}
	if !ok {
		// No session, EXIT or not: every subcommand would fail.
		s.ended = true
		if s.res.Ended == nil && len(s.res.Errors) > 0 {
			f := s.res.Errors[len(s.res.Errors)-1]
			s.res.Ended = &f
		}
		return false
	}
	return true
}

// featureListed reports whether a FEAT reply lists feature (its first word,
// any case).
func featureListed(text, feature string) bool {
	lines := strings.Split(text, "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], feature) {
			return true
		}
	}
	return false
}

// run executes one subcommand.
func (s *session) run(c Subcommand) {
	arg := func(i int) string {
		if i < len(c.Args) {
			return c.Args[i]
		}
		return ""
	}
	need := func(n int) bool {
		if len(c.Args) < n {
			s.localFail(c, "%s needs %d argument(s)", c.Name, n)
			return false
		}
		return true
	}
	switch c.Name {
	case "ascii":
		if _, ok := s.do(c, "TYPE A", false, 200); ok {
			s.typ = 'A'
		}
	case "binary":
		if _, ok := s.do(c, "TYPE I", false, 200); ok {
			s.typ = 'I'
		}
	case "cd":
		if need(1) {
			s.do(c, "CWD "+arg(0), false, 250, 200)
		}
	case "cdup":
		s.do(c, "CDUP", false, 250, 200)
	case "pwd":
		s.do(c, "PWD", false, 257)
	case "mkdir":
		if need(1) {
			s.do(c, "MKD "+arg(0), false, 257)
		}
	case "rmdir":
		if need(1) {
			s.do(c, "RMD "+arg(0), false, 250)
		}
	case "delete":
		if need(1) {
			s.do(c, "DELE "+arg(0), false, 250)
		}
	case "rename":
		if need(2) {
			if _, ok := s.do(c, "RNFR "+arg(0), false, 350); ok {
				s.do(c, "RNTO "+arg(1), false, 250)
			}
		}
	case "site":
		// A typed SITE: an error is reported and ignored.
		s.do(c, "SITE "+c.Rest, true, 200, 202)
	case "quote":
		s.do(c, c.Rest, false)
	case "locsite":
		s.newAttrs = s.newAttrs.applyLocsite(c.Rest)
	case "sendsite":
		s.sendSite = !s.sendSite
	case "lcd":
		if need(1) {
			s.lcd(c, arg(0))
		}
	case "put", "append":
		if need(1) {
			s.put(c, arg(0), arg(1))
		}
	case "get":
		if need(1) {
			s.get(c, arg(0), arg(1))
		}
	case "mput":
		if need(1) {
			s.mput(c)
		}
	case "mget":
		if need(1) {
			s.mget(c)
		}
	case "mdelete":
		if need(1) {
			s.mdelete(c)
		}
	case "dir", "ls":
		verb := "LIST"
		if c.Name == "ls" {
			verb = "NLST"
		}
		if data, ok := s.xfer(c, verb, arg(0), recv, nil, 'A'); ok {
			s.res.Listings = append(s.res.Listings, string(data))
		}
	case "quit":
		s.do(c, "QUIT", false, 221)
		s.ended = true
	default:
		s.localFail(c, "subcommand %s is not emulated", c.Name)
	}
}

// lcd sets the local working directory: a PDS when the name is one,
// otherwise a prefix.
func (s *session) lcd(c Subcommand, name string) {
	body := strings.ToUpper(strings.Trim(name, "'"))
	if !strings.HasPrefix(name, "'") {
		body = strings.TrimSuffix(string(s.lcwd), "(") + body
	}
	switch {
	case strings.HasSuffix(body, "."):
		s.lcwd = LocalCWD(body)
	case s.job.Local.IsPDS(body):
		s.lcwd = LocalCWD(body + "(")
	default:
		s.lcwd = LocalCWD(body + ".")
	}
	s.logf("EZA2081I Local directory is %s", s.lcwd)
}

// sendSiteFor sends the SITE command SENDSITE adds before a PUT.
func (s *session) sendSiteFor(c Subcommand, n DSName) {
	if !s.sendSite {
		return
	}
	s.do(c, "SITE "+s.job.Local.Attrs(n.DSN).siteParams(), true, 200, 202)
}

// outbound returns what goes on the data connection for a local data set
// in the current TYPE: records with CRLF for TYPE A, the bytes for TYPE I.
func (s *session) outbound(data []byte) []byte {
	if s.typ != 'A' {
		return data
	}
	var b strings.Builder
	for _, r := range splitRecords(string(data)) {
		b.WriteString(r)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// put stores one local data set or member; remote "" means the quoted
// local name.
func (s *session) put(c Subcommand, local, remote string) {
	n, err := ResolveLocal(s.lcwd, local)
	if err != nil {
		s.localFail(c, "%v", err)
		return
	}
	s.putOne(c, n, remote)
}

func (s *session) putOne(c Subcommand, n DSName, remote string) {
	data, err := s.job.Local.Read(n)
	if err != nil {
		s.localFail(c, "%v", err)
		return
	}
	if remote == "" {
		remote = n.Quoted()
	}
	s.sendSiteFor(c, n)
	if s.ended {
		return
	}
	verb := "STOR"
	if c.Name == "append" {
		verb = "APPE"
	}
	s.xfer(c, verb, remote, send, s.outbound(data), s.typ)
}

// get retrieves one remote file into a local data set or member.
func (s *session) get(c Subcommand, remote, local string) {
	if local == "" {
		local = remote
	}
	n, err := ResolveLocal(s.lcwd, local)
	if err != nil {
		s.localFail(c, "%v", err)
		return
	}
	s.getOne(c, remote, n)
}

func (s *session) getOne(c Subcommand, remote string, n DSName) {
	if s.job.Local.Exists(n) && !c.HasOpt("REPLACE") {
		s.localFail(c, "local data set %s exists; REPLACE was not specified", n.Quoted())
		return
	}
	data, ok := s.xfer(c, "RETR", remote, recv, nil, s.typ)
	if !ok {
		return
	}
	attrs := s.newAttrs
	if s.job.Local.IsPDS(n.DSN) || s.job.Local.Exists(n) {
		attrs = s.job.Local.Attrs(n.DSN)
	}
	out := data
	if s.typ == 'A' {
		records := splitCRLF(data)
		if max := attrs.maxRecord(); max > 0 {
			for i, r := range records {
				if len(r) > max {
					s.localFail(c, "record %d is %d bytes; %s holds at most %d", i+1, len(r), n.Quoted(), max)
					return
				}
			}
		}
		out = []byte(joinRecords(records))
	}
	if err := s.job.Local.Write(n, out, attrs); err != nil {
		s.localFail(c, "write %s: %v", n.Quoted(), err)
	}
}

// mput stores every local data set or member matching each pattern, each
// under its own name: the member name, or for a data set its name less the
// local prefix.
func (s *session) mput(c Subcommand) {
	for _, pattern := range c.Args {
		names, err := s.job.Local.Match(s.lcwd, pattern)
		if err != nil {
			s.localFail(c, "%v", err)
			return
		}
		if len(names) == 0 {
			s.localFail(c, "no local data set matches %s", pattern)
			return
		}
		for _, n := range names {
			if s.ended {
				return
			}
			remote := n.Member
			if remote == "" {
				remote = strings.TrimPrefix(n.DSN, strings.TrimSuffix(string(s.lcwd), "("))
			}
			s.putOne(c, n, remote)
		}
	}
}

// nlst lists a remote pattern for MGET and MDELETE: bare names, one per
// CRLF line.
func (s *session) nlst(c Subcommand, pattern string) ([]string, bool) {
	data, ok := s.xfer(c, "NLST", pattern, recv, nil, 'A')
	if !ok {
		return nil, false
	}
	var names []string
	for _, l := range splitCRLF(data) {
		if l == "" || strings.ContainsAny(l, " \t") {
			s.violation("NLST %s: %q is not a bare name", pattern, l)
			continue
		}
		names = append(names, l)
	}
	return names, true
}

func (s *session) mget(c Subcommand) {
	for _, pattern := range c.Args {
		names, ok := s.nlst(c, pattern)
		if !ok {
			return
		}
		for _, name := range names {
			if s.ended {
				return
			}
			// A name with a Unix path (MGET SUB/JOB*) is stored under its
			// last part.
			n, err := ResolveLocal(s.lcwd, path.Base(name))
			if err != nil {
				s.localFail(c, "%v", err)
				continue
			}
			s.getOne(c, name, n)
		}
	}
}

func (s *session) mdelete(c Subcommand) {
	for _, pattern := range c.Args {
		names, ok := s.nlst(c, pattern)
		if !ok {
			return
		}
		for _, name := range names {
			if s.ended {
				return
			}
			s.do(c, "DELE "+name, false, 250)
		}
	}
}

// ---- data connections ----

type direction int

const (
	recv direction = iota // RETR, LIST, NLST: the server sends
	send                  // STOR, APPE: the client sends
)

// dataPrep is a data connection being set up: a listener for active mode
// or a dialled connection for passive mode.
type dataPrep struct {
	how  string // PORT, EPRT, PASV, EPSV
	ln   *net.TCPListener
	conn net.Conn
}

func (p *dataPrep) close() {
	if p.ln != nil {
		p.ln.Close()
	}
	if p.conn != nil {
		p.conn.Close()
	}
}

// prepareData sends PORT/EPRT or PASV/EPSV and readies the data
// connection, as FWFRIENDLY and EPSV4 say.
func (s *session) prepareData(c Subcommand) (*dataPrep, bool) {
	local := addrPort(s.conn.LocalAddr())
	remote := addrPort(s.conn.RemoteAddr())
	v6 := local.Addr().Is6() && !local.Addr().Is4In6()
	extended := v6 || s.job.FTPData.EPSV4
	if !s.job.FTPData.FWFriendly {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: local.Addr().AsSlice()})
		if err != nil {
			s.localFail(c, "listen for data: %v", err)
			return nil, false
		}
		port := ln.Addr().(*net.TCPAddr).Port
		p := &dataPrep{ln: ln}
		var line string
		if extended {
			p.how = "EPRT"
			af := 1
			if v6 {
				af = 2
			}
			line = fmt.Sprintf("EPRT |%d|%s|%d|", af, local.Addr().Unmap(), port)
		} else {
			p.how = "PORT"
			a := local.Addr().Unmap().As4()
			line = fmt.Sprintf("PORT %d,%d,%d,%d,%d,%d", a[0], a[1], a[2], a[3], port>>8, port&0xff)
		}
		if _, ok := s.do(c, line, false, 200); !ok {
			ln.Close()
			return nil, false
		}
		return p, true
	}
	var target netip.AddrPort
	p := &dataPrep{}
	if extended {
		p.how = "EPSV"
		r, ok := s.do(c, "EPSV", false, 229)
		if !ok {
			return nil, false
		}
		port, err := parseEPSV(r.text)
		if err != nil {
			s.violation("EPSV reply %q: %v", r.text, err)
			return nil, false
		}
		target = netip.AddrPortFrom(remote.Addr(), port)
	} else {
		p.how = "PASV"
		r, ok := s.do(c, "PASV", false, 227)
		if !ok {
			return nil, false
		}
		ap, err := parsePASV(r.text)
		if err != nil {
			s.violation("PASV reply %q: %v", r.text, err)
			return nil, false
		}
		target = ap
	}
	d := net.Dialer{Timeout: s.job.FTPData.InactTime}
	conn, err := d.DialContext(s.ctx, "tcp", target.String())
	if err != nil {
		s.localFail(c, "connect data connection to %s: %v", target, err)
		return nil, false
	}
	p.conn = conn
	return p, true
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// parsePASV reads h1,h2,h3,h4,p1,p2 from a 227 reply.
func parsePASV(text string) (netip.AddrPort, error) {
	i, j := strings.IndexByte(text, '('), strings.IndexByte(text, ')')
	if i < 0 || j < i {
		return netip.AddrPort{}, errors.New("no (h1,h2,h3,h4,p1,p2)")
	}
	f := strings.Split(text[i+1:j], ",")
	if len(f) != 6 {
		return netip.AddrPort{}, errors.New("want six numbers")
	}
	var n [6]byte
	for k, v := range f {
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || x < 0 || x > 255 {
			return netip.AddrPort{}, fmt.Errorf("bad number %q", v)
		}
		n[k] = byte(x)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{n[0], n[1], n[2], n[3]}), uint16(n[4])<<8|uint16(n[5])), nil
}

// parseEPSV reads the port from a 229 reply's (|||port|).
func parseEPSV(text string) (uint16, error) {
	i := strings.Index(text, "(|||")
	j := strings.LastIndex(text, "|)")
	if i < 0 || j < i+4 {
		return 0, errors.New("no (|||port|)")
	}
	p, err := strconv.Atoi(text[i+4 : j])
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("bad port %q", text[i+4:j])
	}
	return uint16(p), nil
}

// dataResult is what the data goroutine found; it is written before done
// is closed and read only after.
type dataResult struct {
	data []byte
	n    int64
	err  error // nil: ended with the peer's FIN
}

// xfer runs one transfer command with a fresh data connection and judges
// it. For recv it returns the data received. ok is false when the transfer
// failed (the error is recorded).
func (s *session) xfer(c Subcommand, verb, arg string, dir direction, out []byte, typ byte) ([]byte, bool) {
	line := verb
	if arg != "" {
		line += " " + arg
	}
	t := Transfer{Subcommand: c.String(), Command: line, Confidence: ConfNone}
	defer func() { s.res.Transfers = append(s.res.Transfers, t) }()
	p, ok := s.prepareData(c)
	if !ok {
		t.Why = "no data connection"
		return nil, false
	}
	defer p.close()
	t.DataCmd = p.how

	// Active mode: the server connects while the client waits for the
	// preliminary reply.
	type accepted struct {
		conn net.Conn
		err  error
	}
	acc := make(chan accepted, 1)
	if p.ln != nil {
		p.ln.SetDeadline(s.deadline())
		go func() {
			conn, err := p.ln.AcceptTCP()
			if err != nil {
				acc <- accepted{err: err}
				return
			}
			acc <- accepted{conn: conn}
		}()
	}

	if err := s.send(line); err != nil {
		s.lost(c, line, err)
		return nil, false
	}
	r, err := s.read()
	if err != nil {
		s.lost(c, line, err)
		return nil, false
	}
	switch {
	case r.code == 125 || r.code == 150:
		t.Prelim = append(t.Prelim, r.code)
	case r.code < 200:
		t.Prelim = append(t.Prelim, r.code)
		s.violation("%s: preliminary reply %d; the z/OS client expects 125 or 150", line, r.code)
	case r.code >= 400:
		t.Final = r.code
		t.Why = "refused"
		s.fail(Failure{Subcommand: c.Name, Line: c.Line, Command: line, Code: r.code, Text: r.text})
		if r.code == 421 {
			s.ended = true
		}
		return nil, false
	default:
		t.Final = r.code
		s.violation("%s: final reply %d without a preliminary reply", line, r.code)
		return nil, false
	}

	conn := p.conn
	if p.ln != nil {
		a := <-acc
		if a.err != nil {
			s.violation("%s: the server did not open the data connection after %d: %v", line, r.code, a.err)
			t.Why = "no data connection"
			// Its final reply (425, presumably) still comes.
			if fr, err := s.read(); err == nil {
				t.Final = fr.code
				if fr.code >= 400 {
					s.fail(Failure{Subcommand: c.Name, Line: c.Line, Command: line, Code: fr.code, Text: fr.text})
				}
			}
			return nil, false
		}
		conn = a.conn
		p.conn = conn
	}

	// The data moves in its own goroutine while the control connection is
	// read, so that the order of the final reply and the end of the data
	// can be seen.
	var res dataResult
	var complete atomic.Bool // recv: EOF read; send: all written and half-closed
	done := make(chan struct{})
	conn.SetDeadline(s.deadline())
	go func() {
		defer close(done)
		if dir == recv {
			res.data, res.err = readPaced(conn, s.job.RecvRate)
			res.n = int64(len(res.data))
			if res.err == nil {
				complete.Store(true)
				conn.Close() // the client closes its end on EOF
			}
			return
		}
		n, err := conn.Write(out)
		res.n = int64(n)
		if err != nil {
			res.err = err
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			if err := tc.CloseWrite(); err != nil {
				res.err = err
				return
			}
		}
		complete.Store(true)
		// Wait for the server's side of the close: its FIN, or a reset.
		_, res.err = io.Copy(io.Discard, conn)
	}()

	var final reply
	completeAtFinal := false
	for {
		fr, err := s.read()
		if err != nil {
			conn.Close()
			<-done
			s.lost(c, line, err)
			t.Confidence, t.Why = ConfLow, "no final reply"
			return nil, false
		}
		if fr.code < 200 {
			t.Prelim = append(t.Prelim, fr.code)
			s.violation("%s: more than one preliminary reply (%v)", line, t.Prelim)
			continue
		}
		final = fr
		completeAtFinal = complete.Load()
		if !completeAtFinal && dir == recv {
			fin, known := finReceived(conn)
			completeAtFinal = fin
			if !known {
				// No kernel state to read: accept the data's end
				// within a moment of the reply, as the client's reader
				// would still be draining it.
				select {
				case <-done:
					completeAtFinal = res.err == nil
				case <-time.After(time.Second):
				}
			}
		}
		break
	}
	t.Final = final.code
	select {
	case <-done:
	case <-time.After(s.job.FTPData.InactTime):
		s.violation("%s: data connection still open %v after the final reply", line, s.job.FTPData.InactTime)
		conn.Close()
		<-done
	}
	t.Bytes = res.n

	switch {
	case final.code >= 400:
		t.Confidence, t.Why = ConfLow, fmt.Sprintf("final reply %d", final.code)
		s.fail(Failure{Subcommand: c.Name, Line: c.Line, Command: line, Code: final.code, Text: final.text})
		if final.code == 421 {
			s.ended = true
		}
		return nil, false
	case final.code != 226 && final.code != 250:
		s.violation("%s: final reply %d; the z/OS client expects 226 or 250", line, final.code)
	}
	switch {
	case res.err != nil && errors.Is(res.err, syscall.ECONNRESET):
		t.Confidence, t.Why = ConfLow, "data connection reset (RST), not closed with FIN"
	case res.err != nil:
		t.Confidence, t.Why = ConfLow, "data connection: "+res.err.Error()
	case !completeAtFinal:
		t.Confidence, t.Why = ConfLow, "final reply arrived before the data was complete"
	default:
		t.Confidence = ConfHigh
	}
	if t.Confidence != ConfHigh {
		s.violation("%s: check confidence %s: %s", line, t.Confidence, t.Why)
		return nil, false
	}
	if dir == recv && typ == 'A' {
		if i := bareLineEnd(res.data); i >= 0 {
			s.violation("%s: TYPE A data has a line end that is not CRLF at byte %d", line, i)
			return nil, false
		}
	}
	return res.data, true
}

// readPaced reads r to its end, at most rate bytes per second when rate is
// positive.
func readPaced(r io.Reader, rate int) ([]byte, error) {
	if rate <= 0 {
		return io.ReadAll(r)
	}
	const chunk = 16 << 10
	var out []byte
	buf := make([]byte, chunk)
	start := time.Now()
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		due := start.Add(time.Duration(len(out)) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(due))
	}
}

// bareLineEnd returns the offset of the first LF not preceded by CR or CR
// not followed by LF, or -1: the z/OS client takes ASCII data only with
// CRLF line ends.
func bareLineEnd(b []byte) int {
	for i, ch := range b {
		switch ch {
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return i
			}
		case '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return i
			}
		}
	}
	return -1
}

// splitCRLF splits TYPE A data into records.
func splitCRLF(b []byte) []string {
	s := string(b)
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
}
