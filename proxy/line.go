package proxy

import (
	"bufio"
	"errors"
	"strings"
)

// Telnet bytes (RFC 854) that FTP clients send on the control connection:
// IAC IP and IAC DM (Synch) before ABOR, option negotiation from old
// clients.
const (
	telnetIAC  = 255
	telnetDONT = 254
	telnetDO   = 253
	telnetWONT = 252
	telnetWILL = 251
)

// errLineTooLong is returned when a control line exceeds the limit. The
// reader has then consumed the line up to and including its LF, so the
// session can reply 500 and carry on.
var errLineTooLong = errors.New("proxy: command line too long")

// lineReader reads control lines: it strips Telnet command sequences
// (keeping an escaped IAC IAC as one 0xFF byte), ends a line at LF, drops
// the CR before it, and bounds the line length. It owns buf; a returned
// line is valid until the next call.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r *bufio.Reader, max int) *lineReader {
	return &lineReader{r: r, max: max, buf: make([]byte, 0, 256)}
}

// readLine returns the next line without its line end. On errLineTooLong
// the rest of the line has been discarded.
func (lr *lineReader) readLine() (string, error) {
	lr.buf = lr.buf[:0]
	tooLong := false
	for {
		c, err := lr.r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == telnetIAC {
			cmd, err := lr.r.ReadByte()
			if err != nil {
				return "", err
			}
			switch cmd {
			case telnetIAC:
				// An escaped 0xFF data byte.
			case telnetWILL, telnetWONT, telnetDO, telnetDONT:
				// Option negotiation: skip the option byte. We refuse
				// every option by not answering, as vsftpd does.
				if _, err := lr.r.ReadByte(); err != nil {
					return "", err
				}
				continue
			default:
				// IP, DM, AYT, NOP, ...: no data.
				continue
			}
		}
		if c == '\n' {
			if tooLong {
				return "", errLineTooLong
			}
			line := lr.buf
			for len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			if len(line) > lr.max {
				return "", errLineTooLong
			}
			return string(line), nil
		}
		if tooLong {
			continue
		}
		// One byte over the limit is kept for the CR of CRLF.
		if len(lr.buf) > lr.max {
			tooLong = true
			continue
		}
		lr.buf = append(lr.buf, c)
	}
}

// parseCommand splits a control line into the verb (upper-cased) and its
// argument. RFC 959 puts exactly one space between them; the argument is
// kept exactly as sent after that space, because a z/OS password phrase
// and file names may contain or end in blanks. Only the verb is trimmed.
func parseCommand(line string) (verb, arg string) {
	line = strings.TrimLeft(line, " ")
	verb, arg, _ = strings.Cut(line, " ")
	return strings.ToUpper(verb), arg
}
