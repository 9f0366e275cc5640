package vmm

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"syscall"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
	"github.com/ntender/ntender/seccompmode"
)

// An spt unikernel runs in the VM in ring 3, as it would run in a process.
//
// SYSCALL enters shimSyscallCode (LSTAR), which stores the arguments in
// the call frame and writes the system call number to the doorbell, a
// page mapped to a guest physical address with no memory behind it. The
// write exits to the tender as MMIO; the tender serves the call with the
// spt backend's allow-list, writes the result to the frame, and the code
// returns it in RAX to the instruction after SYSCALL. One system call is
// one exit, and the tender needs no guest registers beyond the frame.
//
// CPU exceptions go through an IDT to stubs that report the vector by the
// port they write. The guest then ends with the status of the signal Linux
// would send the spt process: 139 for #PF and #GP, 132 for #UD, 136 for
// #DE, 133 for INT3, and so on. Privileged instructions (HLT, IN, OUT,
// RDMSR, CLI) raise #GP in ring 3, so they end the guest with 139, as in
// an spt process. The exception stack and the IDT, GDT and TSS are on
// pages ring 3 cannot reach.
//
// Guest memory for spt is laid out as solo5-spt lays out the process:
// nothing below 0x10000, struct spt_boot_info at 0x11000 followed by the
// manifest and command line, the ELF segments from 0x100000, and the stack
// at the top. The shim's pages sit just below 0x100000.
//
// NOTE: in an spt process 0xFB000-0xFFFFF is ordinary guest memory; here
// the shim owns it. A guest that touches it there reads the call frame,
// faults on the entry code or the ring 0 pages, or gets EFAULT for a
// buffer there. Solo5 guests leave that range unused. kvm_pvm also runs
// int $0x1a in ring 3 without a fault, where a process gets SIGSEGV.
const (
	// shimStackAddr is the ring 0 exception stack (TSS RSP0 and IST1).
	shimStackAddr = 0xFB000
	shimStackTop  = shimStackAddr + abi.PageSize
	// shimDoorbellAddr is the page mapped to shimDoorbellGPA. That address
	// is above any guest memory (at most 4 GiB) and below 2^36, the
	// smallest physical address width of x86_64 CPUs.
	shimDoorbellAddr = 0xFC000
	shimDoorbellGPA  = 0xFFFFFF000
	// shimFrameAddr is the call frame: the result (in) and the six
	// arguments, each a u64. Ring 3 may write it, as it may make any
	// system call.
	shimFrameAddr = 0xFD000
	shimFrameSize = 7 * 8
	// shimSyscallAddr holds shimSyscallCode, the SYSCALL entry (LSTAR).
	shimSyscallAddr = 0xFE000
	// shimKernelAddr is the ring 0 page: the exception stubs, the IDT,
	// the GDT and the TSS.
	shimKernelAddr = 0xFF000

	shimStubsAddr = shimKernelAddr
	shimStubSize  = 16
	// shimExceptions are the architecture-defined exception vectors,
	// each with a stub. Stub shimExceptions serves vector 0x80.
	shimExceptions = 32
	shimStubs      = shimExceptions + 1
	// The IDT reaches vector 0x80, the i386 system call gate of Linux.
	// Vectors 32 to 127 stay zero: an INT n to them raises #GP, as the
	// DPL 0 gates of Linux do.
	vectorI386Syscall = 0x80
	shimIDTEntries    = vectorI386Syscall + 1
	shimIDTAddr       = shimKernelAddr + 0x280
	shimGDTAddr       = shimKernelAddr + 0xB00
	shimTSSAddr       = shimKernelAddr + 0xC00
	shimTSSSize       = 0x68
	// shimFaultPorts is the port of vector 0's stub; vector v writes to
	// shimFaultPorts+v.
	shimFaultPorts = 0x40

	// GDT selectors. STAR needs user data at selUserBase+8 and 64-bit
	// user code at selUserBase+16.
	selKernelCode = 0x08
	selKernelData = 0x10
	selUserBase   = 0x18
	selUserData   = 0x20
	selUserCode   = 0x28
	selTSS        = 0x30
	shimGDTSize   = selTSS + 16

	// gdtUserData and gdtUserCode are the DPL 3 counterparts of the boot
	// GDT's descriptors.
	gdtUserData = 0x00CFF3000000FFFF
	gdtUserCode = 0x00AFFB000000FFFF

	// MSRs the shim needs (Intel SDM vol. 4; AMD APM vol. 2).
	msrSTAR   = 0xC0000081
	msrLSTAR  = 0xC0000082
	msrSFMASK = 0xC0000084
	msrFSBase = 0xC0000100

	eferSCE = 1 << 0
	eferNXE = 1 << 11

	// pteUser marks a page ring 3 may use.
	pteUser = 0x4

	// RFLAGS at entry: the fixed bit and interrupts on, as in a process.
	rflagsUser = 1<<1 | 1<<9

	// Exit statuses of an spt process killed by a signal, as a shell
	// reports them: SIGSEGV and SIGSYS.
	statusSIGSEGV = 128 + 11
	statusSIGSYS  = 128 + 31

	archSetFS = 0x1002

	// sptUnmappedEnd is the end of the low pages an spt process has no
	// mapping for, and shimEnd the end of the shim's pages.
	sptUnmappedEnd = 0x10000
	shimEnd        = shimKernelAddr + abi.PageSize

	// userSpaceTop is TASK_SIZE_MAX of x86_64 Linux with 4-level paging,
	// the lowest FS base arch_prctl rejects.
	userSpaceTop = 1<<47 - abi.PageSize
)

// shimArgRegs are the ModRM encodings (REX prefix, reg field) of the
// system call argument registers, in the x86_64 order.
var shimArgRegs = [6]struct{ rex, reg byte }{
	{0x48, 7}, // rdi
	{0x48, 6}, // rsi
	{0x48, 2}, // rdx
	{0x4c, 2}, // r10
	{0x4c, 0}, // r8
	{0x4c, 1}, // r9
}

// shimSyscallCode returns the SYSCALL entry point for a frame at frame
// and the MMIO doorbell at doorbell. The bytes are those GNU as 2.40 emits
// for
//
//	mov %rdi, FRAME+8; ... mov %r9, FRAME+48
//	mov %rax, DOORBELL          # exits to the tender
//	mov %cs, %eax; test $3, %al
//	mov FRAME, %rax             # the result
//	jnz 1f; sysretq
//	1: jmp *%rcx
//
// SYSCALL enters it in ring 0, and SYSRETQ returns to ring 3. kvm_pvm
// (this project's CI host) runs it in ring 3 instead, where SYSRETQ would
// fault, so the code checks CS and jumps back to RCX there. Either way
// it changes only RAX besides RCX and R11, which SYSCALL clobbers, and it
// uses no stack. The ring 3 path also leaves the arithmetic flags of its
// test, where SYSRETQ restores them from R11.
//
// NOTE: CI runs only the ring 3 path. The SYSRETQ path is checked by its
// encoding, not by a run on a KVM that follows the architecture.
func shimSyscallCode(frame, doorbell uint32) []byte {
	var code []byte
	for i, r := range shimArgRegs {
		code = append(code, r.rex, 0x89, 0x04|r.reg<<3, 0x25)
		code = binary.LittleEndian.AppendUint32(code, frame+uint32(8*(i+1)))
	}
	code = append(code, 0x48, 0x89, 0x04, 0x25) // mov %rax, disp32
	code = binary.LittleEndian.AppendUint32(code, doorbell)
	code = append(code, 0x8c, 0xc8)             // mov %cs, %eax
	code = append(code, 0xa8, 0x03)             // test $3, %al
	code = append(code, 0x48, 0x8b, 0x04, 0x25) // mov disp32, %rax
	code = binary.LittleEndian.AppendUint32(code, frame)
	code = append(code, 0x75, 0x03)       // jnz 1f
	code = append(code, 0x48, 0x0f, 0x07) // sysretq
	return append(code, 0xff, 0xe1)       // 1: jmp *%rcx
}

// shimFaultStubs returns shimStubs stubs of shimStubSize bytes, one per
// exception vector and the last for int $0x80. Stub i is
// "out %al, $(ports+i)", then a HLT loop, since the tender never resumes
// them.
func shimFaultStubs(ports uint8) []byte {
	code := make([]byte, 0, shimStubs*shimStubSize)
	for v := range byte(shimStubs) {
		stub := []byte{0xe6, ports + v, 0xf4, 0xeb, 0xfd}
		code = append(code, stub...)
		code = append(code, make([]byte, shimStubSize-len(stub))...)
	}
	return code
}

// shimIDT returns 64-bit interrupt gates (Intel SDM vol. 3, 6.14.1) for
// the stubs at stubs, in the kernel code segment, all on IST1. INT3,
// INTO and int $0x80 have DPL 3, so ring 3 can raise them, as on Linux.
// The other gates have DPL 0, so an INT n from the guest raises #GP, as
// in a process.
func shimIDT(stubs uint64) []byte {
	idt := make([]byte, 0, shimIDTEntries*16)
	for v := range uint64(shimIDTEntries) {
		addr := stubs + v*shimStubSize
		access := byte(0x8e) // present, DPL 0, 64-bit interrupt gate
		switch {
		case v == 3 || v == 4:
			access = 0xee
		case v == vectorI386Syscall:
			addr = stubs + shimExceptions*shimStubSize
			access = 0xee
		case v >= shimExceptions:
			idt = append(idt, make([]byte, 16)...)
			continue
		}
		idt = binary.LittleEndian.AppendUint16(idt, uint16(addr))
		idt = binary.LittleEndian.AppendUint16(idt, selKernelCode)
		idt = append(idt, 1, access) // IST1
		idt = binary.LittleEndian.AppendUint16(idt, uint16(addr>>16))
		idt = binary.LittleEndian.AppendUint32(idt, uint32(addr>>32))
		idt = binary.LittleEndian.AppendUint32(idt, 0)
	}
	return idt
}

// shimGDT returns the GDT of an spt guest: null, kernel code and data,
// a null slot for SYSRET's 32-bit user code, user data, 64-bit user code,
// and the 16-byte descriptor of the 64-bit TSS at tss.
func shimGDT(tss uint64) []byte {
	g := make([]byte, shimGDTSize)
	le.PutUint64(g[selKernelCode:], gdtCode)
	le.PutUint64(g[selKernelData:], gdtData)
	le.PutUint64(g[selUserData:], gdtUserData)
	le.PutUint64(g[selUserCode:], gdtUserCode)
	const limit = shimTSSSize - 1
	const access = 0x89 // present, DPL 0, available 64-bit TSS
	le.PutUint64(g[selTSS:], limit|(tss&0xFFFFFF)<<16|access<<40|
		(tss>>24&0xFF)<<56)
	le.PutUint64(g[selTSS+8:], tss>>32)
	return g
}

// shimTSS returns a 64-bit TSS with RSP0 and IST1 at stack and no I/O
// permission bitmap, so ring 3 has no port access.
func shimTSS(stack uint64) []byte {
	t := make([]byte, shimTSSSize)
	le.PutUint64(t[4:], stack)  // RSP0
	le.PutUint64(t[36:], stack) // IST1
	le.PutUint16(t[102:], shimTSSSize)
	return t
}

// userSregs sets the segment registers for ring 3, the shim's GDT and
// IDT, and the TSS.
func userSregs(s *kvm.Sregs) {
	s.CS = kvm.Segment{Limit: 0xFFFFFFFF, Selector: selUserCode | 3,
		Typ: 11, Present: 1, DPL: 3, S: 1, L: 1, G: 1}
	data := kvm.Segment{Limit: 0xFFFFFFFF, Selector: selUserData | 3,
		Typ: 3, Present: 1, DPL: 3, DB: 1, S: 1, G: 1}
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvm.Segment{Base: shimTSSAddr, Limit: shimTSSSize - 1,
		Selector: selTSS, Typ: 11, Present: 1} // busy 64-bit TSS
	s.GDT = kvm.Descriptor{Base: shimGDTAddr, Limit: shimGDTSize - 1}
	s.IDT = kvm.Descriptor{Base: shimIDTAddr, Limit: shimIDTEntries*16 - 1}
}

// mapUserPages lets ring 3 use every page writePageTables mapped except
// the 4 KiB pages in kernel, and points the doorbell page at
// shimDoorbellGPA.
func mapUserPages(mem []byte, allocSize uint64, kernel ...uint64) {
	// set marks a present entry; absent ones stay all zero.
	set := func(entry uint64) {
		if pte := le.Uint64(mem[entry:]); pte&ptePresent != 0 {
			le.PutUint64(mem[entry:], pte|pteUser)
		}
	}
	set(pml4Addr)
	for i := uint64(0); i < 4; i++ {
		set(pdptAddr + i*8)
	}
	set(pdAddr)
	for gpa := uint64(abi.HVTMemAlign); gpa < allocSize; gpa += abi.HVTMemAlign {
		entry := pdAddr + (gpa>>21)*8
		set(entry)
		if pde := le.Uint64(mem[entry:]); pde&ptePresent != 0 && pde&ptePageSize == 0 {
			// The 4 KiB table of limitToGuest.
			for i := uint64(0); i < 512; i++ {
				set(ptTailAddr + i*8)
			}
		}
	}
	for page := uint64(0x10); page < 512; page++ {
		if !slices.Contains(kernel, page<<12) {
			set(pt0Addr + page*8)
		}
	}
	le.PutUint64(mem[pt0Addr+(shimDoorbellAddr>>12)*8:], shimDoorbellGPA|
		ptePresent|pteWritable|pteUser|pteNoExecute)
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
	case 11, 12, 17, 18: // #NP, #SS, #AC, #MC
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
// read-only memory) halts with status 139 instead.
func handleSPTExit(s *sptCalls, run []byte, allocSize uint64) (*Halt, error) {
	e, err := decodeExit(run)
	if err != nil {
		return nil, &ExitError{Reason: e.Reason, Err: err}
	}
	switch e.Reason {
	case exitMMIO:
		if e.MMIOAddr == shimDoorbellGPA && e.MMIOIsWrite && e.MMIOLen == 8 {
			halt, err := s.handle(e.MMIOData)
			if err != nil {
				return nil, &ExitError{Reason: e.Reason, Err: err}
			}
			return halt, nil
		}
		if e.MMIOIsWrite && e.MMIOAddr < allocSize {
			return &Halt{Status: statusSIGSEGV, Reason: fmt.Sprintf(
				"guest wrote to read-only memory at gpa=%#x, exiting as "+
					"solo5-spt would on SIGSEGV", e.MMIOAddr)}, nil
		}
	case exitIO:
		stub := uint32(e.IOPort) - shimFaultPorts
		if e.IODirection != ioDirectionOut || e.IOSize != 1 || stub >= shimStubs {
			break
		}
		if stub == shimExceptions {
			// The seccomp filter of an spt process kills i386 calls.
			return &Halt{Status: statusSIGSYS, Reason: "guest made an " +
				"i386 system call (int $0x80), exiting as solo5-spt " +
				"would on SIGSYS"}, nil
		}
		if stub == vectorUD {
			if halt := s.intInstruction(); halt != nil {
				return halt, nil
			}
		}
		sig := faultSignal(stub)
		return &Halt{Status: 128 + int32(sig), Reason: fmt.Sprintf(
			"guest CPU exception %d, exiting as solo5-spt would on %s",
			stub, unix.SignalName(sig))}, nil
	case exitShutdown, exitHLT:
		return &Halt{Status: statusSIGSEGV, Reason: fmt.Sprintf(
			"guest fault (KVM exit %s), exiting as solo5-spt would on "+
				"SIGSEGV", exitReasonName(e.Reason))}, nil
	}
	return handleExit(nil, run, allocSize)
}

// vectorUD is the invalid opcode exception.
const vectorUD = 6

// intInstruction returns the halt for an INT n instruction that raised
// #UD, or nil if the instruction at the faulting RIP is another one.
// kvm_pvm raises #UD for every INT n in ring 3 instead of delivering it
// through the IDT, so the tender ends the guest as Linux would end a
// process: SIGSYS for the i386 system call int $0x80 (the spt filter
// kills it), SIGTRAP for int $3 and SIGSEGV for the other vectors.
func (s *sptCalls) intInstruction() *Halt {
	// The CPU pushed RIP, CS, RFLAGS, RSP and SS, without an error code.
	frame, err := s.mem.Slice(shimStackTop-5*8, 8)
	if err != nil {
		return nil
	}
	insn, err := s.mem.Slice(le.Uint64(frame), 2)
	if err != nil || insn[0] != 0xcd { // INT imm8
		return nil
	}
	sig := unix.SIGSEGV
	switch insn[1] {
	case vectorI386Syscall:
		return &Halt{Status: statusSIGSYS, Reason: "guest made an i386 " +
			"system call (int $0x80), exiting as solo5-spt would on SIGSYS"}
	case 3:
		sig = unix.SIGTRAP
	}
	return &Halt{Status: 128 + int32(sig), Reason: fmt.Sprintf(
		"guest executed int $%#x, exiting as solo5-spt would on %s",
		insn[1], unix.SignalName(sig))}
}

// errnoResult returns -errno as the u64 a process finds in RAX.
func errnoResult(e syscall.Errno) uint64 { return uint64(-int64(e)) }

// handle serves system call nr with the arguments in the call frame and
// leaves the result there.
func (s *sptCalls) handle(nr uint64) (*Halt, error) {
	frame, err := s.mem.WritableSlice(shimFrameAddr, shimFrameSize)
	if err != nil {
		return nil, err
	}
	var args [6]uint64
	for i := range args {
		args[i] = le.Uint64(frame[8+8*i:])
	}
	ret, halt, err := s.serve(nr, args)
	if halt != nil || err != nil {
		return halt, err
	}
	le.PutUint64(frame, ret)
	return nil, nil
}

// guestBuffer returns the guest buffer [gpa, gpa+size) that a system call
// may read, or write if writable. The buffer must lie in guest memory and
// stay off two ranges, as unmapped memory in a process would. One is the
// pages below 0x10000, where the VM keeps its GDT and page tables. The
// other is the shim's pages, which the guest would reach through the
// tender otherwise.
func (s *sptCalls) guestBuffer(gpa, size uint64, writable bool) ([]byte, error) {
	end := gpa + size
	if end < gpa || gpa < sptUnmappedEnd ||
		(gpa < shimEnd && end > shimStackAddr) {
		return nil, unix.EFAULT
	}
	if writable {
		return s.mem.WritableSlice(gpa, size)
	}
	return s.mem.Slice(gpa, size)
}

// serve makes system call nr and returns its result. It returns a halt
// for exit_group and for a call the spt policy forbids (status 159, as the
// spt process would die of SIGSYS). A guest buffer outside guest memory
// gets EFAULT, as the kernel would return.
func (s *sptCalls) serve(nr uint64, args [6]uint64) (uint64, *Halt, error) {
	// Linux takes the system call number from the low 32 bits of RAX,
	// for seccomp and for the call alike.
	nr = uint64(uint32(nr))
	if nr > 1<<20 || !s.policy.Allows(int(nr), args) {
		return 0, s.forbidden(nr, args[0], args[1], args[2]), nil
	}

	var ret uint64
	switch nr {
	case unix.SYS_EXIT_GROUP:
		return 0, &Halt{Status: int32(args[0])}, nil
	case unix.SYS_ARCH_PRCTL:
		// The policy allows only ARCH_SET_FS. Linux rejects a base at or
		// above the top of user space (4-level paging) with EPERM.
		if args[1] >= userSpaceTop {
			ret = errnoResult(unix.EPERM)
			break
		}
		if err := s.setFSBase(args[1]); err != nil {
			return 0, nil, fmt.Errorf("arch_prctl(ARCH_SET_FS): %w", err)
		}
	case unix.SYS_WRITE:
		if args[0] == 1 {
			// Console output goes to the tender's console writer, one
			// write per call, as solo5-spt's write(1) does.
			buf, err := s.guestBuffer(args[1], args[2], false)
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
		return 0, nil, fmt.Errorf("system call %d passed the spt policy "+
			"but has no handler", nr)
	}
	return ret, nil, nil
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
		buf, err = s.guestBuffer(gpa, b.size, b.writable)
		if err != nil {
			return errnoResult(unix.EFAULT)
		}
		s.bufs[b.arg] = buf
	}
	return s.sys(uintptr(nr), args, &s.bufs)
}

// epollEventSize is sizeof(struct epoll_event) on x86_64 (packed), and
// epollMaxReady bounds the ready events of the guest's set: its timerfd
// and at most one tap per manifest entry.
const (
	epollEventSize = 12
	epollMaxReady  = abi.ManifestMaxEntries
)

// epollWait serves epoll_pwait, which blocks until the guest's deadline
// timer or a tap is ready. A signal that interrupts it ends the wait only
// when the tender is stopping; otherwise the wait resumes.
func (s *sptCalls) epollWait(nr uint64, args [6]uint64) uint64 {
	// Linux reads maxevents as an int and accepts up to INT_MAX divided by
	// the event size.
	maxEvents := int64(int32(uint32(args[2])))
	if maxEvents <= 0 || maxEvents > math.MaxInt32/epollEventSize {
		return errnoResult(unix.EINVAL)
	}
	// The kernel writes only ready events, and the set holds at most the
	// timerfd and the tap fds. So the buffer passed on is capped to that
	// many events, and to the guest memory after the pointer.
	n := uint64(min(maxEvents, epollMaxReady))
	if gpa := args[1]; gpa < s.mem.Size() {
		n = min(n, (s.mem.Size()-gpa)/epollEventSize)
	}
	if n == 0 {
		return errnoResult(unix.EFAULT)
	}
	args[2] = n
	events := bufArg{arg: 1, size: n * epollEventSize, writable: true}
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
	copy(m.mem[shimSyscallAddr:], shimSyscallCode(shimFrameAddr, shimDoorbellAddr))
	copy(m.mem[shimStubsAddr:], shimFaultStubs(shimFaultPorts))
	copy(m.mem[shimIDTAddr:], shimIDT(shimStubsAddr))
	copy(m.mem[shimGDTAddr:], shimGDT(shimTSSAddr))
	copy(m.mem[shimTSSAddr:], shimTSS(shimStackTop))
	limitToGuest(m.mem, m.layout.guestSize, m.layout.allocSize)
	mapUserPages(m.mem, m.layout.allocSize, shimStackAddr, shimKernelAddr)

	if m.spec.xExecHeap {
		m.log("%s", seccompmode.ExecHeapWarning)
	}
	// An spt process cannot execute its data, heap or stack (unless
	// --x-exec-heap), so the guest page tables get NX there.
	exec := []gpaRange{
		{shimSyscallAddr, shimSyscallAddr + abi.PageSize},
		{shimKernelAddr, shimKernelAddr + abi.PageSize},
	}
	// The guest must not rewrite the SYSCALL entry code, which runs in
	// ring 0 on a KVM that follows the architecture.
	noExec, readOnly := []gpaRange(nil),
		[]gpaRange{{shimSyscallAddr, shimSyscallAddr + abi.PageSize}}
	for _, s := range m.spec.kernel.Segments {
		if s.Prot&abi.ProtExec != 0 {
			exec = append(exec, gpaRange{s.Start, s.End})
		} else {
			noExec = append(noExec, gpaRange{s.Start, s.End})
		}
		if s.Prot&abi.ProtWrite == 0 {
			readOnly = append(readOnly, gpaRange{s.Start, s.End})
		}
	}
	markNoExecute(m.mem, m.layout.allocSize, exec, noExec, m.spec.xExecHeap)
	// Ring 3 honours the guest page tables, so a write to .text or
	// .rodata faults in the guest (#PF, status 139), as in a process.
	markReadOnly(m.mem, m.layout.allocSize, readOnly)

	sregs, err := kvm.GetSregs(uintptr(m.vcpu.fd))
	if err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	sregs.EFER |= eferSCE | eferNXE
	userSregs(sregs)
	if err := m.vcpu.setSregs(sregs); err != nil {
		return err
	}
	// SYSCALL loads the kernel segments from STAR[47:32], SYSRET the user
	// segments from STAR[63:48]. SFMASK 0 keeps RFLAGS, so the ring 3
	// path of the entry code returns with the guest's flags as they were.
	if err := m.vcpu.setMSRs(
		kvmMSREntry{Index: msrSTAR, Data: selUserBase<<48 | selKernelCode<<32},
		kvmMSREntry{Index: msrLSTAR, Data: shimSyscallAddr},
		kvmMSREntry{Index: msrSFMASK, Data: 0},
	); err != nil {
		return err
	}
	regs := initialRegs(m.spec.kernel.Entry, m.layout.guestSize)
	regs.RDI = abi.SPTBootInfoAddr
	regs.RFLAGS = rflagsUser
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
	if cmdline+abi.CmdlineSize > shimStackAddr {
		return fmt.Errorf("manifest of %d bytes does not fit below %#x",
			len(manifest), shimStackAddr)
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
