package runnc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/plan"
)

// testUnikernel is a committed synthetic hvt unikernel whose manifest
// declares block device "storage" and net device "service0"; its segments
// end at 0x103000.
const testUnikernel = "../abi/testdata/good/hvt-v2.hvt"

func kvmUsable() error { return nil }

// testBundle returns a rootfs holding testUnikernel as /u.hvt, a disk image
// file, and a spec that runs /u.hvt with the disk mounted at /storage.
func testBundle(t *testing.T) (string, *specs.Spec) {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testUnikernel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "u.hvt"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{Args: []string{"/u.hvt", "a", "--b"}},
		Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/storage", Type: "bind", Source: disk, Options: []string{"rbind", "rw"}},
		},
	}
	return rootfs, spec
}

func TestPlanLaunchDefaults(t *testing.T) {
	rootfs, spec := testBundle(t)
	l, err := PlanLaunch(spec, rootfs, Options{Tender: "/x/ntender", ProbeKVM: kvmUsable})
	if err != nil {
		t.Fatal(err)
	}
	if l.Mode != plan.ModeHVT {
		t.Errorf("mode %q, want hvt", l.Mode)
	}
	if l.MemMiB != 0 {
		t.Errorf("--mem %d without a limit, want 0 (the default)", l.MemMiB)
	}
	if want := filepath.Join(rootfs, "u.hvt"); l.Unikernel != want {
		t.Errorf("unikernel %q, want %q", l.Unikernel, want)
	}
	if !slices.Equal(l.Args, []string{"a", "--b"}) {
		t.Errorf("args %q", l.Args)
	}
	if len(l.Blocks) != 1 || l.Blocks[0].Device != "storage" || l.Blocks[0].Path != spec.Mounts[1].Source {
		t.Errorf("blocks %+v", l.Blocks)
	}
	if len(l.Nets) != 1 || l.Nets[0] != (NetDevice{Device: "service0", Index: 2}) {
		t.Errorf("nets %+v", l.Nets)
	}
	if l.NetArgs != DefaultNetArgs {
		t.Errorf("net args %q", l.NetArgs)
	}
}

func TestPlanLaunchModeFromEnv(t *testing.T) {
	rootfs, spec := testBundle(t)
	spec.Process.Env = []string{"PATH=/bin", ModeEnv + "=hvt"}
	l, err := PlanLaunch(spec, rootfs, Options{Mode: plan.ModeSPT, ProbeKVM: kvmUsable})
	if err != nil {
		t.Fatal(err)
	}
	if l.Mode != plan.ModeHVT {
		t.Errorf("mode %q, want hvt from %s", l.Mode, ModeEnv)
	}
	for _, a := range l.Args {
		if strings.Contains(a, ModeEnv) {
			t.Errorf("guest argument %q carries %s", a, ModeEnv)
		}
	}
}

func TestPlanLaunchModeErrors(t *testing.T) {
	rootfs, spec := testBundle(t)

	spec.Process.Env = []string{ModeEnv + "=fast"}
	_, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
	if err == nil || !strings.Contains(err.Error(), `RUNNC_MODE="fast"`) {
		t.Errorf("invalid RUNNC_MODE: error %v", err)
	}

	// --mode=spt on runnc cannot run an hvt unikernel.
	spec.Process.Env = nil
	_, err = PlanLaunch(spec, rootfs, Options{Mode: plan.ModeSPT, ProbeKVM: kvmUsable})
	if err == nil {
		t.Error("hvt unikernel accepted under spt")
	}

	_, err = PlanLaunch(spec, rootfs, Options{ProbeKVM: func() error { return errors.New("no /dev/kvm") }})
	if err == nil || !strings.Contains(err.Error(), "no /dev/kvm") {
		t.Errorf("hvt without KVM: error %v", err)
	}
}

func TestPlanLaunchNotUnikernel(t *testing.T) {
	rootfs, spec := testBundle(t)
	if err := os.WriteFile(filepath.Join(rootfs, "sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Process.Args = []string{"/sh"}
	_, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
	if err == nil {
		t.Fatal("shell script accepted as a unikernel")
	}
	if !strings.Contains(err.Error(), `"/sh" is not a Solo5 unikernel`) {
		t.Errorf("message %q does not name the file and say why", err)
	}
	var fe *abi.FormatError
	if !errors.As(err, &fe) {
		t.Errorf("error %v does not wrap the *abi.FormatError", err)
	}
}

func TestPlanLaunchStaysInRootfs(t *testing.T) {
	rootfs, spec := testBundle(t)
	outside := filepath.Join(filepath.Dir(rootfs), "outside.hvt")
	data, err := os.ReadFile(testUnikernel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, data, 0o755); err != nil {
		t.Fatal(err)
	}

	// An absolute link and a ".." path both resolve inside the rootfs,
	// where no outside.hvt exists.
	if err := os.Symlink(outside, filepath.Join(rootfs, "abs.hvt")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"/abs.hvt", "/../outside.hvt"} {
		spec.Process.Args = []string{name}
		if _, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable}); err == nil {
			t.Errorf("%s reached a file outside the rootfs", name)
		}
	}
	// A relative link inside the rootfs is followed.
	if err := os.Symlink("u.hvt", filepath.Join(rootfs, "rel.hvt")); err != nil {
		t.Fatal(err)
	}
	spec.Process.Args = []string{"/rel.hvt"}
	l, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
	if err != nil {
		t.Fatal(err)
	}
	if l.Unikernel != filepath.Join(rootfs, "u.hvt") {
		t.Errorf("link resolved to %q", l.Unikernel)
	}
}

func TestPlanLaunchBlockErrors(t *testing.T) {
	dirSource := t.TempDir()
	cases := []struct {
		name  string
		mount *specs.Mount
		want  string
	}{
		{"no mount", nil, "no mount has destination /storage"},
		{"directory", &specs.Mount{Destination: "/storage", Type: "bind", Source: dirSource}, "is not a regular file"},
		{"missing", &specs.Mount{Destination: "/storage", Type: "bind", Source: dirSource + "/none"}, "no such file"},
		{"read-only", nil, "read-only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rootfs, spec := testBundle(t)
			switch {
			case c.name == "read-only":
				spec.Mounts[1].Options = append(spec.Mounts[1].Options, "ro")
			case c.mount == nil:
				spec.Mounts = spec.Mounts[:1]
			default:
				spec.Mounts[1] = *c.mount
			}
			_, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("message %q lacks %q", err, c.want)
			}
		})
	}
}

func TestPlanLaunchNoArgs(t *testing.T) {
	rootfs, spec := testBundle(t)
	spec.Process.Args = nil
	if _, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable}); err == nil {
		t.Error("empty process.args accepted")
	}
}

func TestGuestMemMiB(t *testing.T) {
	u, err := abi.Load(testUnikernel)
	if err != nil {
		t.Fatal(err)
	}
	limit := func(n int64) *int64 { return &n }
	cases := []struct {
		name  string
		limit *int64
		want  uint64
		err   string
	}{
		{"no limit", nil, 0, ""},
		{"unlimited", limit(-1), 0, ""},
		{"exact MiB", limit(6 * mib), 6, ""},
		{"rounded down", limit(6*mib + mib - 1), 6, ""},
		{"one MiB", limit(mib), 0, "gives the guest 1 MiB"},
		{"below one MiB", limit(mib - 1), 0, "below 1 MiB"},
	}
	for _, c := range cases {
		got, err := guestMemMiB(c.limit, u)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: --mem %d, want %d", c.name, got, c.want)
		}
		if c.limit != nil && *c.limit > 0 && got*mib > uint64(*c.limit) {
			t.Errorf("%s: --mem %d MiB exceeds the limit %d", c.name, got, *c.limit)
		}
	}
}

func TestGuestMemMiBTooSmall(t *testing.T) {
	// A unikernel whose only segment ends at 3 MiB does not fit in 2 MiB.
	u := &abi.Unikernel{
		Path:      "big.hvt",
		Entry:     0x100000,
		KernelEnd: 3 * mib,
		Segments:  []abi.Segment{{Vaddr: 0x100000, Filesz: 0x1000, Memsz: 2 * mib, Start: 0x100000, End: 3 * mib}},
	}
	limit := int64(2 * mib)
	_, err := guestMemMiB(&limit, u)
	if err == nil {
		t.Fatal("2 MiB accepted for a unikernel ending at 3 MiB")
	}
	if !errors.Is(err, abi.ErrDoesNotFit) {
		t.Errorf("error %v does not wrap abi.ErrDoesNotFit", err)
	}
	if !strings.Contains(err.Error(), "raise the limit") {
		t.Errorf("message %q does not say what to do", err)
	}
}

func TestLaunchArgv(t *testing.T) {
	l := &Launch{
		Tender:    "/bin/ntender",
		Mode:      plan.ModeSPT,
		MemMiB:    64,
		Unikernel: "/r/u.spt",
		Args:      []string{"x"},
		Blocks:    []BlockAttach{{Device: "storage", Path: "/d.img"}},
		NetArgs:   DefaultNetArgs,
	}
	nets := []NetAttachment{{Device: "service0", Tap: "runnc2", MAC: "02:42:ac:11:00:02", Address: "172.17.0.2/16", Gateway: "172.17.0.1"}}
	got, err := l.Argv(nets)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/ntender", "run", "--mode=spt", "--mem=64", "--block:storage=/d.img",
		"--net:service0=runnc2", "--net-mac:service0=02:42:ac:11:00:02", "--", "/r/u.spt",
		"--ipv4=172.17.0.2/16", "--ipv4-gateway=172.17.0.1", "x"}
	if !slices.Equal(got, want) {
		t.Errorf("argv\n got %q\nwant %q", got, want)
	}
}

func TestExpandNetArgs(t *testing.T) {
	a := NetAttachment{Device: "service0", Address: "10.0.0.2/24", Gateway: "10.0.0.1"}
	b := NetAttachment{Device: "admin", Address: "192.168.1.5/32", Gateway: "169.254.1.1"}
	noGW := NetAttachment{Device: "service0", Address: "10.0.0.2/24"}
	noAddr := NetAttachment{Device: "service0"}
	cases := []struct {
		name     string
		template string
		nets     []NetAttachment
		want     []string
	}{
		{"default", DefaultNetArgs, []NetAttachment{a}, []string{"--ipv4=10.0.0.2/24", "--ipv4-gateway=10.0.0.1"}},
		{"slash 32 with gateway", DefaultNetArgs, []NetAttachment{b}, []string{"--ipv4=192.168.1.5/32", "--ipv4-gateway=169.254.1.1"}},
		{"no gateway", DefaultNetArgs, []NetAttachment{noGW}, []string{"--ipv4=10.0.0.2/24"}},
		{"no address", DefaultNetArgs, []NetAttachment{noAddr}, nil},
		{"no networks", DefaultNetArgs, nil, nil},
		{"without device only first", DefaultNetArgs, []NetAttachment{a, b}, []string{"--ipv4=10.0.0.2/24", "--ipv4-gateway=10.0.0.1"}},
		{"with device every one", "--{device}-ip={address} --{device}-prefix={prefix}", []NetAttachment{a, b},
			[]string{"--service0-ip=10.0.0.2", "--service0-prefix=24", "--admin-ip=192.168.1.5", "--admin-prefix=32"}},
		{"bare address", "{address}", []NetAttachment{a}, []string{"10.0.0.2"}},
		{"empty template", "", []NetAttachment{a}, nil},
	}
	for _, c := range cases {
		got, err := ExpandNetArgs(c.template, c.nets)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if _, err := ExpandNetArgs("--ip={addr}", []NetAttachment{a}); err == nil || !strings.Contains(err.Error(), "{addr}") {
		t.Errorf("unknown placeholder: error %v", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"hvt", "spt", "auto"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "HVT", "kvm"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) accepted", s)
		}
	}
}

func TestPlanLaunchRejectsHostNetwork(t *testing.T) {
	rootfs, spec := testBundle(t)
	// The test unikernel declares net device "service0".
	spec.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}
	_, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
	if err == nil || !strings.Contains(err.Error(), "no network namespace of its own") {
		t.Errorf("no network namespace: error %v", err)
	}

	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"})
	_, err = PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
	if err == nil || !strings.Contains(err.Error(), "is runnc's own") {
		t.Errorf("runnc's own network namespace by path: error %v", err)
	}

	spec.Linux.Namespaces[1].Path = ""
	if _, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable}); err != nil {
		t.Errorf("new network namespace: %v", err)
	}
}

func TestPlanLaunchRelativeToCwd(t *testing.T) {
	rootfs, spec := testBundle(t)
	if err := os.Mkdir(filepath.Join(rootfs, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(rootfs, "u.hvt"), filepath.Join(rootfs, "app", "u.hvt")); err != nil {
		t.Fatal(err)
	}
	spec.Process.Args[0] = "u.hvt"
	spec.Process.Cwd = "/app"
	l, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(rootfs, "app", "u.hvt"); l.Unikernel != want {
		t.Errorf("unikernel %q, want %q", l.Unikernel, want)
	}
}

func TestPlanLaunchNetArgsPrecedence(t *testing.T) {
	rootfs, spec := testBundle(t)
	l, err := PlanLaunch(spec, rootfs, Options{NetArgs: "{address}", ProbeKVM: kvmUsable})
	if err != nil {
		t.Fatal(err)
	}
	if l.NetArgs != "{address}" {
		t.Errorf("template %q, want runnc's --net-args", l.NetArgs)
	}

	spec.Process.Env = []string{NetArgsEnv + "=--ip={cidr}"}
	l, err = PlanLaunch(spec, rootfs, Options{NetArgs: "{address}", ProbeKVM: kvmUsable})
	if err != nil {
		t.Fatal(err)
	}
	if l.NetArgs != "--ip={cidr}" {
		t.Errorf("template %q, want the container's %s", l.NetArgs, NetArgsEnv)
	}

	spec.Process.Env = []string{NetArgsEnv + "=--ip={ip}"}
	if _, err := PlanLaunch(spec, rootfs, Options{ProbeKVM: kvmUsable}); err == nil || !strings.Contains(err.Error(), "{ip}") {
		t.Errorf("unknown placeholder: error %v", err)
	}
}
