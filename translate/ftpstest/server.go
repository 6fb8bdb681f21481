// Package ftpstest provides a small in-process FTPS server for tests:
// explicit (AUTH TLS) or implicit TLS over a directory, on 127.0.0.1 and a
// random port, with TLS-protected passive data connections that can be
// required to resume the control connection's TLS session, as vsftpd and
// ProFTPD require. It speaks enough of RFC 959, 2228, 2428, 3659 and 4217
// for translate's FTPS backend and its unit tests; the interoperability
// tests in test/ftps run against the real servers.
//
// Like net/http/httptest, it is ordinary code so tests of several packages
// can share it. It must not import translate, whose own tests use it.
package ftpstest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure NewServer. TLS is required.
type Options struct {
	// TLS is the server's TLS configuration, with its certificate. It is
	// cloned. Session tickets must stay enabled for data connections to
	// resume.
	TLS *tls.Config
	// Users maps login names to passwords.
	Users map[string]string
	// Implicit makes the server speak TLS from the first byte (ftps://);
	// otherwise clients must send AUTH TLS first (ftpes://).
	Implicit bool
	// RequireSessionReuse refuses, with 522, a data connection whose TLS
	// session is not a resumption, like vsftpd's require_ssl_reuse.
	RequireSessionReuse bool
	// HandshakeBefore150 makes the server complete the data connection's
	// TLS handshake before it sends the preliminary reply; by default it
	// sends 150 first, as vsftpd does.
	HandshakeBefore150 bool
	// NoEPSV answers EPSV with 502, so clients must fall back to PASV.
	NoEPSV bool
	// NoMLST leaves MLST out of FEAT and refuses MLST and MLSD, like
	// vsftpd.
	NoMLST bool
	// PASVAddr is the address announced in 227 replies; the zero value
	// announces the listener's address.
	PASVAddr netip.Addr
	// RefuseAUTH answers AUTH TLS with 502.
	RefuseAUTH bool
	// RefusePROT answers PROT P with 536.
	RefusePROT bool
}

// Server is a running FTPS server.
type Server struct {
	Addr string // 127.0.0.1:port
	Host string // 127.0.0.1
	Port int
	Root string // the directory served; "/" for clients

	opt Options
	tls *tls.Config
	ln  net.Listener
	wg  sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{} // guarded by mu
	done     bool                  // guarded by mu
	commands []string              // guarded by mu
	resumed  []bool                // guarded by mu
	seq      int                   // guarded by mu; for STOU names
}

// NewServer starts a server over root.
func NewServer(root string, opt Options) (*Server, error) {
	if opt.TLS == nil || len(opt.TLS.Certificates) == 0 && opt.TLS.GetCertificate == nil {
		return nil, errors.New("ftpstest: Options.TLS with a certificate is required")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:  ln.Addr().String(),
		Host:  "127.0.0.1",
		Port:  ln.Addr().(*net.TCPAddr).Port,
		Root:  root,
		opt:   opt,
		tls:   opt.TLS.Clone(),
		ln:    ln,
		conns: make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops the server and waits for its sessions to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Commands returns every command received so far, in order, with PASS
// arguments replaced by "***".
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

// DataResumed reports, for each data connection whose TLS handshake
// completed, whether it resumed a session.
func (s *Server) DataResumed() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resumed)
}

func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.done {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c, true) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			defer c.Close()
			sess := &session{srv: s, raw: c, cwd: "/", typ: "A"}
			sess.run()
		}()
	}
}

// session is one control connection.
type session struct {
	srv  *Server
	raw  net.Conn
	conn net.Conn // raw, or the TLS connection over it
	r    *bufio.Reader
	wmu  sync.Mutex // guards w: the transfer goroutine writes final replies
	w    *bufio.Writer

	secure, loggedIn, protP bool
	user, cwd, typ, rnfr    string
	rest                    int64
	pasv                    net.Listener

	req         chan struct{}   // asks the reader goroutine for a line
	res         chan lineResult // its answer
	outstanding bool            // a request has no answer yet
	xfer        *xfer           // the transfer in progress, or nil
}

// xfer is a data transfer running in its own goroutine.
type xfer struct {
	data net.Conn
	done chan reply
}

type reply struct {
	code  int
	lines []string
}

func (s *session) reply(code int, lines ...string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		switch {
		case i == len(lines)-1:
			fmt.Fprintf(s.w, "%d %s\r\n", code, l)
		case i == 0:
			fmt.Fprintf(s.w, "%d-%s\r\n", code, l)
		default:
			fmt.Fprintf(s.w, "%s\r\n", l)
		}
	}
	s.w.Flush()
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.r = bufio.NewReader(c)
	s.w = bufio.NewWriter(c)
}

func (s *session) run() {
	s.setConn(s.raw)
	if s.srv.opt.Implicit {
		tc := tls.Server(s.raw, s.srv.tls)
		s.raw.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		s.raw.SetDeadline(time.Time{})
		s.setConn(tc)
		s.secure = true
	}
	defer func() {
		if s.pasv != nil {
			s.pasv.Close()
		}
		if s.xfer != nil {
			s.xfer.data.Close()
			<-s.xfer.done
		}
	}()
	s.req, s.res = make(chan struct{}), make(chan lineResult, 1)
	go s.reader()
	defer close(s.req)
	s.reply(220, "ftpstest ready")
	for {
		line, err := s.next()
		if err != nil {
			return
		}
		if !s.handle(line) {
			return
		}
	}
}

// readLine reads the next command line; only the reader goroutine calls
// it.
func (s *session) readLine() (string, error) {
	line, err := s.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) > 4096 {
		return "", errors.New("line too long")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// handle runs one command; false ends the session.
func (s *session) handle(line string) bool {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	logged := line
	if verb == "PASS" {
		logged = "PASS ***"
	}
	s.srv.mu.Lock()
	s.srv.commands = append(s.srv.commands, logged)
	s.srv.mu.Unlock()

	switch verb {
	case "AUTH":
		switch {
		case s.secure:
			s.reply(503, "Already secured.")
		case s.srv.opt.RefuseAUTH:
			s.reply(502, "AUTH not implemented.")
		case strings.ToUpper(arg) != "TLS" && strings.ToUpper(arg) != "SSL":
			s.reply(504, "Unknown AUTH type.")
		default:
			s.reply(234, "Proceed with negotiation.")
			tc := tls.Server(s.raw, s.srv.tls)
			s.raw.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				return false
			}
			s.raw.SetDeadline(time.Time{})
			s.setConn(tc)
			s.secure = true
		}
		return true
	case "QUIT":
		s.reply(221, "Goodbye.")
		return false
	case "NOOP":
		s.reply(200, "NOOP ok.")
		return true
	case "FEAT":
		feats := []string{"Features:", " AUTH TLS", " PBSZ", " PROT", " PASV", " REST STREAM", " SIZE", " MDTM", " UTF8"}
		if !s.srv.opt.NoEPSV {
			feats = append(feats, " EPSV")
		}
		if !s.srv.opt.NoMLST {
			feats = append(feats, " MLST type*;size*;modify*;UNIX.mode*;")
		}
		s.reply(211, append(feats, "End")...)
		return true
	case "USER":
		if !s.secure {
			s.reply(530, "Non-anonymous sessions must use encryption.")
			return true
		}
		s.user, s.loggedIn = arg, false
		s.reply(331, "Please specify the password.")
		return true
	case "PASS":
		pw, ok := s.srv.opt.Users[s.user]
		if !ok || pw != arg || s.user == "" {
			s.reply(530, "Login incorrect.")
			return true
		}
		s.loggedIn = true
		s.reply(230, "Login successful.")
		return true
	case "PBSZ":
		if !s.secure {
			s.reply(503, "PBSZ needs a secure connection.")
			return true
		}
		s.reply(200, "PBSZ set to 0.")
		return true
	case "PROT":
		switch {
		case !s.secure:
			s.reply(503, "PROT needs a secure connection.")
		case s.srv.opt.RefusePROT:
			s.reply(536, "PROT P not supported.")
		case strings.ToUpper(arg) == "P":
			s.protP = true
			s.reply(200, "PROT now Private.")
		case strings.ToUpper(arg) == "C":
			s.protP = false
			s.reply(200, "PROT now Clear.")
		default:
			s.reply(504, "PROT not supported.")
		}
		return true
	}
	if !s.loggedIn {
		s.reply(530, "Please login with USER and PASS.")
		return true
	}
	if verb != "REST" && verb != "RETR" && verb != "STOR" && verb != "EPSV" && verb != "PASV" {
		defer func() { s.rest = 0 }()
	}
	switch verb {
	case "SYST":
		s.reply(215, "UNIX Type: L8")
	case "PWD", "XPWD":
		s.reply(257, quote(s.cwd)+" is the current directory")
	case "CWD":
		if fi, err := os.Stat(s.local(arg)); err != nil || !fi.IsDir() {
			s.reply(550, "Failed to change directory.")
		} else {
			s.cwd = s.clean(arg)
			s.reply(250, "Directory successfully changed.")
		}
	case "CDUP":
		s.cwd = path.Dir(s.cwd)
		s.reply(250, "Directory successfully changed.")
	case "TYPE":
		switch t := strings.ToUpper(strings.Join(strings.Fields(arg), " ")); t {
		case "A", "A N", "I", "L 8":
			s.typ = t
			s.reply(200, "Switching to "+t+" mode.")
		default:
			s.reply(504, "Bad TYPE command.")
		}
	case "MODE":
		if strings.ToUpper(arg) == "S" {
			s.reply(200, "Mode set to S.")
		} else {
			s.reply(504, "Bad MODE command.")
		}
	case "STRU":
		if strings.ToUpper(arg) == "F" {
			s.reply(200, "Structure set to F.")
		} else {
			s.reply(504, "Bad STRU command.")
		}
	case "EPSV", "PASV":
		s.passive(verb)
	case "REST":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			s.reply(501, "Bad REST argument.")
		} else {
			s.rest = n
			s.reply(350, "Restart position accepted ("+arg+").")
		}
	case "RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD":
		if verb == "MLSD" && s.srv.opt.NoMLST {
			s.reply(500, "Unknown command.")
			return true
		}
		s.startTransfer(verb, arg)
		s.rest = 0
	case "SIZE":
		fi, err := os.Stat(s.local(arg))
		switch {
		case s.typ != "I":
			s.reply(550, "SIZE not allowed in ASCII mode")
		case err != nil || !fi.Mode().IsRegular():
			s.reply(550, "Could not get file size.")
		default:
			s.reply(213, strconv.FormatInt(fi.Size(), 10))
		}
	case "MDTM":
		if fi, err := os.Stat(s.local(arg)); err != nil || !fi.Mode().IsRegular() {
			s.reply(550, "Could not get file modification time.")
		} else {
			s.reply(213, fi.ModTime().UTC().Format("20060102150405"))
		}
	case "MLST":
		if s.srv.opt.NoMLST {
			s.reply(500, "Unknown command.")
			return true
		}
		fi, err := os.Stat(s.local(arg))
		if err != nil {
			s.reply(550, "No such file or directory.")
			return true
		}
		s.reply(250, "Listing "+arg, " "+mlsxFacts(fi)+" "+s.clean(arg), "End")
	case "DELE":
		if fi, err := os.Lstat(s.local(arg)); err != nil || fi.IsDir() {
			s.reply(550, "Delete operation failed.")
		} else if os.Remove(s.local(arg)) != nil {
			s.reply(550, "Delete operation failed.")
		} else {
			s.reply(250, "Delete operation successful.")
		}
	case "MKD":
		if err := os.Mkdir(s.local(arg), 0o755); err != nil {
			s.reply(550, "Create directory operation failed.")
		} else {
			s.reply(257, quote(s.clean(arg))+" created")
		}
	case "RMD":
		if err := os.Remove(s.local(arg)); err != nil {
			s.reply(550, "Remove directory operation failed.")
		} else {
			s.reply(250, "Remove directory operation successful.")
		}
	case "RNFR":
		if _, err := os.Lstat(s.local(arg)); err != nil {
			s.reply(550, "RNFR command failed.")
		} else {
			s.rnfr = arg
			s.reply(350, "Ready for RNTO.")
		}
	case "RNTO":
		if s.rnfr == "" {
			s.reply(503, "RNFR required first.")
		} else if err := os.Rename(s.local(s.rnfr), s.local(arg)); err != nil {
			s.reply(550, "Rename failed.")
		} else {
			s.reply(250, "Rename successful.")
		}
		s.rnfr = ""
	case "SITE":
		if strings.EqualFold(arg, "HELP") {
			// Lines inside that look like replies of their own.
			s.reply(214, "The following SITE commands are recognized.",
				"214-this line starts with the code and a hyphen",
				"200 and this one with another code",
				" CHMOD HELP", "Help OK.")
			return true
		}
		s.reply(200, "SITE "+arg+" accepted.")
	case "STAT":
		if arg == "" {
			s.reply(211, "FTP server status:", "     Connected to 127.0.0.1", "     TYPE: "+s.typ, "End of status")
			return true
		}
		lines, err := s.listing("LIST", arg)
		if err != nil {
			s.reply(550, "No such file or directory.")
			return true
		}
		s.reply(213, append(append([]string{"Status follows:"}, strings.Split(strings.TrimRight(string(lines), "\r\n"), "\r\n")...), "End of status")...)
	case "HELP":
		s.reply(214, "The following commands are recognized.", " ABOR APPE CWD  DELE EPSV FEAT", "Help OK.")
	case "ABOR":
		s.reply(225, "No transfer to ABOR.")
	case "OPTS":
		s.reply(200, "OK.")
	default:
		s.reply(500, "Unknown command.")
	}
	return true
}

func quote(p string) string { return `"` + strings.ReplaceAll(p, `"`, `""`) + `"` }

// clean resolves a client path against the working directory.
func (s *session) clean(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = path.Join(s.cwd, p)
	}
	return path.Clean("/" + p)
}

// local maps a client path into Root; ".." cannot leave it.
func (s *session) local(p string) string {
	return filepath.Join(s.srv.Root, filepath.FromSlash(s.clean(p)))
}

func (s *session) passive(verb string) {
	if verb == "EPSV" && s.srv.opt.NoEPSV {
		s.reply(502, "EPSV not implemented.")
		return
	}
	if s.pasv != nil {
		s.pasv.Close()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.reply(425, "Cannot listen.")
		return
	}
	s.pasv = ln
	port := ln.Addr().(*net.TCPAddr).Port
	if verb == "EPSV" {
		s.reply(229, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", port))
		return
	}
	a := s.srv.opt.PASVAddr
	if !a.IsValid() {
		a = netip.MustParseAddr("127.0.0.1")
	}
	b := a.As4()
	s.reply(227, fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d).", b[0], b[1], b[2], b[3], port>>8, port&0xff))
}

// startTransfer accepts the data connection, secures it, and moves data
// in a goroutine while the control loop watches for ABOR.
func (s *session) startTransfer(verb, arg string) {
	ln := s.pasv
	s.pasv = nil
	if ln == nil {
		s.reply(425, "Use PORT or PASV first.")
		return
	}
	defer ln.Close()
	if !s.protP {
		s.reply(521, "Data connections must be encrypted.")
		return
	}
	var f *os.File
	var listing []byte
	var err error
	name := arg
	switch verb {
	case "RETR":
		f, err = os.Open(s.local(arg))
		if err == nil {
			if fi, serr := f.Stat(); serr != nil || !fi.Mode().IsRegular() {
				f.Close()
				err = errors.New("not a file")
			} else if s.rest > 0 {
				_, err = f.Seek(s.rest, io.SeekStart)
			}
		}
	case "STOR":
		flags := os.O_WRONLY | os.O_CREATE
		if s.rest == 0 {
			flags |= os.O_TRUNC
		}
		f, err = os.OpenFile(s.local(arg), flags, 0o644)
		if err == nil && s.rest > 0 {
			_, err = f.Seek(s.rest, io.SeekStart)
		}
	case "APPE":
		f, err = os.OpenFile(s.local(arg), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	case "STOU":
		s.srv.mu.Lock()
		s.srv.seq++
		name = s.clean(fmt.Sprintf("ftpstest.%d", s.srv.seq))
		s.srv.mu.Unlock()
		f, err = os.OpenFile(s.local(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	default:
		listing, err = s.listing(verb, arg)
	}
	if err != nil {
		s.reply(550, "Failed to open file.")
		return
	}
	closeFile := func() {
		if f != nil {
			f.Close()
		}
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	raw, err := ln.Accept()
	if err != nil {
		closeFile()
		s.reply(425, "Failed to establish connection.")
		return
	}
	prelim := "Opening BINARY mode data connection for " + name + "."
	if verb == "STOU" {
		prelim = "FILE: " + path.Base(name)
	}
	tc := tls.Server(raw, s.srv.tls)
	if !s.srv.opt.HandshakeBefore150 {
		s.reply(150, prelim)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		closeFile()
		s.reply(522, "SSL connection failed: handshake.")
		return
	}
	raw.SetDeadline(time.Time{})
	resumed := tc.ConnectionState().DidResume
	s.srv.mu.Lock()
	s.srv.resumed = append(s.srv.resumed, resumed)
	s.srv.mu.Unlock()
	if s.srv.opt.RequireSessionReuse && !resumed {
		tc.Close()
		closeFile()
		s.reply(522, "SSL connection failed: session reuse required")
		return
	}
	if s.srv.opt.HandshakeBefore150 {
		s.reply(150, prelim)
	}
	x := &xfer{data: tc, done: make(chan reply, 1)}
	go func() {
		defer closeFile()
		var err error
		switch {
		case listing != nil:
			_, err = tc.Write(listing)
		case verb == "RETR":
			_, err = io.Copy(tc, f)
		default:
			// Go's TLS returns io.EOF on close_notify or a clean
			// TCP end, and an error on a reset.
			_, err = io.Copy(f, tc)
		}
		if err == nil {
			err = tc.Close()
		} else {
			tc.Close()
		}
		if err != nil {
			x.done <- reply{426, []string{"Failure on the data connection; transfer aborted."}}
			return
		}
		x.done <- reply{226, []string{"Transfer complete."}}
	}()
	s.xfer = x
	s.waitTransfer()
}

// waitTransfer runs the control connection while a transfer is in
// progress: ABOR aborts it; any other command waits until it is done.
func (s *session) waitTransfer() {
	x := s.xfer
	defer func() { s.xfer = nil }()
	s.ask()
	select {
	case r := <-x.done:
		// The read asked for stays outstanding for the main loop.
		s.reply(r.code, r.lines...)
	case lr := <-s.res:
		s.outstanding = false
		if lr.err == nil && strings.EqualFold(strings.TrimSpace(lr.line), "ABOR") {
			s.srv.mu.Lock()
			s.srv.commands = append(s.srv.commands, "ABOR")
			s.srv.mu.Unlock()
			x.data.Close()
			<-x.done
			s.reply(426, "Transfer aborted.")
			s.reply(226, "ABOR successful.")
			return
		}
		r := <-x.done
		s.reply(r.code, r.lines...)
		if lr.err != nil {
			s.conn.Close()
			return
		}
		s.handle(lr.line)
	}
}

// ask makes sure a line is being read by the reader goroutine.
func (s *session) ask() {
	if !s.outstanding {
		s.req <- struct{}{}
		s.outstanding = true
	}
}

// next returns the next command line.
func (s *session) next() (string, error) {
	s.ask()
	lr := <-s.res
	s.outstanding = false
	return lr.line, lr.err
}

// reader reads one line per request. It reads s.r only between a request
// and its result, so the main loop may replace s.r (AUTH TLS) while no
// request is outstanding.
func (s *session) reader() {
	var failed error
	for range s.req {
		if failed != nil {
			s.res <- lineResult{"", failed}
			continue
		}
		line, err := s.readLine()
		s.res <- lineResult{line, err}
		failed = err
	}
}

type lineResult struct {
	line string
	err  error
}

// listing formats a directory for LIST, NLST, MLSD or STAT.
func (s *session) listing(verb, arg string) ([]byte, error) {
	if strings.HasPrefix(arg, "-") {
		arg = "" // ls options: ignored
	}
	dir := s.local(arg)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	var entries []fs.FileInfo
	if fi.IsDir() {
		des, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			if fi, err := de.Info(); err == nil {
				entries = append(entries, fi)
			}
		}
	} else {
		entries = []fs.FileInfo{fi}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var b strings.Builder
	for _, e := range entries {
		switch verb {
		case "NLST":
			b.WriteString(e.Name())
		case "MLSD":
			b.WriteString(mlsxFacts(e) + " " + e.Name())
		default:
			fmt.Fprintf(&b, "%s    1 ftp      ftp      %10d %s %s", e.Mode().String(), e.Size(),
				e.ModTime().UTC().Format("Jan 02 15:04"), e.Name())
		}
		b.WriteString("\r\n")
	}
	if b.Len() == 0 {
		return []byte{}, nil
	}
	return []byte(b.String()), nil
}

func mlsxFacts(fi fs.FileInfo) string {
	typ := "file"
	if fi.IsDir() {
		typ = "dir"
	}
	return fmt.Sprintf("type=%s;size=%d;modify=%s;UNIX.mode=0%o;", typ, fi.Size(),
		fi.ModTime().UTC().Format("20060102150405"), fi.Mode().Perm())
}
