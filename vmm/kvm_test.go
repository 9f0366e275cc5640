package vmm

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
	"github.com/ntender/ntender/tests/guests"
)

// requireAllEnv turns skips for a missing root, /dev/kvm or guest build
// into failures.
const requireAllEnv = "NTENDER_REQUIRE_ALL"

// skipOrFail skips the test with reason, or fails it when
// NTENDER_REQUIRE_ALL=1.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv(requireAllEnv) == "1" {
		t.Fatalf("%s (%s=1 requires every test to run)", reason, requireAllEnv)
	}
	t.Skip(reason)
}

// requireKVM skips unless /dev/kvm opens read-write and the guests are
// built.
func requireKVM(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("hvt tests need /dev/kvm: %v", err))
	}
	f.Close()
	if _, err := os.Stat(guests.Binary("hello", guests.TargetHVT)); err != nil {
		skipOrFail(t, "test guests not built: run make -C tests/guests")
	}
}

// requireRoot skips unless the test runs as root, which network
// namespaces and taps need.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "network tests need root to create namespaces and taps")
	}
}

// caseTimeout bounds one guest run. The slowest guest needs about 2 s.
const caseTimeout = 60 * time.Second

// TestGuestTable runs every hvt case of the shared guest table in a child
// tender process with the seccomp filter installed, and checks the exit
// status and output the table expects.
func TestGuestTable(t *testing.T) {
	runGuestTable(t, guests.TargetHVT)
}

// runGuestTable runs every case of the shared guest table for target
// under the hvt backend, with the seccomp filter, pinging the net cases.
func runGuestTable(t *testing.T, target string) {
	requireKVM(t)
	cases, err := guests.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Target != target {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			if issue, ok := c.ActiveHostIssue(); ok {
				t.Skipf("known to fail on this host: %s", issue.Reason)
			}
			run := startCase(t, c, "seccomp")
			if len(c.Ping) > 0 {
				run.waitOutput(t, "Serving ping")
				for _, p := range c.Ping {
					out := run.ping(t, p.Address, p.Count)
					want := fmt.Sprintf("%d received", p.Count)
					if !strings.Contains(out, want) {
						t.Errorf("ping %s: output lacks %q:\n%s", p.Address, want, out)
					}
				}
			}
			status, output := run.wait(t)
			if err := c.Check(status, output); err != nil {
				t.Errorf("%v\ncommand: %s\noutput:\n%s", err, run.command, output)
			}
		})
	}
}

// caseRun is a tender child process running one guest case.
type caseRun struct {
	cmd       *exec.Cmd
	output    *guests.SyncBuffer
	namespace string
	command   string
	cancel    context.CancelFunc
	ctx       context.Context
	// exited is closed when the tender has exited; waitErr is then its
	// Wait result.
	exited  chan struct{}
	waitErr error
}

// startCase creates the case's block files and network, and starts the
// test binary as a tender (helper mode mode) on it.
func startCase(t *testing.T, c guests.Case, mode string) *caseRun {
	t.Helper()
	dir := t.TempDir()
	blockPaths := map[string]string{}
	for _, b := range c.Block {
		path := filepath.Join(dir, b.Name+".img")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, b.Size); err != nil {
			t.Fatal(err)
		}
		blockPaths[b.Name] = path
	}

	r := &caseRun{output: &guests.SyncBuffer{}}
	taps := map[string]string{}
	var prefix []string
	if len(c.Net) > 0 {
		requireRoot(t)
		r.namespace = createNetwork(t, c.Net, taps)
		prefix = []string{"ip", "netns", "exec", r.namespace}
	}

	args, err := c.TenderArgs(blockPaths, taps)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(prefix, os.Args[0], "-test.run=^$", "--")
	argv = append(argv, args...)
	r.command = strings.Join(argv, " ")

	r.ctx, r.cancel = context.WithTimeout(context.Background(), caseTimeout)
	t.Cleanup(r.cancel)
	r.cmd = exec.CommandContext(r.ctx, argv[0], argv[1:]...)
	r.cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	r.cmd.Stdout = r.output
	r.cmd.Stderr = r.output
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	return r
}

// waitOutput waits until the output contains s. It fails the test when
// the run times out or the tender exits first.
func (r *caseRun) waitOutput(t *testing.T, s string) {
	t.Helper()
	for !strings.Contains(r.output.String(), s) {
		select {
		case <-r.ctx.Done():
			t.Fatalf("timed out waiting for %q; output:\n%s", s, r.output)
		case <-r.exited:
			if !strings.Contains(r.output.String(), s) {
				t.Fatalf("the tender exited (%v) before printing %q; "+
					"output:\n%s", r.waitErr, s, r.output)
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ping sends count echo requests to address from the run's namespace.
// -w keeps ping going until count replies arrive, so requests lost while
// ARP resolves are made up for.
func (r *caseRun) ping(t *testing.T, address string, count int) string {
	t.Helper()
	cmd := exec.CommandContext(r.ctx, "ip", "netns", "exec", r.namespace,
		"ping", "-q", "-i", "0.01", "-c", fmt.Sprint(count), "-w", "30", address)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("ping %s: %v", address, err)
	}
	return string(out)
}

// wait waits for the tender and returns its exit status and output.
func (r *caseRun) wait(t *testing.T) (int, string) {
	t.Helper()
	<-r.exited
	status, err := guests.ExitStatus(r.waitErr)
	if err != nil {
		t.Fatal(err)
	}
	if r.ctx.Err() != nil {
		t.Fatalf("timed out after %v; output:\n%s", caseTimeout, r.output)
	}
	return status, r.output.String()
}

// createNetwork creates a network namespace with one tap per device,
// configured as the device's test network, and fills taps with the tap
// names. The namespace keeps the taps and addresses away from the host.
func createNetwork(t *testing.T, nets []guests.NetDevice, taps map[string]string) string {
	t.Helper()
	namespace := fmt.Sprintf("ntvmm%d-%d", os.Getpid(), netnsCounter.add())
	ip(t, "netns", "add", namespace)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", namespace).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", namespace, err, out)
		}
	})
	ip(t, "-n", namespace, "link", "set", "lo", "up")
	for i, n := range nets {
		tap := fmt.Sprintf("tap%d", i)
		ip(t, "-n", namespace, "tuntap", "add", "dev", tap, "mode", "tap")
		ip(t, "-n", namespace, "link", "set", tap, "mtu", fmt.Sprint(n.MTU))
		if n.HostAddress != "" {
			ip(t, "-n", namespace, "addr", "add", n.HostAddress, "dev", tap)
		}
		ip(t, "-n", namespace, "link", "set", tap, "up")
		taps[n.Name] = tap
	}
	return namespace
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

var netnsCounter counter

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// findCase returns the hvt case called name from the shared table.
func findCase(t *testing.T, name string) guests.Case {
	t.Helper()
	cases, err := guests.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Name == name && c.Target == guests.TargetHVT {
			return c
		}
	}
	t.Fatalf("no hvt case %q in the guest table", name)
	return guests.Case{}
}

// TestNetPing runs the net guest on a tap in a fresh namespace, pings it
// from the namespace and checks every echo request got a reply.
func TestNetPing(t *testing.T) {
	requireKVM(t)
	requireRoot(t)
	c := guests.Case{
		Name: "net", Target: guests.TargetHVT, Binary: "net",
		Args: []string{"limit", "20"}, MemMiB: 8,
		Net: []guests.NetDevice{{Name: "service0", HostAddress: "10.0.0.1/24", MTU: 1500}},
	}
	run := startCase(t, c, "seccomp")
	run.waitOutput(t, "Serving ping")
	out := run.ping(t, "10.0.0.2", 20)
	if !strings.Contains(out, "20 received") {
		t.Errorf("ping output lacks \"20 received\":\n%s", out)
	}
	status, output := run.wait(t)
	if status != 0 || !strings.Contains(output, "SUCCESS") {
		t.Errorf("net guest: status %d, want 0 and SUCCESS; output:\n%s", status, output)
	}
}

// TestNetMTU9000 checks that the guest gets the MTU of a 9000-byte tap.
func TestNetMTU9000(t *testing.T) {
	requireKVM(t)
	requireRoot(t)
	c := guests.Case{
		Name: "mtu", Target: guests.TargetHVT, Binary: "mtu", MemMiB: 4,
		Net: []guests.NetDevice{{Name: "service0", MTU: 9000}},
	}
	status, output := startCase(t, c, "seccomp").wait(t)
	if status != 0 || !strings.Contains(output, "MTU is 9000") {
		t.Errorf("mtu guest: status %d, want 0 and \"MTU is 9000\"; output:\n%s",
			status, output)
	}
}

// TestSignalEndsGuest sends SIGTERM to a tender whose guest waits in the
// POLL hypercall, under the seccomp filter, and expects status 1.
func TestSignalEndsGuest(t *testing.T) {
	requireKVM(t)
	requireRoot(t)
	c := guests.Case{
		Name: "net", Target: guests.TargetHVT, Binary: "net", MemMiB: 4,
		Net: []guests.NetDevice{{Name: "service0", HostAddress: "10.0.0.1/24", MTU: 1500}},
	}
	run := startCase(t, c, "seccomp")
	run.waitOutput(t, "Serving ping")
	// ip netns exec replaces itself with the tender, so the pid is the
	// tender's.
	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status, output := run.wait(t)
	if status != 1 {
		t.Errorf("status %d, want 1; output:\n%s", status, output)
	}
	if !strings.Contains(output, "Exiting on signal 15") {
		t.Errorf("output lacks \"Exiting on signal 15\":\n%s", output)
	}
}

// TestPrintFilter sets up a guest with a block device and prints the
// filter with the real fd numbers instead of running the guest.
func TestPrintFilter(t *testing.T) {
	requireKVM(t)
	c := findCase(t, "blk")
	status, output := startCase(t, c, "print-filter").wait(t)
	if status != 0 {
		t.Fatalf("status %d, want 0; output:\n%s", status, output)
	}
	for _, want := range []string{"ioctl            allow if arg0 == 0x", "pread64          allow if arg0 == 0x"} {
		if !strings.Contains(output, want) {
			t.Errorf("output lacks %q:\n%s", want, output)
		}
	}
	if strings.Contains(output, "SUCCESS") || strings.Contains(output, "Solo5:") {
		t.Errorf("the guest ran:\n%s", output)
	}
}

// TestLargeMemory runs a guest with 4 GiB of guest memory, the maximum.
func TestLargeMemory(t *testing.T) {
	requireKVM(t)
	c := findCase(t, "hello")
	c.MemMiB = 4096
	status, output := startCase(t, c, "seccomp").wait(t)
	if status != 0 || !strings.Contains(output, "mem_size 0x100000000") {
		t.Errorf("status %d, want 0 with 4 GiB; output:\n%s", status, output)
	}
}

// TestMemoryTooLarge checks the error for more than 4 GiB.
func TestMemoryTooLarge(t *testing.T) {
	requireKVM(t)
	c := findCase(t, "hello")
	c.MemMiB = 4098
	status, output := startCase(t, c, "seccomp").wait(t)
	if status != 1 || !strings.Contains(output, "exceeds the max size 4294967296 bytes") {
		t.Errorf("status %d, want 1 and the size error; output:\n%s", status, output)
	}
}

// spinningGuest returns a hand-made hvt unikernel that prints "ready" with
// one PUTS hypercall and then loops forever without a VM exit:
//
//	0x100000: mov $0x100100, %eax; mov $0x502, %dx; out %eax, %dx; jmp .
//	0x100100: struct hvt_hc_puts {data 0x100200, len 6}
//	0x100200: "ready\n"
func spinningGuest() *abi.Unikernel {
	text := make([]byte, 0x1000)
	copy(text, []byte{
		0xb8, 0x00, 0x01, 0x10, 0x00, // mov $0x100100, %eax
		0x66, 0xba, 0x02, 0x05, // mov $0x502, %dx
		0xef,       // out %eax, %dx
		0xeb, 0xfe, // jmp .
	})
	binary.LittleEndian.PutUint64(text[0x100:], 0x100200)
	binary.LittleEndian.PutUint64(text[0x108:], 6)
	copy(text[0x200:], "ready\n")
	return &abi.Unikernel{
		Path:            "spinning-guest",
		Target:          abi.TargetHVT,
		ABIVersion:      2,
		Entry:           0x100000,
		KernelEnd:       0x101000,
		ManifestEntries: 1,
		Segments: []abi.Segment{{
			Vaddr: 0x100000, Filesz: 0x1000, Memsz: 0x1000,
			Start: 0x100000, End: 0x101000,
			Prot: abi.ProtRead | abi.ProtExec, Data: text,
		}},
	}
}

// runSpinningGuest is the child side of TestSignalStopsSpinningGuest. The
// main goroutine stays locked to the main thread, so the guest runs on
// another thread, and Linux delivers a process signal to the main thread
// (the thread group leader) rather than interrupting KVM_RUN.
func runSpinningGuest() int {
	runtime.LockOSThread()
	type result struct {
		status int
		err    error
	}
	done := make(chan result)
	go func() {
		status, err := run(guestSpec{kernel: spinningGuest(), memMiB: 4},
			Config{Log: func(msg string) { fmt.Fprintln(os.Stderr, msg) }})
		done <- result{status, err}
	}()
	r := <-done
	if r.err != nil {
		fmt.Fprintln(os.Stderr, "ntender:", r.err)
	}
	return r.status
}

// TestSignalStopsSpinningGuest sends SIGTERM while the vCPU runs guest
// code that never exits to the tender, so only the kick (immediate_exit
// and a signal to the vCPU thread) can stop it.
func TestSignalStopsSpinningGuest(t *testing.T) {
	requireKVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=spin")
	output := &guests.SyncBuffer{}
	cmd.Stdout = output
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	for !strings.Contains(output.String(), "ready") {
		if ctx.Err() != nil {
			t.Fatalf("guest did not start; output:\n%s", output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	status, err := guests.ExitStatus(cmd.Wait())
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the guest did not stop within %v", caseTimeout)
	}
	if status != 1 {
		t.Errorf("status %d, want 1; output:\n%s", status, output)
	}
	if !strings.Contains(output.String(), "Exiting on signal 15") {
		t.Errorf("output lacks \"Exiting on signal 15\":\n%s", output)
	}
}

// ringGuest returns a hand-made hvt unikernel with one NET_BASIC device
// that sends one 60-byte frame through the net ring and halts with status
// 0 once the host has consumed the submission:
//
//	mov 0x30(%rdi), %rbx        // boot_info.net_ring
//	entries[0] = {op 1 (NET_WRITE), handle 1, data 0x100200, len 60, id 1}
//	movl $1, (%rbx)             // ent_tail = 1
//	mfence; out %eax, $0x600    // kick
//	1: pause; cmpl $1, 0x40(%rbx); jne 1b   // wait for ent_head == 1
//	HALT with the struct at 0x100300 {cookie 0, status 0}
//
// Without a ring, net_ring is 0 and the first store faults.
func ringGuest() *abi.Unikernel {
	text := make([]byte, 0x1000)
	copy(text, []byte{
		0x48, 0x8b, 0x5f, 0x30,
		0xc7, 0x83, 0x80, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0xc7, 0x83, 0x84, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x48, 0xc7, 0x83, 0x88, 0x00, 0x00, 0x00, 0x00, 0x02, 0x10, 0x00,
		0xc7, 0x83, 0x90, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00,
		0xc7, 0x83, 0x94, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0xc7, 0x03, 0x01, 0x00, 0x00, 0x00,
		0x0f, 0xae, 0xf0,
		0x66, 0xba, 0x00, 0x06,
		0xef,
		0xf3, 0x90,
		0x83, 0x7b, 0x40, 0x01,
		0x75, 0xf8,
		0xb8, 0x00, 0x03, 0x10, 0x00,
		0x66, 0xba, 0x08, 0x05,
		0xef,
	})
	// A broadcast frame of EtherType 0x88B5 (local experimental).
	frame := text[0x200 : 0x200+60]
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	return &abi.Unikernel{
		Path:            "ring-guest",
		Target:          abi.TargetHVT,
		ABIVersion:      2,
		Entry:           0x100000,
		KernelEnd:       0x101000,
		ManifestEntries: 2,
		Devices: []abi.Device{
			{Index: 1, Name: "service0", Type: abi.DeviceNetBasic},
		},
		Segments: []abi.Segment{{
			Vaddr: 0x100000, Filesz: 0x1000, Memsz: 0x1000,
			Start: 0x100000, End: 0x101000,
			Prot: abi.ProtRead | abi.ProtExec, Data: text,
		}},
	}
}

// runRingGuest is the child side of TestNetRingWrite. It attaches the tap
// args[0] and runs ringGuest under the seccomp filter.
func runRingGuest(args []string) int {
	k := ringGuest()
	tap, err := devices.OpenTap(k.Devices[0], args[0], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntender:", err)
		return 1
	}
	defer tap.Close()
	status, err := run(guestSpec{kernel: k, memMiB: 4, nets: []*devices.Net{tap}},
		Config{Log: func(msg string) { fmt.Fprintln(os.Stderr, msg) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntender:", err)
	}
	return status
}

// TestNetRingWrite runs a guest that writes one frame through the net
// ring (ioeventfd kick, I/O goroutine) and checks that the tap received
// exactly that frame.
func TestNetRingWrite(t *testing.T) {
	requireKVM(t)
	requireRoot(t)
	taps := map[string]string{}
	namespace := createNetwork(t, []guests.NetDevice{{Name: "service0", MTU: 1500}}, taps)
	rxPackets := func() string {
		out, err := exec.Command("ip", "netns", "exec", namespace, "cat",
			"/sys/class/net/"+taps["service0"]+"/statistics/rx_packets").Output()
		if err != nil {
			t.Fatalf("reading rx_packets: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	before := rxPackets()

	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", namespace,
		os.Args[0], "-test.run=^$", "--", taps["service0"])
	cmd.Env = append(os.Environ(), helperEnv+"=ring")
	out, err := cmd.CombinedOutput()
	status, err := guests.ExitStatus(err)
	if err != nil {
		t.Fatal(err)
	}
	if status != 0 {
		t.Fatalf("status %d, want 0; output:\n%s", status, out)
	}

	after := rxPackets()
	var b, a int
	fmt.Sscan(before, &b)
	fmt.Sscan(after, &a)
	if a != b+1 {
		t.Errorf("tap rx_packets went from %s to %s, want one more", before, after)
	}
}
