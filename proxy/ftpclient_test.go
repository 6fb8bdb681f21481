package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ftpClient is a minimal raw FTP client for tests: it sends exactly what a
// test says and returns the reply code and text, so tests can check the
// wire, not a library's interpretation of it.
type ftpClient struct {
	t    testing.TB
	conn net.Conn
	r    *textproto.Reader
}

func dialFTP(t testing.TB, addr string) *ftpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	fc := &ftpClient{t: t, conn: c, r: textproto.NewReader(newBufReader(c))}
	if code, msg := fc.read(); code != 220 {
		t.Fatalf("greeting: got %d %q; want 220", code, msg)
	}
	return fc
}

// read reads one (possibly multi-line) reply.
func (c *ftpClient) read() (int, string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	code, msg, err := c.r.ReadResponse(0)
	if err != nil && code == 0 {
		return 0, "read error: " + err.Error()
	}
	return code, msg
}

// send writes a raw line (CRLF added) and reads the reply.
func (c *ftpClient) send(line string) (int, string) {
	c.t.Helper()
	c.raw(line + "\r\n")
	return c.read()
}

func (c *ftpClient) raw(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// expect sends line and fails the test unless the reply code is want.
func (c *ftpClient) expect(line string, want int) string {
	c.t.Helper()
	code, msg := c.send(line)
	if code != want {
		c.t.Fatalf("%s: got %d %q; want %d", redactLine(line), code, msg, want)
	}
	return msg
}

func redactLine(line string) string {
	if strings.HasPrefix(strings.ToUpper(line), "PASS ") {
		return "PASS ****"
	}
	return line
}

func (c *ftpClient) login(user, pass string) {
	c.t.Helper()
	c.expect("USER "+user, 331)
	c.expect("PASS "+pass, 230)
}

// dataMode opens data connections passively (EPSV, PASV) or actively
// (PORT, EPRT).
type dataMode string

const (
	modeEPSV dataMode = "EPSV"
	modePASV dataMode = "PASV"
	modePORT dataMode = "PORT"
	modeEPRT dataMode = "EPRT"
)

// prepare sets up a data connection in the given mode and returns a
// function that yields the connection once the transfer command was sent.
func (c *ftpClient) prepare(mode dataMode) func() net.Conn {
	c.t.Helper()
	switch mode {
	case modeEPSV, modePASV:
		var addr string
		if mode == modeEPSV {
			msg := c.expect("EPSV", 229)
			i, j := strings.Index(msg, "|||"), strings.LastIndex(msg, "|")
			host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
			addr = net.JoinHostPort(host, msg[i+3:j])
		} else {
			msg := c.expect("PASV", 227)
			i, j := strings.Index(msg, "("), strings.Index(msg, ")")
			f := strings.Split(msg[i+1:j], ",")
			p1, _ := strconv.Atoi(f[4])
			p2, _ := strconv.Atoi(f[5])
			addr = fmt.Sprintf("%s.%s.%s.%s:%d", f[0], f[1], f[2], f[3], p1*256+p2)
		}
		dc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			c.t.Fatalf("data dial %s: %v", addr, err)
		}
		c.t.Cleanup(func() { dc.Close() })
		return func() net.Conn { return dc }
	default:
		host, _, _ := net.SplitHostPort(c.conn.LocalAddr().String())
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { ln.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		if mode == modePORT {
			ip := strings.ReplaceAll(host, ".", ",")
			c.expect(fmt.Sprintf("PORT %s,%d,%d", ip, port>>8, port&0xff), 200)
		} else {
			proto := "1"
			if strings.Contains(host, ":") {
				proto = "2"
			}
			c.expect(fmt.Sprintf("EPRT |%s|%s|%d|", proto, host, port), 200)
		}
		return func() net.Conn {
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			dc, err := ln.Accept()
			if err != nil {
				c.t.Fatalf("data accept: %v", err)
			}
			c.t.Cleanup(func() { dc.Close() })
			return dc
		}
	}
}

// retr downloads name and checks the reply sequence 150 then 226.
func (c *ftpClient) retr(name string, mode dataMode) []byte {
	c.t.Helper()
	conn := c.prepare(mode)
	c.expect("RETR "+name, 150)
	dc := conn()
	dc.SetReadDeadline(time.Now().Add(60 * time.Second))
	data, err := io.ReadAll(dc)
	if err != nil {
		c.t.Fatalf("RETR %s: read data: %v", name, err)
	}
	dc.Close()
	if code, msg := c.read(); code != 226 {
		c.t.Fatalf("RETR %s: final reply %d %q; want 226", name, code, msg)
	}
	return data
}

// stor uploads data as name and checks 150 then 226.
func (c *ftpClient) stor(verb, name string, data []byte, mode dataMode) {
	c.t.Helper()
	conn := c.prepare(mode)
	c.expect(verb+" "+name, 150)
	dc := conn()
	dc.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.Copy(dc, bytes.NewReader(data)); err != nil {
		c.t.Fatalf("%s %s: write data: %v", verb, name, err)
	}
	dc.Close()
	if code, msg := c.read(); code != 226 {
		c.t.Fatalf("%s %s: final reply %d %q; want 226", verb, name, code, msg)
	}
}

// list runs a listing command and returns the data.
func (c *ftpClient) list(cmd string, mode dataMode) string {
	c.t.Helper()
	conn := c.prepare(mode)
	c.expect(cmd, 150)
	dc := conn()
	dc.SetReadDeadline(time.Now().Add(20 * time.Second))
	data, _ := io.ReadAll(dc)
	dc.Close()
	if code, msg := c.read(); code != 226 {
		c.t.Fatalf("%s: final reply %d %q; want 226", cmd, code, msg)
	}
	return string(data)
}
