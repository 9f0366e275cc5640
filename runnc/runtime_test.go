package runnc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/tender"
	"github.com/ntender/ntender/tests/guests"
)

// TestMain runs the container init when create re-executes the test
// binary as /proc/self/exe, the same way cmd/runnc does.
func TestMain(m *testing.M) {
	if IsInit() {
		err := Init()
		fmt.Fprintln(os.Stderr, "runnc init:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// skipOrFail skips the test with reason, or fails it when
// NTENDER_REQUIRE_ALL=1 requires every test to run.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
		t.Fatalf("%s (NTENDER_REQUIRE_ALL=1)", reason)
	}
	t.Skip(reason)
}

// requireHost checks for root, KVM, the ntender binary and the test
// guests, and returns the path of ntender.
func requireHost(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for namespaces, cgroups and taps")
	}
	if err := tender.ProbeKVM(); err != nil {
		skipOrFail(t, "needs KVM: "+err.Error())
	}
	ntender := filepath.Join(filepath.Dir(guests.BuildDir()), "..", "..", "bin", "ntender")
	if _, err := os.Stat(ntender); err != nil {
		skipOrFail(t, "needs bin/ntender; run make first")
	}
	if _, err := os.Stat(guests.Binary("hello", "hvt")); err != nil {
		skipOrFail(t, "needs the test guests; run make first")
	}
	return ntender
}

type testContainer struct {
	rt     *Runtime
	id     string
	bundle string
	out    *os.File
	spec   *specs.Spec
}

// newTestContainer writes a bundle that runs guest with args under a new
// set of namespaces and a cgroup under /runnc-test.
func newTestContainer(t *testing.T, ntender, guest string, args ...string) *testContainer {
	t.Helper()
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(guest)
	if err != nil {
		t.Fatal(err)
	}
	name := "/" + filepath.Base(guest)
	if err := os.WriteFile(filepath.Join(rootfs, name), data, 0o755); err != nil {
		t.Fatal(err)
	}

	id := fmt.Sprintf("t%d-%s", os.Getpid(), regexp.MustCompile(`[^\w.-]`).ReplaceAllString(t.Name(), "-"))
	spec := DefaultSpec()
	spec.Process.Args = append([]string{name}, args...)
	spec.Linux.CgroupsPath = "/runnc-test/" + id
	out, err := os.Create(filepath.Join(bundle, "output"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out.Close()
		for _, dir := range cgroupDirs(t, "/runnc-test") {
			os.Remove(dir)
		}
	})
	rt := &Runtime{Root: filepath.Join(bundle, "state"), Options: Options{Tender: ntender}}
	return &testContainer{rt: rt, id: id, bundle: bundle, out: out, spec: spec}
}

func (c *testContainer) create(t *testing.T) (*os.Process, error) {
	t.Helper()
	data, err := json.Marshal(c.spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	return c.rt.Create(c.id, c.bundle, CreateOptions{
		PidFile: filepath.Join(c.bundle, "pid"),
		Stdio:   [3]*os.File{devNull, c.out, c.out},
	})
}

func (c *testContainer) output(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(c.out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func (c *testContainer) status(t *testing.T) Status {
	t.Helper()
	ct, err := c.rt.Load(c.id)
	if err != nil {
		t.Fatal(err)
	}
	return ct.CurrentStatus()
}

// cgroupDirs returns the directory of cgroup path rel in every mounted
// hierarchy.
func cgroupDirs(t *testing.T, rel string) []string {
	hs, _, err := cgroupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, h := range hs {
		dirs = append(dirs, filepath.Join(h.mountpoint, rel))
	}
	return dirs
}

// exitStatus returns the status a shell would report: the exit code, or
// 128 plus the signal.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func TestRunGuests(t *testing.T) {
	ntender := requireHost(t)
	cases := []struct {
		guest, target string
		args          []string
		env           string
		status        int
		output        string
	}{
		{"hello", "hvt", []string{"Hello_Solo5"}, "", 0, "SUCCESS"},
		{"hello", "spt", []string{"Hello_Solo5"}, "", 0, "SUCCESS"},
		{"hello", "spt", []string{"wrong"}, "", 1, "FAILURE"},
		{"abort", "hvt", nil, "", 255, "ABORT"},
		{"abort", "spt", nil, "", 255, "ABORT"},
		{"exit", "spt", []string{"7"}, ModeEnv + "=spt", 7, ""},
	}
	for _, c := range cases {
		t.Run(c.guest+"-"+c.target, func(t *testing.T) {
			tc := newTestContainer(t, ntender, guests.Binary(c.guest, c.target), c.args...)
			if c.env != "" {
				tc.spec.Process.Env = append(tc.spec.Process.Env, c.env)
			}
			proc, err := tc.create(t)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.rt.Start(tc.id); err != nil {
				t.Fatal(err)
			}
			ps, err := proc.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if got := exitStatus(ps); got != c.status {
				t.Errorf("exit status %d, want %d; output:\n%s", got, c.status, tc.output(t))
			}
			if !strings.Contains(tc.output(t), c.output) {
				t.Errorf("output lacks %q:\n%s", c.output, tc.output(t))
			}
			if err := tc.rt.Delete(tc.id, false); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMemoryLimitBecomesMem(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("hello", "hvt"), "Hello_Solo5")
	limit := int64(6<<20 + 12345)
	tc.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatal(err)
	}
	var memDir string
	hs, v2, err := cgroupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	file := "memory.limit_in_bytes"
	if v2 {
		file = "memory.max"
	}
	for i, h := range hs {
		if hasController(h, "memory") || v2 {
			memDir = ct.Cgroup.Dirs[i]
		}
	}
	got, err := os.ReadFile(filepath.Join(memDir, file))
	if err != nil {
		t.Fatal(err)
	}
	// The kernel rounds the cgroup limit down to whole pages.
	if want := strconv.FormatInt(limit&^0xfff, 10); strings.TrimSpace(string(got)) != want {
		t.Errorf("%s is %s, want %s", file, got, want)
	}
	procs, err := os.ReadFile(filepath.Join(memDir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(procs)) != strconv.Itoa(proc.Pid) {
		t.Errorf("cgroup.procs holds %q, want the init %d", procs, proc.Pid)
	}

	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	// The guest runtime prints the memory size it was given: 6 MiB.
	if out := tc.output(t); !strings.Contains(out, "mem_size 0x600000") {
		t.Errorf("guest memory is not 6 MiB:\n%s", out)
	}
	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatal(err)
	}
	for _, dir := range ct.Cgroup.Dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}
}

func TestBlockDeviceWritten(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("blk", "spt"))
	disk := filepath.Join(tc.bundle, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	tc.spec.Mounts = append(tc.spec.Mounts, specs.Mount{Destination: "/storage", Type: "bind", Source: disk, Options: []string{"rbind"}})
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}

	ps, err := proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if exitStatus(ps) != 0 {
		t.Fatalf("exit status %d:\n%s", exitStatus(ps), tc.output(t))
	}
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	// The blk guest fills block 0 with '0'+i%64.
	for i := 0; i < 512; i++ {
		if data[i] != byte('0'+i%64) {
			t.Fatalf("disk byte %d is %#x, want %#x: the guest's write is not in the file", i, data[i], '0'+i%64)
		}
	}
	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatal(err)
	}
}

// testNetwork is a pair of named network namespaces joined by a veth: the
// container's, with 10.231.0.2/24 and a default route, and a peer with
// 10.231.0.1/24.
type testNetwork struct {
	container, peer string // names under /var/run/netns
	iface           string
}

func newTestNetwork(t *testing.T) *testNetwork {
	t.Helper()
	n := &testNetwork{
		container: fmt.Sprintf("runnc-t%d-c", os.Getpid()),
		peer:      fmt.Sprintf("runnc-t%d-p", os.Getpid()),
		iface:     "eth0",
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", n.container)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.container).Run() })
	run("netns", "add", n.peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.peer).Run() })
	run("-n", n.container, "link", "add", n.iface, "type", "veth", "peer", "name", "peer0", "netns", n.peer)
	run("-n", n.container, "addr", "add", "10.231.0.2/24", "dev", n.iface)
	run("-n", n.container, "link", "set", n.iface, "up")
	run("-n", n.container, "route", "add", "default", "via", "10.231.0.1")
	run("-n", n.peer, "addr", "add", "10.231.0.1/24", "dev", "peer0")
	run("-n", n.peer, "link", "set", "peer0", "up")
	return n
}

func (n *testNetwork) path() string { return "/var/run/netns/" + n.container }

// ping sends an echo request from the peer every 0.2 s until a reply
// arrives, for at most 10 s, because the guest may not serve its tap yet.
func (n *testNetwork) ping(t *testing.T) error {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.peer, "ping", "-c", "1", "-i", "0.2", "-w", "10", "10.231.0.2").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping: %v: %s", err, out)
	}
	return nil
}

// handle returns a netlink handle in the container's namespace.
func (n *testNetwork) handle(t *testing.T) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(n.path())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func joinNetns(spec *specs.Spec, path string) {
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = path
		}
	}
}

// TestLifecycleInJoinedNetns drives a net guest through create, start,
// kill and delete in a network namespace joined by path, where a tap left
// by an earlier container already exists, and checks hooks, state, the
// tap and the cgroup at each step.
func TestLifecycleInJoinedNetns(t *testing.T) {
	ntender := requireHost(t)
	n := newTestNetwork(t)
	h := n.handle(t)
	// netlink creates a tap in the caller's namespace whatever the handle,
	// so ip(8) makes the leftover one.
	out, err := exec.Command("ip", "-n", n.container, "tuntap", "add", "dev", tapName(1), "mode", "tap").CombinedOutput()
	if err != nil {
		t.Fatalf("adding a leftover tap: %v: %s", err, out)
	}
	leftover, err := h.LinkByName(tapName(1))
	if err != nil {
		t.Fatal(err)
	}

	tc := newTestContainer(t, ntender, guests.Binary("net", "hvt"))
	joinNetns(tc.spec, n.path())
	tc.spec.Process.Env = []string{NetArgsEnv + "={address}"}
	prestartOut := filepath.Join(tc.bundle, "prestart.json")
	poststopOut := filepath.Join(tc.bundle, "poststop.json")
	tc.spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 Docker uses prestart hooks, so runnc must run them.
		Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + prestartOut}}},
		Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + poststopOut}}},
	}

	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	if s := tc.status(t); s != Created {
		t.Errorf("status after create %q, want created", s)
	}
	var hookState specs.State
	data, err := os.ReadFile(prestartOut)
	if err != nil {
		t.Fatalf("prestart hook did not run: %v", err)
	}
	if err := json.Unmarshal(data, &hookState); err != nil {
		t.Fatal(err)
	}
	if hookState.Pid != proc.Pid || hookState.ID != tc.id || hookState.Status != specs.StateCreating {
		t.Errorf("prestart hook state %+v, want pid %d, id %s, creating", hookState, proc.Pid, tc.id)
	}
	pidFile, err := os.ReadFile(filepath.Join(tc.bundle, "pid"))
	if err != nil || string(pidFile) != strconv.Itoa(proc.Pid) {
		t.Errorf("pid file %q (%v), want %d", pidFile, err, proc.Pid)
	}
	tap, err := h.LinkByName(tapName(1))
	if err != nil {
		t.Fatalf("no tap after create: %v", err)
	}
	if tap.Attrs().Index == leftover.Attrs().Index {
		t.Error("the leftover tap was kept instead of being replaced")
	}

	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}
	if s := tc.status(t); s != Running {
		t.Errorf("status after start %q, want running; output:\n%s", s, tc.output(t))
	}
	var te *TransitionError
	if err := tc.rt.Start(tc.id); !errors.As(err, &te) {
		t.Errorf("second start: error %v, want a *TransitionError", err)
	}
	if err := tc.rt.Delete(tc.id, false); !errors.As(err, &te) {
		t.Errorf("delete of a running container: error %v, want a *TransitionError", err)
	}
	if err := n.ping(t); err != nil {
		t.Errorf("guest does not answer: %v\noutput:\n%s", err, tc.output(t))
	}

	if err := tc.rt.Kill(tc.id, unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	if s := tc.status(t); s != Stopped {
		t.Errorf("status after kill %q, want stopped", s)
	}
	err = tc.rt.Kill(tc.id, unix.SIGTERM, false)
	if err == nil || !strings.Contains(err.Error(), "container not running") {
		t.Errorf("kill of a stopped container: error %v", err)
	}
	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatal(err)
	}

	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(poststopOut); err != nil {
		t.Errorf("poststop hook did not run: %v", err)
	}
	if _, err := h.LinkByName(tapName(1)); err == nil {
		t.Error("tap left in the joined namespace")
	}
	link, err := h.LinkByName(n.iface)
	if err != nil {
		t.Fatal(err)
	}
	qdiscs, err := h.QdiscList(link)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qdiscs {
		if q.Type() == "ingress" {
			t.Errorf("ingress qdisc left on %s", n.iface)
		}
	}
	for _, dir := range ct.Cgroup.Dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}
	if _, err := os.Stat(ct.Dir()); err == nil {
		t.Error("state directory left behind")
	}
	if _, err := tc.rt.Load(tc.id); !errors.Is(err, ErrNotExist) {
		t.Errorf("load after delete: %v, want ErrNotExist", err)
	}
}

// TestDeleteAfterSigkill kills the tender with SIGKILL behind runnc's back
// and checks that delete still removes tap, cgroup and state.
func TestDeleteAfterSigkill(t *testing.T) {
	ntender := requireHost(t)
	n := newTestNetwork(t)
	h := n.handle(t)
	tc := newTestContainer(t, ntender, guests.Binary("net", "spt"))
	joinNetns(tc.spec, n.path())
	tc.spec.Process.Env = []string{NetArgsEnv + "={address}"}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}
	if err := n.ping(t); err != nil {
		t.Errorf("guest does not answer: %v\noutput:\n%s", err, tc.output(t))
	}

	if err := proc.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatal(err)
	}
	if s := ct.CurrentStatus(); s != Stopped {
		t.Errorf("status %q after SIGKILL, want stopped", s)
	}

	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName(tapName(1)); err == nil {
		t.Error("tap left in the joined namespace")
	}
	for _, dir := range ct.Cgroup.Dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}
	if _, err := os.Stat(ct.Dir()); err == nil {
		t.Error("state directory left behind")
	}
}

// TestKillSptInPidNamespace checks that SIGTERM ends an spt tender that is
// the init of its pid namespace, where the kernel drops signals without a
// handler.
func TestKillSptInPidNamespace(t *testing.T) {
	ntender := requireHost(t)
	n := newTestNetwork(t)
	tc := newTestContainer(t, ntender, guests.Binary("net", "spt"))
	joinNetns(tc.spec, n.path())
	// --mode=auto would run the spt guest in a VM when KVM is usable.
	tc.spec.Process.Env = []string{NetArgsEnv + "={address}", ModeEnv + "=spt"}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}
	// Once the guest replies to a ping, the tender has become the guest
	// process.
	if err := n.ping(t); err != nil {
		t.Fatalf("guest does not answer: %v\noutput:\n%s", err, tc.output(t))
	}

	if got := deliverableSignal(proc.Pid, unix.SIGTERM); got != unix.SIGKILL {
		t.Errorf("SIGTERM to the spt tender becomes %v, want SIGKILL", got)
	}
	if err := tc.rt.Kill(tc.id, unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	ps, err := proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := exitStatus(ps); got != 128+int(unix.SIGKILL) {
		t.Errorf("exit status %d, want %d", got, 128+int(unix.SIGKILL))
	}
	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatal(err)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	ntender := requireHost(t)
	// A net guest in a new, empty network namespace has no interface.
	tc := newTestContainer(t, ntender, guests.Binary("net", "hvt"))
	_, err := tc.create(t)
	if err == nil {
		t.Fatal("create succeeded without a network interface")
	}
	if !strings.Contains(err.Error(), `net device "service0"`) {
		t.Errorf("message %q does not name the device", err)
	}
	if _, err := os.Stat(filepath.Join(tc.rt.Root, tc.id)); err == nil {
		t.Error("state directory left behind")
	}
	for _, dir := range cgroupDirs(t, tc.spec.Linux.CgroupsPath) {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}

	// A second create with the same ID works, so nothing blocks it.
	tc.spec.Process.Args = []string{"/net.hvt"}
	data, _ := os.ReadFile(guests.Binary("hello", "hvt"))
	os.WriteFile(filepath.Join(tc.bundle, "rootfs", "net.hvt"), data, 0o755)
	proc, err := tc.create(t)
	if err != nil {
		t.Fatalf("create after a failed create: %v", err)
	}
	var te *TransitionError
	if _, err := tc.create(t); !errors.As(err, &te) {
		t.Errorf("create of an existing ID: error %v, want a *TransitionError", err)
	}
	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatalf("delete of a created container: %v", err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStateJSON(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("hello", "spt"), "Hello_Solo5")
	tc.spec.Annotations = map[string]string{"a": "b"}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Wait()
	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(ct.OCIState())
	if err != nil {
		t.Fatal(err)
	}

	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"ociVersion": specs.Version, "id": tc.id, "status": "created",
		"pid": float64(proc.Pid), "bundle": tc.bundle,
		"rootfs": filepath.Join(tc.bundle, "rootfs"),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("state %s = %v, want %v", k, got[k], v)
		}
	}
	if a, _ := got["annotations"].(map[string]any); a["a"] != "b" {
		t.Errorf("annotations %v", got["annotations"])
	}

	if err := tc.rt.Delete(tc.id, true); err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Delete(tc.id, true); err != nil {
		t.Errorf("delete --force of a missing container: %v", err)
	}
	if err := tc.rt.Delete(tc.id, false); !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("delete of a missing container: %v", err)
	}
}

// TestTwoNetworksMapByName attaches the two net devices of net_2if. The
// interface named service0 pairs with device service0 by name, and eth0,
// the interface left, with service1.
func TestTwoNetworksMapByName(t *testing.T) {
	ntender := requireHost(t)
	n := newTestNetwork(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// newTestNetwork gave eth0 10.231.0.2. net_2if replies on the fixed
	// addresses, 10.0.0.2 on service0 and 10.1.0.2 on service1.
	run("-n", n.container, "link", "add", "service0", "type", "veth", "peer", "name", "peer1", "netns", n.peer)
	run("-n", n.container, "link", "set", "service0", "up")
	run("-n", n.peer, "addr", "add", "10.0.0.1/24", "dev", "peer1")
	run("-n", n.peer, "link", "set", "peer1", "up")
	run("-n", n.peer, "addr", "add", "10.1.0.1/24", "dev", "peer0")

	tc := newTestContainer(t, ntender, guests.Binary("net_2if", "hvt"))
	joinNetns(tc.spec, n.path())
	// net_2if takes no address arguments.
	tc.spec.Process.Env = []string{NetArgsEnv + "="}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Wait()
	defer tc.rt.Delete(tc.id, true)
	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}

	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[string]string{}
	for _, a := range ct.Networks {
		pairs[a.Device] = a.Iface
	}
	if pairs["service0"] != "service0" || pairs["service1"] != "eth0" {
		t.Errorf("devices paired with interfaces %v, want service0:service0 and service1:eth0", pairs)
	}
	for _, ip := range []string{"10.0.0.2", "10.1.0.2"} {
		out, err := exec.Command("ip", "netns", "exec", n.peer, "ping", "-c", "1", "-i", "0.2", "-w", "10", ip).CombinedOutput()
		if err != nil {
			t.Errorf("ping %s: %v: %s\nguest output:\n%s", ip, err, out, tc.output(t))
		}
	}
}

// cgroupFile returns the contents of file in the container's cgroup
// directory of the hierarchy that has controller (any directory under
// cgroup v2).
func cgroupFile(t *testing.T, ct *Container, controller, file string) string {
	t.Helper()
	hs, v2, err := cgroupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if v2 || hasController(h, controller) {
			data, err := os.ReadFile(filepath.Join(ct.Cgroup.Dirs[i], file))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(data))
		}
	}
	t.Fatalf("no hierarchy has the %s controller", controller)
	return ""
}

func TestCPUAndPidsLimitsApplied(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("hello", "spt"), "Hello_Solo5")
	quota, period, shares, pids := int64(25000), uint64(50000), uint64(512), int64(7)
	tc.spec.Linux.Resources = &specs.LinuxResources{
		CPU:  &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
		Pids: &specs.LinuxPids{Limit: &pids},
	}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Wait()
	defer tc.rt.Delete(tc.id, true)
	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatal(err)
	}

	_, v2, err := cgroupHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cpu.cfs_quota_us":  "25000",
		"cpu.cfs_period_us": "50000",
		"cpu.shares":        "512",
	}
	if v2 {
		want = map[string]string{"cpu.max": "25000 50000", "cpu.weight": "20"}
	}
	for file, value := range want {
		if got := cgroupFile(t, ct, "cpu", file); got != value {
			t.Errorf("%s is %q, want %q", file, got, value)
		}
	}
	if got := cgroupFile(t, ct, "pids", "pids.max"); got != "7" {
		t.Errorf("pids.max is %q, want 7", got)
	}
}

// TestHooksRunAtEachPoint records the state each hook reads and checks
// the hook points and the status they see.
func TestHooksRunAtEachPoint(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("hello", "spt"), "Hello_Solo5")
	record := func(point string) []specs.Hook {
		out := filepath.Join(tc.bundle, point+".json")
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + out}}}
	}
	tc.spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 Docker uses prestart hooks, so runnc must run them.
		Prestart:        record("prestart"),
		CreateRuntime:   record("createRuntime"),
		CreateContainer: record("createContainer"),
		StartContainer:  record("startContainer"),
		Poststart:       record("poststart"),
		Poststop:        record("poststop"),
	}
	proc, err := tc.create(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Start(tc.id); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Delete(tc.id, false); err != nil {
		t.Fatal(err)
	}

	wantStatus := map[string]specs.ContainerState{
		"createRuntime":   specs.StateCreating,
		"prestart":        specs.StateCreating,
		"createContainer": specs.StateCreating,
		"startContainer":  specs.StateRunning,
		"poststart":       specs.StateRunning,
		"poststop":        specs.StateStopped,
	}
	for point, status := range wantStatus {
		data, err := os.ReadFile(filepath.Join(tc.bundle, point+".json"))
		if err != nil {
			t.Errorf("%s hook did not run: %v", point, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil {
			t.Errorf("%s hook read %q: %v", point, data, err)
			continue
		}
		if st.Status != status {
			t.Errorf("%s hook saw status %q, want %q", point, st.Status, status)
		}
		if st.ID != tc.id || st.Pid != proc.Pid {
			t.Errorf("%s hook saw id %q pid %d, want %q %d", point, st.ID, st.Pid, tc.id, proc.Pid)
		}
	}
}

func TestFailingHookFailsCreate(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("hello", "spt"), "Hello_Solo5")
	tc.spec.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo network unavailable >&2; exit 3"}}},
	}
	_, err := tc.create(t)
	if err == nil {
		t.Fatal("create succeeded with a failing createRuntime hook")
	}
	for _, want := range []string{"createRuntime hook", "exit status 3", "network unavailable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(tc.rt.Root, tc.id)); err == nil {
		t.Error("state directory left behind")
	}
	for _, dir := range cgroupDirs(t, tc.spec.Linux.CgroupsPath) {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}

	timeout := 1
	tc.spec.Hooks = &specs.Hooks{
		CreateContainer: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "60"}, Timeout: &timeout}},
	}
	_, err = tc.create(t)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1 s") {
		t.Errorf("hook past its timeout: error %v", err)
	}
}

// TestFailedCreateRemovesTaps makes create fail after the init has made
// the tap in a joined network namespace. It fails once after the init's
// report and once by killing the init before it reports. Each time the
// tap, the cgroup and the state must be gone.
func TestFailedCreateRemovesTaps(t *testing.T) {
	ntender := requireHost(t)
	cases := []struct {
		name string
		// prepare makes create fail at a step after the init attached
		// the network.
		prepare func(tc *testContainer)
		want    string
	}{
		{"pid file", func(tc *testContainer) {}, "writing the pid file"},
		{"init killed", func(tc *testContainer) {
			// A createContainer hook runs in the init after it made
			// the taps and before it reports to create. The init gets
			// no pid namespace of its own here, because the init of a
			// pid namespace ignores SIGKILL sent from inside it.
			tc.spec.Linux.Namespaces = slices.DeleteFunc(tc.spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
				return ns.Type == specs.PIDNamespace
			})
			tc.spec.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{
				{Path: "/bin/sh", Args: []string{"sh", "-c", "kill -9 $PPID"}},
			}}
		}, "reading the container init's report"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newTestNetwork(t)
			h := n.handle(t)
			tc := newTestContainer(t, ntender, guests.Binary("net", "hvt"))
			joinNetns(tc.spec, n.path())
			tc.spec.Process.Env = []string{NetArgsEnv + "={address}"}
			c.prepare(tc)
			pidFile := filepath.Join(tc.bundle, "pid")
			if c.name == "pid file" {
				pidFile = filepath.Join(tc.bundle, "missing", "pid")
			}
			data, err := json.Marshal(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tc.bundle, "config.json"), data, 0o644); err != nil {
				t.Fatal(err)
			}

			_, err = tc.rt.Create(tc.id, tc.bundle, CreateOptions{PidFile: pidFile, Stdio: [3]*os.File{nil, tc.out, tc.out}})
			if err == nil {
				tc.rt.Delete(tc.id, true)
				t.Fatal("create succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("message %q lacks %q", err, c.want)
			}
			if _, err := h.LinkByName(tapName(1)); err == nil {
				t.Error("tap left in the joined namespace")
			}
			link, err := h.LinkByName(n.iface)
			if err != nil {
				t.Fatal(err)
			}
			qdiscs, err := h.QdiscList(link)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range qdiscs {
				if q.Type() == "ingress" {
					t.Errorf("ingress qdisc left on %s", n.iface)
				}
			}
			if _, err := os.Stat(filepath.Join(tc.rt.Root, tc.id)); err == nil {
				t.Error("state directory left behind")
			}
			for _, dir := range cgroupDirs(t, tc.spec.Linux.CgroupsPath) {
				if _, err := os.Stat(dir); err == nil {
					t.Errorf("cgroup %s left behind", dir)
				}
			}
		})
	}
}

// TestRunForwardsSignal sends SIGTERM to the process that runs Run in the
// foreground, as Ctrl-C or a supervisor would, and checks that the
// container ends and is deleted while that process lives on.
func TestRunForwardsSignal(t *testing.T) {
	ntender := requireHost(t)
	n := newTestNetwork(t)
	tc := newTestContainer(t, ntender, guests.Binary("net", "hvt"))
	joinNetns(tc.spec, n.path())
	tc.spec.Process.Env = []string{NetArgsEnv + "={address}"}
	data, err := json.Marshal(tc.spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tc.bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	type runResult struct {
		status int
		err    error
	}
	done := make(chan runResult, 1)
	go func() {
		status, err := tc.rt.Run(tc.id, tc.bundle, CreateOptions{Stdio: [3]*os.File{nil, tc.out, tc.out}}, false)
		done <- runResult{status, err}
	}()
	// The guest replies to a ping once Run has started the tender. Run
	// listens for signals from before create on.
	if err := n.ping(t); err != nil {
		tc.rt.Delete(tc.id, true)
		t.Fatalf("guest does not answer: %v\noutput:\n%s", err, tc.output(t))
	}
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}

	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.status == 0 {
		t.Errorf("exit status 0 after SIGTERM, want the status of a killed tender; output:\n%s", tc.output(t))
	}
	if _, err := os.Stat(filepath.Join(tc.rt.Root, tc.id)); err == nil {
		t.Error("state directory left behind")
	}
	if _, err := n.handle(t).LinkByName(tapName(1)); err == nil {
		t.Error("tap left in the joined namespace")
	}
}

// TestFailedCleanupKeepsState makes a create fail with a cgroup that
// cannot be removed, because a hook made a child cgroup in it. The state
// must stay so that delete --force can remove the cgroup later.
func TestFailedCleanupKeepsState(t *testing.T) {
	ntender := requireHost(t)
	tc := newTestContainer(t, ntender, guests.Binary("hello", "spt"), "Hello_Solo5")
	busy := filepath.Join(cgroupDirs(t, tc.spec.Linux.CgroupsPath)[0], "busy")
	t.Cleanup(func() { os.Remove(busy) })
	tc.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "mkdir " + busy + " && exit 3"}},
	}}

	_, err := tc.create(t)
	if err == nil {
		tc.rt.Delete(tc.id, true)
		t.Fatal("create succeeded with a failing hook")
	}
	for _, want := range []string{"createRuntime hook", "undoing the create failed too", "delete --force " + tc.id} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	ct, err := tc.rt.Load(tc.id)
	if err != nil {
		t.Fatalf("state of the failed create: %v", err)
	}
	if ct.Cgroup == nil {
		t.Fatal("the state does not record the cgroup")
	}

	if err := os.Remove(busy); err != nil {
		t.Fatal(err)
	}
	if err := tc.rt.Delete(tc.id, true); err != nil {
		t.Fatal(err)
	}
	for _, dir := range ct.Cgroup.Dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	}
	if _, err := os.Stat(ct.Dir()); err == nil {
		t.Error("state directory left behind")
	}
}
