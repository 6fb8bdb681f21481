package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PortRange is an inclusive range of TCP ports for passive data
// connections. The zero PortRange lets the kernel pick any ephemeral port.
type PortRange struct {
	Min, Max uint16
}

// ParsePortRange parses "50000-50100" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	if s == "" {
		return PortRange{}, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || a == 0 || b < a {
		return PortRange{}, fmt.Errorf("proxy: bad port range %q (want MIN-MAX with 1 <= MIN <= MAX <= 65535)", s)
	}
	return PortRange{Min: uint16(a), Max: uint16(b)}, nil
}

func (r PortRange) String() string {
	if r.Min == 0 {
		return "any"
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// parsePORT parses the argument of PORT (RFC 959): six decimal numbers
// h1,h2,h3,h4,p1,p2. It never resolves names and checks every range.
func parsePORT(arg string) (netip.AddrPort, error) {
	parts := strings.Split(strings.TrimSpace(arg), ",")
	if len(parts) != 6 {
		return netip.AddrPort{}, errors.New("want h1,h2,h3,h4,p1,p2")
	}
	var b [6]byte
	for i, p := range parts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 8)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("field %d is not a number from 0 to 255", i+1)
		}
		b[i] = byte(n)
	}
	port := uint16(b[4])<<8 | uint16(b[5])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]}), port), nil
}

// parseEPRT parses the argument of EPRT (RFC 2428): <d>proto<d>addr<d>port<d>
// where d is any printable ASCII character (33..126), in practice "|".
func parseEPRT(arg string) (netip.AddrPort, error) {
	if len(arg) < 7 {
		return netip.AddrPort{}, errors.New("want |proto|address|port|")
	}
	d := arg[0]
	if d < 33 || d > 126 {
		return netip.AddrPort{}, errors.New("bad delimiter")
	}
	f := strings.Split(arg, string(d))
	if len(f) != 5 || f[0] != "" || f[4] != "" {
		return netip.AddrPort{}, errors.New("want |proto|address|port|")
	}
	addr, err := netip.ParseAddr(f[2])
	if err != nil || addr.Zone() != "" {
		return netip.AddrPort{}, errors.New("bad address")
	}
	switch f[1] {
	case "1":
		if !addr.Is4() {
			return netip.AddrPort{}, errors.New("protocol 1 needs an IPv4 address")
		}
	case "2":
		if !addr.Is6() || addr.Is4In6() {
			return netip.AddrPort{}, errors.New("protocol 2 needs an IPv6 address")
		}
	default:
		return netip.AddrPort{}, errUnknownNetProto
	}
	port, err := strconv.ParseUint(f[3], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, errors.New("bad port")
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

var errUnknownNetProto = errors.New("network protocol not supported")

// formatPASV formats the 227 reply text for addr, which must be IPv4.
func formatPASV(ap netip.AddrPort) string {
	a := ap.Addr().As4()
	p := ap.Port()
	return fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d).", a[0], a[1], a[2], a[3], p>>8, p&0xff)
}

// dataSetup is the data connection a session has prepared with PORT, EPRT,
// PASV or EPSV, consumed by the next transfer.
type dataSetup struct {
	active netip.AddrPort // PORT/EPRT target; valid if passive is nil
	pasv   net.Listener   // PASV/EPSV listener
	peer   netip.Addr     // the only address a passive connection may come from
}

func (d *dataSetup) close() {
	if d != nil && d.pasv != nil {
		d.pasv.Close()
	}
}

// listenPassive opens a passive listener on ip, on a port from r tried in
// random order so that two sessions do not race for the same port.
func listenPassive(ctx context.Context, ip netip.Addr, r PortRange) (net.Listener, error) {
	var lc net.ListenConfig
	if r.Min == 0 {
		return lc.Listen(ctx, "tcp", netip.AddrPortFrom(ip, 0).String())
	}
	n := int(r.Max) - int(r.Min) + 1
	start := rand.IntN(n)
	var err error
	for i := 0; i < n; i++ {
		port := uint16(int(r.Min) + (start+i)%n)
		var ln net.Listener
		ln, err = lc.Listen(ctx, "tcp", netip.AddrPortFrom(ip, port).String())
		if err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("proxy: no free passive port in %s: %w", r, err)
}

// acceptData waits for the client's passive data connection until the
// deadline. A connection from any address but the control connection's
// (port stealing) is closed and the wait goes on.
func acceptData(ctx context.Context, ln net.Listener, peer netip.Addr, deadline time.Time) (net.Conn, error) {
	type deadliner interface{ SetDeadline(time.Time) error }
	if d, ok := ln.(deadliner); ok {
		d.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err == nil && ap.Addr().Unmap() == peer {
			return c, nil
		}
		c.Close()
	}
}

// dialData opens an active data connection to the client's address.
func dialData(ctx context.Context, local netip.Addr, to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", to.String())
}
