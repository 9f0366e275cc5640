package vmm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
	"github.com/ntender/ntender/plan"
)

// Config holds the caller's settings for one run.
type Config struct {
	// Stdout receives the guest's console output, one write per PUTS
	// hypercall. Nil means os.Stdout.
	Stdout io.Writer
	// Log receives messages that do not end the run: memory
	// adjustments, a net ring fallback, the trap frame of a guest that
	// halted on a CPU exception, and the progress and failures of
	// --dumpcore. Nil discards them. It may be called from the vCPU
	// thread while the guest runs, but not after the seccomp filter is
	// installed, except for the trap frame and the --dumpcore messages.
	Log func(msg string)
	// NoSeccomp skips the seccomp filter. Tests that run several guests
	// in one process need it, because a filter cannot be removed.
	NoSeccomp bool
	// PrintFilter, when not nil, makes Run set everything up, write the
	// seccomp filter it would install (with the real fd numbers) to
	// PrintFilter, and return 0 without running the guest.
	PrintFilter io.Writer
	// NoSignals keeps Run from handling signals (see stopSignals).
	NoSignals bool
}

// SignalError reports that the guest was stopped by a signal to the
// tender.
type SignalError struct {
	Signal syscall.Signal
	// SPT is set for an spt unikernel, whose tender solo5-spt dies of
	// every signal that ends it.
	SPT bool
}

func (e *SignalError) Error() string {
	if e.Signal == unix.SIGINT || e.Signal == unix.SIGTERM {
		return fmt.Sprintf("Exiting on signal %d", int(e.Signal))
	}
	return fmt.Sprintf("stopped by signal %d (%v)", int(e.Signal), e.Signal)
}

// ExitStatus returns the tender's exit status. It is 1 for SIGINT and
// SIGTERM, which solo5-hvt handles. Any other signal N kills solo5-hvt, so
// it is 128+N, the status a shell reports for that death. For an spt
// unikernel it is 128+N for every signal, as solo5-spt dies of them all.
func (e *SignalError) ExitStatus() int {
	if !e.SPT && (e.Signal == unix.SIGINT || e.Signal == unix.SIGTERM) {
		return 1
	}
	return 128 + int(e.Signal)
}

// stopSignals are the signals whose default action ends a process. Run
// catches them all: the Go runtime's own response (a goroutine dump for
// SIGQUIT, re-raising SIGPIPE with rt_sigaction) would break the seccomp
// filter or print runtime internals, so Run stops the guest and reports a
// SignalError instead. SIGURG and SIGPROF are left to the runtime, which
// uses them for preemption and profiling.
var stopSignals = []os.Signal{
	unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGVTALRM, unix.SIGABRT,
	unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSYS,
	unix.SIGXCPU, unix.SIGXFSZ, unix.SIGSTKFLT, unix.SIGPWR,
}

// ExitError is a VM exit that ends the guest as a failure: an unhandled
// exit reason, or a hypercall that broke the protocol.
type ExitError struct {
	Reason uint32
	RIP    uint64
	Err    error
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%v (KVM exit %s, rip=%#x)", e.Err,
		exitReasonName(e.Reason), e.RIP)
}

func (e *ExitError) Unwrap() error { return e.Err }

// guestSpec is what a run needs from a launch plan.
type guestSpec struct {
	kernel  *abi.Unikernel
	memMiB  uint64
	cmdline string
	blocks  []*devices.Block
	nets    []*devices.Net
	// xExecHeap makes an spt guest's heap and stack executable, as
	// solo5-spt's --x-exec-heap does.
	xExecHeap bool
	// dumpCore is the --dumpcore directory, or "".
	dumpCore string
}

// machine is one VM with its devices during a run.
type machine struct {
	cfg    Config
	spec   guestSpec
	layout memoryLayout

	kvmFd int
	vcpu  *vcpu
	mem   []byte
	guest GuestMemory
	calls hypercalls
	poll  *devices.Poller
	ring  *netRing
	core  *coreDump // nil without --dumpcore

	// handleExit serves one VM exit from the kvm_run area. Setup picks
	// the handler for the guest's ABI; hvt guests get handleExit over the hypercall table.
	handleExit func(run []byte) (*Halt, error)

	// stop is set by a signal or a ring failure. The run loop checks it
	// after every exit and on EINTR.
	stop    atomic.Bool
	stopErr atomic.Pointer[error]
	tid     atomic.Int64
	// pid is read before the filter, which does not allow getpid.
	pid int
	// stray are the fds the tender does not use, which it closes before
	// installing the filter.
	stray []int
}

func (m *machine) log(format string, args ...any) {
	if m.cfg.Log != nil {
		m.cfg.Log(fmt.Sprintf(format, args...))
	}
}

// requestStop makes the run loop end with err at its next check, and
// kicks the vCPU out of KVM_RUN.
func (m *machine) requestStop(err error) {
	m.stopErr.CompareAndSwap(nil, &err)
	m.stop.Store(true)
	m.vcpu.setImmediateExit()
	if tid := m.tid.Load(); tid != 0 {
		_ = kickThread(m.pid, int(tid))
	}
}

func run(spec guestSpec, cfg Config) (int, error) {
	if t := spec.kernel.Target; t != abi.TargetHVT && t != abi.TargetSPT {
		return 1, fmt.Errorf("%s: executable is for the %v target, but "+
			"the hvt backend runs only hvt and spt unikernels",
			spec.kernel.Path, t)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}

	// The arena limit goes first, before this function starts threads:
	// a thread that is counting CPUs for a new arena when the filter goes
	// on dies on a read of /sys/devices/system/cpu/online.
	if err := limitMallocArenas(); err != nil {
		return 1, err
	}

	// The vCPU must be set up and run from one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	// signal.Notify hands each signal to the runtime's signal thread and
	// waits for it, about 1 ms for stopSignals on nested hosts, so it runs
	// while the VM is built. A signal that comes before it is done ends
	// the tender before the guest has started.
	var sigs chan os.Signal
	notified := make(chan struct{})
	filterInstalled := false
	if cfg.NoSignals {
		close(notified)
	} else {
		sigs = make(chan os.Signal, 1)
		go func() {
			signal.Notify(sigs, stopSignals...)
			close(notified)
		}()
		defer func() {
			<-notified
			// signal.Stop may call rt_sigaction, which the filter
			// forbids. Under the filter the process ends soon after Run
			// returns, so the notification can stay.
			if !filterInstalled {
				signal.Stop(sigs)
			}
		}()
	}

	m := &machine{cfg: cfg, spec: spec, kvmFd: -1, pid: os.Getpid()}
	defer m.close()

	if err := m.setup(); err != nil {
		return 1, err
	}
	if spec.dumpCore != "" {
		core, err := openCoreDump(spec.dumpCore, m.layout.guestSize)
		if err != nil {
			return 1, err
		}
		m.core = core
	}

	rules, err := m.policy()
	if err != nil {
		return 1, err
	}
	if cfg.PrintFilter != nil {
		if err := writePolicy(cfg.PrintFilter, rules); err != nil {
			return 1, fmt.Errorf("writing the seccomp filter: %w", err)
		}
		return 0, nil
	}

	<-notified
	if sigs != nil {
		// The goroutine must be gone before m.close unmaps the kvm_run
		// area that requestStop writes, so this defer waits for it.
		done := make(chan struct{})
		exited := make(chan struct{})
		defer func() {
			close(done)
			<-exited
		}()
		go func() {
			defer close(exited)
			select {
			case s := <-sigs:
				m.requestStop(&SignalError{Signal: s.(syscall.Signal),
					SPT: m.spec.kernel.Target == abi.TargetSPT})
			case <-done:
			}
		}()
	}

	if m.ring != nil {
		m.ring.start(func(err error) { m.requestStop(err) })
	}

	if !cfg.NoSeccomp {
		// Under the filter, inherited fds (from a shell, a container
		// runtime) stay reachable only through close, so they go now.
		for _, fd := range m.stray {
			unix.Close(fd)
		}
		if err := installFilter(rules); err != nil {
			return 1, err
		}
		filterInstalled = true
	}

	return m.loop()
}

// setup builds the VM up to the guest's first instruction, in the order of
// solo5-hvt: KVM, memory, segments, ring reservation, vCPU state, devices,
// boot info.
func (m *machine) setup() error {
	spt := m.spec.kernel.Target == abi.TargetSPT
	var err error
	if spt {
		m.layout, err = sizeSPTMemory(m.spec.memMiB)
	} else {
		m.layout, err = sizeMemory(m.spec.memMiB, len(m.spec.nets) > 0)
	}
	if err != nil {
		return err
	}
	for _, w := range m.layout.warnings {
		m.log("%s", w)
	}
	if err := m.spec.kernel.CheckFits(m.layout.guestSize); err != nil {
		return err
	}

	if m.kvmFd, err = openKVM(); err != nil {
		return err
	}
	// KVM_GET_SUPPORTED_CPUID takes about 0.4 ms on nested hosts and
	// needs only /dev/kvm, so it runs while the VM is created.
	type cpuidResult struct {
		buf []byte
		err error
	}
	cpuidDone := make(chan cpuidResult, 1)
	go func(fd int) {
		buf, err := supportedCPUID(fd)
		cpuidDone <- cpuidResult{buf, err}
	}(m.kvmFd)
	received := false
	defer func() {
		// An early return waits too, so that the ioctl is done before
		// close releases the fd.
		if !received {
			<-cpuidDone
		}
	}()
	if m.vcpu, err = newVCPU(m.kvmFd); err != nil {
		return err
	}
	m.tid.Store(int64(gettid()))
	if m.mem, err = mapGuestMemory(m.vcpu.vmFd, m.layout.allocSize); err != nil {
		return err
	}
	m.guest = NewGuestMemory(m.mem, m.layout.guestSize)

	prots, err := loadSegments(m.mem, m.spec.kernel.Segments)
	if err != nil {
		return err
	}
	writeGDT(m.mem)
	writePageTables(m.mem, m.layout.allocSize, spt)

	cpuid := <-cpuidDone
	received = true
	if cpuid.err != nil {
		return cpuid.err
	}
	if err := m.setupVCPU(cpuid.buf); err != nil {
		return err
	}
	if err := m.setupDevices(); err != nil {
		return err
	}
	if spt {
		if err := m.setupShim(); err != nil {
			return err
		}
	} else {
		m.handleExit = func(run []byte) (*Halt, error) {
			return handleExit(&m.calls, run, m.layout.allocSize)
		}
		if err := m.writeBootInfo(); err != nil {
			return err
		}
	}

	// Protect segments last: the tender writes nothing there afterwards.
	for _, p := range prots {
		if err := protect(m.mem, p.start, p.end, p.writable); err != nil {
			return err
		}
		if !p.writable {
			m.guest.markReadOnly(p.start, p.end)
		}
	}
	return nil
}

func (m *machine) setupVCPU(cpuid []byte) error {
	if err := m.vcpu.setCPUID(cpuid); err != nil {
		return err
	}
	sregs, err := kvm.GetSregs(uintptr(m.vcpu.fd))
	if err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	s := initialSregs(*sregs)
	if err := m.vcpu.setSregs(&s); err != nil {
		return err
	}
	regs := initialRegs(m.spec.kernel.Entry, m.layout.guestSize)
	return m.vcpu.setRegs(&regs)
}

// setupDevices fills the hypercall table, creates the poller and, for a
// net device with a ring reservation, the net ring.
func (m *machine) setupDevices() error {
	h := &m.calls
	h.mem = &m.guest
	h.console = m.cfg.Stdout
	h.wallClock = devices.WallClock
	h.monoClock = devices.MonotonicClock
	h.stop = &m.stop

	for _, b := range m.spec.blocks {
		if b.Index <= 0 || b.Index >= abi.ManifestMaxEntries {
			return fmt.Errorf("block device %s: manifest index %d is "+
				"outside 1..%d", b.Name, b.Index, abi.ManifestMaxEntries-1)
		}
		h.blocks[b.Index] = b
		h.capacity[b.Index] = b.Capacity
		h.hasBlock = true
	}
	for _, n := range m.spec.nets {
		if n.Index <= 0 || n.Index >= abi.ManifestMaxEntries {
			return fmt.Errorf("net device %s: manifest index %d is "+
				"outside 1..%d", n.Name, n.Index, abi.ManifestMaxEntries-1)
		}
		h.nets[n.Index] = n
		h.hasNet = true
	}

	var err error
	if m.poll, err = devices.NewPoller(m.spec.nets); err != nil {
		return err
	}
	h.poll = m.poll

	if m.layout.ringGPA != 0 {
		m.setupRing()
	}
	return nil
}

// setupRing starts the net ring if KVM supports ioeventfd. A failure is
// not fatal: the guest then uses the NET_READ and NET_WRITE hypercalls, as
// with solo5-hvt, and the reserved memory stays unused.
func (m *machine) setupRing() {
	ringMem := m.mem[m.layout.ringGPA : m.layout.ringGPA+ringSize]
	clear(ringMem)

	fallback := func(err error) {
		m.log("net ring unavailable, falling back to hypercalls: %v", err)
	}
	if !hasCapability(m.kvmFd, kvm.CapIOEventFD) {
		fallback(errors.New("KVM on this host does not support ioeventfd"))
		return
	}
	ring, err := newNetRing(ringMem, &m.guest, &m.calls.nets)
	if err != nil {
		fallback(err)
		return
	}
	if err := addIoeventfd(m.vcpu.vmFd, ring.eventFd,
		abi.HVTRingKickPort); err != nil {
		unix.Close(ring.eventFd)
		fallback(err)
		return
	}
	m.ring = ring
}

func (m *machine) writeBootInfo() error {
	khz, err := m.vcpu.tscKHz()
	if err != nil {
		return err
	}

	k := m.spec.kernel
	manifest := k.MarshalManifest(devices.Attachments(m.spec.blocks,
		m.spec.nets, nil))

	area, err := placeBootArea(len(manifest))
	if err != nil {
		return err
	}
	bi := abi.HVTBootInfo{
		MemSize:      m.layout.guestSize,
		KernelEnd:    k.KernelEnd,
		CPUCycleFreq: khz * 1000,
	}
	if m.ring != nil {
		bi.HostFeatures = abi.HVTFeatureRingIO
		bi.NetRing = m.layout.ringGPA
	}
	return writeBootArea(m.mem, area, bi, manifest, m.spec.cmdline)
}

// policy returns the seccomp rules for this machine's fds. It starts the
// Go network poller first so that its fds exist and can be allowed.
func (m *machine) policy() ([]Rule, error) {
	if err := startNetpoller(); err != nil {
		return nil, err
	}
	open, err := openFds()
	if err != nil {
		return nil, err
	}
	eventFds := anonFds(open, "eventfd")
	epollFds := anonFds(open, "eventpoll")

	f := policyFds{
		VCPU:    m.vcpu.fd,
		SetMSRs: m.spec.kernel.Target == abi.TargetSPT,
		Reads:   slices.Clone(eventFds),
		Writes:  append([]int{1, 2}, eventFds...),
		Epolls:  epollFds,
		Timer:   m.poll.TimerFd(),
		PID:     m.pid,
	}
	if out, ok := m.cfg.Stdout.(*os.File); ok && out.Fd() > 2 {
		f.Writes = append(f.Writes, int(out.Fd()))
	}
	for _, n := range m.spec.nets {
		f.Reads = append(f.Reads, n.Fd)
		f.Writes = append(f.Writes, n.Fd)
	}
	for _, b := range m.spec.blocks {
		f.Blocks = append(f.Blocks, int(b.File.Fd()))
	}
	if c := m.core; c != nil {
		f.CoreFile = int(c.file.Fd())
		f.CoreDir = int(c.dir.Fd())
		f.Pagemap = int(c.pagemap.Fd())
	}
	keep := slices.Concat(f.Reads, f.Writes, f.Blocks, f.Epolls,
		[]int{f.VCPU, f.Timer, m.vcpu.vmFd, m.kvmFd, m.poll.EpollFd()})
	if m.core != nil {
		keep = append(keep, f.CoreFile, f.CoreDir, f.Pagemap)
	}
	m.stray = strayFds(open, keep)
	return hvtPolicy(f), nil
}

// runFailure returns nil when KVM_RUN should be retried after err, which
// is only EINTR (a signal, or immediate_exit), and otherwise the error that
// ends the run. EAGAIN is final, as in solo5-hvt: Linux returns it when
// KVM cannot start its worker thread, for example in a cgroup at its
// pids limit, and a retry would spin forever.
func runFailure(err error, rip func() uint64) error {
	switch {
	case errors.Is(err, unix.EINTR):
		return nil
	case errors.Is(err, unix.EFAULT):
		return fmt.Errorf("KVM: host/guest translation fault: rip=%#x", rip())
	case errors.Is(err, unix.EAGAIN):
		return fmt.Errorf("KVM: ioctl (RUN) failed: %w (is the process "+
			"at its limit of tasks?)", err)
	}
	return fmt.Errorf("KVM: ioctl (RUN) failed: %w", err)
}

// loop runs the vCPU until the guest halts or fails.
func (m *machine) loop() (int, error) {
	v := m.vcpu
	for {
		if m.stop.Load() {
			return 1, *m.stopErr.Load()
		}

		var halt *Halt
		if err := v.run(); err != nil {
			if !errors.Is(err, unix.EFAULT) || m.spec.kernel.Target != abi.TargetSPT {
				if err := runFailure(err, v.rip); err != nil {
					return 1, err
				}
				continue
			}
			// Some kernels report a guest write to memory the tender
			// mapped read-only as EFAULT. It happens where a 2 MiB guest
			// page holds a read-only segment's end and writable data, and
			// an spt process gets SIGSEGV for it.
			halt = &Halt{Status: statusSIGSEGV, Reason: fmt.Sprintf(
				"guest wrote to read-only memory at rip=%#x, exiting as "+
					"solo5-spt would on SIGSEGV", v.rip())}
		}

		if halt == nil {
			var err error
			if halt, err = m.handleExit(v.runMap); err != nil {
				var ee *ExitError
				if errors.As(err, &ee) {
					ee.RIP = v.rip()
				}
				return 1, err
			}
		}
		if halt != nil {
			if halt.Reason != "" {
				m.log("%s", halt.Reason)
			}
			if halt.Frame != nil {
				m.log("guest halted on a CPU exception with status %d: "+
					"%v", halt.Status, *halt.Frame)
			}
			if m.core != nil && halt.Status == abortStatus {
				m.dumpCore(halt)
			}
			return int(uint8(halt.Status)), nil
		}
	}
}

// handleExit decodes and serves one VM exit. It returns the halt when the
// guest halted, nil to continue, or an *ExitError (without RIP, which the
// caller fills in) when the guest must end. allocSize is the size of guest
// memory including the ring: an MMIO write below it hit a host read-only
// page.
func handleExit(h *hypercalls, run []byte, allocSize uint64) (*Halt, error) {
	e, err := decodeExit(run)
	if err != nil {
		return nil, &ExitError{Reason: e.Reason, Err: err}
	}

	switch e.Reason {
	case exitIO:
		if h == nil {
			return nil, &ExitError{Reason: e.Reason, Err: invalidPort(e.IOPort)}
		}
		halt, err := handleIO(h, e)
		if err != nil {
			return nil, &ExitError{Reason: e.Reason, Err: err}
		}
		return halt, nil
	case exitIntr:
		return nil, nil
	case exitMMIO:
		if e.MMIOIsWrite && e.MMIOAddr < allocSize {
			// Linux reports a guest write to a page the host mapped
			// read-only as an MMIO exit on some kernels and as EFAULT
			// from KVM_RUN on others.
			return nil, &ExitError{Reason: e.Reason, Err: fmt.Errorf(
				"KVM: host/guest translation fault: guest wrote %d "+
					"bytes to read-only memory at gpa=%#x",
				e.MMIOLen, e.MMIOAddr)}
		}
		return nil, &ExitError{Reason: e.Reason, Err: fmt.Errorf(
			"KVM: unhandled exit: exit_reason=%#x (access to gpa=%#x "+
				"outside guest memory)", e.Reason, e.MMIOAddr)}
	case exitFailEntry:
		return nil, &ExitError{Reason: e.Reason, Err: fmt.Errorf(
			"KVM: entry failure: hw_entry_failure_reason=%#x",
			e.FailEntryReason)}
	case exitInternalError:
		return nil, &ExitError{Reason: e.Reason, Err: fmt.Errorf(
			"KVM: internal error exit: suberror=%#x", e.Suberror)}
	case exitShutdown:
		return nil, &ExitError{Reason: e.Reason, Err: fmt.Errorf(
			"KVM: unhandled exit: exit_reason=%#x (triple fault: the "+
				"guest took an exception it could not handle)", e.Reason)}
	}
	return nil, &ExitError{Reason: e.Reason, Err: fmt.Errorf(
		"KVM: unhandled exit: exit_reason=%#x", e.Reason)}
}

// close releases everything setup created, in reverse order. It does not
// close the plan's devices.
func (m *machine) close() {
	if m.core != nil {
		m.core.close()
	}
	if m.ring != nil {
		m.ring.close()
	}
	if m.poll != nil {
		m.poll.Close()
	}
	if m.vcpu != nil {
		m.vcpu.close()
	}
	if m.mem != nil {
		unix.Munmap(m.mem)
	}
	if m.kvmFd >= 0 {
		unix.Close(m.kvmFd)
	}
}

// Run executes the plan's unikernel in a KVM virtual machine and returns
// the guest's exit status when the guest halts. For an hvt guest that is
// its HALT status & 0xFF. For an spt guest it is what a shell reports for
// solo5-spt: the exit_group status, 139 for a fault, or 159 for a
// forbidden system call. A tender-side failure (setup, a bad guest pointer, an unhandled
// exit, a fatal I/O error, SIGINT or SIGTERM) returns status 1 and an
// error. Run does not close the plan's devices.
//
// Unless cfg.NoSeccomp is set, Run installs a seccomp filter on every
// thread of the process before the guest starts. The filter stays after
// Run returns, so the caller can only close the devices and exit.
func Run(p *plan.Plan, cfg Config) (status int, err error) {
	spec := guestSpec{
		kernel:  p.Unikernel,
		cmdline: p.Cmdline,
		blocks:  p.Blocks,
		nets:    p.Nets,
	}
	if p.Options != nil {
		spec.memMiB = p.Options.MemMiB
		spec.xExecHeap = p.Options.XExecHeap
		spec.dumpCore = p.Options.DumpCore
	}
	if spec.xExecHeap && p.Unikernel.Target != abi.TargetSPT {
		// solo5-hvt has no such option; hvt guests manage their own
		// page tables.
		return 1, &plan.UsageError{Msg: "--x-exec-heap applies only to spt unikernels"}
	}
	if spec.dumpCore != "" && p.Unikernel.Target != abi.TargetHVT {
		// The core file's registers and memory are those of an hvt
		// guest. solo5-spt has no such option.
		return 1, &plan.UsageError{Msg: "--dumpcore applies only to hvt unikernels"}
	}
	return run(spec, cfg)
}
