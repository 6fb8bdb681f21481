// Command ftpgate is a transparent FTP-to-SFTP upgrading proxy: legacy FTP
// clients (z/OS JCL steps, cron scripts) keep speaking plain FTP to it, and
// it carries each session to the real partner over SFTP.
//
// Usage:
//
//	ftpgate serve            run the proxy (configuration from FTPGATE_* variables)
//	ftpgate demo             run a self-contained demo on 127.0.0.1:2121
//	ftpgate check            validate the configuration and print the routes
//	ftpgate audit verify F.. check the audit trail's HMAC chain
//	ftpgate version          print version and build information
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, stop, os.Args[1:], environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// environ returns the process environment as a map.
func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// run is the whole program, callable from tests. stopSignals restores
// default signal handling, so that a second SIGTERM during the drain ends
// the process at once.
func run(ctx context.Context, stopSignals func(), args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, stopSignals, env, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, stopSignals, env, stdout, stderr)
	case "check":
		if slices.Contains(args[1:], "--explain") {
			return cmdExplain(args[1:], env, stdout, stderr)
		}
		return cmdCheck(env, stdout, stderr)
	case "audit":
		return cmdAudit(args[1:], env, stdout, stderr)
	case "version", "--version", "-v":
		return cmdVersion(stdout)
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "ftpgate: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: ftpgate COMMAND

commands:
  serve     run the proxy; configuration from FTPGATE_* environment variables
  demo      run a self-contained demo (proxy on 127.0.0.1:2121, in-process SFTP partner)
  check     validate the configuration and the policy file, print the effective routes
  check --explain --from ADDR --user NAME [--to HOST[:PORT]] [--tls]
            show the zone, rule, route and action a login would get
  audit verify [--partial] FILE...
            check the audit chain of record files given in order (key from
            FTPGATE_AUDIT_KEY_FILE or FTPGATE_AUDIT_KEY)
  version   print version and build information
`)
}
