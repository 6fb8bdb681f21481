package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/test/peers"
)

// TestTNFTP puts and gets one file with the NetBSD ftp client, in its
// default (passive) mode and in active mode.
func TestTNFTP(t *testing.T) {
	peers.Require(t, "tnftp")
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, _, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	host, port := splitAddr(t, addr)

	for _, mode := range []string{"passive", "active"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			local := t.TempDir()
			data := randomBytes(256<<10 + 5)
			src := writeFile(t, local, "src.bin", data)
			dst := filepath.Join(local, "dst.bin")
			remote := "tnftp-" + mode + ".bin"
			setMode := "passive on\n"
			if mode == "active" {
				setMode = "passive off\n"
			}
			script := fmt.Sprintf("user %s %s\nbinary\n%sput %s %s\nget %s %s\nquit\n",
				clientUser, clientPass, setMode, src, remote, remote, dst)
			out, err := peers.TNFTP(t, script, host, port)
			if err != nil {
				t.Fatal(err)
			}
			// tnftp exits 0 whatever happened; its output holds the replies.
			if n := strings.Count(string(out), "\n226 "); n != 2 {
				t.Errorf("tnftp saw %d replies 226; want 2 (put and get):\n%s", n, out)
			}
			assertSameFile(t, "upstream copy", filepath.Join(s.Root, remote), sum(data))
			assertSameFile(t, "download", dst, sum(data))
		})
	}
}
