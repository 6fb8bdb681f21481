package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/translate"
)

var portTests = []struct {
	name, arg string
	want      string // "" means an error
}{
	{"plain", "127,0,0,1,4,1", "127.0.0.1:1025"},
	{"spaces around fields", " 10, 1 ,2,3,0,21 ", "10.1.2.3:21"},
	{"max values", "255,255,255,255,255,255", "255.255.255.255:65535"},
	{"five fields", "127,0,0,1,4", ""},
	{"seven fields", "127,0,0,1,4,1,1", ""},
	{"field over 255", "127,0,0,256,4,1", ""},
	{"negative", "127,0,0,-1,4,1", ""},
	{"hex", "0x7f,0,0,1,4,1", ""},
	{"empty field", "127,,0,1,4,1", ""},
	{"host name", "localhost,4,1", ""},
	{"empty", "", ""},
}

func TestParsePORT(t *testing.T) {
	for _, tc := range portTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePORT(tc.arg)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("parsePORT(%q) = %v; want an error", tc.arg, got)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("parsePORT(%q) = %v, %v; want %s", tc.arg, got, err, tc.want)
			}
		})
	}
}

var eprtTests = []struct {
	name, arg string
	want      string // "" means an error; "proto" means errUnknownNetProto
}{
	{"ipv4", "|1|132.235.1.2|6275|", "132.235.1.2:6275"},
	{"ipv6", "|2|1080::8:800:200C:417A|5282|", "[1080::8:800:200c:417a]:5282"},
	{"other delimiter", "!1!10.0.0.1!2000!", "10.0.0.1:2000"},
	{"proto 3", "|3|10.0.0.1|2000|", "proto"},
	{"v6 under proto 1", "|1|::1|2000|", ""},
	{"v4 under proto 2", "|2|10.0.0.1|2000|", ""},
	{"mapped under proto 2", "|2|::ffff:10.0.0.1|2000|", ""},
	{"zone", "|2|fe80::1%eth0|2000|", ""},
	{"port zero", "|1|10.0.0.1|0|", ""},
	{"port too big", "|1|10.0.0.1|65536|", ""},
	{"missing trailing delimiter", "|1|10.0.0.1|2000", ""},
	{"host name", "|1|example.com|2000|", ""},
	{"delimiter is space", " 1 10.0.0.1 2000 ", ""},
	{"short", "|1|", ""},
}

func TestParseEPRT(t *testing.T) {
	for _, tc := range eprtTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEPRT(tc.arg)
			switch tc.want {
			case "":
				if err == nil {
					t.Fatalf("parseEPRT(%q) = %v; want an error", tc.arg, got)
				}
			case "proto":
				if !errors.Is(err, errUnknownNetProto) {
					t.Fatalf("parseEPRT(%q) error %v; want errUnknownNetProto", tc.arg, err)
				}
			default:
				if err != nil || got.String() != tc.want {
					t.Fatalf("parseEPRT(%q) = %v, %v; want %s", tc.arg, got, err, tc.want)
				}
			}
		})
	}
}

func FuzzParsePORT(f *testing.F) {
	for _, tc := range portTests {
		f.Add(tc.arg)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ap, err := parsePORT(arg)
		if err != nil {
			return
		}
		if !ap.Addr().Is4() {
			t.Fatalf("parsePORT(%q) = %v: not IPv4", arg, ap)
		}
		// Formatting the result back must parse to the same address.
		a := ap.Addr().As4()
		again, err := parsePORT(fmt.Sprintf("%d,%d,%d,%d,%d,%d", a[0], a[1], a[2], a[3], ap.Port()>>8, ap.Port()&0xff))
		if err != nil || again != ap {
			t.Fatalf("round trip of %v: %v, %v", ap, again, err)
		}
	})
}

func FuzzParseEPRT(f *testing.F) {
	for _, tc := range eprtTests {
		f.Add(tc.arg)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ap, err := parseEPRT(arg)
		if err != nil {
			return
		}
		if ap.Port() == 0 || ap.Addr().Zone() != "" || ap.Addr().Is4In6() {
			t.Fatalf("parseEPRT(%q) = %v: accepted a bad value", arg, ap)
		}
	})
}

var lineTests = []struct {
	name  string
	in    string
	lines []string // successive results; "ERR-LONG" marks errLineTooLong
}{
	{"crlf", "USER a\r\nPASS b\r\n", []string{"USER a", "PASS b"}},
	{"bare lf", "NOOP\nSYST\n", []string{"NOOP", "SYST"}},
	{"telnet IP DM before ABOR", "\xff\xf4\xff\xf2ABOR\r\n", []string{"ABOR"}},
	{"escaped IAC", "SITE \xff\xffX\r\n", []string{"SITE \xffX"}},
	{"option negotiation", "\xff\xfb\x01\xff\xfd\x03NOOP\r\n", []string{"NOOP"}},
	{"too long then normal", strings.Repeat("A", 5000) + "\r\nNOOP\r\n", []string{"ERR-LONG", "NOOP"}},
	{"exactly at the limit", strings.Repeat("B", 4096) + "\r\n", []string{strings.Repeat("B", 4096)}},
	{"trailing blanks kept", "PASS my phrase  \r\n", []string{"PASS my phrase  "}},
	{"cr inside kept", "A\rB\r\n", []string{"A\rB"}},
}

func TestLineReader(t *testing.T) {
	for _, tc := range lineTests {
		t.Run(tc.name, func(t *testing.T) {
			lr := newLineReader(bufio.NewReader(strings.NewReader(tc.in)), 4096)
			for i, want := range tc.lines {
				got, err := lr.readLine()
				if want == "ERR-LONG" {
					if !errors.Is(err, errLineTooLong) {
						t.Fatalf("line %d: got %q, %v; want errLineTooLong", i, got, err)
					}
					continue
				}
				if err != nil || got != want {
					t.Fatalf("line %d: got %q, %v; want %q", i, got, err, want)
				}
			}
			if got, err := lr.readLine(); err != io.EOF {
				t.Fatalf("after the lines: got %q, %v; want io.EOF", got, err)
			}
		})
	}
}

func FuzzLineReader(f *testing.F) {
	for _, tc := range lineTests {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lr := newLineReader(bufio.NewReader(strings.NewReader(string(in))), 64)
		for i := 0; i <= len(in); i++ {
			line, err := lr.readLine()
			if err == io.EOF {
				return
			}
			if err != nil && !errors.Is(err, errLineTooLong) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(line) > 64 || strings.ContainsRune(line, '\n') {
				t.Fatalf("line %q breaks the limit or holds LF", line)
			}
			verb, _ := parseCommand(line)
			if verb != strings.ToUpper(verb) {
				t.Fatalf("verb %q not upper-cased", verb)
			}
		}
		t.Fatalf("reader did not reach EOF")
	})
}

func TestParseCommand(t *testing.T) {
	tests := []struct{ line, verb, arg string }{
		{"user demo", "USER", "demo"},
		{"PASS  two  blanks ", "PASS", " two  blanks "},
		{"NOOP", "NOOP", ""},
		{"  NOOP", "NOOP", ""},
		{"STOR 'HLQ.PDS(MEM)'", "STOR", "'HLQ.PDS(MEM)'"},
		{"", "", ""},
	}
	for _, tc := range tests {
		verb, arg := parseCommand(tc.line)
		if verb != tc.verb || arg != tc.arg {
			t.Errorf("parseCommand(%q) = %q, %q; want %q, %q", tc.line, verb, arg, tc.verb, tc.arg)
		}
	}
}

func TestReplyFormat(t *testing.T) {
	tests := []struct {
		name string
		r    reply
		want string
	}{
		{"single", rep(200, "OK."), "200 OK.\r\n"},
		{"multi", reply{211, []string{"Features:", "EPSV", "End"}}, "211-Features:\r\n EPSV\r\n211 End\r\n"},
		{"line that looks final is indented", reply{214, []string{"a", "214 fake", "b"}}, "214-a\r\n 214 fake\r\n214 b\r\n"},
		{"crlf injection", rep(550, "no\r\n230 such"), "550 no  230 such\r\n"},
		{"empty", reply{code: 200}, "200 \r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			w := bufio.NewWriter(&b)
			tc.r.writeTo(w)
			if b.String() != tc.want {
				t.Fatalf("got %q; want %q", b.String(), tc.want)
			}
		})
	}
}

func TestReplyFor(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		inTransfer bool
		want       int
	}{
		{"not found", translate.ErrNotFound, false, 550},
		{"wrapped not found", fmt.Errorf("x: %w", errors.Join(translate.ErrNotFound, io.EOF)), false, 550},
		{"permission", translate.ErrPermission, false, 550},
		{"exists", translate.ErrExist, false, 550},
		{"no space in transfer", translate.ErrNoSpace, true, 552},
		{"no space otherwise", translate.ErrNoSpace, false, 452},
		{"unsupported", translate.ErrUnsupported, false, 502},
		{"conn lost in transfer", translate.ErrConnLost, true, 426},
		{"conn lost otherwise", translate.ErrConnLost, false, 421},
		{"short transfer", translate.ErrShortTransfer, true, 426},
		{"host key", &translate.HostKeyError{Host: "h"}, false, 421},
		{"auth", translate.ErrAuth, false, 530},
		{"anything else", errors.New("boom"), false, 451},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := replyFor(tc.err, tc.inTransfer); got.code != tc.want {
				t.Fatalf("replyFor(%v, %v) = %d; want %d", tc.err, tc.inTransfer, got.code, tc.want)
			}
			if got := replyFor(tc.err, tc.inTransfer); strings.Contains(got.text(), "boom") {
				t.Fatalf("reply text leaks the error: %q", got.text())
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"", PortRange{}, true},
		{"50000-50100", PortRange{50000, 50100}, true},
		{"50000", PortRange{50000, 50000}, true},
		{"50100-50000", PortRange{}, false},
		{"0-10", PortRange{}, false},
		{"1-70000", PortRange{}, false},
		{"a-b", PortRange{}, false},
	}
	for _, tc := range tests {
		got, err := ParsePortRange(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatPASV(t *testing.T) {
	got := formatPASV(netip.MustParseAddrPort("10.1.2.3:50001"))
	if want := "Entering Passive Mode (10,1,2,3,195,81)."; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}
