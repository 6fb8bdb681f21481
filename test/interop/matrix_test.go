package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/test/peers"
)

// The login every route in the matrix accepts. The password holds nothing
// a URL, lftp's "-u user,pass" or a shell would treat specially.
const (
	matrixUser = "interop"
	matrixPass = "Interop-pw-4711-xQ"
)

// writeMatrixEnv names the variable that makes the test write MATRIX.md.
const writeMatrixEnv = "FTPGATE_WRITE_MATRIX"

// File sizes: large enough to need many SFTP packets and TCP segments,
// small enough that the whole matrix stays well under three minutes.
const (
	seedSize   = 1<<20 + 17 // downloads and REST
	uploadSize = 512<<10 + 5
	bigSize    = 16 << 20 // abort: a client breaks off long before the end
	restAt     = 300000   // bytes of seed.bin a resumed download already has
)

// status is a matrix cell's verdict.
type status string

const (
	pass status = "pass"
	fail status = "FAIL"
	skip status = "skip"
)

// outcome is one cell.
type outcome struct {
	status status
	note   string // how it passed, why it failed or was skipped
}

func (o outcome) String() string {
	switch {
	case o.note == "":
		return string(o.status)
	case o.status == pass:
		return "pass (" + o.note + ")"
	}
	return string(o.status) + ": " + o.note
}

// env is what an operation needs: the gate, the client's local directory
// and the partner directory behind the route.
type env struct {
	t        *testing.T
	host     string
	port     int
	local    string // the client's working directory
	upstream string // the route's directory, as seen on this machine
	g        *gate
	mark     int    // number of records before the operation
	java     string // directory of the compiled Java client
}

func (e *env) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// newRecords returns the records written since the operation began.
func (e *env) newRecords() []record {
	all := e.g.records(e.t)
	if e.mark > len(all) {
		return nil
	}
	return all[e.mark:]
}

// waitRecords polls the records until cond holds, for up to 5 s: a
// session's last records are written as the client goes away.
func (e *env) waitRecords(cond func([]record) bool) ([]record, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := e.newRecords()
		if cond(recs) {
			return recs, true
		}
		if time.Now().After(deadline) {
			return recs, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// op is a matrix column: it prepares the files, and checks the client's
// run (its output and error) against the partner, the local files and
// ftpgate's records.
type op struct {
	name    string
	prepare func(e *env)
	check   func(e *env, out []byte, runErr error) outcome
}

// client is a matrix row: a real FTP client and how it does each
// operation. An operation it cannot do is absent from run, with the reason
// in cannot.
type client struct {
	name     string
	programs []string // must be on PATH
	run      map[string]func(e *env) ([]byte, error)
	cannot   map[string]string
}

// ---- fixtures ----

func randomData(n int, seed byte) []byte {
	var key [32]byte
	key[0] = seed
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

var (
	seedData   = randomData(seedSize, 1)
	uploadData = randomData(uploadSize, 2)
	bigData    = randomData(bigSize, 3)
	actData    = randomData(uploadSize+11, 4)
	pasData    = randomData(uploadSize+13, 5)
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func sumFile(p string) (string, int64) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "missing", -1
	}
	return sum(b), int64(len(b))
}

// sameFile checks that the file at p holds want.
func sameFile(what, p string, want []byte) (outcome, bool) {
	got, n := sumFile(p)
	if got != sum(want) {
		return outcome{fail, fmt.Sprintf("%s: %d bytes, SHA-256 %.12s; want %d bytes %.12s", what, n, got, len(want), sum(want))}, false
	}
	return outcome{status: pass}, true
}

// runFailed turns a client's error into a failed cell.
func runFailed(err error) outcome {
	msg := err.Error()
	if re, ok := err.(*peers.RunError); ok {
		msg = fmt.Sprintf("exit %d: %s", re.ExitCode(), lastLine(string(re.Stderr)+string(re.Stdout)))
	}
	return outcome{fail, msg}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// hasCmd reports whether recs hold a command record for verb with a reply
// code in codes (any code when none are given).
func hasCmd(recs []record, verb string, codes ...int) bool {
	for _, r := range recs {
		if r.Record == "command" && r.Cmd == verb && (len(codes) == 0 || slices.Contains(codes, r.Code)) {
			return true
		}
	}
	return false
}

// outputLines returns the trimmed lines of out.
func outputLines(out []byte) []string {
	var l []string
	for _, s := range strings.Split(string(out), "\n") {
		l = append(l, strings.TrimSpace(s))
	}
	return l
}

// upload/download round trip in a given data connection mode.
func roundTrip(e *env, out []byte, runErr error, remote, back string, data []byte, wantCmds, notCmds []string) outcome {
	if runErr != nil {
		return runFailed(runErr)
	}
	if o, ok := sameFile("partner copy", filepath.Join(e.upstream, remote), data); !ok {
		return o
	}
	if o, ok := sameFile("downloaded copy", filepath.Join(e.local, back), data); !ok {
		return o
	}
	recs := e.newRecords()
	var used []string
	for _, c := range wantCmds {
		if hasCmd(recs, c, 200, 227, 229) {
			used = append(used, c)
		}
	}
	if len(used) == 0 {
		return outcome{fail, fmt.Sprintf("no %s in ftpgate's records", strings.Join(wantCmds, " or "))}
	}
	for _, c := range notCmds {
		if hasCmd(recs, c) {
			return outcome{fail, c + " used as well"}
		}
	}
	return outcome{pass, strings.Join(used, ", ")}
}

var ops = []op{
	{
		name: "login",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			if _, ok := e.waitRecords(func(r []record) bool { return hasRecordType(r, "login") }); !ok {
				return outcome{fail, "no login record"}
			}
			return outcome{status: pass}
		},
	},
	{
		name: "upload",
		prepare: func(e *env) {
			writeLocal(e, "up.bin", uploadData)
		},
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			o, _ := sameFile("partner copy", filepath.Join(e.upstream, "up.bin"), uploadData)
			if o.status == pass {
				if parts := partFiles(e.upstream); len(parts) > 0 {
					return outcome{fail, "temporary files left: " + strings.Join(parts, ", ")}
				}
			}
			return o
		},
	},
	{
		name: "download",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			o, _ := sameFile("download", filepath.Join(e.local, "dl.bin"), seedData)
			return o
		},
	},
	{
		name: "list",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			for _, l := range outputLines(out) {
				if strings.HasSuffix(l, " seed.bin") && strings.Contains(l, " "+strconv.Itoa(seedSize)+" ") {
					return outcome{status: pass}
				}
			}
			return outcome{fail, "no line for seed.bin with its size in the listing"}
		},
	},
	{
		name: "NLST glob",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			lines := outputLines(out)
			for _, want := range []string{"a1.txt", "a2.txt"} {
				if !slices.Contains(lines, want) {
					return outcome{fail, want + " not listed"}
				}
			}
			for _, not := range []string{"b.dat", "seed.bin"} {
				if slices.Contains(lines, not) {
					return outcome{fail, not + " listed for *.txt"}
				}
			}
			recs := e.newRecords()
			for _, r := range recs {
				if r.Record == "command" && r.Cmd == "NLST" && strings.Contains(r.Arg, "*.txt") && r.Code == 226 {
					return outcome{status: pass}
				}
			}
			return outcome{fail, "the pattern never reached ftpgate (client-side filtering)"}
		},
	},
	{
		name: "rename",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			if fileThere(filepath.Join(e.upstream, "ren-src.txt")) {
				return outcome{fail, "ren-src.txt still there"}
			}
			o, _ := sameFile("renamed file", filepath.Join(e.upstream, "ren-dst.txt"), []byte("rename me\n"))
			return o
		},
	},
	{
		name: "delete",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			if fileThere(filepath.Join(e.upstream, "del.txt")) {
				return outcome{fail, "del.txt still there"}
			}
			return outcome{status: pass}
		},
	},
	{
		name: "mkdir/rmdir",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			recs, _ := e.waitRecords(func(r []record) bool { return hasCmd(r, "RMD", 250) || hasCmd(r, "XRMD", 250) })
			if !hasCmd(recs, "MKD", 257) && !hasCmd(recs, "XMKD", 257) {
				return outcome{fail, "no MKD 257 in ftpgate's records"}
			}
			if !hasCmd(recs, "RMD", 250) && !hasCmd(recs, "XRMD", 250) {
				return outcome{fail, "no RMD 250 in ftpgate's records"}
			}
			if fileThere(filepath.Join(e.upstream, "newdir")) {
				return outcome{fail, "newdir still there"}
			}
			return outcome{status: pass}
		},
	},
	{
		name: "REST resume",
		prepare: func(e *env) {
			writeLocal(e, "partial.bin", seedData[:restAt])
		},
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			if o, ok := sameFile("resumed download", filepath.Join(e.local, "partial.bin"), seedData); !ok {
				return o
			}
			for _, r := range e.newRecords() {
				if r.Record == "command" && r.Cmd == "REST" && r.Code == 350 {
					return outcome{pass, "REST " + r.Arg}
				}
			}
			return outcome{fail, "no REST 350 in ftpgate's records"}
		},
	},
	{
		name: "abort",
		check: func(e *env, out []byte, runErr error) outcome {
			if runErr != nil {
				return runFailed(runErr)
			}
			// The transfer ends as not ok, and the same session answers a
			// command after it.
			var xferSession string
			recs, ok := e.waitRecords(func(recs []record) bool {
				xferSession = ""
				for _, r := range recs {
					if r.Record == "transfer" && r.Direction == "retrieve" && strings.HasSuffix(r.Name, "big.bin") && r.Result != "ok" {
						xferSession = r.Session
					}
					if xferSession != "" && r.Session == xferSession && r.Record == "command" &&
						r.Cmd != "RETR" && r.Cmd != "ABOR" && r.Code/100 == 2 {
						return true
					}
				}
				return false
			})
			if xferSession == "" {
				return outcome{fail, "no aborted or failed transfer of big.bin in ftpgate's records"}
			}
			if !ok {
				return outcome{fail, "the session answered nothing after the abort"}
			}
			how := "closes data conn."
			if hasCmd(recs, "ABOR", 226, 225) {
				how = "ABOR"
			}
			return outcome{pass, how}
		},
	},
	{
		name: "active",
		prepare: func(e *env) {
			writeLocal(e, "act.bin", actData)
		},
		check: func(e *env, out []byte, runErr error) outcome {
			return roundTrip(e, out, runErr, "act.bin", "act-back.bin", actData, []string{"PORT", "EPRT"}, []string{"PASV", "EPSV"})
		},
	},
	{
		name: "passive",
		prepare: func(e *env) {
			writeLocal(e, "pas.bin", pasData)
		},
		check: func(e *env, out []byte, runErr error) outcome {
			return roundTrip(e, out, runErr, "pas.bin", "pas-back.bin", pasData, []string{"PASV", "EPSV"}, []string{"PORT", "EPRT"})
		},
	},
}

func hasRecordType(recs []record, typ string) bool {
	for _, r := range recs {
		if r.Record == typ {
			return true
		}
	}
	return false
}

func writeLocal(e *env, name string, data []byte) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.local, name), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func fileThere(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// partFiles lists ftpgate's temporary upload files in dir.
func partFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var parts []string
	for _, en := range entries {
		if strings.Contains(en.Name(), ".ftpgate-") && strings.HasSuffix(en.Name(), ".part") {
			parts = append(parts, en.Name())
		}
	}
	return parts
}

// ---- the matrix ----

// matrix collects the cells of concurrent subtests.
type matrix struct {
	mu    sync.Mutex
	cells map[string]outcome // client, partner, op joined by \x00
}

func (m *matrix) set(clientName, partnerName, opName string, o outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cells[clientName+"\x00"+partnerName+"\x00"+opName] = o
}

// markdown renders the matrix: one row per client and partner, one column
// per operation. Skip and failure reasons are footnotes, so the table stays
// readable.
func (m *matrix) markdown(clients []client, partners []string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var notes []string
	note := func(s string) string {
		i := slices.Index(notes, s)
		if i < 0 {
			notes = append(notes, s)
			i = len(notes) - 1
		}
		return fmt.Sprintf("[%d]", i+1)
	}
	var b strings.Builder
	b.WriteString("| client | partner behind ftpgate |")
	for _, o := range ops {
		b.WriteString(" " + o.name + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(ops)) + "\n")
	for _, c := range clients {
		for _, p := range partners {
			b.WriteString("| " + c.name + " | " + p + " |")
			for _, o := range ops {
				cell, ok := m.cells[c.name+"\x00"+p+"\x00"+o.name]
				var txt string
				switch {
				case !ok:
					txt = "not run"
				case cell.status == pass:
					txt = cell.String()
				case cell.note == "":
					txt = string(cell.status)
				default:
					txt = string(cell.status) + " " + note(cell.note)
				}
				b.WriteString(" " + txt + " |")
			}
			b.WriteString("\n")
		}
	}
	for i, n := range notes {
		fmt.Fprintf(&b, "\n[%d] %s", i+1, strings.ReplaceAll(n, "\n", " "))
	}
	return b.String()
}

// TestMatrix runs each client against ftpgate in front of each SFTP
// partner and every operation, and publishes the result as a Markdown
// table: always in the test log, and in MATRIX.md when
// FTPGATE_WRITE_MATRIX=1.
func TestMatrix(t *testing.T) {
	m := &matrix{cells: map[string]outcome{}}
	clients := matrixClients()
	partnerStarts := []struct {
		label string // until the partner has told its version
		start func(*testing.T) (*partner, string)
	}{
		{"OpenSSH sshd", startOpenSSH},
		{"ProFTPD mod_sftp", startProFTPD},
	}
	labels := make([]string, len(partnerStarts))
	for i, ps := range partnerStarts {
		labels[i] = ps.label
	}
	var labelsMu sync.Mutex
	started := time.Now()
	t.Cleanup(func() {
		labelsMu.Lock()
		table := m.markdown(clients, labels)
		labelsMu.Unlock()
		t.Logf("interop matrix (%v):\n%s", time.Since(started).Round(time.Second), table)
		if os.Getenv(writeMatrixEnv) == "1" {
			doc := matrixDoc(table)
			if err := os.WriteFile("MATRIX.md", []byte(doc), 0o644); err != nil {
				t.Errorf("write MATRIX.md: %v", err)
			}
		}
	})

	// The Java client is compiled once, before the rows run.
	javaDir, javaSkip := compileJava(t)

	for i, ps := range partnerStarts {
		t.Run(ps.label, func(t *testing.T) {
			t.Parallel()
			p, reason := ps.start(t)
			label := ps.label
			if p != nil {
				label = p.name
				labelsMu.Lock()
				labels[i] = label
				labelsMu.Unlock()
			}
			for _, c := range clients {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					if reason != "" {
						markAll(m, c, label, outcome{skip, reason})
						t.Skip(reason)
					}
					for _, prog := range c.programs {
						if _, err := exec.LookPath(prog); err != nil {
							r := prog + " not installed (" + installHint(prog) + ")"
							markAll(m, c, label, outcome{skip, r})
							t.Skip(r)
						}
					}
					if c.name == javaClientName && javaSkip != "" {
						markAll(m, c, label, outcome{skip, javaSkip})
						t.Skip(javaSkip)
					}
					runRow(t, m, c, p, label, javaDir)
				})
			}
		})
	}
}

func markAll(m *matrix, c client, label string, o outcome) {
	for _, op := range ops {
		m.set(c.name, label, op.name, o)
	}
}

// runRow runs every operation of one client against one partner, through
// a gate of its own, in a partner directory of its own.
func runRow(t *testing.T, m *matrix, c client, p *partner, label, javaDir string) {
	dirName := strings.NewReplacer(" ", "-", "/", "-", "(", "", ")", "").Replace(c.name)
	upPath, upLocal := p.dir(t, dirName)
	pol, err := policy.Load(strings.NewReader(fmt.Sprintf(`version: 1
routes:
  - name: interop
    user: %s
    auth: local
    password_bcrypt: %q
    upstream: %q
    upstream_key: %q
    known_hosts: %q
`, matrixUser, bcryptHash(t, matrixPass), "sftp://"+p.user+"@"+p.addr+upPath, p.keyFile, p.known)), "interop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := startGate(t, pol, matrixPass)
	host, portStr, _ := net.SplitHostPort(g.Addr)
	port, _ := strconv.Atoi(portStr)
	e := &env{t: t, host: host, port: port, local: t.TempDir(), upstream: upLocal, g: g, java: javaDir}

	for name, data := range map[string][]byte{
		"seed.bin": seedData, "big.bin": bigData, "a1.txt": []byte("a1\n"), "a2.txt": []byte("a2\n"),
		"b.dat": []byte("b\n"), "ren-src.txt": []byte("rename me\n"), "del.txt": []byte("delete me\n"),
	} {
		p.seed(t, upLocal, name, data)
	}
	for _, o := range ops {
		run, ok := c.run[o.name]
		if !ok {
			why := c.cannot[o.name]
			if why == "" {
				why = "not scripted for this client"
			}
			m.set(c.name, label, o.name, outcome{skip, why})
			continue
		}
		if o.prepare != nil {
			o.prepare(e)
		}
		e.mark = len(g.records(t))
		start := time.Now()
		out, runErr := run(e)
		res := o.check(e, out, runErr)
		t.Logf("%s: %s (%v)", o.name, res, time.Since(start).Round(time.Millisecond))
		m.set(c.name, label, o.name, res)
		if res.status == fail {
			t.Errorf("%s via ftpgate to %s: %s: %s (after %v)\n--- client output ---\n%s", c.name, label, o.name, res.note,
				time.Since(start).Round(time.Millisecond), tail(string(out), 2000))
		}
	}
}

// matrixDoc is MATRIX.md: the table with what it is and how it was made.
func matrixDoc(table string) string {
	var b strings.Builder
	b.WriteString("# ftpgate interop matrix\n\n")
	b.WriteString("Generated by `FTPGATE_WRITE_MATRIX=1 go test ./test/interop -run TestMatrix` on " +
		time.Now().UTC().Format("2006-01-02") + "; every cell is the result of that run.\n")
	b.WriteString("Each client logs in to an in-process ftpgate (wired as `ftpgate serve` wires it, pool on),\n")
	b.WriteString("which carries the session over SFTP to the partner named in the row, started by the test on loopback.\n")
	b.WriteString("Operations run in the client's default passive mode unless the column says otherwise;\n")
	b.WriteString("`passive` is a PASV round trip where the client can choose PASV, `active` a PORT or EPRT one.\n\n")
	b.WriteString("Peers: " + peerVersions() + "\n\n")
	b.WriteString(table)
	b.WriteString(`
What each cell checked, besides the client's exit status:

- login: ftpgate wrote a login record for the session.
- upload, download: SHA-256 of the partner's copy (upload) or the client's copy (download) equals the original;
  no temporary upload file is left on the partner.
- list: the listing has a line for seed.bin with its size.
- NLST glob: NLST *.txt lists a1.txt and a2.txt and nothing else, and ftpgate's records show the pattern in NLST
  (the client did not filter a full listing itself).
- rename, delete, mkdir/rmdir: the partner's directory changed as asked; MKD 257 and RMD 250 in the records.
- REST resume: a download resumed from byte 300000 equals the original; REST in the records.
- abort: the client broke off a 16 MiB download, by ABOR (ftpgate answers 426 for the transfer, then 226) or by
  closing the data connection (426); the transfer is recorded as not ok and the same session answered a command
  after it.
- active, passive: upload and download round trip, SHA-256 equal both ways, with the data connection command
  named in the cell (and none of the other mode's).
`)
	return b.String()
}

// peerVersions names the versions of the programs in the matrix.
func peerVersions() string {
	var parts []string
	for _, v := range []struct{ name, prog string }{
		{"curl", "curl"}, {"lftp", "lftp"}, {"tnftp", "tnftp"}, {"inetutils-ftp", "inetutils-ftp"},
		{"libcommons-net-java", ""}, {"openjdk-17-jre-headless", "java"},
	} {
		out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", v.name).Output()
		if err == nil && len(out) > 0 {
			parts = append(parts, v.name+" "+string(out))
		}
	}
	if out, err := exec.Command("python3", "--version").CombinedOutput(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	return strings.Join(parts, ", ")
}

// installHint names the Debian package of a client program.
func installHint(prog string) string {
	switch prog {
	case "inetutils-ftp":
		return "apt-get install inetutils-ftp"
	case "java", "javac":
		return "apt-get install openjdk-17-jdk-headless libcommons-net-java"
	}
	return "apt-get install " + prog
}
