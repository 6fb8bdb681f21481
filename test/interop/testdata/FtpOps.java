// FtpOps OP HOST PORT USER PASSWORD DIR: one matrix operation with Apache
// Commons Net's FTPClient, files in DIR. Exits 1 with the last reply on a
// failure.
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPClient;
import org.apache.commons.net.ftp.FTPFile;
import org.apache.commons.net.ftp.FTPReply;

public class FtpOps {
    static FTPClient c = new FTPClient();

    static void fail(String what) {
        System.err.println(what + " failed: " + c.getReplyString());
        System.exit(1);
    }

    static void put(String dir, String name, String remote) throws IOException {
        try (InputStream in = new FileInputStream(new File(dir, name))) {
            if (!c.storeFile(remote, in)) fail("STOR " + remote);
        }
    }

    static void get(String dir, String remote, String name, boolean append) throws IOException {
        try (OutputStream out = new FileOutputStream(new File(dir, name), append)) {
            if (!c.retrieveFile(remote, out)) fail("RETR " + remote);
        }
    }

    public static void main(String[] a) throws Exception {
        String op = a[0], host = a[1], user = a[3], password = a[4], dir = a[5];
        int port = Integer.parseInt(a[2]);
        c.setConnectTimeout(30000);
        c.setDefaultTimeout(30000);
        c.setDataTimeout(Duration.ofSeconds(30));
        c.connect(host, port);
        if (!FTPReply.isPositiveCompletion(c.getReplyCode())) fail("connect");
        if (!c.login(user, password)) fail("login");
        c.enterLocalPassiveMode(); // PASV: EPSV only with setUseEPSVwithIPv4
        if (!c.setFileType(FTP.BINARY_FILE_TYPE)) fail("TYPE I");
        switch (op) {
            case "login":
                System.out.println(c.printWorkingDirectory());
                break;
            case "upload":
                put(dir, "up.bin", "up.bin");
                break;
            case "download":
                get(dir, "seed.bin", "dl.bin", false);
                break;
            case "list":
                FTPFile[] files = c.listFiles();
                if (files == null || !FTPReply.isPositiveCompletion(c.getReplyCode())) fail("LIST");
                for (FTPFile f : files) System.out.println(f.getRawListing());
                break;
            case "nlst-glob":
                String[] names = c.listNames("*.txt");
                if (names == null) fail("NLST");
                for (String n : names) System.out.println(n);
                break;
            case "rename":
                if (!c.rename("ren-src.txt", "ren-dst.txt")) fail("rename");
                break;
            case "delete":
                if (!c.deleteFile("del.txt")) fail("DELE");
                break;
            case "mkdir-rmdir":
                if (!c.makeDirectory("newdir")) fail("MKD");
                if (!c.removeDirectory("newdir")) fail("RMD");
                break;
            case "rest-resume":
                c.setRestartOffset(new File(dir, "partial.bin").length());
                get(dir, "seed.bin", "partial.bin", true);
                break;
            case "abort":
                InputStream in = c.retrieveFileStream("big.bin");
                if (in == null) fail("RETR big.bin");
                byte[] buf = new byte[65536];
                if (in.read(buf) <= 0) fail("read");
                // ABOR: the transfer's 426 first, then the ABOR's 226.
                int code = c.abor();
                if (code == 426) code = c.getReply();
                in.close();
                if (!FTPReply.isPositiveCompletion(code)) fail("ABOR");
                System.out.println(c.printWorkingDirectory());
                break;
            case "active":
                c.enterLocalActiveMode();
                put(dir, "act.bin", "act.bin");
                get(dir, "act.bin", "act-back.bin", false);
                break;
            case "passive":
                c.enterLocalPassiveMode();
                put(dir, "pas.bin", "pas.bin");
                get(dir, "pas.bin", "pas-back.bin", false);
                break;
            default:
                System.err.println("unknown op " + op);
                System.exit(2);
        }
        c.logout();
        c.disconnect();
    }
}
