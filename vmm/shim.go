package vmm

import (
	"encoding/binary"
	"fmt"
	"io"
	"syscall"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
	"github.com/ntender/ntender/seccompmode"
)

// An spt unikernel runs in the VM through a syscall shim. The guest's
// SYSCALL instruction (EFER.SCE set, LSTAR pointing at shimCode) stores
// the system call number and arguments in a frame page and does a 4-byte
// OUT to shimPort. The tender serves the call with the spt backend's
// allow-list and writes the result to the frame, and the shim returns it
// in RAX and jumps back to the instruction after SYSCALL (RCX).
//
// Guest memory for spt is laid out as solo5-spt lays out the process:
// nothing below 0x10000, struct spt_boot_info at 0x11000 followed by the
// manifest and command line, the ELF segments from 0x100000, and the stack
// at the top. The shim's frame and code pages sit just below 0x100000.
//
// CPU exceptions go through an IDT to stubs that report the vector. The
// guest then ends with the status of the signal Linux would send the spt
// process: 139 for #PF and #GP, 132 for #UD, 136 for #DE, and so on.
//
// NOTE: the guest runs in ring 0, so privileged instructions that would
// kill an spt process with SIGSEGV, such as WRMSR, RDMSR or CLI, run
// inside the VM. They reach no host resource: port I/O other than the
// shim's OUT and HLT end the guest with 139, and every system call still
// goes through the allow-list.
const (
	shimFrameAddr = 0xFE000
	shimCodeAddr  = 0xFF000
	// shimPort is the I/O port of the shim's OUT. Any port outside the
	// hvt hypercall range works, because the VM has no devices.
	shimPort = 0x7E
	// shimFaultPort is the port the exception stubs write the vector to,
	// so a CPU exception ends the guest with the signal an spt process
	// would get for it.
	shimFaultPort = 0x7F
	// The exception stubs (shimStubSize bytes each) and the IDT pointing
	// at them share the shim code page.
	shimStubsAddr  = shimCodeAddr + 0x400
	shimStubSize   = 16
	shimIDTAddr    = shimCodeAddr + 0x800
	shimIDTEntries = 32 // the architecture-defined exception vectors
	// shimGDTAddr holds a copy of the boot GDT. Delivering an exception
	// loads CS from the GDT by linear address, and the boot GDT's page is
	// not mapped in the guest page tables (SYSCALL needs no GDT access).
	shimGDTAddr = shimCodeAddr + 0xC00

	// Frame fields, each a u64: the system call number (RAX in, result
	// out) and the six arguments in the x86_64 system call order.
	shimFrameSize = 7 * 8

	// MSRs the shim needs (Intel SDM vol. 4; AMD APM vol. 2).
	msrSTAR   = 0xC0000081
	msrLSTAR  = 0xC0000082
	msrSFMASK = 0xC0000084
	msrFSBase = 0xC0000100

	eferSCE = 1 << 0
	eferNXE = 1 << 11

	// Exit statuses of an spt process killed by a signal, as a shell
	// reports them: SIGSEGV and SIGSYS.
	statusSIGSEGV = 128 + 11
	statusSIGSYS  = 128 + 31

	archSetFS = 0x1002
)

// shimCode returns the machine code of the SYSCALL entry point for a frame
// at frame and an OUT to port. The bytes are those GNU as 2.40 emits for
//
//	mov %rax, FRAME; mov %rdi, FRAME+8; mov %rsi, FRAME+16
//	mov %rdx, FRAME+24; mov %r10, FRAME+32; mov %r8, FRAME+40
//	mov %r9, FRAME+48; out %eax, $PORT; mov FRAME, %rax; jmp *%rcx
//
// The code uses no stack, so the guest's red zone survives, and changes
// only RAX (the result), besides RCX and R11, which SYSCALL clobbers.
func shimCode(frame uint32, port uint8) []byte {
	stores := [][]byte{
		{0x48, 0x89, 0x04, 0x25}, // mov %rax, disp32
		{0x48, 0x89, 0x3c, 0x25}, // mov %rdi, disp32
		{0x48, 0x89, 0x34, 0x25}, // mov %rsi, disp32
		{0x48, 0x89, 0x14, 0x25}, // mov %rdx, disp32
		{0x4c, 0x89, 0x14, 0x25}, // mov %r10, disp32
		{0x4c, 0x89, 0x04, 0x25}, // mov %r8, disp32
		{0x4c, 0x89, 0x0c, 0x25}, // mov %r9, disp32
	}
	var code []byte
	for i, op := range stores {
		code = append(code, op...)
		code = binary.LittleEndian.AppendUint32(code, frame+uint32(8*i))
	}
	code = append(code, 0xe7, port)             // out %eax, $port
	code = append(code, 0x48, 0x8b, 0x04, 0x25) // mov disp32, %rax
	code = binary.LittleEndian.AppendUint32(code, frame)
	return append(code, 0xff, 0xe1) // jmp *%rcx
}

// shimFaultStubs returns one stub of shimStubSize bytes per exception
// vector. Each stub is "mov $VECTOR, %eax; out %eax, $port", followed by a
// hlt loop in case the tender ever resumes it.
func shimFaultStubs(port uint8) []byte {
	code := make([]byte, 0, shimIDTEntries*shimStubSize)
	for v := range shimIDTEntries {
		stub := []byte{0xb8, byte(v), 0, 0, 0, 0xe7, port, 0xf4, 0xeb, 0xfd}
		code = append(code, stub...)
		code = append(code, make([]byte, shimStubSize-len(stub))...)
	}
	return code
}

// shimIDT returns 64-bit interrupt gates (Intel SDM vol. 3, 6.14.1) for
// the stubs at stubs, in the boot GDT's code segment 0x08 with no IST.
// An exception is delivered on the guest's own stack. If that stack is
// unusable, delivery faults again and the resulting triple fault ends the
// guest with SIGSEGV's status, which is what an spt process gets then.
func shimIDT(stubs uint64) []byte {
	idt := make([]byte, 0, shimIDTEntries*16)
	for v := range uint64(shimIDTEntries) {
		addr := stubs + v*shimStubSize
		idt = binary.LittleEndian.AppendUint16(idt, uint16(addr))
		idt = binary.LittleEndian.AppendUint16(idt, 0x08)
		idt = append(idt, 0, 0x8e) // IST 0; present, DPL 0, interrupt gate
		idt = binary.LittleEndian.AppendUint16(idt, uint16(addr>>16))
		idt = binary.LittleEndian.AppendUint32(idt, uint32(addr>>32))
		idt = binary.LittleEndian.AppendUint32(idt, 0)
	}
	return idt
}

// faultSignal returns the signal Linux sends a process for an exception
// vector raised in user mode (arch/x86/kernel/traps.c).
func faultSignal(vector uint32) syscall.Signal {
	switch vector {
	case 0, 16, 19: // #DE, #MF, #XM
		return unix.SIGFPE
	case 1, 3: // #DB, #BP
		return unix.SIGTRAP
	case 6: // #UD
		return unix.SIGILL
	case 17, 18: // #AC, #MC
		return unix.SIGBUS
	}
	return unix.SIGSEGV
}

// rawSyscall makes system call nr with args. A non-nil bufs[i] replaces
// args[i] with the host address of that guest buffer. It returns the
// result as the kernel returns it to a process: a value, or -errno.
type rawSyscall func(nr uintptr, args [6]uint64, bufs *[6][]byte) uint64

// sptCalls serves the system calls of an spt guest running in the VM.
type sptCalls struct {
	mem     *GuestMemory
	console io.Writer
	policy  *seccompmode.Policy
	sys     rawSyscall
	// setFSBase sets the guest's FS base (arch_prctl(ARCH_SET_FS)).
	setFSBase func(base uint64) error
	stop      interface{ Load() bool }
	// bufs is reused by every call so that serving one allocates nothing.
	bufs [6][]byte
}

// handleSPTExit decodes and serves one VM exit of an spt guest. A fault
// that would kill the spt process with SIGSEGV (a triple fault, a write to
// read-only memory, HLT) halts with status 139 instead.
func handleSPTExit(s *sptCalls, run []byte, allocSize uint64) (*Halt, error) {
	e, err := decodeExit(run)
	if err != nil {
		return nil, &ExitError{Reason: e.Reason, Err: err}
	}
	switch e.Reason {
	case exitIO:
		if e.IODirection == ioDirectionOut && e.IOSize == 4 &&
			e.IOPort == shimFaultPort {
			sig := faultSignal(e.IOValue)
			return &Halt{Status: 128 + int32(sig), Reason: fmt.Sprintf(
				"guest CPU exception %d, exiting as solo5-spt would on %s",
				e.IOValue, unix.SignalName(sig))}, nil
		}
		if e.IODirection != ioDirectionOut || e.IOSize != 4 ||
			e.IOPort != shimPort {
			// The guest runs in ring 0 here, but an spt process that
			// executes IN or OUT gets #GP and dies with SIGSEGV.
			return &Halt{Status: statusSIGSEGV, Reason: fmt.Sprintf(
				"guest port access to %#x, exiting as solo5-spt would on "+
					"SIGSEGV", e.IOPort)}, nil
		}
		halt, err := s.handle()
		if err != nil {
			return nil, &ExitError{Reason: e.Reason, Err: err}
		}
		return halt, nil
	case exitShutdown, exitHLT:
		return &Halt{Status: statusSIGSEGV, Reason: fmt.Sprintf(
			"guest fault (KVM exit %s), exiting as solo5-spt would on "+
				"SIGSEGV", exitReasonName(e.Reason))}, nil
	case exitMMIO:
		if e.MMIOIsWrite && e.MMIOAddr < allocSize {
			return &Halt{Status: statusSIGSEGV, Reason: fmt.Sprintf(
				"guest wrote to read-only memory at gpa=%#x, exiting as "+
					"solo5-spt would on SIGSEGV", e.MMIOAddr)}, nil
		}
	}
	return handleExit(nil, run, allocSize)
}

// errnoResult returns -errno as the u64 a process finds in RAX.
func errnoResult(e syscall.Errno) uint64 { return uint64(-int64(e)) }

// handle serves the system call in the frame. It returns a halt for
// exit_group and for a call the spt policy forbids (status 159, as the
// spt process would die of SIGSYS). A guest buffer outside guest memory
// gets EFAULT, as the kernel would return.
func (s *sptCalls) handle() (*Halt, error) {
	frame, err := s.mem.WritableSlice(shimFrameAddr, shimFrameSize)
	if err != nil {
		return nil, err
	}
	nr := le.Uint64(frame)
	var args [6]uint64
	for i := range args {
		args[i] = le.Uint64(frame[8+8*i:])
	}

	if nr > 1<<20 || !s.policy.Allows(int(nr), args) {
		return s.forbidden(nr, args[0], args[1], args[2]), nil
	}

	var ret uint64
	switch nr {
	case unix.SYS_EXIT_GROUP:
		return &Halt{Status: int32(args[0])}, nil
	case unix.SYS_ARCH_PRCTL:
		// The policy allows only ARCH_SET_FS.
		if err := s.setFSBase(args[1]); err != nil {
			return nil, fmt.Errorf("arch_prctl(ARCH_SET_FS): %w", err)
		}
	case unix.SYS_WRITE:
		if args[0] == 1 {
			// Console output goes to the tender's console writer, one
			// write per call, as solo5-spt's write(1) does.
			buf, err := s.mem.Slice(args[1], args[2])
			if err != nil {
				ret = errnoResult(unix.EFAULT)
				break
			}
			_, _ = s.console.Write(buf)
			ret = args[2]
			break
		}
		ret = s.call(nr, args, bufArg{arg: 1, size: args[2]})
	case unix.SYS_READ, unix.SYS_PREAD64:
		ret = s.call(nr, args, bufArg{arg: 1, size: args[2], writable: true})
	case unix.SYS_PWRITE64:
		ret = s.call(nr, args, bufArg{arg: 1, size: args[2]})
	case unix.SYS_CLOCK_GETTIME:
		// struct timespec is 16 bytes.
		ret = s.call(nr, args, bufArg{arg: 1, size: 16, writable: true})
	case unix.SYS_TIMERFD_SETTIME:
		// struct itimerspec is 32 bytes; old_value may be null.
		ret = s.call(nr, args, bufArg{2, 32, false, false},
			bufArg{3, 32, true, true})
	case unix.SYS_EPOLL_PWAIT:
		ret = s.epollWait(nr, args)
	default:
		// The policy allows nothing else.
		return nil, fmt.Errorf("system call %d passed the spt policy "+
			"but has no handler", nr)
	}
	le.PutUint64(frame, ret)
	return nil, nil
}

// forbidden returns the halt for a system call the spt policy does not
// allow. It takes the arguments by value so that the caller's argument
// array stays on the stack.
func (s *sptCalls) forbidden(nr, a0, a1, a2 uint64) *Halt {
	return &Halt{Status: statusSIGSYS, Reason: fmt.Sprintf(
		"system call %d (args %#x, %#x, %#x) is not allowed by the spt "+
			"policy, exiting as solo5-spt would on SIGSYS", nr, a0, a1, a2)}
}

// bufArg describes a pointer argument: its index, its size in bytes and
// whether the kernel writes to it.
type bufArg struct {
	arg      int
	size     uint64
	writable bool
	optional bool // a null pointer is passed on as null
}

// call makes the system call with each pointer argument replaced by the
// host address of the guest buffer it names.
func (s *sptCalls) call(nr uint64, args [6]uint64, bufs ...bufArg) uint64 {
	s.bufs = [6][]byte{}
	for _, b := range bufs {
		gpa := args[b.arg]
		if gpa == 0 && b.optional {
			continue
		}
		var buf []byte
		var err error
		if b.writable {
			buf, err = s.mem.WritableSlice(gpa, b.size)
		} else {
			buf, err = s.mem.Slice(gpa, b.size)
		}
		if err != nil {
			return errnoResult(unix.EFAULT)
		}
		s.bufs[b.arg] = buf
	}
	return s.sys(uintptr(nr), args, &s.bufs)
}

// epollEventSize is sizeof(struct epoll_event) on x86_64 (packed).
const epollEventSize = 12

// epollWait serves epoll_pwait, which blocks until the guest's deadline
// timer or a tap is ready. A signal that interrupts it ends the wait only
// when the tender is stopping; otherwise the wait resumes.
func (s *sptCalls) epollWait(nr uint64, args [6]uint64) uint64 {
	maxEvents := args[2]
	if maxEvents == 0 || maxEvents > 1<<16 {
		return errnoResult(unix.EINVAL)
	}
	events := bufArg{arg: 1, size: maxEvents * epollEventSize, writable: true}
	sigmask := bufArg{arg: 4, size: args[5], optional: true}
	for {
		ret := s.call(nr, args, events, sigmask)
		if ret != errnoResult(unix.EINTR) || s.stop.Load() {
			return ret
		}
	}
}

// sizeSPTMemory returns the layout of an spt guest in the VM: the --mem
// size exactly, as solo5-spt maps it, inside a mapping rounded up to
// 2 MiB. The identity page tables limit it to 4 GiB.
func sizeSPTMemory(memMiB uint64) (memoryLayout, error) {
	var l memoryLayout
	size, err := seccompmode.MemSize(memMiB)
	if err != nil {
		return l, err
	}
	if size > abi.HVTMaxMem {
		return l, fmt.Errorf("guest memory size %d bytes exceeds the max "+
			"size %d bytes of an spt guest in a VM (use --mem=%d or less, "+
			"or --mode=spt)", size, uint64(abi.HVTMaxMem), abi.HVTMaxMem>>20)
	}
	l.guestSize = size
	l.allocSize = (size + abi.HVTMemAlign - 1) &^ (abi.HVTMemAlign - 1)
	return l, nil
}

// setupShim prepares an spt guest: the shim code, SYSCALL enabled and
// pointed at it, the spt boot info, and the system call table with the spt
// backend's allow-list for this guest's fds.
func (m *machine) setupShim() error {
	copy(m.mem[shimCodeAddr:], shimCode(shimFrameAddr, shimPort))
	copy(m.mem[shimStubsAddr:], shimFaultStubs(shimFaultPort))
	copy(m.mem[shimIDTAddr:], shimIDT(shimStubsAddr))
	copy(m.mem[shimGDTAddr:], m.mem[gdtAddr:gdtAddr+gdtSize])

	// An spt process cannot execute its data, heap or stack (unless
	// --x-exec-heap), so the guest page tables get NX there.
	exec := []gpaRange{{shimCodeAddr, shimCodeAddr + abi.PageSize}}
	var noExec []gpaRange
	for _, s := range m.spec.kernel.Segments {
		if s.Prot&abi.ProtExec != 0 {
			exec = append(exec, gpaRange{s.Start, s.End})
		} else {
			noExec = append(noExec, gpaRange{s.Start, s.End})
		}
	}
	markNoExecute(m.mem, m.layout.allocSize, exec, noExec, m.spec.xExecHeap)

	sregs, err := kvm.GetSregs(uintptr(m.vcpu.fd))
	if err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	sregs.EFER |= eferSCE | eferNXE
	sregs.IDT = kvm.Descriptor{Base: shimIDTAddr, Limit: shimIDTEntries*16 - 1}
	sregs.GDT = kvm.Descriptor{Base: shimGDTAddr, Limit: gdtSize - 1}
	if err := m.vcpu.setSregs(sregs); err != nil {
		return err
	}
	// SYSCALL loads CS from STAR[47:32] and SS from that plus 8: the boot
	// GDT's code (0x08) and data (0x10) segments, so the guest stays in
	// ring 0. SFMASK 0 keeps RFLAGS.
	if err := m.vcpu.setMSRs(
		kvmMSREntry{Index: msrSTAR, Data: 0x08 << 32},
		kvmMSREntry{Index: msrLSTAR, Data: shimCodeAddr},
		kvmMSREntry{Index: msrSFMASK, Data: 0},
	); err != nil {
		return err
	}
	regs := initialRegs(m.spec.kernel.Entry, m.layout.guestSize)
	regs.RDI = abi.SPTBootInfoAddr
	if err := m.vcpu.setRegs(&regs); err != nil {
		return err
	}

	res := seccompmode.Resources{
		EpollFd: m.poll.EpollFd(),
		TimerFd: m.poll.TimerFd(),
	}
	for _, b := range m.spec.blocks {
		res.Blocks = append(res.Blocks, seccompmode.BlockResource{
			Name: b.Name, Fd: int(b.File.Fd()),
			SectorSize: b.SectorSize, Capacity: b.Capacity,
		})
	}
	for _, n := range m.spec.nets {
		res.Nets = append(res.Nets, seccompmode.NetResource{
			Name: n.Name, Iface: n.Iface, Fd: n.Fd,
		})
	}
	policy, err := seccompmode.NewPolicy(res)
	if err != nil {
		return fmt.Errorf("building the spt allow-list: %w", err)
	}

	s := &sptCalls{
		mem:     &m.guest,
		console: m.cfg.Stdout,
		policy:  policy,
		sys:     guestSyscall,
		setFSBase: func(base uint64) error {
			return m.vcpu.setMSRs(kvmMSREntry{Index: msrFSBase, Data: base})
		},
		stop: &m.stop,
	}
	m.handleExit = func(run []byte) (*Halt, error) {
		return handleSPTExit(s, run, m.layout.allocSize)
	}
	return m.writeSPTBootInfo(res)
}

// writeSPTBootInfo writes struct spt_boot_info at 0x11000, the manifest
// after it and the command line after the manifest, as solo5-spt does.
func (m *machine) writeSPTBootInfo(res seccompmode.Resources) error {
	k := m.spec.kernel
	manifest := k.MarshalManifest(devices.Attachments(m.spec.blocks,
		m.spec.nets, nil))
	mft := uint64(abi.SPTBootInfoAddr + abi.SPTBootInfoSize)
	cmdline := mft + uint64(len(manifest))
	if cmdline+abi.CmdlineSize > shimFrameAddr {
		return fmt.Errorf("manifest of %d bytes does not fit below %#x",
			len(manifest), shimFrameAddr)
	}
	if len(m.spec.cmdline) > abi.CmdlineSize-1 {
		return abi.ErrCmdlineTooLong
	}
	bi, err := abi.SPTBootInfo{
		MemSize:   m.layout.guestSize,
		KernelEnd: k.KernelEnd,
		Cmdline:   cmdline,
		Mft:       mft,
		Epollfd:   int32(res.EpollFd),
		Timerfd:   int32(res.TimerFd),
	}.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encoding the spt boot info: %w", err)
	}
	copy(m.mem[abi.SPTBootInfoAddr:], bi)
	copy(m.mem[mft:], manifest)
	copy(m.mem[cmdline:], m.spec.cmdline)
	m.mem[cmdline+uint64(len(m.spec.cmdline))] = 0
	return nil
}
