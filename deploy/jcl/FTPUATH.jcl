//PAYFTP   JOB (ACCT),'PAYROLL FTP',CLASS=A,MSGCLASS=X,NOTIFY=&SYSUID
//*--------------------------------------------------------------------
//* FTPUATH: user@host routing. The job names the partner in the user
//* line (the classic FTP proxy convention) and ftpgate carries the
//* session there over SFTP, passing the password through: it is the
//* partner's password (a phrase with blanks works; ftpgate takes
//* everything after "PASS "). ftpgate needs user_at_host enabled and
//* the partner in allow_hosts, and checks the partner's host key.
//* The partner is a JCL symbol, exported to the instream data.
//*
//* Exercised by test/zos/decks/userhost-put.deck
//*   go test ./test/zos -run 'TestDecks/unix/.*/userhost-put'
//*--------------------------------------------------------------------
//         EXPORT SYMLIST=(PARTNER)
//         SET PARTNER='sftp.partner.example'
//FTPSTEP  EXEC PGM=FTP,REGION=0M,PARM='(EXIT'
//SYSPRINT DD SYSOUT=*
//OUTPUT   DD SYSOUT=*
//INPUT    DD *,SYMBOLS=JCLONLY
ftpgate.batch.example 2121
zosjob@&PARTNER
zOS partner phrase with blanks
put 'ZOSJOB.PAY.DATA' pay.daily.txt
quit
/*
