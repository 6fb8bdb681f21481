package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FsyncPolicy says when a FileSink makes its writes durable. The zero
// value is FsyncEvery.
type FsyncPolicy time.Duration

const (
	// FsyncEvery syncs after every record: a record Write returned nil for
	// survives a crash of the machine. It costs one fsync per record (tens
	// of microseconds on an SSD, milliseconds on a disk or network volume).
	FsyncEvery FsyncPolicy = 0
	// FsyncNever leaves syncing to the kernel (dirty pages are written back
	// within about 30 s on Linux): a process crash loses nothing, a machine
	// crash may lose the last records.
	FsyncNever FsyncPolicy = -1
)

// FsyncInterval syncs at most d after a record was written, from a timer,
// so that the last records before a quiet spell are synced too. A failed
// timed sync is reported by the next Write (wrapping ErrNotDurable). d <= 0
// gives FsyncEvery.
func FsyncInterval(d time.Duration) FsyncPolicy {
	if d <= 0 {
		return FsyncEvery
	}
	return FsyncPolicy(d)
}

// String describes the policy: "every", "never" or the interval.
func (p FsyncPolicy) String() string {
	switch {
	case p == FsyncEvery:
		return "every"
	case p < 0:
		return "never"
	}
	return time.Duration(p).String()
}

// FileOptions configures a FileSink. NewFileSink copies it.
type FileOptions struct {
	// Fsync is the sync policy; the zero value is FsyncEvery.
	Fsync FsyncPolicy
	// MaxBytes rotates the file before a record would make it larger than
	// this: the file is renamed to RotatedName(path, now) and a new one is
	// created at path. The new file continues the chain (verify the files
	// in name order, the current one last). Zero or negative means no size
	// rotation. A single record larger than MaxBytes still goes into a
	// file of its own.
	MaxBytes int64
	// Now names rotated files. Nil means time.Now.
	Now func() time.Time
}

// rotatedLayout is the time layout of a rotated file's suffix: UTC to the
// nanosecond, fixed width, so that the names sort in the order of rotation
// and a shell glob (audit.log.*) lists them oldest first.
const rotatedLayout = "20060102T150405.000000000Z"

// RotatedName is the name a FileSink gives the file at path when it rotates
// it at time t: path + "." + t in UTC as 20060102T150405.000000000Z.
func RotatedName(path string, t time.Time) string {
	return path + "." + t.UTC().Format(rotatedLayout)
}

// FileSink appends records to a file. The file is opened with O_APPEND, so
// each record lands at the end in one write even if another process
// appends too, and created with mode 0600 (records name users and files).
//
// External rotation works by rename, then Rotate (Emitter.Rotate): the sink
// keeps writing to the renamed file until Rotate reopens the path.
// logrotate's copytruncate is not supported: truncating the file under the
// sink loses the records written between the copy and the truncation, and
// breaks the chain.
type FileSink struct {
	path string      // immutable
	opt  FileOptions // immutable

	mu      sync.Mutex // guards the fields below
	f       *os.File   // nil after Close
	size    int64      // bytes in f as far as this sink knows
	partial bool       // f ends without a newline: the next write starts with one
	dirty   bool       // written since the last sync (FsyncInterval)
	timer   *time.Timer
	syncErr error // a failed timed sync or rotation close, reported by the next Write
	buf     []byte
}

var (
	_ Sink    = (*FileSink)(nil)
	_ Rotator = (*FileSink)(nil)
)

// NewFileSink opens (or creates) the file at path for appending.
//
// If the file does not end with a newline (a crash cut the last record),
// the next record starts on a new line: the cut record stays visible to
// Verify as one malformed line instead of being glued to its successor.
func NewFileSink(path string, opt FileOptions) (*FileSink, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &FileSink{path: path, opt: opt}
	if err := s.openLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// String names the sink in errors.
func (s *FileSink) String() string { return "file " + s.path }

// openLocked opens s.path and learns its size and whether it ends in a
// newline.
func (s *FileSink) openLocked() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: file %s: %w", s.path, err)
	}
	partial := false
	if fi.Mode().IsRegular() && fi.Size() > 0 {
		partial, err = endsWithoutNewline(s.path, fi.Size())
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: file %s: %w", s.path, err)
		}
	}
	if s.opt.Fsync != FsyncNever {
		// Make the file's directory entry durable too: a synced record
		// in a file whose creation was lost is lost.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			f.Close()
			return fmt.Errorf("audit: file %s: %w", s.path, err)
		}
	}
	s.f, s.size, s.partial = f, fi.Size(), partial
	return nil
}

func endsWithoutNewline(path string, size int64) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil {
		return false, err
	}
	return b[0] != '\n', nil
}

// syncDir fsyncs a directory so that a new or renamed entry in it is
// durable. File systems that cannot sync a directory are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

// Write appends line and "\n" in one write, rotating first if MaxBytes
// says so, and syncs as the policy says. A short write leaves a partial
// line; the next write starts with a newline so that it stands alone.
func (s *FileSink) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("audit: file %s: %w", s.path, fs.ErrClosed)
	}
	need := int64(len(line)) + 1
	if s.opt.MaxBytes > 0 && s.size > 0 && s.size+need > s.opt.MaxBytes {
		if err := s.rotateLocked(true); err != nil {
			return err
		}
	}
	s.buf = s.buf[:0]
	if s.partial {
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(append(s.buf, line...), '\n')
	n, err := s.f.Write(s.buf)
	s.size += int64(n)
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			s.partial = true
		}
		return fmt.Errorf("audit: file %s: %w", s.path, err)
	}
	s.partial = false
	switch {
	case s.opt.Fsync == FsyncEvery:
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("audit: file %s: sync: %w: %w", s.path, ErrNotDurable, err)
		}
	case s.opt.Fsync > 0:
		s.dirty = true
		if s.timer == nil {
			s.timer = time.AfterFunc(time.Duration(s.opt.Fsync), s.timedSync)
		}
	}
	if err := s.syncErr; err != nil {
		s.syncErr = nil
		return fmt.Errorf("audit: file %s: earlier records: %w: %w", s.path, ErrNotDurable, err)
	}
	return nil
}

// timedSync runs on the FsyncInterval timer.
func (s *FileSink) timedSync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if s.f == nil || !s.dirty {
		return
	}
	s.dirty = false
	if err := s.f.Sync(); err != nil && s.syncErr == nil {
		s.syncErr = err
	}
}

// Rotate reopens the path after an external tool renamed the file. The
// old file is synced (unless FsyncNever) and closed.
func (s *FileSink) Rotate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("audit: file %s: %w", s.path, fs.ErrClosed)
	}
	return s.rotateLocked(false)
}

// rotateLocked switches to a new file at s.path; with rename, it first
// renames the current one to its RotatedName. If the new file cannot be
// opened, the rename is undone and the sink keeps the old file.
func (s *FileSink) rotateLocked(rename bool) error {
	old := s.f
	if rename {
		to := RotatedName(s.path, s.opt.Now())
		if _, err := os.Lstat(to); err == nil {
			return fmt.Errorf("audit: file %s: rotate: %s exists", s.path, to)
		}
		if err := os.Rename(s.path, to); err != nil {
			return fmt.Errorf("audit: file %s: rotate: %w", s.path, err)
		}
		if err := s.openLocked(); err != nil {
			_ = os.Rename(to, s.path)
			s.f = old
			return err
		}
	} else if err := s.openLocked(); err != nil {
		s.f = old
		return err
	}
	// The switch is done; a failure to sync or close the old file no longer
	// keeps a record out of the new one, but its last records may not be
	// durable: the next Write reports that.
	if err := s.closeFile(old); err != nil && s.syncErr == nil {
		s.syncErr = err
	}
	return nil
}

// closeFile syncs (unless FsyncNever) and closes f.
func (s *FileSink) closeFile(f *os.File) error {
	var err error
	if s.opt.Fsync != FsyncNever && (s.opt.Fsync == FsyncEvery || s.dirty) {
		err = f.Sync()
	}
	s.dirty = false
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: file %s: close: %w", s.path, err)
	}
	return nil
}

// Close syncs and closes the file. Later writes fail with fs.ErrClosed.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	f := s.f
	s.f = nil
	return s.closeFile(f)
}
