package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// This file holds the limits that several replicas share through one
// Redis server: the failed-login lockouts (RedisLimiter) and the count of
// sessions by client address (RedisSessionCounter). Every change is one
// Lua script, so it is atomic on the server; no replica reads, decides and
// writes in separate round trips. Keys of one login live on one server,
// so Redis Cluster is not supported (a primary with replicas, or Sentinel
// in front of it, is).

// RedisLimiter is a LoginLimiter shared by every replica that points at
// the same Redis server and Prefix. It keeps MemoryLimiter's semantics:
// failures counted by address and by case-folded user within Window,
// MaxFailures of them lock the key out for Lockout, each further lockout
// of the same key doubles up to MaxLockout, and a success clears the
// user's failures and lockouts (not the address's).
//
// Time is Redis's own clock (the TIME command), so replicas whose clocks
// differ still agree on when a lockout ends. A key is forgotten by Redis
// once it has had no failure for Window and no lockout for MaxLockout; a
// key that has been locked out before therefore starts at the first
// lockout again after that quiet time.
//
// Every Redis error makes Check return an error, and the proxy then
// refuses the login (fail closed). An error in Failure or Success cannot
// be returned; it is logged, and that failure is not counted.
//
// The fields must not be changed after first use.
type RedisLimiter struct {
	// Client reaches the shared Redis server. Required; a *redis.Client
	// is one.
	Client redis.Scripter
	// Prefix starts every key, so several gateways can share a server.
	// Empty means "ftpgate:".
	Prefix string
	// MaxFailures, Window, Lockout and MaxLockout mean what they mean in
	// MemoryLimiter, with the same defaults: 5, 15 minutes, 1 minute and
	// 1 hour.
	MaxFailures         int
	Window              time.Duration
	Lockout, MaxLockout time.Duration
	// Timeout bounds each Redis round trip. Zero means 500 ms.
	Timeout time.Duration
	// Logger receives the errors that Failure and Success cannot return.
	Logger zerolog.Logger
	// Now, if set, replaces Redis's clock. For tests.
	Now func() time.Time
}

var _ LoginLimiter = (*RedisLimiter)(nil)

// Lua scripts. KEYS come in pairs per limit key: the lock hash (until,
// strikes, seq) and the failures sorted set (score: time in ms). ARGV[1]
// is the time in ms, or -1 to use Redis's clock. Numbers are written with
// %d: Lua's default conversion keeps only 14 digits.
const luaNow = `
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// limiterCheckScript returns the latest lockout end (ms) among KEYS that
// is still ahead, or 0.
var limiterCheckScript = redis.NewScript(luaNow + `
local best = 0
for i = 1, #KEYS, 2 do
  local u = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  if u > now and u > best then best = u end
end
return string.format('%d', best)
`)

// limiterFailureScript counts one failure under every key pair: it drops
// failures older than the window, adds this one, and when MaxFailures
// are reached locks the key out for Lockout doubled by the strikes so
// far, at most MaxLockout, and forgets the failures. ARGV: now, window,
// max failures, lockout, max lockout (durations in ms).
var limiterFailureScript = redis.NewScript(luaNow + `
local window, maxf = tonumber(ARGV[2]), tonumber(ARGV[3])
local lockout, maxlock = tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, #KEYS, 2 do
  local lk, fk = KEYS[i], KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', fk, '-inf', string.format('%d', now - window))
  local seq = redis.call('HINCRBY', lk, 'seq', 1)
  redis.call('ZADD', fk, string.format('%d', now), seq)
  local u = tonumber(redis.call('HGET', lk, 'until') or '0')
  if redis.call('ZCARD', fk) >= maxf then
    local strikes = tonumber(redis.call('HGET', lk, 'strikes') or '0')
    local d = math.min(lockout * 2 ^ math.min(strikes, 16), maxlock)
    u = now + d
    redis.call('HSET', lk, 'until', string.format('%d', u), 'strikes', strikes + 1)
    redis.call('DEL', fk)
  else
    redis.call('PEXPIRE', fk, string.format('%d', window))
  end
  local keep = math.max(window, u - now + maxlock, 1)
  redis.call('PEXPIRE', lk, string.format('%d', keep))
end
return 1
`)

// limiterDelScript forgets every key it is given (Success).
var limiterDelScript = redis.NewScript(`return redis.call('DEL', unpack(KEYS))`)

func (r *RedisLimiter) prefix() string {
	if r.Prefix == "" {
		return "ftpgate:"
	}
	return r.Prefix
}

func (r *RedisLimiter) timeout() time.Duration { return defDur(r.Timeout, 500*time.Millisecond) }

// nowArg is ARGV[1]: the test clock in ms, or -1 for Redis's clock.
func (r *RedisLimiter) nowArg() int64 {
	if r.Now != nil {
		return r.Now().UnixMilli()
	}
	return -1
}

// keys returns the lock and failure keys of each limit key of a login.
func (r *RedisLimiter) keys(addr netip.Addr, user string) []string {
	p := r.prefix()
	var ks []string
	for _, k := range limitKeys(addr, user) {
		ks = append(ks, p+"lock:"+k, p+"fail:"+k)
	}
	return ks
}

func (r *RedisLimiter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout())
}

// Check reports whether a login may be tried now. Any Redis error is
// returned: the caller must refuse the login.
func (r *RedisLimiter) Check(addr netip.Addr, user string) (bool, time.Time, error) {
	if r.Client == nil {
		return false, time.Time{}, errors.New("proxy: redis limiter: no client")
	}
	ctx, cancel := r.ctx()
	defer cancel()
	s, err := limiterCheckScript.Run(ctx, r.Client, r.keys(addr, user), r.nowArg()).Text()
	if err != nil {
		return false, time.Time{}, fmt.Errorf("proxy: redis limiter: check: %w", err)
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("proxy: redis limiter: check: bad reply %q", s)
	}
	if ms == 0 {
		return true, time.Time{}, nil
	}
	return false, time.UnixMilli(ms), nil
}

// Failure counts a failed login under the address and the user.
func (r *RedisLimiter) Failure(addr netip.Addr, user string) {
	if r.Client == nil {
		return
	}
	max := r.MaxFailures
	if max <= 0 {
		max = 5
	}
	window := defDur(r.Window, 15*time.Minute)
	lockout := defDur(r.Lockout, time.Minute)
	maxLockout := defDur(r.MaxLockout, time.Hour)
	ctx, cancel := r.ctx()
	defer cancel()
	err := limiterFailureScript.Run(ctx, r.Client, r.keys(addr, user), r.nowArg(),
		window.Milliseconds(), max, lockout.Milliseconds(), maxLockout.Milliseconds()).Err()
	if err != nil {
		r.Logger.Error().Err(err).Str("client", addr.String()).Msg("login limiter could not count a failed login")
	}
}

// Success clears the user's failures and lockouts. The address's stay:
// one good login from a shared NAT address must not hide a guesser
// behind it.
func (r *RedisLimiter) Success(addr netip.Addr, user string) {
	if r.Client == nil {
		return
	}
	ctx, cancel := r.ctx()
	defer cancel()
	if err := limiterDelScript.Run(ctx, r.Client, r.keys(addr, user)[2:]).Err(); err != nil {
		r.Logger.Error().Err(err).Str("client", addr.String()).Msg("login limiter could not clear a user's failures")
	}
}

// SessionCounter counts open control connections by client address
// across every replica, for Server.MaxSessionsPerAddr. The in-memory count
// in Server covers one replica; RedisSessionCounter covers several.
type SessionCounter interface {
	// Acquire counts a new session from addr unless limit sessions from
	// addr are already open (limit <= 0: no limit). When ok is true the
	// caller must call release exactly once, when the session ends. When
	// ok is false the limit is reached and release is nil. An error means
	// the counter cannot decide (its store is unreachable): the caller
	// refuses the session, the limit fails closed.
	Acquire(addr netip.Addr, limit int) (ok bool, release func(), err error)
}

// RedisSessionCounter is a SessionCounter shared through Redis. Each
// replica keeps its own count by address in a hash of its own, with a
// lease that Run renews; a replica that dies stops renewing, and its
// sessions stop counting once its lease runs out. A count is decided and
// taken in one script, so two replicas cannot both take the last place.
//
// The replica's own counts are kept in memory too, and Run rewrites its
// hash from them at each renewal, so a count that a Redis error left
// wrong (a release that did not reach Redis, a Redis restart) is right
// again within Lease/3. A renewal waits for Acquires and releases in
// flight, and they for it: one Redis round trip every Lease/3.
//
// Run must be running for the counts to hold longer than Lease. The
// fields must not be changed after first use.
type RedisSessionCounter struct {
	// Client reaches the shared Redis server. Required.
	Client redis.Scripter
	// Prefix starts every key; empty means "ftpgate:".
	Prefix string
	// Replica names this replica among those sharing Prefix; it must be
	// unique. Empty means host name, process id and a random suffix,
	// chosen once.
	Replica string
	// Lease is how long this replica's counts outlive its last renewal.
	// Zero means 15 s. Run renews every Lease/3.
	Lease time.Duration
	// Timeout bounds each Redis round trip. Zero means 500 ms.
	Timeout time.Duration
	// Logger receives the errors that release and Run cannot return.
	Logger zerolog.Logger

	once    sync.Once
	replica string // Replica or the generated name; set by once

	// renewing is held for reading while an Acquire or a release changes
	// a count (in Redis and in local), and for writing while Renew writes
	// them all, so a renewal never writes a count that is half taken.
	renewing sync.RWMutex
	mu       sync.Mutex
	local    map[netip.Addr]int // guarded by mu: this replica's open sessions by address
}

var _ SessionCounter = (*RedisSessionCounter)(nil)

// sessionAcquireScript: KEYS[1] the replicas sorted set (score: lease
// end, ms), KEYS[2] this replica's hash. ARGV: replica, address, limit,
// lease (ms), prefix of replica hashes. Reading the other replicas' hashes
// by computed name is what ties this to one Redis server.
var sessionAcquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if limit > 0 then
  local total = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
  for _, r in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if r ~= ARGV[1] then
      total = total + tonumber(redis.call('HGET', ARGV[5] .. r, ARGV[2]) or '0')
    end
  end
  if total >= limit then return 0 end
end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[2], string.format('%d', lease))
redis.call('ZADD', KEYS[1], string.format('%d', now + lease), ARGV[1])
return 1
`)

// sessionReleaseScript: KEYS[1] this replica's hash; ARGV[1] the address.
var sessionReleaseScript = redis.NewScript(`
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
`)

// sessionRenewScript rewrites this replica's hash from its own counts and
// renews its lease. KEYS[1] the replicas set, KEYS[2] this replica's hash;
// ARGV: replica, lease (ms), then address and count pairs.
var sessionRenewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
if #ARGV > 2 then redis.call('PEXPIRE', KEYS[2], string.format('%d', lease)) end
redis.call('ZADD', KEYS[1], string.format('%d', now + lease), ARGV[1])
return 1
`)

// sessionLeaveScript removes this replica: KEYS as sessionRenewScript's,
// ARGV[1] the replica.
var sessionLeaveScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
`)

func (c *RedisSessionCounter) name() string {
	c.once.Do(func() {
		c.replica = c.Replica
		if c.replica == "" {
			host, _ := os.Hostname()
			var b [4]byte
			rand.Read(b[:])
			c.replica = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
		}
	})
	return c.replica
}

func (c *RedisSessionCounter) prefix() string {
	if c.Prefix == "" {
		return "ftpgate:"
	}
	return c.Prefix
}

func (c *RedisSessionCounter) lease() time.Duration { return defDur(c.Lease, 15*time.Second) }

func (c *RedisSessionCounter) timeout() time.Duration {
	return defDur(c.Timeout, 500*time.Millisecond)
}

// setKey is the sorted set of live replicas; ownKey this replica's hash.
func (c *RedisSessionCounter) setKey() string { return c.prefix() + "sessions:replicas" }
func (c *RedisSessionCounter) hashPrefix() string {
	return c.prefix() + "sessions:replica:"
}
func (c *RedisSessionCounter) ownKey() string { return c.hashPrefix() + c.name() }

func (c *RedisSessionCounter) add(addr netip.Addr, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local == nil {
		c.local = make(map[netip.Addr]int)
	}
	if c.local[addr] += n; c.local[addr] <= 0 {
		delete(c.local, addr)
	}
}

// Acquire counts a session from addr on this replica unless the replicas
// together already hold limit sessions from it.
func (c *RedisSessionCounter) Acquire(addr netip.Addr, limit int) (bool, func(), error) {
	if c.Client == nil {
		return false, nil, errors.New("proxy: redis session counter: no client")
	}
	addr = addr.Unmap()
	c.renewing.RLock()
	defer c.renewing.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	n, err := sessionAcquireScript.Run(ctx, c.Client, []string{c.setKey(), c.ownKey()},
		c.name(), addr.String(), limit, c.lease().Milliseconds(), c.hashPrefix()).Int()
	if err != nil {
		return false, nil, fmt.Errorf("proxy: redis session counter: %w", err)
	}
	if n != 1 {
		return false, nil, nil
	}
	c.add(addr, 1)
	var once sync.Once
	return true, func() { once.Do(func() { c.release(addr) }) }, nil
}

func (c *RedisSessionCounter) release(addr netip.Addr) {
	c.renewing.RLock()
	defer c.renewing.RUnlock()
	c.add(addr, -1)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	if err := sessionReleaseScript.Run(ctx, c.Client, []string{c.ownKey()}, addr.String()).Err(); err != nil {
		c.Logger.Warn().Err(err).Str("client", addr.String()).Msg("session counter: release not recorded; the next renewal corrects it")
	}
}

// Renew rewrites this replica's counts in Redis and renews its lease. Run
// calls it every Lease/3.
func (c *RedisSessionCounter) Renew(ctx context.Context) error {
	c.renewing.Lock()
	defer c.renewing.Unlock()
	c.mu.Lock()
	args := []any{c.name(), c.lease().Milliseconds()}
	for a, n := range c.local {
		args = append(args, a.String(), n)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if err := sessionRenewScript.Run(ctx, c.Client, []string{c.setKey(), c.ownKey()}, args...).Err(); err != nil {
		return fmt.Errorf("proxy: redis session counter: renew: %w", err)
	}
	return nil
}

// Run renews this replica's lease every Lease/3 until ctx ends, then
// removes the replica's counts from Redis, and returns nil. Renewal
// errors are logged; the counts are written whole at the next renewal
// that succeeds.
func (c *RedisSessionCounter) Run(ctx context.Context) error {
	if c.Client == nil {
		return errors.New("proxy: redis session counter: no client")
	}
	tick := time.NewTicker(c.lease() / 3)
	defer tick.Stop()
	for {
		if err := c.Renew(ctx); err != nil && ctx.Err() == nil {
			c.Logger.Warn().Err(err).Msg("session counter: lease not renewed")
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), c.timeout())
			defer cancel()
			if err := sessionLeaveScript.Run(lctx, c.Client, []string{c.setKey(), c.ownKey()}, c.name()).Err(); err != nil {
				c.Logger.Warn().Err(err).Msg("session counter: could not remove this replica's counts; they expire with its lease")
			}
			return nil
		case <-tick.C:
		}
	}
}
