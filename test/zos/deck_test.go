package zos

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A deck is what a batch FTP step reads from its INPUT DD, in the z/OS
// client's own syntax (z/OS Communications Server IP User's Guide and
// Commands, "Using FTP in batch"): the host line, the user ID and the
// password, each on a line of its own, then one subcommand per line. When
// the NETRC DD has a machine entry for the host the client takes the login
// from it, and the deck holds no user or password lines.
//
//	ftpgate.batch.example 2121
//	ZOSBATCH
//	zOS pass phrase 2026 ok
//	put 'ZOSJOB.PAY.DATA' PAY.DAILY.EXTRACT
//	quit
//
// The password line is taken whole, blanks included: it may be a password
// phrase. Subcommand names are case-insensitive; arguments keep their case
// and their quotes, because a quoted name is fully qualified and an
// unquoted one is relative to the working directory. Options in
// parentheses, such as (REPLACE, are collected apart.

// Deck is a parsed INPUT DD.
type Deck struct {
	Name     string
	Host     string // the host line's first word
	Port     int    // the host line's second word; 21 when there is none
	User     string // "" when the login comes from NETRC
	Password string // the whole password line, blanks included
	Cmds     []Subcommand
}

// Subcommand is one subcommand line of a deck.
type Subcommand struct {
	Line int    // 1-based line number in the deck
	Name string // canonical name: "put", "get", "mput", ... (see subcommandNames)
	// Args are the words after the name, quotes kept ('A B' is one word).
	// Options such as (REPLACE are not among them.
	Args []string
	// Opts are the parenthesised options, upper case, without "(".
	Opts []string
	// Rest is everything after the name as written, for site, quote and
	// locsite, whose parameters are passed on as they are.
	Rest string
}

// HasOpt reports whether the subcommand carries the option, e.g. "REPLACE".
func (c Subcommand) HasOpt(opt string) bool {
	for _, o := range c.Opts {
		if o == opt {
			return true
		}
	}
	return false
}

func (c Subcommand) String() string {
	if c.Rest == "" {
		return c.Name
	}
	return c.Name + " " + c.Rest
}

// subcommandNames maps each accepted spelling to its canonical name. It
// holds the subcommands the decks use and the short forms batch jobs
// commonly write (bin, del, mdel, ren, quo, loc). It is an immutable table.
var subcommandNames = map[string]string{
	"ascii": "ascii", "binary": "binary", "bin": "binary",
	"cd": "cd", "cdup": "cdup", "pwd": "pwd", "lcd": "lcd",
	"put": "put", "append": "append", "get": "get",
	"mput": "mput", "mget": "mget", "mdelete": "mdelete", "mdel": "mdelete",
	"delete": "delete", "del": "delete", "rename": "rename", "ren": "rename",
	"mkdir": "mkdir", "rmdir": "rmdir", "dir": "dir", "ls": "ls",
	"site": "site", "quote": "quote", "quo": "quote",
	"locsite": "locsite", "loc": "locsite", "sendsite": "sendsite",
	"quit": "quit", "end": "quit",
}

// ParseDeck parses a deck. loginFromNetrc says the NETRC DD has an entry for
// the deck's host, so no user and password lines follow the host line.
// symbols are JCL symbols substituted first, as in a DD * with
// SYMBOLS=JCLONLY: "&PARTNER" or "&PARTNER." becomes symbols["PARTNER"].
// Blank lines are skipped.
func ParseDeck(name, text string, loginFromNetrc bool, symbols map[string]string) (*Deck, error) {
	text = substituteSymbols(text, symbols)
	d := &Deck{Name: name}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	state := 0 // 0: host line, 1: user, 2: password, 3: subcommands
	for sc.Scan() {
		line++
		// A card image may carry trailing blanks; they are not data.
		raw := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(raw) == "" {
			continue
		}
		switch state {
		case 0:
			f := strings.Fields(raw)
			d.Host, d.Port = f[0], 21
			if len(f) > 1 {
				p, err := strconv.Atoi(f[1])
				if err != nil || p <= 0 || p > 65535 {
					return nil, fmt.Errorf("%s:%d: host line: bad port %q", name, line, f[1])
				}
				d.Port = p
			}
			state = 1
			if loginFromNetrc {
				state = 3
			}
		case 1:
			d.User = strings.TrimSpace(raw)
			state = 2
		case 2:
			// The whole line: a password phrase holds blanks.
			d.Password = strings.TrimLeft(raw, " ")
			state = 3
		default:
			c, err := parseSubcommand(raw)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			c.Line = line
			d.Cmds = append(d.Cmds, c)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if state < 3 {
		return nil, fmt.Errorf("%s: deck ends before the login is complete", name)
	}
	return d, nil
}

// parseSubcommand parses one subcommand line.
func parseSubcommand(raw string) (Subcommand, error) {
	raw = strings.TrimSpace(raw)
	word, rest, _ := strings.Cut(raw, " ")
	canon, ok := subcommandNames[strings.ToLower(word)]
	if !ok {
		return Subcommand{}, fmt.Errorf("unknown subcommand %q", word)
	}
	c := Subcommand{Name: canon, Rest: strings.TrimSpace(rest)}
	words, err := splitWords(c.Rest)
	if err != nil {
		return Subcommand{}, fmt.Errorf("%s: %w", canon, err)
	}
	for _, w := range words {
		if strings.HasPrefix(w, "(") {
			c.Opts = append(c.Opts, strings.ToUpper(strings.Trim(w, "()")))
			continue
		}
		c.Args = append(c.Args, w)
	}
	return c, nil
}

// splitWords splits s at blanks, keeping a quoted part ('A B') in one word
// with its quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			quoted = !quoted
			cur.WriteByte(ch)
		case (ch == ' ' || ch == '\t') && !quoted:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(ch)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unbalanced quote in %q", s)
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}

// substituteSymbols replaces &NAME and &NAME. for every NAME in symbols, as
// JCL does in instream data with SYMBOLS=JCLONLY. Other ampersands stay.
func substituteSymbols(text string, symbols map[string]string) string {
	if len(symbols) == 0 || !strings.Contains(text, "&") {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		if text[i] != '&' {
			b.WriteByte(text[i])
			continue
		}
		j := i + 1
		for j < len(text) && isSymbolChar(text[j]) {
			j++
		}
		v, ok := symbols[text[i+1:j]]
		if !ok || j == i+1 {
			b.WriteByte('&')
			continue
		}
		b.WriteString(v)
		if j < len(text) && text[j] == '.' {
			j++ // the period ends the symbol and is consumed
		}
		i = j - 1
	}
	return b.String()
}

func isSymbolChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '#' || c == '@' || c == '$'
}

// FTPData holds the FTP.DATA (SYSFTPD DD) statements the emulator honours.
// The zero value is not the default configuration: use DefaultFTPData.
type FTPData struct {
	// FWFriendly (FWFRIENDLY TRUE) makes the client open data connections
	// itself: PASV, or EPSV with EPSV4 or on IPv6. The default, FALSE, is
	// active mode: PORT (or EPRT), fresh before every transfer.
	FWFriendly bool
	// EPSV4 (EPSV4 TRUE) uses EPSV and EPRT on IPv4 as well.
	EPSV4 bool
	// SendSite (SENDSITE TRUE, the default) sends the local data set's
	// RECFM, LRECL and BLKSIZE in a SITE command before every PUT.
	SendSite bool
	// InactTime (INACTTIME, default 120 s) bounds every wait for a reply or
	// for data.
	InactTime time.Duration
	// ExtensionsUTF8 (EXTENSIONS UTF8) sends FEAT after login, and LANG en
	// when FEAT lists LANG.
	ExtensionsUTF8 bool
	// ClientExit (CLIENTEXIT TRUE) ends the job on an error, as the EXIT
	// parameter does.
	ClientExit bool
}

// DefaultFTPData is the client's configuration with an empty FTP.DATA.
func DefaultFTPData() FTPData {
	return FTPData{SendSite: true, InactTime: 120 * time.Second}
}

// ParseFTPData applies FTP.DATA statements to DefaultFTPData. A statement
// is a keyword and a value; ";" starts a comment. Statements the emulator
// does not model are ignored, as they would change nothing it checks.
func ParseFTPData(text string) (FTPData, error) {
	fd := DefaultFTPData()
	for n, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, ";")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		key := strings.ToUpper(f[0])
		val := ""
		if len(f) > 1 {
			val = strings.ToUpper(f[1])
		}
		flag := func() (bool, error) {
			switch val {
			case "TRUE":
				return true, nil
			case "FALSE":
				return false, nil
			}
			return false, fmt.Errorf("FTP.DATA line %d: %s wants TRUE or FALSE, not %q", n+1, key, val)
		}
		var err error
		switch key {
		case "FWFRIENDLY":
			fd.FWFriendly, err = flag()
		case "EPSV4":
			fd.EPSV4, err = flag()
		case "SENDSITE":
			fd.SendSite, err = flag()
		case "CLIENTEXIT":
			fd.ClientExit, err = flag()
		case "INACTTIME":
			var secs int
			secs, err = strconv.Atoi(val)
			if err == nil && secs <= 0 {
				err = fmt.Errorf("FTP.DATA line %d: INACTTIME %d", n+1, secs)
			}
			fd.InactTime = time.Duration(secs) * time.Second
		case "EXTENSIONS":
			for _, v := range f[1:] {
				if strings.EqualFold(v, "UTF8") {
					fd.ExtensionsUTF8 = true
				}
			}
		}
		if err != nil {
			return FTPData{}, err
		}
	}
	return fd, nil
}

// NetrcEntry is one machine entry of a NETRC data set.
type NetrcEntry struct {
	Machine, Login, Password string
}

// ParseNetrc parses "machine HOST login USER password PW" entries, as the
// z/OS client reads them from the NETRC DD (the format of Unix .netrc).
func ParseNetrc(text string) ([]NetrcEntry, error) {
	f := strings.Fields(text)
	var out []NetrcEntry
	var cur *NetrcEntry
	for i := 0; i < len(f); i++ {
		key := strings.ToLower(f[i])
		if key == "default" {
			out = append(out, NetrcEntry{})
			cur = &out[len(out)-1]
			continue
		}
		if i+1 >= len(f) {
			return nil, fmt.Errorf("netrc: %s without a value", key)
		}
		val := f[i+1]
		i++
		switch key {
		case "machine":
			out = append(out, NetrcEntry{Machine: val})
			cur = &out[len(out)-1]
		case "login", "password":
			if cur == nil {
				return nil, fmt.Errorf("netrc: %s before machine", key)
			}
			if key == "login" {
				cur.Login = val
			} else {
				cur.Password = val
			}
		default:
			return nil, fmt.Errorf("netrc: unknown keyword %q", key)
		}
	}
	return out, nil
}

// lookupNetrc returns the entry for host (case-insensitive), or the default
// entry, or false.
func lookupNetrc(entries []NetrcEntry, host string) (NetrcEntry, bool) {
	for _, e := range entries {
		if e.Machine != "" && strings.EqualFold(e.Machine, host) {
			return e, true
		}
	}
	for _, e := range entries {
		if e.Machine == "" {
			return e, true
		}
	}
	return NetrcEntry{}, false
}
