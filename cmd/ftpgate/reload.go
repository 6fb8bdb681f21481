package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/policy"
)

// policyHolder keeps the policy in force and replaces it atomically when a
// reload succeeds. A policy that fails to load is rejected with its errors
// logged, and the old one stays: new sessions never see a half-applied or
// broken policy, running sessions keep the decision they were given.
type policyHolder struct {
	path       string
	log        zerolog.Logger
	onReload   func(ok bool, generation uint64)
	cur        atomic.Pointer[policy.Policy]
	generation atomic.Uint64
	lastErr    atomic.Pointer[error] // the last load's error; nil after a good load

	mu   sync.Mutex // serialises reloads
	seen fileStamp  // guarded by mu: the file as last loaded
}

// fileStamp identifies a version of a file cheaply. Stat follows symlinks,
// so the symlink swap of a Kubernetes ConfigMap update changes it.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime(), ino: inode(fi)}, nil
}

func newPolicyHolder(path string, log zerolog.Logger, onReload func(bool, uint64)) (*policyHolder, error) {
	h := &policyHolder{path: path, log: log, onReload: onReload}
	if err := h.reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// fixedPolicy holds a policy that never reloads (the demo's).
func fixedPolicy(p *policy.Policy) *policyHolder {
	h := &policyHolder{}
	h.cur.Store(p)
	h.generation.Store(1)
	return h
}

// Current is the policy for a new login.
func (h *policyHolder) Current() *policy.Policy { return h.cur.Load() }

// LoadError is the error of the last load, nil if it succeeded.
func (h *policyHolder) LoadError() error {
	if e := h.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Generation counts successful loads, starting at 1.
func (h *policyHolder) Generation() uint64 { return h.generation.Load() }

// reload loads the file and, if it is valid, puts it in force.
func (h *policyHolder) reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	stamp, _ := stampOf(h.path)
	p, err := policy.LoadFile(h.path)
	if err != nil {
		h.lastErr.Store(&err)
		if h.onReload != nil {
			h.onReload(false, h.generation.Load())
		}
		return err
	}
	h.cur.Store(p)
	h.lastErr.Store(nil)
	gen := h.generation.Add(1)
	h.seen = stamp
	if h.onReload != nil {
		h.onReload(true, gen)
	}
	return nil
}

// reloadLogged reloads and logs the outcome.
func (h *policyHolder) reloadLogged(why string) {
	if h.path == "" {
		return
	}
	if err := h.reload(); err != nil {
		var le *policy.LoadError
		ev := h.log.Error().Str("trigger", why).Str("policy", h.path)
		if errors.As(err, &le) {
			ev = ev.Int("errors", len(le.Errs))
		}
		ev.Err(err).Msg("policy reload rejected; the previous policy stays in force")
		return
	}
	h.log.Info().Str("trigger", why).Str("policy", h.path).Uint64("generation", h.Generation()).
		Int("routes", len(h.Current().Routes())).Msg("policy reloaded")
}

// watch reloads when the file changes, checking every interval until ctx
// ends. Polling is enough for a file that changes a few times a day, and it
// sees a ConfigMap's symlink swap, which inotify on the file would miss.
func (h *policyHolder) watch(ctx context.Context, interval time.Duration) {
	if h.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			stamp, err := stampOf(h.path)
			h.mu.Lock()
			changed := err == nil && stamp != h.seen
			h.mu.Unlock()
			if changed {
				h.reloadLogged("file changed")
				// Do not retry a broken file on every tick.
				h.mu.Lock()
				h.seen = stamp
				h.mu.Unlock()
			}
		}
	}
}
