package translate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ftpgate/ftpgate/policy"
)

// Password is a password in transit to the partner. Its String and Format
// methods redact it, so it cannot reach a log by accident.
type Password string

func (Password) String() string               { return "[redacted]" }
func (p Password) Format(f fmt.State, _ rune) { io.WriteString(f, "[redacted]") }

// SFTPDialer opens SFTP sessions to partners. Its zero value is ready to use
// with the defaults documented on each field. A dialer may be shared by
// many sessions; it holds no per-session state.
type SFTPDialer struct {
	// DialTimeout bounds the TCP connect. Zero means 10 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the SSH handshake, the login and the SFTP
	// version exchange, which ssh.ClientConfig.Timeout does not cover.
	// Zero means 20 s.
	HandshakeTimeout time.Duration
	// MaxListEntries caps a directory listing. Zero means 100,000.
	MaxListEntries int
	// Getenv resolves environment-variable secrets. Nil means os.Getenv.
	Getenv func(string) string
	// ClientVersion is the SSH identification string. Empty means
	// "SSH-2.0-ftpgate".
	ClientVersion string
}

func (d *SFTPDialer) dialTimeout() time.Duration {
	if d.DialTimeout > 0 {
		return d.DialTimeout
	}
	return 10 * time.Second
}

func (d *SFTPDialer) handshakeTimeout() time.Duration {
	if d.HandshakeTimeout > 0 {
		return d.HandshakeTimeout
	}
	return 20 * time.Second
}

func (d *SFTPDialer) maxList() int {
	if d.MaxListEntries > 0 {
		return d.MaxListEntries
	}
	return 100_000
}

func (d *SFTPDialer) getenv() func(string) string {
	if d.Getenv != nil {
		return d.Getenv
	}
	return os.Getenv
}

// Dial connects to up, checks its host key, logs in and starts SFTP.
// password is the client's password for passthrough routes; for routes with
// their own credentials it is empty and up's password or key is used.
//
// Errors wrap ErrUnreachable (no TCP connection), *HostKeyError (unknown or
// changed host key: the session must be refused), ErrAuth (the partner
// refused the credentials) or ErrConnLost.
func (d *SFTPDialer) Dial(ctx context.Context, up policy.Upstream, password Password) (Upstream, error) {
	conn, err := d.dialSSH(ctx, up, password)
	if err != nil {
		return nil, err
	}
	u, err := d.openSFTP(ctx, conn, up, true)
	if err != nil {
		conn.client.Close()
		return nil, err
	}
	u.release = func() { conn.client.Close() }
	return u, nil
}

// sshConn is a verified, logged-in SSH connection to a partner: the
// shared part of a pooled connection.
type sshConn struct {
	client *ssh.Client
	info   ConnInfo
}

// dialSSH makes the TCP connection, the SSH handshake with the host-key
// check, and the login, under one deadline.
func (d *SFTPDialer) dialSSH(ctx context.Context, up policy.Upstream, password Password) (*sshConn, error) {
	if up.Scheme != "sftp" {
		return nil, fmt.Errorf("translate: scheme %q: %w", up.Scheme, ErrUnsupported)
	}
	addr := up.Address()
	hk, err := newHostKeyChecker(up)
	if err != nil {
		return nil, fmt.Errorf("translate: host keys for %s: %w", addr, err)
	}
	auth, err := d.authMethods(up, password)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              up.User,
		Auth:              auth,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(addr),
		ClientVersion:     d.ClientVersion,
	}
	if cfg.ClientVersion == "" {
		cfg.ClientVersion = "SSH-2.0-ftpgate"
	}

	nd := net.Dialer{Timeout: d.dialTimeout(), KeepAlive: 30 * time.Second}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("translate: dial %s: %w", addr, errors.Join(ErrUnreachable, err))
	}
	// The deadline covers handshake and login; a cancelled context
	// expires it at once.
	conn.SetDeadline(time.Now().Add(d.handshakeTimeout()))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		switch {
		case errors.As(hk.err, &hke):
			return nil, hke
		case hk.ok && !isNetErr(err):
			return nil, fmt.Errorf("translate: login to %s as %q: %w", addr, up.User, ErrAuth)
		default:
			return nil, fmt.Errorf("translate: ssh handshake with %s: %w", addr, errors.Join(ErrConnLost, err))
		}
	}
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("translate: dial %s: %w", addr, ctx.Err())
	}
	conn.SetDeadline(time.Time{})
	var algs ssh.NegotiatedAlgorithms
	if am, ok := c.(ssh.AlgorithmsConnMetadata); ok {
		algs = am.Algorithms()
	}
	return &sshConn{
		client: ssh.NewClient(c, chans, reqs),
		info: ConnInfo{
			Protocol:      "sftp",
			Endpoint:      addr,
			ServerVersion: string(c.ServerVersion()),
			HostKey:       hk.presented,
			HostKeyType:   hk.presentedType,
			KeyExchange:   algs.KeyExchange,
			Cipher:        algs.Write.Cipher,
			MAC:           aeadlessMAC(algs.Write.Cipher, algs.Write.MAC),
		},
	}, nil
}

// openSFTP starts an SFTP session (one SSH channel) on conn. The caller
// sets release, which Close calls once the session's channel is closed.
// A hang is cut by closing the connection after the handshake timeout; a
// cancelled ctx closes it too only when the connection is the session's
// own (ownConn): a pooled connection carries other sessions.
func (d *SFTPDialer) openSFTP(ctx context.Context, conn *sshConn, up policy.Upstream, ownConn bool) (*sftpUpstream, error) {
	opts := []sftp.ClientOption{
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(!up.NoConcurrentReads),
		sftp.UseFstat(up.UseFstat),
	}
	// sftp.NewClient takes no context: bound it by closing the connection
	// if it hangs (a partner that accepts the channel but never answers).
	timer := time.AfterFunc(d.handshakeTimeout(), func() { conn.client.Close() })
	stop := func() bool { return false }
	if ownConn {
		stop = context.AfterFunc(ctx, func() { conn.client.Close() })
	}
	sc, err := sftp.NewClient(conn.client, opts...)
	timer.Stop()
	stop()
	if err != nil {
		return nil, fmt.Errorf("translate: sftp subsystem on %s: %w", conn.info.Endpoint, errors.Join(ErrUnsupported, err))
	}
	_, posix := sc.HasExtension("posix-rename@openssh.com")
	return &sftpUpstream{c: sc, posix: posix, maxDir: d.maxList(), info: conn.info}, nil
}

func aeadlessMAC(cipher, mac string) string {
	if strings.Contains(cipher, "gcm") || strings.Contains(cipher, "poly1305") {
		return ""
	}
	return mac
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// authMethods builds the login methods: a private key if the route has
// one, and the password (the client's, or the route's secret) both as
// "password" and as "keyboard-interactive", because some servers (PAM
// setups, several MFT products) offer only the latter.
func (d *SFTPDialer) authMethods(up policy.Upstream, password Password) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if up.KeyFile != "" {
		pem, err := os.ReadFile(up.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("translate: read key file %s: %w", up.KeyFile, errors.Unwrap(err))
		}
		var signer ssh.Signer
		if up.KeyPassphrase.IsZero() {
			signer, err = ssh.ParsePrivateKey(pem)
		} else {
			var pass string
			pass, err = up.KeyPassphrase.Resolve(d.getenv())
			if err != nil {
				return nil, fmt.Errorf("translate: key passphrase: %w", err)
			}
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
		}
		if err != nil {
			// The parse error never contains key material.
			return nil, fmt.Errorf("translate: parse key file %s: %w", up.KeyFile, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	pw := string(password)
	if pw == "" && !up.Password.IsZero() {
		var err error
		pw, err = up.Password.Resolve(d.getenv())
		if err != nil {
			return nil, fmt.Errorf("translate: upstream password: %w", err)
		}
	}
	if pw != "" {
		methods = append(methods,
			ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("translate: no credentials for %s: %w", up.Address(), ErrAuth)
	}
	return methods, nil
}

// sftpUpstream is one SSH connection with one SFTP session on it.
type sftpUpstream struct {
	c       *sftp.Client
	release func() // after the SFTP session closed: close or return the SSH connection
	posix   bool   // server offers posix-rename@openssh.com
	maxDir  int
	info    ConnInfo

	closeOnce sync.Once
}

var (
	_ Dialer    = (*SFTPDialer)(nil)
	_ Upstream  = (*sftpUpstream)(nil)
	_ Chtimer   = (*sftpUpstream)(nil)
	_ Chmoder   = (*sftpUpstream)(nil)
	_ Describer = (*sftpUpstream)(nil)
)

func (u *sftpUpstream) ConnInfo() ConnInfo { return u.info }

// watch closes the whole connection if ctx ends before the operation does:
// pkg/sftp calls take no context, and closing a single handle would wait
// for the very operation that hangs.
func (u *sftpUpstream) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { u.Close() })
}

func (u *sftpUpstream) Close() error {
	var err error
	u.closeOnce.Do(func() {
		err = u.c.Close()
		if u.release != nil {
			u.release()
		}
	})
	return err
}

func (u *sftpUpstream) Home(ctx context.Context) (string, error) {
	defer u.watch(ctx)()
	dir, err := u.c.RealPath(".")
	return dir, u.mapErr(ctx, "realpath", ".", err)
}

func (u *sftpUpstream) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	defer u.watch(ctx)()
	fi, err := u.c.Stat(name)
	return fi, u.mapErr(ctx, "stat", name, err)
}

func (u *sftpUpstream) ReadDir(ctx context.Context, dir string) ([]fs.FileInfo, error) {
	defer u.watch(ctx)()
	list, err := u.c.ReadDirContext(ctx, dir)
	if err != nil {
		return nil, u.mapErr(ctx, "readdir", dir, err)
	}
	if len(list) > u.maxDir {
		return nil, fmt.Errorf("translate: readdir %s: %d entries: %w", dir, len(list), ErrTooLarge)
	}
	return list, nil
}

func (u *sftpUpstream) Retrieve(ctx context.Context, name string, offset int64, w io.Writer) (int64, error) {
	defer u.watch(ctx)()
	f, err := u.c.Open(name)
	if err != nil {
		return 0, u.mapErr(ctx, "open", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, u.mapErr(ctx, "stat", name, err)
	}
	if fi.IsDir() {
		return 0, fmt.Errorf("translate: retrieve %s: %w", name, ErrIsDir)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return 0, u.mapErr(ctx, "seek", name, err)
		}
	}
	// File.WriteTo keeps many 32 KiB reads in flight. The packet size stays
	// at pkg/sftp's default: larger packets lose data silently on servers
	// that answer short reads (pkg/sftp issue #658).
	n, err := f.WriteTo(w)
	if err != nil {
		return n, u.mapErr(ctx, "read", name, err)
	}
	if want := fi.Size() - offset; fi.Mode().IsRegular() && n < want {
		return n, fmt.Errorf("translate: retrieve %s: got %d of %d bytes: %w", name, n, want, ErrShortTransfer)
	}
	return n, nil
}

func (u *sftpUpstream) Store(ctx context.Context, name string, r io.Reader, opt StoreOptions) (int64, error) {
	defer u.watch(ctx)()
	if opt.Append || opt.Offset > 0 {
		return u.storeInPlace(ctx, name, r, opt)
	}
	tmp, err := tempName(name)
	if err != nil {
		return 0, err
	}
	f, err := u.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return 0, u.mapErr(ctx, "create", name, err)
	}
	// ReadFromWithConcurrency keeps many writes in flight; io.Copy into an
	// sftp.File would send one packet per round trip (INTEROP.md).
	n, err := f.ReadFromWithConcurrency(r, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = u.replace(tmp, name)
	}
	if err != nil {
		// Concurrent writes that fail leave holes: the temporary file is
		// never renamed, and removed while the connection still works.
		u.c.Remove(tmp)
		return n, u.mapErr(ctx, "store", name, err)
	}
	return n, nil
}

// storeInPlace writes into the target itself: APPE, and REST before STOR,
// continue a file that already exists under its final name.
func (u *sftpUpstream) storeInPlace(ctx context.Context, name string, r io.Reader, opt StoreOptions) (int64, error) {
	offset := opt.Offset
	if opt.Append {
		fi, err := u.c.Stat(name)
		switch {
		case err == nil:
			offset = fi.Size()
		case errors.Is(err, fs.ErrNotExist):
			offset = 0
		default:
			return 0, u.mapErr(ctx, "stat", name, err)
		}
	}
	f, err := u.c.OpenFile(name, os.O_WRONLY|os.O_CREATE)
	if err != nil {
		return 0, u.mapErr(ctx, "open", name, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return 0, u.mapErr(ctx, "seek", name, err)
	}
	n, err := f.ReadFromWithConcurrency(r, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, u.mapErr(ctx, "store", name, err)
}

// replace renames tmp over name. posix-rename replaces atomically; the
// SFTP v3 rename refuses an existing target, so without the extension the
// target is removed first (a short window in which neither name exists,
// never one in which a partial file has the final name).
func (u *sftpUpstream) replace(tmp, name string) error {
	if u.posix {
		return u.c.PosixRename(tmp, name)
	}
	if err := u.c.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return u.c.Rename(tmp, name)
}

// tempName is the name an upload is written under until it is complete: a
// hidden file beside the target, so the rename stays on one file system.
func tempName(name string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir, base := path.Split(name)
	return dir + "." + base + ".ftpgate-" + hex.EncodeToString(b[:]) + ".part", nil
}

func (u *sftpUpstream) Remove(ctx context.Context, name string) error {
	defer u.watch(ctx)()
	fi, err := u.c.Lstat(name)
	if err == nil && fi.IsDir() {
		return fmt.Errorf("translate: remove %s: %w", name, ErrIsDir)
	}
	if err != nil {
		return u.mapErr(ctx, "remove", name, err)
	}
	return u.mapErr(ctx, "remove", name, u.c.Remove(name))
}

func (u *sftpUpstream) Rename(ctx context.Context, from, to string) error {
	defer u.watch(ctx)()
	var err error
	if u.posix {
		err = u.c.PosixRename(from, to)
	} else {
		err = u.c.Rename(from, to)
	}
	var se *sftp.StatusError
	if errors.As(err, &se) && se.Code == 4 {
		// SFTP v3 answers a bare FAILURE when the target is a directory
		// (or, without posix-rename, any existing file): say which.
		if fi, serr := u.c.Stat(to); serr == nil {
			if fi.IsDir() {
				return fmt.Errorf("translate: rename %s to %s: %w", from, to, errors.Join(ErrIsDir, err))
			}
			return fmt.Errorf("translate: rename %s to %s: %w", from, to, errors.Join(ErrExist, err))
		}
	}
	return u.mapErr(ctx, "rename", from, err)
}

func (u *sftpUpstream) Mkdir(ctx context.Context, name string) error {
	defer u.watch(ctx)()
	err := u.c.Mkdir(name)
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		// SFTP v3 has no "exists" status; OpenSSH answers FAILURE.
		if fi, serr := u.c.Stat(name); serr == nil && fi != nil {
			return fmt.Errorf("translate: mkdir %s: %w", name, ErrExist)
		}
	}
	return u.mapErr(ctx, "mkdir", name, err)
}

func (u *sftpUpstream) Rmdir(ctx context.Context, name string) error {
	defer u.watch(ctx)()
	fi, err := u.c.Lstat(name)
	if err != nil {
		return u.mapErr(ctx, "rmdir", name, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("translate: rmdir %s: %w", name, ErrNotDir)
	}
	err = u.c.RemoveDirectory(name)
	if err != nil && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist) {
		// SFTP v3 answers FAILURE for a directory that is not empty.
		if list, lerr := u.c.ReadDir(name); lerr == nil && len(list) > 0 {
			return fmt.Errorf("translate: rmdir %s: %w", name, ErrNotEmpty)
		}
	}
	return u.mapErr(ctx, "rmdir", name, err)
}

func (u *sftpUpstream) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	defer u.watch(ctx)()
	return u.mapErr(ctx, "chtimes", name, u.c.Chtimes(name, mtime, mtime))
}

func (u *sftpUpstream) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	defer u.watch(ctx)()
	return u.mapErr(ctx, "chmod", name, u.c.Chmod(name, mode))
}

// mapErr is the one place SFTP and SSH errors become translate sentinels.
// The original error stays in the chain for the log.
func (u *sftpUpstream) mapErr(ctx context.Context, op, name string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	var se *sftp.StatusError
	switch {
	case ctx.Err() != nil:
		sentinel = ErrConnLost
		err = errors.Join(ctx.Err(), err)
	case errors.Is(err, fs.ErrNotExist):
		sentinel = ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		sentinel = ErrPermission
	case errors.As(err, &se):
		sentinel = statusSentinel(se.Code)
	case errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, sftp.ErrSSHFxNoConnection),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrClosed), isNetErr(err), errors.Is(err, syscall.EPIPE):
		// The SSH transport failed under the SFTP session: reset, broken
		// pipe, timeout or a closed connection.
		sentinel = ErrConnLost
	}
	if sentinel == nil {
		return fmt.Errorf("translate: %s %s: %w", op, name, err)
	}
	return fmt.Errorf("translate: %s %s: %w", op, name, errors.Join(sentinel, err))
}

// statusSentinel maps SFTP status codes, including the draft-v5/v6 codes
// some servers send even on v3, to sentinels. FAILURE (4) stays generic:
// SFTP v3 uses it for anything.
func statusSentinel(code uint32) error {
	switch code {
	case 2: // SSH_FX_NO_SUCH_FILE
		return ErrNotFound
	case 3, 12: // PERMISSION_DENIED, WRITE_PROTECT
		return ErrPermission
	case 6, 7: // NO_CONNECTION, CONNECTION_LOST
		return ErrConnLost
	case 8: // OP_UNSUPPORTED
		return ErrUnsupported
	case 10: // NO_SUCH_PATH
		return ErrNotFound
	case 11: // FILE_ALREADY_EXISTS
		return ErrExist
	case 14, 15: // NO_SPACE_ON_FILESYSTEM, QUOTA_EXCEEDED
		return ErrNoSpace
	case 18: // DIR_NOT_EMPTY
		return ErrNotEmpty
	case 19: // NOT_A_DIRECTORY
		return ErrNotDir
	case 24: // FILE_IS_A_DIRECTORY
		return ErrIsDir
	}
	return nil
}
