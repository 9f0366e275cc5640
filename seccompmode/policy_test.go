package seccompmode

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Resources of a guest with two tap devices and two block devices, with fd
// numbers that are all distinct and above 2.
var testResources = Resources{
	EpollFd: 3,
	TimerFd: 4,
	Nets: []NetResource{
		{Name: "service0", Iface: "tap100", Fd: 5},
		{Name: "service1", Iface: "tap101", Fd: 6},
	},
	Blocks: []BlockResource{
		{Name: "storage", Fd: 7, SectorSize: 512, Capacity: 4 << 20},
		{Name: "big", Fd: 8, SectorSize: 4096, Capacity: 1 << 40},
	},
}

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retKill  = unix.SECCOMP_RET_KILL_PROCESS
)

// seccompData encodes struct seccomp_data for the x/net/bpf interpreter.
// The kernel loads 32-bit words in host byte order (little-endian), the
// interpreter in network byte order, so each word is stored big-endian
// here; 64-bit values are two words, the low one first.
func seccompData(arch uint32, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	be := binary.BigEndian
	be.PutUint32(b[0:], nr)
	be.PutUint32(b[4:], arch)
	// instruction_pointer at 8 stays 0.
	for i, a := range args {
		be.PutUint32(b[16+8*i:], uint32(a))
		be.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

func newVM(t *testing.T, r Resources) *bpf.VM {
	t.Helper()
	p, err := NewPolicy(r)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	prog, err := p.Filter()
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, ins := range prog {
		raw[i] = bpf.RawInstruction{Op: ins.Code, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the filter has instructions the interpreter does not know: %v", insns)
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("loading the filter into the interpreter: %v", err)
	}
	return vm
}

type syscallCase struct {
	name string
	nr   uint32
	args []uint64
	want uint32
}

func TestFilterAllowsAndDenies(t *testing.T) {
	vm := newVM(t, testResources)
	const (
		storageLast = 4<<20 - 512
		bigLast     = 1<<40 - 4096
	)
	cases := []syscallCase{
		// Console and exit.
		{"write stdout", unix.SYS_WRITE, []uint64{1, 0x200000, 10}, retAllow},
		{"write stderr", unix.SYS_WRITE, []uint64{2, 0x200000, 10}, retKill},
		{"write stdin", unix.SYS_WRITE, []uint64{0, 0x200000, 10}, retKill},
		{"write fd 1 with high bits", unix.SYS_WRITE, []uint64{1 | 1<<32}, retKill},
		{"write epoll fd", unix.SYS_WRITE, []uint64{3}, retKill},
		{"write block fd", unix.SYS_WRITE, []uint64{7}, retKill},
		{"exit_group", unix.SYS_EXIT_GROUP, []uint64{255}, retAllow},
		{"exit", unix.SYS_EXIT, []uint64{0}, retKill},

		// Yield.
		{"epoll_pwait own set", unix.SYS_EPOLL_PWAIT, []uint64{3, 0x1000, 3, ^uint64(0), 0, 0}, retAllow},
		{"epoll_pwait other fd", unix.SYS_EPOLL_PWAIT, []uint64{4}, retKill},
		{"epoll_wait", unix.SYS_EPOLL_WAIT, []uint64{3}, retKill},
		{"epoll_ctl", unix.SYS_EPOLL_CTL, []uint64{3, 1, 5, 0x1000}, retKill},
		{"timerfd_settime own timer", unix.SYS_TIMERFD_SETTIME, []uint64{4, 1, 0x1000, 0}, retAllow},
		{"timerfd_settime other fd", unix.SYS_TIMERFD_SETTIME, []uint64{3, 1, 0x1000, 0}, retKill},
		{"timerfd_create", unix.SYS_TIMERFD_CREATE, []uint64{1, 0}, retKill},

		// Clocks and TLS.
		{"clock_gettime monotonic", unix.SYS_CLOCK_GETTIME, []uint64{unix.CLOCK_MONOTONIC, 0x1000}, retAllow},
		{"clock_gettime realtime", unix.SYS_CLOCK_GETTIME, []uint64{unix.CLOCK_REALTIME, 0x1000}, retAllow},
		{"clock_gettime boottime", unix.SYS_CLOCK_GETTIME, []uint64{unix.CLOCK_BOOTTIME, 0x1000}, retKill},
		{"clock_gettime process cputime", unix.SYS_CLOCK_GETTIME, []uint64{unix.CLOCK_PROCESS_CPUTIME_ID}, retKill},
		{"gettimeofday", unix.SYS_GETTIMEOFDAY, []uint64{0x1000, 0}, retKill},
		{"arch_prctl set fs", unix.SYS_ARCH_PRCTL, []uint64{archSetFS, 0x200000}, retAllow},
		{"arch_prctl set fs 0", unix.SYS_ARCH_PRCTL, []uint64{archSetFS, 0}, retAllow},
		{"arch_prctl set gs", unix.SYS_ARCH_PRCTL, []uint64{0x1001, 0x200000}, retKill},
		{"arch_prctl get fs", unix.SYS_ARCH_PRCTL, []uint64{0x1003, 0x200000}, retKill},

		// Network devices.
		{"read tap 0", unix.SYS_READ, []uint64{5, 0x200000, 1514}, retAllow},
		{"read tap 1", unix.SYS_READ, []uint64{6, 0x200000, 1514}, retAllow},
		{"write tap 0", unix.SYS_WRITE, []uint64{5, 0x200000, 60}, retAllow},
		{"write tap 1", unix.SYS_WRITE, []uint64{6, 0x200000, 60}, retAllow},
		{"read stdin", unix.SYS_READ, []uint64{0, 0x200000, 10}, retKill},
		{"read block fd", unix.SYS_READ, []uint64{7, 0x200000, 512}, retKill},
		{"read timer fd", unix.SYS_READ, []uint64{4, 0x200000, 8}, retKill},
		{"readv tap", unix.SYS_READV, []uint64{5, 0x200000, 1}, retKill},
		{"pread64 tap", unix.SYS_PREAD64, []uint64{5, 0x200000, 512, 0}, retKill},

		// Block devices: one sector, offset at most capacity - sector.
		{"pread64 first sector", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, 0}, retAllow},
		{"pread64 last sector", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, storageLast}, retAllow},
		{"pread64 at capacity", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, storageLast + 512}, retKill},
		{"pread64 one past last", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, storageLast + 1}, retKill},
		{"pread64 offset high bits", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, 1 << 32}, retKill},
		{"pread64 offset negative", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, ^uint64(511)}, retKill},
		{"pread64 count too small", unix.SYS_PREAD64, []uint64{7, 0x200000, 511, 0}, retKill},
		{"pread64 count too large", unix.SYS_PREAD64, []uint64{7, 0x200000, 513, 0}, retKill},
		{"pread64 two sectors", unix.SYS_PREAD64, []uint64{7, 0x200000, 1024, 0}, retKill},
		{"pread64 other device's size", unix.SYS_PREAD64, []uint64{7, 0x200000, 4096, 0}, retKill},
		{"pwrite64 first sector", unix.SYS_PWRITE64, []uint64{7, 0x200000, 512, 0}, retAllow},
		{"pwrite64 last sector", unix.SYS_PWRITE64, []uint64{7, 0x200000, 512, storageLast}, retAllow},
		{"pwrite64 at capacity", unix.SYS_PWRITE64, []uint64{7, 0x200000, 512, storageLast + 512}, retKill},
		{"pwrite64 count", unix.SYS_PWRITE64, []uint64{7, 0x200000, 1, 0}, retKill},
		{"pread64 big last sector", unix.SYS_PREAD64, []uint64{8, 0x200000, 4096, bigLast}, retAllow},
		{"pread64 big past end", unix.SYS_PREAD64, []uint64{8, 0x200000, 4096, bigLast + 4096}, retKill},
		{"pwrite64 big high offset", unix.SYS_PWRITE64, []uint64{8, 0x200000, 4096, 1 << 39}, retAllow},
		{"pwrite64 big 512", unix.SYS_PWRITE64, []uint64{8, 0x200000, 512, 0}, retKill},
		{"pread64 unknown fd", unix.SYS_PREAD64, []uint64{9, 0x200000, 512, 0}, retKill},
		{"pread64 stdout", unix.SYS_PREAD64, []uint64{1, 0x200000, 512, 0}, retKill},
		{"preadv block", unix.SYS_PREADV, []uint64{7, 0x200000, 1, 0}, retKill},
		{"write block", unix.SYS_WRITE, []uint64{7, 0x200000, 512}, retKill},

		// Calls no guest may make.
		{"dup", unix.SYS_DUP, []uint64{0}, retKill},
		{"openat", unix.SYS_OPENAT, []uint64{0, 0x200000, 0}, retKill},
		{"mmap", unix.SYS_MMAP, []uint64{0, 4096, 7, 0x22, ^uint64(0), 0}, retKill},
		{"mprotect", unix.SYS_MPROTECT, []uint64{0x100000, 4096, 7}, retKill},
		{"execve", unix.SYS_EXECVE, nil, retKill},
		{"close", unix.SYS_CLOSE, []uint64{5}, retKill},
		{"ioctl tap", unix.SYS_IOCTL, []uint64{5, unix.TUNSETIFF, 0}, retKill},
		{"prctl", unix.SYS_PRCTL, nil, retKill},
		{"seccomp", unix.SYS_SECCOMP, nil, retKill},
		{"number 0x3ff", 0x3ff, nil, retKill},
		{"x32 write", 0x40000000 | unix.SYS_WRITE, []uint64{1}, retKill},
		{"x32 exit_group", 0x40000000 | unix.SYS_EXIT_GROUP, nil, retKill},
	}
	p, err := NewPolicy(testResources)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got, err := vm.Run(seccompData(unix.AUDIT_ARCH_X86_64, c.nr, c.args...))
		if err != nil {
			t.Errorf("%s: interpreter: %v", c.name, err)
			continue
		}
		if uint32(got) != c.want {
			t.Errorf("%s: nr %d args %#x: action %#x, want %#x", c.name, c.nr, c.args, uint32(got), c.want)
		}
		var args [6]uint64
		copy(args[:], c.args)
		if allowed := p.Allows(int(c.nr), args); allowed != (c.want == retAllow) {
			t.Errorf("%s: Allows = %v, but the filter's action should be %#x", c.name, allowed, c.want)
		}
	}
}

func TestFilterKillsForeignArchitecture(t *testing.T) {
	vm := newVM(t, testResources)
	for _, arch := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, 0} {
		// exit_group and write(1) are allowed on x86_64 only.
		for _, nr := range []uint32{unix.SYS_EXIT_GROUP, unix.SYS_WRITE} {
			got, err := vm.Run(seccompData(arch, nr, 1))
			if err != nil {
				t.Fatalf("interpreter: %v", err)
			}
			if uint32(got) != retKill {
				t.Errorf("arch %#x nr %d: action %#x, want kill %#x", arch, nr, uint32(got), uint32(retKill))
			}
		}
	}
}

// TestFilterWithoutDevices checks that read and pread64, which only device
// rules allow, are denied for a guest without devices.
func TestFilterWithoutDevices(t *testing.T) {
	vm := newVM(t, Resources{EpollFd: 3, TimerFd: 4})
	cases := []syscallCase{
		{"write stdout", unix.SYS_WRITE, []uint64{1}, retAllow},
		{"exit_group", unix.SYS_EXIT_GROUP, []uint64{0}, retAllow},
		{"read fd 5", unix.SYS_READ, []uint64{5}, retKill},
		{"write fd 5", unix.SYS_WRITE, []uint64{5}, retKill},
		{"pread64 fd 7", unix.SYS_PREAD64, []uint64{7, 0, 512, 0}, retKill},
		{"pwrite64 fd 7", unix.SYS_PWRITE64, []uint64{7, 0, 512, 0}, retKill},
	}
	for _, c := range cases {
		got, err := vm.Run(seccompData(unix.AUDIT_ARCH_X86_64, c.nr, c.args...))
		if err != nil {
			t.Fatalf("%s: interpreter: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: action %#x, want %#x", c.name, uint32(got), c.want)
		}
	}
}

// TestFilterOneSectorDevice checks the bound for the smallest device: only
// offset 0 is allowed.
func TestFilterOneSectorDevice(t *testing.T) {
	vm := newVM(t, Resources{EpollFd: 3, TimerFd: 4, Blocks: []BlockResource{
		{Name: "tiny", Fd: 5, SectorSize: 512, Capacity: 512},
	}})
	for offset, want := range map[uint64]uint32{0: retAllow, 1: retKill, 512: retKill} {
		got, err := vm.Run(seccompData(unix.AUDIT_ARCH_X86_64, unix.SYS_PREAD64, 5, 0, 512, offset))
		if err != nil {
			t.Fatalf("interpreter: %v", err)
		}
		if uint32(got) != want {
			t.Errorf("offset %d: action %#x, want %#x", offset, uint32(got), want)
		}
	}
}

func TestNewPolicyRejectsBadResources(t *testing.T) {
	cases := map[string]Resources{
		"epoll fd 1":         {EpollFd: 1, TimerFd: 4},
		"shared fd":          {EpollFd: 3, TimerFd: 3},
		"tap on timer fd":    {EpollFd: 3, TimerFd: 4, Nets: []NetResource{{Name: "n", Fd: 4}}},
		"block on tap fd":    {EpollFd: 3, TimerFd: 4, Nets: []NetResource{{Name: "n", Fd: 5}}, Blocks: []BlockResource{{Name: "b", Fd: 5, SectorSize: 512, Capacity: 512}}},
		"block below sector": {EpollFd: 3, TimerFd: 4, Blocks: []BlockResource{{Name: "b", Fd: 5, SectorSize: 512, Capacity: 511}}},
		"block sector zero":  {EpollFd: 3, TimerFd: 4, Blocks: []BlockResource{{Name: "b", Fd: 5, SectorSize: 0, Capacity: 512}}},
		"block on stdout":    {EpollFd: 3, TimerFd: 4, Blocks: []BlockResource{{Name: "b", Fd: 1, SectorSize: 512, Capacity: 512}}},
	}
	for name, r := range cases {
		if _, err := NewPolicy(r); err == nil {
			t.Errorf("%s: NewPolicy accepted %+v", name, r)
		}
	}
}

func TestPolicyRulesMatchUpstream(t *testing.T) {
	p, err := NewPolicy(testResources)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Rules {
		got = append(got, r.Syscall)
	}
	// Upstream adds the core rules, then read and write per tap, then
	// pread64 and pwrite64 per block device.
	want := []string{
		"write", "exit_group", "epoll_pwait", "timerfd_settime",
		"clock_gettime", "clock_gettime", "arch_prctl",
		"read", "write", "read", "write",
		"pread64", "pwrite64", "pread64", "pwrite64",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rules %v, want %v", got, want)
	}
	for _, r := range p.Rules {
		if r.Reason == "" {
			t.Errorf("rule for %s has no reason", r.Syscall)
		}
	}
}

func TestPolicyRender(t *testing.T) {
	p, err := NewPolicy(testResources)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Render(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if want := 3 + len(p.Rules); len(lines) != want {
		t.Errorf("%d lines, want %d:\n%s", len(lines), want, text)
	}
	for _, want := range []string{
		"fd == stdout (1)",
		"epfd == 3",
		"clockid == CLOCK_MONOTONIC (1)",
		"clockid == CLOCK_REALTIME (0)",
		"code == ARCH_SET_FS (4098)",
		"solo5_net_read on service1 (tap tap101)",
		"fd == 7 && count == 512 && offset <= 4193792",
		"fd == 8 && count == 4096 && offset <= 1099511623680",
		"solo5_block_write on big",
		"kills the process",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// TestFilterMatchesAllows compares the compiled filter with Policy.Allows
// on many calls built from values near every bound of the policy, with a
// fixed seed so that a failure repeats.
func TestFilterMatchesAllows(t *testing.T) {
	p, err := NewPolicy(testResources)
	if err != nil {
		t.Fatal(err)
	}
	vm := newVM(t, testResources)

	numbers := []uint32{
		unix.SYS_READ, unix.SYS_WRITE, unix.SYS_PREAD64, unix.SYS_PWRITE64,
		unix.SYS_ARCH_PRCTL, unix.SYS_CLOCK_GETTIME, unix.SYS_EXIT_GROUP,
		unix.SYS_EPOLL_PWAIT, unix.SYS_TIMERFD_SETTIME, unix.SYS_DUP, unix.SYS_MMAP,
	}
	values := []uint64{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1 << 32, 1<<32 | 1, 1<<32 | 7,
		511, 512, 513, 4095, 4096, 4097,
		4<<20 - 1024, 4<<20 - 513, 4<<20 - 512, 4<<20 - 511, 4 << 20,
		1<<40 - 8192, 1<<40 - 4097, 1<<40 - 4096, 1<<40 - 4095, 1 << 40,
		0x1001, 0x1002, 0x1003, ^uint64(0), ^uint64(0) - 511,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	allowed := 0
	for i := range 20000 {
		nr := numbers[rng.IntN(len(numbers))]
		var args [6]uint64
		for j := range args {
			args[j] = values[rng.IntN(len(values))]
		}
		got, err := vm.Run(seccompData(unix.AUDIT_ARCH_X86_64, nr, args[:]...))
		if err != nil {
			t.Fatalf("call %d: interpreter: %v", i, err)
		}
		want := p.Allows(int(nr), args)
		if (uint32(got) == retAllow) != want {
			t.Fatalf("call %d: nr %d args %#x: filter action %#x, Allows %v", i, nr, args, uint32(got), want)
		}
		if want {
			allowed++
		}
	}
	// A generator that never hits an allowed call would test nothing.
	if allowed < 100 {
		t.Errorf("only %d of 20000 generated calls were allowed", allowed)
	}
}
