package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ftpgate/ftpgate/audit"
)

// auditConfig is the audit trail's part of the configuration. The key is
// not a field: it is read from FTPGATE_AUDIT_KEY_FILE or FTPGATE_AUDIT_KEY
// only when the emitter is built, so it never sits in a printable struct.
type auditConfig struct {
	File        string        `env:"AUDIT_FILE"`
	Stdout      bool          `env:"AUDIT_STDOUT" envDefault:"true"`
	Fsync       string        `env:"AUDIT_FSYNC" envDefault:"every"`
	MaxBytes    int64         `env:"AUDIT_MAX_BYTES" envDefault:"0"`
	Syslog      string        `env:"AUDIT_SYSLOG"`
	SyslogTLS   bool          `env:"AUDIT_SYSLOG_TLS" envDefault:"false"`
	SyslogCA    string        `env:"AUDIT_SYSLOG_CA"`
	FailOpen    bool          `env:"AUDIT_FAIL_OPEN" envDefault:"false"`
	KeyFile     string        `env:"AUDIT_KEY_FILE"`
	Progress    time.Duration `env:"PROGRESS_INTERVAL" envDefault:"30s"`
	HashDisable bool          `env:"TRANSFER_HASH_DISABLE" envDefault:"false"`
}

// fsyncPolicy parses FTPGATE_AUDIT_FSYNC: "every", "never" or a duration.
func (a auditConfig) fsyncPolicy() (audit.FsyncPolicy, error) {
	switch strings.ToLower(a.Fsync) {
	case "every", "":
		return audit.FsyncEvery, nil
	case "never":
		return audit.FsyncNever, nil
	}
	d, err := time.ParseDuration(a.Fsync)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("FTPGATE_AUDIT_FSYNC: %q is not every, never or a positive duration", a.Fsync)
	}
	return audit.FsyncInterval(d), nil
}

// auditKey loads the chain key, or returns the zero Key when none is
// configured (records then carry no mac).
func auditKey(a auditConfig, env map[string]string) (audit.Key, error) {
	if a.KeyFile != "" {
		k, err := audit.KeyFromFile(a.KeyFile)
		if err != nil {
			return audit.Key{}, fmt.Errorf("FTPGATE_AUDIT_KEY_FILE: %w", err)
		}
		return k, nil
	}
	if v := env["FTPGATE_AUDIT_KEY"]; v != "" {
		k, err := audit.NewKey([]byte(v))
		if err != nil {
			return audit.Key{}, fmt.Errorf("FTPGATE_AUDIT_KEY: %w", err)
		}
		return k, nil
	}
	return audit.Key{}, nil
}

// newEmitter builds the audit emitter the configuration describes. A file
// sink continues the chain of the file it appends to.
func newEmitter(ctx context.Context, a auditConfig, env map[string]string, stdout io.Writer) (*audit.Emitter, error) {
	key, err := auditKey(a, env)
	if err != nil {
		return nil, err
	}
	opt := audit.Options{Key: key, FailOpen: a.FailOpen}
	if a.File != "" {
		fs, err := a.fsyncPolicy()
		if err != nil {
			return nil, err
		}
		seq, mac, err := audit.LastRecord(a.File)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("FTPGATE_AUDIT_FILE: cannot continue the chain: %w", err)
		}
		if seq > 0 {
			opt.StartSeq, opt.PrevMAC = seq+1, mac
		}
		sink, err := audit.NewFileSink(a.File, audit.FileOptions{Fsync: fs, MaxBytes: a.MaxBytes})
		if err != nil {
			return nil, fmt.Errorf("FTPGATE_AUDIT_FILE: %w", err)
		}
		opt.Sinks = append(opt.Sinks, sink)
	}
	if a.Stdout {
		opt.Sinks = append(opt.Sinks, audit.NewWriterSink(stdout))
	}
	if a.Syslog != "" {
		so := audit.SyslogOptions{Addr: a.Syslog}
		if a.SyslogTLS {
			so.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
			if a.SyslogCA != "" {
				pem, err := os.ReadFile(a.SyslogCA)
				if err != nil {
					return nil, fmt.Errorf("FTPGATE_AUDIT_SYSLOG_CA: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("FTPGATE_AUDIT_SYSLOG_CA: no certificate in %s", a.SyslogCA)
				}
				so.TLS.RootCAs = pool
			}
		}
		sink, err := audit.NewSyslogSink(ctx, so)
		if err != nil {
			return nil, fmt.Errorf("FTPGATE_AUDIT_SYSLOG: %w", err)
		}
		opt.Sinks = append(opt.Sinks, sink)
	}
	if len(opt.Sinks) == 0 {
		return nil, errors.New("audit: no sink: set FTPGATE_AUDIT_FILE, FTPGATE_AUDIT_SYSLOG or FTPGATE_AUDIT_STDOUT=true")
	}
	return audit.NewEmitter(opt)
}

// cmdAudit runs "ftpgate audit verify [--partial] FILE...".
func cmdAudit(args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: ftpgate audit verify [--partial] FILE...")
		return 2
	}
	args = args[1:]
	partial := false
	if len(args) > 0 && args[0] == "--partial" {
		partial, args = true, args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ftpgate audit verify [--partial] FILE...")
		return 2
	}
	cfg, err := loadConfig(env)
	if err != nil {
		fmt.Fprintln(stderr, "configuration:", err)
		return 2
	}
	key, err := auditKey(cfg.Audit, env)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if key.IsZero() {
		fmt.Fprintln(stderr, "warning: no FTPGATE_AUDIT_KEY_FILE or FTPGATE_AUDIT_KEY: checking the sequence only, not the chain")
	}
	res, err := (&audit.Verifier{Key: key, Partial: partial}).VerifyFiles(args...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, res.String())
	if !res.OK() {
		return 1
	}
	return 0
}
