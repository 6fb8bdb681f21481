package policy_test

import (
	"fmt"
	"strings"

	"github.com/ftpgate/ftpgate/policy"
)

func ExamplePolicy_Login() {
	p, err := policy.Load(strings.NewReader(`version: 1
known_hosts: /etc/ftpgate/known_hosts
user_at_host:
  enabled: true
  allow_hosts: ["*.partner.test", "10.0.0.0/8"]
routes:
  - name: reports
    user: REPJOB
    upstream: sftp://files.partner.test/outbound
`), "policy.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, user := range []string{"repjob", "ops@sftp.partner.test:2222", "ops@192.0.2.7", "nobody"} {
		d := p.Login(policy.LoginRequest{User: user})
		if d.Allow {
			fmt.Printf("%s: %s %s via %s\n", user, d.Rule, d.Auth, d.Upstream)
		} else {
			fmt.Printf("%s: denied by %s: %s\n", user, d.Rule, d.Reason)
		}
	}
	// Output:
	// repjob: reports passthrough via sftp://repjob@files.partner.test:22/outbound
	// ops@sftp.partner.test:2222: user@host passthrough via sftp://ops@sftp.partner.test:2222
	// ops@192.0.2.7: denied by user@host: host "192.0.2.7" is not in user_at_host.allow_hosts
	// nobody: denied by default-deny: no route for user
}

func ExampleLoad_errors() {
	_, err := policy.Load(strings.NewReader(`version: 1
routes:
  - user: payjob
    upstream: sftp://pay:hunter2@sftp.partner.test
    known_host: /etc/ftpgate/known_hosts
`), "policy.yaml")
	fmt.Println(err)
	// Output:
	// policy.yaml:3: route "payjob" has no host-key source: set known_hosts or host_key_sha256 (or a top-level known_hosts); ftpgate never accepts an unknown host key
	// policy.yaml:4: route "payjob": upstream: the URL must not hold a password; use upstream_password: {env: NAME} or {file: PATH}
	// policy.yaml:5: unknown key "known_host" in route
}
