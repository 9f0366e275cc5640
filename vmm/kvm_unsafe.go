package vmm

// This file holds every ioctl, mmap and pointer cast of the package. The
// rest of vmm works on byte slices and the values these functions return.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/vmm/corefile"
)

// KVM ioctl request numbers (linux/kvm.h) that gokvm lacks or wraps in a
// way the run loop cannot use.
const (
	kvmRunIoctl     = 0xAE80 // _IO(KVMIO, 0x80)
	kvmGetRegsIoctl = 0x8090AE81
	// kvmGetSregsIoctl is _IOR(KVMIO, 0x83, struct kvm_sregs), for the
	// segment registers of a core file.
	kvmGetSregsIoctl = 0x8138AE83
	kvmIoeventfd     = 0x4040AE79 // _IOW(KVMIO, 0x79, struct kvm_ioeventfd)

	kvmAPIVersion = 12

	// kvmIoeventfdFlagPIO makes an ioeventfd match port I/O, not MMIO.
	kvmIoeventfdFlagPIO = 1 << 1
)

// kvmIoeventfdArgs mirrors struct kvm_ioeventfd (linux/kvm.h, 64 bytes).
type kvmIoeventfdArgs struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	Fd        int32
	Flags     uint32
	_         [36]uint8
}

// kvmCPUID2Header mirrors the fixed part of struct kvm_cpuid2. The entries
// (struct kvm_cpuid_entry2, 40 bytes each) follow it in the same buffer.
type kvmCPUID2Header struct {
	Nent    uint32
	Padding uint32
}

// kvmCPUIDEntrySize is sizeof(struct kvm_cpuid_entry2).
const kvmCPUIDEntrySize = 40

// vcpu is one KVM virtual CPU with its kvm_run page.
type vcpu struct {
	kvmFd  int
	vmFd   int
	fd     int
	runMap []byte // the whole mmap'd kvm_run area
}

// openKVM opens /dev/kvm and checks the API version and the capabilities
// the hvt backend cannot work without.
func openKVM() (int, error) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening /dev/kvm: %w (is KVM enabled and "+
			"accessible to this user?)", err)
	}

	version, err := kvm.GetAPIVersion(uintptr(fd))
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("reading the KVM API version: %w", err)
	}
	if version != kvmAPIVersion {
		unix.Close(fd)
		return -1, fmt.Errorf("KVM API version is %d, ntender requires "+
			"version %d", version, kvmAPIVersion)
	}

	for _, c := range []kvm.Capability{kvm.CapUserMemory, kvm.CapGetTSCkHz} {
		ok, err := kvm.CheckExtension(uintptr(fd), c)
		if err != nil || ok == 0 {
			unix.Close(fd)
			return -1, fmt.Errorf("KVM on this host does not support %v", c)
		}
	}

	return fd, nil
}

// hasCapability reports whether KVM_CHECK_EXTENSION returns a positive value.
func hasCapability(kvmFd int, c kvm.Capability) bool {
	ok, err := kvm.CheckExtension(uintptr(kvmFd), c)
	return err == nil && ok > 0
}

// newVCPU creates a VM and its vCPU 0 and maps the vCPU's kvm_run area.
func newVCPU(kvmFd int) (*vcpu, error) {
	vmFd, err := kvm.CreateVM(uintptr(kvmFd))
	if err != nil {
		return nil, fmt.Errorf("creating the KVM VM: %w", err)
	}
	v := &vcpu{kvmFd: kvmFd, vmFd: int(vmFd), fd: -1}

	fd, err := kvm.CreateVCPU(vmFd, 0)
	if err != nil {
		v.close()
		return nil, fmt.Errorf("creating the KVM vCPU: %w", err)
	}
	v.fd = int(fd)

	size, err := kvm.GetVCPUMMmapSize(uintptr(kvmFd))
	if err != nil {
		v.close()
		return nil, fmt.Errorf("reading the kvm_run area size: %w", err)
	}
	if size < kvmRunMinSize {
		v.close()
		return nil, fmt.Errorf("the kvm_run area is %d bytes, need at "+
			"least %d", size, kvmRunMinSize)
	}

	v.runMap, err = unix.Mmap(v.fd, 0, int(size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		v.close()
		return nil, fmt.Errorf("mapping the kvm_run area: %w", err)
	}

	return v, nil
}

// close releases the run area and the vCPU and VM fds. It does not close
// kvmFd, which the caller opened.
func (v *vcpu) close() {
	if v.runMap != nil {
		unix.Munmap(v.runMap)
		v.runMap = nil
	}
	if v.fd >= 0 {
		unix.Close(v.fd)
		v.fd = -1
	}
	if v.vmFd >= 0 {
		unix.Close(v.vmFd)
		v.vmFd = -1
	}
}

// mapGuestMemory maps size bytes of zero-filled shared anonymous memory and
// registers it as KVM memory slot 0 at guest physical address 0.
func mapGuestMemory(vmFd int, size uint64) ([]byte, error) {
	if size == 0 || size > uint64(^uint(0)>>1) {
		return nil, fmt.Errorf("invalid guest memory size %d bytes", size)
	}

	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes of guest memory: %w",
			size, err)
	}

	region := kvm.UserspaceMemoryRegion{
		Slot:          0,
		GuestPhysAddr: 0,
		MemorySize:    size,
		// SAFETY: mem stays mapped until after the VM fd is closed, so
		// the address KVM keeps is valid for the VM's lifetime.
		UserspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))),
	}
	if err := kvm.SetUserMemoryRegion(uintptr(vmFd), &region); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("registering guest memory with KVM: %w", err)
	}

	return mem, nil
}

// protect applies host protections to a page-aligned range of guest
// memory. The host never maps guest memory executable.
func protect(mem []byte, start, end uint64, writable bool) error {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	if err := unix.Mprotect(mem[start:end], prot); err != nil {
		return fmt.Errorf("mprotect of guest range [%#x, %#x): %w",
			start, end, err)
	}
	return nil
}

// supportedCPUID returns the struct kvm_cpuid2 of KVM_GET_SUPPORTED_CPUID.
// It starts with room for 100 entries (the upstream size) and grows the
// buffer while KVM returns E2BIG.
func supportedCPUID(kvmFd int) ([]byte, error) {
	for n := 100; n <= 4096; n *= 2 {
		buf := make([]byte, 8+n*kvmCPUIDEntrySize)
		// SAFETY: buf is at least 8 bytes and kvmCPUID2Header is two u32s
		// with 4-byte alignment, which make() provides.
		hdr := (*kvmCPUID2Header)(unsafe.Pointer(&buf[0]))
		hdr.Nent = uint32(n)

		_, err := kvm.Ioctl(uintptr(kvmFd),
			kvm.IIOWR(0x05, unsafe.Sizeof(*hdr)),
			uintptr(unsafe.Pointer(&buf[0])))
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
		}
		return buf, nil
	}
	return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: more than 4096 entries")
}

// setCPUID gives the vCPU cpuid, a struct kvm_cpuid2 from supportedCPUID,
// unchanged, as solo5-hvt does.
func (v *vcpu) setCPUID(cpuid []byte) error {
	if len(cpuid) < 8 {
		return fmt.Errorf("KVM_SET_CPUID2: %d-byte struct kvm_cpuid2", len(cpuid))
	}
	_, err := kvm.Ioctl(uintptr(v.fd),
		kvm.IIOW(0x90, unsafe.Sizeof(kvmCPUID2Header{})),
		uintptr(unsafe.Pointer(&cpuid[0])))
	if err != nil {
		return fmt.Errorf("KVM_SET_CPUID2: %w", err)
	}
	return nil
}

// tscKHz returns the guest TSC frequency in kHz.
func (v *vcpu) tscKHz() (uint64, error) {
	khz, err := kvm.GetTSCKHz(uintptr(v.fd))
	if errors.Is(err, unix.EIO) {
		return 0, fmt.Errorf("KVM: host TSC is unstable, cannot continue")
	}
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_TSC_KHZ: %w", err)
	}
	return khz, nil
}

func (v *vcpu) setSregs(s *kvm.Sregs) error {
	if err := kvm.SetSregs(uintptr(v.fd), s); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	return nil
}

func (v *vcpu) setRegs(r *kvm.Regs) error {
	if err := kvm.SetRegs(uintptr(v.fd), r); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

// rip returns the guest instruction pointer, or 0 when KVM_GET_REGS fails;
// it only decorates error messages.
func (v *vcpu) rip() uint64 {
	var regs kvm.Regs
	_, err := kvm.Ioctl(uintptr(v.fd), kvmGetRegsIoctl,
		uintptr(unsafe.Pointer(&regs)))
	if err != nil {
		return 0
	}
	return regs.RIP
}

// coreRegisters returns the vCPU registers in the layout of a core file's
// NT_PRSTATUS note.
func (v *vcpu) coreRegisters() (*corefile.Registers, error) {
	var regs kvm.Regs
	_, err := kvm.Ioctl(uintptr(v.fd), kvmGetRegsIoctl,
		uintptr(unsafe.Pointer(&regs)))
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	var sregs kvm.Sregs
	_, err = kvm.Ioctl(uintptr(v.fd), kvmGetSregsIoctl,
		uintptr(unsafe.Pointer(&sregs)))
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	return &corefile.Registers{
		R15: regs.R15, R14: regs.R14, R13: regs.R13, R12: regs.R12,
		RBP: regs.RBP, RBX: regs.RBX, R11: regs.R11, R10: regs.R10,
		R9: regs.R9, R8: regs.R8, RAX: regs.RAX, RCX: regs.RCX,
		RDX: regs.RDX, RSI: regs.RSI, RDI: regs.RDI,
		RIP: regs.RIP, EFLAGS: regs.RFLAGS, RSP: regs.RSP,
		CS: uint64(sregs.CS.Selector), SS: uint64(sregs.SS.Selector),
		DS: uint64(sregs.DS.Selector), ES: uint64(sregs.ES.Selector),
		FS: uint64(sregs.FS.Selector), GS: uint64(sregs.GS.Selector),
		FSBase: sregs.FS.Base, GSBase: sregs.GS.Base,
	}, nil
}

// hostAddress returns the host virtual address of mem, which must not be
// empty.
func hostAddress(mem []byte) uintptr {
	return uintptr(unsafe.Pointer(&mem[0]))
}

// run executes KVM_RUN once and returns its errno, or nil after a VM exit.
// Unlike gokvm's kvm.Run it does not hide EINTR, because an interrupted
// run leaves a stale exit reason in kvm_run.
func (v *vcpu) run() error {
	_, _, errno := syscall.Syscall(unix.SYS_IOCTL, uintptr(v.fd),
		kvmRunIoctl, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// setImmediateExit sets kvm_run.immediate_exit, which makes the next or
// current KVM_RUN return EINTR at once. Another goroutine may call it while
// the vCPU runs.
func (v *vcpu) setImmediateExit() {
	// SAFETY: runMap starts on a page, so offset 0 is aligned for a 32-bit
	// atomic store. The store covers request_interrupt_window (byte 0,
	// always 0 here), immediate_exit (byte 1) and two padding bytes, which
	// the run loop never writes.
	p := (*uint32)(unsafe.Pointer(&v.runMap[0]))
	atomic.StoreUint32(p, 1<<8)
}

// addIoeventfd makes guest 4-byte OUTs to port signal the eventfd fd inside
// KVM, with no VM exit.
func addIoeventfd(vmFd, fd int, port uint64) error {
	args := kvmIoeventfdArgs{
		Addr:  port,
		Len:   4,
		Fd:    int32(fd),
		Flags: kvmIoeventfdFlagPIO,
	}
	_, err := kvm.Ioctl(uintptr(vmFd), kvmIoeventfd,
		uintptr(unsafe.Pointer(&args)))
	if err != nil {
		return fmt.Errorf("KVM_IOEVENTFD for port %#x: %w", port, err)
	}
	return nil
}

// ringWord returns a pointer to the 32-bit ring index at offset off of the
// ring area, for atomic access shared with the guest.
func ringWord(ring []byte, off int) *uint32 {
	if off < 0 || off+4 > len(ring) {
		panic(fmt.Sprintf("ring index offset %d outside the %d-byte ring",
			off, len(ring)))
	}
	// SAFETY: the bounds check above keeps the 4 bytes inside ring, and
	// ring starts on a page boundary while every index offset is a multiple
	// of 4, so the pointer is aligned.
	return (*uint32)(unsafe.Pointer(&ring[off]))
}

// gettid returns the calling thread's id.
func gettid() int { return unix.Gettid() }

// kickThread interrupts a blocking system call on thread tid of process
// pid with SIGURG, which the Go runtime already handles (it uses it for
// preemption), so the signal itself has no other effect.
func kickThread(pid, tid int) error {
	return unix.Tgkill(pid, tid, unix.SIGURG)
}

// kvmSetMSRsIoctl is KVM_SET_MSRS, _IOW(KVMIO, 0x89, struct kvm_msrs).
const kvmSetMSRsIoctl = 0x4008AE89

// kvmMSREntry mirrors struct kvm_msr_entry (16 bytes).
type kvmMSREntry struct {
	Index    uint32
	Reserved uint32
	Data     uint64
}

// kvmMSRs mirrors struct kvm_msrs with room for four entries.
type kvmMSRs struct {
	NMSRs   uint32
	Pad     uint32
	Entries [4]kvmMSREntry
}

// setMSRs writes up to four MSRs of the vCPU. KVM_SET_MSRS returns how
// many entries it set, and stops at the first it rejects.
func (v *vcpu) setMSRs(entries ...kvmMSREntry) error {
	var msrs kvmMSRs
	if len(entries) > len(msrs.Entries) {
		return fmt.Errorf("setting %d MSRs at once, at most %d",
			len(entries), len(msrs.Entries))
	}
	msrs.NMSRs = uint32(len(entries))
	copy(msrs.Entries[:], entries)
	n, err := kvm.Ioctl(uintptr(v.fd), kvmSetMSRsIoctl,
		uintptr(unsafe.Pointer(&msrs)))
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS: %w", err)
	}
	if int(n) != len(entries) {
		return fmt.Errorf("KVM_SET_MSRS: KVM rejected MSR %#x",
			entries[n].Index)
	}
	return nil
}

// guestSyscall makes system call nr for an spt guest. A non-nil bufs[i]
// replaces args[i] with the host address of that guest buffer. It returns
// the value, or -errno, as the kernel returns it to a process.
func guestSyscall(nr uintptr, args [6]uint64, bufs *[6][]byte) uint64 {
	var a [6]uintptr
	for i := range a {
		a[i] = uintptr(args[i])
		if bufs[i] != nil {
			// SAFETY: the buffer is a slice of the guest memory mapping,
			// which is not Go heap memory and stays mapped during the
			// call, and GuestMemory checked its bounds.
			a[i] = uintptr(unsafe.Pointer(unsafe.SliceData(bufs[i])))
		}
	}
	r, _, errno := syscall.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	if errno != 0 {
		return errnoResult(errno)
	}
	return uint64(r)
}
