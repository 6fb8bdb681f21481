package audit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFileSinkFsyncPolicies(t *testing.T) {
	key, _ := testKey(t)
	tests := []struct {
		name   string
		policy FsyncPolicy
		want   string
	}{
		{"every", FsyncEvery, "every"},
		{"interval", FsyncInterval(time.Millisecond), "1ms"},
		{"never", FsyncNever, "never"},
		{"zero interval is every", FsyncInterval(0), "every"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.policy.String(); got != tc.want {
				t.Errorf("String: got %q; want %q", got, tc.want)
			}
			path := filepath.Join(t.TempDir(), "audit.log")
			fsink, err := NewFileSink(path, FileOptions{Fsync: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewEmitter(Options{Sinks: []Sink{fsink}, Key: key, Now: fakeClock()})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				e.Command(sess, "NOOP", "", 200, "ok", 0)
				if i%10 == 0 {
					// Let an interval timer fire between writes.
					waitFor(t, func() bool {
						fsink.mu.Lock()
						defer fsink.mu.Unlock()
						return tc.policy <= 0 || !fsink.dirty
					})
				}
			}
			if err := e.Err(); err != nil {
				t.Errorf("Err: %v", err)
			}
			if err := e.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			res, err := (&Verifier{Key: key}).VerifyFiles(path)
			if err != nil || !res.OK() || res.Records != 50 {
				t.Errorf("VerifyFiles: got %v, %v; want whole with 50 records", res, err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
				t.Errorf("got mode %v; want 0600", fi.Mode().Perm())
			}
			if err := fsink.Write([]byte("{}")); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Write after Close: got %v; want fs.ErrClosed", err)
			}
		})
	}
}

func TestFileSinkSizeRotation(t *testing.T) {
	key, _ := testKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	const maxBytes = 4 << 10
	clock := fakeClock()
	fsink, err := NewFileSink(path, FileOptions{Fsync: FsyncNever, MaxBytes: maxBytes, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEmitter(Options{Sinks: []Sink{fsink}, Key: key, Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		e.Command(sess, "NOOP", "", 200, "ok", 0)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) < 3 {
		t.Fatalf("got %d rotated files; want several", len(rotated))
	}
	if !slices.IsSorted(rotated) {
		t.Errorf("glob order is not sorted: %v", rotated)
	}
	for _, p := range append(rotated, path) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxBytes || fi.Size() == 0 {
			t.Errorf("%s: got %d bytes; want 1 to %d", p, fi.Size(), maxBytes)
		}
	}
	res, err := (&Verifier{Key: key}).VerifyFiles(append(rotated, path)...)
	if err != nil || !res.OK() || res.Records != 200 {
		t.Errorf("VerifyFiles: got %v, %v; want whole with 200 records", res, err)
	}
	// The glob order is the rotation order even when the clock passes a
	// second, minute or day boundary.
	a := RotatedName("x", time.Date(2026, 1, 1, 23, 59, 59, 999999999, time.UTC))
	b := RotatedName("x", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	if a >= b {
		t.Errorf("RotatedName: %s sorts after %s", a, b)
	}
}

func TestFileSinkCutLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("{\"a\":1}\n{\"cut"), 0o600); err != nil {
		t.Fatal(err)
	}
	fsink, err := NewFileSink(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fsink.Write([]byte(`{"b":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := fsink.Write([]byte(`{"c":3}`)); err != nil {
		t.Fatal(err)
	}
	fsink.Close()
	got, _ := os.ReadFile(path)
	want := "{\"a\":1}\n{\"cut\n{\"b\":2}\n{\"c\":3}\n"
	if string(got) != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestFileSinkRotateReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fsink, err := NewFileSink(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fsink.Close()
	fsink.Write([]byte(`{"n":1}`))
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	fsink.Write([]byte(`{"n":2}`)) // still the renamed file
	if err := fsink.Rotate(); err != nil {
		t.Fatal(err)
	}
	fsink.Write([]byte(`{"n":3}`))
	old, _ := os.ReadFile(path + ".old")
	cur, _ := os.ReadFile(path)
	if string(old) != "{\"n\":1}\n{\"n\":2}\n" || string(cur) != "{\"n\":3}\n" {
		t.Errorf("got old %q, current %q; want records 1 and 2, then 3", old, cur)
	}
	if !strings.HasPrefix(fsink.String(), "file ") {
		t.Errorf("String: got %q", fsink.String())
	}
}

func TestFileSinkOpenError(t *testing.T) {
	_, err := NewFileSink(filepath.Join(t.TempDir(), "no", "such", "dir", "audit.log"), FileOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v; want fs.ErrNotExist", err)
	}
}

// waitFor polls cond until it holds, failing t after 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d := time.Millisecond; !cond(); d = min(2*d, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 10 s")
		}
		time.Sleep(d)
	}
}
