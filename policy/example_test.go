package policy_test

import (
	"errors"
	"fmt"
	"net/netip"
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

func ExamplePolicy_Explain() {
	p, err := policy.Load(strings.NewReader(`version: 1
known_hosts: /etc/ftpgate/known_hosts
zones:
  sources:
    batch:
      networks: [10.20.0.0/16]
    dmz:
      networks: [192.0.2.0/24]
  destinations:
    partners:
      hosts: ["*.partner.test"]
routes:
  - name: reports
    user: REPJOB
    upstream: sftp://files.partner.test/outbound
rules:
  - name: dmz-blocked
    from: [dmz]
    action: block
  - name: batch
    from: [batch]
    to: [partners]
    action: upgrade
    read_only: true
`), "policy.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	e := p.Explain(policy.LoginRequest{Client: netip.MustParseAddr("10.20.3.4"), User: "REPJOB"}, "")
	fmt.Print(e)
	// Output:
	// login        USER "REPJOB" from 10.20.3.4, control connection not protected
	// zone         batch (network 10.20.0.0/16)
	// route        reports
	// destination  files.partner.test: zone partners (*.partner.test)
	// rules
	//   1. dmz-blocked (line 17, block): no: from [dmz] does not include source zone "batch"
	//   2. batch (line 20, upgrade): matches
	// decision     allow by batch, action upgrade
	// reason       rule "batch" (line 20, upgrade): route "reports" matches user "REPJOB"
	// partner      sftp://REPJOB@files.partner.test:22/outbound (auth passthrough)
	// controls     read-only; PORT/EPRT to the client's own address, ports from 1024
}

func ExampleDecision_Command() {
	p, err := policy.Load(strings.NewReader(`version: 1
known_hosts: /etc/ftpgate/known_hosts
routes:
  - user: PAYJOB
    upstream: sftp://sftp.partner.test/inbound
rules:
  - name: payroll
    users: [PAYJOB]
    action: upgrade
    paths: [/inbound]
    deny_commands: [DELE]
    allow_site_filetype: [JES]
`), "policy.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	d := p.Login(policy.LoginRequest{User: "PAYJOB"})
	for _, c := range [][3]string{
		{"SITE", "FILETYPE=JES", ""},
		{"DELE", "x", "/inbound/x"},
		{"STOR", "x", "/etc/x"},
		{"RETR", "x", "/inbound/x"},
	} {
		err := d.Command(c[0], c[1])
		if err == nil && c[2] != "" {
			err = d.Path(c[0], c[2])
		}
		var de *policy.DenyError
		if errors.As(err, &de) {
			fmt.Printf("%s %s: %d %s\n", c[0], c[1], de.Code, de.Reason)
		} else {
			fmt.Printf("%s %s: allowed\n", c[0], c[1])
		}
	}
	// Output:
	// SITE FILETYPE=JES: allowed
	// DELE x: 550 rule "payroll" (line 7) denies DELE
	// STOR x: 553 rule "payroll" (line 7): path "/etc/x" is outside its paths (/inbound)
	// RETR x: allowed
}
