package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/audit"
	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/proxy"
)

func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("component", "ftpgate").Logger()
}

func cmdServe(ctx context.Context, stopSignals func(), env map[string]string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(env)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: configuration:", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	var met *metrics
	holder, err := newPolicyHolder(cfg.Policy, log, func(ok bool, gen uint64) {
		if met != nil {
			met.reloaded(ok, gen)
		}
	})
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: policy:", err)
		return 2
	}
	em, err := newEmitter(ctx, cfg.Audit, env, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: audit:", err)
		return 2
	}
	defer em.Close()
	srv := cfg.server()
	srv.Dialer = cfg.dialer(func(k string) string { return env[k] })
	if sd, ok := srv.Dialer.(*schemeDialer); ok && sd.pool() != nil {
		// Pooled SSH connections and their keepalives end with the
		// process's serve, not an idle timeout later.
		defer sd.pool().Close()
	}
	if srv.TLSConfig, err = cfg.frontTLS(); err != nil {
		fmt.Fprintln(stderr, "ftpgate:", err)
		return 2
	}
	srv.RequireTLS = cfg.TLSRequire
	srv.Audit = em
	srv.Logger = log
	ln, err := activationListener(env)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate:", err)
		return 1
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			fmt.Fprintln(stderr, "ftpgate: listen:", err)
			return 1
		}
	}
	sln, stopScale, err := cfg.scaleOut(srv, ln, log)
	if err != nil {
		ln.Close()
		fmt.Fprintln(stderr, "ftpgate: scale-out:", err)
		return 2
	}
	defer stopScale()
	ln = sln
	g := &gateway{cfg: cfg, srv: srv, ln: ln, policy: holder, audit: em, log: log}
	met = g.setupMetrics()
	met.reloaded(true, holder.Generation())
	return g.run(ctx, stopSignals)
}

// gateway is one running ftpgate: the FTP server, its admin endpoint, the
// policy it reloads and the audit trail it writes.
type gateway struct {
	cfg     config
	srv     *proxy.Server
	ln      net.Listener
	policy  *policyHolder
	audit   *audit.Emitter
	log     zerolog.Logger
	metrics *metrics
	admin   *admin
}

func (g *gateway) setupMetrics() *metrics {
	g.metrics = newMetrics(g.srv.ActiveSessions, g.audit)
	if sd, ok := g.srv.Dialer.(*schemeDialer); ok && sd.pool() != nil {
		g.metrics.watchPool(sd.pool())
	}
	g.srv.Observer = g.metrics
	g.srv.Policy = g.policy.Current
	return g.metrics
}

// upstreamTargets lists the host:port of every route's partner.
func (g *gateway) upstreamTargets() []string {
	p := g.policy.Current()
	if p == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range p.Routes() {
		if a := r.Upstream.Address(); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// run serves until ctx ends (SIGTERM, SIGINT), then drains: the listener
// closes, readiness turns false, idle sessions get 421, running transfers
// get up to FTPGATE_DRAIN_TIMEOUT to finish. SIGHUP reloads the policy and
// reopens the audit file.
func (g *gateway) run(ctx context.Context, stopSignals func()) int {
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	g.admin = &admin{policy: g.policy, audit: g.audit, metrics: g.metrics, pprof: g.cfg.AdminPprof,
		probe: &upstreamProbe{targets: g.upstreamTargets, interval: g.cfg.ProbeInterval, timeout: 3 * time.Second}}
	go g.admin.probe.run(bg)
	go g.policy.watch(bg, g.cfg.PolicyWatch)
	if l := g.cfg.AdminListen; l != "" && l != "off" {
		aln, err := net.Listen("tcp", l)
		if err != nil {
			g.log.Error().Err(err).Str("admin_listen", l).Msg("admin endpoint cannot listen")
			return 1
		}
		g.log.Info().Str("admin_listen", aln.Addr().String()).Msg("admin endpoint")
		go serveAdmin(bg, aln, g.admin, g.log)
	}

	errc := make(chan error, 1)
	go func() { errc <- g.srv.Serve(g.ln) }()
	g.admin.serving.Store(true)
	g.log.Info().Str("listen", g.ln.Addr().String()).Str("policy", g.cfg.Policy).Msg("serving")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-errc:
			g.log.Error().Err(err).Msg("serve failed")
			return 1
		case <-hup:
			g.policy.reloadLogged("SIGHUP")
			if err := g.audit.Rotate(); err != nil {
				g.log.Error().Err(err).Msg("audit file reopen failed")
			}
		case <-ctx.Done():
			break wait
		}
	}
	stopSignals() // a second signal now ends the process at once
	g.admin.serving.Store(false)
	drain := g.cfg.DrainTimeout
	g.log.Info().Dur("drain_timeout", drain).Int("sessions", g.srv.ActiveSessions()).Msg("draining")
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := g.srv.Shutdown(sctx); err != nil {
		g.log.Warn().Err(err).Msg("drain deadline passed; remaining sessions closed")
	}
	if err := <-errc; !errors.Is(err, proxy.ErrServerClosed) {
		g.log.Error().Err(err).Msg("serve ended with an error")
		return 1
	}
	g.log.Info().Msg("stopped")
	return 0
}

func cmdCheck(env map[string]string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(env)
	if err != nil {
		fmt.Fprintln(stderr, "configuration:", err)
		return 1
	}
	pol, err := policy.LoadFile(cfg.Policy)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	bad := 0
	for _, err := range pol.CheckFiles() {
		fmt.Fprintln(stderr, err)
		bad++
	}
	for _, f := range pol.Lint() {
		fmt.Fprintln(stderr, f.Error())
		bad++
	}
	fmt.Fprintf(stdout, "configuration ok: listen %s, passive ports %s, policy %s\n", cfg.Listen, orAny(cfg.PasvPorts), cfg.Policy)
	if pol.UserAtHostEnabled() {
		fmt.Fprintln(stdout, "user@host routing: enabled")
	} else {
		fmt.Fprintln(stdout, "user@host routing: disabled")
	}
	for _, r := range pol.Routes() {
		fmt.Fprintf(stdout, "route %-16s user %-12s auth %-11s -> %s\n", r.Name, r.User, r.Auth, r.Upstream)
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%d problem(s) found\n", bad)
		return 1
	}
	return 0
}

func orAny(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

func cmdVersion(w io.Writer) int {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, "ftpgate (no build information)")
		return 0
	}
	fmt.Fprintf(w, "ftpgate %s\n", bi.Main.Version)
	fmt.Fprintf(w, "go      %s\n", bi.GoVersion)
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH", "CGO_ENABLED":
			fmt.Fprintf(w, "%-7s %s\n", s.Key, s.Value)
		}
	}
	return 0
}
