package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/audit"
)

// records parses the JSON-line records written so far.
func records(t *testing.T, p *testProxy) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.Records.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func recordsOf(rs []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, r := range rs {
		if r["record"] == typ {
			out = append(out, r)
		}
	}
	return out
}

func TestTransferRecords(t *testing.T) {
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.ProgressInterval = 20 * time.Millisecond }})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	c.expect("TYPE I", 200)
	data := randomBytes(t, 1<<20)
	c.stor("STOR", "rec.bin", data, modeEPSV)

	// A slow upload long enough for progress records.
	conn := c.prepare(modeEPSV)
	c.expect("STOR slow.bin", 150)
	dc := conn()
	for i := 0; i < 4; i++ {
		dc.Write([]byte("chunk"))
		time.Sleep(30 * time.Millisecond)
	}
	dc.Close()
	if code, _ := c.read(); code != 226 {
		t.Fatal("slow STOR failed")
	}
	c.expect("QUIT", 221)
	waitNoSessions(t, p.Srv)

	rs := records(t, p)
	want := sha256.Sum256(data)
	var start, end map[string]any
	for _, r := range rs {
		if r["name"] == "rec.bin" && r["record"] == audit.TypeTransferStart {
			start = r
		}
		if r["name"] == "rec.bin" && r["record"] == audit.TypeTransfer {
			end = r
		}
	}
	if start == nil || end == nil {
		t.Fatalf("missing transfer_start or transfer record for rec.bin")
	}
	if start["seq"].(float64) >= end["seq"].(float64) {
		t.Errorf("transfer_start seq %v not before transfer seq %v", start["seq"], end["seq"])
	}
	if end["sha256"] != hex.EncodeToString(want[:]) {
		t.Errorf("transfer sha256 %v; want %x", end["sha256"], want)
	}
	if end["confidence"] != audit.ConfidenceHigh || end["xfer"] != start["xfer"] || end["xfer"] == nil {
		t.Errorf("transfer record: confidence %v, xfer %v (start %v)", end["confidence"], end["xfer"], start["xfer"])
	}
	if len(recordsOf(rs, audit.TypeProgress)) == 0 {
		t.Errorf("no progress record for a slow transfer")
	}
	logins := recordsOf(rs, audit.TypeLogin)
	if len(logins) != 1 || logins[0]["host_key"] != p.Up.Fingerprint || logins[0]["kex"] == "" || logins[0]["cipher"] == nil {
		t.Errorf("login record: %v", logins)
	}
	if len(recordsOf(rs, audit.TypeDecision)) != 1 {
		t.Errorf("want one decision record")
	}
	for i, r := range rs {
		if r["seq"].(float64) != float64(i+1) {
			t.Fatalf("record %d has seq %v", i, r["seq"])
		}
	}
}

func TestBrokenUploadIsLowConfidence(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	conn := c.prepare(modeEPSV)
	c.expect("STOR broken.bin", 150)
	dc := conn()
	dc.Write(randomBytes(t, 100000))
	dc.(*net.TCPConn).SetLinger(0)
	dc.Close()
	c.read()
	var end map[string]any
	for _, r := range records(t, p) {
		if r["record"] == audit.TypeTransfer && r["name"] == "broken.bin" {
			end = r
		}
	}
	if end == nil || end["confidence"] != audit.ConfidenceLow || end["result"] != "failed" {
		t.Fatalf("broken upload record: %v; want confidence low, result failed", end)
	}
}

// failingSink fails while broken is set.
type failingSink struct{ broken atomic.Bool }

func (f *failingSink) Write([]byte) error {
	if f.broken.Load() {
		return errors.New("disk full")
	}
	return nil
}
func (f *failingSink) Close() error { return nil }

func TestFailingAuditSinkRefusesTransfers(t *testing.T) {
	sink := &failingSink{}
	em, err := audit.NewEmitter(audit.Options{Sinks: []audit.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, proxyOpts{mutate: func(s *Server) { s.Audit = em }})
	os.WriteFile(filepath.Join(p.Root, "f.txt"), []byte("x"), 0o644)
	c := dialFTP(t, p.Addr)
	c.login("demo", clientPass)
	sink.broken.Store(true)
	c.expect("NOOP", 200) // this record fails to write
	c.prepare(modeEPSV)
	if code, msg := c.send("RETR f.txt"); code != 451 {
		t.Fatalf("RETR with a failing audit sink: %d %q; want 451", code, msg)
	}
	sink.broken.Store(false)
	c.expect("NOOP", 200) // the backlog drains; the sink is healthy again
	if got := c.retr("f.txt", modeEPSV); string(got) != "x" {
		t.Fatalf("RETR after recovery: %q", got)
	}
}
