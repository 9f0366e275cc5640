package runnc

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetAttachment is one manifest net device attached through a tap to an
// interface of the container's network namespace.
type NetAttachment struct {
	Device string `json:"device"`
	Iface  string `json:"iface"`
	Tap    string `json:"tap"`
	MAC    string `json:"mac"`
	// Address is the interface's first IPv4 address as ADDR/PREFIX, or ""
	// when it has none.
	Address string `json:"address,omitempty"`
	// Gateway is the IPv4 gateway of the default route through the
	// interface, or "" when there is none.
	Gateway string `json:"gateway,omitempty"`
}

// tapName returns the tap for the manifest entry with the given index.
// The name is fixed per device so that a tap left in a joined namespace by
// an earlier container is found and reclaimed.
func tapName(index int) string { return tapPrefix + strconv.Itoa(index) }

const tapPrefix = "runnc"

// isTapName reports whether name is one that tapName returns, with at
// most 15 bytes as IFNAMSIZ allows.
func isTapName(name string) bool {
	digits, ok := strings.CutPrefix(name, tapPrefix)
	if !ok || digits == "" || len(name) > unix.IFNAMSIZ-1 {
		return false
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// checkNetArgs rejects a template with an unknown placeholder.
func checkNetArgs(template string) error {
	for _, p := range placeholder.FindAllString(template, -1) {
		switch p {
		case "{device}", "{cidr}", "{address}", "{prefix}", "{gateway}":
		default:
			return fmt.Errorf("invalid network argument template %q: unknown placeholder %s; use {device}, {cidr}, {address}, {prefix} or {gateway}", template, p)
		}
	}
	return nil
}

// ExpandNetArgs returns the unikernel arguments that hand the network
// configuration to the guest. The template is split into words, and
// {cidr} (ADDR/PREFIX), {address}, {prefix}, {gateway} and {device} are
// replaced with each attachment's values. A word whose value is missing,
// such as {gateway} without a default route, is left out. A template that
// uses {device} is expanded for every attachment; one without it only for
// the first, because several copies of --ipv4 would contradict each other.
func ExpandNetArgs(template string, nets []NetAttachment) ([]string, error) {
	if err := checkNetArgs(template); err != nil {
		return nil, err
	}
	if len(nets) == 0 {
		return nil, nil
	}
	if !strings.Contains(template, "{device}") {
		nets = nets[:1]
	}
	var args []string
	for _, n := range nets {
		addr, prefix, _ := strings.Cut(n.Address, "/")
		values := map[string]string{
			"{device}":  n.Device,
			"{cidr}":    n.Address,
			"{address}": addr,
			"{prefix}":  prefix,
			"{gateway}": n.Gateway,
		}
	words:
		for _, w := range strings.Fields(template) {
			for _, p := range placeholder.FindAllString(w, -1) {
				if values[p] == "" {
					continue words
				}
			}
			args = append(args, placeholder.ReplaceAllStringFunc(w, func(p string) string { return values[p] }))
		}
	}
	return args, nil
}

// AttachNetworks pairs the manifest net devices with the interfaces of the
// calling process's network namespace and links each pair through a tap.
// An interface whose name equals a device's name is paired with it; the
// other devices take the remaining interfaces in name order (eth0, eth1,
// ...). uid and gid own the taps, so the tender can attach without
// CAP_NET_ADMIN. Interfaces left over stay as they are. On failure the
// attachments made so far come back with the error.
func AttachNetworks(devices []NetDevice, uid, gid uint32) ([]NetAttachment, error) {
	if len(devices) == 0 {
		return nil, nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	var free []netlink.Link
	for _, l := range links {
		if isContainerInterface(l) {
			free = append(free, l)
		}
	}
	slices.SortFunc(free, func(a, b netlink.Link) int { return strings.Compare(a.Attrs().Name, b.Attrs().Name) })

	pairs := make([]netlink.Link, len(devices))
	for i, d := range devices {
		if j := slices.IndexFunc(free, func(l netlink.Link) bool { return l.Attrs().Name == d.Device }); j >= 0 {
			pairs[i] = free[j]
			free = slices.Delete(free, j, j+1)
		}
	}
	for i, d := range devices {
		if pairs[i] != nil {
			continue
		}
		if len(free) == 0 {
			return nil, fmt.Errorf("the unikernel declares net device %q, but the container has no network interface left for it: connect the container to one more network", d.Device)
		}
		pairs[i], free = free[0], free[1:]
	}

	// On failure the attachments so far, including the failed one, are
	// returned too, so that the caller can remove their taps.
	var atts []NetAttachment
	for i, d := range devices {
		att, err := attachTap(d, pairs[i], uid, gid)
		atts = append(atts, att)
		if err != nil {
			return atts, fmt.Errorf("attaching net device %q to %s: %w", d.Device, pairs[i].Attrs().Name, err)
		}
	}
	return atts, nil
}

// isContainerInterface reports whether l is an Ethernet interface that
// the container's network setup put there. It rejects the loopback, taps
// and the fallback tunnel devices (gre0, gretap0, erspan0, sit0, ...)
// that the kernel adds to every new namespace while their modules are
// loaded.
func isContainerInterface(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagLoopback != 0 || a.EncapType != "ether" {
		return false
	}
	switch l.Type() {
	case "tuntap", "gretap", "erspan", "ip6gretap", "ip6erspan":
		return false
	}
	return true
}

func attachTap(d NetDevice, link netlink.Link, uid, gid uint32) (NetAttachment, error) {
	a := link.Attrs()
	att := NetAttachment{Device: d.Device, Iface: a.Name, Tap: tapName(d.Index), MAC: a.HardwareAddr.String()}

	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return att, fmt.Errorf("listing addresses: %w", err)
	}
	if len(addrs) > 0 {
		att.Address = addrs[0].IPNet.String()
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return att, fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		isDefault := r.Dst == nil || (r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask))
		if isDefault && r.Gw != nil {
			att.Gateway = r.Gw.String()
			break
		}
	}

	// A tap with this name is left from an earlier container in a joined
	// namespace; its tc filters point at interfaces that may be gone.
	if old, err := netlink.LinkByName(att.Tap); err == nil {
		if old.Type() != "tuntap" {
			return att, fmt.Errorf("interface %s exists and is not a tap: rename or remove it", att.Tap)
		}
		if err := netlink.LinkDel(old); err != nil {
			return att, fmt.Errorf("removing the leftover tap %s: %w", att.Tap, err)
		}
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: att.Tap, MTU: a.MTU},
		Mode:      netlink.TUNTAP_MODE_TAP,
		// The flags must match the tender's TUNSETIFF request
		// (IFF_TAP|IFF_NO_PI, single queue), or attaching fails.
		Flags: netlink.TUNTAP_NO_PI,
		Owner: uid,
		Group: gid,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		return att, fmt.Errorf("creating tap %s: %w", att.Tap, err)
	}
	// The tap is persistent, so closing the creating file descriptors
	// keeps it for the tender to attach to.
	for _, f := range tap.Fds {
		f.Close()
	}
	tapLink, err := netlink.LinkByName(att.Tap)
	if err != nil {
		return att, fmt.Errorf("finding tap %s: %w", att.Tap, err)
	}
	if err := netlink.LinkSetUp(tapLink); err != nil {
		return att, fmt.Errorf("setting tap %s up: %w", att.Tap, err)
	}
	if err := redirectIngress(link, tapLink); err != nil {
		return att, err
	}
	if err := redirectIngress(tapLink, link); err != nil {
		return att, err
	}
	return att, nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

func ingressQdisc(link netlink.Link) *netlink.Ingress {
	return &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: link.Attrs().Index,
		Handle:    netlink.MakeHandle(0xffff, 0),
		Parent:    netlink.HANDLE_INGRESS,
	}}
}

// redirectIngress sends every frame that arrives on from out of to, with
// an ingress qdisc, a u32 filter that matches everything and a mirred
// egress redirect, as "tc filter add dev FROM ingress protocol all u32
// match u32 0 0 action mirred egress redirect dev TO" would. u32 is used
// rather than matchall because kernels built without CONFIG_NET_CLS_MATCHALL
// exist. An ingress qdisc already on from is replaced, which drops the
// filters of an earlier container.
func redirectIngress(from, to netlink.Link) error {
	q := ingressQdisc(from)
	if err := netlink.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("removing the ingress qdisc of %s: %w", from.Attrs().Name, err)
	}
	if err := netlink.QdiscAdd(q); err != nil {
		return fmt.Errorf("adding an ingress qdisc to %s: %w", from.Attrs().Name, err)
	}
	// A U32 filter with no selector matches every packet.
	filter := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: from.Attrs().Index,
			Parent:    netlink.MakeHandle(0xffff, 0),
			Priority:  1,
			Protocol:  unix.ETH_P_ALL,
		},
		Actions: []netlink.Action{netlink.NewMirredAction(to.Attrs().Index)},
	}
	if err := netlink.FilterAdd(filter); err != nil {
		return fmt.Errorf("redirecting %s ingress to %s: %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}

// DetachNetworks removes the taps of atts from the network namespace at
// nsPath and the ingress redirects from their interfaces. It removes only
// tap devices with a name that tapName gives. A tap, interface or
// namespace that is already gone is not an error, because the kernel
// deletes the taps of a namespace with the namespace. A path that no
// longer refers to a namespace, such as the file left behind when the
// namespace's bind mount was unmounted, counts as gone.
func DetachNetworks(nsPath string, atts []NetAttachment) error {
	ns, err := netns.GetFromPath(nsPath)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(ns), &fs); err != nil {
		return fmt.Errorf("checking network namespace %s: %w", nsPath, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return nil
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("opening netlink in network namespace %s: %w", nsPath, err)
	}
	defer h.Close()

	var errs []error
	for _, att := range atts {
		iface := att.Iface
		tap, err := h.LinkByName(att.Tap)
		if err == nil && isTapName(att.Tap) && tap.Type() == "tuntap" {
			// A record made before the init reported lacks the
			// interface, so the redirect to the tap names it.
			if iface == "" {
				iface = redirectSource(h, tap)
			}
			if err := h.LinkDel(tap); err != nil {
				errs = append(errs, fmt.Errorf("removing tap %s: %w", att.Tap, err))
			}
		}
		if iface == "" {
			continue
		}
		if link, err := h.LinkByName(iface); err == nil {
			err := h.QdiscDel(ingressQdisc(link))
			if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("removing the ingress qdisc of %s: %w", iface, err))
			}
		}
	}
	return errors.Join(errs...)
}

// redirectSource returns the name of the interface whose ingress filter
// redirects to tap, as redirectIngress sets it up, or "" when there is
// none. The tap's own ingress filter, which redirects the other way, is
// not a match.
func redirectSource(h *netlink.Handle, tap netlink.Link) string {
	links, err := h.LinkList()
	if err != nil {
		return ""
	}
	for _, link := range links {
		if link.Attrs().Index == tap.Attrs().Index {
			continue
		}
		filters, err := h.FilterList(link, netlink.MakeHandle(0xffff, 0))
		if err != nil {
			continue
		}
		for _, f := range filters {
			u32, ok := f.(*netlink.U32)
			if !ok {
				continue
			}
			for _, a := range u32.Actions {
				if m, ok := a.(*netlink.MirredAction); ok && m.Ifindex == tap.Attrs().Index {
					return link.Attrs().Name
				}
			}
		}
	}
	return ""
}
