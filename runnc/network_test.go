package runnc

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestIsContainerInterface(t *testing.T) {
	ether := netlink.LinkAttrs{Name: "x", EncapType: "ether"}
	cases := []struct {
		link netlink.Link
		want bool
	}{
		{&netlink.Veth{LinkAttrs: ether}, true},
		{&netlink.Macvlan{LinkAttrs: ether}, true},
		{&netlink.IPVlan{LinkAttrs: ether}, true},
		{&netlink.Device{LinkAttrs: ether}, true},
		{&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo", EncapType: "loopback", Flags: net.FlagLoopback}}, false},
		{&netlink.Tuntap{LinkAttrs: ether}, false},
		{&netlink.Gretap{LinkAttrs: ether}, false},
		{&netlink.Gretun{LinkAttrs: netlink.LinkAttrs{Name: "gre0", EncapType: "ipgre"}}, false},
		{&netlink.Sittun{LinkAttrs: netlink.LinkAttrs{Name: "sit0", EncapType: "sit"}}, false},
		{&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "tunl0", EncapType: "ipip"}}, false},
	}
	for _, c := range cases {
		if got := isContainerInterface(c.link); got != c.want {
			t.Errorf("%s (%s encap): %v, want %v", c.link.Type(), c.link.Attrs().EncapType, got, c.want)
		}
	}
}
