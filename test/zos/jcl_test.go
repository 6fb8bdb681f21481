package zos

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// jclDir holds the sample JCL members (deploy/jcl).
var jclDir = filepath.Join("..", "..", "deploy", "jcl")

// exercisedBy finds the deck a member names in its comment.
var exercisedBy = regexp.MustCompile(`(?m)^//\* Exercised by test/zos/decks/([a-z0-9-]+)\.deck`)

// TestJCLMembers keeps the sample JCL honest: every member names the deck
// that exercises it, the deck is one TestDecks runs, and the member's INPUT
// DD is that deck line for line. JCL statements fit in columns 1-71 and
// instream records in 80 columns.
func TestJCLMembers(t *testing.T) {
	members, err := filepath.Glob(filepath.Join(jclDir, "*.jcl"))
	if err != nil || len(members) == 0 {
		t.Fatalf("no JCL members in %s (%v)", jclDir, err)
	}
	for _, path := range members {
		t.Run(filepath.Base(path), func(t *testing.T) {
			text := readFile(t, path)
			m := exercisedBy.FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no \"//* Exercised by test/zos/decks/NAME.deck\" comment")
			}
			deck := m[1]
			known := false
			for _, dc := range deckCases {
				known = known || dc.name == deck
			}
			if !known {
				t.Errorf("deck %s is not in deckCases: no test runs it", deck)
			}
			input, inInput := []string{}, false
			for n, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
				switch {
				case inInput && line == "/*":
					inInput = false
				case inInput:
					if len(line) > 80 {
						t.Errorf("line %d: instream record of %d columns; at most 80", n+1, len(line))
					}
					input = append(input, strings.TrimRight(line, " "))
				case strings.HasPrefix(line, "//"):
					if len(line) > 71 {
						t.Errorf("line %d: JCL statement of %d columns; at most 71", n+1, len(line))
					}
					f := strings.Fields(line)
					if len(f) >= 3 && f[0] == "//INPUT" && f[1] == "DD" && strings.HasPrefix(f[2], "*") {
						inInput = true
					}
				default:
					t.Errorf("line %d: %q is neither JCL nor instream data", n+1, line)
				}
			}
			want := strings.Split(strings.TrimRight(readFile(t, filepath.Join("decks", deck+".deck")), "\n"), "\n")
			if strings.Join(input, "\n") != strings.Join(want, "\n") {
				t.Errorf("INPUT DD differs from decks/%s.deck:\n%s\nwant:\n%s", deck, strings.Join(input, "\n"), strings.Join(want, "\n"))
			}
			if fileExists(filepath.Join("decks", deck+".netrc")) && !regexp.MustCompile(`(?m)^//NETRC +DD `).MatchString(text) {
				t.Errorf("deck %s logs in from NETRC, but the member has no NETRC DD", deck)
			}
		})
	}
}

// TestFTPDataMember checks that the sample FTP.DATA parses and says what
// its comments say.
func TestFTPDataMember(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(jclDir, "FTPDATA.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := ParseFTPData(string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := FTPData{FWFriendly: true, SendSite: true, InactTime: DefaultFTPData().InactTime, ExtensionsUTF8: true}
	if fd != want {
		t.Errorf("FTPDATA parses as %+v; want %+v", fd, want)
	}
}
