package translate

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ftpgate/ftpgate/policy"
)

// Pool is a Dialer that keeps SSH connections to partners open and gives
// each FTP session an SFTP session (an SSH channel) of its own on a shared
// connection, so a fresh FTP session costs one channel open instead of a
// TCP connect, a key exchange and a login (OpenSSH 9.2 here: about 140 to
// 210 ms per session without the pool).
//
// Connections are keyed by everything that decides who is logged in where:
// the endpoint, the user, the host-key settings, the credential references
// and, for a password, a keyed hash of it (HMAC-SHA256 under a secret made
// when the pool is created, never stored in clear). A different or wrong
// password therefore never rides on a connection another password opened:
// it makes its own dial, and the partner decides.
//
// The zero Pool is not usable: set Dialer.
type Pool struct {
	// Dialer makes the SSH connections. Required.
	Dialer *SFTPDialer
	// MaxChannelsPerConn caps SFTP sessions on one SSH connection. Zero
	// means 10, OpenSSH's MaxSessions default.
	MaxChannelsPerConn int
	// MaxConnsPerKey caps SSH connections per (endpoint, credential). When
	// every connection is full, Dial waits for a channel until its context
	// ends. Zero means 16.
	MaxConnsPerKey int
	// IdleTimeout closes a connection that has carried no session for this
	// long. Zero means 60 s.
	IdleTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests on each
	// connection; a connection that does not answer one within
	// KeepAliveTimeout is closed. Zero means 30 s and 15 s.
	KeepAlive        time.Duration
	KeepAliveTimeout time.Duration
	// Bypass, if set, names upstreams that must not be pooled (a route
	// that turned pooling off): they get a connection of their own.
	Bypass func(policy.Upstream) bool

	once    sync.Once
	secret  []byte                 // keys the password hashes; set once
	mu      sync.Mutex             // guards everything below
	conns   map[string][]*poolConn // by key
	dialing map[string]chan struct{}
	freed   chan struct{} // closed and replaced whenever a channel is released
	closed  bool
}

// poolConn is one pooled SSH connection.
type poolConn struct {
	*sshConn
	key      string
	channels int       // guarded by Pool.mu
	maxCh    int       // guarded by Pool.mu; lowered when the partner refuses a channel
	lastUsed time.Time // guarded by Pool.mu
	dead     bool      // guarded by Pool.mu
}

var _ Dialer = (*Pool)(nil)

func (p *Pool) maxChannels() int { return orInt(p.MaxChannelsPerConn, 10) }
func (p *Pool) maxConns() int    { return orInt(p.MaxConnsPerKey, 16) }
func (p *Pool) idle() time.Duration {
	return orDur(p.IdleTimeout, 60*time.Second)
}
func (p *Pool) keepAlive() time.Duration        { return orDur(p.KeepAlive, 30*time.Second) }
func (p *Pool) keepAliveTimeout() time.Duration { return orDur(p.KeepAliveTimeout, 15*time.Second) }

func orInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func orDur(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

func (p *Pool) init() {
	p.once.Do(func() {
		p.secret = make([]byte, 32)
		rand.Read(p.secret)
		p.conns = make(map[string][]*poolConn)
		p.dialing = make(map[string]chan struct{})
		p.freed = make(chan struct{})
	})
}

// key identifies the login a connection carries. It holds references and
// hashes, never a secret value.
func (p *Pool) key(up policy.Upstream, password Password) string {
	mac := hmac.New(sha256.New, p.secret)
	mac.Write([]byte(password))
	return strings.Join([]string{
		up.Scheme, up.Address(), up.User, up.KnownHosts, strings.Join(up.HostKeySHA256, ","),
		up.KeyFile, up.KeyPassphrase.String(), up.Password.String(),
		fmt.Sprint(up.UseFstat, up.NoConcurrentReads),
		hex.EncodeToString(mac.Sum(nil)),
	}, "|")
}

// Dial returns an SFTP session on a pooled connection for up, dialling a
// new connection (one dial at a time per key) when none has a free
// channel.
func (p *Pool) Dial(ctx context.Context, up policy.Upstream, password Password) (Upstream, error) {
	if p.Bypass != nil && p.Bypass(up) {
		return p.Dialer.Dial(ctx, up, password)
	}
	p.init()
	key := p.key(up, password)
	for {
		pc, wait, err := p.acquire(ctx, key, up, password)
		if err != nil {
			return nil, err
		}
		if pc == nil {
			// Every connection is full, or another session is dialling
			// this key: wait for a change and look again.
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("translate: waiting for a channel to %s: %w", up.Address(), errors.Join(ErrUnreachable, ctx.Err()))
			}
		}
		u, err := p.Dialer.openSFTP(ctx, pc.sshConn, up, false)
		if err != nil {
			full := isChannelRefused(err)
			p.mu.Lock()
			pc.channels--
			if full {
				// The partner allows fewer sessions than we assumed.
				pc.maxCh = max(pc.channels, 1)
			} else {
				pc.dead = true
			}
			p.signalLocked()
			p.mu.Unlock()
			if full && ctx.Err() == nil {
				continue
			}
			if !full {
				pc.client.Close()
			}
			return nil, err
		}
		u.release = func() { p.release(pc) }
		return u, nil
	}
}

func isChannelRefused(err error) bool {
	var oce *ssh.OpenChannelError
	return errors.As(err, &oce)
}

// acquire finds a connection with a free channel and takes the channel, or
// dials a new connection when the key may have another, or returns a
// channel to wait on.
func (p *Pool) acquire(ctx context.Context, key string, up policy.Upstream, password Password) (*poolConn, <-chan struct{}, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, fmt.Errorf("translate: pool closed: %w", ErrUnreachable)
	}
	list := p.conns[key]
	live := list[:0]
	for _, pc := range list {
		if !pc.dead {
			live = append(live, pc)
		}
	}
	p.conns[key] = live
	for _, pc := range live {
		if pc.channels < pc.maxCh {
			pc.channels++
			pc.lastUsed = time.Now()
			p.mu.Unlock()
			return pc, nil, nil
		}
	}
	if ch, busy := p.dialing[key]; busy {
		p.mu.Unlock()
		return nil, ch, nil
	}
	if len(live) >= p.maxConns() {
		wait := p.freed
		p.mu.Unlock()
		return nil, wait, nil
	}
	done := make(chan struct{})
	p.dialing[key] = done
	p.mu.Unlock()

	conn, err := p.Dialer.dialSSH(ctx, up, password)

	p.mu.Lock()
	delete(p.dialing, key)
	close(done)
	if err != nil || p.closed {
		p.mu.Unlock()
		if err == nil {
			conn.client.Close()
			err = fmt.Errorf("translate: pool closed: %w", ErrUnreachable)
		}
		return nil, nil, err
	}
	pc := &poolConn{sshConn: conn, key: key, channels: 1, maxCh: p.maxChannels(), lastUsed: time.Now()}
	p.conns[key] = append(p.conns[key], pc)
	p.mu.Unlock()
	go p.tend(pc)
	return pc, nil, nil
}

// release returns a channel to its connection.
func (p *Pool) release(pc *poolConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.channels--
	pc.lastUsed = time.Now()
	p.signalLocked()
}

func (p *Pool) signalLocked() {
	close(p.freed)
	p.freed = make(chan struct{})
}

// tend keeps one connection healthy: keepalives, idle expiry, and removal
// when it dies.
func (p *Pool) tend(pc *poolConn) {
	ended := make(chan struct{})
	go func() { pc.client.Wait(); close(ended) }()
	tick := time.NewTicker(min(p.keepAlive(), p.idle()/2+time.Millisecond))
	defer tick.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-ended:
			p.drop(pc)
			return
		case <-tick.C:
		}
		p.mu.Lock()
		idle := pc.channels == 0 && time.Since(pc.lastUsed) >= p.idle()
		if idle || p.closed {
			pc.dead = true
		}
		dead := pc.dead
		p.mu.Unlock()
		if dead {
			pc.client.Close()
			<-ended
			p.drop(pc)
			return
		}
		if time.Since(lastPing) >= p.keepAlive() {
			lastPing = time.Now()
			if !p.ping(pc) {
				p.mu.Lock()
				pc.dead = true
				p.mu.Unlock()
				pc.client.Close()
			}
		}
	}
}

// ping sends keepalive@openssh.com and waits for any answer: OpenSSH
// replies with failure to requests it does not know, which still proves
// the connection is alive.
func (p *Pool) ping(pc *poolConn) bool {
	res := make(chan error, 1)
	go func() {
		_, _, err := pc.client.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	select {
	case err := <-res:
		return err == nil
	case <-time.After(p.keepAliveTimeout()):
		return false
	}
}

func (p *Pool) drop(pc *poolConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.dead = true
	list := p.conns[pc.key]
	for i, c := range list {
		if c == pc {
			p.conns[pc.key] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(p.conns[pc.key]) == 0 {
		delete(p.conns, pc.key)
	}
	p.signalLocked()
}

// Stats reports the pool's connections and the channels in use.
func (p *Pool) Stats() (conns, channels int) {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range p.conns {
		for _, pc := range list {
			if !pc.dead {
				conns++
				channels += pc.channels
			}
		}
	}
	return conns, channels
}

// Close closes every pooled connection; sessions on them fail with
// ErrConnLost.
func (p *Pool) Close() error {
	p.init()
	p.mu.Lock()
	p.closed = true
	var all []*poolConn
	for _, list := range p.conns {
		all = append(all, list...)
	}
	p.mu.Unlock()
	for _, pc := range all {
		pc.client.Close()
	}
	return nil
}
