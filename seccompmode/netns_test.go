package seccompmode

import (
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireRoot skips the test unless the process runs as root, or fails it
// when NTENDER_REQUIRE_ALL=1.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to create network namespaces and taps")
	}
}

// tapSpec is a tap interface to create for a test, with the host side's
// address (CIDR notation, or empty for none) and MTU.
type tapSpec struct {
	name    string
	address string
	mtu     int
}

// inNewNetns runs fn on a locked OS thread inside a fresh network
// namespace that holds the taps, all up. Child processes that fn starts
// inherit the namespace, because os/exec forks on the calling thread. The
// thread stays locked, so the Go runtime ends it when fn returns, and the
// namespace and its taps disappear with it. fn runs outside the test's
// goroutine, so it must report failures with t.Error, never t.Fatal.
func inNewNetns(t *testing.T, taps []tapSpec, fn func()) {
	t.Helper()
	requireRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			t.Errorf("creating a network namespace: %v", err)
			return
		}
		defer ns.Close()
		for _, spec := range taps {
			if err := addTap(spec); err != nil {
				t.Errorf("creating tap %s: %v", spec.name, err)
				return
			}
		}
		fn()
	}()
	<-done
	if t.Failed() {
		t.FailNow()
	}
}

func addTap(spec tapSpec) error {
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: spec.name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		return err
	}
	if spec.mtu != 0 {
		if err := netlink.LinkSetMTU(tap, spec.mtu); err != nil {
			return err
		}
	}
	if spec.address != "" {
		ip, ipNet, err := net.ParseCIDR(spec.address)
		if err != nil {
			return err
		}
		ipNet.IP = ip
		if err := netlink.AddrAdd(tap, &netlink.Addr{IPNet: ipNet}); err != nil {
			return err
		}
	}
	return netlink.LinkSetUp(tap)
}
