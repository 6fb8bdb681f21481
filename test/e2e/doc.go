// Package e2e holds ftpgate's end-to-end tests: a real proxy.Server,
// started in-process exactly as "ftpgate serve" wires it, between real FTP
// clients (curl, lftp, Python's ftplib, tnftp) and a real OpenSSH sshd, all
// on loopback. The tests live in _test.go files; this file only names the
// package.
//
// Every test skips cleanly, naming the Debian package to install, when a
// program it needs is missing (see package peers). The largest transfer
// (64 MiB) is skipped with -short.
package e2e
