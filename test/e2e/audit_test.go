package e2e

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/test/peers"
)

// keyedAudit replaces the gate's emitter with one that chains its records
// under a key, writing into records, and returns the key.
func keyedAudit(t *testing.T, records *buffer) (audit.Key, func(*proxy.Server)) {
	key, err := audit.NewKey([]byte("e2e-audit-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return key, func(srv *proxy.Server) {
		em, err := audit.NewEmitter(audit.Options{Key: key, Sinks: []audit.Sink{audit.NewWriterSink(records)}})
		if err != nil {
			t.Fatal(err)
		}
		srv.Audit = em
		srv.ProgressInterval = 50 * time.Millisecond
	}
}

// TestAuditTrailOfARealSession: curl through ftpgate to a real sshd
// produces every record type, in order, with a chain that verifies.
func TestAuditTrailOfARealSession(t *testing.T) {
	peers.Require(t, "curl")
	s := peers.StartSSHD(t)
	chained := &buffer{}
	key, mutate := keyedAudit(t, chained)
	addr, _, _ := startGateWith(t, localPolicy(t, s, s.KnownHostsFile), mutate)

	src := writeFile(t, t.TempDir(), "up.bin", randomBytes(8<<20))
	if _, err := peers.Curl(t, "--limit-rate", "40M", "-T", src, ftpURL(addr, "up.bin")); err != nil {
		t.Fatalf("curl upload: %v", err)
	}
	// A refused login and a probe for a missing file are recorded too.
	peers.Curl(t, "ftp://"+clientUser+":wrong-"+clientPass+"@"+addr+"/")
	peers.Curl(t, ftpURL(addr, "no-such-file"))

	var types []string
	peers.WaitFor(t, recordWait, func() bool {
		types = types[:0]
		for _, line := range strings.Split(strings.TrimSpace(chained.String()), "\n") {
			var r struct{ Record string }
			json.Unmarshal([]byte(line), &r)
			types = append(types, r.Record)
		}
		return strings.Count(strings.Join(types, " "), audit.TypeSessionEnd) == 3
	})
	for _, want := range []string{
		audit.TypeSessionStart, audit.TypeCommand, audit.TypeDecision, audit.TypeLogin,
		audit.TypeTransferStart, audit.TypeProgress, audit.TypeTransfer,
		audit.TypeLoginFailure, audit.TypeSessionEnd,
	} {
		if !strings.Contains(" "+strings.Join(types, " ")+" ", " "+want+" ") {
			t.Errorf("no %s record; got %v", want, types)
		}
	}
	joined := strings.Join(types, " ")
	if strings.Index(joined, audit.TypeTransferStart) > strings.Index(joined, audit.TypeProgress) ||
		strings.Index(joined, audit.TypeProgress) > strings.Index(joined, audit.TypeTransfer+" ") {
		t.Errorf("records out of order: %v", types)
	}
	res, err := audit.Verify(key, audit.Input{Name: "records", R: strings.NewReader(chained.String())})
	if err != nil || !res.OK() || !res.MACs {
		t.Fatalf("verify: %v, %v", res, err)
	}
	assertNoSecret(t, map[string]string{"chained records": chained.String()}, clientPass, "wrong-"+clientPass)
}

// TestUpstreamDeathIsLowConfidence: sshd killed in the middle of a
// download gives a transfer record with confidence low and a reset data
// connection.
func TestUpstreamDeathIsLowConfidence(t *testing.T) {
	s := peers.StartSSHD(t)
	addr, records, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	writeFile(t, s.Root, "big.bin", randomBytes(64<<20))
	c := dialCtrl(t, addr)
	c.login()
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("RETR big.bin", 150)
	d.SetDeadline(time.Now().Add(ctrlTimeout))
	if _, err := io.ReadFull(d, make([]byte, 1<<20)); err != nil {
		t.Fatalf("first MiB: %v", err)
	}
	s.Stop()
	if _, err := io.Copy(io.Discard, d); err == nil {
		t.Errorf("data connection after the partner died ended with a clean EOF; want a reset")
	}
	if code, _ := c.read(); code != 426 {
		t.Errorf("final reply %d; want 426", code)
	}
	var conf string
	peers.WaitFor(t, recordWait, func() bool {
		for _, line := range strings.Split(records.String(), "\n") {
			var r struct{ Record, Name, Confidence string }
			if json.Unmarshal([]byte(line), &r) == nil && r.Record == audit.TypeTransfer && r.Name == "big.bin" {
				conf = r.Confidence
				return true
			}
		}
		return false
	})
	if conf != audit.ConfidenceLow {
		t.Fatalf("confidence %q; want low", conf)
	}
}
