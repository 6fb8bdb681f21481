package e2e

import (
	"context"
	"testing"

	"github.com/ftpgate/ftpgate/test/peers"
)

// TestRecordsOfCurlUpload checks the audit trail of one curl upload: the
// login's command records (with the PASS argument masked) and a transfer
// record with the direction, the byte counts and the result.
func TestRecordsOfCurlUpload(t *testing.T) {
	t.Parallel()
	s, addr, records, _ := startCurlGate(t)
	const size = 300<<10 + 11
	src := writeFile(t, t.TempDir(), "rec.bin", randomBytes(size))
	curl(t, "-T", src, ftpURL(addr, "rec.bin"))
	assertSameFile(t, "upstream copy", s.Root+"/rec.bin", sumFile(t, src))

	// The records follow the final reply; wait for the session's end.
	ctx, cancel := context.WithTimeout(t.Context(), recordWait)
	defer cancel()
	ended := func() bool {
		return hasRecord(t, records, func(r record) bool { return r.Record == "session_end" })
	}
	if peers.Poll(ctx, ended) != nil {
		t.Fatalf("no session_end record within %v:\n%s", recordWait, records.String())
	}

	var user, pass, xfer []record
	for _, r := range parseRecords(t, records) {
		switch {
		case r.Record == "command" && r.Cmd == "USER":
			user = append(user, r)
		case r.Record == "command" && r.Cmd == "PASS":
			pass = append(pass, r)
		case r.Record == "transfer":
			xfer = append(xfer, r)
		}
	}
	if len(user) != 1 || user[0].Arg != clientUser || user[0].Code != 331 {
		t.Errorf("USER records = %+v; want one with arg %q and code 331", user, clientUser)
	}
	if len(pass) != 1 || pass[0].Arg != "****" || pass[0].Code != 230 || pass[0].User != clientUser {
		t.Errorf("PASS records = %+v; want one with arg \"****\", code 230, user %q", pass, clientUser)
	}
	if len(xfer) != 1 {
		t.Fatalf("transfer records = %+v; want exactly one", xfer)
	}
	x := xfer[0]
	if x.Direction != "store" || x.Name != "rec.bin" || x.Path != s.Root+"/rec.bin" ||
		x.BytesClient != size || x.BytesUpstream != size || x.Result != "ok" || x.Error != "" {
		t.Errorf("transfer record = %+v; want direction store, name rec.bin, path %s/rec.bin, "+
			"bytes_client and bytes_upstream %d, result ok, no error", x, s.Root, size)
	}
}
