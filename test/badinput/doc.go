// Package badinput holds ftpgate's bad-input suite: hundreds of hostile,
// malformed or merely unusual control-connection inputs, each sent over a
// real TCP session to a running proxy.Server (wired as "ftpgate serve"
// wires it) whose partner is a real SSH/SFTP server, first the in-process
// translate/translatetest server and then, when it is installed, OpenSSH's
// sshd. Each case checks the exact reply code, that the session still
// answers NOOP afterwards and that the server still serves a fresh
// session.
//
// The cases are a table in cases_test.go (one line each); inputs that need
// data connections, timing or many connections are the scenarios in
// scenario_test.go. The tests live in _test.go files; this file only names
// the package.
package badinput
