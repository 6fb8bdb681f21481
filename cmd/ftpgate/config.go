package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/rs/zerolog"

	"github.com/ftpgate/ftpgate/proxy"
	"github.com/ftpgate/ftpgate/translate"
)

// config is the process configuration, read from FTPGATE_* environment
// variables. The README's configuration reference lists the same fields;
// keep them in step.
type config struct {
	Listen              string        `env:"LISTEN" envDefault:":2121"`
	Policy              string        `env:"POLICY" envDefault:"/etc/ftpgate/policy.yaml"`
	PasvPorts           string        `env:"PASV_PORTS"`
	PasvAddress         string        `env:"PASV_ADDRESS"`
	IdleTimeout         time.Duration `env:"IDLE_TIMEOUT" envDefault:"5m"`
	LoginTimeout        time.Duration `env:"LOGIN_TIMEOUT" envDefault:"60s"`
	DataTimeout         time.Duration `env:"DATA_TIMEOUT" envDefault:"30s"`
	TransferIdleTimeout time.Duration `env:"TRANSFER_IDLE_TIMEOUT" envDefault:"120s"`
	UpstreamTimeout     time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"60s"`
	DialTimeout         time.Duration `env:"DIAL_TIMEOUT" envDefault:"10s"`
	HandshakeTimeout    time.Duration `env:"HANDSHAKE_TIMEOUT" envDefault:"20s"`
	DrainTimeout        time.Duration `env:"DRAIN_TIMEOUT" envDefault:"60s"`
	LoginFailDelay      time.Duration `env:"LOGIN_FAIL_DELAY" envDefault:"1s"`
	MaxSessions         int           `env:"MAX_SESSIONS" envDefault:"1000"`
	MaxSessionsPerAddr  int           `env:"MAX_SESSIONS_PER_ADDR" envDefault:"50"`
	LockoutFailures     int           `env:"LOCKOUT_FAILURES" envDefault:"5"`
	LockoutWindow       time.Duration `env:"LOCKOUT_WINDOW" envDefault:"15m"`
	Lockout             time.Duration `env:"LOCKOUT" envDefault:"1m"`
	LockoutMax          time.Duration `env:"LOCKOUT_MAX" envDefault:"1h"`
	MaxListEntries      int           `env:"MAX_LIST_ENTRIES" envDefault:"100000"`
	AllowForeignData    bool          `env:"ALLOW_FOREIGN_DATA_ADDRESS" envDefault:"false"`
	AllowLowDataPorts   bool          `env:"ALLOW_LOW_DATA_PORTS" envDefault:"false"`
	Greeting            string        `env:"GREETING" envDefault:"ftpgate ready."`
	LogLevel            string        `env:"LOG_LEVEL" envDefault:"info"`
	TLSCertFile         string        `env:"TLS_CERT_FILE"`
	TLSKeyFile          string        `env:"TLS_KEY_FILE"`
	TLSRequire          bool          `env:"TLS_REQUIRE" envDefault:"false"`
	Pool                bool          `env:"POOL" envDefault:"true"`
	PoolMaxChannels     int           `env:"POOL_MAX_CHANNELS" envDefault:"10"`
	PoolMaxConns        int           `env:"POOL_MAX_CONNS" envDefault:"100"`
	PoolIdle            time.Duration `env:"POOL_IDLE_TIMEOUT" envDefault:"60s"`
	KeepAlive           time.Duration `env:"KEEPALIVE_INTERVAL" envDefault:"30s"`
	AdminListen         string        `env:"ADMIN_LISTEN" envDefault:"127.0.0.1:9180"`
	AdminPprof          bool          `env:"ADMIN_PPROF" envDefault:"false"`
	ProbeInterval       time.Duration `env:"PROBE_INTERVAL" envDefault:"30s"`
	PolicyWatch         time.Duration `env:"POLICY_WATCH_INTERVAL" envDefault:"2s"`
	Audit               auditConfig
	Scale               scaleConfig // scale-out: PROXY protocol, shared limits (scaleout.go)
}

// loadConfig reads the configuration from environ ("KEY=value" pairs; the
// process environment in production, a fixed list in tests).
func loadConfig(environ map[string]string) (config, error) {
	cfg, err := env.ParseAsWithOptions[config](env.Options{
		Prefix:      "FTPGATE_",
		Environment: environ,
	})
	if err != nil {
		return cfg, envError(err)
	}
	if _, err := zerolog.ParseLevel(cfg.LogLevel); err != nil || cfg.LogLevel == "" {
		return cfg, fmt.Errorf("FTPGATE_LOG_LEVEL: %q is not one of trace, debug, info, warn, error", cfg.LogLevel)
	}
	if _, err := proxy.ParsePortRange(cfg.PasvPorts); err != nil {
		return cfg, fmt.Errorf("FTPGATE_PASV_PORTS: %w", err)
	}
	if err := cfg.Scale.check(); err != nil {
		return cfg, err
	}
	if _, err := cfg.Audit.fsyncPolicy(); err != nil {
		return cfg, err
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return cfg, errors.New("FTPGATE_TLS_CERT_FILE and FTPGATE_TLS_KEY_FILE go together")
	}
	if cfg.TLSRequire && cfg.TLSCertFile == "" {
		return cfg, errors.New("FTPGATE_TLS_REQUIRE needs FTPGATE_TLS_CERT_FILE and FTPGATE_TLS_KEY_FILE")
	}
	if cfg.PasvAddress != "" {
		a, err := netip.ParseAddr(cfg.PasvAddress)
		if err != nil || !a.Unmap().Is4() {
			return cfg, fmt.Errorf("FTPGATE_PASV_ADDRESS: %q is not an IPv4 address", cfg.PasvAddress)
		}
	}
	for name, d := range map[string]time.Duration{
		"FTPGATE_DATA_TIMEOUT": cfg.DataTimeout, "FTPGATE_UPSTREAM_TIMEOUT": cfg.UpstreamTimeout,
		"FTPGATE_DIAL_TIMEOUT": cfg.DialTimeout, "FTPGATE_HANDSHAKE_TIMEOUT": cfg.HandshakeTimeout,
		"FTPGATE_PROBE_INTERVAL": cfg.ProbeInterval, "FTPGATE_POLICY_WATCH_INTERVAL": cfg.PolicyWatch,
	} {
		if d <= 0 {
			return cfg, fmt.Errorf("%s: must be positive", name)
		}
	}
	return cfg, nil
}

// envError rewrites the env package's errors, which name Go struct
// fields, to name the environment variable the operator set.
func envError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	var msgs []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if tag, ok := envTag(reflect.TypeFor[config](), pe.Name); ok {
				msgs = append(msgs, fmt.Sprintf("FTPGATE_%s: %v", tag, pe.Err))
				continue
			}
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envTag finds the env tag of the field called name in t or in the structs
// it embeds as fields (the audit and scale-out settings).
func envTag(t reflect.Type, name string) (string, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name == name && f.Tag.Get("env") != "" {
			return f.Tag.Get("env"), true
		}
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if tag, ok := envTag(f.Type, name); ok {
				return tag, true
			}
		}
	}
	return "", false
}

// server builds the proxy.Server the configuration describes; the caller
// sets Policy, Audit and Logger.
func (c config) server() *proxy.Server {
	pr, _ := proxy.ParsePortRange(c.PasvPorts)
	var pa netip.Addr
	if c.PasvAddress != "" {
		pa, _ = netip.ParseAddr(c.PasvAddress)
	}
	return &proxy.Server{
		Dialer:                  c.dialer(nil),
		Greeting:                c.Greeting,
		LoginTimeout:            c.LoginTimeout,
		IdleTimeout:             c.IdleTimeout,
		DataConnTimeout:         c.DataTimeout,
		TransferIdleTimeout:     c.TransferIdleTimeout,
		UpstreamTimeout:         c.UpstreamTimeout,
		LoginFailDelay:          c.LoginFailDelay,
		ProgressInterval:        c.Audit.Progress,
		DisableTransferHash:     c.Audit.HashDisable,
		MaxSessions:             c.MaxSessions,
		MaxSessionsPerAddr:      c.MaxSessionsPerAddr,
		Limiter:                 c.limiter(),
		PassivePorts:            pr,
		PassiveAddress:          pa,
		AllowForeignDataAddress: c.AllowForeignData,
		AllowLowDataPorts:       c.AllowLowDataPorts,
	}
}

// frontTLS loads the listener's certificate for AUTH TLS, or returns nil
// when none is configured.
func (c config) frontTLS() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("FTPGATE_TLS_CERT_FILE/FTPGATE_TLS_KEY_FILE: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// limiter is the failed-login lockout; FTPGATE_LOCKOUT_FAILURES=0 turns
// it off.
func (c config) limiter() proxy.LoginLimiter {
	if c.LockoutFailures <= 0 {
		return nil
	}
	return &proxy.MemoryLimiter{MaxFailures: c.LockoutFailures, Window: c.LockoutWindow, Lockout: c.Lockout, MaxLockout: c.LockoutMax}
}

// dialer is the upstream dialer: SFTP partners through the SFTP dialer
// behind a connection pool (unless FTPGATE_POOL=false), FTPS partners
// through the FTPS dialer, chosen by the route's scheme.
func (c config) dialer(getenv func(string) string) translate.Dialer {
	d := &translate.SFTPDialer{
		DialTimeout:      c.DialTimeout,
		HandshakeTimeout: c.HandshakeTimeout,
		MaxListEntries:   c.MaxListEntries,
		Getenv:           getenv,
	}
	var sftpDialer translate.Dialer = d
	if c.Pool {
		sftpDialer = &translate.Pool{
			Dialer:             d,
			MaxChannelsPerConn: c.PoolMaxChannels,
			MaxConnsPerKey:     c.PoolMaxConns,
			IdleTimeout:        c.PoolIdle,
			KeepAlive:          c.KeepAlive,
		}
	}
	return &schemeDialer{
		SchemeDialer: translate.SchemeDialer{
			SFTP: sftpDialer,
			FTPS: &translate.FTPSDialer{
				DialTimeout:      c.DialTimeout,
				HandshakeTimeout: c.HandshakeTimeout,
				ReplyTimeout:     c.UpstreamTimeout,
				MaxListEntries:   c.MaxListEntries,
				Getenv:           getenv,
			},
		},
	}
}

// schemeDialer lets the metrics find the pool behind the scheme dialer.
type schemeDialer struct{ translate.SchemeDialer }

func (s *schemeDialer) pool() *translate.Pool {
	p, _ := s.SFTP.(*translate.Pool)
	return p
}
