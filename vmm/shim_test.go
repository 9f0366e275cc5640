package vmm

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/seccompmode"
	"github.com/ntender/ntender/tests/guests"
)

// TestShimSyscallCode compares the generated entry code with the bytes
// GNU as 2.40 emits for the same instructions with the frame at 0xFD000
// and the doorbell at 0xFC000.
func TestShimSyscallCode(t *testing.T) {
	want := []byte{
		0x48, 0x89, 0x3c, 0x25, 0x08, 0xd0, 0x0f, 0x00, // mov %rdi,0xfd008
		0x48, 0x89, 0x34, 0x25, 0x10, 0xd0, 0x0f, 0x00, // mov %rsi,0xfd010
		0x48, 0x89, 0x14, 0x25, 0x18, 0xd0, 0x0f, 0x00, // mov %rdx,0xfd018
		0x4c, 0x89, 0x14, 0x25, 0x20, 0xd0, 0x0f, 0x00, // mov %r10,0xfd020
		0x4c, 0x89, 0x04, 0x25, 0x28, 0xd0, 0x0f, 0x00, // mov %r8,0xfd028
		0x4c, 0x89, 0x0c, 0x25, 0x30, 0xd0, 0x0f, 0x00, // mov %r9,0xfd030
		0x48, 0x89, 0x04, 0x25, 0x00, 0xc0, 0x0f, 0x00, // mov %rax,0xfc000
		0x8c, 0xc8, // mov %cs,%eax
		0xa8, 0x03, // test $0x3,%al
		0x48, 0x8b, 0x04, 0x25, 0x00, 0xd0, 0x0f, 0x00, // mov 0xfd000,%rax
		0x75, 0x03, // jne 1f
		0x48, 0x0f, 0x07, // sysretq
		0xff, 0xe1, // 1: jmp *%rcx
	}
	if got := shimSyscallCode(0xFD000, 0xFC000); !bytes.Equal(got, want) {
		t.Errorf("shimSyscallCode =\n% x\nwant\n% x", got, want)
	}
	if len(want) > abi.PageSize {
		t.Error("entry code does not fit its page")
	}
}

// recordedCall is one system call the fake kernel received.
type recordedCall struct {
	nr   uintptr
	args [6]uint64
	bufs [6][]byte
}

// sptFixture serves spt system calls over 4 MiB of guest memory with a
// fake kernel that records each call and returns ret.
type sptFixture struct {
	mem     []byte
	calls   *sptCalls
	console *bytes.Buffer
	kernel  []recordedCall
	ret     uint64
	fsBase  uint64
	stop    atomic.Bool
}

func newSPTFixture(t *testing.T) *sptFixture {
	t.Helper()
	policy, err := seccompmode.NewPolicy(seccompmode.Resources{
		EpollFd: 5, TimerFd: 6,
		Blocks: []seccompmode.BlockResource{{Name: "storage", Fd: 7, SectorSize: 512, Capacity: 4096}},
		Nets:   []seccompmode.NetResource{{Name: "service0", Iface: "tap0", Fd: 8}},
	})
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	f := &sptFixture{mem: make([]byte, 4<<20), console: &bytes.Buffer{}}
	gm := NewGuestMemory(f.mem, 4<<20)
	f.calls = &sptCalls{
		mem:     &gm,
		console: f.console,
		policy:  policy,
		sys: func(nr uintptr, args [6]uint64, bufs *[6][]byte) uint64 {
			f.kernel = append(f.kernel, recordedCall{nr, args, *bufs})
			return f.ret
		},
		setFSBase: func(base uint64) error { f.fsBase = base; return nil },
		stop:      &f.stop,
	}
	return f
}

// syscall stores the arguments in the frame and the number in a doorbell
// exit, as the entry code does, serves the exit and returns the halt, the
// result left in the frame and the error.
func (f *sptFixture) syscall(nr uint64, args ...uint64) (*Halt, uint64, error) {
	frame := f.mem[shimFrameAddr:]
	for i := 0; i < 6; i++ {
		var a uint64
		if i < len(args) {
			a = args[i]
		}
		binary.LittleEndian.PutUint64(frame[8+8*i:], a)
	}
	halt, err := handleSPTExit(f.calls, doorbellExit(nr), uint64(len(f.mem)))
	return halt, binary.LittleEndian.Uint64(frame), err
}

func TestShimConsoleWrite(t *testing.T) {
	f := newSPTFixture(t)
	copy(f.mem[0x200000:], "hello from spt")
	halt, ret, err := f.syscall(unix.SYS_WRITE, 1, 0x200000, 14)
	if halt != nil || err != nil {
		t.Fatalf("write(1) = %v, %v", halt, err)
	}
	if ret != 14 {
		t.Errorf("write(1) returned %d, want 14", ret)
	}
	if got := f.console.String(); got != "hello from spt" {
		t.Errorf("console = %q", got)
	}
	if len(f.kernel) != 0 {
		t.Errorf("console write reached the kernel: %+v", f.kernel)
	}
}

func TestShimPassesGuestBuffers(t *testing.T) {
	f := newSPTFixture(t)
	f.ret = 512
	_, ret, err := f.syscall(unix.SYS_PREAD64, 7, 0x200000, 512, 1024)
	if err != nil || ret != 512 {
		t.Fatalf("pread64 = %v, %d; want nil, 512", err, ret)
	}
	if len(f.kernel) != 1 {
		t.Fatalf("kernel got %d calls, want 1", len(f.kernel))
	}
	c := f.kernel[0]
	if c.nr != unix.SYS_PREAD64 || c.args[0] != 7 || c.args[3] != 1024 {
		t.Errorf("kernel call = %+v", c)
	}
	if len(c.bufs[1]) != 512 || &c.bufs[1][0] != &f.mem[0x200000] {
		t.Errorf("buffer is not guest memory at 0x200000 with 512 bytes")
	}
}

func TestShimBadBufferIsEFAULT(t *testing.T) {
	f := newSPTFixture(t)
	_, ret, err := f.syscall(unix.SYS_READ, 8, 4<<20-10, 1514)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if ret != errnoResult(unix.EFAULT) {
		t.Errorf("read past the end returned %#x, want -EFAULT", ret)
	}
	if len(f.kernel) != 0 {
		t.Errorf("bad buffer reached the kernel: %+v", f.kernel)
	}
}

func TestShimPolicy(t *testing.T) {
	cases := []struct {
		name string
		nr   uint64
		args []uint64
	}{
		{"dup", unix.SYS_DUP, []uint64{1}},
		{"write to stderr", unix.SYS_WRITE, []uint64{2, 0x200000, 1}},
		{"pread64 of two sectors", unix.SYS_PREAD64, []uint64{7, 0x200000, 1024, 0}},
		{"pread64 past the capacity", unix.SYS_PREAD64, []uint64{7, 0x200000, 512, 4096}},
		{"read from a block fd", unix.SYS_READ, []uint64{7, 0x200000, 512}},
		{"arch_prctl(ARCH_GET_FS)", unix.SYS_ARCH_PRCTL, []uint64{0x1003, 0x200000}},
		{"openat", unix.SYS_OPENAT, nil},
		{"huge number", 1 << 40, nil},
	}
	for _, c := range cases {
		f := newSPTFixture(t)
		halt, _, err := f.syscall(c.nr, c.args...)
		if err != nil {
			t.Errorf("%s: error %v, want a halt", c.name, err)
			continue
		}
		if halt == nil || halt.Status != statusSIGSYS {
			t.Errorf("%s: halt = %+v, want status 159", c.name, halt)
			continue
		}
		if !strings.Contains(halt.Reason, "not allowed by the spt policy") {
			t.Errorf("%s: reason = %q", c.name, halt.Reason)
		}
		if len(f.kernel) != 0 {
			t.Errorf("%s reached the kernel", c.name)
		}
	}
}

func TestShimExitAndTLS(t *testing.T) {
	f := newSPTFixture(t)
	_, ret, err := f.syscall(unix.SYS_ARCH_PRCTL, archSetFS, 0x300000)
	if err != nil || ret != 0 || f.fsBase != 0x300000 {
		t.Errorf("arch_prctl = %v, %d, FS base %#x; want nil, 0, 0x300000", err, ret, f.fsBase)
	}
	halt, _, err := f.syscall(unix.SYS_EXIT_GROUP, 7)
	if err != nil || halt == nil || halt.Status != 7 {
		t.Errorf("exit_group(7) = %+v, %v", halt, err)
	}
}

func TestShimEpollRetriesEINTR(t *testing.T) {
	f := newSPTFixture(t)
	eintr := errnoResult(unix.EINTR)
	calls := 0
	f.calls.sys = func(nr uintptr, args [6]uint64, bufs *[6][]byte) uint64 {
		calls++
		if calls < 3 {
			return eintr
		}
		return 1
	}
	_, ret, err := f.syscall(unix.SYS_EPOLL_PWAIT, 5, 0x200000, 2, ^uint64(0))
	if err != nil || ret != 1 || calls != 3 {
		t.Errorf("epoll_pwait = %v, %d after %d calls; want nil, 1 after 3", err, ret, calls)
	}

	calls = 0
	f.stop.Store(true)
	_, ret, _ = f.syscall(unix.SYS_EPOLL_PWAIT, 5, 0x200000, 2, ^uint64(0))
	if ret != eintr || calls != 1 {
		t.Errorf("epoll_pwait while stopping = %#x after %d calls; want -EINTR after 1", ret, calls)
	}
}

func TestShimExitFaults(t *testing.T) {
	for _, c := range []struct {
		name string
		run  []byte
	}{
		{"triple fault", reasonExit(exitShutdown, 0)},
		{"hlt", reasonExit(exitHLT, 0)},
		{"write to read-only memory", mmioWrite(0x100040)},
	} {
		f := newSPTFixture(t)
		halt, err := handleSPTExit(f.calls, c.run, 4<<20)
		if err != nil || halt == nil || halt.Status != statusSIGSEGV {
			t.Errorf("%s: halt %+v, error %v; want status 139", c.name, halt, err)
		}
	}
}

func TestShimExceptionStatus(t *testing.T) {
	for _, c := range []struct {
		vector uint32
		status int32
	}{
		{0, 136},  // #DE: SIGFPE
		{3, 133},  // #BP: SIGTRAP
		{6, 132},  // #UD: SIGILL
		{13, 139}, // #GP: SIGSEGV
		{14, 139}, // #PF: SIGSEGV
		{11, 135}, // #NP: SIGBUS
		{12, 135}, // #SS: SIGBUS
		{17, 135}, // #AC: SIGBUS
		{19, 136}, // #XM: SIGFPE
	} {
		f := newSPTFixture(t)
		port := uint16(shimFaultPorts + c.vector)
		halt, err := handleSPTExit(f.calls, ioExit(ioDirectionOut, 1, port, 0), 4<<20)
		if err != nil || halt == nil || halt.Status != c.status {
			t.Errorf("vector %d: halt %+v, error %v; want status %d", c.vector, halt, err, c.status)
		}
	}
}

// TestShimExitsOutsideTheShim checks that exits ring 3 cannot cause
// through the shim are tender errors, not system calls or faults.
func TestShimExitsOutsideTheShim(t *testing.T) {
	for _, c := range []struct {
		name string
		run  []byte
	}{
		{"hypercall port", ioExit(ioDirectionOut, 4, 0x501, 0)},
		{"port read", ioExit(0, 1, shimFaultPorts, 0)},
		{"4-byte write to a stub port", ioExit(ioDirectionOut, 4, shimFaultPorts, 0)},
		{"port past the stubs", ioExit(ioDirectionOut, 1, shimFaultPorts+shimStubs, 0)},
		{"4-byte doorbell write", mmioExit(shimDoorbellGPA, 4, true, 1)},
		{"doorbell read", mmioExit(shimDoorbellGPA, 8, false, 1)},
	} {
		f := newSPTFixture(t)
		halt, err := handleSPTExit(f.calls, c.run, 4<<20)
		if err == nil || halt != nil {
			t.Errorf("%s: halt %+v, error %v; want an error", c.name, halt, err)
		}
		if len(f.kernel) != 0 || f.console.Len() != 0 {
			t.Errorf("%s: served a system call", c.name)
		}
	}
}

func TestShimIDTGates(t *testing.T) {
	idt := shimIDT(shimStubsAddr)
	if len(idt) != shimIDTEntries*16 {
		t.Fatalf("IDT is %d bytes, want %d", len(idt), shimIDTEntries*16)
	}
	stubs := shimFaultStubs(shimFaultPorts)
	if len(stubs) != shimStubs*shimStubSize {
		t.Fatalf("stubs are %d bytes, want %d", len(stubs), shimStubs*shimStubSize)
	}
	if shimStubsAddr+len(stubs) > shimIDTAddr || shimIDTAddr+len(idt) > shimGDTAddr ||
		shimGDTAddr+shimGDTSize > shimTSSAddr || shimTSSAddr+shimTSSSize > shimKernelAddr+abi.PageSize {
		t.Fatal("stubs, IDT, GDT and TSS overlap or leave the kernel page")
	}
	le := binary.LittleEndian
	for v := range shimIDTEntries {
		gate := idt[v*16 : v*16+16]
		if v >= shimExceptions && v != vectorI386Syscall {
			if !bytes.Equal(gate, make([]byte, 16)) {
				t.Errorf("gate %d = % x, want zero", v, gate)
			}
			continue
		}
		stub := v
		if v == vectorI386Syscall {
			stub = shimExceptions
		}
		target := uint64(le.Uint16(gate[0:])) | uint64(le.Uint16(gate[6:]))<<16 |
			uint64(le.Uint32(gate[8:]))<<32
		if want := uint64(shimStubsAddr + stub*shimStubSize); target != want {
			t.Errorf("gate %d points at %#x, want %#x", v, target, want)
		}
		if sel := le.Uint16(gate[2:]); sel != selKernelCode {
			t.Errorf("gate %d selector %#x, want %#x", v, sel, selKernelCode)
		}
		access := byte(0x8e)
		if v == 3 || v == 4 || v == vectorI386Syscall {
			access = 0xee // ring 3 may raise INT3, INTO and int $0x80
		}
		if gate[4] != 1 || gate[5] != access {
			t.Errorf("gate %d IST/type %#x %#x, want 1 %#x", v, gate[4], gate[5], access)
		}
	}
	for i := range shimStubs {
		stub := stubs[i*shimStubSize:]
		if stub[0] != 0xe6 || stub[1] != byte(shimFaultPorts+i) || stub[2] != 0xf4 {
			t.Errorf("stub %d = % x, want out %%al, $%#x; hlt", i, stub[:3], shimFaultPorts+i)
		}
	}
}

// TestShimI386Syscall expects the int $0x80 stub's exit to end the guest
// as the spt filter kills an i386 system call.
func TestShimI386Syscall(t *testing.T) {
	f := newSPTFixture(t)
	run := ioExit(ioDirectionOut, 1, shimFaultPorts+shimExceptions, 0)
	halt, err := handleSPTExit(f.calls, run, 4<<20)
	if err != nil || halt == nil || halt.Status != statusSIGSYS {
		t.Errorf("halt %+v, error %v; want status 159", halt, err)
	}
}

// TestShimINTRaisesUD covers hosts that raise #UD for INT n in ring 3:
// the tender decodes the instruction at the faulting RIP.
func TestShimINTRaisesUD(t *testing.T) {
	for _, c := range []struct {
		insn   []byte
		status int32
	}{
		{[]byte{0xcd, 0x80}, 159}, // int $0x80
		{[]byte{0xcd, 0x03}, 133}, // int $3
		{[]byte{0xcd, 0x30}, 139}, // int $0x30
		{[]byte{0x0f, 0x0b}, 132}, // ud2
	} {
		f := newSPTFixture(t)
		const rip = 0x100040
		copy(f.mem[rip:], c.insn)
		binary.LittleEndian.PutUint64(f.mem[shimStackTop-5*8:], rip)
		run := ioExit(ioDirectionOut, 1, shimFaultPorts+vectorUD, 0)
		halt, err := handleSPTExit(f.calls, run, 4<<20)
		if err != nil || halt == nil || halt.Status != c.status {
			t.Errorf("% x: halt %+v, error %v; want status %d", c.insn, halt, err, c.status)
		}
	}
}

// TestShimGDTAndTSS checks the descriptors against the values the SDM
// gives: DPL 3 user segments at the selectors SYSRET loads from STAR, and
// a 64-bit TSS whose RSP0 and IST1 are the top of the exception stack.
func TestShimGDTAndTSS(t *testing.T) {
	le := binary.LittleEndian
	g := shimGDT(0x12345678FF900)
	if len(g) != shimGDTSize {
		t.Fatalf("GDT is %d bytes, want %d", len(g), shimGDTSize)
	}
	if selUserData != selUserBase+8 || selUserCode != selUserBase+16 {
		t.Error("user selectors are not where SYSRET expects them")
	}
	dpl := func(d uint64) uint64 { return d >> 45 & 3 }
	if d := le.Uint64(g[selUserCode:]); dpl(d) != 3 || d>>53&1 != 1 {
		t.Errorf("user code %#x: want DPL 3 and L", d)
	}
	if d := le.Uint64(g[selUserData:]); dpl(d) != 3 {
		t.Errorf("user data %#x: want DPL 3", d)
	}
	lo, hi := le.Uint64(g[selTSS:]), le.Uint64(g[selTSS+8:])
	base := lo>>16&0xFFFFFF | (lo>>56&0xFF)<<24 | hi<<32
	if base != 0x12345678FF900 || lo&0xFFFF != shimTSSSize-1 || lo>>40&0xFF != 0x89 {
		t.Errorf("TSS descriptor %#x %#x: base %#x", lo, hi, base)
	}
	tss := shimTSS(shimStackTop)
	if le.Uint64(tss[4:]) != shimStackTop || le.Uint64(tss[36:]) != shimStackTop {
		t.Error("RSP0 or IST1 is not the top of the exception stack")
	}
	if le.Uint16(tss[102:]) < shimTSSSize {
		t.Error("the TSS has an I/O permission bitmap")
	}
}

// TestMapUserPages checks that ring 3 reaches guest memory and the
// shim's user pages but not the kernel pages, and that the doorbell page
// maps the doorbell address, outside guest memory.
func TestMarkReadOnly(t *testing.T) {
	const alloc = 8 << 20
	mem := make([]byte, alloc)
	writePageTables(mem, alloc, true)
	markReadOnly(mem, alloc, []gpaRange{{0x100000, 0x102000}, {2 << 20, 4 << 20}, {4 << 20, 5 << 20}})
	w := func(entry uint64) bool {
		return binary.LittleEndian.Uint64(mem[entry:])&pteWritable != 0
	}
	if w(pt0Addr+0x100*8) || w(pt0Addr+0x101*8) {
		t.Error("read-only 4 KiB pages are writable")
	}
	if !w(pt0Addr + 0x102*8) {
		t.Error("the page after the range is read-only")
	}
	if w(pdAddr + 8) {
		t.Error("a 2 MiB page inside a range is writable")
	}
	if !w(pdAddr + 16) {
		t.Error("a 2 MiB page half inside a range is read-only")
	}
}

func TestMapUserPages(t *testing.T) {
	const alloc = 8 << 20
	mem := make([]byte, alloc)
	writePageTables(mem, alloc, true)
	mapUserPages(mem, alloc, shimStackAddr, shimKernelAddr)
	le := binary.LittleEndian
	user := func(entry uint64) bool { return le.Uint64(mem[entry:])&pteUser != 0 }
	for _, e := range []uint64{pml4Addr, pdptAddr, pdAddr, pdAddr + 8,
		pt0Addr + 0x100*8, pt0Addr + 0x11*8, pt0Addr + (shimFrameAddr>>12)*8,
		pt0Addr + (shimSyscallAddr>>12)*8} {
		if !user(e) {
			t.Errorf("entry at %#x is not a user entry", e)
		}
	}
	for _, page := range []uint64{shimStackAddr, shimKernelAddr} {
		if user(pt0Addr + (page>>12)*8) {
			t.Errorf("kernel page %#x is reachable from ring 3", page)
		}
	}
	if le.Uint64(mem[pt0Addr:]) != 0 {
		t.Error("page 0 is mapped")
	}
	bell := le.Uint64(mem[pt0Addr+(shimDoorbellAddr>>12)*8:])
	if bell&^(pteNoExecute|0xFFF) != shimDoorbellGPA || shimDoorbellGPA < abi.HVTMaxMem {
		t.Errorf("doorbell entry %#x does not map %#x outside guest memory", bell, uint64(shimDoorbellGPA))
	}
}

func TestMarkNoExecute(t *testing.T) {
	const alloc = 8 << 20
	mem := make([]byte, alloc)
	writePageTables(mem, alloc, true)
	markNoExecute(mem, alloc, []gpaRange{{0x100000, 0x102000}},
		[]gpaRange{{0x102000, 0x104000}}, false)
	nx := func(entry uint64) bool {
		return binary.LittleEndian.Uint64(mem[entry:])&pteNoExecute != 0
	}
	if nx(pt0Addr + 0x100*8) {
		t.Error("text page 0x100000 is NX")
	}
	if !nx(pt0Addr + 0x102*8) {
		t.Error("data page 0x102000 is executable")
	}
	if !nx(pt0Addr + 0x10*8) {
		t.Error("boot info page is executable")
	}
	if !nx(pdAddr + 8) {
		t.Error("heap 2 MiB page is executable")
	}

	// --x-exec-heap: only non-executable segments keep NX.
	writePageTables(mem, alloc, true)
	markNoExecute(mem, alloc, []gpaRange{{0x100000, 0x102000}},
		[]gpaRange{{0x102000, 0x104000}}, true)
	if !nx(pt0Addr + 0x102*8) {
		t.Error("x-exec-heap: data page 0x102000 is executable")
	}
	if nx(pt0Addr+0x104*8) || nx(pdAddr+8) {
		t.Error("x-exec-heap: heap is NX")
	}
}

// TestGuestTableSPTInVM runs every spt case of the shared guest table in
// the VM through the syscall shim, with the seccomp filter, and expects
// what solo5-spt gives.
func TestGuestTableSPTInVM(t *testing.T) {
	runGuestTable(t, guests.TargetSPT)
}

func TestShimDoesNotAllocate(t *testing.T) {
	f := newSPTFixture(t)
	f.calls.sys = func(nr uintptr, args [6]uint64, bufs *[6][]byte) uint64 { return 512 }
	f.calls.console = discard{}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := f.syscall(unix.SYS_PREAD64, 7, 0x200000, 512, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.syscall(unix.SYS_WRITE, 1, 0x200000, 100); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("pread64 and console write allocate %v times per call, want 0", allocs)
	}
}

// TestShimBuffersAvoidVMPages expects EFAULT for buffers in the pages an
// spt process has no mapping for, where the VM keeps its GDT and page
// tables, and in the shim's pages, as the kernel returns for unmapped
// memory.
func TestShimBuffersAvoidVMPages(t *testing.T) {
	for _, c := range []struct {
		name string
		nr   uint64
		args []uint64
	}{
		{"clock_gettime into the PML4", unix.SYS_CLOCK_GETTIME, []uint64{1, pml4Addr}},
		{"console write of the page tables", unix.SYS_WRITE, []uint64{1, pt0Addr, 8}},
		{"pwrite64 of the shim's kernel page", unix.SYS_PWRITE64, []uint64{7, shimKernelAddr, 512, 0}},
		{"pread64 into the entry code", unix.SYS_PREAD64, []uint64{7, shimSyscallAddr, 512, 0}},
		{"read across the stack page", unix.SYS_READ, []uint64{8, shimStackAddr - 16, 64}},
	} {
		f := newSPTFixture(t)
		_, ret, err := f.syscall(c.nr, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ret != errnoResult(unix.EFAULT) {
			t.Errorf("%s returned %#x, want -EFAULT", c.name, ret)
		}
		if len(f.kernel) != 0 || f.console.Len() != 0 {
			t.Errorf("%s reached the kernel or the console", c.name)
		}
	}
}

// TestShimSyscallNumberLow32 expects the call in the low 32 bits of RAX,
// as Linux takes it.
func TestShimSyscallNumberLow32(t *testing.T) {
	f := newSPTFixture(t)
	copy(f.mem[0x200000:], "hi")
	halt, ret, err := f.syscall(1<<32|unix.SYS_WRITE, 1, 0x200000, 2)
	if halt != nil || err != nil || ret != 2 || f.console.String() != "hi" {
		t.Errorf("halt %+v, ret %d, error %v, console %q; want a 2-byte write", halt, ret, err, f.console)
	}
}

func TestShimArchPrctlRejectsKernelBase(t *testing.T) {
	f := newSPTFixture(t)
	for _, base := range []uint64{1 << 63, 0xffff800000000000, userSpaceTop} {
		_, ret, err := f.syscall(unix.SYS_ARCH_PRCTL, archSetFS, base)
		if err != nil || ret != errnoResult(unix.EPERM) {
			t.Errorf("base %#x: ret %#x, error %v; want -EPERM", base, ret, err)
		}
	}
	if f.fsBase != 0 {
		t.Errorf("FS base set to %#x", f.fsBase)
	}
}

// TestShimEpollBounds expects Linux's limits: maxevents is an int up to
// INT_MAX/12, and only the events that can be ready need room.
func TestShimEpollBounds(t *testing.T) {
	for _, c := range []struct {
		name      string
		events    uint64
		maxEvents uint64
		want      uint64
	}{
		{"100000 events", 0x200000, 100000, 0},
		{"high bits", 0x200000, 1<<32 | 1, 0},
		{"room for one event at the end", 4<<20 - epollEventSize, 2, 0},
		{"zero", 0x200000, 0, errnoResult(unix.EINVAL)},
		{"negative", 0x200000, 0xffffffff, errnoResult(unix.EINVAL)},
		{"past the end", 4 << 20, 1, errnoResult(unix.EFAULT)},
	} {
		f := newSPTFixture(t)
		f.ret = 0
		_, ret, err := f.syscall(unix.SYS_EPOLL_PWAIT, 5, c.events, c.maxEvents, 0, 0, 8)
		if err != nil || ret != c.want {
			t.Errorf("%s: ret %#x, error %v; want %#x", c.name, ret, err, c.want)
		}
	}
}

func TestSignalStatusSPT(t *testing.T) {
	if got := (&SignalError{Signal: unix.SIGTERM}).ExitStatus(); got != 1 {
		t.Errorf("hvt SIGTERM status %d, want 1", got)
	}
	if got := (&SignalError{Signal: unix.SIGTERM, SPT: true}).ExitStatus(); got != 143 {
		t.Errorf("spt SIGTERM status %d, want 143", got)
	}
}

// TestLimitToGuest maps 3 MiB of a 4 MiB allocation: the second 2 MiB
// page becomes a 4 KiB table whose pages stop at 3 MiB.
func TestLimitToGuest(t *testing.T) {
	const alloc, guest = 4 << 20, 3 << 20
	mem := make([]byte, alloc)
	writePageTables(mem, alloc, true)
	limitToGuest(mem, guest, alloc)
	mapUserPages(mem, alloc, shimStackAddr, shimKernelAddr)
	le := binary.LittleEndian
	if pde := le.Uint64(mem[pdAddr+8:]); pde&^(pteUser|pteWritable|ptePresent) != ptTailAddr {
		t.Fatalf("PD entry for 2 MiB = %#x, want the table at %#x", pde, ptTailAddr)
	}
	lastIn := le.Uint64(mem[ptTailAddr+255*8:]) // 0x2FF000
	if lastIn&^0xFFF != 0x2FF000 || lastIn&(ptePresent|pteUser) != ptePresent|pteUser {
		t.Errorf("page 0x2FF000 entry = %#x, want present and user", lastIn)
	}
	if pte := le.Uint64(mem[ptTailAddr+256*8:]); pte != 0 {
		t.Errorf("page 0x300000, past the guest, entry = %#x, want absent", pte)
	}

	// Below 2 MiB, pages at or past the size go too.
	mem = make([]byte, 2<<20)
	writePageTables(mem, 2<<20, true)
	limitToGuest(mem, 0x180000, 2<<20)
	if pte := le.Uint64(mem[pt0Addr+0x180*8:]); pte != 0 {
		t.Errorf("page 0x180000 entry = %#x, want absent", pte)
	}
	if pte := le.Uint64(mem[pt0Addr+0x17F*8:]); pte&ptePresent == 0 {
		t.Errorf("page 0x17F000 entry = %#x, want present", pte)
	}
}
