package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftpgate/ftpgate/test/peers"
)

// ftplibSession drives one ftplib session through every file operation.
// argv: host port user password mode(passive|active) dir workdir. It
// reads workdir/bin.src and workdir/text.src, writes workdir/bin.got, and
// prints a JSON object of the replies and results. It leaves kept.bin and
// text.txt in dir for the Go side to check.
const ftplibSession = `
import ftplib, json, os, sys
host, port, user, pw, mode, d, work = sys.argv[1:8]
out = {}
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=30)
out["login"] = ftp.login(user, pw)
ftp.set_pasv(mode == "passive")
out["mkd"] = ftp.mkd(d)
out["cwd"] = ftp.cwd(d)
with open(os.path.join(work, "bin.src"), "rb") as f:
    out["storbinary"] = ftp.storbinary("STOR bin.dat", f)
out["size"] = ftp.size("bin.dat")
with open(os.path.join(work, "bin.got"), "wb") as f:
    out["retrbinary"] = ftp.retrbinary("RETR bin.dat", f.write)
with open(os.path.join(work, "text.src"), "rb") as f:
    out["storlines"] = ftp.storlines("STOR text.txt", f)
lines = []
out["retrlines"] = ftp.retrlines("RETR text.txt", lines.append)
out["lines"] = lines
with open(os.path.join(work, "bin.src"), "rb") as f:
    ftp.storbinary("STOR doomed.dat", f)
out["nlst_before"] = sorted(ftp.nlst())
out["rename"] = ftp.rename("bin.dat", "kept.bin")
out["delete"] = ftp.delete("doomed.dat")
out["mkd_sub"] = ftp.mkd("sub")
out["rmd_sub"] = ftp.rmd("sub")
out["nlst_after"] = sorted(ftp.nlst())
out["quit"] = ftp.quit()
print(json.dumps(out))
`

// ftplibAbort starts a large retrbinary, calls abort() from the callback
// on the first block, reads the reply the ABOR itself gets, and sends
// NOOP. argv: host port user password mode name. The transfer's own
// final reply (426, or 226 if it had already finished) is what abort()
// returns; the ABOR's reply (226 or 225) follows it.
const ftplibAbort = `
import ftplib, json, sys
host, port, user, pw, mode, name = sys.argv[1:7]
out = {}
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=30)
ftp.login(user, pw)
ftp.set_pasv(mode == "passive")
class Stop(Exception):
    pass
got = [0]
def block(b):
    got[0] += len(b)
    out["abort"] = ftp.abort()
    raise Stop()
try:
    ftp.retrbinary("RETR " + name, block)
except Stop:
    pass
out["received"] = got[0]
out["after_abort"] = ftp.getresp()
out["noop"] = ftp.voidcmd("NOOP")
out["pwd"] = ftp.pwd()
out["quit"] = ftp.quit()
print(json.dumps(out))
`

var ftplibModes = []string{"passive", "active"}

func TestPythonFTPLib(t *testing.T) {
	peers.Require(t, "python3")
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, _, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	host, port := splitAddr(t, addr)

	for _, mode := range ftplibModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			work := t.TempDir()
			bin := randomBytes(1 << 20)
			writeFile(t, work, "bin.src", bin)
			// 1 MiB of text with LF line ends: storlines sends CRLF.
			var text strings.Builder
			for i := 0; text.Len() < 1<<20; i++ {
				text.WriteString("line ")
				text.WriteString(strings.Repeat("x", i%97))
				text.WriteString("\n")
			}
			writeFile(t, work, "text.src", []byte(text.String()))

			dir := "py-" + mode
			raw, err := peers.Python(t, ftplibSession, host, port, clientUser, clientPass, mode, dir, work)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Login, Storbinary, Retrbinary, Storlines, Retrlines string
				Rename, Delete, Quit                                string
				Size                                                int64
				Lines                                               []string
				NlstBefore                                          []string `json:"nlst_before"`
				NlstAfter                                           []string `json:"nlst_after"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("ftplib output: %v\n%s", err, raw)
			}

			assertSameFile(t, "retrbinary", filepath.Join(work, "bin.got"), sum(bin))
			assertSameFile(t, "upstream copy of bin.dat, renamed", filepath.Join(s.Root, dir, "kept.bin"), sum(bin))
			if out.Size != int64(len(bin)) {
				t.Errorf("size(bin.dat) = %d; want %d", out.Size, len(bin))
			}
			for name, reply := range map[string]string{
				"storbinary": out.Storbinary, "retrbinary": out.Retrbinary,
				"storlines": out.Storlines, "retrlines": out.Retrlines,
			} {
				if !strings.HasPrefix(reply, "226") {
					t.Errorf("%s: final reply %q; want 226", name, reply)
				}
			}

			// TYPE A: CRLF on the wire, LF at the partner, lines intact.
			up, err := os.ReadFile(filepath.Join(s.Root, dir, "text.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if sum(up) != sum([]byte(text.String())) {
				t.Errorf("storlines: upstream text differs from the LF original (%d bytes, %d CR); want %d bytes, no CR",
					len(up), strings.Count(string(up), "\r"), text.Len())
			}
			wantLines := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
			if !slices.Equal(out.Lines, wantLines) {
				t.Errorf("retrlines: %d lines; want %d, the same as stored", len(out.Lines), len(wantLines))
			}

			if want := []string{"bin.dat", "doomed.dat", "text.txt"}; !slices.Equal(out.NlstBefore, want) {
				t.Errorf("nlst = %q; want %q", out.NlstBefore, want)
			}
			if want := []string{"kept.bin", "text.txt"}; !slices.Equal(out.NlstAfter, want) {
				t.Errorf("nlst after rename, delete, mkd+rmd = %q; want %q", out.NlstAfter, want)
			}
			assertAbsent(t, filepath.Join(s.Root, dir, "doomed.dat"))
			assertAbsent(t, filepath.Join(s.Root, dir, "sub"))
			if parts := partFiles(t, filepath.Join(s.Root, dir)); len(parts) > 0 {
				t.Errorf("temporary upload files left behind: %q", parts)
			}
		})
	}
}

// TestPythonFTPLibAbort aborts a large download with ftplib's abort(),
// which sends ABOR as urgent (out-of-band) data, and checks that the
// control connection stays in step: the next command gets its own reply.
func TestPythonFTPLibAbort(t *testing.T) {
	peers.Require(t, "python3")
	t.Parallel()
	s := peers.StartSSHD(t)
	addr, records, _ := startGate(t, localPolicy(t, s, s.KnownHostsFile))
	host, port := splitAddr(t, addr)
	// Far larger than the loopback socket buffers, so the transfer is
	// still running when ABOR arrives.
	big := randomBytes(32 << 20)
	writeFile(t, s.Root, "big.bin", big)

	for _, mode := range ftplibModes {
		t.Run(mode, func(t *testing.T) {
			raw, err := peers.Python(t, ftplibAbort, host, port, clientUser, clientPass, mode, "big.bin")
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Abort, Noop, Pwd string
				AfterAbort       string `json:"after_abort"`
				Received         int
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("ftplib output: %v\n%s", err, raw)
			}
			if !strings.HasPrefix(out.Abort, "426") {
				t.Errorf("abort() returned %q; want the transfer's 426", out.Abort)
			}
			if !strings.HasPrefix(out.AfterAbort, "226") && !strings.HasPrefix(out.AfterAbort, "225") {
				t.Errorf("reply after abort() = %q; want 226 or 225 for the ABOR", out.AfterAbort)
			}
			if out.Noop != "200 NOOP ok." {
				t.Errorf("NOOP after ABOR got %q; want \"200 NOOP ok.\" (replies out of step?)", out.Noop)
			}
			if !strings.Contains(out.Pwd, s.Root) {
				t.Errorf("PWD after ABOR = %q; want %q", out.Pwd, s.Root)
			}
			if out.Received >= len(big) {
				t.Errorf("received %d bytes; the abort came too late to test anything", out.Received)
			}
		})
	}
	aborted := 0
	for _, r := range parseRecords(t, records) {
		if r.Record == "transfer" && r.Name == "big.bin" && r.Result == "aborted" {
			aborted++
		}
	}
	if aborted != len(ftplibModes) {
		t.Errorf("%d transfer records for big.bin with result aborted; want %d", aborted, len(ftplibModes))
	}
}
