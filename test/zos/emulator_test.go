package zos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests check the emulator itself: its parsers, and that each of its
// judges fails a server that breaks the rule it stands for. The server is a
// scripted fake on loopback, so each misbehaviour is exact.

func TestParseDeck(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		netrc     bool
		symbols   map[string]string
		wantUser  string
		wantPass  string
		wantPort  int
		wantCmds  []string // "name args... (opts)"
		wantError bool
	}{
		{
			name:     "password phrase keeps its blanks",
			text:     "host.example 2121\nPAYJOB\n  my pass phrase here  \nquit\n",
			wantUser: "PAYJOB", wantPass: "my pass phrase here", wantPort: 2121,
			wantCmds: []string{"quit"},
		},
		{
			name:     "quoted names stay one word with their quotes, options apart",
			text:     "h\nU\nP\nget 'A.B C' 'HLQ.X' (REPLACE\nPUT x\n",
			wantUser: "U", wantPass: "P", wantPort: 21,
			wantCmds: []string{"get ['A.B C' 'HLQ.X'] [REPLACE]", "put [x] []"},
		},
		{
			name:     "netrc login: no user or password lines",
			text:     "h 21\nbin\nput 'A.B'\n",
			netrc:    true,
			wantPort: 21,
			wantCmds: []string{"binary", "put ['A.B'] []"},
		},
		{
			name:     "JCL symbols are substituted, the ending period consumed",
			text:     "h\nu@&PARTNER.\npw\nquit\n",
			symbols:  map[string]string{"PARTNER": "127.0.0.1:2222"},
			wantUser: "u@127.0.0.1:2222", wantPass: "pw", wantPort: 21,
			wantCmds: []string{"quit"},
		},
		{name: "unknown subcommand", text: "h\nu\np\nfrobnicate x\n", wantError: true},
		{name: "unbalanced quote", text: "h\nu\np\nput 'A.B\n", wantError: true},
		{name: "bad port", text: "h 99999\nu\np\n", wantError: true},
		{name: "login incomplete", text: "h\nu\n", wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDeck("t.deck", tc.text, tc.netrc, tc.symbols)
			if tc.wantError {
				if err == nil {
					t.Fatalf("ParseDeck succeeded; want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.User != tc.wantUser || d.Password != tc.wantPass || d.Port != tc.wantPort {
				t.Errorf("user %q password %q port %d; want %q %q %d", d.User, d.Password, d.Port, tc.wantUser, tc.wantPass, tc.wantPort)
			}
			var got []string
			for _, c := range d.Cmds {
				s := c.Name
				if len(c.Args) > 0 || len(c.Opts) > 0 {
					s = fmt.Sprintf("%s %v %v", c.Name, c.Args, c.Opts)
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.wantCmds) {
				t.Errorf("commands %q; want %q", got, tc.wantCmds)
			}
		})
	}
}

// FuzzParseDeck feeds arbitrary decks to the parser: it must return a deck
// or an error, never panic, and a parsed subcommand is always a known one.
func FuzzParseDeck(f *testing.F) {
	f.Add("host 2121\nUSER\npass phrase\nput 'A.B(C)' x (REPLACE\nquit\n", false)
	f.Add("h\nget x\n", true)
	f.Add("h\nu@&PARTNER.\np\nquote site FILETYPE=JES\n", false)
	f.Fuzz(func(t *testing.T, text string, netrc bool) {
		d, err := ParseDeck("fuzz", text, netrc, map[string]string{"PARTNER": "127.0.0.1:1"})
		if err != nil {
			return
		}
		for _, c := range d.Cmds {
			if _, ok := subcommandNames[c.Name]; !ok {
				t.Fatalf("subcommand %q is not a known name", c.Name)
			}
		}
	})
}

func TestParseFTPData(t *testing.T) {
	fd, err := ParseFTPData("; comment\nFWFRIENDLY TRUE ; passive\nepsv4 true\nSENDSITE FALSE\nINACTTIME 60\nEXTENSIONS UTF8\nCLIENTEXIT TRUE\nTRAILINGBLANKS TRUE\n")
	if err != nil {
		t.Fatal(err)
	}
	want := FTPData{FWFriendly: true, EPSV4: true, SendSite: false, InactTime: time.Minute, ExtensionsUTF8: true, ClientExit: true}
	if fd != want {
		t.Errorf("got %+v; want %+v", fd, want)
	}
	if _, err := ParseFTPData("FWFRIENDLY MAYBE\n"); err == nil {
		t.Errorf("FWFRIENDLY MAYBE accepted; want an error")
	}
	if d := DefaultFTPData(); !d.SendSite || d.InactTime != 120*time.Second || d.FWFriendly {
		t.Errorf("defaults %+v; want SENDSITE TRUE, INACTTIME 120, active mode", d)
	}
}

func TestParseNetrc(t *testing.T) {
	e, err := ParseNetrc("machine a.example login U1 password P1\nmachine B.EXAMPLE login U2 password P2\ndefault login anonymous password x\n")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"a.example": "U1", "b.example": "U2", "other": "anonymous"} {
		got, ok := lookupNetrc(e, host)
		if !ok || got.Login != want {
			t.Errorf("lookup %s: %+v %v; want login %s", host, got, ok, want)
		}
	}
	if _, err := ParseNetrc("login U password P"); err == nil {
		t.Errorf("login before machine accepted")
	}
}

func TestResolveLocal(t *testing.T) {
	tests := []struct {
		cwd  LocalCWD
		name string
		want DSName
	}{
		{"ZOSJOB.", "'pay.data'", DSName{DSN: "PAY.DATA"}},
		{"ZOSJOB.", "pay.data", DSName{DSN: "ZOSJOB.PAY.DATA"}},
		{"ZOSJOB.", "'ZOSJOB.JCL(PAYJOB)'", DSName{DSN: "ZOSJOB.JCL", Member: "PAYJOB"}},
		{"ZOSJOB.SRC.JCL(", "joba", DSName{DSN: "ZOSJOB.SRC.JCL", Member: "JOBA"}},
		{"ZOSJOB.SRC.JCL(", "'A.B'", DSName{DSN: "A.B"}},
	}
	for _, tc := range tests {
		got, err := ResolveLocal(tc.cwd, tc.name)
		if err != nil || got != tc.want {
			t.Errorf("ResolveLocal(%q, %q) = %+v, %v; want %+v", tc.cwd, tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"''", "'A/B'", "'A.B(C'"} {
		if _, err := ResolveLocal("X.", bad); err == nil {
			t.Errorf("ResolveLocal(%q) succeeded; want an error", bad)
		}
	}
}

func TestSiteParams(t *testing.T) {
	for a, want := range map[Attrs]string{
		{RECFM: "FB", LRECL: 80, BLKSIZE: 27920}:  "FIXrecfm 80 LRECL=80 RECFM=FB BLKSIZE=27920",
		{RECFM: "VB", LRECL: 255, BLKSIZE: 27998}: "VARrecfm LRECL=255 RECFM=VB BLKSIZE=27998",
	} {
		if got := a.siteParams(); got != want {
			t.Errorf("%+v: %q; want %q", a, got, want)
		}
	}
}

func TestBareLineEnd(t *testing.T) {
	for in, want := range map[string]int{"": -1, "a\r\nb\r\n": -1, "a\nb": 1, "a\r\nb\r": 4, "\r\n\n": 2, "a\rb\r\n": 1} {
		if got := bareLineEnd([]byte(in)); got != want {
			t.Errorf("bareLineEnd(%q) = %d; want %d", in, got, want)
		}
	}
}

// ---- a scripted server ----

// fakeServer is a minimal FTP server on loopback whose replies and data
// connection behaviour are set per test. It speaks EPSV only: the jobs
// that use it run with FWFRIENDLY and EPSV4.
type fakeServer struct {
	fakeScript

	ln net.Listener
	wg sync.WaitGroup
}

// fakeScript is how a fakeServer behaves.
type fakeScript struct {
	passReply int    // reply to PASS; 230 when 0
	siteReply int    // reply to SITE; 200 when 0
	retrData  string // what RETR sends
	// retr: "ok" (data, FIN, 226), "rst" (half the data, then a reset,
	// then 226), "early" (150 and 226 first, the data only after),
	// "twice" (150 and 125, data, 226).
	retr string
}

func startFake(t *testing.T, f *fakeServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.wg.Add(1)
	go f.serve(t)
	t.Cleanup(func() {
		ln.Close()
		f.wg.Wait()
	})
	return ln.Addr().String()
}

func (f *fakeServer) serve(t *testing.T) {
	defer f.wg.Done()
	c, err := f.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	reply := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
	reply("220 fake ready")
	var pasv net.Listener
	defer func() {
		if pasv != nil {
			pasv.Close()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "USER":
			reply("331 password please")
		case "PASS":
			reply(strconv.Itoa(orDefault(f.passReply, 230)) + " pass reply")
		case "SYST":
			reply("215 UNIX Type: L8")
		case "SITE":
			reply(strconv.Itoa(orDefault(f.siteReply, 200)) + " site reply")
		case "TYPE":
			reply("200 ok")
		case "EPSV":
			if pasv != nil {
				pasv.Close()
			}
			pasv, err = net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				reply("425 no")
				continue
			}
			reply(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)", pasv.Addr().(*net.TCPAddr).Port))
		case "RETR":
			d, err := pasv.Accept()
			if err != nil {
				reply("425 no data connection")
				continue
			}
			f.retrieve(c, d.(*net.TCPConn))
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not here")
		}
	}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (f *fakeServer) retrieve(ctrl net.Conn, d *net.TCPConn) {
	reply := func(s string) { fmt.Fprintf(ctrl, "%s\r\n", s) }
	switch f.retr {
	case "rst":
		reply("150 here it comes")
		io.WriteString(d, f.retrData[:len(f.retrData)/2])
		d.SetLinger(0)
		d.Close()
		reply("226 done")
	case "early":
		reply("150 here it comes")
		reply("226 done")
		time.Sleep(300 * time.Millisecond)
		io.WriteString(d, f.retrData)
		d.Close()
	case "twice":
		reply("150 here it comes")
		reply("125 and again")
		io.WriteString(d, f.retrData)
		d.Close()
		reply("226 done")
	default:
		reply("150 here it comes")
		io.WriteString(d, f.retrData)
		d.Close()
		reply("226 done")
	}
}

// runFake runs deck (login lines added) against f.
func runFake(t *testing.T, script fakeScript, exit bool, deck string) *Result {
	t.Helper()
	addr := startFake(t, &fakeServer{fakeScript: script})
	d, err := ParseDeck("fake.deck", "fake 21\nU\npass phrase\n"+deck, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds := NewDataSets(t.TempDir())
	fd := DefaultFTPData()
	fd.FWFriendly, fd.EPSV4, fd.InactTime = true, true, 10*time.Second
	job := &Job{Deck: d, Addr: addr, FTPData: fd, Exit: exit, Local: ds, LocalPrefix: "ZOSJOB."}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := job.Run(ctx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("job output:\n%s", res.Log.String())
		}
	})
	return res
}

func hasViolation(res *Result, substr string) bool {
	for _, v := range res.Violations {
		if strings.Contains(v, substr) {
			return true
		}
	}
	return false
}

func TestJudges(t *testing.T) {
	tests := []struct {
		name       string
		fake       fakeScript
		exit       bool
		deck       string
		violation  string // a violation containing this; "" means none at all
		ended      string // "sub code" or ""
		confidence Confidence
	}{
		{
			name:       "a correct retrieve is High and has no violation",
			fake:       fakeScript{retr: "ok", retrData: "A\r\nB\r\n"},
			deck:       "get X 'ZOSJOB.X'\n",
			confidence: ConfHigh,
		},
		{
			name:       "bare LF in TYPE A data",
			fake:       fakeScript{retr: "ok", retrData: "A\nB\n"},
			deck:       "get X 'ZOSJOB.X'\n",
			violation:  "not CRLF",
			confidence: ConfHigh,
		},
		{
			name:       "bare LF is fine in binary",
			fake:       fakeScript{retr: "ok", retrData: "A\nB\n"},
			deck:       "binary\nget X 'ZOSJOB.X'\n",
			confidence: ConfHigh,
		},
		{
			name:       "a reset data connection is Low",
			fake:       fakeScript{retr: "rst", retrData: strings.Repeat("0123456789\r\n", 1000)},
			deck:       "get X 'ZOSJOB.X'\n",
			violation:  "reset (RST)",
			confidence: ConfLow,
		},
		{
			name:       "the final reply before the data is complete is Low",
			fake:       fakeScript{retr: "early", retrData: "A\r\n"},
			deck:       "get X 'ZOSJOB.X'\n",
			violation:  "before the data was complete",
			confidence: ConfLow,
		},
		{
			name:       "two preliminary replies",
			fake:       fakeScript{retr: "twice", retrData: "A\r\n"},
			deck:       "get X 'ZOSJOB.X'\n",
			violation:  "more than one preliminary reply",
			confidence: ConfHigh,
		},
		{
			name: "a 5xx to a typed SITE is ignored under EXIT",
			fake: fakeScript{siteReply: 501, retr: "ok", retrData: "A\r\n"},
			exit: true,
			deck: "site LRECL=80\nget X 'ZOSJOB.X'\n",
			// the job goes on to the GET
			confidence: ConfHigh,
		},
		{
			name:  "a 5xx to QUOTE SITE ends an EXIT job",
			fake:  fakeScript{siteReply: 501, retr: "ok", retrData: "A\r\n"},
			exit:  true,
			deck:  "quote site LRECL=80\nget X 'ZOSJOB.X'\n",
			ended: "quote 501",
		},
		{
			name:      "332 after PASS",
			fake:      fakeScript{passReply: 332},
			deck:      "quit\n",
			violation: "332",
			ended:     "pass 332",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runFake(t, tc.fake, tc.exit, tc.deck)
			if tc.violation == "" && len(res.Violations) > 0 {
				t.Errorf("violations %q; want none", res.Violations)
			}
			if tc.violation != "" && !hasViolation(res, tc.violation) {
				t.Errorf("violations %q; want one about %q", res.Violations, tc.violation)
			}
			got := ""
			if res.Ended != nil {
				got = res.Ended.Subcommand + " " + strconv.Itoa(res.Ended.Code)
			}
			if tc.exit || tc.ended != "" {
				if got != tc.ended {
					t.Errorf("job ended by %q; want %q", got, tc.ended)
				}
			}
			if tc.confidence != "" {
				var retr *Transfer
				for i := range res.Transfers {
					if strings.HasPrefix(res.Transfers[i].Command, "RETR") {
						retr = &res.Transfers[i]
					}
				}
				if retr == nil {
					t.Fatalf("no RETR transfer; transfers %+v", res.Transfers)
				}
				if retr.Confidence != tc.confidence {
					t.Errorf("confidence %s (%s); want %s", retr.Confidence, retr.Why, tc.confidence)
				}
			}
		})
	}
}
