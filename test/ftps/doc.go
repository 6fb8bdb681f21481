// Package ftps tests translate's FTPS backend against real FTP servers:
// vsftpd with explicit TLS (AUTH TLS) and require_ssl_reuse=YES, and
// ProFTPD's mod_tls with implicit TLS, which also requires data connections
// to reuse the control connection's TLS session. The tests start each
// server on 127.0.0.1 and random ports, with a throwaway CA and server
// certificate made in Go, and stop it when they end.
//
// The servers are found through $FTPGATE_TEST_VSFTPD and
// $FTPGATE_TEST_PROFTPD (paths to the binaries, for example inside a
// directory made with dpkg -x, since the two Debian packages conflict), else
// /usr/sbin and PATH. ProFTPD's modules are looked for in ../lib/proftpd
// beside the binary, or in $FTPGATE_TEST_PROFTPD_MODULES. Tests skip, saying
// what to install, when a server is missing, and also when not run as root:
// vsftpd's anonymous login chroots, and ProFTPD switches to the test user.
//
// vsftpd serves anonymous logins (USER anonymous, any password) into a
// chroot whose pub directory, owned by the "ftp" user that the vsftpd
// package creates, is writable; ProFTPD serves one virtual user from an
// AuthUserFile, so neither needs a system account made for the tests.
//
// The 64 MiB transfers are skipped with -short.
package ftps
