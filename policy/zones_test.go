package policy

import (
	"net/netip"
	"testing"
)

const zoneMatchPolicy = `version: 1
zones:
  sources:
    wide:
      networks: [10.0.0.0/8, "2001:db8::/32"]
    narrow:
      networks: [10.1.0.0/16, "2001:db8:1::/48"]
    host:
      networks: [10.1.2.3, "[2001:db8:1::7]"]
    v6only:
      networks: ["::/0"]
  destinations:
    partners:
      hosts: ["*.partner.example"]
      networks: [203.0.113.0/24]
    pay:
      hosts: [sftp.pay.partner.example]
    prefixed:
      hosts: ["sftp*.partner.example"]
    nets:
      networks: [203.0.113.128/25]
`

func TestSourceZones(t *testing.T) {
	p := mustLoad(t, zoneMatchPolicy)
	tests := []struct {
		name string
		addr string
		want string
	}{
		{"address in the wide network only gets the wide zone", "10.9.9.9", "wide"},
		{"most specific IPv4 prefix wins", "10.1.9.9", "narrow"},
		{"a single address beats every prefix", "10.1.2.3", "host"},
		{"most specific IPv6 prefix wins", "2001:db8:1::8", "narrow"},
		{"an IPv6 single address beats every prefix", "2001:db8:1::7", "host"},
		{"IPv6 outside the narrow prefix gets the wide zone", "2001:db8:2::1", "wide"},
		{"IPv6 default route catches the rest of IPv6", "2001:4860::1", "v6only"},
		{"IPv4-mapped IPv6 is unmapped first", "::ffff:10.1.2.3", "host"},
		{"::/0 does not hold IPv4 addresses", "192.0.2.1", ""},
		{"IPv6 zone is ignored", "2001:db8:1::7%eth0", "host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, _ := p.zones.sourceZoneOf(netip.MustParseAddr(tc.addr))
			if got := p.zones.sourceName(i); got != tc.want {
				t.Errorf("source zone of %s = %q; want %q", tc.addr, got, tc.want)
			}
		})
	}
	if i, _ := p.zones.sourceZoneOf(netip.Addr{}); i != -1 {
		t.Errorf("the zero address is in zone %d; want none", i)
	}
}

func TestDestinationZones(t *testing.T) {
	p := mustLoad(t, zoneMatchPolicy)
	tests := []struct {
		name string
		host string
		want string
	}{
		{"host pattern matches a partner name", "files.partner.example", "partners"},
		{"host patterns match without regard to case", "FILES.Partner.Example", "partners"},
		{"an exact name beats every pattern", "sftp.pay.partner.example", "pay"},
		{"the pattern with more literal characters wins", "sftp2.partner.example", "prefixed"},
		{"a pattern does not match the bare domain", "partner.example", ""},
		{"names are never matched against networks", "203.0.113.5.example", ""},
		{"most specific destination network wins", "203.0.113.200", "nets"},
		{"address in the wider destination network", "203.0.113.5", "partners"},
		{"IPv4-mapped destination is unmapped", "::ffff:203.0.113.5", "partners"},
		{"address in no network", "198.51.100.1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, host := routeHostKey(tc.host)
			i, _ := p.zones.destZoneOf(addr, host)
			if got := p.zones.destName(i); got != tc.want {
				t.Errorf("destination zone of %s = %q; want %q", tc.host, got, tc.want)
			}
		})
	}
}
