package zos

import (
	"net"
	"syscall"
	"unsafe"
)

// Linux TCP states (include/net/tcp_states.h) a socket is in only after
// the peer's FIN has arrived.
const (
	tcpTimeWait  = 6
	tcpCloseWait = 8
	tcpLastAck   = 9
	tcpClosing   = 11
)

// finReceived reports whether the peer's FIN has reached c's socket, read or
// not: the kernel's TCP state (TCP_INFO) is one entered only on a FIN. known
// is false when the state cannot be read. It may be called while another
// goroutine reads c.
func finReceived(c net.Conn) (fin, known bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var info syscall.TCPInfo
	size := uint32(unsafe.Sizeof(info))
	var errno syscall.Errno
	cerr := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	})
	if cerr != nil || errno != 0 {
		return false, false
	}
	switch info.State {
	case tcpCloseWait, tcpLastAck, tcpClosing, tcpTimeWait:
		return true, true
	}
	return false, true
}
