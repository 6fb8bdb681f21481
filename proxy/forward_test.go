package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/ftpstest"
)

// startFTPSProxy starts the in-process FTPS partner (explicit TLS, session
// reuse required like vsftpd) and ftpgate in front of it with a
// passthrough route "job" whose partner password is the client's.
func startFTPSProxy(t *testing.T) (*testProxy, *ftpstest.Server) {
	t.Helper()
	ca, err := ftpstest.NewCA("ftpgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServerCert()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	fs, err := ftpstest.NewServer(root, ftpstest.Options{
		TLS:                 &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		Users:               map[string]string{"job": upstreamPass},
		RequireSessionReuse: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, ca.CertPEM, 0o644)
	doc := fmt.Sprintf(`version: 1
routes:
  - name: ftps-route
    user: job
    auth: passthrough
    upstream: ftpes://job@%s
    tls_ca_file: %q
`, fs.Addr, caFile)
	pol, err := policy.Load(strings.NewReader(doc), "ftps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	records, logs := &syncBuffer{}, &syncBuffer{}
	srv := &Server{
		Dialer:         translate.SchemeDialer{SFTP: &translate.SFTPDialer{}, FTPS: &translate.FTPSDialer{}},
		Policy:         func() *policy.Policy { return pol },
		Audit:          audit.New(records),
		Logger:         newTestLogger(logs),
		LoginFailDelay: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		waitNoSessions(t, srv)
		if strings.Contains(records.String()+logs.String(), upstreamPass) {
			t.Errorf("the password reached the records or logs")
		}
	})
	return &testProxy{Addr: ln.Addr().String(), Srv: srv, Root: fs.Root, Records: records, Logs: logs}, fs
}

func TestFTPSPassThrough(t *testing.T) {
	p, fs := startFTPSProxy(t)
	c := dialFTP(t, p.Addr)
	c.login("job", upstreamPass)
	c.expect("TYPE I", 200)
	data := randomBytes(t, 3<<20+5)
	for _, mode := range []dataMode{modeEPSV, modePORT} {
		name := "f-" + string(mode)
		c.stor("STOR", name, data, mode)
		if got, _ := os.ReadFile(filepath.Join(fs.Root, name)); !bytes.Equal(got, data) {
			t.Fatalf("%s: partner holds %d bytes; want %d", mode, len(got), len(data))
		}
		if got := c.retr(name, mode); !bytes.Equal(got, data) {
			t.Fatalf("%s: download differs", mode)
		}
	}
	if l := c.list("LIST", modeEPSV); !strings.Contains(l, "f-EPSV") {
		t.Errorf("LIST pass-through: %q", l)
	}
	// Refusals come from the partner, without a data connection.
	c.prepare(modeEPSV)
	if code, _ := c.send("RETR missing"); code/100 != 5 {
		t.Errorf("RETR of a missing file: %d; want the partner's 5xx", code)
	}
	// SITE goes to the partner, except FILETYPE=JES.
	c.expect("SITE FILETYPE=JES", 550)
	if code, msg := c.send("SITE FILETYPE=SEQ"); code/100 != 2 {
		t.Errorf("SITE FILETYPE=SEQ relayed from the partner: %d %q", code, msg)
	}
	// Security downgrades are refused by ftpgate.
	// They are ftpgate's own (the client's leg), refused here without
	// front-end TLS, and never passed on.
	for _, cmd := range []string{"CCC", "PROT C", "AUTH TLS", "PBSZ 0", "REIN"} {
		if code, msg := c.send(cmd); code/100 != 5 {
			t.Errorf("%s: %d %q; want a refusal", cmd, code, msg)
		}
	}
	c.expect("NOOP", 200)
	for _, r := range fs.DataResumed() {
		if !r {
			t.Errorf("a data connection to the partner did not resume the control session")
		}
	}
	for _, cmd := range fs.Commands() {
		// ftpgate's own login sends AUTH TLS, PBSZ 0 and PROT P once;
		// none of the client's downgrades may follow.
		if strings.HasPrefix(cmd, "CCC") || strings.HasPrefix(cmd, "PROT C") || strings.HasPrefix(cmd, "REIN") {
			t.Errorf("the partner received %q", cmd)
		}
	}
	c.expect("QUIT", 221)
}
