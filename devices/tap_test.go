package devices

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

var netDev = abi.Device{Index: 2, Name: "service0", Type: abi.DeviceNetBasic}

// testEtherType is the IEEE "local experimental" EtherType, which nothing
// else in a fresh network namespace sends.
const testEtherType = 0x88B5

// requireRoot skips the test unless the process runs as root, or fails it
// when NTENDER_REQUIRE_ALL=1.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
		t.Fatal("needs root to create network namespaces and taps, and NTENDER_REQUIRE_ALL=1")
	}
	t.Skip("needs root to create network namespaces and taps")
}

// inNewNetns runs fn on a locked OS thread inside a fresh network
// namespace, and then returns the thread to the original namespace. The
// namespace and every interface in it disappear when fn returns. If the
// thread cannot be restored it stays locked, so the Go runtime discards it
// when the test goroutine ends.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	requireRoot(t)
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

	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("bringing up lo: %v", err)
	}
	fn()
}

// addTap creates a persistent tap with the given MTU, up unless down is
// set, in the current network namespace.
func addTap(t *testing.T, name string, mtu int, up bool) {
	t.Helper()
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		t.Fatalf("creating tap %s: %v", name, err)
	}
	if err := netlink.LinkSetMTU(tap, mtu); err != nil {
		t.Fatalf("setting the MTU of %s: %v", name, err)
	}
	if up {
		if err := netlink.LinkSetUp(tap); err != nil {
			t.Fatalf("bringing up %s: %v", name, err)
		}
	}
}

// packetSocket opens an AF_PACKET socket bound to iface. It receives the
// frames that the guest side writes into the tap, and sends frames to it.
func packetSocket(t *testing.T, iface string) (fd, ifindex int) {
	t.Helper()
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		t.Fatalf("opening a packet socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	addr := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, addr); err != nil {
		t.Fatalf("binding the packet socket to %s: %v", iface, err)
	}
	// A lost frame fails the test after 10 s instead of hanging it.
	tv := unix.Timeval{Sec: 10}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd, ifi.Index
}

func htons(v uint16) uint16 {
	return v<<8 | v>>8
}

// testFrame returns an Ethernet frame of size bytes with the test
// EtherType and a payload that encodes tag.
func testFrame(dst, src net.HardwareAddr, size int, tag byte) []byte {
	frame := make([]byte, size)
	copy(frame[0:6], dst)
	copy(frame[6:12], src)
	binary.BigEndian.PutUint16(frame[12:14], testEtherType)
	for i := 14; i < size; i++ {
		frame[i] = tag + byte(i)
	}
	return frame
}

func isTestFrame(frame []byte) bool {
	return len(frame) >= 14 && binary.BigEndian.Uint16(frame[12:14]) == testEtherType
}

func TestOpenTapMissingInterface(t *testing.T) {
	n, err := OpenTap(netDev, "ntnosuchtap0", nil)
	if err == nil {
		n.Close()
		t.Fatal("OpenTap succeeded on a missing interface")
	}
	if !errors.Is(err, ErrInterfaceNotFound) {
		t.Errorf("error %q is not ErrInterfaceNotFound", err)
	}
	if !strings.Contains(err.Error(), "ntnosuchtap0") {
		t.Errorf("error %q does not name the interface", err)
	}
}

func TestOpenTapRejectsBlockDevice(t *testing.T) {
	n, err := OpenTap(blockDev, "lo", nil)
	if err == nil {
		n.Close()
		t.Fatal("OpenTap succeeded on a BLOCK_BASIC device")
	}
}

func TestTapMTUAndMAC(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap102", 9000, true)

		n, err := OpenTap(netDev, "tap102", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		if n.MTU != 9000 {
			t.Errorf("MTU = %d, want 9000", n.MTU)
		}
		if n.MaxFrameSize() != 9014 {
			t.Errorf("MaxFrameSize = %d, want 9014", n.MaxFrameSize())
		}
		if len(n.MAC) != 6 || n.MAC[0]&1 != 0 || n.MAC[0]&2 == 0 {
			t.Errorf("random MAC %v is not unicast and locally administered", n.MAC)
		}
		if n.Name != "service0" || n.Index != 2 || n.Iface != "tap102" {
			t.Errorf("Name, Index, Iface = %q, %d, %q", n.Name, n.Index, n.Iface)
		}

		flags, err := unix.FcntlInt(uintptr(n.Fd), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.O_NONBLOCK == 0 {
			t.Error("tap descriptor is blocking")
		}
	})
}

// TestOpenTapTurnsOffOffloads turns GRO and GSO on, opens the tap and
// expects both off.
func TestOpenTapTurnsOffOffloads(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap109", 1500, true)
		e, err := ethtool.NewEthtool()
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		on := map[string]bool{featureGRO: true, featureGSO: true}
		if err := e.Change("tap109", on); err != nil {
			t.Fatalf("turning GRO and GSO on: %v", err)
		}

		n, err := OpenTap(netDev, "tap109", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		features, err := e.Features("tap109")
		if err != nil {
			t.Fatal(err)
		}
		if features[featureGRO] {
			t.Error("GRO is still on")
		}
		if features[featureGSO] {
			t.Error("GSO is still on")
		}
	})
}

func TestTapGivenMAC(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		mac := net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
		n, err := OpenTap(netDev, "tap100", mac)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		if !bytes.Equal(n.MAC, mac) {
			t.Errorf("MAC = %v, want %v", n.MAC, mac)
		}
		if n.MTU != 1500 {
			t.Errorf("MTU = %d, want 1500", n.MTU)
		}
	})
}

func TestTapWriteReachesHost(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		n, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		sock, _ := packetSocket(t, "tap100")

		frame := testFrame(net.HardwareAddr{0x02, 0, 0, 0, 0, 1}, n.MAC, 1514, 7)
		res, err := n.Write(frame)
		if err != nil || res != abi.ResultOK {
			t.Fatalf("Write = %d, %v", res, err)
		}

		buf := make([]byte, 2048)
		for {
			count, _, err := unix.Recvfrom(sock, buf, 0)
			if err != nil {
				t.Fatalf("receiving on the host side: %v", err)
			}
			if isTestFrame(buf[:count]) {
				if !bytes.Equal(buf[:count], frame) {
					t.Errorf("host received a %d-byte frame that differs from the %d bytes sent",
						count, len(frame))
				}
				return
			}
		}
	})
}

func TestTapReadFromHost(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		n, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		sock, ifindex := packetSocket(t, "tap100")
		p, err := NewPoller([]*Net{n})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()

		// Drain whatever the kernel sent when the link came up.
		buf := make([]byte, n.MaxFrameSize())
		for {
			_, res, err := n.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if res == abi.ResultAgain {
				break
			}
		}

		frame := testFrame(n.MAC, net.HardwareAddr{0x02, 0, 0, 0, 0, 1}, 100, 3)
		to := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}
		copy(to.Addr[:], n.MAC)
		if err := unix.Sendto(sock, frame, 0, to); err != nil {
			t.Fatalf("sending from the host side: %v", err)
		}

		for {
			set, count, err := p.Poll(10e9)
			if err != nil {
				t.Fatal(err)
			}
			if set != 1<<netDev.Index || count != 1 {
				t.Fatalf("Poll = %#x, %d, want %#x, 1", set, count, 1<<netDev.Index)
			}
			got, res, err := n.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if res != abi.ResultOK {
				t.Fatalf("Read after a ready Poll = %d, want OK", res)
			}
			if isTestFrame(buf[:got]) {
				if !bytes.Equal(buf[:got], frame) {
					t.Errorf("read a %d-byte frame that differs from the %d bytes sent", got, len(frame))
				}
				break
			}
		}
	})
}

func TestTapReadEmpty(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		// Without IPv6 the kernel sends nothing into the tap by itself.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/tap100/disable_ipv6", []byte("1"), 0); err != nil {
			t.Logf("disabling IPv6 on tap100: %v", err)
		}
		n, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		buf := make([]byte, n.MaxFrameSize())
		for i := 0; ; i++ {
			got, res, err := n.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if res == abi.ResultAgain {
				if got != 0 {
					t.Errorf("Read returned AGAIN with %d bytes", got)
				}
				break
			}
			if i > 100 {
				t.Fatal("the tap never ran empty")
			}
		}
	})
}

func TestTapWriteRejectsBadSizes(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		n, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer n.Close()
		for _, size := range []int{0, 13, 1515, 65536} {
			res, err := n.Write(make([]byte, size))
			if err != nil {
				t.Errorf("Write(%d bytes): %v", size, err)
			}
			if res != abi.ResultEINVAL {
				t.Errorf("Write(%d bytes) = %d, want EINVAL", size, res)
			}
		}
		res, err := n.Write(make([]byte, 14))
		if err != nil || res != abi.ResultOK {
			t.Errorf("Write(14 bytes) = %d, %v, want OK", res, err)
		}
	})
}

func TestOpenTapDown(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, false)
		n, err := OpenTap(netDev, "tap100", nil)
		if err == nil {
			n.Close()
			t.Fatal("OpenTap succeeded on a down interface")
		}
		if !errors.Is(err, ErrInterfaceDown) {
			t.Errorf("error %q is not ErrInterfaceDown", err)
		}
	})
}

func TestOpenTapRejectsNonTap(t *testing.T) {
	inNewNetns(t, func() {
		tun := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: "tun0"},
			Mode:      netlink.TUNTAP_MODE_TUN,
			Flags:     netlink.TUNTAP_NO_PI,
		}
		if err := netlink.LinkAdd(tun); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(tun); err != nil {
			t.Fatal(err)
		}
		bridge := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
		if err := netlink.LinkAdd(bridge); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(bridge); err != nil {
			t.Fatal(err)
		}

		// A bridge that is down is still not a tap, and the error reports that first.
		down := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br1"}}
		if err := netlink.LinkAdd(down); err != nil {
			t.Fatal(err)
		}

		for _, iface := range []string{"lo", "tun0", "br0", "br1"} {
			n, err := OpenTap(netDev, iface, nil)
			if err == nil {
				n.Close()
				t.Errorf("OpenTap succeeded on %s", iface)
				continue
			}
			if !errors.Is(err, ErrNotTap) {
				t.Errorf("OpenTap(%s) error %q is not ErrNotTap", iface, err)
			}
		}
	})
}

func TestTapBusy(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		first, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		defer first.Close()
		second, err := OpenTap(netDev, "tap100", nil)
		if err == nil {
			second.Close()
			t.Fatal("a second OpenTap on an attached tap succeeded")
		}
		if !strings.Contains(err.Error(), "tap100") {
			t.Errorf("error %q does not name the tap", err)
		}
	})
}

func TestTapClose(t *testing.T) {
	inNewNetns(t, func() {
		addTap(t, "tap100", 1500, true)
		n, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		// The tap is free again.
		again, err := OpenTap(netDev, "tap100", nil)
		if err != nil {
			t.Fatalf("OpenTap after Close: %v", err)
		}
		again.Close()
	})
}
