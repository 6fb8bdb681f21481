package translate_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

const partnerPW = "Partner-Pw-For-Tests"

func startSFTP(t *testing.T) *translatetest.Server {
	t.Helper()
	s, err := translatetest.NewServer(t.TempDir(), translatetest.Options{Users: map[string]string{"partner": partnerPW}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func upstreamFor(s *translatetest.Server) policy.Upstream {
	return policy.Upstream{Scheme: "sftp", Host: s.Host, Port: s.Port, User: "partner", HostKeySHA256: []string{s.Fingerprint}}
}

func dial(t *testing.T, up policy.Upstream, pw string) (translate.Upstream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := (&translate.SFTPDialer{}).Dial(ctx, up, translate.Password(pw))
	if u != nil {
		t.Cleanup(func() { u.Close() })
	}
	return u, err
}

func otherKeyLine(t *testing.T, host string, port int) string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	return fmt.Sprintf("[%s]:%d %s", host, port, ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

func TestHostKeyDecisions(t *testing.T) {
	s := startSFTP(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	good := write("good", s.KnownHostsLine())
	changed := write("changed", otherKeyLine(t, s.Host, s.Port))
	empty := write("empty", "")

	tests := []struct {
		name        string
		knownHosts  string
		pins        []string
		wantOK      bool
		wantUnknown bool
	}{
		{"pinned fingerprint", "", []string{s.Fingerprint}, true, false},
		{"known_hosts entry", good, nil, true, false},
		{"known_hosts or pin: pin matches", changed, []string{s.Fingerprint}, true, false},
		{"wrong pin is a changed key", "", []string{"SHA256:" + strings.Repeat("A", 43)}, false, false},
		{"known_hosts with another key is a changed key", changed, nil, false, false},
		{"host missing from known_hosts is unknown", empty, nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := upstreamFor(s)
			up.KnownHosts, up.HostKeySHA256 = tc.knownHosts, tc.pins
			u, err := dial(t, up, partnerPW)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Dial: %v; want success", err)
				}
				if got := u.(translate.Describer).ConnInfo().HostKey; got != s.Fingerprint {
					t.Errorf("ConnInfo.HostKey = %q; want %q", got, s.Fingerprint)
				}
				return
			}
			var hke *translate.HostKeyError
			if !errors.As(err, &hke) {
				t.Fatalf("Dial: %v; want *HostKeyError", err)
			}
			if hke.Unknown != tc.wantUnknown || hke.Fingerprint != s.Fingerprint {
				t.Fatalf("HostKeyError %+v; want Unknown=%v and the presented fingerprint", hke, tc.wantUnknown)
			}
			if strings.Contains(err.Error(), partnerPW) {
				t.Fatalf("error text holds the password")
			}
		})
	}
}

func TestDialRefusesWithoutHostKeySource(t *testing.T) {
	s := startSFTP(t)
	up := upstreamFor(s)
	up.HostKeySHA256 = nil
	if _, err := dial(t, up, partnerPW); err == nil {
		t.Fatal("Dial without known_hosts or pins succeeded; it must refuse")
	}
	if n := s.Connections(); n != 0 {
		t.Errorf("%d connections reached the partner; want none", n)
	}
}

func TestDialErrors(t *testing.T) {
	s := startSFTP(t)
	_, err := dial(t, upstreamFor(s), "wrong")
	if !errors.Is(err, translate.ErrAuth) {
		t.Errorf("wrong password: %v; want ErrAuth", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong") {
		t.Errorf("error text holds the password: %v", err)
	}
	closed := upstreamFor(s)
	closed.Port = 1 // nothing listens on port 1 here
	if _, err := dial(t, closed, partnerPW); !errors.Is(err, translate.ErrUnreachable) {
		t.Errorf("closed port: %v; want ErrUnreachable", err)
	}
	if got := fmt.Sprint(translate.Password(partnerPW)); strings.Contains(got, partnerPW) {
		t.Errorf("Password prints as %q", got)
	}
	if got := fmt.Sprintf("%v %s %+v %q", translate.Password("x1"), translate.Password("x1"), translate.Password("x1"), translate.Password("x1")); strings.Contains(got, "x1") {
		t.Errorf("Password formats as %q", got)
	}
}

// failingReader returns n bytes and then an error, like a client whose
// data connection was reset.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func TestStoreIsAtomic(t *testing.T) {
	s := startSFTP(t)
	u, err := dial(t, upstreamFor(s), partnerPW)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	target := filepath.Join(s.Root, "atomic.bin")
	os.WriteFile(target, []byte("old content"), 0o644)

	if _, err := u.Store(ctx, target, &failingReader{n: 3 << 20}, translate.StoreOptions{}); err == nil {
		t.Fatal("Store from a failing reader succeeded")
	}
	if got, _ := os.ReadFile(target); string(got) != "old content" {
		t.Fatalf("a failed store changed the target: %d bytes", len(got))
	}
	entries, _ := os.ReadDir(s.Root)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	data := bytes.Repeat([]byte("0123456789"), 500_000)
	n, err := u.Store(ctx, target, bytes.NewReader(data), translate.StoreOptions{})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Store: %d, %v", n, err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Fatalf("target holds %d bytes; want the %d stored", len(got), len(data))
	}
	var buf bytes.Buffer
	if n, err := u.Retrieve(ctx, target, 10, &buf); err != nil || n != int64(len(data)-10) || !bytes.Equal(buf.Bytes(), data[10:]) {
		t.Fatalf("Retrieve from offset 10: %d, %v", n, err)
	}
}

func TestErrorsMapToSentinels(t *testing.T) {
	s := startSFTP(t)
	u, err := dial(t, upstreamFor(s), partnerPW)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	os.Mkdir(filepath.Join(s.Root, "dir"), 0o755)
	os.WriteFile(filepath.Join(s.Root, "dir", "f"), []byte("x"), 0o644)
	missing := filepath.Join(s.Root, "missing")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"stat missing", func() error { _, err := u.Stat(ctx, missing); return err }(), translate.ErrNotFound},
		{"retrieve missing", func() error { _, err := u.Retrieve(ctx, missing, 0, io.Discard); return err }(), translate.ErrNotFound},
		{"retrieve dir", func() error { _, err := u.Retrieve(ctx, filepath.Join(s.Root, "dir"), 0, io.Discard); return err }(), translate.ErrIsDir},
		{"remove dir", u.Remove(ctx, filepath.Join(s.Root, "dir")), translate.ErrIsDir},
		{"rmdir file", u.Rmdir(ctx, filepath.Join(s.Root, "dir", "f")), translate.ErrNotDir},
		{"rmdir not empty", u.Rmdir(ctx, filepath.Join(s.Root, "dir")), translate.ErrNotEmpty},
		{"mkdir exists", u.Mkdir(ctx, filepath.Join(s.Root, "dir")), translate.ErrExist},
		{"remove missing", u.Remove(ctx, missing), translate.ErrNotFound},
		{"rename onto a directory", u.Rename(ctx, filepath.Join(s.Root, "dir", "f"), s.Root), translate.ErrIsDir},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := u.Stat(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ErrNotFound is not fs.ErrNotExist")
	}
	s.DropConnections()
	if _, err := u.Stat(ctx, s.Root); !errors.Is(err, translate.ErrConnLost) {
		t.Errorf("after the partner dropped us: %v; want ErrConnLost", err)
	}
}
