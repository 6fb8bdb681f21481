//PAYFTP   JOB (ACCT),'PAYROLL FTP',CLASS=A,MSGCLASS=X,NOTIFY=&SYSUID
//*--------------------------------------------------------------------
//* FTPROUTE: an existing FTP step pointed at ftpgate with a route
//* table. Only the host line changed: it names ftpgate instead of the
//* partner. ftpgate's policy maps the login ZOSBATCH to the partner
//* and logs in there with the route's own SSH key, so this deck holds
//* ftpgate's password (here a RACF-style password phrase, blanks and
//* all), never the partner's. The data set goes over SFTP.
//*
//* Policy entry on ftpgate (see the README, Policy file):
//*   routes:
//*     - name: payroll
//*       user: ZOSBATCH
//*       auth: local
//*       password_bcrypt: "$2a$10$..."
//*       upstream: sftp://payuser@sftp.partner.example/inbound/pay
//*       upstream_key: /etc/ftpgate/keys/payroll_ed25519
//*       known_hosts: /etc/ftpgate/known_hosts
//*
//* No TYPE subcommand: the session starts in TYPE A, ftpgate turns
//* the records' CRLF into LF on the way to the partner. The client
//* sends SITE FIXrecfm 80 LRECL=80 RECFM=FB BLKSIZE=... by itself
//* before the PUT (SENDSITE); ftpgate answers 200 and records it.
//*
//* Exercised by test/zos/decks/put-text.deck
//*   go test ./test/zos -run 'TestDecks/.*/put-text'
//*--------------------------------------------------------------------
//FTPSTEP  EXEC PGM=FTP,REGION=0M,PARM='(EXIT'
//SYSPRINT DD SYSOUT=*
//OUTPUT   DD SYSOUT=*
//INPUT    DD *
ftpgate.batch.example 2121
ZOSBATCH
zOS pass phrase 2026 ok
put 'ZOSJOB.PAY.DATA' PAY.DAILY.EXTRACT
quit
/*
