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
	pol, err := policy.LoadFile(cfg.Policy)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: policy:", err)
		return 2
	}
	srv := cfg.server()
	srv.Dialer = cfg.dialer(func(k string) string { return env[k] })
	srv.Policy = func() *policy.Policy { return pol }
	em, err := newEmitter(ctx, cfg.Audit, env, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: audit:", err)
		return 2
	}
	defer em.Close()
	if key, _ := auditKey(cfg.Audit, env); key.IsZero() {
		log.Warn().Msg("no FTPGATE_AUDIT_KEY_FILE: records carry no HMAC chain and can be edited unnoticed")
	}
	srv.Audit = em
	srv.Logger = log
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "ftpgate: listen:", err)
		return 1
	}
	log.Info().Str("listen", ln.Addr().String()).Str("policy", cfg.Policy).Int("routes", len(pol.Routes())).Msg("serving")
	return serveUntilSignal(ctx, stopSignals, srv, ln, cfg.DrainTimeout, log)
}

// serveUntilSignal runs srv on ln until ctx ends (SIGTERM, SIGINT), then
// drains: no new connections, running transfers get up to drain to
// finish, idle sessions get 421.
func serveUntilSignal(ctx context.Context, stopSignals func(), srv *proxy.Server, ln net.Listener, drain time.Duration, log zerolog.Logger) int {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-errc:
			log.Error().Err(err).Msg("serve failed")
			return 1
		case <-hup:
			// SIGHUP reopens the audit file (after an external rename) and
			// writes a rotate record, so the chain continues.
			if err := srv.Audit.Rotate(); err != nil {
				log.Error().Err(err).Msg("audit rotation failed")
			} else {
				log.Info().Msg("audit file reopened")
			}
		case <-ctx.Done():
			break wait
		}
	}
	stopSignals() // a second signal now ends the process at once
	log.Info().Dur("drain_timeout", drain).Int("sessions", srv.ActiveSessions()).Msg("draining")
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("drain deadline passed; remaining sessions closed")
	}
	if err := <-errc; !errors.Is(err, proxy.ErrServerClosed) {
		log.Error().Err(err).Msg("serve ended with an error")
		return 1
	}
	log.Info().Msg("stopped")
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
