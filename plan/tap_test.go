package plan

import (
	"bytes"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNewNetns runs fn on a locked OS thread inside a fresh network
// namespace, then returns the thread to the original namespace. It skips
// the test unless the process runs as root, or fails it when
// NTENDER_REQUIRE_ALL=1. If the thread cannot be restored it stays locked,
// so the Go runtime discards it when the test goroutine ends.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
			t.Fatal("needs root to create network namespaces and taps, and NTENDER_REQUIRE_ALL=1")
		}
		t.Skip("needs root to create network namespaces and taps")
	}
	runtime.LockOSThread()

	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("getting the current network namespace: %v", err)
	}
	defer orig.Close()

	created, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("creating a network namespace: %v", err)
	}
	defer created.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restoring the network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// addTap creates a persistent tap that is up, with the given MTU, in the
// current network namespace.
func addTap(t *testing.T, name string, mtu int) {
	t.Helper()
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		t.Fatalf("creating tap %s: %v", name, err)
	}
	if err := netlink.LinkSetMTU(tap, mtu); err != nil {
		t.Fatalf("setting the MTU of %s: %v", name, err)
	}
	if err := netlink.LinkSetUp(tap); err != nil {
		t.Fatalf("bringing up %s: %v", name, err)
	}
}

func TestBuildWithTaps(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500)
		addTap(t, "tap102", 9000)
		service1 := serviceDev
		service1.Name = "service1"
		kernel := writeUnikernel(t, serviceDev, storageDev, service1)
		opts := mustParse(t, kernel,
			"--net:service1=tap102",
			"--net-mac:service1=02:00:00:00:00:42",
			"--block:storage="+writeImage(t, 4096),
			"--net:service0=tap100")

		p, err := Build(opts)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		defer p.Close()

		if len(p.Nets) != 2 || len(p.Blocks) != 1 {
			t.Fatalf("len(Nets), len(Blocks) = %d, %d, want 2, 1", len(p.Nets), len(p.Blocks))
		}
		first, second := p.Nets[0], p.Nets[1]
		if first.Name != "service0" || first.Index != 1 || first.Iface != "tap100" || first.MTU != 1500 {
			t.Errorf("Nets[0] = %s, index %d, %s, MTU %d", first.Name, first.Index, first.Iface, first.MTU)
		}
		if second.Name != "service1" || second.Index != 3 || second.Iface != "tap102" || second.MTU != 9000 {
			t.Errorf("Nets[1] = %s, index %d, %s, MTU %d", second.Name, second.Index, second.Iface, second.MTU)
		}
		if want := (net.HardwareAddr{2, 0, 0, 0, 0, 0x42}); !bytes.Equal(second.MAC, want) {
			t.Errorf("Nets[1].MAC = %v, want %v", second.MAC, want)
		}
		if first.MAC[0]&3 != 2 {
			t.Errorf("Nets[0].MAC = %v, want a random locally administered unicast address", first.MAC)
		}
		if p.Blocks[0].Index != 2 {
			t.Errorf("Blocks[0].Index = %d, want 2", p.Blocks[0].Index)
		}

		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Closing detaches the taps, so they can be attached again.
		again, err := Build(opts)
		if err != nil {
			t.Fatalf("Build after Close: %v", err)
		}
		again.Close()
	})
}
