// Package translate carries an FTP session's file operations to the real
// partner over a secure protocol.
//
// The proxy package speaks FTP to the client and calls an Upstream for every
// operation that touches the partner. The interface is shaped by FTP (retrieve
// a file into the client's data connection, store the client's data
// connection into a file), not by SFTP, so that the FTPS backend, the pooled
// and striped transfer engine and the resume logic can live behind it without
// the proxy changing. Operations that only some backends offer (MFMT, SITE
// CHMOD, connection facts for the audit trail) are optional interfaces found
// by type assertion, as pkg/sftp and net/http do.
//
// Every backend normalises its errors once, into the sentinels below, so the
// proxy can choose an FTP reply with errors.Is and never sees an SFTP, SSH or
// TLS error type.
package translate

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/ftpgate/ftpgate/policy"
)

// Upstream is one logged-in session with a partner. Paths are absolute,
// slash-separated names in the partner's namespace; the proxy resolves the
// client's working directory before it calls. Methods may be called from one
// goroutine at a time per session, except Close, which may be called at any
// time to abort whatever is in flight.
type Upstream interface {
	// Home returns the absolute directory the partner puts a new session
	// in, the client's first working directory when the route names none.
	Home(ctx context.Context) (string, error)
	// Stat describes one file or directory.
	Stat(ctx context.Context, name string) (fs.FileInfo, error)
	// ReadDir lists a directory. Backends cap the number of entries they
	// return (ErrTooLarge beyond it) so a hostile directory cannot exhaust
	// memory.
	ReadDir(ctx context.Context, dir string) ([]fs.FileInfo, error)
	// Retrieve copies the file from offset to its end into w and returns the
	// number of bytes written to w. It fails with an error wrapping
	// ErrShortTransfer if fewer bytes arrived than the partner said the file
	// holds, so a short read never passes for a complete file.
	Retrieve(ctx context.Context, name string, offset int64, w io.Writer) (int64, error)
	// Store copies r until io.EOF into the named file and returns the bytes
	// read from r. Unless opt says otherwise the data goes to a temporary
	// name beside the target, which is renamed over the target only after
	// the partner confirmed every byte, so an interrupted upload never
	// appears under its final name. Any error from r aborts the store.
	Store(ctx context.Context, name string, r io.Reader, opt StoreOptions) (int64, error)
	Remove(ctx context.Context, name string) error
	Rename(ctx context.Context, from, to string) error
	Mkdir(ctx context.Context, name string) error
	Rmdir(ctx context.Context, name string) error
	// Close ends the session with the partner. It interrupts operations in
	// flight, which then fail with an error wrapping ErrConnLost.
	Close() error
}

// Dialer opens an Upstream for a login the policy allowed. password is the
// client's password on passthrough routes and empty otherwise (the route's
// own secret or key is used). The pooled transfer engine is a Dialer too.
type Dialer interface {
	Dial(ctx context.Context, up policy.Upstream, password Password) (Upstream, error)
}

// StoreOptions says how Store writes. The zero value writes a new file
// through a temporary name.
type StoreOptions struct {
	// Offset, when positive, continues an earlier upload in place: the
	// existing file is written from Offset on (FTP REST before STOR).
	Offset int64
	// Append adds to the end of the existing file, creating it if missing
	// (FTP APPE). Appends are written in place.
	Append bool
}

// Chtimer sets a file's modification time (FTP MFMT).
type Chtimer interface {
	Chtimes(ctx context.Context, name string, mtime time.Time) error
}

// Chmoder sets a file's permission bits (FTP SITE CHMOD).
type Chmoder interface {
	Chmod(ctx context.Context, name string, mode fs.FileMode) error
}

// Describer reports facts about the secured connection for the records:
// protocol, negotiated algorithms and the partner's key fingerprint.
type Describer interface {
	ConnInfo() ConnInfo
}

// ConnInfo describes an upstream connection. Fields a backend cannot know
// are empty.
type ConnInfo struct {
	Protocol      string `json:"protocol"` // "sftp", "ftps", "ftpes"
	Endpoint      string `json:"endpoint"` // host:port dialled
	ServerVersion string `json:"server_version,omitempty"`
	HostKey       string `json:"host_key,omitempty"` // SHA256:... fingerprint of the SSH host key or TLS certificate
	HostKeyType   string `json:"host_key_type,omitempty"`
	// SSH facts: the algorithms of the last key exchange.
	KeyExchange string `json:"kex,omitempty"`
	Cipher      string `json:"cipher,omitempty"` // client to server
	MAC         string `json:"mac,omitempty"`    // empty for AEAD ciphers
	// TLS facts, for FTPS partners.
	TLSVersion  string `json:"tls_version,omitempty"`  // "TLS 1.3"
	CipherSuite string `json:"cipher_suite,omitempty"` // tls.CipherSuiteName
	PeerSubject string `json:"peer_subject,omitempty"` // the partner certificate's subject
	// Insecure is set for a plain-FTP upstream allowed by a warn rule.
	Insecure bool `json:"insecure,omitempty"`
}

// Sentinel errors. Backends wrap them (fmt.Errorf("...: %w", ErrNotFound)),
// and the proxy maps them to FTP replies in one place.
var (
	ErrNotFound      = fs.ErrNotExist
	ErrPermission    = fs.ErrPermission
	ErrExist         = fs.ErrExist
	ErrNoSpace       = errors.New("translate: no space left upstream")
	ErrNotDir        = errors.New("translate: not a directory")
	ErrIsDir         = errors.New("translate: is a directory")
	ErrNotEmpty      = errors.New("translate: directory not empty")
	ErrUnsupported   = errors.New("translate: operation not supported by the partner")
	ErrConnLost      = errors.New("translate: connection to the partner lost")
	ErrShortTransfer = errors.New("translate: transfer shorter than the partner's file size")
	ErrTooLarge      = errors.New("translate: listing exceeds the configured limit")
	// ErrAuth means the partner refused the credentials.
	ErrAuth = errors.New("translate: partner refused the login")
	// ErrUnreachable means no connection to the partner could be made.
	ErrUnreachable = errors.New("translate: partner unreachable")
)

// HostKeyError reports a partner whose host key (or certificate) is not the
// one configured. Unknown is true when no key is recorded for the host at
// all; false means a key is recorded and a different one was presented,
// which may be an attack.
type HostKeyError struct {
	Host        string
	Unknown     bool
	Fingerprint string // what the partner presented
}

func (e *HostKeyError) Error() string {
	if e.Unknown {
		return "translate: host key of " + e.Host + " is unknown (" + e.Fingerprint + ")"
	}
	return "translate: host key of " + e.Host + " changed (" + e.Fingerprint + ")"
}

// Reply is an FTP reply from a partner that speaks FTP itself (FTPS),
// relayed to the client as it came: code and every line of text.
type Reply struct {
	Code  int
	Lines []string
}

// Forwarder is implemented by backends whose partner speaks FTP (FTPS). The
// proxy then passes the client's dialogue through instead of translating
// it: SITE parameters, quoted MVS names, TYPE and MODE (so TYPE A
// conversion is the partner's business), and listings come back exactly as
// the partner sent them. The proxy keeps the login, the client's data
// connections (PORT/EPRT/PASV/EPSV), ABOR, QUIT, NOOP and the security
// refusals (AUTH, PROT, CCC) to itself.
type Forwarder interface {
	// Forward sends one command that uses no data connection and returns
	// the partner's reply.
	Forward(ctx context.Context, verb, arg string) (Reply, error)
	// Transfer runs a command that uses a data connection (RETR, STOR,
	// STOU, APPE, LIST, NLST, MLSD). The backend opens its own protected
	// data connection to the partner and sends the command; when the
	// partner answers with a preliminary reply (1yz) it calls open with
	// that reply, and open returns the client's data connection (the proxy
	// opens it and sends its own 150). The backend then copies between the
	// two in the direction the verb implies and returns the partner's
	// final reply and the number of bytes copied. If the partner refuses
	// the command (no 1yz), open is never called and the refusal is the
	// final reply. Cancelling ctx aborts the transfer on the partner (ABOR).
	Transfer(ctx context.Context, verb, arg string, open func(prelim Reply) (io.ReadWriter, error)) (final Reply, n int64, err error)
}
