package zos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/test/peers"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

// Each deck runs in two variants:
//
//   - mvs: the deck in decks/, with quoted MVS names as real jobs have them,
//     through a route with "mvs: {mode: map, root: ..., qualifiers_as_dirs:
//     false}". Until policy.Load knows the mvs key, these runs skip with
//     "waiting for the mvs route key".
//   - unix: the deck in decks/unix/ when there is one: the same job with the
//     remote names as the plain Unix names the mapping would give
//     ('ZOSBATCH.PAY.BIN' becomes ZOSBATCH.PAY.BIN; an unquoted name gets
//     the login name as prefix, as z/OS does). A deck without a unix/ copy
//     names nothing remote that the mapping would change (its remote names
//     are refused before mapping, or come only from the local side), and
//     runs as it is. The route has no mvs key: quoted names reach SFTP
//     literally.
//
// Both variants expect the same upstream tree, except where a table entry
// says otherwise (unixUp). Each variant runs in four modes: PORT (the z/OS
// default), PASV (FWFRIENDLY TRUE), EPSV (FWFRIENDLY TRUE, EPSV4 TRUE) and
// EPRT (EPSV4 TRUE), and on IPv6 (ftpgate on [::1]) EPRT6 (active) and
// EPSV6 (FWFRIENDLY TRUE), where the client uses the extended commands on
// its own. The IPv6 modes skip when the machine has no ::1.

// deckInactTime replaces the client's 120 s INACTTIME, so a hang fails the
// test in well under a minute.
const deckInactTime = 30 * time.Second

// mode is a data connection setting of FTP.DATA, and the address family
// of the control connection.
type mode struct {
	name              string // column label
	cmd               string // the command the client must use: PORT, PASV, EPSV, EPRT
	fwFriendly, epsv4 bool
	// ipv6 connects to ftpgate on [::1]; the z/OS client then uses EPRT
	// and EPSV whatever EPSV4 says.
	ipv6 bool
}

var modes = []mode{
	{name: "PORT", cmd: "PORT"},
	{name: "PASV", cmd: "PASV", fwFriendly: true},
	{name: "EPSV", cmd: "EPSV", fwFriendly: true, epsv4: true},
	{name: "EPRT", cmd: "EPRT", epsv4: true},
	{name: "EPRT6", cmd: "EPRT", ipv6: true},
	{name: "EPSV6", cmd: "EPSV", fwFriendly: true, ipv6: true},
}

// deckCase is what one deck must do. Upstream paths are relative to the
// route's directory (the mvs root).
type deckCase struct {
	name string // decks/NAME.deck, decks/unix/NAME.deck, decks/NAME.ftpdata, decks/NAME.netrc
	// exit runs the step with PARM='... (EXIT'.
	exit bool
	// unixOnly: the deck runs in the unix variant only.
	unixOnly string
	// partner: the deck logs in as user@host to an in-process SFTP
	// partner that takes passwords; up then describes the partner's tree
	// and the route's tree must stay as seeded.
	partner bool
	// up lists files added or changed upstream, gone those removed; every
	// other seeded file must be unchanged, and no other file may appear.
	up     map[string]string
	gone   []string
	unixUp map[string]string // replaces up in the unix variant
	// local lists text data sets after the job ('DSN' or 'DSN(MEM)' →
	// records), localBin binary ones, localAbsent those that must not
	// exist.
	local       map[string][]string
	localBin    map[string][]byte
	localAbsent []string
	// ended is how an EXIT job ends: "put 550", or "mget 450|550"; "" runs
	// to its end. errors are the errors that are not ignored, ignored the
	// ignored ones (typed SITE; nil: not checked).
	ended   string
	errors  []string
	ignored []string
	check   func(t *testing.T, res *Result)
	// seed adds files to the upstream tree this deck starts with.
	seed map[string]string
	// recvRate paces the job's reading of data connections (Job.RecvRate).
	recvRate int
	// knownBug describes a bug in ftpgate this deck shows: while symptom
	// holds, the run skips with the description instead of failing; once
	// it is fixed the deck is checked like any other.
	knownBug *knownBug
}

type knownBug struct {
	note    string
	symptom func(res *Result) bool
}

var deckCases = []deckCase{
	{
		// A text PUT as most jobs do it: no ascii subcommand, so no TYPE
		// command; ftpgate starts in TYPE A and turns CRLF into LF.
		name: "put-text",
		up:   map[string]string{"ZOSBATCH.PAY.DAILY.EXTRACT": payText},
		check: func(t *testing.T, res *Result) {
			assertSentBefore(t, res, "SITE FIXrecfm 80 LRECL=80 RECFM=FB BLKSIZE=27920", "STOR ")
		},
	},
	{
		name: "put-binary",
		up:   map[string]string{"ZOSBATCH.PAY.BIN": string(binData)},
	},
	{
		// GET in TYPE A (CRLF records compared line by line) and in
		// binary, both replacing existing local data sets.
		name:     "get-text-binary",
		local:    map[string][]string{"ZOSJOB.PAY.REPORT": splitRecords(reportText)},
		localBin: map[string][]byte{"ZOSJOB.PAY.IMAGE": imageData},
	},
	{
		// MPUT of PDS members (each with its SENDSITE SITE) into a PDS made
		// with mkdir, then MGET of them (NLST JOB*) into another PDS.
		name: "mput-mget-pds",
		up: map[string]string{
			"ZOSBATCH.JCL/JOBA": joinRecords(jobA), "ZOSBATCH.JCL/JOBB": joinRecords(jobB), "ZOSBATCH.JCL/JOBC": joinRecords(jobC),
		},
		local: map[string][]string{"ZOSJOB.OUT.JCL(JOBA)": jobA, "ZOSJOB.OUT.JCL(JOBB)": jobB, "ZOSJOB.OUT.JCL(JOBC)": jobC},
		check: func(t *testing.T, res *Result) {
			if n := countPrefix(res.Sent, "SITE FIXrecfm 80 "); n != 3 {
				t.Errorf("SENDSITE SITE commands: %d; want 3 (one per member put)", n)
			}
		},
	},
	{
		name: "rename-delete",
		up:   map[string]string{"ZOSBATCH.NEW.NAME": seed["ZOSBATCH.OLD.NAME"]},
		gone: []string{"ZOSBATCH.OLD.NAME", "ZOSBATCH.GONE", "ZOSBATCH.TMP.A", "ZOSBATCH.TMP.B"},
	},
	{
		// Typed SITE parameters of every kind jobs send; any error to them
		// would be ignored, and ftpgate accepts them all.
		name:    "site-params",
		up:      map[string]string{"ZOSBATCH.OUT.DAILY": payText},
		ignored: []string{},
	},
	{
		// QUOTE SITE under EXIT: a 5xx would end the job.
		name: "quote-site",
		exit: true,
		up:   map[string]string{"ZOSBATCH.QUOTE.DATA": payText},
	},
	{
		// JES submission as jobs write it: the typed SITE FILETYPE=JES gets
		// 550 and is ignored, so the client goes on to PUT the JCL; ftpgate
		// refuses that too and the EXIT job ends. Nothing is written.
		name:        "jes-submit",
		exit:        true,
		ended:       "put 550",
		errors:      []string{"put 550"},
		ignored:     []string{"site 550"},
		localAbsent: []string{"ZOSJOB.JOB.OUTPUT"},
	},
	{
		name:   "jes-quote",
		exit:   true,
		ended:  "quote 550",
		errors: []string{"quote 550"},
	},
	{
		// Without EXIT the job goes on: every transfer, listing and delete
		// is refused while FILETYPE=JES is in force, and works again after
		// FILETYPE=SEQ.
		name:        "jes-noexit",
		up:          map[string]string{"ZOSBATCH.AFTER.JES": payText},
		errors:      []string{"put 550", "get 550", "dir 550", "ls 550", "delete 550"},
		ignored:     []string{"site 550"},
		localAbsent: []string{"ZOSJOB.JOB.OUTPUT"},
	},
	{
		// PUT without a remote name: the z/OS client stores under the
		// quoted local name. Mapped, that is the data set; without mapping
		// the quotes reach SFTP as part of the file name.
		name:   "put-noremote",
		up:     map[string]string{"ZOSJOB.PAY.DATA": payText},
		unixUp: map[string]string{"'ZOSJOB.PAY.DATA'": payText},
		check: func(t *testing.T, res *Result) {
			assertSent(t, res, "STOR 'ZOSJOB.PAY.DATA'")
		},
	},
	{
		// An MGET that matches nothing ends an EXIT job: NLST gets 550 (or
		// 450), and the PUT after it never runs.
		name:   "mget-nomatch",
		exit:   true,
		ended:  "mget 450|550",
		errors: []string{"mget 450|550"},
	},
	{
		// EXTENSIONS UTF8 in FTP.DATA: FEAT before USER; ftpgate does not
		// list LANG, so no LANG command follows.
		name: "extensions-utf8",
		up:   map[string]string{"ZOSBATCH.UTF8.DATA": payText},
		check: func(t *testing.T, res *Result) {
			if len(res.Sent) < 2 || res.Sent[0] != "FEAT" || !strings.HasPrefix(res.Sent[1], "USER ") {
				t.Errorf("the client sent %q first; want FEAT, then USER", res.Sent[:min(2, len(res.Sent))])
			}
			for _, s := range res.Sent {
				if strings.HasPrefix(s, "LANG") {
					t.Errorf("the client sent %q: ftpgate's FEAT lists LANG", s)
				}
			}
		},
	},
	{
		// The login comes from the NETRC DD.
		name: "netrc-put",
		up:   map[string]string{"ZOSNETRC.PAY.DATA": payText},
		check: func(t *testing.T, res *Result) {
			assertSent(t, res, "USER "+netrcUser)
		},
	},
	{
		// PUT into a PDS (a directory) that does not exist: the EXIT job
		// ends on the refusal. RFC 959 (5.4) allows only 110, 226, 250,
		// 425, 426, 451, 551 and 552 after STOR's 125 or 150, so a 550 or
		// 553 must come before any preliminary reply, as vsftpd and ProFTPD
		// send it.
		name:   "put-nodir",
		exit:   true,
		ended:  "put 550|553",
		errors: []string{"put 550|553"},
		check: func(t *testing.T, res *Result) {
			for _, x := range res.Transfers {
				if len(x.Prelim) > 0 {
					t.Errorf("%s: preliminary reply %v before the refusal %d", x.Command, x.Prelim, x.Final)
				}
			}
		},
		knownBug: &knownBug{
			note: "STOR into a missing directory gets 150, then a reset data connection and 550: the upstream file is " +
				"created only after the 150 (proxy/transfer.go:157 sends it, :176 runs the store)",
			symptom: func(res *Result) bool {
				for _, x := range res.Transfers {
					if strings.HasPrefix(x.Command, "STOR") && len(x.Prelim) > 0 && x.Final >= 500 {
						return true
					}
				}
				return false
			},
		},
	},
	{
		// A binary GET by a job that stores the data more slowly than the
		// network delivers it (here 4 MiB/s). The final reply must still
		// come after the last byte and the FIN, or the client's check
		// confidence is not High.
		name:     "get-slow",
		seed:     map[string]string{"ZOSBATCH.BIG.IMAGE": string(bigImage)},
		recvRate: 4 << 20,
		localBin: map[string][]byte{"ZOSJOB.BIG.IMAGE": bigImage},
		knownBug: &knownBug{
			note: "the 226 overtakes the end of the data: closeGracefully (proxy/transfer.go:439) half-closes and " +
				"closes without waiting for the data to be delivered, so while MiBs are still queued the client has " +
				"its final reply (confidence Low), and ftpgate records the transfer as confidence high",
			symptom: func(res *Result) bool {
				for _, x := range res.Transfers {
					if x.Why == "final reply arrived before the data was complete" {
						return true
					}
				}
				return false
			},
		},
	},
	{
		// MGET of a pattern in a Unix subdirectory: NLST SUB/JOB* must name
		// the files so that RETR finds them (SUB/JOBA, as vsftpd and
		// ProFTPD answer).
		name:     "mget-subdir",
		unixOnly: "it names a Unix subdirectory, which is no data set name",
		local:    map[string][]string{"ZOSJOB.OUT.JCL(JOBA)": jobA, "ZOSJOB.OUT.JCL(JOBB)": jobB},
		knownBug: &knownBug{
			note: "NLST SUB/JOB* answers bare names (JOBA), so the RETR that follows looks in the working directory " +
				"and gets 550 (proxy/commands.go cmdNLST writes fi.Name(); vsftpd answers SUB/JOBA)",
			symptom: func(res *Result) bool { return slices.Contains(res.Sent, "RETR JOBA") },
		},
	},
	{
		// USER name@host: the password phrase goes to the partner whole,
		// blanks included.
		name:     "userhost-put",
		unixOnly: "a user@host login has no route, so no mvs key applies",
		partner:  true,
		up:       map[string]string{"pay.daily.txt": payText},
	},
}

// ---- fixtures ----

// payRecords is the text data set most decks put.
var payRecords = []string{
	"PAYROLL DAILY EXTRACT 2026-11-25",
	"000001 SMITH      JOHN       0001234.56",
	"000002 O'BRIEN    MARY       0002345.67",
	"000003 MULLER     KARL       0000042.00",
	"TRAILER 000003",
}

// payText is payRecords as an SFTP partner keeps it: LF line ends.
var payText = joinRecords(payRecords)

var (
	jobA = []string{"//JOBA     JOB (ACCT),'PAYROLL A',CLASS=A", "//STEP1    EXEC PGM=IEFBR14"}
	jobB = []string{"//JOBB     JOB (ACCT),'PAYROLL B',CLASS=A", "//STEP1    EXEC PGM=IEFBR14", "//DD1      DD DUMMY"}
	jobC = []string{"//JOBC     JOB (ACCT),'PAYROLL C',CLASS=A"}
	// other is in the source PDS but does not match JOB*.
	other  = []string{"//OTHER    JOB (ACCT),'NOT SENT',CLASS=A"}
	payJob = []string{"//PAYJOB   JOB (ACCT),'SUBMIT',CLASS=A", "//STEP1    EXEC PGM=PAYROLL"}
)

// deterministic returns n bytes of reproducible pseudo-random data with
// every line-end byte sequence a binary transfer must leave alone.
func deterministic(n int, seed byte) []byte {
	var key [32]byte
	key[0] = seed
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	copy(b, "\r\n\n\r\x00\xff\x1a\r\r\n")
	copy(b[n/2:], "\r\n\r\n\n\n\r")
	b[n-1] = '\r'
	return b
}

// The transferred files of the ordinary decks stay below 64 KiB, the
// receive window a loopback connection starts with, so the whole file is
// delivered before ftpgate closes the data connection; get-slow is the deck
// about what happens when it is not.
var (
	binData   = deterministic(40<<10+3, 1)
	imageData = deterministic(48<<10+7, 2)
	bigImage  = deterministic(6<<20+1, 3)
	// reportText crosses the 32 KiB buffers of ftpgate's TYPE A
	// conversion and holds an empty record.
	reportText = func() string {
		var b strings.Builder
		for i := 1; i <= 1000; i++ {
			fmt.Fprintf(&b, "REPORT LINE %04d  PAYROLL SUMMARY BY DEPARTMENT %02d\n", i, i%97)
			if i == 500 {
				b.WriteString("\n")
			}
		}
		b.WriteString("END OF REPORT\n")
		return b.String()
	}()
)

// seed is the upstream tree every deck starts with.
var seed = map[string]string{
	"ZOSBATCH.PAY.REPORT": reportText,
	"ZOSBATCH.PAY.IMAGE":  string(imageData),
	"ZOSBATCH.OLD.NAME":   "old name content\n",
	"ZOSBATCH.GONE":       "gone\n",
	"ZOSBATCH.TMP.A":      "tmp a\n",
	"ZOSBATCH.TMP.B":      "tmp b\n",
	"ZOSBATCH.KEEP":       "keep\n",
	"ZOSBATCH.J0012345":   "J0012345 JOB OUTPUT\n",
	"SUB/JOBA":            joinRecords(jobA),
	"SUB/JOBB":            joinRecords(jobB),
}

// localSeed makes every job's local data sets.
func localSeed(t *testing.T, ds *DataSets) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ds.PutRecords(DSName{DSN: "ZOSJOB.PAY.DATA"}, payRecords, DefaultAttrs))
	must(ds.Write(DSName{DSN: "ZOSJOB.PAY.BIN"}, binData, DefaultAttrs))
	must(ds.PutRecords(DSName{DSN: "ZOSJOB.PAY.REPORT"}, []string{"OLD REPORT TO BE REPLACED"}, DefaultAttrs))
	must(ds.Write(DSName{DSN: "ZOSJOB.PAY.IMAGE"}, []byte("old image"), DefaultAttrs))
	for _, pds := range []string{"ZOSJOB.SRC.JCL", "ZOSJOB.OUT.JCL", "ZOSJOB.JCL"} {
		must(ds.AllocPDS(pds))
		ds.SetAttrs(pds, DefaultAttrs)
	}
	for mem, recs := range map[string][]string{"JOBA": jobA, "JOBB": jobB, "JOBC": jobC, "OTHER": other} {
		must(ds.PutRecords(DSName{DSN: "ZOSJOB.SRC.JCL", Member: mem}, recs, DefaultAttrs))
	}
	must(ds.PutRecords(DSName{DSN: "ZOSJOB.JCL", Member: "PAYJOB"}, payJob, DefaultAttrs))
}

// ---- the test ----

// deckRow is one line of the results table.
type deckRow struct {
	variant, mode, deck, result string
}

type deckTable struct {
	mu   sync.Mutex
	rows []deckRow
}

func (d *deckTable) add(r deckRow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows = append(d.rows, r)
}

// markdown renders deck × (variant, mode) as a table; skip reasons are
// footnotes.
func (d *deckTable) markdown() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	cols := []string{}
	cells := map[string]string{}
	for _, r := range d.rows {
		col := r.variant + " " + r.mode
		if !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
		cells[r.deck+"\x00"+col] = r.result
	}
	sort.Slice(cols, func(i, j int) bool { return colOrder(cols[i]) < colOrder(cols[j]) })
	var notes []string
	var b strings.Builder
	b.WriteString("| deck | " + strings.Join(cols, " | ") + " |\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, dc := range deckCases {
		b.WriteString("| " + dc.name)
		for _, col := range cols {
			c := cells[dc.name+"\x00"+col]
			switch {
			case c == "":
				c = "-"
			case strings.HasPrefix(c, "skip: "):
				reason := strings.TrimPrefix(c, "skip: ")
				i := slices.Index(notes, reason)
				if i < 0 {
					notes = append(notes, reason)
					i = len(notes) - 1
				}
				c = fmt.Sprintf("skip [%d]", i+1)
			}
			b.WriteString(" | " + c)
		}
		b.WriteString(" |\n")
	}
	for i, n := range notes {
		fmt.Fprintf(&b, "\n[%d] %s", i+1, n)
	}
	return b.String()
}

func colOrder(col string) string {
	variant, m, _ := strings.Cut(col, " ")
	for i, md := range modes {
		if md.name == m {
			return variant + strconv.Itoa(i)
		}
	}
	return col
}

// TestDecks runs every deck through ftpgate against a real OpenSSH sshd, in
// both variants and all four data connection modes, and judges each run
// as the z/OS client does.
func TestDecks(t *testing.T) {
	table := &deckTable{}
	t.Cleanup(func() { t.Logf("z/OS deck results:\n%s", table.markdown()) })
	for _, variant := range []string{"mvs", "unix"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			if variant == "mvs" {
				probe := "version: 1\nroutes:\n  - user: PROBE\n    auth: passthrough\n    upstream: sftp://127.0.0.1/x\n" +
					"    host_key_sha256: [\"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"]\n" +
					"    mvs: {mode: map, root: /x, qualifiers_as_dirs: false}\n"
				if _, err := loadPolicy(t, probe, []int{7}); errors.Is(err, errWaitingForMVS) {
					for _, m := range modes {
						for _, dc := range deckCases {
							table.add(deckRow{variant, m.name, dc.name, "skip: waiting for the mvs route key"})
						}
					}
					t.Skip("waiting for the mvs route key")
				}
			}
			for _, m := range modes {
				t.Run(m.name, func(t *testing.T) {
					t.Parallel()
					if m.ipv6 && !haveIPv6Loopback() {
						for _, dc := range deckCases {
							table.add(deckRow{variant, m.name, dc.name, "skip: no ::1"})
						}
						t.Skip("no IPv6 loopback (::1) on this machine")
					}
					s := peers.StartSSHD(t)
					for _, dc := range deckCases {
						t.Run(dc.name, func(t *testing.T) {
							t.Parallel()
							row := deckRow{variant, m.name, dc.name, ""}
							defer func() {
								switch {
								case t.Skipped() && row.result == "":
									row.result = "skip"
								case t.Skipped():
								case t.Failed():
									row.result = "FAIL"
								default:
									row.result = "pass"
								}
								table.add(row)
							}()
							if dc.unixOnly != "" && variant == "mvs" {
								row.result = "skip: " + dc.unixOnly
								t.Skip(dc.unixOnly)
							}
							runDeck(t, s, variant, m, dc, &row.result)
						})
					}
				})
			}
		})
	}
}

// runDeck runs one deck and checks everything the table says.
// note receives the table cell for a run that skips on a known bug.
func runDeck(t *testing.T, s *peers.SSHD, variant string, m mode, dc deckCase, note *string) {
	t.Helper()
	root := filepath.Join(s.Root, dc.name)
	startTree := map[string]string{}
	for _, m := range []map[string]string{seed, dc.seed} {
		for k, v := range m {
			startTree[k] = v
		}
	}
	writeTree(t, root, startTree)

	var partnerRoot string
	var partner *translatetest.Server
	if dc.partner {
		partnerRoot = t.TempDir()
		var err error
		partner, err = translatetest.NewServer(partnerRoot, translatetest.Options{Users: map[string]string{partnerUser: partnerPass}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { partner.Close() })
	}
	yaml, mvsLines := deckPolicy(t, s, root, variant == "mvs", partner)
	pol, err := loadPolicy(t, yaml, mvsLines)
	if errors.Is(err, errWaitingForMVS) {
		t.Skip("waiting for the mvs route key")
	}
	listen := "127.0.0.1:0"
	if m.ipv6 {
		listen = "[::1]:0"
	}
	g := startGate(t, pol, listen, batchPass, netrcPass, partnerPass)

	deckFile := filepath.Join("decks", dc.name+".deck")
	if variant == "unix" {
		if p := filepath.Join("decks", "unix", dc.name+".deck"); fileExists(p) {
			deckFile = p
		}
	}
	text := readFile(t, deckFile)
	var netrc []NetrcEntry
	if p := filepath.Join("decks", dc.name+".netrc"); fileExists(p) {
		if netrc, err = ParseNetrc(readFile(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	symbols := map[string]string{}
	if partner != nil {
		symbols["PARTNER"] = partner.Addr
	}
	deck, err := ParseDeck(deckFile, text, len(netrc) > 0, symbols)
	if err != nil {
		t.Fatal(err)
	}
	fd := DefaultFTPData()
	if p := filepath.Join("decks", dc.name+".ftpdata"); fileExists(p) {
		if fd, err = ParseFTPData(readFile(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	fd.FWFriendly, fd.EPSV4, fd.InactTime = m.fwFriendly, m.epsv4, deckInactTime

	ds := NewDataSets(t.TempDir())
	localSeed(t, ds)
	job := &Job{Deck: deck, Addr: g.Addr, FTPData: fd, Netrc: netrc, Exit: dc.exit, Local: ds, LocalPrefix: "ZOSJOB.", RecvRate: dc.recvRate}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res := job.Run(ctx)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ZOSDEBUG") != "" {
			t.Logf("job output (%s, %s, %s):\n%s", variant, m.name, deckFile, res.Log.String())
		}
	})

	if dc.knownBug != nil && dc.knownBug.symptom(res) {
		*note = "known bug"
		t.Skipf("known ftpgate bug: %s", dc.knownBug.note)
	}
	for _, v := range res.Violations {
		t.Errorf("protocol violation: %s", v)
	}
	checkEnded(t, res, dc.ended)
	var errs, ignored []string
	for _, f := range res.Errors {
		code := f.Subcommand + " local"
		if f.Command != "" {
			code = f.Subcommand + " " + strconv.Itoa(f.Code)
		}
		if f.Ignored {
			ignored = append(ignored, code)
		} else {
			errs = append(errs, code)
		}
	}
	if !codesMatch(errs, dc.errors) {
		t.Errorf("errors %q; want %q", errs, dc.errors)
	}
	if dc.ignored != nil && !codesMatch(ignored, dc.ignored) {
		t.Errorf("ignored errors %q; want %q", ignored, dc.ignored)
	}
	for _, x := range res.Transfers {
		if x.DataCmd != "" && x.DataCmd != m.cmd {
			t.Errorf("%s used %s; want %s in this mode", x.Command, x.DataCmd, m.cmd)
		}
		if x.Final/100 == 2 && x.Confidence != ConfHigh {
			t.Errorf("%s: confidence %s (%s); want High", x.Command, x.Confidence, x.Why)
		}
	}
	checkTypeCommands(t, deck, res)

	// The gate's own verdict on the same transfers.
	for _, r := range g.records(t) {
		if r.Record == "transfer" && r.Result == "ok" && r.Confidence != "high" {
			t.Errorf("gate record: %s %s confidence %q; want high", r.Direction, r.Name, r.Confidence)
		}
	}

	up := dc.up
	if variant == "unix" && dc.unixUp != nil {
		up = dc.unixUp
	}
	if dc.partner {
		assertTree(t, "partner", partnerRoot, up)
		assertTree(t, "route directory", root, startTree)
	} else {
		want := startTree
		for _, k := range dc.gone {
			delete(want, k)
		}
		for k, v := range up {
			want[k] = v
		}
		assertTree(t, "upstream", root, want)
	}
	for name, recs := range dc.local {
		n, _ := ResolveLocal("", "'"+name+"'")
		got, err := ds.Records(n)
		if err != nil {
			t.Errorf("local %s: %v", n.Quoted(), err)
			continue
		}
		if !slices.Equal(got, recs) {
			t.Errorf("local %s: %d records, first difference at %s; want %d records", n.Quoted(), len(got), firstDiff(got, recs), len(recs))
		}
	}
	for name, want := range dc.localBin {
		n, _ := ResolveLocal("", "'"+name+"'")
		got, err := ds.Read(n)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("local %s: %d bytes (err %v); want the %d bytes sent", n.Quoted(), len(got), err, len(want))
		}
	}
	for _, name := range dc.localAbsent {
		n, _ := ResolveLocal("", "'"+name+"'")
		if ds.Exists(n) {
			t.Errorf("local %s exists; want none", n.Quoted())
		}
	}
	if dc.check != nil {
		dc.check(t, res)
	}
}

// deckPolicy is the policy for one deck run: routes ZOSBATCH and ZOSNETRC
// to dir on s (local logins, the partner reached with s's key), with the
// mvs key when mvs is set, and user@host logins to partner when it is not
// nil. mvsLines are the lines of the mvs keys.
func deckPolicy(t *testing.T, s *peers.SSHD, dir string, mvs bool, partner *translatetest.Server) (string, []int) {
	t.Helper()
	var b strings.Builder
	var mvsLines []int
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format+"\n", args...)
	}
	line("version: 1")
	if partner != nil {
		kh := filepath.Join(t.TempDir(), "partner_known_hosts")
		if err := os.WriteFile(kh, []byte(partner.KnownHostsLine()), 0o600); err != nil {
			t.Fatal(err)
		}
		line("user_at_host:")
		line("  enabled: true")
		line("  allow_hosts: [\"127.0.0.1\"]")
		line("  known_hosts: %q", kh)
	}
	line("routes:")
	for _, r := range []struct{ user, pass string }{{batchUser, batchPass}, {netrcUser, netrcPass}} {
		line("  - name: %s", strings.ToLower(r.user))
		line("    user: %s", r.user)
		line("    auth: local")
		line("    password_bcrypt: %q", bcryptHash(t, r.pass))
		line("    upstream: %q", "sftp://"+s.User+"@"+s.Addr+dir)
		line("    upstream_key: %q", s.ClientKeyFile)
		line("    known_hosts: %q", s.KnownHostsFile)
		if mvs {
			line("    mvs: {mode: map, root: %q, qualifiers_as_dirs: false}", dir)
			mvsLines = append(mvsLines, strings.Count(b.String(), "\n"))
		}
	}
	return b.String(), mvsLines
}

// haveIPv6Loopback reports whether a listener on [::1] works here.
func haveIPv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// checkEnded compares how the job ended with want ("" or "sub code|code").
func checkEnded(t *testing.T, res *Result, want string) {
	t.Helper()
	got := ""
	if res.Ended != nil {
		got = res.Ended.Subcommand + " " + strconv.Itoa(res.Ended.Code)
		if res.Ended.Command == "" {
			got = res.Ended.Subcommand + " local"
		}
	}
	if !codesMatch([]string{got}, []string{want}) {
		t.Errorf("job ended by %q (%v); want %q", got, res.Ended, want)
	}
}

// codesMatch compares error lists; a wanted code may list alternatives,
// "mget 450|550".
func codesMatch(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		gs, gc, _ := strings.Cut(got[i], " ")
		ws, wc, _ := strings.Cut(want[i], " ")
		if gs != ws || !slices.Contains(strings.Split(wc, "|"), gc) {
			return false
		}
	}
	return true
}

// checkTypeCommands checks the z/OS rule that TYPE is sent only for the
// ascii and binary subcommands the job reached.
func checkTypeCommands(t *testing.T, deck *Deck, res *Result) {
	t.Helper()
	typed := 0
	for _, c := range deck.Cmds {
		if c.Name == "ascii" || c.Name == "binary" {
			typed++
		}
	}
	if n := countPrefix(res.Sent, "TYPE "); n > typed {
		t.Errorf("the client sent %d TYPE commands for %d ascii/binary subcommands", n, typed)
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func assertSent(t *testing.T, res *Result, line string) {
	t.Helper()
	if !slices.Contains(res.Sent, line) {
		t.Errorf("the client did not send %q; sent %q", line, res.Sent)
	}
}

// assertSentBefore checks that line was sent, later followed by a command
// starting with next, with only PORT/EPRT/PASV/EPSV between them.
func assertSentBefore(t *testing.T, res *Result, line, next string) {
	t.Helper()
	i := slices.Index(res.Sent, line)
	if i < 0 {
		t.Errorf("the client did not send %q; sent %q", line, res.Sent)
		return
	}
	for _, l := range res.Sent[i+1:] {
		verb, _, _ := strings.Cut(l, " ")
		switch verb {
		case "PORT", "EPRT", "PASV", "EPSV":
			continue
		}
		if !strings.HasPrefix(l, next) {
			t.Errorf("%q was followed by %q; want %s...", line, l, next)
		}
		return
	}
}

// writeTree writes files (slash paths relative to dir).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns every regular file under dir by slash path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return out
}

// assertTree fails t unless dir holds exactly the files in want.
func assertTree(t *testing.T, what, dir string, want map[string]string) {
	t.Helper()
	got := readTree(t, dir)
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, name)
		case g != w:
			t.Errorf("%s: %s has %d bytes, first difference at byte %d; want %d bytes", what, name, len(g), diffAt(g, w), len(w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected file %s (%d bytes)", what, name, len(got[name]))
		}
	}
}

func diffAt(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func firstDiff(got, want []string) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("record %d: %q, want %q", i+1, got[i], want[i])
		}
	}
	return fmt.Sprintf("record %d", min(len(got), len(want))+1)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
