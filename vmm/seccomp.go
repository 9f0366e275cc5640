package vmm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Rule is one entry of a seccomp policy: a system call, the argument
// values it is allowed with, and why the tender needs it.
type Rule struct {
	Syscall string
	// Alts lists alternative argument constraints: the call matches when
	// every condition of one alternative holds. No alternatives means any
	// arguments.
	Alts [][]Cond
	// Errno, when not 0, makes the call fail with this errno instead of
	// allowing it. It is for calls that glibc tries and can do without.
	Errno  syscall.Errno
	Reason string
}

// Cond constrains one system call argument: (arg & Mask) == Value, with
// Mask 0 meaning the whole 64-bit value.
type Cond struct {
	Arg   uint
	Value uint64
	Mask  uint64
}

func (c Cond) String() string {
	if c.Mask != 0 {
		return fmt.Sprintf("arg%d&%#x == %#x", c.Arg, c.Mask, c.Value)
	}
	return fmt.Sprintf("arg%d == %#x", c.Arg, c.Value)
}

// eq returns one alternative per value of argument arg.
func eq(arg uint, values ...int) [][]Cond {
	alts := make([][]Cond, 0, len(values))
	for _, v := range values {
		alts = append(alts, []Cond{{Arg: arg, Value: uint64(v)}})
	}
	return alts
}

// Thread creation flags. glibc's pthread_create passes cloneFlagsPthread;
// the Go runtime passes cloneFlagsGo when it creates threads itself
// (programs without cgo). Neither contains CLONE_NEWUSER or other
// namespace flags, and a fork (flags SIGCHLD) matches neither.
const (
	cloneFlagsGo = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES |
		unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD
	cloneFlagsPthread = cloneFlagsGo | unix.CLONE_SETTLS |
		unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
)

// policyFds are the file descriptors the policy pins arguments to.
type policyFds struct {
	VCPU int
	// SetMSRs allows KVM_SET_MSRS on the vCPU, which an spt guest's
	// arch_prctl(ARCH_SET_FS) needs.
	SetMSRs bool
	// Reads are fds read(2) may use: taps and eventfds.
	Reads []int
	// Writes are fds write(2) may use: stdout, stderr, taps, eventfds.
	Writes []int
	// Blocks are the block devices' fds, for pread64 and pwrite64.
	Blocks []int
	// Epolls are epoll fds: the POLL hypercall's set and the Go runtime's
	// network poller.
	Epolls []int
	Timer  int
	PID    int
	// CoreFile, CoreDir and Pagemap are the fds of --dumpcore, or 0
	// without it: the unnamed core file, its directory and
	// /proc/self/pagemap.
	CoreFile, CoreDir, Pagemap int
}

// rseqSignature is RSEQ_SIG on x86_64, the signature glibc passes to rseq.
const rseqSignature = 0x53053053

// hvtPolicy returns the seccomp policy for the running hvt tender: the
// vCPU loop, the devices and the Go runtime, and nothing else.
//
// NOTE: exit (ending one thread) is not allowed, to stay within 25 allowed
// system calls. Go ends a thread only when a goroutine returns while
// locked to it. vmm unlocks its threads, so none ends while the guest runs.
func hvtPolicy(f policyFds) []Rule {
	vcpuIoctls := [][]Cond{
		{{Arg: 0, Value: uint64(f.VCPU)}, {Arg: 1, Value: kvmRunIoctl}},
		{{Arg: 0, Value: uint64(f.VCPU)}, {Arg: 1, Value: kvmGetRegsIoctl}},
	}
	ioctlReason := "KVM_RUN on the vCPU, and KVM_GET_REGS for the " +
		"instruction pointer in error messages"
	if f.SetMSRs {
		vcpuIoctls = append(vcpuIoctls, []Cond{
			{Arg: 0, Value: uint64(f.VCPU)}, {Arg: 1, Value: kvmSetMSRsIoctl}})
		ioctlReason += "; KVM_SET_MSRS for an spt guest's TLS base"
	}
	rules := []Rule{
		{Syscall: "ioctl", Alts: vcpuIoctls, Reason: ioctlReason},
		{Syscall: "read", Alts: eq(0, f.Reads...),
			Reason: "NET_READ and the ring on taps; eventfds of the ring " +
				"and of the Go network poller"},
		{Syscall: "write", Alts: eq(0, f.Writes...),
			Reason: "console (stdout), messages (stderr), NET_WRITE on " +
				"taps, eventfd wake-ups"},
		{Syscall: "pread64", Alts: eq(0, f.Blocks...),
			Reason: "BLOCK_READ on block devices"},
		{Syscall: "pwrite64", Alts: eq(0, f.Blocks...),
			Reason: "BLOCK_WRITE on block devices"},
		{Syscall: "epoll_pwait", Alts: eq(0, f.Epolls...),
			Reason: "POLL hypercall; Go network poller"},
		{Syscall: "timerfd_settime", Alts: eq(0, f.Timer),
			Reason: "POLL hypercall timeout"},
		{Syscall: "clock_gettime",
			Reason: "WALLTIME and POLL when the vDSO falls back to the " +
				"system call"},
		{Syscall: "close",
			Reason: "closing devices and KVM fds after the guest ends; " +
				"any fd, since closing one only takes access away"},
		{Syscall: "futex", Reason: "Go runtime: locks and thread parking"},
		{Syscall: "mmap",
			Alts: [][]Cond{{{Arg: 2, Mask: unix.PROT_EXEC, Value: 0},
				{Arg: 3, Mask: unix.MAP_ANONYMOUS, Value: unix.MAP_ANONYMOUS}}},
			Reason: "Go runtime heap and glibc thread stacks: anonymous " +
				"memory only, never executable"},
		{Syscall: "munmap", Reason: "Go runtime and glibc memory release"},
		{Syscall: "mprotect",
			Alts:   eq(2, unix.PROT_READ|unix.PROT_WRITE),
			Reason: "glibc thread stacks (guard page), read-write only"},
		{Syscall: "rt_sigprocmask", Reason: "Go runtime signal masks"},
		{Syscall: "rt_sigreturn", Reason: "return from Go signal handlers"},
		{Syscall: "sigaltstack", Reason: "Go runtime: new threads' signal " +
			"stacks"},
		{Syscall: "clone", Alts: eq(0, cloneFlagsPthread, cloneFlagsGo),
			Reason: "Go runtime: new threads (threads only, no fork or " +
				"namespaces)"},
		{Syscall: "gettid", Reason: "Go runtime: new threads' ids"},
		{Syscall: "rseq", Alts: [][]Cond{{
			{Arg: 2, Value: 0}, {Arg: 3, Value: rseqSignature}}},
			Reason: "glibc registers rseq in every new thread and aborts " +
				"if that fails; registration only (flags 0)"},
		{Syscall: "nanosleep", Reason: "Go runtime: usleep"},
		{Syscall: "sched_yield", Reason: "Go runtime: osyield in spin " +
			"locks"},
		{Syscall: "getpid", Reason: "Go runtime: preemption signals " +
			"(tgkill needs the pid)"},
		{Syscall: "tgkill", Alts: eq(0, f.PID),
			Reason: "Go runtime preemption; waking the vCPU on a signal, " +
				"only threads of this process"},
		{Syscall: "restart_syscall",
			Reason: "the kernel resumes a nanosleep or futex wait with " +
				"it when SIGSTOP and SIGCONT, or a cgroup freeze, " +
				"interrupted the call"},
		{Syscall: "exit_group", Reason: "process exit"},
		{Syscall: "clone3", Errno: unix.ENOSYS,
			Reason: "glibc tries clone3 first; its flags are in memory, " +
				"so ENOSYS makes it fall back to clone"},
		{Syscall: "madvise", Errno: unix.ENOSYS,
			Reason: "the Go scavenger and glibc then release memory by " +
				"mapping it again, with mmap"},
		{Syscall: "clock_nanosleep", Errno: unix.ENOSYS,
			Reason: "glibc's nanosleep, which runtime/cgo calls only " +
				"between retries of a failed pthread_create; the " +
				"retries then run at once and end in Go's own error"},
		{Syscall: "set_robust_list", Errno: unix.ENOSYS,
			Reason: "glibc registers robust futexes in new threads; the " +
				"tender uses none"},
	}
	if f.CoreFile != 0 {
		rules = addCoreDumpRules(rules, f)
	}
	// A rule without argument alternatives allows any arguments, so the
	// block calls go when no fd is left for them: a guest without block
	// devices gets no pread64 or pwrite64 at all.
	return slices.DeleteFunc(rules, func(r Rule) bool {
		return (r.Syscall == "pread64" || r.Syscall == "pwrite64") &&
			len(r.Alts) == 0
	})
}

// addCoreDumpRules extends rules for --dumpcore: KVM_GET_SREGS on the
// vCPU, pread64 on the page map, pwrite64 on the core file and linkat to
// name it. To stay within 25 allowed system calls, sched_yield then fails
// with ENOSYS: the Go runtime ignores its result (osyield in
// runtime/sys_linux_amd64.s, Go 1.26), so a spin lock only spins
// without yielding.
func addCoreDumpRules(rules []Rule, f policyFds) []Rule {
	for i := range rules {
		r := &rules[i]
		switch r.Syscall {
		case "ioctl":
			r.Alts = append(r.Alts, []Cond{{Arg: 0, Value: uint64(f.VCPU)},
				{Arg: 1, Value: kvmGetSregsIoctl}})
			r.Reason += "; KVM_GET_SREGS for the core file"
		case "pread64":
			r.Alts = append(r.Alts, eq(0, f.Pagemap)...)
			r.Reason += "; the page map, for the pages of the core file"
		case "pwrite64":
			r.Alts = append(r.Alts, eq(0, f.CoreFile)...)
			r.Reason += "; writing the core file"
		case "sched_yield":
			r.Errno = unix.ENOSYS
			r.Reason = "Go runtime: osyield in spin locks, which ignores " +
				"the result; denied to make room for linkat"
		}
	}
	return append(rules, Rule{
		Syscall: "linkat",
		Alts: [][]Cond{{{Arg: 0, Value: uint64(f.CoreFile)},
			{Arg: 2, Value: uint64(f.CoreDir)},
			{Arg: 4, Value: unix.AT_EMPTY_PATH}}},
		Reason: "naming the unnamed core file in the --dumpcore " +
			"directory when the guest aborts",
	})
}

// FormatPolicy renders rules as text, one system call per line followed by
// its argument constraints and reason.
func FormatPolicy(rules []Rule) string {
	var b strings.Builder
	b.WriteString("seccomp filter (default action: kill the process)\n")
	for _, r := range rules {
		action := "allow"
		if r.Errno != 0 {
			action = "fail with " + errnoName(r.Errno)
		}
		fmt.Fprintf(&b, "%-16s %s", r.Syscall, action)
		if len(r.Alts) > 0 {
			alts := make([]string, len(r.Alts))
			for i, alt := range r.Alts {
				conds := make([]string, len(alt))
				for j, c := range alt {
					conds[j] = c.String()
				}
				alts[i] = strings.Join(conds, " && ")
			}
			fmt.Fprintf(&b, " if %s", strings.Join(alts, " || "))
		}
		fmt.Fprintf(&b, "\n    # %s\n", r.Reason)
	}
	return b.String()
}

func errnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return strconv.Itoa(int(e))
}

// buildFilter compiles rules with libseccomp. The default action kills the
// whole process, so that a violation ends with SIGSYS (status 159) and not
// with one thread silently gone. libseccomp-golang sets TSYNC on every new
// filter, so Load applies it to all threads of the process.
func buildFilter(rules []Rule) (*seccomp.ScmpFilter, error) {
	filter, err := seccomp.NewFilter(seccomp.ActKillProcess)
	if err != nil {
		return nil, fmt.Errorf("creating the seccomp filter: %w", err)
	}
	// x32 system calls and other architectures would otherwise get
	// libseccomp's default, which kills only the thread.
	if err := filter.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		filter.Release()
		return nil, fmt.Errorf("setting the seccomp bad-architecture "+
			"action: %w", err)
	}
	if err := filter.SetNoNewPrivsBit(true); err != nil {
		filter.Release()
		return nil, fmt.Errorf("setting no_new_privs: %w", err)
	}

	for _, r := range rules {
		if err := addRule(filter, r); err != nil {
			filter.Release()
			return nil, err
		}
	}
	return filter, nil
}

func addRule(filter *seccomp.ScmpFilter, r Rule) error {
	call, err := seccomp.GetSyscallFromName(r.Syscall)
	if err != nil {
		return fmt.Errorf("seccomp rule for %s: %w", r.Syscall, err)
	}
	action := seccomp.ActAllow
	if r.Errno != 0 {
		action = seccomp.ActErrno.SetReturnCode(int16(r.Errno))
	}

	if len(r.Alts) == 0 {
		if err := filter.AddRuleExact(call, action); err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", r.Syscall, err)
		}
		return nil
	}
	for _, alt := range r.Alts {
		conds := make([]seccomp.ScmpCondition, 0, len(alt))
		for _, c := range alt {
			var sc seccomp.ScmpCondition
			if c.Mask != 0 {
				sc, err = seccomp.MakeCondition(c.Arg,
					seccomp.CompareMaskedEqual, c.Mask, c.Value)
			} else {
				sc, err = seccomp.MakeCondition(c.Arg,
					seccomp.CompareEqual, c.Value)
			}
			if err != nil {
				return fmt.Errorf("seccomp rule for %s (%v): %w",
					r.Syscall, c, err)
			}
			conds = append(conds, sc)
		}
		if err := filter.AddRuleConditionalExact(call, action,
			conds); err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", r.Syscall, err)
		}
	}
	return nil
}

// installFilter loads rules into the kernel for every thread of the
// process. It cannot be undone.
func installFilter(rules []Rule) error {
	// Setting GOMAXPROCS explicitly stops the runtime (Go 1.25 and later)
	// from re-reading CPU affinity and cgroup limits every second, which
	// would call sched_getaffinity and openat.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	// The time package reads /etc/localtime the first time a time is
	// shown in the local zone, as a logger does for every line. Load it
	// now, while openat is still allowed.
	_, _ = time.Now().Zone()

	filter, err := buildFilter(rules)
	if err != nil {
		return err
	}
	defer filter.Release()
	if err := filter.Load(); err != nil {
		return fmt.Errorf("loading the seccomp filter: %w", err)
	}
	return nil
}

// exportBPF returns the classic BPF program libseccomp generates for
// rules, as an array of struct sock_filter (8 bytes per instruction).
func exportBPF(rules []Rule) ([]byte, error) {
	filter, err := buildFilter(rules)
	if err != nil {
		return nil, err
	}
	defer filter.Release()

	// seccomp_export_bpf_mem needs libseccomp 2.6, but a memfd works with
	// every version.
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("exporting the seccomp filter: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("exporting the seccomp filter: %w", err)
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the exported seccomp filter: %w", err)
	}
	return b, nil
}

// openFds returns every open fd of this process with the target of its
// /proc/self/fd link, such as "anon_inode:[eventfd]" or a path.
func openFds() (map[int]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("listing open fds: %w", err)
	}
	fds := make(map[int]string, len(entries))
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// The fd of the listing itself is closed by now and has no link.
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			fds[fd] = link
		}
	}
	return fds, nil
}

// anonFds returns, in order, the fds in open whose link is the anonymous
// inode of kind, such as "eventfd" or "eventpoll".
func anonFds(open map[int]string, kind string) []int {
	want := "anon_inode:[" + kind + "]"
	var fds []int
	for fd, link := range open {
		if link == want {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds
}

// strayFds returns, in order, the fds in open above 2 that keep does not
// list: descriptors the tender inherited or leaked and does not use.
func strayFds(open map[int]string, keep []int) []int {
	var fds []int
	for fd := range open {
		if fd > 2 && !slices.Contains(keep, fd) {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds
}

// startNetpoller makes the Go runtime create its network poller (an epoll
// fd and an eventfd) now, before the filter, which forbids epoll_create1
// and eventfd2. Opening a pipe as an *os.File registers it with the poller.
func startNetpoller() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("starting the Go network poller: %w", err)
	}
	r.Close()
	w.Close()
	return nil
}

// writePolicy writes the rendered policy to w.
func writePolicy(w io.Writer, rules []Rule) error {
	_, err := io.WriteString(w, FormatPolicy(rules))
	return err
}
