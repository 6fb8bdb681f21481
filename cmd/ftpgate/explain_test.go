package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const explainPolicy = `version: 1
known_hosts: /etc/ftpgate/known_hosts
zones:
  sources:
    batch:
      networks: [10.20.0.0/16, "2001:db8:20::/48"]
    dmz:
      networks: [192.0.2.0/24]
  destinations:
    partners:
      hosts: ["*.partner.example"]
user_at_host:
  enabled: true
  allow_hosts: ["*.partner.example"]
routes:
  - name: payroll
    user: PAYJOB
    upstream: sftp://payuser@sftp.partner.example/inbound/pay
rules:
  - name: dmz-blocked
    from: [dmz]
    action: block
  - name: batch-upgrade
    from: [batch]
    to: [partners]
    action: upgrade
    read_only: true
    require_tls: true
`

func TestExplainCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(good, []byte(explainPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: x\n    action: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FTPGATE_POLICY": good}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout []string
		stderr string
	}{
		{
			name: "allowed login prints zone, route, rule and controls", env: env,
			args: []string{"--explain", "--from", "10.20.1.5", "--user", "PAYJOB", "--tls"},
			code: 0,
			stdout: []string{
				"policy       " + good,
				"zone         batch (network 10.20.0.0/16)",
				"route        payroll",
				"destination  sftp.partner.example: zone partners",
				"  2. batch-upgrade (line 23, upgrade): matches",
				"decision     allow by batch-upgrade, action upgrade",
				"controls     TLS required; read-only",
			},
		},
		{
			name: "require_tls refuses the same login without --tls", env: env,
			args: []string{"--explain", "--from", "10.20.1.5", "--user", "PAYJOB"},
			code: 1, stdout: []string{"decision     refuse by batch-upgrade", "requires a protected control connection"},
		},
		{
			name: "blocked zone exits 1 and names the rule", env: env,
			args: []string{"--from=192.0.2.7", "--user=PAYJOB"},
			code: 1, stdout: []string{"zone         dmz", "decision     refuse by dmz-blocked, action block"},
		},
		{
			name: "--to explains a user@host login", env: env,
			args: []string{"--explain", "--from", "2001:db8:20::9", "--user", "ops", "--to", "files.partner.example:2222", "--tls"},
			code: 0, stdout: []string{`USER "ops@files.partner.example:2222"`, "partner      sftp://ops@files.partner.example:2222"},
		},
		{
			name: "--policy overrides FTPGATE_POLICY", env: map[string]string{"FTPGATE_POLICY": "/nonexistent.yaml"},
			args: []string{"--policy", good, "--from", "10.20.1.5", "--user", "nobody"},
			code: 1, stdout: []string{"decision     refuse by default-deny", "no route for user"},
		},
		{
			name: "policy errors are printed with file and line", env: map[string]string{"FTPGATE_POLICY": bad},
			args: []string{"--from", "10.0.0.1", "--user", "x"},
			code: 1, stderr: bad + ":4: rule \"x\": action \"allow\" is not valid",
		},
		{
			name: "missing --user is a usage error", env: env,
			args: []string{"--explain", "--from", "10.0.0.1"},
			code: 2, stderr: "--from and --user are required",
		},
		{
			name: "an address that is not one is a usage error", env: env,
			args: []string{"--from", "batch.example", "--user", "x"},
			code: 2, stderr: `--from "batch.example" is not an IP address`,
		},
		{
			name: "unknown flag is a usage error", env: env,
			args: []string{"--from", "10.0.0.1", "--user", "x", "--frob"},
			code: 2, stderr: "flag provided but not defined: -frob",
		},
		{
			name: "stray argument is a usage error", env: env,
			args: []string{"--from", "10.0.0.1", "--user", "x", "extra"},
			code: 2, stderr: `unexpected argument "extra"`,
		},
		{
			name: "bad configuration is reported", env: map[string]string{"FTPGATE_POLICY": good, "FTPGATE_LOG_LEVEL": "loud"},
			args: []string{"--from", "10.0.0.1", "--user", "x"},
			code: 1, stderr: "FTPGATE_LOG_LEVEL",
		},
		{
			name: "--help prints the usage", env: env,
			args: []string{"--help"},
			code: 0, stderr: "usage: ftpgate check --explain --from ADDR --user NAME",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cmdExplain(tc.args, tc.env, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
			rest := out.String()
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", want, out.String())
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errOut.String())
			}
		})
	}
}
