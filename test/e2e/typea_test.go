package e2e

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/test/peers"
)

// TestTypeAOnTheWire checks the exact bytes of TYPE A transfers on the data
// connection, with a raw control connection: CRLF from the client lands as
// LF at the partner, a lone CR is data and stays, and LF at the partner
// goes out as CRLF. A new session starts in TYPE A (RFC 959), so the first
// transfer needs no TYPE command.
func TestTypeAOnTheWire(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, _, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	c := dialCtrl(t, addr)
	c.login()

	const (
		wire     = "alpha\r\nbeta\r\n\r\nlone\rcr\r\nno end"
		upstream = "alpha\nbeta\n\nlone\rcr\nno end"
	)
	c.stor("default-type.txt", []byte(wire))
	got, err := os.ReadFile(filepath.Join(s.Root, "default-type.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != upstream {
		t.Errorf("STOR in the default type: upstream file = %q; want %q", got, upstream)
	}

	c.must("TYPE A", 200)
	writeFile(t, s.Root, "lf.txt", []byte(upstream))
	if got := c.retr("lf.txt"); string(got) != wire {
		t.Errorf("RETR in TYPE A = %q; want %q", got, wire)
	}

	c.must("TYPE I", 200)
	if got := c.retr("lf.txt"); string(got) != upstream {
		t.Errorf("RETR in TYPE I = %q; want the file unchanged, %q", got, upstream)
	}
	c.must("QUIT", 221)
}

// TestFinalReplyDoesNotWaitForClientClose reads RETR, LIST and NLST data
// to EOF and waits for the final reply before closing its end of the data
// connection, as some clients do; RFC 959 does not oblige a client to
// close first. The gate must send 226 at once. (Until e41768c it drained
// the data connection for up to 2 s first.)
func TestFinalReplyDoesNotWaitForClientClose(t *testing.T) {
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, _, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	c := dialCtrl(t, addr)
	c.login()
	writeFile(t, s.Root, "small.txt", []byte("hello\n"))
	for _, verb := range []string{"RETR small.txt", "LIST", "NLST"} {
		d := c.epsv()
		c.must(verb, 150)
		d.SetDeadline(time.Now().Add(ctrlTimeout))
		if _, err := io.ReadAll(d); err != nil {
			t.Fatalf("%s: read data: %v", verb, err)
		}
		start := time.Now()
		c.expect(226)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: 226 came %v after the data reached EOF; want well under 1 s", verb, d.Round(time.Millisecond))
		}
		d.Close()
	}
}
