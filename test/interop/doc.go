// Package interop runs the interoperability matrix: real FTP clients
// against an in-process ftpgate (wired as "ftpgate serve" wires it, with the
// connection pool) in front of two real SFTP servers, all on loopback.
//
// Partners (columns of the table's second field):
//
//   - OpenSSH's sshd with internal-sftp (package peers starts it).
//   - ProFTPD with mod_sftp, a second SFTP implementation: started by the
//     test on 127.0.0.1 and a random port with a throwaway ECDSA host key
//     and one user authorized by key (SFTPAuthorizedUserKeys file:...),
//     chrooted to a home directory. The binary is $FTPGATE_TEST_PROFTPD,
//     else /usr/sbin/proftpd, else /opt/proftpd/usr/sbin/proftpd (where
//     .ci/run unpacks it beside vsftpd, which conflicts with it in Debian),
//     else proftpd on PATH; modules are in $FTPGATE_TEST_PROFTPD_MODULES or
//     ../lib/proftpd beside the binary. It needs root.
//
// Clients (rows): curl, lftp, tnftp, inetutils ftp (driven with -n -v and
// a here-document), Python's ftplib (testdata/ftpops.py) and Apache Commons
// Net (testdata/FtpOps.java, compiled with javac against Debian's
// libcommons-net-java when the test starts).
//
// Operations (columns): login; upload and download (SHA-256 equal on both
// sides); LIST; NLST with a glob (the pattern must reach ftpgate, not be
// filtered by the client); rename; delete; mkdir and rmdir; a resumed
// download (REST); an abort (the client breaks off a 16 MiB download, by
// ABOR or by closing the data connection, and the same session then
// answers another command); and an upload/download round trip in active
// mode (PORT or EPRT) and in passive mode (PASV where the client can be
// told to use it). Other operations run in the client's default passive
// mode. Each check looks at the partner's files, the client's files and
// ftpgate's audit records, never at the client's word alone.
//
// Every cell is a real result: pass (with how), FAIL (with why; the test
// fails), or skip with the reason (a client or partner missing here). The
// table is printed with t.Log at the end of TestMatrix and written to
// MATRIX.md when FTPGATE_WRITE_MATRIX=1. The whole matrix takes about 20 s
// on a 2-core machine.
package interop
