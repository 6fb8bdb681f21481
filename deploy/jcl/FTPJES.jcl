//SUBFTP   JOB (ACCT),'SUBMIT FTP',CLASS=A,MSGCLASS=X,NOTIFY=&SYSUID
//*--------------------------------------------------------------------
//* FTPJES: a step that submits a job to the partner's JES through FTP
//* (SITE FILETYPE=JES, then PUT of the JCL). ftpgate refuses it: the
//* SITE gets 550, which the client ignores for a typed SITE, and the
//* PUT gets 550 as well, so this step ends with a non-zero return
//* code and nothing reaches the partner. Move such steps to another
//* path before switching the host to ftpgate; run ftpgate in warn
//* mode first and look for SITE FILETYPE in the records to find them.
//*
//* Exercised by test/zos/decks/jes-submit.deck
//*   go test ./test/zos -run 'TestDecks/.*/jes-submit'
//*--------------------------------------------------------------------
//FTPSTEP  EXEC PGM=FTP,REGION=0M,PARM='(EXIT'
//SYSPRINT DD SYSOUT=*
//OUTPUT   DD SYSOUT=*
//INPUT    DD *
ftpgate.batch.example 2121
ZOSBATCH
zOS pass phrase 2026 ok
site FILETYPE=JES
put 'ZOSJOB.JCL(PAYJOB)'
get J0012345 'ZOSJOB.JOB.OUTPUT' (REPLACE
quit
/*
