package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/test/peers"
)

func TestLFTP(t *testing.T) {
	peers.Require(t, "lftp")
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, _, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	host, port := splitAddr(t, addr)
	open := fmt.Sprintf("open -u %s,%s -p %s ftp://%s; ", clientUser, clientPass, port, host)

	tests := []struct {
		name     string
		settings string
	}{
		{"passive", "set ftp:passive-mode on; "},
		{"active", "set ftp:passive-mode off; "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := "lftp-" + tc.name
			local := t.TempDir()
			data := randomBytes(1<<20 + 3)
			src := writeFile(t, local, "src.bin", data)
			dst := filepath.Join(local, "dst.bin")
			want := sum(data)
			run := func(script string) string {
				t.Helper()
				out, err := peers.LFTP(t, tc.settings+open+script)
				if err != nil {
					t.Fatal(err)
				}
				return string(out)
			}

			out := run(fmt.Sprintf("mkdir %s; cd %s; put %s -o a.bin; get a.bin -o %s; echo LS1; ls; mv a.bin b.bin; echo LS2; ls",
				dir, dir, src, dst))
			assertSameFile(t, "download", dst, want)
			assertSameFile(t, "upstream copy after mv", filepath.Join(s.Root, dir, "b.bin"), want)
			assertAbsent(t, filepath.Join(s.Root, dir, "a.bin"))
			ls1, ls2, _ := strings.Cut(out, "LS2")
			if !strings.Contains(ls1, " a.bin") {
				t.Errorf("ls after put lacks a.bin:\n%s", ls1)
			}
			if !strings.Contains(ls2, " b.bin") || strings.Contains(ls2, " a.bin") {
				t.Errorf("ls after mv a.bin b.bin:\n%s\nwant b.bin and no a.bin", ls2)
			}

			out = run(fmt.Sprintf("cd %s; rm b.bin; mkdir sub; echo LS3; ls; rmdir sub; echo LS4; ls", dir))
			assertAbsent(t, filepath.Join(s.Root, dir, "b.bin"))
			assertAbsent(t, filepath.Join(s.Root, dir, "sub"))
			ls3, ls4, _ := strings.Cut(out, "LS4")
			if !strings.Contains(ls3, " sub") {
				t.Errorf("ls after mkdir sub lacks sub:\n%s", ls3)
			}
			if strings.Contains(ls4, " sub") || strings.Contains(ls4, " b.bin") {
				t.Errorf("ls after rm and rmdir still lists them:\n%s", ls4)
			}
			if entries, err := os.ReadDir(filepath.Join(s.Root, dir)); err != nil || len(entries) != 0 {
				t.Errorf("%s holds %d entries (err %v); want it empty", dir, len(entries), err)
			}
		})
	}
}

// splitAddr splits "127.0.0.1:port" into host and port.
func splitAddr(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q has no port", addr)
	}
	return host, port
}
