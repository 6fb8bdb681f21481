package translate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/ftpstest"
)

// ftpsEnv is an in-process FTPS server with a throwaway CA.
type ftpsEnv struct {
	ca     *ftpstest.CA
	cert   *ftpstest.Cert
	caFile string
	srv    *ftpstest.Server
}

const (
	testUser     = "partner"
	testPassword = "hunter2-secret"
)

func newCA(t *testing.T) *ftpstest.CA {
	t.Helper()
	ca, err := ftpstest.NewCA("ftpgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startFTPS starts a server that requires TLS session reuse on data
// connections. cert, when not nil, replaces the usual 127.0.0.1 certificate
// from the env's CA.
func startFTPS(t *testing.T, opt ftpstest.Options, cert *ftpstest.Cert) *ftpsEnv {
	t.Helper()
	ca := newCA(t)
	if cert == nil {
		var err error
		if cert, err = ca.ServerCert(); err != nil {
			t.Fatal(err)
		}
	}
	if opt.TLS == nil {
		opt.TLS = &tls.Config{}
	}
	opt.TLS.Certificates = []tls.Certificate{cert.TLS}
	if opt.Users == nil {
		opt.Users = map[string]string{testUser: testPassword}
	}
	opt.RequireSessionReuse = true
	srv, err := ftpstest.NewServer(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &ftpsEnv{ca: ca, cert: cert, caFile: writeFile(t, "ca.pem", ca.CertPEM), srv: srv}
}

func (e *ftpsEnv) upstream(scheme string) policy.Upstream {
	return policy.Upstream{Scheme: scheme, Host: e.srv.Host, Port: e.srv.Port, User: testUser, TLSCAFile: e.caFile}
}

func (e *ftpsEnv) scheme(implicit bool) string {
	if implicit {
		return "ftps"
	}
	return "ftpes"
}

// testDialer has short timeouts, so a hang fails fast.
func testDialer() *translate.FTPSDialer {
	return &translate.FTPSDialer{DialTimeout: 5 * time.Second, HandshakeTimeout: 5 * time.Second, ReplyTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
}

func dialOK(t *testing.T, d *translate.FTPSDialer, up policy.Upstream) translate.Upstream {
	t.Helper()
	u, err := d.Dial(context.Background(), up, testPassword)
	if err != nil {
		t.Fatalf("Dial(%s): %v", up, err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func TestFTPSRoundTrip(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, before := range []bool{false, true} {
				name := fmt.Sprintf("implicit=%v/%s/handshake-before-150=%v", implicit, tls.VersionName(version), before)
				t.Run(name, func(t *testing.T) {
					env := startFTPS(t, ftpstest.Options{Implicit: implicit, HandshakeBefore150: before}, nil)
					d := testDialer()
					d.MaxTLSVersion = version
					up := dialOK(t, d, env.upstream(env.scheme(implicit)))
					ctx := context.Background()

					info := up.(translate.Describer).ConnInfo()
					if info.Protocol != env.scheme(implicit) || info.TLSVersion != tls.VersionName(version) || info.CipherSuite == "" ||
						info.HostKey != env.cert.Fingerprint() || !strings.Contains(info.PeerSubject, "CN=localhost") ||
						info.Endpoint != env.srv.Addr || !strings.Contains(info.ServerVersion, "ftpstest") {
						t.Errorf("ConnInfo() = %+v; want %s, %s, fingerprint %s", info, env.scheme(implicit), tls.VersionName(version), env.cert.Fingerprint())
					}

					data := randomBytes(t, 1<<20)
					for i := range 2 { // the second store replaces the file
						n, err := up.Store(ctx, "/f.bin", bytes.NewReader(data), translate.StoreOptions{})
						if err != nil || n != int64(len(data)) {
							t.Fatalf("Store #%d = %d, %v; want %d", i, n, err, len(data))
						}
					}
					var got bytes.Buffer
					n, err := up.Retrieve(ctx, "/f.bin", 0, &got)
					if err != nil || n != int64(len(data)) || sum(got.Bytes()) != sum(data) {
						t.Fatalf("Retrieve = %d, %v; want %d bytes with the same SHA-256", n, err, len(data))
					}
					entries, _ := os.ReadDir(env.srv.Root)
					if len(entries) != 1 || entries[0].Name() != "f.bin" {
						t.Errorf("server directory holds %v; want only f.bin (no temporary file)", entries)
					}
					resumed := env.srv.DataResumed()
					if len(resumed) != 3 || slices.Contains(resumed, false) {
						t.Errorf("data connections resumed: %v; want 3, all resumed", resumed)
					}
				})
			}
		}
	}
}

func TestFTPSStoreModes(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	ctx := context.Background()
	data := randomBytes(t, 300_000)

	// An interrupted upload continued with REST and STOR in place.
	if _, err := up.Store(ctx, "/r.bin", bytes.NewReader(data[:100_000]), translate.StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := up.Store(ctx, "/r.bin", bytes.NewReader(data[100_000:]), translate.StoreOptions{Offset: 100_000})
	if err != nil || n != 200_000 {
		t.Fatalf("Store with Offset = %d, %v; want 200000", n, err)
	}
	if got, _ := os.ReadFile(filepath.Join(env.srv.Root, "r.bin")); !bytes.Equal(got, data) {
		t.Errorf("after resume the file holds %d bytes; want the %d uploaded", len(got), len(data))
	}

	// APPE to a missing file, then to the existing one.
	for _, part := range [][]byte{data[:1000], data[1000:3000]} {
		if _, err := up.Store(ctx, "/a.bin", bytes.NewReader(part), translate.StoreOptions{Append: true}); err != nil {
			t.Fatalf("Store with Append: %v", err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(env.srv.Root, "a.bin")); !bytes.Equal(got, data[:3000]) {
		t.Errorf("after two appends the file holds %d bytes; want 3000", len(got))
	}

	// Retrieve from an offset (REST before RETR).
	var tail bytes.Buffer
	n, err = up.Retrieve(ctx, "/r.bin", 250_000, &tail)
	if err != nil || n != 50_000 || !bytes.Equal(tail.Bytes(), data[250_000:]) {
		t.Errorf("Retrieve from 250000 = %d, %v; want the last 50000 bytes", n, err)
	}
	cmds := strings.Join(env.srv.Commands(), "\n")
	if !strings.Contains(cmds, "EPSV\nREST 250000\nRETR /r.bin") || !strings.Contains(cmds, "EPSV\nREST 100000\nSTOR /r.bin") {
		t.Errorf("commands:\n%s\nwant REST right before RETR and STOR", cmds)
	}
}

func TestFTPSStatAndReadDir(t *testing.T) {
	for _, noMLST := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoMLST=%v", noMLST), func(t *testing.T) {
			env := startFTPS(t, ftpstest.Options{NoMLST: noMLST}, nil)
			os.WriteFile(filepath.Join(env.srv.Root, "file.txt"), []byte("12345"), 0o640)
			os.Mkdir(filepath.Join(env.srv.Root, "sub dir"), 0o755)
			up := dialOK(t, testDialer(), env.upstream("ftpes"))
			ctx := context.Background()

			fi, err := up.Stat(ctx, "/file.txt")
			if err != nil || fi.Name() != "file.txt" || fi.Size() != 5 || !fi.Mode().IsRegular() || fi.ModTime().IsZero() {
				t.Errorf("Stat(file) = %+v, %v; want a 5-byte regular file with a time", fi, err)
			}
			fi, err = up.Stat(ctx, "/sub dir")
			if err != nil || !fi.IsDir() || fi.Name() != "sub dir" {
				t.Errorf("Stat(dir) = %+v, %v; want a directory", fi, err)
			}
			_, err = up.Stat(ctx, "/missing")
			var re *translate.ReplyError
			if !errors.Is(err, translate.ErrNotFound) || !errors.As(err, &re) || re.Code != 550 {
				t.Errorf("Stat(missing) error %v; want ErrNotFound with the partner's 550", err)
			}
			if home, err := up.Home(ctx); err != nil || home != "/" {
				t.Errorf("Home() after Stat = %q, %v; want / (probing must return to the working directory)", home, err)
			}

			list, err := up.ReadDir(ctx, "/")
			var names []string
			for _, fi := range list {
				names = append(names, fmt.Sprintf("%s:%d:%v", fi.Name(), fi.Size(), fi.IsDir()))
			}
			slices.Sort(names)
			want := []string{"file.txt:5:false", "sub dir:" + fmt.Sprint(dirSize(t, filepath.Join(env.srv.Root, "sub dir"))) + ":true"}
			if err != nil || !slices.Equal(names, want) {
				t.Errorf("ReadDir(/) = %v, %v; want %v", names, err, want)
			}
			if _, err := up.ReadDir(ctx, "/missing"); !errors.Is(err, translate.ErrNotFound) {
				t.Errorf("ReadDir(missing) error %v; want ErrNotFound", err)
			}
		})
	}
}

func dirSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestFTPSReadDirLimit(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	for i := range 5 {
		os.WriteFile(filepath.Join(env.srv.Root, fmt.Sprint(i)), nil, 0o644)
	}
	d := testDialer()
	d.MaxListEntries = 4
	up := dialOK(t, d, env.upstream("ftpes"))
	if _, err := up.ReadDir(context.Background(), "/"); !errors.Is(err, translate.ErrTooLarge) {
		t.Errorf("ReadDir of 5 entries with MaxListEntries 4: error %v; want ErrTooLarge", err)
	}
	if _, err := up.Home(context.Background()); err != nil {
		t.Errorf("Home() after a refused listing: %v; want the session still usable", err)
	}
}

func TestFTPSFileOperations(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	ctx := context.Background()
	root := env.srv.Root
	os.WriteFile(filepath.Join(root, "a"), []byte("x"), 0o644)

	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"mkdir", func() error { return up.Mkdir(ctx, "/d") }, nil},
		{"rename", func() error { return up.Rename(ctx, "/a", "/d/b") }, nil},
		{"rename missing", func() error { return up.Rename(ctx, "/a", "/c") }, translate.ErrNotFound},
		{"rmdir not empty", func() error { return up.Rmdir(ctx, "/d") }, translate.ErrNotFound},
		{"remove", func() error { return up.Remove(ctx, "/d/b") }, nil},
		{"remove missing", func() error { return up.Remove(ctx, "/d/b") }, translate.ErrNotFound},
		{"rmdir", func() error { return up.Rmdir(ctx, "/d") }, nil},
		{"name with CR LF", func() error { return up.Mkdir(ctx, "/x\r\nDELE /a") }, translate.ErrPermission},
		{"retrieve name with CR LF", func() error {
			_, err := up.Retrieve(ctx, "/x\r\nDELE /a", 0, io.Discard)
			return err
		}, translate.ErrPermission},
		{"store name with LF", func() error {
			_, err := up.Store(ctx, "/x\nDELE /a", strings.NewReader("x"), translate.StoreOptions{Append: true})
			return err
		}, translate.ErrPermission},
		{"readdir name with CR", func() error {
			_, err := up.ReadDir(ctx, "/x\rDELE /a")
			return err
		}, translate.ErrPermission},
	}
	for _, s := range steps {
		err := s.do()
		if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
			t.Errorf("%s: error %v; want %v", s.name, err, s.want)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Errorf("root holds %v after the steps; want nothing", entries)
	}
	for _, c := range env.srv.Commands() {
		if strings.HasPrefix(c, "DELE /a") {
			t.Errorf("the server received %q: a name with CR LF was sent", c)
		}
	}
}

func TestFTPSForward(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	fw := up.(translate.Forwarder)
	ctx := context.Background()

	rep, err := fw.Forward(ctx, "site", "HELP")
	want := translate.Reply{Code: 214, Lines: []string{
		"The following SITE commands are recognized.",
		"214-this line starts with the code and a hyphen",
		"200 and this one with another code",
		" CHMOD HELP",
		"Help OK.",
	}}
	if err != nil || fmt.Sprint(rep) != fmt.Sprint(want) {
		t.Errorf("Forward(SITE HELP) = %+v, %v; want %+v", rep, err, want)
	}
	rep, err = fw.Forward(ctx, "SITE", "FILETYPE=JES 'PAY.DATA(MEMBER)'")
	if err != nil || rep.Code != 200 || rep.Lines[0] != "SITE FILETYPE=JES 'PAY.DATA(MEMBER)' accepted." {
		t.Errorf("Forward(SITE with a quoted MVS name) = %+v, %v", rep, err)
	}
	rep, err = fw.Forward(ctx, "STAT", "")
	if err != nil || rep.Code != 211 || len(rep.Lines) != 4 {
		t.Errorf("Forward(STAT) = %+v, %v; want a 4-line 211", rep, err)
	}
	rep, err = fw.Forward(ctx, "MKD", "/new")
	if err != nil || rep.Code != 257 {
		t.Errorf("Forward(MKD) = %+v, %v; want 257", rep, err)
	}
	rep, err = fw.Forward(ctx, "DELE", "/missing")
	if err != nil || rep.Code != 550 {
		t.Errorf("Forward(DELE missing) = %+v, %v; want the partner's 550 as a reply, not an error", rep, err)
	}

	before := len(env.srv.Commands())
	for _, verb := range []string{"AUTH", "PROT", "PBSZ", "CCC", "USER", "PASS", "QUIT", "ABOR", "PASV", "EPSV", "PORT", "EPRT", "RETR", "STOR", "LIST", "REIN"} {
		if _, err := fw.Forward(ctx, verb, "x"); !errors.Is(err, translate.ErrUnsupported) {
			t.Errorf("Forward(%s) error %v; want ErrUnsupported", verb, err)
		}
	}
	for _, tc := range []struct{ verb, arg string }{{"SITE", "a\r\nDELE x"}, {"SITE", "a\x00"}, {"SI\nTE", ""}, {"", ""}, {"SITE", strings.Repeat("x", 5000)}} {
		if _, err := fw.Forward(ctx, tc.verb, tc.arg); err == nil {
			t.Errorf("Forward(%q, %q) succeeded; want it refused", tc.verb, tc.arg)
		}
	}
	if after := env.srv.Commands(); len(after) != before {
		t.Errorf("refused commands reached the partner: %q", after[before:])
	}
}

// rw is a client data connection for Transfer.
type rw struct {
	io.Reader
	io.Writer
}

func TestFTPSTransfer(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{Implicit: true}, nil)
	data := randomBytes(t, 200_000)
	os.WriteFile(filepath.Join(env.srv.Root, "f.bin"), data, 0o644)
	up := dialOK(t, testDialer(), env.upstream("ftps"))
	fw := up.(translate.Forwarder)
	ctx := context.Background()

	// LIST comes back byte for byte.
	var list bytes.Buffer
	var prelim translate.Reply
	final, n, err := fw.Transfer(ctx, "LIST", "/", func(p translate.Reply) (io.ReadWriter, error) {
		prelim = p
		return rw{nil, &list}, nil
	})
	if err != nil || final.Code != 226 || prelim.Code != 150 || n != int64(list.Len()) ||
		!strings.HasSuffix(list.String(), " f.bin\r\n") || !strings.HasPrefix(list.String(), "-rw-r--r--") {
		t.Errorf("Transfer(LIST) = %+v, %d, %v, prelim %+v, listing %q", final, n, err, prelim, list.String())
	}

	// The client's TYPE and REST are kept across Upstream calls.
	if rep, err := fw.Forward(ctx, "TYPE", "A"); err != nil || rep.Code != 200 {
		t.Fatalf("Forward(TYPE A) = %+v, %v", rep, err)
	}
	if _, err := up.Stat(ctx, "/f.bin"); err != nil { // switches to TYPE I for SIZE? MLST needs none
		t.Fatal(err)
	}
	if _, err := up.Retrieve(ctx, "/f.bin", 0, io.Discard); err != nil { // TYPE I
		t.Fatal(err)
	}
	if rep, err := fw.Forward(ctx, "REST", "1000"); err != nil || rep.Code != 350 {
		t.Fatalf("Forward(REST) = %+v, %v", rep, err)
	}
	var got bytes.Buffer
	final, n, err = fw.Transfer(ctx, "RETR", "/f.bin", func(translate.Reply) (io.ReadWriter, error) { return rw{nil, &got}, nil })
	if err != nil || final.Code != 226 || n != int64(len(data)-1000) || !bytes.Equal(got.Bytes(), data[1000:]) {
		t.Errorf("Transfer(RETR) after REST 1000 = %+v, %d, %v; want 226 and the bytes from 1000", final, n, err)
	}
	cmds := env.srv.Commands()
	tail := strings.Join(cmds[len(cmds)-5:], "|")
	if tail != "REST 1000|TYPE A|EPSV|REST 1000|RETR /f.bin" {
		t.Errorf("last commands %q; want the client's TYPE restored and REST repeated before RETR", tail)
	}

	// STOR through Transfer.
	final, n, err = fw.Transfer(ctx, "STOR", "/up.bin", func(translate.Reply) (io.ReadWriter, error) {
		return rw{bytes.NewReader(data), nil}, nil
	})
	if got, _ := os.ReadFile(filepath.Join(env.srv.Root, "up.bin")); err != nil || final.Code != 226 || n != int64(len(data)) || !bytes.Equal(got, data) {
		t.Errorf("Transfer(STOR) = %+v, %d, %v; stored %d bytes; want 226 and %d", final, n, err, len(got), len(data))
	}

	// A refusal is the final reply; open is never called.
	final, n, err = fw.Transfer(ctx, "RETR", "/missing", func(translate.Reply) (io.ReadWriter, error) {
		t.Error("open called for a refused RETR")
		return nil, errors.New("unexpected")
	})
	if err != nil || final.Code != 550 || n != 0 {
		t.Errorf("Transfer(RETR missing) = %+v, %d, %v; want the partner's 550", final, n, err)
	}

	// The client's data connection failing aborts the partner's transfer.
	final, _, err = fw.Transfer(ctx, "RETR", "/f.bin", func(translate.Reply) (io.ReadWriter, error) {
		return nil, errors.New("client went away")
	})
	// The partner may have sent the whole file into the socket buffers
	// and said 226 before it saw ABOR; the error is what counts.
	if err == nil {
		t.Errorf("Transfer with a failing open = %+v, %v; want an error", final, err)
	}
	if _, _, err := fw.Transfer(ctx, "SITE", "x", nil); !errors.Is(err, translate.ErrUnsupported) {
		t.Errorf("Transfer(SITE) error %v; want ErrUnsupported", err)
	}
	if _, err := up.Home(ctx); err != nil {
		t.Errorf("Home() after the transfers: %v", err)
	}
	if resumed := env.srv.DataResumed(); slices.Contains(resumed, false) {
		t.Errorf("data connections resumed: %v; want all", resumed)
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
		return copy(p, bytes.Repeat([]byte("x"), 64<<10)), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestFTPSAbort(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	big := randomBytes(t, 16<<20)
	os.WriteFile(filepath.Join(env.srv.Root, "big"), big, 0o644)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	fw := up.(translate.Forwarder)

	cancelled := func(name string, run func(ctx context.Context, started chan struct{}) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		started := make(chan struct{})
		errc := make(chan error, 1)
		go func() { errc <- run(ctx, started) }()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: transfer never started", name)
		}
		abortedAt := len(env.srv.Commands())
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) || !errors.Is(err, translate.ErrConnLost) {
				t.Errorf("%s: error %v; want context.Canceled and ErrConnLost", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: transfer did not end after the cancel", name)
		}
		if cmds := env.srv.Commands()[abortedAt:]; !slices.Contains(cmds, "ABOR") {
			t.Errorf("%s: commands after the cancel %q; want ABOR", name, cmds)
		}
		if _, err := up.Home(context.Background()); err != nil {
			t.Errorf("%s: Home() after the abort: %v; want the session usable", name, err)
		}
	}

	cancelled("Retrieve", func(ctx context.Context, started chan struct{}) error {
		_, err := up.Retrieve(ctx, "/big", 0, &blockingWriter{ctx: ctx, started: started})
		return err
	})
	cancelled("Store", func(ctx context.Context, started chan struct{}) error {
		_, err := up.Store(ctx, "/new", &blockingReader{ctx: ctx, started: started}, translate.StoreOptions{})
		return err
	})
	if entries, _ := os.ReadDir(env.srv.Root); len(entries) != 1 {
		t.Errorf("after the aborted Store the root holds %v; want only big (no partial file)", entries)
	}
	var final translate.Reply
	cancelled("Transfer", func(ctx context.Context, started chan struct{}) error {
		var err error
		final, _, err = fw.Transfer(ctx, "RETR", "/big", func(translate.Reply) (io.ReadWriter, error) {
			return rw{nil, &blockingWriter{ctx: ctx, started: started}}, nil
		})
		return err
	})
	if final.Code != 426 {
		t.Errorf("Transfer aborted: final reply %+v; want the partner's 426", final)
	}
	// And a transfer still works afterwards.
	var got bytes.Buffer
	if _, err := up.Retrieve(context.Background(), "/big", 0, &got); err != nil || sum(got.Bytes()) != sum(big) {
		t.Errorf("Retrieve after the aborts: %v", err)
	}
}

// errAfterReader returns n bytes, then an error.
type errAfterReader struct{ n int }

func (r *errAfterReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("client connection reset")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("client connection reset") }

func TestFTPSClientSideFailures(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	os.WriteFile(filepath.Join(env.srv.Root, "big"), randomBytes(t, 4<<20), 0o644)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	ctx := context.Background()

	n, err := up.Store(ctx, "/up.bin", &errAfterReader{n: 1 << 20}, translate.StoreOptions{})
	if err == nil || n != 1<<20 {
		t.Errorf("Store from a reader that fails after 1 MiB = %d, %v; want 1048576 and an error", n, err)
	}
	if entries, _ := os.ReadDir(env.srv.Root); len(entries) != 1 {
		t.Errorf("after the failed Store the root holds %v; want only big", entries)
	}
	if _, err := up.Retrieve(ctx, "/big", 0, errWriter{}); err == nil {
		t.Errorf("Retrieve into a failing writer succeeded")
	}
	var b bytes.Buffer
	if n, err := up.Retrieve(ctx, "/big", 0, &b); err != nil || n != 4<<20 {
		t.Errorf("Retrieve after the failures = %d, %v; want the session usable", n, err)
	}
}

func TestFTPSClose(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	os.WriteFile(filepath.Join(env.srv.Root, "big"), randomBytes(t, 8<<20), 0o644)

	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	if err := up.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if cmds := env.srv.Commands(); cmds[len(cmds)-1] != "QUIT" {
		t.Errorf("last command %q; want QUIT", cmds[len(cmds)-1])
	}
	if _, err := up.Home(context.Background()); !errors.Is(err, translate.ErrConnLost) {
		t.Errorf("Home() after Close: %v; want ErrConnLost", err)
	}

	// Close during a transfer interrupts it.
	up = dialOK(t, testDialer(), env.upstream("ftpes"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &blockingWriter{ctx: ctx, started: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := up.Retrieve(context.Background(), "/big", 0, w)
		errc <- err
	}()
	<-w.started
	up.Close()
	cancel()
	if err := <-errc; !errors.Is(err, translate.ErrConnLost) {
		t.Errorf("Retrieve interrupted by Close: %v; want ErrConnLost", err)
	}
}

func TestFTPSCertificates(t *testing.T) {
	other := newCA(t)
	otherCert, err := other.ServerCert()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cert    func(ca *ftpstest.CA) *ftpstest.Cert // nil: the CA's 127.0.0.1 cert
		route   func(e *ftpsEnv, up *policy.Upstream)
		reason  string // "" means the dial succeeds
		unknown bool
	}{
		{name: "trusted"},
		{
			name: "unknown CA", reason: "unknown authority", unknown: true,
			cert: func(*ftpstest.CA) *ftpstest.Cert { return otherCert },
		},
		{
			name: "wrong host", reason: "host name mismatch", unknown: true,
			cert: func(ca *ftpstest.CA) *ftpstest.Cert {
				return mustIssue(t, ca, ftpstest.CertOptions{CommonName: "other", DNSNames: []string{"other.example"}})
			},
		},
		{
			name: "expired", reason: "expired or not yet valid", unknown: true,
			cert: func(ca *ftpstest.CA) *ftpstest.Cert {
				return mustIssue(t, ca, ftpstest.CertOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
					NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
			},
		},
		{
			name: "system roots do not know the test CA", reason: "unknown authority", unknown: true,
			route: func(_ *ftpsEnv, up *policy.Upstream) { up.TLSCAFile = "" },
		},
		{
			name: "pin matches",
			route: func(e *ftpsEnv, up *policy.Upstream) {
				up.TLSCertSHA256 = []string{otherCert.Fingerprint(), e.cert.Fingerprint()}
			},
		},
		{
			name: "pin mismatch", reason: "pin mismatch", unknown: false,
			route: func(_ *ftpsEnv, up *policy.Upstream) { up.TLSCertSHA256 = []string{otherCert.Fingerprint()} },
		},
		{
			name: "server name override",
			cert: func(ca *ftpstest.CA) *ftpstest.Cert {
				return mustIssue(t, ca, ftpstest.CertOptions{DNSNames: []string{"ftp.partner.test"}})
			},
			route: func(_ *ftpsEnv, up *policy.Upstream) { up.TLSServerName = "ftp.partner.test" },
		},
	}
	for _, tc := range tests {
		for _, implicit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/implicit=%v", tc.name, implicit), func(t *testing.T) {
				ca := newCA(t)
				var cert *ftpstest.Cert
				if tc.cert != nil {
					cert = tc.cert(ca)
				}
				env := startFTPSWithCA(t, ca, ftpstest.Options{Implicit: implicit}, cert)
				up := env.upstream(env.scheme(implicit))
				if tc.route != nil {
					tc.route(env, &up)
				}
				u, err := testDialer().Dial(context.Background(), up, testPassword)
				if tc.reason == "" {
					if err != nil {
						t.Fatalf("Dial: %v", err)
					}
					defer u.Close()
					if _, err := u.ReadDir(context.Background(), "/"); err != nil {
						t.Errorf("ReadDir over the verified session: %v", err)
					}
					return
				}
				if err == nil {
					u.Close()
					t.Fatalf("Dial succeeded; want the certificate refused (%s)", tc.reason)
				}
				var ce *translate.CertError
				var hke *translate.HostKeyError
				if !errors.As(err, &ce) || ce.Reason != tc.reason || !errors.As(err, &hke) || hke.Unknown != tc.unknown ||
					hke.Fingerprint == "" || hke.Fingerprint != ce.Fingerprint {
					t.Errorf("Dial error %v (%+v, %+v); want a CertError %q and a HostKeyError with Unknown %v", err, ce, hke, tc.reason, tc.unknown)
				}
				for _, c := range env.srv.Commands() {
					if strings.HasPrefix(c, "USER") || strings.HasPrefix(c, "PASS") {
						t.Errorf("the partner received %q before its certificate was trusted", c)
					}
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Errorf("error %q holds the password", err)
				}
			})
		}
	}
}

func mustIssue(t *testing.T, ca *ftpstest.CA, opt ftpstest.CertOptions) *ftpstest.Cert {
	t.Helper()
	c, err := ca.Issue(opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startFTPSWithCA is startFTPS with a given CA.
func startFTPSWithCA(t *testing.T, ca *ftpstest.CA, opt ftpstest.Options, cert *ftpstest.Cert) *ftpsEnv {
	t.Helper()
	if cert == nil {
		cert = mustServerCert(t, ca)
	}
	env := startFTPS(t, opt, cert)
	env.ca = ca
	env.caFile = writeFile(t, "ca.pem", ca.CertPEM)
	return env
}

func mustServerCert(t *testing.T, ca *ftpstest.CA) *ftpstest.Cert {
	t.Helper()
	c, err := ca.ServerCert()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFTPSMutualTLS(t *testing.T) {
	ca := newCA(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			env := startFTPSWithCA(t, ca, ftpstest.Options{TLS: &tls.Config{
				ClientAuth: tls.RequireAndVerifyClientCert,
				ClientCAs:  ca.Pool(),
			}}, nil)
			d := testDialer()
			d.MaxTLSVersion = version
			if u, err := d.Dial(context.Background(), env.upstream("ftpes"), testPassword); err == nil {
				u.Close()
				t.Fatalf("Dial without a client certificate succeeded; want it refused")
			} else if errors.Is(err, translate.ErrAuth) {
				t.Errorf("Dial without a client certificate: %v; want a TLS failure, not a login refusal", err)
			}
			client := mustIssue(t, ca, ftpstest.CertOptions{CommonName: "ftpgate", Client: true})
			up := env.upstream("ftpes")
			up.TLSClientCert = writeFile(t, "client.pem", client.CertPEM)
			up.TLSClientKey = writeFile(t, "client.key", client.KeyPEM)
			u := dialOK(t, d, up)
			if _, err := u.Store(context.Background(), "/m", strings.NewReader("mutual"), translate.StoreOptions{}); err != nil {
				t.Errorf("Store with a client certificate: %v", err)
			}
		})
	}
}

func TestFTPSVersionsAndCiphers(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{TLS: &tls.Config{MaxVersion: tls.VersionTLS12}}, nil)
	up := env.upstream("ftpes")
	up.TLSMinVersion = tls.VersionTLS13
	if u, err := testDialer().Dial(context.Background(), up, testPassword); err == nil {
		u.Close()
		t.Errorf("Dial with minimum TLS 1.3 to a TLS 1.2 server succeeded")
	} else if ce := (*translate.CertError)(nil); errors.As(err, &ce) || !errors.Is(err, translate.ErrConnLost) {
		t.Errorf("Dial with minimum TLS 1.3 to a TLS 1.2 server: %v; want ErrConnLost (a handshake failure, not a certificate problem)", err)
	}

	up = env.upstream("ftpes")
	up.TLSCiphers = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
	u := dialOK(t, testDialer(), up)
	if got := u.(translate.Describer).ConnInfo().CipherSuite; got != "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" {
		t.Errorf("CipherSuite = %q; want the one the route allows", got)
	}
}

func TestFTPSRefusals(t *testing.T) {
	t.Run("AUTH TLS refused", func(t *testing.T) {
		env := startFTPS(t, ftpstest.Options{RefuseAUTH: true}, nil)
		_, err := testDialer().Dial(context.Background(), env.upstream("ftpes"), testPassword)
		var re *translate.ReplyError
		if !errors.Is(err, translate.ErrUnsupported) || !errors.As(err, &re) || re.Code != 502 || !strings.Contains(err.Error(), "clear text") {
			t.Errorf("Dial error %v; want ErrUnsupported naming the refusal", err)
		}
		if cmds := env.srv.Commands(); !slices.Equal(cmds, []string{"AUTH TLS"}) {
			t.Errorf("commands %q; want only AUTH TLS (nothing in clear text)", cmds)
		}
	})
	t.Run("PROT P refused", func(t *testing.T) {
		env := startFTPS(t, ftpstest.Options{RefusePROT: true}, nil)
		_, err := testDialer().Dial(context.Background(), env.upstream("ftpes"), testPassword)
		if !errors.Is(err, translate.ErrUnsupported) {
			t.Errorf("Dial error %v; want ErrUnsupported", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		env := startFTPS(t, ftpstest.Options{}, nil)
		_, err := testDialer().Dial(context.Background(), env.upstream("ftpes"), "wrong-password-123")
		var re *translate.ReplyError
		if !errors.Is(err, translate.ErrAuth) || !errors.As(err, &re) || re.Code != 530 || re.Verb != "PASS" {
			t.Errorf("Dial error %v; want ErrAuth with the partner's 530", err)
		}
		if strings.Contains(err.Error(), "wrong-password-123") || strings.Contains(fmt.Sprintf("%+v", err), "wrong-password-123") {
			t.Errorf("error %q holds the password", err)
		}
	})
	t.Run("password from the route's secret", func(t *testing.T) {
		env := startFTPS(t, ftpstest.Options{Implicit: true}, nil)
		up := env.upstream("ftps")
		up.Password = policy.Secret{Env: "PARTNER_PW"}
		d := testDialer()
		d.Getenv = func(k string) string {
			if k == "PARTNER_PW" {
				return testPassword
			}
			return ""
		}
		u, err := d.Dial(context.Background(), up, "")
		if err != nil {
			t.Fatalf("Dial with upstream_password: %v", err)
		}
		u.Close()
	})
	t.Run("no password", func(t *testing.T) {
		_, err := testDialer().Dial(context.Background(), policy.Upstream{Scheme: "ftps", Host: "127.0.0.1", Port: 1, User: "u"}, "")
		if !errors.Is(err, translate.ErrAuth) {
			t.Errorf("Dial without a password: %v; want ErrAuth", err)
		}
	})
	t.Run("not FTPS", func(t *testing.T) {
		_, err := testDialer().Dial(context.Background(), policy.Upstream{Scheme: "sftp", Host: "127.0.0.1", Port: 1, User: "u"}, "pw")
		if !errors.Is(err, translate.ErrUnsupported) {
			t.Errorf("Dial(sftp): %v; want ErrUnsupported", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		_, err := testDialer().Dial(context.Background(), policy.Upstream{Scheme: "ftpes", Host: "127.0.0.1", Port: port, User: "u"}, "pw")
		if !errors.Is(err, translate.ErrUnreachable) {
			t.Errorf("Dial to a closed port: %v; want ErrUnreachable", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		env := startFTPS(t, ftpstest.Options{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := testDialer().Dial(ctx, env.upstream("ftpes"), testPassword); err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Dial with a cancelled context: %v; want context.Canceled", err)
		}
	})
}

func TestFTPSPassive(t *testing.T) {
	unroutable := netip.MustParseAddr("10.255.255.1")
	env := startFTPS(t, ftpstest.Options{NoEPSV: true, PASVAddr: unroutable}, nil)
	os.WriteFile(filepath.Join(env.srv.Root, "f"), []byte("data"), 0o644)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	for range 2 {
		var b bytes.Buffer
		if _, err := up.Retrieve(context.Background(), "/f", 0, &b); err != nil || b.String() != "data" {
			t.Fatalf("Retrieve with a 227 naming %v: %q, %v; want the address ignored", unroutable, b.String(), err)
		}
	}
	var epsv, pasv int
	for _, c := range env.srv.Commands() {
		switch c {
		case "EPSV":
			epsv++
		case "PASV":
			pasv++
		}
	}
	if epsv != 1 || pasv != 2 {
		t.Errorf("sent EPSV %d times and PASV %d times; want EPSV once, then PASV only", epsv, pasv)
	}

	// With passive_use_reply_address the 227 address is dialled.
	env = startFTPS(t, ftpstest.Options{NoEPSV: true, PASVAddr: netip.MustParseAddr("127.0.0.2")}, nil)
	upCfg := env.upstream("ftpes")
	upCfg.PassiveUseReplyAddress = true
	up = dialOK(t, testDialer(), upCfg)
	if _, err := up.ReadDir(context.Background(), "/"); !errors.Is(err, translate.ErrConnLost) || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Errorf("ReadDir with a 227 naming 127.0.0.2 (where nothing listens): %v; want a failed data connection to 127.0.0.2", err)
	}
	if _, err := up.Home(context.Background()); err != nil {
		t.Errorf("Home() after a failed data connection: %v; want the session usable", err)
	}
}

func TestFTPSFileInfoModes(t *testing.T) {
	env := startFTPS(t, ftpstest.Options{}, nil)
	os.WriteFile(filepath.Join(env.srv.Root, "x"), nil, 0o600)
	up := dialOK(t, testDialer(), env.upstream("ftpes"))
	fi, err := up.Stat(context.Background(), "/x")
	if err != nil || fi.Mode() != fs.FileMode(0o600) {
		t.Errorf("Stat = %v, %v; want mode 0600 from UNIX.mode", fi, err)
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	p := translate.Password("s3cret")
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %s %q %+v %#v", p, p, p, p, p), p.String()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("formatted Password %q shows the secret", s)
		}
	}
}
