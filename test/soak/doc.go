// Package soak holds ftpgate's soak test: many concurrent FTP sessions
// (1,000 by default) doing mixed logins, listings, uploads, downloads,
// aborts and disconnects for a long time (10 minutes by default) against
// a real OpenSSH sshd on loopback, with ftpgate running as a separate
// process (the built binary, its admin endpoint on). Every 10 s it samples
// ftpgate's resident memory, goroutines and open descriptors from
// /metrics. The run passes when no transfer is corrupted (SHA-256), every
// reply is explained (421 and 426 only where the soak caused them), and
// the three samples are flat over the last half of the run. It writes a
// report (report.md, samples.csv and soak.png) to the -report directory.
//
// The test is behind the build tag "soak", so go test ./... never runs it:
//
//	go test -tags soak -run TestSoak -timeout 30m ./test/soak \
//	    -args -duration 10m -sessions 1000 -report report
//
// It needs sshd (openssh-server) and gnuplot (gnuplot-nox) for the plot;
// -partner translatetest runs against the in-process SSH/SFTP server
// instead of sshd. The test lives in soak_test.go; this file only names
// the package.
package soak
