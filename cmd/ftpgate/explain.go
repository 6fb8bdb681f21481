package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"

	"github.com/ftpgate/ftpgate/policy"
)

// cmdExplain is "ftpgate check --explain": it loads the policy and prints
// how it would decide one login (source zone, route, destination zone,
// the rules tried, the action and the session's controls), without
// dialling anything. args are the arguments after "check"; the --explain
// flag itself may be among them. It exits 0 when the login would be
// allowed, 1 when it would be refused (or the policy does not load), and
// 2 for a usage error.
func cmdExplain(args []string, env map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ftpgate check --explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: ftpgate check --explain --from ADDR --user NAME [--to HOST[:PORT]] [--tls] [--policy FILE]

Prints which source zone, route, destination zone, rule and action the
policy gives a login, and the controls of the session. Exit status 0: the
login would be allowed; 1: refused; 2: usage error.

`)
		fs.PrintDefaults()
	}
	fs.Bool("explain", true, "explain a login (this mode)")
	from := fs.String("from", "", "client `address`, IPv4 or IPv6 (required)")
	user := fs.String("user", "", "the USER argument, as the client sends it (required)")
	to := fs.String("to", "", "partner `host`[:port]: explain the login as USER name@host")
	tls := fs.Bool("tls", false, "take the control connection as protected (AUTH TLS done)")
	polFile := fs.String("policy", "", "policy `file` (default: FTPGATE_POLICY)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "ftpgate check --explain: unexpected argument %q\n", fs.Arg(0))
		return 2
	case *from == "" || *user == "":
		fmt.Fprintln(stderr, "ftpgate check --explain: --from and --user are required")
		fs.Usage()
		return 2
	}
	addr, err := netip.ParseAddr(*from)
	if err != nil {
		fmt.Fprintf(stderr, "ftpgate check --explain: --from %q is not an IP address\n", *from)
		return 2
	}
	path := *polFile
	if path == "" {
		cfg, err := loadConfig(env)
		if err != nil {
			fmt.Fprintln(stderr, "configuration:", err)
			return 1
		}
		path = cfg.Policy
	}
	pol, err := policy.LoadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	e := pol.Explain(policy.LoginRequest{Client: addr, User: *user, TLS: *tls}, *to)
	fmt.Fprintf(stdout, "policy       %s\n", path)
	fmt.Fprint(stdout, e.String())
	if !e.Decision.Allow {
		return 1
	}
	return 0
}
