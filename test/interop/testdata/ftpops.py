# ftpops.py OP HOST PORT USER PASSWORD DIR: one matrix operation with
# Python's ftplib, files in DIR. An uncaught exception exits non-zero.
import ftplib
import os
import sys

op, host, port, user, password, d = sys.argv[1:7]
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=30)
ftp.login(user, password)


def put(name, remote):
    with open(os.path.join(d, name), "rb") as f:
        ftp.storbinary("STOR " + remote, f)


def get(remote, name, rest=None):
    with open(os.path.join(d, name), "ab" if rest else "wb") as f:
        ftp.retrbinary("RETR " + remote, f.write, rest=rest)


if op == "login":
    print(ftp.pwd())
elif op == "upload":
    put("up.bin", "up.bin")
elif op == "download":
    get("seed.bin", "dl.bin")
elif op == "list":
    ftp.retrlines("LIST")
elif op == "nlst-glob":
    for name in ftp.nlst("*.txt"):
        print(name)
elif op == "rename":
    ftp.rename("ren-src.txt", "ren-dst.txt")
elif op == "delete":
    ftp.delete("del.txt")
elif op == "mkdir-rmdir":
    ftp.mkd("newdir")
    ftp.rmd("newdir")
elif op == "rest-resume":
    get("seed.bin", "partial.bin", rest=os.path.getsize(os.path.join(d, "partial.bin")))
elif op == "abort":
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    conn.recv(65536)
    # ABOR with Telnet IP and DM as urgent data; the transfer's 426 comes
    # first, then the ABOR's own 226.
    resp = ftp.abort()
    if resp[:3] == "426":
        ftp.voidresp()
    conn.close()
    print(ftp.pwd())
elif op == "active":
    ftp.set_pasv(False)
    put("act.bin", "act.bin")
    get("act.bin", "act-back.bin")
elif op == "passive":
    ftp.set_pasv(True)  # PASV: ftplib uses EPSV only on IPv6
    put("pas.bin", "pas.bin")
    get("pas.bin", "pas-back.bin")
else:
    sys.exit("unknown op " + op)
ftp.quit()
