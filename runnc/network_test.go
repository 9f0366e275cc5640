package runnc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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

// inNetns runs fn on a thread that has entered the named network
// namespace, as the container init runs inside the container's.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread is not unlocked, so the runtime ends it instead of
		// reusing it in the other namespace.
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// TestAttachSlash32WithOnlinkGateway gives the interface a /32 address
// and an on-link default route, as Calico and other point-to-point
// network setups do, and checks the values handed to the unikernel and
// the tc redirects in both directions.
func TestAttachSlash32WithOnlinkGateway(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for network namespaces")
	}
	name := fmt.Sprintf("runnc-t%d-n", os.Getpid())
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ipCmd("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ipCmd("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	ipCmd("-n", name, "addr", "add", "10.9.0.5/32", "dev", "eth0")
	ipCmd("-n", name, "link", "set", "eth0", "up")
	ipCmd("-n", name, "link", "set", "peer0", "up")
	ipCmd("-n", name, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0", "onlink")

	var atts []NetAttachment
	var err error
	inNetns(t, name, func() {
		atts, err = AttachNetworks([]NetDevice{{Device: "service0", Index: 3}}, 0, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 {
		t.Fatalf("%d attachments, want 1", len(atts))
	}
	a := atts[0]
	if a.Iface != "eth0" || a.Tap != "runnc3" || a.Address != "10.9.0.5/32" || a.Gateway != "169.254.1.1" {
		t.Errorf("attachment %+v", a)
	}
	args, err := ExpandNetArgs(DefaultNetArgs, atts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"--ipv4=10.9.0.5/32", "--ipv4-gateway=169.254.1.1"}; !slices.Equal(args, want) {
		t.Errorf("arguments %q, want %q", args, want)
	}

	out, err := exec.Command("tc", "-n", name, "filter", "show", "dev", "eth0", "ingress").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Egress Redirect to device runnc3") {
		t.Errorf("eth0 ingress does not redirect to the tap (%v):\n%s", err, out)
	}
	out, err = exec.Command("tc", "-n", name, "filter", "show", "dev", "runnc3", "ingress").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Egress Redirect to device eth0") {
		t.Errorf("tap ingress does not redirect to eth0 (%v):\n%s", err, out)
	}

	if err := DetachNetworks("/var/run/netns/"+name, atts); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("ip", "-n", name, "-br", "link").CombinedOutput()
	if err != nil || strings.Contains(string(out), "runnc3") {
		t.Errorf("tap left after DetachNetworks (%v):\n%s", err, out)
	}
	out, _ = exec.Command("tc", "-n", name, "qdisc", "show", "dev", "eth0").CombinedOutput()
	if strings.Contains(string(out), "ingress") {
		t.Errorf("ingress qdisc left on eth0:\n%s", out)
	}
}

// The kernel deletes the taps of a namespace with the namespace, so a
// namespace that is gone leaves nothing to detach. Its path may be gone
// or be a plain file, as after "umount" without "rm".
func TestDetachNetworksGoneNamespace(t *testing.T) {
	atts := []NetAttachment{{Device: "service0", Iface: "eth0", Tap: "runnc1"}}
	gone := filepath.Join(t.TempDir(), "gone")
	if err := DetachNetworks(gone, atts); err != nil {
		t.Errorf("DetachNetworks of a missing path: %v, want nil", err)
	}
	if err := os.WriteFile(gone, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := DetachNetworks(gone, atts); err != nil {
		t.Errorf("DetachNetworks of a plain file: %v, want nil", err)
	}
}

// DetachNetworks removes only taps with a name that runnc gives taps, so
// a damaged record cannot remove the namespace's other interfaces.
func TestDetachNetworksRemovesOnlyTaps(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for network namespaces")
	}
	name := fmt.Sprintf("runnc-t%d-d", os.Getpid())
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ipCmd("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ipCmd("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	ipCmd("-n", name, "link", "add", "runnc5", "type", "veth", "peer", "name", "peer5")
	ipCmd("-n", name, "tuntap", "add", "dev", "runnc6", "mode", "tap")

	atts := []NetAttachment{{Tap: "eth0"}, {Tap: "runnc5"}, {Tap: "runnc6"}}
	if err := DetachNetworks("/var/run/netns/"+name, atts); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-n", name, "-br", "link").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v: %s", err, out)
	}
	links := string(out)
	for _, link := range []string{"eth0", "runnc5"} {
		if !strings.Contains(links, link) {
			t.Errorf("%s was removed, but it is not a tap runnc made:\n%s", link, links)
		}
	}
	if strings.Contains(links, "runnc6") {
		t.Errorf("tap runnc6 left:\n%s", links)
	}
}
