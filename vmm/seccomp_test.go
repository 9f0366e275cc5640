package vmm

import (
	"encoding/binary"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Seccomp return values (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retErrno       = 0x00050000
	retAllow       = 0x7FFF0000
	auditArchX8664 = 0xC000003E
)

var testFds = policyFds{
	VCPU:   7,
	Reads:  []int{5, 20},
	Writes: []int{1, 2, 5, 20},
	Blocks: []int{21, 22},
	Epolls: []int{4, 9},
	Timer:  10,
	PID:    4242,
}

// filterVM compiles the policy with libseccomp and loads the exported
// classic BPF program into an interpreter.
func filterVM(t *testing.T, rules []Rule) *bpf.VM {
	t.Helper()
	raw, err := exportBPF(rules)
	if err != nil {
		t.Fatalf("exportBPF: %v", err)
	}
	if len(raw)%8 != 0 {
		t.Fatalf("BPF program is %d bytes, not a multiple of 8", len(raw))
	}
	insns := make([]bpf.Instruction, 0, len(raw)/8)
	for i := 0; i < len(raw); i += 8 {
		ri := bpf.RawInstruction{
			Op: binary.LittleEndian.Uint16(raw[i:]),
			Jt: raw[i+2],
			Jf: raw[i+3],
			K:  binary.LittleEndian.Uint32(raw[i+4:]),
		}
		insns = append(insns, ri.Disassemble())
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("loading the filter into the BPF interpreter: %v", err)
	}
	return vm
}

// seccompData encodes struct seccomp_data for the interpreter. The kernel
// loads 32-bit words in host order, but bpf.VM loads them big-endian, so
// each word is stored big-endian here.
func seccompData(arch uint32, nr int, args ...uint64) []byte {
	b := make([]byte, 64)
	be := binary.BigEndian
	be.PutUint32(b[0:], uint32(nr))
	be.PutUint32(b[4:], arch)
	for i, a := range args {
		// Each 64-bit argument is two words, low word first on x86_64.
		be.PutUint32(b[16+8*i:], uint32(a))
		be.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

func evalFilter(t *testing.T, vm *bpf.VM, arch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	ret, err := vm.Run(seccompData(arch, nr, args...))
	if err != nil {
		t.Fatalf("running the filter: %v", err)
	}
	return uint32(ret)
}

// Filter results the decision tables expect.
const (
	allow = retAllow
	kill  = retKillProcess
	nosys = retErrno | uint32(unix.ENOSYS)
)

// filterCase is one system call with its arguments and the filter result
// it should get.
type filterCase struct {
	name string
	nr   int
	args []uint64
	want uint32
}

// checkDecisions runs each case through the filter in vm.
func checkDecisions(t *testing.T, vm *bpf.VM, cases []filterCase) {
	t.Helper()
	for _, c := range cases {
		if got := evalFilter(t, vm, auditArchX8664, c.nr, c.args...); got != c.want {
			t.Errorf("%s: filter returned %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestFilterDecisions(t *testing.T) {
	vm := filterVM(t, hvtPolicy(testFds))
	cases := []filterCase{
		{"KVM_RUN on the vCPU", unix.SYS_IOCTL, []uint64{7, kvmRunIoctl}, allow},
		{"KVM_GET_REGS on the vCPU", unix.SYS_IOCTL, []uint64{7, kvmGetRegsIoctl}, allow},
		{"KVM_RUN on another fd", unix.SYS_IOCTL, []uint64{8, kvmRunIoctl}, kill},
		{"KVM_SET_REGS on the vCPU", unix.SYS_IOCTL, []uint64{7, 0x4090AE82}, kill},
		{"KVM_RUN with high bits set", unix.SYS_IOCTL, []uint64{7, 1<<32 | kvmRunIoctl}, kill},
		{"TUNSETIFF", unix.SYS_IOCTL, []uint64{5, unix.TUNSETIFF}, kill},
		{"read a tap", unix.SYS_READ, []uint64{5}, allow},
		{"read stdin", unix.SYS_READ, []uint64{0}, kill},
		{"read a block fd", unix.SYS_READ, []uint64{21}, kill},
		{"write stdout", unix.SYS_WRITE, []uint64{1}, allow},
		{"write stderr", unix.SYS_WRITE, []uint64{2}, allow},
		{"write a tap", unix.SYS_WRITE, []uint64{5}, allow},
		{"write a block fd", unix.SYS_WRITE, []uint64{21}, kill},
		{"write fd 3", unix.SYS_WRITE, []uint64{3}, kill},
		{"pread64 a block fd", unix.SYS_PREAD64, []uint64{22}, allow},
		{"pwrite64 a block fd", unix.SYS_PWRITE64, []uint64{21}, allow},
		{"pwrite64 a tap", unix.SYS_PWRITE64, []uint64{5}, kill},
		{"epoll_pwait on the runtime set", unix.SYS_EPOLL_PWAIT, []uint64{4}, allow},
		{"epoll_pwait elsewhere", unix.SYS_EPOLL_PWAIT, []uint64{5}, kill},
		{"timerfd_settime", unix.SYS_TIMERFD_SETTIME, []uint64{10}, allow},
		{"timerfd_settime elsewhere", unix.SYS_TIMERFD_SETTIME, []uint64{11}, kill},
		{"close a device", unix.SYS_CLOSE, []uint64{21}, allow},
		{"close stdout", unix.SYS_CLOSE, []uint64{1}, allow},
		{"restart_syscall", unix.SYS_RESTART_SYSCALL, nil, allow},
		{"madvise", unix.SYS_MADVISE, []uint64{0x1000, 4096, unix.MADV_DONTNEED}, nosys},
		{"mmap anonymous read-write", unix.SYS_MMAP, []uint64{0, 4096, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS}, allow},
		{"mmap anonymous executable", unix.SYS_MMAP, []uint64{0, 4096, unix.PROT_READ | unix.PROT_EXEC, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS}, kill},
		{"mmap a file", unix.SYS_MMAP, []uint64{0, 4096, unix.PROT_READ, unix.MAP_SHARED, 21}, kill},
		{"mprotect read-write", unix.SYS_MPROTECT, []uint64{0x1000, 4096, unix.PROT_READ | unix.PROT_WRITE}, allow},
		{"mprotect executable", unix.SYS_MPROTECT, []uint64{0x1000, 4096, unix.PROT_READ | unix.PROT_EXEC}, kill},
		{"clone a pthread", unix.SYS_CLONE, []uint64{cloneFlagsPthread}, allow},
		{"clone a Go thread", unix.SYS_CLONE, []uint64{cloneFlagsGo}, allow},
		{"fork through clone", unix.SYS_CLONE, []uint64{uint64(unix.SIGCHLD)}, kill},
		{"clone into a user namespace", unix.SYS_CLONE, []uint64{cloneFlagsPthread | unix.CLONE_NEWUSER}, kill},
		{"clone3", unix.SYS_CLONE3, nil, nosys},
		{"rseq registration", unix.SYS_RSEQ, []uint64{0x7f0000001000, 32, 0, rseqSignature}, allow},
		{"rseq unregistration", unix.SYS_RSEQ, []uint64{0x7f0000001000, 32, 1, rseqSignature}, kill},
		{"set_robust_list", unix.SYS_SET_ROBUST_LIST, nil, nosys},
		{"clock_nanosleep", unix.SYS_CLOCK_NANOSLEEP, nil, nosys},
		{"tgkill in this process", unix.SYS_TGKILL, []uint64{4242, 100, uint64(unix.SIGURG)}, allow},
		{"tgkill another process", unix.SYS_TGKILL, []uint64{1, 1, uint64(unix.SIGKILL)}, kill},
		{"futex", unix.SYS_FUTEX, nil, allow},
		{"exit_group", unix.SYS_EXIT_GROUP, nil, allow},
		{"openat", unix.SYS_OPENAT, nil, kill},
		{"execve", unix.SYS_EXECVE, nil, kill},
		{"socket", unix.SYS_SOCKET, nil, kill},
		{"dup", unix.SYS_DUP, nil, kill},
		{"fork", unix.SYS_FORK, nil, kill},
		{"ptrace", unix.SYS_PTRACE, nil, kill},
		{"rt_sigaction", unix.SYS_RT_SIGACTION, nil, kill},
		{"epoll_ctl", unix.SYS_EPOLL_CTL, nil, kill},
		{"x32 ABI read", unix.SYS_READ | 0x40000000, []uint64{5}, kill},
	}
	checkDecisions(t, vm, cases)

	// A call from another architecture (i386 int 0x80) must not pass as
	// the x86_64 call with the same number.
	const auditArchI386 = 0x40000003
	if got := evalFilter(t, vm, auditArchI386, 3, 5); got == retAllow {
		t.Errorf("i386 read: filter returned allow")
	}
}

func TestFilterSetMSRsOnlyForSPT(t *testing.T) {
	const setMSRs = kvmSetMSRsIoctl
	vm := filterVM(t, hvtPolicy(testFds))
	if got := evalFilter(t, vm, auditArchX8664, unix.SYS_IOCTL, 7, setMSRs); got != retKillProcess {
		t.Errorf("KVM_SET_MSRS for an hvt guest: filter returned %#x, want kill", got)
	}

	fds := testFds
	fds.SetMSRs = true
	vm = filterVM(t, hvtPolicy(fds))
	if got := evalFilter(t, vm, auditArchX8664, unix.SYS_IOCTL, 7, setMSRs); got != retAllow {
		t.Errorf("KVM_SET_MSRS for an spt guest: filter returned %#x, want allow", got)
	}
	if got := evalFilter(t, vm, auditArchX8664, unix.SYS_IOCTL, 8, setMSRs); got != retKillProcess {
		t.Errorf("KVM_SET_MSRS on another fd: filter returned %#x, want kill", got)
	}
}

func TestPolicySize(t *testing.T) {
	rules := hvtPolicy(testFds)
	allowed := 0
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Syscall] {
			t.Errorf("%s appears twice", r.Syscall)
		}
		seen[r.Syscall] = true
		if r.Reason == "" {
			t.Errorf("%s has no reason", r.Syscall)
		}
		if r.Errno == 0 {
			allowed++
		}
	}
	if allowed > 25 {
		t.Errorf("policy allows %d system calls, want at most 25", allowed)
	}
}

func TestFormatPolicy(t *testing.T) {
	text := FormatPolicy(hvtPolicy(testFds))
	for _, want := range []string{
		"default action: kill the process",
		"ioctl            allow if arg0 == 0x7 && arg1 == 0xae80 || arg0 == 0x7 && arg1 == 0x8090ae81",
		"pread64          allow if arg0 == 0x15 || arg0 == 0x16",
		"mmap             allow if arg2&0x4 == 0x0",
		"clone3           fail with ENOSYS",
		"futex            allow\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered policy lacks %q:\n%s", want, text)
		}
	}
}

// TestFilterGoRuntime installs the real policy in a child process. The
// child then makes the Go runtime create threads, collect garbage, release
// memory and send preemption signals, and must exit with status 0.
func TestFilterGoRuntime(t *testing.T) {
	r := runFilterHelper(t)
	if r.status != 0 {
		t.Fatalf("child under the filter: status %d, want 0; output:\n%s",
			r.status, r.output)
	}
	if !strings.Contains(r.output, "runtime ok") {
		t.Errorf("child output lacks \"runtime ok\":\n%s", r.output)
	}
}

// runtimeUnderFilter is the child side of TestFilterGoRuntime.
func runtimeUnderFilter() int {
	if err := startNetpoller(); err != nil {
		println("startNetpoller:", err.Error())
		return 2
	}
	if err := limitMallocArenas(); err != nil {
		println("limitMallocArenas:", err.Error())
		return 2
	}
	open, err := openFds()
	if err != nil {
		println("openFds:", err.Error())
		return 2
	}
	eventFds := anonFds(open, "eventfd")
	epollFds := anonFds(open, "eventpoll")
	f := policyFds{
		VCPU:   -1,
		Reads:  eventFds,
		Writes: append([]int{1, 2}, eventFds...),
		Epolls: epollFds,
		Timer:  -1,
		PID:    os.Getpid(),
	}
	if err := installFilter(hvtPolicy(f)); err != nil {
		println("installFilter:", err.Error())
		return 2
	}

	// Locked goroutines that block force new OS threads.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([][]byte, 0, 64)
			for j := 0; j < 64; j++ {
				buf = append(buf, make([]byte, 1<<16))
			}
			runtime.GC()
			_ = buf
		}()
	}
	wg.Wait()
	runtime.GC()
	debugFreeOSMemory()
	os.Stdout.WriteString("runtime ok\n")
	return 0
}

// TestFilterWithoutBlockDevices expects no pread64 or pwrite64 at all
// when the guest has no block device: a rule without fds would allow
// every fd.
func TestFilterWithoutBlockDevices(t *testing.T) {
	fds := testFds
	fds.Blocks = nil
	vm := filterVM(t, hvtPolicy(fds))
	for _, nr := range []int{unix.SYS_PREAD64, unix.SYS_PWRITE64} {
		for _, fd := range []uint64{1, 21} {
			if got := evalFilter(t, vm, auditArchX8664, nr, fd); got != retKillProcess {
				t.Errorf("system call %d on fd %d: filter returned %#x, want kill", nr, fd, got)
			}
		}
	}
}

func TestStrayFds(t *testing.T) {
	open := map[int]string{0: "/dev/null", 1: "pipe:[1]", 2: "pipe:[1]",
		3: "/etc/hostname", 5: "anon_inode:[eventfd]", 7: "/dev/kvm",
		9: "anon_inode:kvm-vcpu:0", 12: "anon_inode:[eventpoll]"}
	if got, want := strayFds(open, []int{5, 9, 12}), []int{3, 7}; !slices.Equal(got, want) {
		t.Errorf("strayFds = %v, want %v", got, want)
	}
	if got, want := anonFds(open, "eventfd"), []int{5}; !slices.Equal(got, want) {
		t.Errorf("anonFds(eventfd) = %v, want %v", got, want)
	}
}
