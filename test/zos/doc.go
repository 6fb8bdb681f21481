// Package zos tests ftpgate the way its first users drive it: IBM z/OS batch
// jobs whose FTP step (EXEC PGM=FTP) reads its subcommands from an INPUT DD.
//
// There is no z/OS here, so the package emulates the z/OS FTP client from
// its documented behaviour (z/OS Communications Server IP User's Guide and
// Commands; IP and SNA Codes) and replays batch decks through an in-process
// ftpgate, wired as "ftpgate serve" wires it, in front of a real OpenSSH
// sshd. The emulator judges every reply as the real client does:
//
//   - An EXIT job (PARM='host (EXIT', or CLIENTEXIT TRUE) ends at the first
//     4xx or 5xx reply, except one to a typed SITE or to the SITE that
//     SENDSITE adds before a PUT; a 5xx to QUOTE SITE ends it.
//   - A transfer gets exactly one preliminary reply (125 or 150) and a final
//     226 or 250; a fresh PORT (EPRT) or PASV (EPSV) precedes every transfer.
//   - Check confidence is High only when the final reply arrives after the
//     data is complete and the data connection ended with a FIN, not a
//     reset. On Linux the emulator reads the data socket's TCP state when
//     the final reply arrives, so the order is judged exactly.
//   - TYPE A data from the server must use CRLF; each line is a record, and
//     records are compared line by line with what the test expects.
//   - The session starts in TYPE A: no TYPE is sent without an ascii or
//     binary subcommand. The login is USER, 331, PASS with the whole
//     password phrase, 230; 332 is never expected. With EXTENSIONS UTF8,
//     FEAT comes before USER and LANG only if FEAT lists it.
//
// Anything a server does that the z/OS client would not accept is a
// violation in Result, and a test fails on any violation. The emulator's
// own judges are tested against a scripted server that breaks each rule
// (TestJudges).
//
// # Decks
//
// decks/NAME.deck is an INPUT DD as a real job has it: the host line, the
// user, the password (a phrase with blanks), then subcommands (ascii,
// binary, put, get ... (REPLACE, mput, mget, mdelete, delete, rename, mkdir,
// cd, lcd, site, quote site, locsite, dir, ls, quit). Remote names are
// quoted MVS names, as jobs write them. decks/NAME.ftpdata, when present, is
// the job's FTP.DATA (SYSFTPD DD) and decks/NAME.netrc its NETRC DD.
// &NAME in a deck is a JCL symbol (DD *,SYMBOLS=JCLONLY), set by the test.
// The emulator's local data sets are files in a temporary directory:
// 'ZOSJOB.PAY.DATA' is the file ZOSJOB.PAY.DATA, a PDS is a directory and
// its members are files in it.
//
// Each deck runs in two variants:
//
//   - mvs: the deck as it is, through a route with
//     "mvs: {mode: map, root: DIR, qualifiers_as_dirs: false}", so that
//     ftpgate maps 'ZOSBATCH.PAY.BIN' to DIR/ZOSBATCH.PAY.BIN and
//     'ZOSBATCH.JCL(JOBA)' to DIR/ZOSBATCH.JCL/JOBA. Until policy.Load
//     knows the mvs key, these runs skip with "waiting for the mvs route
//     key".
//   - unix: decks/unix/NAME.deck, the same job with the remote names
//     written as the Unix names that mapping gives (an unquoted name gets
//     the login name as prefix, as on z/OS), through a route without the
//     mvs key; quoted names then reach SFTP literally. A deck without a
//     unix/ copy names nothing remote the mapping would change and runs as
//     it is. Both variants must leave the same files upstream, except
//     put-noremote, whose unix run stores a file named 'ZOSJOB.PAY.DATA'
//     with the quotes.
//
// Every run happens in six data connection modes: PORT (the z/OS default),
// PASV (FWFRIENDLY TRUE), EPSV (FWFRIENDLY and EPSV4 TRUE), EPRT (EPSV4
// TRUE), and on IPv6 EPRT6 and EPSV6. TestDecks logs a results table.
//
// A deck that shows a known ftpgate bug (put-nodir, mget-subdir, get-slow)
// skips with the bug's description while the symptom is there, and is
// checked like any other deck once it is gone. get-slow reads its data
// connection at 4 MiB/s, as a job writing to tape would; the other decks
// move files smaller than a loopback connection's first receive window, so
// their data is always delivered before ftpgate closes the connection.
//
// Every test skips cleanly, naming the package to install, when sshd is
// missing. The deploy/jcl members name the deck that exercises each of
// them.
package zos
