package e2e

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/test/peers"
)

// TestInterruptedUpload breaks off a 16 MiB STOR half-way and checks that
// nothing appears at the partner under the target name: ftpgate writes
// uploads under a hidden temporary name and renames only a complete one.
// The upstream connection stays up in both cases, so the temporary file
// must be removed too.
func TestInterruptedUpload(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, records, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	data := randomBytes(16 << 20)
	half := data[:len(data)/2]

	tests := []struct {
		name  string
		file  string
		abort func(t *testing.T, c *ctrl, d *net.TCPConn)
	}{
		{
			name: "data connection reset",
			file: "reset-data.bin",
			abort: func(t *testing.T, c *ctrl, d *net.TCPConn) {
				// SO_LINGER 0: close sends RST, not FIN, so the gate
				// cannot take the half file for a complete one.
				d.SetLinger(0)
				d.Close()
				code, msg := c.read()
				if code != 426 {
					t.Errorf("after the data connection was reset: %d %q; want 426", code, msg)
				}
				c.must("NOOP", 200)
				c.must("QUIT", 221)
			},
		},
		{
			name: "control connection reset",
			file: "reset-control.bin",
			abort: func(t *testing.T, c *ctrl, d *net.TCPConn) {
				// The client vanishes: its control connection resets while
				// the data connection stays open and silent.
				c.conn.(*net.TCPConn).SetLinger(0)
				c.conn.Close()
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialCtrl(t, addr)
			c.login()
			c.must("TYPE I", 200)
			d := c.epsv()
			c.must("STOR "+tc.file, 150)
			d.SetWriteDeadline(time.Now().Add(ctrlTimeout))
			if _, err := d.Write(half); err != nil {
				t.Fatalf("write the first half: %v", err)
			}
			// The first bytes have reached the partner's temporary file
			// once a .part file has grown; break off only then.
			peers.WaitFor(t, 10*time.Second, func() bool {
				for _, p := range partFiles(t, s.Root) {
					if strings.HasPrefix(p, "."+tc.file+".") {
						return true
					}
				}
				return false
			})
			tc.abort(t, c, d)

			// The transfer record is written after Store has returned,
			// and so after the temporary file was removed.
			peers.WaitFor(t, 10*time.Second, func() bool {
				return hasRecord(t, records, func(r record) bool {
					return r.Record == "transfer" && r.Name == tc.file
				})
			})
			assertAbsent(t, filepath.Join(s.Root, tc.file))
			for _, r := range parseRecords(t, records) {
				if r.Record == "transfer" && r.Name == tc.file && r.Result == "ok" {
					t.Errorf("transfer record for the broken upload says ok: %+v", r)
				}
			}
		})
	}
	// After both sessions: no temporary file may remain, since the
	// upstream connection never died.
	t.Cleanup(func() {
		if parts := partFiles(t, s.Root); len(parts) > 0 {
			entries, _ := os.ReadDir(s.Root)
			t.Errorf("temporary upload files left behind: %q (root holds %d entries)", parts, len(entries))
		}
	})
}

// TestBrokenDownloadEndsWithReset loses the partner in the middle of a
// RETR and checks how the client's data connection ends. A stream-mode
// download has no length on the wire: FIN means "that was the whole file".
// A good transfer ends with FIN on purpose (closeGracefully: the z/OS
// client rates a transfer's check confidence High only then), so a failed
// one must end with a reset, or the truncated file looks complete to any
// client that does not check the 426. (Before ba48824 it ended with a
// plain Close, a FIN.)
func TestBrokenDownloadEndsWithReset(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, _, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	writeFile(t, s.Root, "big.bin", randomBytes(64<<20))
	c := dialCtrl(t, addr)
	c.login()
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("RETR big.bin", 150)
	d.SetDeadline(time.Now().Add(ctrlTimeout))
	if _, err := io.ReadFull(d, make([]byte, 1<<20)); err != nil {
		t.Fatalf("read the first MiB: %v", err)
	}
	s.Stop()
	n, err := io.Copy(io.Discard, d)
	code, msg := c.read()
	if code != 426 {
		t.Errorf("RETR after the partner went away: %d %q; want 426", code, msg)
	}
	if err == nil {
		t.Errorf("data connection ended with a clean EOF after %d bytes of 64 MiB; want a reset", n+1<<20)
	}
}

// TestSessionStateEndsClosed checks the last state the SessionState hook
// reports for a session that ends while a transfer runs: closed is final.
// (Before ba48824 session.finish reported StateClosed and then stopped the
// transfer, whose goroutine reported StateReady afterwards.)
func TestSessionStateEndsClosed(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	var mu sync.Mutex
	last := map[string]proxy.SessionState{}
	addr, records, _ := startGateWith(t, localPolicy(t, s, s.KnownHostsFile), func(srv *proxy.Server) {
		srv.SessionState = func(id string, st proxy.SessionState) {
			mu.Lock()
			last[id] = st
			mu.Unlock()
		}
	})
	c := dialCtrl(t, addr)
	c.login()
	c.must("TYPE I", 200)
	d := c.epsv()
	c.must("STOR vanishing.bin", 150)
	d.SetWriteDeadline(time.Now().Add(ctrlTimeout))
	if _, err := d.Write(randomBytes(1 << 20)); err != nil {
		t.Fatal(err)
	}
	c.conn.(*net.TCPConn).SetLinger(0)
	c.conn.Close()
	peers.WaitFor(t, 10*time.Second, func() bool {
		return hasRecord(t, records, func(r record) bool { return r.Record == "session_end" })
	})
	mu.Lock()
	defer mu.Unlock()
	for id, st := range last {
		if st != proxy.StateClosed {
			t.Errorf("session %s: last state reported %v; want %v", id, st, proxy.StateClosed)
		}
	}
}

// TestGateStoppedDownloadEndsWithReset checks how a download ends when
// ftpgate itself stops it: Server.Close (also the end of a Shutdown drain)
// and the transfer-idle watchdog. As in TestBrokenDownloadEndsWithReset the
// data connection must end with a reset, never the FIN that means "that
// was the whole file". These paths close the data connection with a plain
// Close before the transfer goroutine's abortiveClose runs:
// proxy/transfer.go transferBody's context.AfterFunc (conn.Close) and
// newDataConn's watchdog (c.Close); ABOR (abortTransfer, data.Close) does
// the same, but there the client asked for it.
func TestGateStoppedDownloadEndsWithReset(t *testing.T) {

	t.Parallel()
	s := peers.StartSSHD(t)
	writeFile(t, s.Root, "big.bin", randomBytes(64<<20))
	tests := []struct {
		name string
		idle time.Duration // TransferIdleTimeout
		stop func(srv *proxy.Server)
	}{
		{"server closed", 0, func(srv *proxy.Server) { srv.Close() }},
		// The client stops reading; the watchdog fires after idle.
		{"transfer idle timeout", 300 * time.Millisecond, func(*proxy.Server) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srv *proxy.Server
			addr, records, _ := startGateWith(t, localPolicy(t, s, s.KnownHostsFile), func(x *proxy.Server) {
				srv = x
				x.TransferIdleTimeout = tc.idle
			})
			c := dialCtrl(t, addr)
			c.login()
			c.must("TYPE I", 200)
			d := c.epsv()
			c.must("RETR big.bin", 150)
			d.SetDeadline(time.Now().Add(ctrlTimeout))
			if _, err := io.ReadFull(d, make([]byte, 1<<20)); err != nil {
				t.Fatalf("read the first MiB: %v", err)
			}
			tc.stop(srv)
			// The transfer has ended once its record is written.
			peers.WaitFor(t, 10*time.Second, func() bool {
				return hasRecord(t, records, func(r record) bool { return r.Record == "transfer" })
			})
			n, err := io.Copy(io.Discard, d)
			if err == nil {
				t.Errorf("data connection ended with a clean EOF after %d bytes of 64 MiB; want a reset", n+1<<20)
			}
		})
	}
}
