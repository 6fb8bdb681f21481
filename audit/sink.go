package audit

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Sink is where records go. An Emitter calls Write once per record per
// sink, from one goroutine at a time, in seq order.
//
// line is one complete JSON record without a trailing newline; the sink
// adds the "\n" (or its own framing) and must deliver the line in one piece
// or report that it did not. line is only valid during the call: the
// Emitter reuses its memory.
//
// Write returns nil once the record is delivered as far as the sink can
// tell. Any other error means the Emitter will offer the same record again
// later (see Options.Backlog), unless the error wraps ErrNotDurable: the
// record was written but may not survive a crash, so it must not be written
// twice. Close releases the sink; the Emitter does not call Write after it.
type Sink interface {
	Write(line []byte) error
	Close() error
}

// Rotator is a Sink that can reopen its destination after an external tool
// renamed it. Emitter.Rotate calls it.
type Rotator interface {
	Rotate() error
}

// ErrNotDurable is wrapped by a sink's Write error when the record was
// written but could not be made durable (a failed fsync). The Emitter
// counts the failure and reports it through Err, but does not write the
// record again, which would duplicate it.
var ErrNotDurable = errors.New("audit: record written but not durable")

// sinkName names s in errors and SinkError: its String method, else its
// type.
func sinkName(s Sink) string {
	if st, ok := s.(fmt.Stringer); ok {
		return st.String()
	}
	return fmt.Sprintf("%T", s)
}

// WriterSink writes records as JSON lines to an io.Writer, such as
// os.Stdout for a container's log collector.
type WriterSink struct {
	mu  sync.Mutex // guards buf and serialises writes to w
	w   io.Writer  // never nil
	buf []byte
}

var _ Sink = (*WriterSink)(nil)

// NewWriterSink returns a sink that writes each record and its newline to w
// in a single Write call, so that other writers of w (on a terminal, say)
// cannot split a record. The caller keeps ownership of w: Close does not
// close it.
func NewWriterSink(w io.Writer) *WriterSink {
	return &WriterSink{w: w}
}

// Write writes line and "\n" with one call to the writer.
func (s *WriterSink) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(append(s.buf[:0], line...), '\n')
	n, err := s.w.Write(s.buf)
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("audit: writer: %w", err)
	}
	return nil
}

// Close does nothing: the writer belongs to the caller.
func (s *WriterSink) Close() error { return nil }

// String names the sink in errors.
func (s *WriterSink) String() string { return "writer" }
