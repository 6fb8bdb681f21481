package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/audit"
)

// admin is the operator's HTTP endpoint, on its own listener (never the
// FTP one) with its own mux (never http.DefaultServeMux).
type admin struct {
	policy  *policyHolder
	audit   *audit.Emitter
	metrics *metrics
	serving atomic.Bool // the FTP listener is bound and not draining
	probe   *upstreamProbe
	pprof   bool
}

func (a *admin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{Registry: a.metrics.reg}))
	if a.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readyz answers 200 when this replica should get new sessions: the
// listener is bound and not draining, a policy is loaded, every audit sink
// is healthy (no transfer without a record), and the cached upstream probe
// has found at least one partner reachable. It never dials per request.
func (a *admin) readyz(w http.ResponseWriter, _ *http.Request) {
	var failed []string
	check := func(name string, ok bool, detail string) string {
		if !ok {
			failed = append(failed, name)
			return fmt.Sprintf("fail %s: %s", name, detail)
		}
		return "ok   " + name
	}
	lines := []string{
		check("listener", a.serving.Load(), "not serving (starting or draining)"),
		check("policy", a.policy.Current() != nil, "no policy loaded"),
	}
	if err := a.policy.LoadError(); err != nil {
		// The previous policy still serves; the replica says the file on
		// disk is broken until a good one is loaded.
		lines = append(lines, check("policy-file", false, firstLine(err.Error())))
	}
	if err := a.audit.Err(); err != nil {
		lines = append(lines, check("audit", false, err.Error()))
	} else {
		lines = append(lines, check("audit", true, ""))
	}
	up, detail := a.probe.status()
	lines = append(lines, check("upstreams", up, detail))
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// serveAdmin runs the admin endpoint on ln until ctx ends.
func serveAdmin(ctx context.Context, ln net.Listener, a *admin, log zerolog.Logger) {
	hs := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Error().Err(err).Msg("admin endpoint stopped")
	}
}

// upstreamProbe checks in the background, every interval, that the
// partners of the policy in force accept TCP connections. Readiness reads
// the cached result. A replica is unready only when no partner at all is
// reachable: one partner's outage is the same for every replica, and
// taking them all out of the balancer would not help its users.
type upstreamProbe struct {
	targets  func() []string
	interval time.Duration
	timeout  time.Duration

	mu      sync.Mutex
	done    bool            // guarded by mu: at least one round finished
	results map[string]bool // guarded by mu
}

func (p *upstreamProbe) run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *upstreamProbe) round(ctx context.Context) {
	res := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range p.targets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: p.timeout}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			mu.Lock()
			res[addr] = err == nil
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.mu.Lock()
	p.results, p.done = res, true
	p.mu.Unlock()
}

// status reports whether the gateway has a reachable partner, with the
// unreachable ones named.
func (p *upstreamProbe) status() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done || len(p.results) == 0 {
		return true, ""
	}
	var down []string
	for addr, ok := range p.results {
		if !ok {
			down = append(down, addr)
		}
	}
	sort.Strings(down)
	if len(down) == len(p.results) {
		return false, "no partner reachable: " + strings.Join(down, ", ")
	}
	return true, ""
}
