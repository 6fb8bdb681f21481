package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/translate/ftpstest"
)

// frontTLS returns a server TLS config and a client config trusting it.
func frontTLS(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	ca, err := ftpstest.NewCA("front CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServerCert()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
}

func TestFrontEndTLS(t *testing.T) {
	srvTLS, cliTLS := frontTLS(t)
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.TLSConfig, s.RequireTLS = srvTLS, true }})
	os.WriteFile(filepath.Join(p.Root, "secret.txt"), []byte("payroll data"), 0o644)
	c := dialFTP(t, p.Addr)
	if msg := c.expect("FEAT", 211); !strings.Contains(msg, "AUTH TLS") {
		t.Errorf("FEAT does not offer AUTH TLS: %q", msg)
	}
	c.expect("USER demo", 530) // TLS required: no password in clear
	c.expect("PBSZ 0", 530)
	c.expect("AUTH TLS", 234)
	tc := tls.Client(c.conn, cliTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn = tc
	c.r = textproto.NewReader(bufio.NewReader(tc))
	c.login("demo", clientPass)
	c.expect("AUTH TLS", 503) // no renegotiation
	c.expect("PBSZ 0", 200)
	c.expect("PROT C", 534) // required: no clear data
	c.expect("PROT P", 200)
	c.expect("CCC", 534)
	c.expect("TYPE I", 200)

	msg := c.expect("EPSV", 229)
	port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
	raw, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.expect("RETR secret.txt", 150)
	dc := tls.Client(raw, cliTLS)
	dc.SetDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	if _, err := got.ReadFrom(dc); err != nil {
		t.Fatalf("TLS data connection: %v", err)
	}
	dc.Close()
	if code, _ := c.read(); code != 226 || got.String() != "payroll data" {
		t.Fatalf("RETR over TLS: %d, %q", code, got.String())
	}
	c.expect("QUIT", 221)
}

func TestAuthWithoutTLSConfigured(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.expect("AUTH TLS", 502)
	c.expect("CCC", 534)
	c.login("demo", clientPass)
}
