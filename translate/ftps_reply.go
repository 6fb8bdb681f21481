package translate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Limits on what a partner may send as one reply. A hostile or broken
// partner must not be able to make the proxy buffer without bound.
const (
	// maxReplyLine bounds one line of a reply, CRLF included. RFC 959
	// sets no limit; 8 KiB holds the longest lines seen in practice (STAT
	// listings with long MVS data set names, FEAT lists) many times over.
	maxReplyLine = 8 << 10
	// maxReplyLines bounds the lines of one multi-line reply. A STAT of a
	// directory returns its listing over the control connection, so the
	// bound is generous.
	maxReplyLines = 100_000
	// maxReplyBytes bounds the text of one reply.
	maxReplyBytes = 4 << 20
)

// errBadReply is wrapped by every parse failure of a partner's reply.
var errBadReply = errors.New("malformed reply")

// readReply reads one reply (RFC 959 section 4.2) from r.
//
// A single-line reply is "ddd text". A multi-line reply starts with
// "ddd-text" and ends with the first line that starts with the same code
// followed by a space (or the code alone); the lines between are kept
// exactly as sent, including lines that start with another code or with
// "ddd-". Line ends may be CRLF or a bare LF; one trailing CR is removed.
//
// In the result, Lines[0] is the text after "ddd-" or "ddd ", the last line
// of a multi-line reply is the text after "ddd ", and the lines between are
// raw. Errors wrap errBadReply for a malformed reply, io.ErrUnexpectedEOF
// for a reply cut short, and io.EOF only when the connection ended before
// the reply began.
func readReply(r *bufio.Reader) (Reply, error) {
	rr := replyReader{br: r}
	return rr.next()
}

// replyReader reads replies from a control connection. A read that fails
// with a timeout can be retried: the part of the reply read so far is
// kept, so a deadline set to interrupt a wait (ABOR) does not lose the
// reply that was arriving. After any other error the connection is
// unusable.
type replyReader struct {
	br      *bufio.Reader
	line    []byte // part of a line read before an interrupted read
	rep     Reply  // the reply being read
	started bool   // rep holds the first line
	total   int    // bytes of text in rep
}

func (rr *replyReader) next() (Reply, error) {
	for {
		line, err := rr.readLine()
		if err != nil {
			if rr.started && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, err
		}
		if !rr.started {
			code, sep, ok := replyCode(line)
			if !ok {
				return Reply{}, fmt.Errorf("%w: line does not start with a reply code: %q", errBadReply, clip(line, 40))
			}
			text := ""
			if len(line) > 3 {
				text = string(line[4:])
			}
			rr.rep = Reply{Code: code, Lines: []string{text}}
			rr.started, rr.total = true, len(text)
			if sep != '-' {
				return rr.finish(), nil
			}
			continue
		}
		if len(rr.rep.Lines) >= maxReplyLines {
			return Reply{}, fmt.Errorf("%w: more than %d lines", errBadReply, maxReplyLines)
		}
		if rr.total += len(line); rr.total > maxReplyBytes {
			return Reply{}, fmt.Errorf("%w: more than %d bytes", errBadReply, maxReplyBytes)
		}
		if c, sep, ok := replyCode(line); ok && c == rr.rep.Code && sep != '-' {
			text := ""
			if len(line) > 3 {
				text = string(line[4:])
			}
			rr.rep.Lines = append(rr.rep.Lines, text)
			return rr.finish(), nil
		}
		rr.rep.Lines = append(rr.rep.Lines, string(line))
	}
}

func (rr *replyReader) finish() Reply {
	rep := rr.rep
	rr.rep, rr.started, rr.total = Reply{}, false, 0
	return rep
}

// readLine returns the next line without its line end. The slice is valid
// until the next call.
func (rr *replyReader) readLine() ([]byte, error) {
	for {
		chunk, err := rr.br.ReadSlice('\n')
		if len(rr.line)+len(chunk) > maxReplyLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errBadReply, maxReplyLine)
		}
		switch {
		case err == nil:
			line := chunk
			if len(rr.line) > 0 {
				line = append(rr.line, chunk...)
				rr.line = rr.line[:0]
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			rr.line = append(rr.line, chunk...)
		default:
			rr.line = append(rr.line, chunk...)
			if errors.Is(err, io.EOF) && len(rr.line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// replyCode parses the "ddd" at the start of a line and the byte after it:
// ' ', '-', or 0 when the line is the code alone. The first digit is 1 to
// 5 (RFC 959 section 4.2.1).
func replyCode(line []byte) (code int, sep byte, ok bool) {
	if len(line) < 3 || line[0] < '1' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, 0, false
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, 0, true
	}
	if line[3] != ' ' && line[3] != '-' {
		return 0, 0, false
	}
	return code, line[3], true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// formatReply writes rep in the form readReply reads, for the test server
// and the fuzz tests' round trip.
func formatReply(rep Reply) []byte {
	var b bytes.Buffer
	code := strconv.Itoa(rep.Code)
	lines := rep.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		switch {
		case len(lines) == 1, i == len(lines)-1:
			b.WriteString(code + " ")
		case i == 0:
			b.WriteString(code + "-")
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// clip shortens partner text for an error message and makes control
// characters visible.
func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// text is the reply's text on one line, for errors and records.
func replyText(rep Reply) string {
	s := strings.Join(rep.Lines, " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// ReplyError is a reply from an FTPS partner that refused an operation. It
// matches the translate sentinel for its code with errors.Is (see
// ReplySentinel), so callers need not look at codes, but the partner's own
// words stay available for the log and the audit record.
type ReplyError struct {
	// Verb is the command the partner refused ("RETR", "PASS"); never its
	// argument, which may be a password.
	Verb string
	Code int
	// Text is the reply's text, its lines joined by spaces, shortened to
	// about 300 bytes and with control characters replaced.
	Text string
}

func (e *ReplyError) Error() string {
	if e.Verb == "" {
		return fmt.Sprintf("translate: partner replied %d %s", e.Code, e.Text)
	}
	return fmt.Sprintf("translate: partner refused %s: %d %s", e.Verb, e.Code, e.Text)
}

// Unwrap returns the sentinel for the reply code, or nil.
func (e *ReplyError) Unwrap() error { return ReplySentinel(e.Code) }

func newReplyError(verb string, rep Reply) *ReplyError {
	return &ReplyError{Verb: verb, Code: rep.Code, Text: replyText(rep)}
}

// ReplySentinel is the one place FTP reply codes become translate
// sentinels. It returns nil for codes that say nothing more specific than
// "failed" (450, 451, 501, 551 and the like). The mapping is kept simple on
// purpose, because servers use codes loosely:
//
//	421            ErrConnLost     service closing the control connection
//	425, 426       ErrConnLost     data connection failed or transfer aborted
//	452, 552       ErrNoSpace      storage full or quota exceeded
//	500, 502, 504  ErrUnsupported  command or parameter not implemented
//	530, 532       ErrAuth         not logged in, account needed
//	550            ErrNotFound     file unavailable (also used for "permission denied")
//	553            ErrPermission   file name not allowed
func ReplySentinel(code int) error {
	switch code {
	case 421, 425, 426:
		return ErrConnLost
	case 452, 552:
		return ErrNoSpace
	case 500, 502, 504:
		return ErrUnsupported
	case 530, 532:
		return ErrAuth
	case 550:
		return ErrNotFound
	case 553:
		return ErrPermission
	}
	return nil
}

// parsePASVReply finds the address in the text of a 227 reply: the first
// "h1,h2,h3,h4,p1,p2" in it (RFC 1123 section 4.1.2.6 tells clients to scan
// for it, since servers word the reply differently). It never resolves a
// name. The port must not be zero.
func parsePASVReply(text string) (netip.AddrPort, error) {
	i := strings.IndexAny(text, "0123456789")
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: no address in 227 reply", errBadReply)
	}
	var n [6]int
	s := text[i:]
	for k := range n {
		j := 0
		for j < len(s) && j < 4 && isDigit(s[j]) {
			j++
		}
		if j == 0 || j > 3 {
			return netip.AddrPort{}, fmt.Errorf("%w: bad number in 227 reply", errBadReply)
		}
		v, _ := strconv.Atoi(s[:j])
		if v > 255 {
			return netip.AddrPort{}, fmt.Errorf("%w: number %d out of range in 227 reply", errBadReply, v)
		}
		n[k] = v
		s = s[j:]
		if k < 5 {
			if len(s) == 0 || s[0] != ',' {
				return netip.AddrPort{}, fmt.Errorf("%w: want six comma-separated numbers in 227 reply", errBadReply)
			}
			s = s[1:]
		}
	}
	if len(s) > 0 && isDigit(s[0]) {
		return netip.AddrPort{}, fmt.Errorf("%w: bad number in 227 reply", errBadReply)
	}
	port := uint16(n[4]<<8 | n[5])
	if port == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: port 0 in 227 reply", errBadReply)
	}
	addr := netip.AddrFrom4([4]byte{byte(n[0]), byte(n[1]), byte(n[2]), byte(n[3])})
	return netip.AddrPortFrom(addr, port), nil
}

// parseEPSVReply finds the port in the text of a 229 reply (RFC 2428
// section 3): "(<d><d><d>port<d>)" with any delimiter d in the printable
// range 33 to 126, usually '|'. The network address fields must be empty;
// the data connection goes to the control connection's host.
func parseEPSVReply(text string) (uint16, error) {
	i := strings.IndexByte(text, '(')
	if i < 0 {
		return 0, fmt.Errorf("%w: no \"(\" in 229 reply", errBadReply)
	}
	s := text[i+1:]
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("%w: no \")\" in 229 reply", errBadReply)
	}
	s = s[:end]
	if len(s) < 5 {
		return 0, fmt.Errorf("%w: 229 reply too short", errBadReply)
	}
	d := s[0]
	if d < 33 || d > 126 || isDigit(d) {
		return 0, fmt.Errorf("%w: bad delimiter in 229 reply", errBadReply)
	}
	if s[1] != d || s[2] != d || s[len(s)-1] != d {
		return 0, fmt.Errorf("%w: want (|||port|) in 229 reply", errBadReply)
	}
	p := s[3 : len(s)-1]
	port, ok := parseDecimalPort(p)
	if !ok {
		return 0, fmt.Errorf("%w: bad port in 229 reply", errBadReply)
	}
	return port, nil
}

// parseDecimalPort accepts 1 to 5 digits with a value in 1..65535.
func parseDecimalPort(s string) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return uint16(n), n >= 1 && n <= 65535
}

// parsePathReply returns the quoted path in a 257 reply (PWD, MKD): RFC 959
// appendix II doubles quotes inside the name.
func parsePathReply(text string) (string, error) {
	i := strings.IndexByte(text, '"')
	if i < 0 {
		return "", fmt.Errorf("%w: no quoted path in 257 reply", errBadReply)
	}
	var b strings.Builder
	s := text[i+1:]
	for j := 0; j < len(s); j++ {
		if s[j] != '"' {
			b.WriteByte(s[j])
			continue
		}
		if j+1 < len(s) && s[j+1] == '"' {
			b.WriteByte('"')
			j++
			continue
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("%w: unterminated path in 257 reply", errBadReply)
}
