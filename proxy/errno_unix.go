//go:build unix

package proxy

import (
	"net"
	"syscall"
)

var (
	errEMFILE       error = syscall.EMFILE
	errENFILE       error = syscall.ENFILE
	errECONNABORTED error = syscall.ECONNABORTED
)

// setOOBInline makes TCP urgent data arrive in the normal byte stream.
// Clients send "IAC IP IAC DM" (or, like Python's ftplib, the whole ABOR
// line) as urgent data; without SO_OOBINLINE the kernel takes the urgent
// byte out of the stream and the command arrives mangled. vsftpd does the
// same.
func setOOBInline(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_OOBINLINE, 1)
	})
}
