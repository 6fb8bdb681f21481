package proxy

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// LoginLimiter slows down password guessing: it locks out a source
// address and a user name after repeated failed logins, with a lockout
// that doubles each time it is hit again. The in-memory MemoryLimiter
// serves one replica; several replicas share one through Redis.
type LoginLimiter interface {
	// Check reports whether a login from addr as user may be tried now.
	// When it may not, until says when it may. An error means the limiter
	// cannot decide (its store is unreachable): the login is refused, the
	// limits fail closed.
	Check(addr netip.Addr, user string) (ok bool, until time.Time, err error)
	// Failure and Success report the outcome of a login that was tried.
	Failure(addr netip.Addr, user string)
	Success(addr netip.Addr, user string)
}

// MemoryLimiter is a LoginLimiter for one process. Its zero value uses the
// defaults documented on each field.
type MemoryLimiter struct {
	// MaxFailures is how many failed logins within Window lock a key out.
	// Zero means 5.
	MaxFailures int
	// Window is how long a failure counts. Zero means 15 minutes.
	Window time.Duration
	// Lockout is the first lockout; each further lockout of the same key
	// doubles it, up to MaxLockout. Zero means 1 minute and 1 hour.
	Lockout, MaxLockout time.Duration
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time

	mu   sync.Mutex
	keys map[string]*limitState // guarded by mu
}

type limitState struct {
	failures []time.Time // within the window
	until    time.Time   // locked out until
	strikes  int         // lockouts so far; doubles the next one
}

func (m *MemoryLimiter) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// limitKeys are the keys a login is counted under: the source address and
// the user name (case-folded, as routes match users).
func limitKeys(addr netip.Addr, user string) []string {
	return []string{"addr:" + addr.String(), "user:" + strings.ToLower(user)}
}

func (m *MemoryLimiter) Check(addr netip.Addr, user string) (bool, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var until time.Time
	for _, k := range limitKeys(addr, user) {
		if st := m.keys[k]; st != nil && now.Before(st.until) && st.until.After(until) {
			until = st.until
		}
	}
	return until.IsZero(), until, nil
}

func (m *MemoryLimiter) Failure(addr netip.Addr, user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = make(map[string]*limitState)
	}
	now := m.now()
	window := defDur(m.Window, 15*time.Minute)
	max := m.MaxFailures
	if max <= 0 {
		max = 5
	}
	for _, k := range limitKeys(addr, user) {
		st := m.keys[k]
		if st == nil {
			st = &limitState{}
			m.keys[k] = st
		}
		kept := st.failures[:0]
		for _, t := range st.failures {
			if now.Sub(t) < window {
				kept = append(kept, t)
			}
		}
		st.failures = append(kept, now)
		if len(st.failures) >= max {
			d := defDur(m.Lockout, time.Minute) << min(st.strikes, 16)
			d = min(d, defDur(m.MaxLockout, time.Hour))
			st.until = now.Add(d)
			st.strikes++
			st.failures = st.failures[:0]
		}
	}
	m.gcLocked(now, window)
}

func (m *MemoryLimiter) Success(addr netip.Addr, user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A success clears the user's failures, not the address's: one good
	// login from a shared NAT address must not hide a guesser behind it.
	delete(m.keys, limitKeys(addr, user)[1])
}

// gcLocked forgets keys with nothing left to remember, so the map does not
// grow with every address that ever failed once.
func (m *MemoryLimiter) gcLocked(now time.Time, window time.Duration) {
	if len(m.keys) < 4096 {
		return
	}
	for k, st := range m.keys {
		if now.After(st.until) && (len(st.failures) == 0 || now.Sub(st.failures[len(st.failures)-1]) >= window) {
			delete(m.keys, k)
		}
	}
}
