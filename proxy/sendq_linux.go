//go:build linux

package proxy

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// siocOUTQ is SIOCOUTQ (TIOCOUTQ): the bytes in a TCP socket's send queue,
// sent or not, that the peer has not acknowledged yet.
const siocOUTQ = 0x5411

// waitSent waits until every byte written to c has been acknowledged by
// the peer, or until deadline. It polls the send queue: a transfer ends
// once, so a few wake-ups cost nothing.
func waitSent(c net.Conn, deadline time.Time) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	delay := time.Millisecond
	for time.Now().Before(deadline) {
		var queued int32
		var ioErr syscall.Errno
		if err := raw.Control(func(fd uintptr) {
			_, _, ioErr = syscall.Syscall(syscall.SYS_IOCTL, fd, siocOUTQ, uintptr(unsafe.Pointer(&queued)))
		}); err != nil || ioErr != 0 || queued == 0 {
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}
