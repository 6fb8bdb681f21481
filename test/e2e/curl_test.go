package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/test/peers"
)

// curlModes are the four ways curl opens data connections. curl tries
// EPSV then PASV by default; --ftp-port makes it active, EPRT first.
var curlModes = []struct {
	name string
	args []string
}{
	{"passive EPSV", nil},
	{"passive PASV", []string{"--disable-epsv"}},
	{"active EPRT", []string{"--ftp-port", "127.0.0.1"}},
	{"active PORT", []string{"--ftp-port", "127.0.0.1", "--disable-eprt"}},
}

// startCurlGate starts sshd and a gate with the local route in front of
// it, skipping t unless curl and sshd are installed.
func startCurlGate(t *testing.T) (s *peers.SSHD, addr string, records, logs *buffer) {
	t.Helper()
	peers.Require(t, "curl")
	s = peers.StartSSHD(t)
	addr, records, logs = startGate(t, localPolicy(t, s, s.KnownHostsFile))
	return s, addr, records, logs
}

// curlRoundTrip uploads data as dir/name with curl, checks the copy that
// landed at the partner, downloads it again and checks that too.
func curlRoundTrip(t *testing.T, s *peers.SSHD, addr string, mode []string, dir, name string, data []byte) {
	t.Helper()
	local := t.TempDir()
	src := writeFile(t, local, "src-"+name, data)
	want := sum(data)
	rel := dir + "/" + name

	curl(t, withArgs(mode, "--ftp-create-dirs", "-T", src, ftpURL(addr, rel))...)
	assertSameFile(t, "upstream copy of "+rel, filepath.Join(s.Root, dir, name), want)

	dst := filepath.Join(local, "dst-"+name)
	// An empty download creates no output file in some curl versions;
	// start from an empty one so that case compares as well.
	writeFile(t, local, "dst-"+name, nil)
	curl(t, withArgs(mode, "-o", dst, ftpURL(addr, rel))...)
	assertSameFile(t, "download of "+rel, dst, want)
}

func TestCurlModes(t *testing.T) {
	t.Parallel()
	s, addr, _, _ := startCurlGate(t)
	for _, m := range curlModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			dir := strings.ReplaceAll(m.name, " ", "-")
			curlRoundTrip(t, s, addr, m.args, dir, "a.bin", randomBytes(1<<20+17))

			// List the directory.
			out := curl(t, withArgs(m.args, ftpURL(addr, dir+"/"))...)
			if !bytes.Contains(out, []byte(" a.bin\r\n")) && !bytes.Contains(out, []byte(" a.bin\n")) {
				t.Errorf("listing of %s/ lacks a.bin:\n%s", dir, out)
			}

			// Rename after a listing of the directory, so the commands run in it.
			curl(t, withArgs(m.args, "-o", os.DevNull,
				"-Q", "-RNFR a.bin", "-Q", "-RNTO b.bin", ftpURL(addr, dir+"/"))...)
			assertAbsent(t, filepath.Join(s.Root, dir, "a.bin"))
			if _, err := os.Stat(filepath.Join(s.Root, dir, "b.bin")); err != nil {
				t.Errorf("after RNFR a.bin, RNTO b.bin: %v", err)
			}

			curl(t, withArgs(m.args, "-o", os.DevNull,
				"-Q", "-DELE b.bin", ftpURL(addr, dir+"/"))...)
			assertAbsent(t, filepath.Join(s.Root, dir, "b.bin"))
			if parts := partFiles(t, filepath.Join(s.Root, dir)); len(parts) > 0 {
				t.Errorf("temporary upload files left behind: %q", parts)
			}
		})
	}
}

func TestCurlSizes(t *testing.T) {
	t.Parallel()
	s, addr, _, _ := startCurlGate(t)
	tests := []struct {
		name string
		size int
	}{
		{"empty file", 0},
		{"one byte", 1},
		{"one byte over a 32 KiB SFTP packet", 32<<10 + 1},
		{"64 MiB", 64 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.size > 16<<20 && testing.Short() {
				t.Skip("large transfer skipped with -short")
			}
			t.Parallel()
			curlRoundTrip(t, s, addr, nil, "sizes", strings.ReplaceAll(tc.name, " ", "_")+".bin", randomBytes(tc.size))
		})
	}
}

// TestCurlTypeA checks TYPE A through curl --use-ascii. curl converts line
// ends itself in ASCII mode (LF to CRLF on upload, CRLF to LF on download,
// libcurl's CURL_DO_LINEEND_CONV), so the local files are LF on both ends
// and the CRLF on the wire shows in the transfer records: bytes_client
// counts one more byte per line end than bytes_upstream. TestTypeAOnTheWire
// checks the exact bytes on the data connection.
func TestCurlTypeA(t *testing.T) {
	t.Parallel()
	s, addr, records, _ := startCurlGate(t)
	const lf = "first line\nsecond line\n\nlast line, no end"
	wireLen := int64(len(lf) + strings.Count(lf, "\n"))
	if err := os.Mkdir(filepath.Join(s.Root, "text"), 0o755); err != nil {
		t.Fatal(err)
	}

	t.Run("upload lands with LF", func(t *testing.T) {
		src := writeFile(t, t.TempDir(), "lf.txt", []byte(lf))
		curl(t, "--use-ascii", "-T", src, ftpURL(addr, "text/up.txt"))
		got, err := os.ReadFile(filepath.Join(s.Root, "text", "up.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != lf {
			t.Errorf("upstream file = %q; want %q", got, lf)
		}
		assertTransferBytes(t, records, "store", "up.txt", wireLen, int64(len(lf)))
	})

	t.Run("download goes out with CRLF", func(t *testing.T) {
		writeFile(t, filepath.Join(s.Root, "text"), "down.txt", []byte(lf))
		got := curl(t, "--use-ascii", ftpURL(addr, "text/down.txt"))
		if string(got) != lf {
			t.Errorf("ASCII download, after curl's own conversion = %q; want %q", got, lf)
		}
		assertTransferBytes(t, records, "retrieve", "down.txt", wireLen, int64(len(lf)))
	})
}

// assertTransferBytes fails t unless records hold an ok transfer record
// for name in direction with the given byte counts on the client's data
// connection and at the partner.
func assertTransferBytes(t testing.TB, records *buffer, direction, name string, client, upstream int64) {
	t.Helper()
	// The gate sends the final reply before it writes the records, so a
	// client may be done before they are.
	var seen []record
	found := func() bool {
		seen = seen[:0]
		for _, r := range parseRecords(t, records) {
			if r.Record != "transfer" || r.Name != name || r.Direction != direction {
				continue
			}
			if r.Result == "ok" && r.BytesClient == client && r.BytesUpstream == upstream {
				return true
			}
			seen = append(seen, r)
		}
		return false
	}
	ctx, cancel := context.WithTimeout(t.Context(), recordWait)
	defer cancel()
	if peers.Poll(ctx, found) != nil {
		t.Errorf("no ok %s record for %s with bytes_client %d, bytes_upstream %d; saw %+v",
			direction, name, client, upstream, seen)
	}
}

// curl runs curl with args and fails t, showing curl's output, if it fails.
func curl(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := peers.Curl(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withArgs returns a new slice holding mode followed by more, so that
// parallel subtests never append into a shared backing array.
func withArgs(mode []string, more ...string) []string {
	return append(append([]string(nil), mode...), more...)
}
