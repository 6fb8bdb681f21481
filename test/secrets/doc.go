// Package secrets proves that no secret ftpgate is given ever comes back
// out of it. It builds the real binary, runs "ftpgate serve" as a
// subprocess with secrets in its environment and in files, drives sessions
// through every path a secret travels (success, a wrong client password,
// a partner that refuses, a policy that refuses, an untrusted host key, a
// wrong key passphrase, a partner that dies in the middle of a transfer),
// and then searches every byte ftpgate wrote for them: the records on
// stdout, the log on stderr (at trace level), the audit file, /metrics,
// every reply and listing the client received, and the output of
// "ftpgate check" and "ftpgate audit verify".
//
// The test lives in secrets_test.go; this file only names the package.
package secrets
