package runnc

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/plan"
	"github.com/ntender/ntender/tender"
)

// ModeEnv is the variable in process.env that overrides the backend for
// one container. Solo5 has no environment, so the unikernel never
// receives it.
const ModeEnv = "RUNNC_MODE"

// NetArgsEnv is the variable in process.env that overrides the network
// argument template for one container.
const NetArgsEnv = "RUNNC_NET_ARGS"

// DefaultNetArgs is the network argument template: the form MirageOS
// unikernels take by default for their one IPv4 interface.
const DefaultNetArgs = "--ipv4={cidr} --ipv4-gateway={gateway}"

const mib = 1 << 20

// Options are the runtime-wide settings of runnc.
type Options struct {
	// Tender is the path of the ntender binary.
	Tender string
	// Mode is the default backend, overridden by RUNNC_MODE.
	Mode plan.Mode
	// NetArgs is the default network argument template (see
	// ExpandNetArgs), overridden by RUNNC_NET_ARGS.
	NetArgs string
	// ProbeKVM reports whether KVM is usable; nil means tender.ProbeKVM.
	ProbeKVM func() error
}

// BlockAttach is a block device of the manifest backed by a host file.
type BlockAttach struct {
	Device string `json:"device"`
	Path   string `json:"path"`
}

// NetDevice is a net device of the manifest, in manifest order.
type NetDevice struct {
	Device string `json:"device"`
	Index  int    `json:"index"`
}

// Launch is everything the container init needs to run the tender: create
// computes it from config.json and checks it before any process starts.
type Launch struct {
	Tender    string        `json:"tender"`
	Mode      plan.Mode     `json:"mode"`
	MemMiB    uint64        `json:"mem_mib"` // 0 keeps ntender's default
	Unikernel string        `json:"unikernel"`
	Args      []string      `json:"args"`
	Blocks    []BlockAttach `json:"blocks"`
	Nets      []NetDevice   `json:"nets"`
	NetArgs   string        `json:"net_args"`
	UID       uint32        `json:"uid"`
	GID       uint32        `json:"gid"`
	Groups    []uint32      `json:"groups"`
}

// PlanLaunch checks the bundle's process against the unikernel it names
// and returns the launch. rootfs is the host path of the root filesystem.
func PlanLaunch(spec *specs.Spec, rootfs string, opts Options) (*Launch, error) {
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, errors.New("config.json has no process.args: process.args[0] must name the unikernel file")
	}
	env := envMap(spec.Process.Env)
	mode, err := selectMode(env, opts.Mode)
	if err != nil {
		return nil, err
	}
	netArgs, err := selectNetArgs(env, opts.NetArgs)
	if err != nil {
		return nil, err
	}

	name := spec.Process.Args[0]
	if !path.IsAbs(name) {
		name = path.Join("/", spec.Process.Cwd, name)
	}
	hostPath, err := resolveInRoot(rootfs, name)
	if err != nil {
		return nil, fmt.Errorf("process.args[0] %q: %w", name, err)
	}
	u, err := abi.Load(hostPath)
	if err != nil {
		return nil, fmt.Errorf("process.args[0] %q is not a Solo5 unikernel that ntender runs: %w", name, err)
	}

	probe := opts.ProbeKVM
	if probe == nil {
		probe = tender.ProbeKVM
	}
	choice, err := tender.Choose(mode, u.Target, probe)
	if err != nil {
		return nil, fmt.Errorf("unikernel %q: %w", name, err)
	}

	var limit *int64
	if r := spec.Linux; r != nil && r.Resources != nil && r.Resources.Memory != nil {
		limit = r.Resources.Memory.Limit
	}
	memMiB, err := guestMemMiB(limit, u)
	if err != nil {
		return nil, err
	}
	blocks, err := blockAttachments(spec.Mounts, u)
	if err != nil {
		return nil, err
	}

	l := &Launch{
		Tender:    opts.Tender,
		Mode:      choice.Mode,
		MemMiB:    memMiB,
		Unikernel: hostPath,
		Args:      slices.Clone(spec.Process.Args[1:]),
		Blocks:    blocks,
		NetArgs:   netArgs,
		UID:       spec.Process.User.UID,
		GID:       spec.Process.User.GID,
		Groups:    spec.Process.User.AdditionalGids,
	}
	for _, d := range u.Devices {
		if d.Type == abi.DeviceNetBasic {
			l.Nets = append(l.Nets, NetDevice{Device: d.Name, Index: d.Index})
		}
	}
	if len(l.Nets) > 0 {
		if err := checkOwnNetns(spec.Linux); err != nil {
			return nil, fmt.Errorf("unikernel %q declares net device %q, but %w", name, l.Nets[0].Device, err)
		}
	}
	return l, nil
}

// checkOwnNetns rejects a container that would share runnc's network
// namespace, because attaching taps there would redirect the traffic of
// the host's own interfaces (docker run --network host).
func checkOwnNetns(linux *specs.Linux) error {
	hasNetns := false
	if linux != nil {
		for _, ns := range linux.Namespaces {
			hasNetns = hasNetns || ns.Type == specs.NetworkNamespace
		}
	}
	if !hasNetns {
		return errors.New("the container has no network namespace of its own: give it one (a Docker network rather than --network host)")
	}
	path := netnsPath(linux)
	if path == "" {
		return nil
	}
	var joined, own unix.Stat_t
	if err := unix.Stat(path, &joined); err != nil {
		return fmt.Errorf("network namespace %s cannot be opened: %w", path, err)
	}
	if err := unix.Stat("/proc/self/ns/net", &own); err != nil {
		return fmt.Errorf("reading runnc's own network namespace: %w", err)
	}
	if joined.Dev == own.Dev && joined.Ino == own.Ino {
		return fmt.Errorf("the network namespace %s is runnc's own: give the container a network namespace of its own", path)
	}
	return nil
}

// Argv returns the tender's command line once the net devices are
// attached to taps.
func (l *Launch) Argv(nets []NetAttachment) ([]string, error) {
	argv := []string{l.Tender, "run", "--mode=" + string(l.Mode)}
	if l.MemMiB > 0 {
		argv = append(argv, fmt.Sprintf("--mem=%d", l.MemMiB))
	}
	for _, b := range l.Blocks {
		argv = append(argv, "--block:"+b.Device+"="+b.Path)
	}
	for _, n := range nets {
		argv = append(argv, "--net:"+n.Device+"="+n.Tap)
		if n.MAC != "" {
			argv = append(argv, "--net-mac:"+n.Device+"="+n.MAC)
		}
	}
	argv = append(argv, "--", l.Unikernel)
	netArgs, err := ExpandNetArgs(l.NetArgs, nets)
	if err != nil {
		return nil, err
	}
	argv = append(argv, netArgs...)
	return append(argv, l.Args...), nil
}

// selectMode returns the backend: RUNNC_MODE from the container
// environment, else runnc's --mode, else auto.
func selectMode(env map[string]string, flag plan.Mode) (plan.Mode, error) {
	if v, ok := env[ModeEnv]; ok {
		m, err := ParseMode(v)
		if err != nil {
			return "", fmt.Errorf("invalid %s=%q in the container environment: use hvt, spt or auto", ModeEnv, v)
		}
		return m, nil
	}
	if flag == "" {
		return plan.ModeAuto, nil
	}
	return flag, nil
}

// selectNetArgs returns the network argument template: RUNNC_NET_ARGS
// from the container environment, else runnc's --net-args, else
// DefaultNetArgs.
func selectNetArgs(env map[string]string, flag string) (string, error) {
	template, ok := env[NetArgsEnv]
	if !ok {
		template = flag
		if template == "" {
			template = DefaultNetArgs
		}
	}
	if err := checkNetArgs(template); err != nil {
		return "", err
	}
	return template, nil
}

// ParseMode checks a backend name: hvt, spt or auto.
func ParseMode(s string) (plan.Mode, error) {
	switch m := plan.Mode(s); m {
	case plan.ModeHVT, plan.ModeSPT, plan.ModeAuto:
		return m, nil
	}
	return "", fmt.Errorf("invalid mode %q: use hvt, spt or auto", s)
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// resolveInRoot resolves name inside rootfs as if rootfs were "/", so that
// absolute symbolic links and ".." in the image cannot name a host file,
// and returns the host path of the regular file it names.
func resolveInRoot(rootfs, name string) (string, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("opening the root filesystem %s: %w", rootfs, err)
	}
	defer unix.Close(root)

	fd, err := unix.Openat2(root, strings.TrimPrefix(path.Clean("/"+name), "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", fmt.Errorf("opening %s in the root filesystem %s: %w", name, rootfs, err)
	}
	defer unix.Close(fd)

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("checking %s in the root filesystem: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", fmt.Errorf("%s in the root filesystem %s is not a regular file", name, rootfs)
	}
	resolved, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("resolving %s in the root filesystem: %w", name, err)
	}
	return resolved, nil
}

// guestMemMiB turns linux.resources.memory.limit into the --mem value: the
// limit in MiB rounded down, 0 for no limit (ntender's default).
//
// NOTE: the tender's own memory counts against the same cgroup limit, so a
// guest that touches all of its memory can push the container over the
// limit and get the tender killed by the OOM killer.
func guestMemMiB(limit *int64, u *abi.Unikernel) (uint64, error) {
	// Docker and runc use -1 for "no limit".
	if limit == nil || *limit <= 0 {
		return 0, nil
	}
	memMiB := uint64(*limit) / mib
	needMiB := (u.KernelEnd + mib - 1) / mib
	if memMiB == 0 {
		return 0, fmt.Errorf("memory limit of %d bytes is below 1 MiB; unikernel %s needs more than %d MiB: raise the limit", *limit, u.Path, needMiB)
	}
	if err := u.CheckFits(memMiB * mib); err != nil {
		return 0, fmt.Errorf("memory limit of %d bytes gives the guest %d MiB, less than unikernel %s needs (its segments end at %d MiB): raise the limit: %w",
			*limit, memMiB, u.Path, needMiB, err)
	}
	return memMiB, nil
}

// blockAttachments maps mounts to the manifest's block devices: a mount
// whose destination's last element names a block device and whose source
// is a regular file backs that device. Every block device needs such a
// mount; other mounts are ignored.
func blockAttachments(mounts []specs.Mount, u *abi.Unikernel) ([]BlockAttach, error) {
	var blocks []BlockAttach
	for _, d := range u.Devices {
		if d.Type != abi.DeviceBlockBasic {
			continue
		}
		var found *specs.Mount
		for i := range mounts {
			if path.Base(path.Clean(mounts[i].Destination)) == d.Name {
				found = &mounts[i]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("unikernel %s declares block device %q, but no mount has destination /%s: mount a disk image file there (docker run -v FILE:/%s)",
				u.Path, d.Name, d.Name, d.Name)
		}
		src := found.Source
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("block device %q: mount source %s: %w", d.Name, src, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("block device %q: mount source %s for %s is not a regular file: mount a disk image file", d.Name, src, found.Destination)
		}
		if slices.Contains(found.Options, "ro") {
			return nil, fmt.Errorf("block device %q: mount %s is read-only, but ntender attaches block devices read-write: drop the ro option", d.Name, found.Destination)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return nil, fmt.Errorf("block device %q: mount source %s: %w", d.Name, src, err)
		}
		blocks = append(blocks, BlockAttach{Device: d.Name, Path: abs})
	}
	return blocks, nil
}
