package zos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The emulator's local data sets are files in a directory: the sequential
// data set 'ZOSJOB.PAY.DATA' is the file ZOSJOB.PAY.DATA, a partitioned
// data set (PDS) is a directory and its members the files in it
// ('ZOSJOB.SRC.JCL(JOBA)' is ZOSJOB.SRC.JCL/JOBA). A text data set holds
// one record per line, with "\n" after each; record comparison compares
// those lines. A binary data set holds its bytes.

// Attrs are the DCB attributes of a data set, as SENDSITE reports them and
// LOCSITE sets them for data sets a GET creates.
type Attrs struct {
	RECFM   string // F, FB, V, VB, U
	LRECL   int
	BLKSIZE int
}

// DefaultAttrs are the attributes of a data set the test made without
// saying otherwise: card images, half-track blocking.
var DefaultAttrs = Attrs{RECFM: "FB", LRECL: 80, BLKSIZE: 27920}

// defaultNewAttrs are what the z/OS client gives a data set that a GET
// creates when no LOCSITE said otherwise (FTP.DATA defaults: RECFM VB,
// LRECL 256, BLKSIZE 6233).
var defaultNewAttrs = Attrs{RECFM: "VB", LRECL: 256, BLKSIZE: 6233}

// siteParams is the SITE command SENDSITE sends before a PUT of a data set
// with these attributes: "FIXrecfm 80 LRECL=80 RECFM=FB BLKSIZE=27920" for
// fixed records, "VARrecfm LRECL=... RECFM=VB BLKSIZE=..." for variable.
func (a Attrs) siteParams() string {
	switch {
	case strings.HasPrefix(a.RECFM, "F"):
		return fmt.Sprintf("FIXrecfm %d LRECL=%d RECFM=%s BLKSIZE=%d", a.LRECL, a.LRECL, a.RECFM, a.BLKSIZE)
	case strings.HasPrefix(a.RECFM, "V"):
		return fmt.Sprintf("VARrecfm LRECL=%d RECFM=%s BLKSIZE=%d", a.LRECL, a.RECFM, a.BLKSIZE)
	}
	return fmt.Sprintf("RECFM=%s BLKSIZE=%d", a.RECFM, a.BLKSIZE)
}

// maxRecord is the longest record a data set with a can hold: LRECL for
// fixed records, LRECL less the 4-byte record descriptor for variable
// ones, and 0 (no limit checked) for undefined.
func (a Attrs) maxRecord() int {
	switch {
	case strings.HasPrefix(a.RECFM, "F"):
		return a.LRECL
	case strings.HasPrefix(a.RECFM, "V"):
		return a.LRECL - 4
	}
	return 0
}

// applyLocsite sets the attributes named in LOCSITE parameters (RECFM=,
// LRECL=, BLKSIZE=, in any case); other parameters change nothing the
// emulator models.
func (a Attrs) applyLocsite(params string) Attrs {
	for _, p := range strings.Fields(params) {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		switch strings.ToUpper(k) {
		case "RECFM":
			a.RECFM = strings.ToUpper(v)
		case "LRECL":
			if n, err := strconv.Atoi(v); err == nil {
				a.LRECL = n
			}
		case "BLKSIZE", "BLOCKSIZE":
			if n, err := strconv.Atoi(v); err == nil {
				a.BLKSIZE = n
			}
		}
	}
	return a
}

// DSName is a fully qualified local name: a data set, or a member of one.
type DSName struct {
	DSN    string // upper case, qualifiers joined by periods
	Member string // "" for a sequential data set
}

// Quoted is the name as a z/OS command writes it fully qualified:
// 'ZOSJOB.PAY.DATA' or 'ZOSJOB.SRC.JCL(JOBA)'.
func (n DSName) Quoted() string {
	if n.Member == "" {
		return "'" + n.DSN + "'"
	}
	return "'" + n.DSN + "(" + n.Member + ")'"
}

// LocalCWD is the client's local working directory, set by LCD: a prefix
// ("ZOSJOB.") under which unquoted names are completed, or a PDS
// ("ZOSJOB.SRC.JCL(") whose members unquoted simple names are.
type LocalCWD string

func (c LocalCWD) isPDS() bool { return strings.HasSuffix(string(c), "(") }

// ResolveLocal turns a local name as a deck writes it into a DSName:
// 'A.B' and 'A.PDS(MEM)' are fully qualified; an unquoted name is a member
// when cwd is a PDS and the name is simple, otherwise it is completed with
// the prefix.
func ResolveLocal(cwd LocalCWD, name string) (DSName, error) {
	quoted := strings.HasPrefix(name, "'")
	body := strings.ToUpper(strings.Trim(name, "'"))
	if body == "" {
		return DSName{}, errors.New("empty data set name")
	}
	var n DSName
	if i := strings.IndexByte(body, '('); i >= 0 {
		if !strings.HasSuffix(body, ")") {
			return DSName{}, fmt.Errorf("bad data set name %s", name)
		}
		n.Member = body[i+1 : len(body)-1]
		body = body[:i]
	}
	switch {
	case quoted:
		n.DSN = body
	case cwd.isPDS() && n.Member == "" && !strings.Contains(body, "."):
		n.DSN, n.Member = strings.TrimSuffix(string(cwd), "("), body
	default:
		n.DSN = string(cwd) + body
	}
	if n.DSN == "" || strings.ContainsAny(n.DSN+n.Member, `/\ `) || strings.Contains(n.DSN, "..") {
		return DSName{}, fmt.Errorf("bad data set name %s", name)
	}
	return n, nil
}

// DataSets are the local data sets of one job.
type DataSets struct {
	Dir   string
	attrs map[string]Attrs // by DSN; DefaultAttrs when absent
}

// NewDataSets returns an empty catalog over dir, which must exist.
func NewDataSets(dir string) *DataSets {
	return &DataSets{Dir: dir, attrs: map[string]Attrs{}}
}

func (d *DataSets) file(n DSName) string {
	if n.Member == "" {
		return filepath.Join(d.Dir, n.DSN)
	}
	return filepath.Join(d.Dir, n.DSN, n.Member)
}

// Attrs returns the attributes of dsn.
func (d *DataSets) Attrs(dsn string) Attrs {
	if a, ok := d.attrs[dsn]; ok {
		return a
	}
	return DefaultAttrs
}

// SetAttrs records dsn's attributes.
func (d *DataSets) SetAttrs(dsn string, a Attrs) { d.attrs[dsn] = a }

// AllocPDS creates an empty PDS.
func (d *DataSets) AllocPDS(dsn string) error {
	return os.MkdirAll(filepath.Join(d.Dir, dsn), 0o755)
}

// IsPDS reports whether dsn is a partitioned data set.
func (d *DataSets) IsPDS(dsn string) bool {
	fi, err := os.Stat(filepath.Join(d.Dir, dsn))
	return err == nil && fi.IsDir()
}

// Exists reports whether the data set or member exists.
func (d *DataSets) Exists(n DSName) bool {
	fi, err := os.Stat(d.file(n))
	return err == nil && fi.Mode().IsRegular()
}

// Read returns the bytes of a data set or member.
func (d *DataSets) Read(n DSName) ([]byte, error) {
	if n.Member == "" && d.IsPDS(n.DSN) {
		return nil, fmt.Errorf("%s is a PDS; name a member", n.Quoted())
	}
	b, err := os.ReadFile(d.file(n))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("data set %s not found", n.Quoted())
	}
	return b, err
}

// Write stores data as the data set or member, creating it with attrs when
// it is new (a member goes into an existing PDS only).
func (d *DataSets) Write(n DSName, data []byte, attrs Attrs) error {
	if n.Member != "" && !d.IsPDS(n.DSN) {
		return fmt.Errorf("%s is not a PDS", n.DSN)
	}
	if _, ok := d.attrs[n.DSN]; !ok && !d.Exists(n) {
		d.attrs[n.DSN] = attrs
	}
	return os.WriteFile(d.file(n), data, 0o644)
}

// PutRecords writes records as a text data set, one line each.
func (d *DataSets) PutRecords(n DSName, records []string, attrs Attrs) error {
	return d.Write(n, []byte(joinRecords(records)), attrs)
}

// Records returns a text data set's records.
func (d *DataSets) Records(n DSName) ([]string, error) {
	b, err := d.Read(n)
	if err != nil {
		return nil, err
	}
	return splitRecords(string(b)), nil
}

// Match returns the names matching a local pattern for MPUT, sorted:
// members of a PDS ('A.PDS(JOB*)', or JOB* when cwd is a PDS) or data sets
// under a prefix ('ZOSJOB.X*').
func (d *DataSets) Match(cwd LocalCWD, pattern string) ([]DSName, error) {
	n, err := ResolveLocal(cwd, pattern)
	if err != nil {
		return nil, err
	}
	var out []DSName
	if n.Member != "" {
		entries, err := os.ReadDir(filepath.Join(d.Dir, n.DSN))
		if err != nil {
			return nil, fmt.Errorf("PDS %s not found", n.DSN)
		}
		for _, e := range entries {
			if ok, _ := path.Match(n.Member, e.Name()); ok && e.Type().IsRegular() {
				out = append(out, DSName{DSN: n.DSN, Member: e.Name()})
			}
		}
	} else {
		entries, err := os.ReadDir(d.Dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if ok, _ := path.Match(n.DSN, e.Name()); ok && e.Type().IsRegular() {
				out = append(out, DSName{DSN: e.Name()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DSN+out[i].Member < out[j].DSN+out[j].Member })
	return out, nil
}

// joinRecords is the local form of records: each followed by "\n".
func joinRecords(records []string) string {
	if len(records) == 0 {
		return ""
	}
	return strings.Join(records, "\n") + "\n"
}

// splitRecords is the inverse of joinRecords; a last line without "\n" is
// a record too.
func splitRecords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
