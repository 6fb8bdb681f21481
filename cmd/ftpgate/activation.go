package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// activationListener returns the FTP listener passed by systemd socket
// activation (sd_listen_fds(3): LISTEN_PID names this process and
// LISTEN_FDS counts the sockets from fd 3), so ftpgate can serve port 21
// without root and without CAP_NET_BIND_SERVICE. It returns nil when the
// process was not socket-activated.
func activationListener(env map[string]string) (net.Listener, error) {
	if env["LISTEN_PID"] != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(env["LISTEN_FDS"])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q", env["LISTEN_FDS"])
	}
	f := os.NewFile(listenFDsStart, "systemd-socket")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("socket activation: fd %d: %w", listenFDsStart, err)
	}
	// Children must not think the sockets are theirs.
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	return ln, nil
}
