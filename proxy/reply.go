package proxy

import (
	"bufio"
	"strconv"
	"strings"
)

// Reply codes used by ftpgate, with the RFC that defines each.
const (
	codeRestartMarker   = 110 // RFC 959
	codeFileStatusOK    = 150 // RFC 959: about to open the data connection
	codeOK              = 200 // RFC 959
	codeNotImplemented2 = 202 // RFC 959: superfluous command (ACCT, ALLO)
	codeSystemStatus    = 211 // RFC 959; FEAT (RFC 2389)
	codeDirStatus       = 212 // RFC 959
	codeFileStatus      = 213 // RFC 959; SIZE, MDTM (RFC 3659)
	codeHelp            = 214 // RFC 959
	codeSystemType      = 215 // RFC 959
	codeReady           = 220 // RFC 959
	codeClosing         = 221 // RFC 959
	codeNoTransfer      = 225 // RFC 959: data connection open, no transfer
	codeTransferOK      = 226 // RFC 959
	codePassive         = 227 // RFC 959
	codeExtPassive      = 229 // RFC 2428
	codeLoggedIn        = 230 // RFC 959
	codeFileOK          = 250 // RFC 959
	codePathCreated     = 257 // RFC 959
	codeNeedPassword    = 331 // RFC 959
	codePending         = 350 // RFC 959: REST, RNFR
	codeUnavailable     = 421 // RFC 959: service closing control connection
	codeCantOpenData    = 425 // RFC 959
	codeTransferAborted = 426 // RFC 959
	codeFileBusy        = 450 // RFC 959
	codeLocalError      = 451 // RFC 959
	codeNoSpaceTemp     = 452 // RFC 959
	codeSyntax          = 500 // RFC 959
	codeSyntaxArg       = 501 // RFC 959
	codeNotImplemented  = 502 // RFC 959
	codeBadSequence     = 503 // RFC 959
	codeParamNotImpl    = 504 // RFC 959
	codeBadProtocol     = 522 // RFC 2428: network protocol not supported
	codeNotLoggedIn     = 530 // RFC 959
	codeFileUnavailable = 550 // RFC 959
	codeExceededStorage = 552 // RFC 959
	codeBadFileName     = 553 // RFC 959
)

// reply is one FTP reply: a code and one or more lines of text. A reply
// with more than one line is written in the multi-line form of RFC 959
// section 4.2.
type reply struct {
	code  int
	lines []string
}

func rep(code int, text string) reply { return reply{code: code, lines: []string{text}} }

// text is the reply's text on one line, for records.
func (r reply) text() string { return strings.Join(r.lines, " | ") }

// isZero reports a reply that is still to come (a transfer in progress
// sends its own final reply).
func (r reply) isZero() bool { return r.code == 0 }

// writeTo writes r. The first line is "code-text", middle lines are
// indented by one space so that none can look like a final line, and the
// last is "code text". Text never carries CR or LF: a file name chosen by
// the client or the partner must not be able to inject a reply.
func (r reply) writeTo(w *bufio.Writer) error {
	code := strconv.Itoa(r.code)
	lines := r.lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		l = sanitizeLine(l)
		switch {
		case len(lines) == 1:
			w.WriteString(code)
			w.WriteByte(' ')
		case i == 0:
			w.WriteString(code)
			w.WriteByte('-')
		case i == len(lines)-1:
			w.WriteString(code)
			w.WriteByte(' ')
		default:
			if !strings.HasPrefix(l, " ") {
				w.WriteByte(' ')
			}
		}
		w.WriteString(l)
		w.WriteString("\r\n")
	}
	return w.Flush()
}

// sanitizeLine replaces CR, LF and NUL, which would end or corrupt the
// reply line, by a space.
func sanitizeLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', 0:
			return ' '
		}
		return r
	}, s)
}

// quotePath quotes a path for a 257 reply: RFC 959 appendix II doubles
// embedded quotes.
func quotePath(p string) string {
	return `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
}
