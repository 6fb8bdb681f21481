//PAYFTP   JOB (ACCT),'PAYROLL FTP',CLASS=A,MSGCLASS=X,NOTIFY=&SYSUID
//*--------------------------------------------------------------------
//* FTPNETRC: the login comes from a NETRC data set, not from the
//* deck. The client looks up the host line's name in the data set on
//* the NETRC DD and sends its login and password; the INPUT DD holds
//* only the host line and the subcommands. Protect the NETRC data set
//* with RACF (UACC(NONE), the job's user READ).
//*
//* ZOSJOB.FTP.NETRC holds one line per host:
//*   machine ftpgate.batch.example login ZOSNETRC password <secret>
//* and ftpgate has a route for ZOSNETRC as in FTPROUTE.
//*
//* Exercised by test/zos/decks/netrc-put.deck, with the NETRC data
//* set in test/zos/decks/netrc-put.netrc
//*   go test ./test/zos -run 'TestDecks/.*/netrc-put'
//*--------------------------------------------------------------------
//FTPSTEP  EXEC PGM=FTP,REGION=0M,PARM='(EXIT'
//SYSPRINT DD SYSOUT=*
//OUTPUT   DD SYSOUT=*
//NETRC    DD DISP=SHR,DSN=ZOSJOB.FTP.NETRC
//INPUT    DD *
ftpgate.batch.example 2121
put 'ZOSJOB.PAY.DATA' 'ZOSNETRC.PAY.DATA'
quit
/*
