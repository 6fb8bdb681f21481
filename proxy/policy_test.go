package proxy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// startRulesProxy runs ftpgate with a zone policy: 127.0.0.2 is the dmz
// (blocked), the rest of 127/8 is batch; user "ro" is read-only and
// confined to /in under the partner root, passive-only, with a 1 KiB
// upload limit; user "rw" may not DELE.
func startRulesProxy(t *testing.T) (*testProxy, *translatetest.Server) {
	t.Helper()
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "in"), 0o755)
	os.Mkdir(filepath.Join(root, "out"), 0o755)
	up, err := translatetest.NewServer(root, translatetest.Options{Users: map[string]string{"partner": upstreamPass}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	hash, _ := bcrypt.GenerateFromPassword([]byte(clientPass), bcrypt.MinCost)
	doc := fmt.Sprintf(`version: 1
zones:
  sources:
    batch: {networks: [127.0.0.0/8]}
    dmz: {networks: [127.0.0.2/32]}
  destinations:
    partner: {networks: [127.0.0.1/32]}
routes:
  - {name: ro, user: ro, auth: local, password_bcrypt: %[1]q, upstream: "sftp://partner@%[2]s%[3]s", upstream_password: {env: PW}, host_key_sha256: [%[4]q]}
  - {name: rw, user: rw, auth: local, password_bcrypt: %[1]q, upstream: "sftp://partner@%[2]s%[3]s", upstream_password: {env: PW}, host_key_sha256: [%[4]q]}
rules:
  - name: dmz-blocked
    from: [dmz]
    action: block
  - name: readers
    from: [batch]
    to: [partner]
    users: [ro]
    action: upgrade
    read_only: false
    paths: [%[3]s/in]
    max_file_size: 1KiB
    data_ports: {active: false}
  - name: writers
    from: [batch]
    to: [partner]
    users: [rw]
    action: upgrade
    deny_commands: [DELE]
`, hash, up.Addr, root, up.Fingerprint)
	pol, err := policy.Load(strings.NewReader(doc), "rules.yaml")
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	records, logs := &syncBuffer{}, &syncBuffer{}
	srv := &Server{
		Dialer: &translate.SFTPDialer{Getenv: func(k string) string {
			if k == "PW" {
				return upstreamPass
			}
			return ""
		}},
		Policy: func() *policy.Policy { return pol }, Audit: audit.New(records),
		Logger: newTestLogger(logs), LoginFailDelay: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); waitNoSessions(t, srv) })
	return &testProxy{Addr: ln.Addr().String(), Srv: srv, Up: up, Root: root, Records: records, Logs: logs}, up
}

func TestZoneRulesEnforced(t *testing.T) {
	p, up := startRulesProxy(t)

	// From the dmz: 530 and no connection to the partner at all.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	if conn, err := d.Dial("tcp", p.Addr); err == nil {
		c := &ftpClient{t: t, conn: conn}
		c.r = newTextReader(conn)
		c.read()
		c.expect("USER ro", 331)
		c.expect("PASS "+clientPass, 530)
		conn.Close()
		if n := up.Connections(); n != 0 {
			t.Errorf("a blocked login opened %d upstream connections", n)
		}
		if !strings.Contains(p.Records.String(), `"rule":"dmz-blocked"`) {
			t.Errorf("the block is not recorded with its rule")
		}
	}

	c := dialFTP(t, p.Addr)
	c.login("ro", clientPass)
	c.expect("CWD in", 250)
	c.expect("PORT 127,0,0,1,200,10", 502) // passive only
	c.stor("STOR", "small.txt", []byte("fits"), modeEPSV)
	c.prepare(modeEPSV)
	c.expect("STOR ../out/escape.txt", 553) // outside the allowed path
	conn := c.prepare(modeEPSV)
	c.expect("STOR big.txt", 150)
	dc := conn()
	dc.Write(bytes.Repeat([]byte("x"), 4096))
	dc.Close()
	if code, _ := c.read(); code/100 == 2 {
		t.Errorf("an upload over the rule's 1 KiB limit succeeded")
	}
	if _, err := os.Stat(filepath.Join(p.Root, "in", "big.txt")); err == nil {
		t.Errorf("the oversized upload appeared under its name")
	}
	if rec := p.Records.String(); !strings.Contains(rec, `"zone":"batch"`) {
		t.Errorf("records do not name the client's zone")
	}

	w := dialFTP(t, p.Addr)
	w.login("rw", clientPass)
	w.stor("STOR", "out/keep.txt", []byte("data"), modeEPSV)
	w.expect("DELE out/keep.txt", 550)
	if _, err := os.Stat(filepath.Join(p.Root, "out", "keep.txt")); err != nil {
		t.Errorf("a denied DELE removed the file")
	}
}
