package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ftpgate/ftpgate/test/peers"
)

// javaClientName is the row of the JVM client.
const javaClientName = "Java commons-net"

// commonsNetJar is where Debian's libcommons-net-java puts the library.
const commonsNetJar = "/usr/share/java/commons-net.jar"

// compileJava compiles testdata/FtpOps.java against commons-net into a
// temporary directory. skip says why the Java row cannot run.
func compileJava(t *testing.T) (dir, skip string) {
	t.Helper()
	for _, p := range []string{"javac", "java"} {
		if _, err := exec.LookPath(p); err != nil {
			return "", p + " not installed (" + installHint(p) + ")"
		}
	}
	if _, err := os.Stat(commonsNetJar); err != nil {
		return "", commonsNetJar + " missing (apt-get install libcommons-net-java)"
	}
	dir = t.TempDir()
	out, err := peers.Run(t, nil, "javac", "-nowarn", "-cp", commonsNetJar, "-d", dir, filepath.Join("testdata", "FtpOps.java"))
	if err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return dir, ""
}

// script runs a BSD-style ftp client (tnftp, inetutils-ftp) with "-n -v"
// on a here-document that logs in, changes to the local directory and runs
// body. These clients exit 0 whatever happened, so the checks look at the
// partner, the files and ftpgate's records; output holds the replies.
func bsdScript(e *env, prog, body string) ([]byte, error) {
	s := fmt.Sprintf("user %s %s\nlcd %s\n%squit\n", matrixUser, matrixPass, e.local, body)
	return peers.Run(e.t, []byte(s), prog, "-n", "-v", e.host, strconv.Itoa(e.port))
}

// bsdClient is the row for tnftp or inetutils-ftp. passiveOn is what turns
// passive mode on for the operations that run passive; pasvOnly what makes
// it use PASV rather than EPSV; activeOn what turns it off.
func bsdClient(name, prog, passiveOn, pasvOnly, activeOn string) client {
	s := func(body string) func(e *env) ([]byte, error) {
		return func(e *env) ([]byte, error) { return bsdScript(e, prog, passiveOn+body) }
	}
	return client{
		name:     name,
		programs: []string{prog},
		run: map[string]func(e *env) ([]byte, error){
			"login":       s("pwd\n"),
			"upload":      s("binary\nput up.bin up.bin\n"),
			"download":    s("binary\nget seed.bin dl.bin\n"),
			"list":        s("dir\n"),
			"NLST glob":   s("nlist *.txt\n"),
			"rename":      s("rename ren-src.txt ren-dst.txt\n"),
			"delete":      s("delete del.txt\n"),
			"mkdir/rmdir": s("mkdir newdir\nrmdir newdir\n"),
			"REST resume": s("binary\nreget seed.bin partial.bin\n"),
			// Writing into a pipe that closes: the client breaks off the
			// data connection (it sends no ABOR), then goes on.
			"abort": s("binary\nget big.bin \"|head -c 1000 >/dev/null\"\npwd\n"),
			"active": func(e *env) ([]byte, error) {
				return bsdScript(e, prog, activeOn+"binary\nput act.bin act.bin\nget act.bin act-back.bin\n")
			},
			"passive": func(e *env) ([]byte, error) {
				return bsdScript(e, prog, passiveOn+pasvOnly+"binary\nput pas.bin pas.bin\nget pas.bin pas-back.bin\n")
			},
		},
	}
}

// matrixClients are the rows.
func matrixClients() []client {
	url := func(e *env, p string) string {
		return "ftp://" + matrixUser + ":" + matrixPass + "@" + e.addr() + "/" + p
	}
	local := func(e *env, name string) string { return filepath.Join(e.local, name) }
	curl := client{
		name:     "curl",
		programs: []string{"curl"},
		run: map[string]func(e *env) ([]byte, error){
			"login":    func(e *env) ([]byte, error) { return peers.Curl(e.t, "-l", url(e, "")) },
			"upload":   func(e *env) ([]byte, error) { return peers.Curl(e.t, "-T", local(e, "up.bin"), url(e, "up.bin")) },
			"download": func(e *env) ([]byte, error) { return peers.Curl(e.t, "-o", local(e, "dl.bin"), url(e, "seed.bin")) },
			"list":     func(e *env) ([]byte, error) { return peers.Curl(e.t, url(e, "")) },
			// curl's URL globbing knows no "*": the pattern goes as a
			// custom listing command.
			"NLST glob": func(e *env) ([]byte, error) { return peers.Curl(e.t, "-X", "NLST *.txt", url(e, "")) },
			"rename": func(e *env) ([]byte, error) {
				return peers.Curl(e.t, "-Q", "RNFR ren-src.txt", "-Q", "RNTO ren-dst.txt", "-l", url(e, ""))
			},
			"delete": func(e *env) ([]byte, error) { return peers.Curl(e.t, "-Q", "DELE del.txt", "-l", url(e, "")) },
			"mkdir/rmdir": func(e *env) ([]byte, error) {
				return peers.Curl(e.t, "-Q", "MKD newdir", "-Q", "RMD newdir", "-l", url(e, ""))
			},
			"REST resume": func(e *env) ([]byte, error) {
				return peers.Curl(e.t, "-C", "-", "-o", local(e, "partial.bin"), url(e, "seed.bin"))
			},
			// A range download: curl stops after 100 bytes and sends ABOR.
			"abort": func(e *env) ([]byte, error) {
				return peers.Curl(e.t, "-r", "0-99", "-o", local(e, "part.bin"), url(e, "big.bin"))
			},
			"active": func(e *env) ([]byte, error) {
				if out, err := peers.Curl(e.t, "--ftp-port", "127.0.0.1", "-T", local(e, "act.bin"), url(e, "act.bin")); err != nil {
					return out, err
				}
				return peers.Curl(e.t, "--ftp-port", "127.0.0.1", "-o", local(e, "act-back.bin"), url(e, "act.bin"))
			},
			"passive": func(e *env) ([]byte, error) {
				if out, err := peers.Curl(e.t, "--ftp-pasv", "--disable-epsv", "-T", local(e, "pas.bin"), url(e, "pas.bin")); err != nil {
					return out, err
				}
				return peers.Curl(e.t, "--ftp-pasv", "--disable-epsv", "-o", local(e, "pas-back.bin"), url(e, "pas.bin"))
			},
		},
	}

	lftpRun := func(script string) func(e *env) ([]byte, error) {
		return func(e *env) ([]byte, error) {
			open := fmt.Sprintf("open -u %s,%s -p %d %s; lcd %s; ", matrixUser, matrixPass, e.port, e.host, e.local)
			return peers.LFTP(e.t, open+script)
		}
	}
	lftp := client{
		name:     "lftp",
		programs: []string{"lftp"},
		run: map[string]func(e *env) ([]byte, error){
			"login":       lftpRun("quote PWD"),
			"upload":      lftpRun("put up.bin -o up.bin"),
			"download":    lftpRun("get seed.bin -o dl.bin"),
			"list":        lftpRun("ls"),
			"NLST glob":   lftpRun("nlist *.txt"),
			"rename":      lftpRun("mv ren-src.txt ren-dst.txt"),
			"delete":      lftpRun("rm del.txt"),
			"mkdir/rmdir": lftpRun("mkdir newdir; rmdir newdir"),
			"REST resume": lftpRun("get -c seed.bin -o partial.bin"),
			// The reader of the transfer goes away: lftp sends ABOR.
			"abort":   lftpRun("cat big.bin | head -c 1000 > /dev/null; quote PWD"),
			"active":  lftpRun("set ftp:passive-mode no; put act.bin -o act.bin; get act.bin -o act-back.bin"),
			"passive": lftpRun("set ftp:passive-mode yes; set ftp:prefer-epsv no; put pas.bin -o pas.bin; get pas.bin -o pas-back.bin"),
		},
	}

	tnftp := bsdClient("tnftp", "tnftp", "passive on\n", "epsv4 off\n", "passive off\n")
	// inetutils ftp starts in active mode; "passive" toggles passive on, and
	// it knows only PASV.
	inetutils := bsdClient("inetutils ftp", "inetutils-ftp", "passive\n", "", "")

	pyRun := func(op string) func(e *env) ([]byte, error) {
		return func(e *env) ([]byte, error) {
			script, err := os.ReadFile(filepath.Join("testdata", "ftpops.py"))
			if err != nil {
				return nil, err
			}
			return peers.Python(e.t, string(script), op, e.host, strconv.Itoa(e.port), matrixUser, matrixPass, e.local)
		}
	}
	javaRun := func(op string) func(e *env) ([]byte, error) {
		return func(e *env) ([]byte, error) {
			cp := e.java + string(os.PathListSeparator) + commonsNetJar
			return peers.Run(e.t, nil, "java", "-cp", cp, "FtpOps", op, e.host, strconv.Itoa(e.port), matrixUser, matrixPass, e.local)
		}
	}
	python := client{name: "Python ftplib", programs: []string{"python3"}, run: map[string]func(e *env) ([]byte, error){}}
	java := client{name: javaClientName, programs: []string{"java"}, run: map[string]func(e *env) ([]byte, error){}}
	for _, o := range ops {
		file := map[string]string{"NLST glob": "nlst-glob", "mkdir/rmdir": "mkdir-rmdir", "REST resume": "rest-resume"}[o.name]
		if file == "" {
			file = o.name
		}
		python.run[o.name] = pyRun(file)
		java.run[o.name] = javaRun(file)
	}
	return []client{curl, lftp, tnftp, inetutils, python, java}
}
