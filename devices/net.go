package devices

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/safchain/ethtool"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

// EthernetHeaderSize is the size of the Ethernet header that every frame
// carries on top of the MTU (SOLO5_NET_HLEN).
const EthernetHeaderSize = 14

// Errors for network devices.
var (
	ErrInterfaceNotFound = errors.New("no such network interface")
	ErrInterfaceDown     = errors.New("interface is down")
	ErrNotTap            = errors.New("interface is not a tap")
)

// Net is a network device backed by an existing tap interface, opened with
// IFF_TAP|IFF_NO_PI in non-blocking mode.
type Net struct {
	Name  string
	Index int // manifest index, which is also the guest's handle
	Iface string
	// Fd is the tap file descriptor. It has O_NONBLOCK and FD_CLOEXEC set
	// and is not registered with the Go runtime's network poller.
	Fd  int
	MAC net.HardwareAddr
	// MTU is the interface MTU, which excludes the Ethernet header.
	MTU int

	closed bool
}

// RandomMAC returns a random unicast, locally administered MAC address, as
// the upstream tenders generate for a device without --net-mac.
func RandomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("generating a MAC address: %w", err)
	}
	mac[0] = mac[0]&0xFE | 0x02
	return mac, nil
}

// OpenTap attaches the manifest device dev to the tap interface iface. The
// interface must exist in the calling thread's network namespace and be up
// (or running). A nil mac means a random one from RandomMAC. The MTU is the
// interface's MTU at the time of the call.
func OpenTap(dev abi.Device, iface string, mac net.HardwareAddr) (*Net, error) {
	if dev.Type != abi.DeviceNetBasic {
		return nil, fmt.Errorf("device %q is not a NET_BASIC device", dev.Name)
	}
	if mac == nil {
		var err error
		if mac, err = RandomMAC(); err != nil {
			return nil, err
		}
	} else if len(mac) != 6 {
		return nil, fmt.Errorf("MAC address %v: want 6 bytes, got %d", mac, len(mac))
	}

	// The interface must exist before TUNSETIFF, which would create a
	// tap of that name. Whether it is a tap is checked before whether it
	// is up, so that a veth that is down gets the not-a-tap error.
	flags, err := interfaceFlags(iface)
	if err != nil {
		return nil, err
	}
	fd, err := openTapFd(iface)
	if err != nil {
		return nil, err
	}
	if flags&(unix.IFF_UP|unix.IFF_RUNNING) == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w (bring it up, for example with 'ip link set %s up')",
			iface, ErrInterfaceDown, iface)
	}
	mtu, err := interfaceMTU(iface)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Best effort, as upstream: a tap whose offloads cannot change still
	// serves guests that never receive aggregated frames.
	_ = disableOffloads(iface)
	if mtu <= 0 || mtu > 0xFFFF {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: MTU %d does not fit the 16-bit manifest field", iface, mtu)
	}

	return &Net{
		Name:  dev.Name,
		Index: dev.Index,
		Iface: iface,
		Fd:    fd,
		MAC:   append(net.HardwareAddr(nil), mac...),
		MTU:   mtu,
	}, nil
}

// interfaceFlags returns the flags of iface, or ErrInterfaceNotFound with
// the interface name and the fix.
func interfaceFlags(iface string) (uint16, error) {
	ifr, err := ifaceIoctl(iface, unix.SIOCGIFFLAGS)
	if errors.Is(err, unix.ENODEV) {
		return 0, fmt.Errorf("%s: %w (create it first, for example with 'ip tuntap add %s mode tap')",
			iface, ErrInterfaceNotFound, iface)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: reading the interface flags (SIOCGIFFLAGS): %w", iface, err)
	}
	return ifr.Uint16(), nil
}

// openTapFd opens /dev/net/tun and attaches it to the tap iface. TUNSETIFF
// on an existing interface fails unless it is a tap. A returned name that
// differs from the request means the kernel created a new interface from a
// name template such as "tap%d", which is rejected as upstream does.
func openTapFd(iface string) (int, error) {
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return -1, fmt.Errorf("%s: invalid interface name: %w", iface, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)

	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EINVAL) {
			return -1, fmt.Errorf("%s: %w (TUNSETIFF: %w)", iface, ErrNotTap, err)
		}
		if errors.Is(err, unix.EBUSY) {
			return -1, fmt.Errorf("%s: the tap is attached to another process (TUNSETIFF: %w)",
				iface, err)
		}
		return -1, fmt.Errorf("%s: attaching to the tap (TUNSETIFF): %w", iface, err)
	}
	if got := ifr.Name(); got != iface {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w: the kernel attached %q instead", iface, ErrNotTap, got)
	}
	return fd, nil
}

// Names of the ethtool features disableOffloads turns off.
const (
	featureGRO = "rx-gro"
	featureGSO = "tx-generic-segmentation"
)

// disableOffloads turns off GRO and GSO on iface, as the upstream tenders
// from v0.11 on do (ethtool -K IFACE gro off gso off). A tap opened
// without IFF_VNET_HDR can otherwise deliver aggregated frames of up to
// 64 KiB, which a guest reading frames of its MTU receives truncated.
func disableOffloads(iface string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("%s: opening an ethtool socket: %w", iface, err)
	}
	defer e.Close()
	err = e.Change(iface, map[string]bool{featureGRO: false, featureGSO: false})
	if err != nil {
		return fmt.Errorf("%s: turning off GRO and GSO: %w", iface, err)
	}
	return nil
}

// interfaceMTU returns the MTU of iface with SIOCGIFMTU, as the upstream
// tenders from v0.10.0 on do.
func interfaceMTU(iface string) (int, error) {
	ifr, err := ifaceIoctl(iface, unix.SIOCGIFMTU)
	if err != nil {
		return 0, fmt.Errorf("%s: reading the MTU (SIOCGIFMTU): %w", iface, err)
	}
	return int(int32(ifr.Uint32())), nil
}

// ifaceIoctl runs the interface ioctl req for iface on a throwaway AF_INET
// socket in the calling thread's network namespace and returns the result.
func ifaceIoctl(iface string, req uint) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return nil, fmt.Errorf("invalid interface name: %w", err)
	}
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a socket for interface ioctls: %w", err)
	}
	defer unix.Close(sock)

	if err := unix.IoctlIfreq(sock, req, ifr); err != nil {
		return nil, err
	}
	return ifr, nil
}

// MaxFrameSize returns the largest frame Write accepts: the MTU plus the
// Ethernet header.
func (n *Net) MaxFrameSize() int {
	return n.MTU + EthernetHeaderSize
}

// Read reads one frame into p. It returns abi.ResultAgain when no frame is
// queued. A frame longer than p is truncated to len(p) by the kernel, so p
// should hold MaxFrameSize bytes. Any other failure returns an error.
func (n *Net) Read(p []byte) (int, abi.Result, error) {
	for {
		count, err := unix.Read(n.Fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, abi.ResultAgain, nil
		case err != nil:
			return 0, 0, fmt.Errorf("reading from tap %s of device %s: %w", n.Iface, n.Name, err)
		case count == 0:
			return 0, abi.ResultAgain, nil
		}
		return count, abi.ResultOK, nil
	}
}

// Write sends p as one frame. A frame shorter than the Ethernet header or
// longer than MaxFrameSize returns abi.ResultEINVAL. The upstream tenders
// pass such frames to the tap, which rejects short ones with an error that
// ends the guest. A failed or short write, including EAGAIN, returns an
// error, as upstream treats it as fatal.
func (n *Net) Write(p []byte) (abi.Result, error) {
	if len(p) < EthernetHeaderSize || len(p) > n.MaxFrameSize() {
		return abi.ResultEINVAL, nil
	}
	for {
		count, err := unix.Write(n.Fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("writing a %d-byte frame to tap %s of device %s: %w",
				len(p), n.Iface, n.Name, err)
		}
		if count != len(p) {
			return 0, fmt.Errorf("writing a %d-byte frame to tap %s of device %s: wrote only %d bytes",
				len(p), n.Iface, n.Name, count)
		}
		return abi.ResultOK, nil
	}
}

// Close closes the tap file descriptor. It is safe to call more than once.
// The interface itself stays, as it existed before OpenTap.
func (n *Net) Close() error {
	if n.closed {
		return nil
	}
	n.closed = true
	if err := unix.Close(n.Fd); err != nil {
		return fmt.Errorf("closing tap %s of device %s: %w", n.Iface, n.Name, err)
	}
	return nil
}
