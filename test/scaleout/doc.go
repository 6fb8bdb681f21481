// Package scaleout holds ftpgate's scale-out end-to-end test: HAProxy in
// TCP mode with PROXY protocol v2 in front of two ftpgate replicas (the
// real binary), sharing failed-login lockouts through a real redis-server,
// carrying sessions to a real OpenSSH sshd, with curl and Python's ftplib
// as clients, all on loopback. The tests live in _test.go files; this file
// only names the package.
//
// One host stands in for several: the replicas listen on 127.0.0.3 and
// 127.0.0.4, HAProxy on 127.0.0.1 and the client connects from 127.0.0.2.
// On one host the replicas cannot each advertise an address of their own
// that the client reaches through the balancer, so each gets a passive
// port range of its own instead, and HAProxy forwards each range to its
// replica (the "own port range" option of the README's Scale-out section).
//
// The binary is built from the working tree with "go build -overlay",
// which adds the scale-out hook to cmd/ftpgate/serve.go when that file
// does not call it yet; nothing on disk is changed.
//
// The tests skip cleanly, naming the Debian package to install, when
// haproxy, redis-server, sshd, curl or python3 is missing.
package scaleout
