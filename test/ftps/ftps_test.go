package ftps

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/ftpstest"
)

// servers lists the real servers every test runs against.
var servers = []struct {
	name  string
	start func(*testing.T, serverOptions) *server
}{
	{"vsftpd", startVsftpd},
	{"proftpd", startProFTPD},
}

var versions = []uint16{tls.VersionTLS12, tls.VersionTLS13}

func dialer(version uint16) *translate.FTPSDialer {
	return &translate.FTPSDialer{
		DialTimeout:      5 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		ReplyTimeout:     20 * time.Second,
		IdleTimeout:      20 * time.Second,
		MaxTLSVersion:    version,
	}
}

func dial(t *testing.T, s *server, d *translate.FTPSDialer, up policy.Upstream) translate.Upstream {
	t.Helper()
	u, err := d.Dial(context.Background(), up, translate.Password(s.password))
	if err != nil {
		t.Fatalf("Dial(%s): %v", up, err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func randomData(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// rw is a client data connection for Transfer.
type rw struct {
	io.Reader
	io.Writer
}

func TestRoundTrip(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			for _, v := range versions {
				t.Run(tls.VersionName(v), func(t *testing.T) {
					u := dial(t, s, dialer(v), s.upstream())
					info := u.(translate.Describer).ConnInfo()
					if info.TLSVersion != tls.VersionName(v) || info.HostKey != s.cert.Fingerprint() || info.Protocol != s.scheme {
						t.Errorf("ConnInfo() = %+v; want %s, %s and the server's certificate", info, s.scheme, tls.VersionName(v))
					}
					t.Logf("%s: %s, %s, %s, %s", s.name, info.ServerVersion, info.TLSVersion, info.CipherSuite, info.HostKey)
					for _, size := range []int{1 << 20, 64 << 20} {
						if size > 1<<20 && testing.Short() {
							t.Logf("skipping the %d MiB round trip in -short mode", size>>20)
							continue
						}
						roundTrip(t, s, u, size)
					}
				})
			}
		})
	}
}

// roundTrip stores size random bytes, reads them back, and compares
// SHA-256 digests of what was sent, what the server holds and what came
// back.
func roundTrip(t *testing.T, s *server, u translate.Upstream, size int) {
	t.Helper()
	ctx := context.Background()
	data := randomData(t, size)
	want := sha256.Sum256(data)
	name := fmt.Sprintf("rt-%d.bin", size)

	start := time.Now()
	n, err := u.Store(ctx, s.path(name), bytes.NewReader(data), translate.StoreOptions{})
	up := time.Since(start)
	if err != nil || n != int64(size) {
		t.Fatalf("Store %d bytes = %d, %v", size, n, err)
	}
	onDisk, err := os.ReadFile(filepath.Join(s.local, name))
	if err != nil || sha256.Sum256(onDisk) != want {
		t.Fatalf("the server holds %d bytes (%v) with another SHA-256; want the %d sent", len(onDisk), err, size)
	}
	h := sha256.New()
	start = time.Now()
	n, err = u.Retrieve(ctx, s.path(name), 0, h)
	down := time.Since(start)
	if err != nil || n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("Retrieve = %d, %v; want %d bytes with the same SHA-256", n, err, size)
	}
	mb := float64(size) / 1e6
	t.Logf("%d MiB: store %v (%.0f MB/s), retrieve %v (%.0f MB/s), round trip %.0f MB/s",
		size>>20, up.Round(time.Millisecond), mb/up.Seconds(), down.Round(time.Millisecond), mb/down.Seconds(),
		2*mb/(up+down).Seconds())
	entries, _ := os.ReadDir(s.local)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".part") {
			t.Errorf("temporary file %s left on the server", e.Name())
		}
	}
}

func TestDialoguePassThrough(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			data := randomData(t, 100_000)
			if err := os.WriteFile(filepath.Join(s.local, "f.bin"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, v := range versions {
				t.Run(tls.VersionName(v), func(t *testing.T) {
					u := dial(t, s, dialer(v), s.upstream())
					fw := u.(translate.Forwarder)
					ctx := context.Background()
					forward := func(verb, arg string, want int) translate.Reply {
						t.Helper()
						rep, err := fw.Forward(ctx, verb, arg)
						if err != nil || rep.Code != want {
							t.Errorf("Forward(%s %s) = %+v, %v; want %d", verb, arg, rep, err, want)
						}
						return rep
					}
					forward("TYPE", "A", 200)
					var list bytes.Buffer
					final, _, err := fw.Transfer(ctx, "LIST", s.dir, func(translate.Reply) (io.ReadWriter, error) { return rw{nil, &list}, nil })
					if err != nil || final.Code != 226 || !strings.Contains(list.String(), " f.bin\r\n") {
						t.Errorf("Transfer(LIST) = %+v, %v, listing %q; want 226 and f.bin", final, err, list.String())
					}
					list.Reset()
					final, _, err = fw.Transfer(ctx, "NLST", s.dir, func(translate.Reply) (io.ReadWriter, error) { return rw{nil, &list}, nil })
					if err != nil || final.Code != 226 || !strings.Contains(list.String(), "f.bin") {
						t.Errorf("Transfer(NLST) = %+v, %v, listing %q", final, err, list.String())
					}
					if rep := forward("FEAT", "", 211); len(rep.Lines) < 3 {
						t.Errorf("FEAT = %+v; want a multi-line reply", rep)
					}
					if rep := forward("STAT", "", 211); len(rep.Lines) < 3 {
						t.Errorf("STAT = %+v; want a multi-line reply", rep)
					}
					forward("TYPE", "I", 200)
					if rep := forward("SIZE", s.path("f.bin"), 213); rep.Lines[0] != "100000" {
						t.Errorf("SIZE = %+v; want 100000", rep)
					}
					forward("MDTM", s.path("f.bin"), 213)
					forward("MKD", s.path("d"), 257)
					forward("CWD", s.path("d"), 250)
					forward("CDUP", "", 250)
					forward("RMD", s.path("d"), 250)
					forward("RNFR", s.path("f.bin"), 350)
					forward("RNTO", s.path("g.bin"), 250)
					forward("RNFR", s.path("g.bin"), 350)
					forward("RNTO", s.path("f.bin"), 250)
					forward("SIZE", s.path("missing"), 550)
					forward("DELE", s.path("missing"), 550)
					// vsftpd refuses SITE to anonymous users; either
					// way the partner's answer comes back.
					if s.name == "vsftpd" {
						forward("SITE", "HELP", 550)
					} else {
						forward("SITE", "HELP", 214)
					}

					// APPE through Transfer, then DELE.
					final, n, err := fw.Transfer(ctx, "APPE", s.path("app.bin"), func(translate.Reply) (io.ReadWriter, error) {
						return rw{bytes.NewReader(data[:5000]), nil}, nil
					})
					if err != nil || final.Code != 226 || n != 5000 {
						t.Errorf("Transfer(APPE) = %+v, %d, %v", final, n, err)
					}
					forward("DELE", s.path("app.bin"), 250)

					// RETR through Transfer: the bytes as stored.
					var got bytes.Buffer
					final, _, err = fw.Transfer(ctx, "RETR", s.path("f.bin"), func(translate.Reply) (io.ReadWriter, error) { return rw{nil, &got}, nil })
					if err != nil || final.Code != 226 || !bytes.Equal(got.Bytes(), data) {
						t.Errorf("Transfer(RETR) = %+v, %v, %d bytes", final, err, got.Len())
					}
					final, _, err = fw.Transfer(ctx, "RETR", s.path("missing"), func(translate.Reply) (io.ReadWriter, error) {
						t.Error("open called for a refused RETR")
						return nil, errors.New("unexpected")
					})
					if err != nil || final.Code != 550 {
						t.Errorf("Transfer(RETR missing) = %+v, %v; want the partner's 550", final, err)
					}
				})
			}
		})
	}
}

func TestResume(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			for _, v := range versions {
				t.Run(tls.VersionName(v), func(t *testing.T) {
					u := dial(t, s, dialer(v), s.upstream())
					ctx := context.Background()
					data := randomData(t, 3<<20)
					half := int64(len(data) / 2)
					if _, err := u.Store(ctx, s.path("r.bin"), bytes.NewReader(data[:half]), translate.StoreOptions{}); err != nil {
						t.Fatal(err)
					}
					n, err := u.Store(ctx, s.path("r.bin"), bytes.NewReader(data[half:]), translate.StoreOptions{Offset: half})
					if err != nil || n != int64(len(data))-half {
						t.Fatalf("Store from offset %d = %d, %v", half, n, err)
					}
					if got, _ := os.ReadFile(filepath.Join(s.local, "r.bin")); !bytes.Equal(got, data) {
						t.Fatalf("after REST and STOR the server holds %d bytes; want the %d uploaded", len(got), len(data))
					}
					var tail bytes.Buffer
					n, err = u.Retrieve(ctx, s.path("r.bin"), half+7, &tail)
					if err != nil || !bytes.Equal(tail.Bytes(), data[half+7:]) {
						t.Errorf("Retrieve from %d = %d, %v", half+7, n, err)
					}
					// The client's REST, passed through, then RETR.
					fw := u.(translate.Forwarder)
					if rep, err := fw.Forward(ctx, "TYPE", "I"); err != nil || rep.Code != 200 {
						t.Fatalf("TYPE I: %+v, %v", rep, err)
					}
					if rep, err := fw.Forward(ctx, "REST", "1000"); err != nil || rep.Code != 350 {
						t.Fatalf("REST: %+v, %v", rep, err)
					}
					tail.Reset()
					final, _, err := fw.Transfer(ctx, "RETR", s.path("r.bin"), func(translate.Reply) (io.ReadWriter, error) { return rw{nil, &tail}, nil })
					if err != nil || final.Code != 226 || !bytes.Equal(tail.Bytes(), data[1000:]) {
						t.Errorf("REST 1000 then RETR = %+v, %v, %d bytes; want the file from byte 1000", final, err, tail.Len())
					}
					if _, err := u.Store(ctx, s.path("r.bin"), bytes.NewReader(data[:10]), translate.StoreOptions{Append: true}); err != nil {
						t.Errorf("Store with Append: %v", err)
					}
					if fi, err := os.Stat(filepath.Join(s.local, "r.bin")); err != nil || fi.Size() != int64(len(data))+10 {
						t.Errorf("after APPE the file is %v, %v; want %d bytes", fi, err, len(data)+10)
					}
				})
			}
		})
	}
}

// blockingWriter takes the first write, then blocks until ctx ends.
type blockingWriter struct {
	ctx     context.Context
	started chan struct{}
	n       int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		close(w.started)
	}
	w.n += len(p)
	if w.n > len(p) {
		<-w.ctx.Done()
		return 0, w.ctx.Err()
	}
	return len(p), nil
}

// blockingReader returns some data, then blocks until ctx ends.
type blockingReader struct {
	ctx     context.Context
	started chan struct{}
	sent    bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		close(r.started)
		return copy(p, bytes.Repeat([]byte{'x'}, 256<<10)), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestAbort(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			big := randomData(t, 32<<20)
			if err := os.WriteFile(filepath.Join(s.local, "big"), big, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, v := range versions {
				t.Run(tls.VersionName(v), func(t *testing.T) {
					u := dial(t, s, dialer(v), s.upstream())
					fw := u.(translate.Forwarder)
					abort := func(what string, run func(ctx context.Context, started chan struct{}) error) {
						t.Helper()
						ctx, cancel := context.WithCancel(context.Background())
						defer cancel()
						started := make(chan struct{})
						errc := make(chan error, 1)
						go func() { errc <- run(ctx, started) }()
						select {
						case <-started:
						case err := <-errc:
							t.Fatalf("%s ended before it started moving data: %v", what, err)
						case <-time.After(10 * time.Second):
							t.Fatalf("%s never started", what)
						}
						cancel()
						select {
						case err := <-errc:
							if !errors.Is(err, context.Canceled) || !errors.Is(err, translate.ErrConnLost) {
								t.Errorf("%s: error %v; want context.Canceled and ErrConnLost", what, err)
							}
						case <-time.After(30 * time.Second):
							t.Fatalf("%s did not end after the cancel", what)
						}
						if _, err := u.Home(context.Background()); err != nil {
							t.Errorf("Home() after aborting %s: %v; want the session usable", what, err)
						}
					}
					abort("Retrieve", func(ctx context.Context, started chan struct{}) error {
						_, err := u.Retrieve(ctx, s.path("big"), 0, &blockingWriter{ctx: ctx, started: started})
						return err
					})
					abort("Store", func(ctx context.Context, started chan struct{}) error {
						_, err := u.Store(ctx, s.path("new.bin"), &blockingReader{ctx: ctx, started: started}, translate.StoreOptions{})
						return err
					})
					var final translate.Reply
					abort("Transfer RETR", func(ctx context.Context, started chan struct{}) error {
						var err error
						final, _, err = fw.Transfer(ctx, "RETR", s.path("big"), func(translate.Reply) (io.ReadWriter, error) {
							return rw{nil, &blockingWriter{ctx: ctx, started: started}}, nil
						})
						return err
					})
					if final.Code/100 != 4 {
						t.Errorf("aborted RETR: the partner's final reply %+v; want 4yz (transfer aborted)", final)
					}
					t.Logf("aborted RETR: partner said %d %s", final.Code, strings.Join(final.Lines, " "))

					// Nothing partial is left, and transfers work again.
					entries, _ := os.ReadDir(s.local)
					var names []string
					for _, e := range entries {
						names = append(names, e.Name())
					}
					if !slices.Equal(names, []string{"big"}) {
						t.Errorf("after the aborts the server holds %v; want only big", names)
					}
					h := sha256.New()
					if n, err := u.Retrieve(context.Background(), s.path("big"), 0, h); err != nil || n != int64(len(big)) ||
						!bytes.Equal(h.Sum(nil), sha256Sum(big)) {
						t.Errorf("Retrieve after the aborts = %d, %v", n, err)
					}
				})
			}
		})
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func TestStatAndReadDir(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			os.WriteFile(filepath.Join(s.local, "file.txt"), []byte("12345"), 0o644)
			os.Mkdir(filepath.Join(s.local, "sub"), 0o755)
			u := dial(t, s, dialer(0), s.upstream())
			ctx := context.Background()
			home, err := u.Home(ctx)
			if err != nil {
				t.Fatalf("Home: %v", err)
			}
			fi, err := u.Stat(ctx, s.path("file.txt"))
			if err != nil || fi.Size() != 5 || !fi.Mode().IsRegular() || fi.ModTime().IsZero() {
				t.Errorf("Stat(file) = %+v, %v", fi, err)
			}
			fi, err = u.Stat(ctx, s.path("sub"))
			if err != nil || !fi.IsDir() {
				t.Errorf("Stat(dir) = %+v, %v", fi, err)
			}
			if _, err := u.Stat(ctx, s.path("missing")); !errors.Is(err, translate.ErrNotFound) {
				t.Errorf("Stat(missing) error %v; want ErrNotFound", err)
			}
			if again, err := u.Home(ctx); err != nil || again != home {
				t.Errorf("Home() after Stat = %q, %v; want %q", again, err, home)
			}
			list, err := u.ReadDir(ctx, s.dir)
			var names []string
			for _, fi := range list {
				names = append(names, fmt.Sprintf("%s:%v", fi.Name(), fi.IsDir()))
			}
			slices.Sort(names)
			if err != nil || !slices.Equal(names, []string{"file.txt:false", "sub:true"}) {
				t.Errorf("ReadDir = %v, %v", names, err)
			}
			if err := u.Mkdir(ctx, s.path("m")); err != nil {
				t.Errorf("Mkdir: %v", err)
			}
			if err := u.Rename(ctx, s.path("file.txt"), s.path("m/f.txt")); err != nil {
				t.Errorf("Rename: %v", err)
			}
			if err := u.Remove(ctx, s.path("m/f.txt")); err != nil {
				t.Errorf("Remove: %v", err)
			}
			if err := u.Rmdir(ctx, s.path("m")); err != nil {
				t.Errorf("Rmdir: %v", err)
			}
			if err := u.Remove(ctx, s.path("m/f.txt")); !errors.Is(err, translate.ErrNotFound) {
				t.Errorf("Remove(missing): %v; want ErrNotFound", err)
			}
		})
	}
}

func TestCertificateRefused(t *testing.T) {
	other, err := ftpstest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	os.WriteFile(otherCA, other.CertPEM, 0o600)
	otherCert, err := other.ServerCert()
	if err != nil {
		t.Fatal(err)
	}

	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			refused := func(t *testing.T, s *server, up policy.Upstream, reason string, unknown bool) {
				t.Helper()
				u, err := dialer(0).Dial(context.Background(), up, translate.Password(s.password))
				if err == nil {
					u.Close()
					t.Fatalf("Dial succeeded; want the certificate refused (%s)", reason)
				}
				var ce *translate.CertError
				var hke *translate.HostKeyError
				if !errors.As(err, &ce) || ce.Reason != reason || !errors.As(err, &hke) || hke.Unknown != unknown {
					t.Errorf("Dial error %v; want a CertError %q (HostKeyError.Unknown %v)", err, reason, unknown)
				}
			}
			s := srv.start(t, serverOptions{})
			t.Run("wrong CA", func(t *testing.T) {
				up := s.upstream()
				up.TLSCAFile = otherCA
				refused(t, s, up, "unknown authority", true)
			})
			t.Run("pin mismatch", func(t *testing.T) {
				up := s.upstream()
				up.TLSCertSHA256 = []string{otherCert.Fingerprint()}
				refused(t, s, up, "pin mismatch", false)
			})
			t.Run("pin match", func(t *testing.T) {
				up := s.upstream()
				up.TLSCertSHA256 = []string{s.cert.Fingerprint()}
				u := dial(t, s, dialer(0), up)
				if _, err := u.ReadDir(context.Background(), s.dir); err != nil {
					t.Errorf("ReadDir with a matching pin: %v", err)
				}
			})
			t.Run("wrong host", func(t *testing.T) {
				s := srv.start(t, serverOptions{cert: func(ca *ftpstest.CA) (*ftpstest.Cert, error) {
					return ca.Issue(ftpstest.CertOptions{CommonName: "other.example", DNSNames: []string{"other.example"}})
				}})
				refused(t, s, s.upstream(), "host name mismatch", true)
				// The same certificate passes when the route names it.
				up := s.upstream()
				up.TLSServerName = "other.example"
				dial(t, s, dialer(0), up)
			})
			t.Run("expired", func(t *testing.T) {
				s := srv.start(t, serverOptions{cert: func(ca *ftpstest.CA) (*ftpstest.Cert, error) {
					return ca.Issue(ftpstest.CertOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
						NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
				}})
				refused(t, s, s.upstream(), "expired or not yet valid", true)
			})
		})
	}
}

func TestMutualTLS(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{clientCert: true})
			for _, v := range versions {
				t.Run(tls.VersionName(v), func(t *testing.T) {
					u, err := dialer(v).Dial(context.Background(), s.upstream(), translate.Password(s.password))
					if err == nil {
						// Some servers let the handshake finish and
						// refuse later: the first transfer must fail.
						_, err = u.ReadDir(context.Background(), s.dir)
						u.Close()
					}
					if err == nil {
						t.Fatalf("session without a client certificate worked; want it refused")
					}
					t.Logf("without a client certificate: %v", err)
					client, err := s.ca.Issue(ftpstest.CertOptions{CommonName: "ftpgate", Client: true})
					if err != nil {
						t.Fatal(err)
					}
					dir := t.TempDir()
					up := s.upstream()
					up.TLSClientCert = filepath.Join(dir, "client.pem")
					up.TLSClientKey = filepath.Join(dir, "client.key")
					os.WriteFile(up.TLSClientCert, client.CertPEM, 0o600)
					os.WriteFile(up.TLSClientKey, client.KeyPEM, 0o600)
					u = dial(t, s, dialer(v), up)
					roundTrip(t, s, u, 1<<20)
				})
			}
		})
	}
}

func TestLoginRefused(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			up := s.upstream()
			pw := translate.Password("wrong-" + s.password)
			if s.name == "vsftpd" {
				up.User = "bob" // vsftpd here is anonymous only
			}
			_, err := dialer(0).Dial(context.Background(), up, pw)
			var re *translate.ReplyError
			if !errors.Is(err, translate.ErrAuth) || !errors.As(err, &re) || re.Code != 530 {
				t.Errorf("Dial with wrong credentials: %v; want ErrAuth with the partner's 530", err)
			}
			if strings.Contains(fmt.Sprint(err), string(pw)) {
				t.Errorf("error %q holds the password", err)
			}
		})
	}
}

// TestServersRequireSessionReuse proves the servers are set up the way
// the other tests rely on: a data connection that does not resume the
// control connection's TLS session is refused. It speaks FTPS with
// crypto/tls directly, without a session cache, and looks for the
// server's own log line about the refusal.
func TestServersRequireSessionReuse(t *testing.T) {
	refusal := map[string]string{
		"vsftpd":  "No SSL session reuse on data channel",
		"proftpd": "client did not reuse TLS session",
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t, serverOptions{})
			for _, v := range versions {
				t.Run(tls.VersionName(v), func(t *testing.T) {
					c := rawLogin(t, s, v)
					port := c.epsv(t)
					data, err := net.DialTimeout("tcp", net.JoinHostPort(s.host, strconv.Itoa(port)), 5*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					defer data.Close()
					c.send(t, "LIST "+s.dir)
					// No ClientSessionCache: a full handshake. The
					// data connection is closed after a moment: ProFTPD
					// sends its 425 only then, and vsftpd 3.0.3 stops
					// answering on the control connection altogether.
					dc := tls.Client(data, &tls.Config{ServerName: s.host, RootCAs: s.ca.Pool(), MaxVersion: v})
					data.SetDeadline(time.Now().Add(2 * time.Second))
					hsDone := make(chan struct{})
					go func() {
						defer close(hsDone)
						if dc.Handshake() == nil {
							io.Copy(io.Discard, dc)
						}
						data.Close()
					}()
					c.c.SetDeadline(time.Now().Add(5 * time.Second))
					var codes []int
					for {
						rep, err := c.tryRead()
						if err != nil {
							break
						}
						codes = append(codes, rep.Code)
						if rep.Code/100 != 1 {
							break
						}
					}
					<-hsDone
					if slices.ContainsFunc(codes, func(c int) bool { return c/100 == 2 }) {
						t.Errorf("LIST over a data connection without session reuse: replies %v; want it refused", codes)
					}
					if !strings.Contains(s.log(), refusal[s.name]) {
						t.Errorf("the %s log does not say %q", s.name, refusal[s.name])
					}
					t.Logf("without session reuse %s answered %v and logged %q", s.name, codes, refusal[s.name])
				})
			}
		})
	}
}

// rawConn is a minimal FTPS client for TestServersRequireSessionReuse.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func rawLogin(t *testing.T, s *server, v uint16) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(s.host, strconv.Itoa(s.port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &rawConn{c: conn, r: bufio.NewReader(conn)}
	cfg := &tls.Config{ServerName: s.host, RootCAs: s.ca.Pool(), MaxVersion: v}
	if s.scheme == "ftpes" {
		c.expect(t, 220)
		c.send(t, "AUTH TLS")
		c.expect(t, 234)
	}
	tc := tls.Client(conn, cfg)
	c.c, c.r = tc, bufio.NewReader(tc)
	if s.scheme == "ftps" {
		c.expect(t, 220)
	}
	c.send(t, "USER "+s.user)
	c.expect(t, 331)
	c.send(t, "PASS "+s.password)
	c.expect(t, 230)
	for _, cmd := range []string{"PBSZ 0", "PROT P"} {
		c.send(t, cmd)
		c.expect(t, 200)
	}
	return c
}

func (c *rawConn) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		t.Fatal(err)
	}
}

// read reads one reply, multi-line replies included.
func (c *rawConn) read(t *testing.T) translate.Reply {
	t.Helper()
	rep, err := c.tryRead()
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return rep
}

func (c *rawConn) tryRead() (translate.Reply, error) {
	line, err := c.r.ReadString('\n')
	if err != nil || len(line) < 4 {
		return translate.Reply{}, fmt.Errorf("%q: %v", line, err)
	}
	code, _ := strconv.Atoi(line[:3])
	rep := translate.Reply{Code: code, Lines: []string{strings.TrimSpace(line[4:])}}
	for line[3] == '-' {
		if line, err = c.r.ReadString('\n'); err != nil {
			return translate.Reply{}, err
		}
		rep.Lines = append(rep.Lines, strings.TrimRight(line, "\r\n"))
		if strings.HasPrefix(line, strconv.Itoa(code)+" ") {
			break
		}
	}
	return rep, nil
}

func (c *rawConn) expect(t *testing.T, code int) translate.Reply {
	t.Helper()
	rep := c.read(t)
	if rep.Code != code {
		t.Fatalf("got reply %+v; want %d", rep, code)
	}
	return rep
}

func (c *rawConn) epsv(t *testing.T) int {
	t.Helper()
	c.send(t, "EPSV")
	rep := c.expect(t, 229)
	text := rep.Lines[0]
	i, j := strings.Index(text, "(|||"), strings.LastIndex(text, "|)")
	port, err := strconv.Atoi(text[i+4 : j])
	if i < 0 || j < i || err != nil {
		t.Fatalf("EPSV reply %q", text)
	}
	return port
}

func TestMD5Crypt(t *testing.T) {
	// Known answers from openssl passwd -1 -salt.
	tests := []struct{ password, salt, want string }{
		{"pw", "saltsalt", "$1$saltsalt$6SNdNaZLKst2LlSm7oPPL1"},
		{"ftpgate test password", "abcdefgh", "$1$abcdefgh$glg3WXH9JenamwcY5Aj9y1"},
	}
	for _, tc := range tests {
		if got := md5Crypt(tc.password, tc.salt); got != tc.want {
			t.Errorf("md5Crypt(%q, %q) = %q; want %q", tc.password, tc.salt, got, tc.want)
		}
	}
}
