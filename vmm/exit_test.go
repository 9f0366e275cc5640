package vmm

import (
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// ioExit returns a synthetic kvm_run page for a port I/O exit whose data
// (value, as size bytes) lies at offset 4096-64 of the page.
func ioExit(dir, size uint8, port uint16, value uint32) []byte {
	run := make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint32(run[runExitReason:], exitIO)
	run[runIODirection] = dir
	run[runIOSize] = size
	le.PutUint16(run[runIOPort:], port)
	le.PutUint32(run[runIOCount:], 1)
	const dataOff = 4096 - 64
	le.PutUint64(run[runIODataOffset:], dataOff)
	le.PutUint32(run[dataOff:], value)
	return run
}

func TestDecodeExitIO(t *testing.T) {
	e, err := decodeExit(ioExit(ioDirectionOut, 4, 0x502, 0x12345678))
	if err != nil {
		t.Fatalf("decodeExit: %v", err)
	}
	if e.Reason != exitIO {
		t.Errorf("Reason = %d, want %d", e.Reason, exitIO)
	}
	if e.IOPort != 0x502 {
		t.Errorf("IOPort = %#x, want 0x502", e.IOPort)
	}
	if e.IOValue != 0x12345678 {
		t.Errorf("IOValue = %#x, want 0x12345678", e.IOValue)
	}
	if e.IODirection != ioDirectionOut || e.IOSize != 4 || e.IOCount != 1 {
		t.Errorf("direction/size/count = %d/%d/%d, want 1/4/1",
			e.IODirection, e.IOSize, e.IOCount)
	}
}

func TestDecodeExitDataOffsetOutside(t *testing.T) {
	for _, off := range []uint64{4093, 4096, 1 << 63, ^uint64(0)} {
		run := ioExit(ioDirectionOut, 4, 0x501, 0)
		binary.LittleEndian.PutUint64(run[runIODataOffset:], off)
		if _, err := decodeExit(run); err == nil {
			t.Errorf("data offset %#x: no error", off)
		}
	}
}

func TestDecodeExitShortRun(t *testing.T) {
	if _, err := decodeExit(make([]byte, 40)); err == nil {
		t.Error("40-byte kvm_run: no error")
	}
}

func TestDecodeExitMMIO(t *testing.T) {
	run := make([]byte, 4096)
	le := binary.LittleEndian
	le.PutUint32(run[runExitReason:], exitMMIO)
	le.PutUint64(run[runMMIOPhysAddr:], 0x101000)
	le.PutUint32(run[runMMIOLen:], 4)
	run[runMMIOIsWrite] = 1

	e, err := decodeExit(run)
	if err != nil {
		t.Fatalf("decodeExit: %v", err)
	}
	if e.MMIOAddr != 0x101000 || e.MMIOLen != 4 || !e.MMIOIsWrite {
		t.Errorf("MMIO = %#x/%d/%v, want 0x101000/4/true",
			e.MMIOAddr, e.MMIOLen, e.MMIOIsWrite)
	}
}

// reasonExit returns a kvm_run page with only the exit reason and the
// u64 at offset 32 (the union) set.
func reasonExit(reason uint32, union uint64) []byte {
	run := make([]byte, 4096)
	binary.LittleEndian.PutUint32(run[runExitReason:], reason)
	binary.LittleEndian.PutUint64(run[32:], union)
	return run
}

func TestHandleExitMessages(t *testing.T) {
	h := newTestCalls(t, 4<<20)
	cases := []struct {
		name string
		run  []byte
		want string
	}{
		{"fail entry", reasonExit(exitFailEntry, 0x80000021),
			"KVM: entry failure: hw_entry_failure_reason=0x80000021"},
		{"internal error", reasonExit(exitInternalError, 1),
			"KVM: internal error exit: suberror=0x1"},
		{"shutdown", reasonExit(exitShutdown, 0),
			"KVM: unhandled exit: exit_reason=0x8"},
		{"hlt", reasonExit(exitHLT, 0),
			"KVM: unhandled exit: exit_reason=0x5"},
		{"mmio write inside memory", mmioWrite(0x100040),
			"host/guest translation fault"},
		{"mmio write outside memory", mmioWrite(16 << 30),
			"KVM: unhandled exit: exit_reason=0x6"},
		{"port in", ioExit(0, 4, 0x501, 0),
			"Invalid guest port access: port=0x501"},
		{"port size 1", ioExit(ioDirectionOut, 1, 0x501, 0),
			"Invalid guest port access: port=0x501"},
		{"kick port without ring", ioExit(ioDirectionOut, 4, 0x600, 0),
			"Invalid guest port access: port=0x600"},
		{"port below base", ioExit(ioDirectionOut, 4, 0x4ff, 0),
			"Invalid guest port access: port=0x4ff"},
		{"hypercall 0", ioExit(ioDirectionOut, 4, 0x500, 0x20000),
			"Invalid guest hypercall: num=0"},
		{"hypercall 9", ioExit(ioDirectionOut, 4, 0x509, 0x20000),
			"Invalid guest port access: port=0x509"},
		{"block without device", ioExit(ioDirectionOut, 4, 0x504, 0x20000),
			"Invalid guest hypercall: num=4"},
		{"net without device", ioExit(ioDirectionOut, 4, 0x507, 0x20000),
			"Invalid guest hypercall: num=7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			halt, err := handleExit(h, c.run, 4<<20)
			if halt != nil {
				t.Fatalf("halt = %+v, want an error", halt)
			}
			ee, ok := err.(*ExitError)
			if !ok {
				t.Fatalf("error = %v (%T), want *ExitError", err, err)
			}
			if !strings.Contains(ee.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", ee, c.want)
			}
			wantReason := binary.LittleEndian.Uint32(c.run[runExitReason:])
			if ee.Reason != wantReason {
				t.Errorf("Reason = %d, want %d", ee.Reason, wantReason)
			}
		})
	}
}

func mmioWrite(gpa uint64) []byte { return mmioExit(gpa, 4, true, 0) }

// mmioExit returns a kvm_run area for an MMIO access of size bytes at gpa
// with data (little-endian) as the written value.
func mmioExit(gpa uint64, size uint32, write bool, data uint64) []byte {
	run := reasonExit(exitMMIO, gpa)
	binary.LittleEndian.PutUint32(run[runMMIOLen:], size)
	binary.LittleEndian.PutUint64(run[runMMIOData:], data)
	if write {
		run[runMMIOIsWrite] = 1
	}
	return run
}

// doorbellExit returns the exit of the shim's write of system call nr to
// the doorbell.
func doorbellExit(nr uint64) []byte { return mmioExit(shimDoorbellGPA, 8, true, nr) }

func TestHandleExitIntrContinues(t *testing.T) {
	h := newTestCalls(t, 4<<20)
	halt, err := handleExit(h, reasonExit(exitIntr, 0), 4<<20)
	if halt != nil || err != nil {
		t.Errorf("handleExit(INTR) = %v, %v; want nil, nil", halt, err)
	}
}

// TestKVMLayouts checks the mirrored kernel structures against the sizes
// and offsets of the Linux UAPI (linux/kvm.h, x86_64).
func TestKVMLayouts(t *testing.T) {
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(kvm_ioeventfd)", unsafe.Sizeof(kvmIoeventfdArgs{}), 64},
		{"kvm_ioeventfd.addr", unsafe.Offsetof(kvmIoeventfdArgs{}.Addr), 8},
		{"kvm_ioeventfd.len", unsafe.Offsetof(kvmIoeventfdArgs{}.Len), 16},
		{"kvm_ioeventfd.fd", unsafe.Offsetof(kvmIoeventfdArgs{}.Fd), 20},
		{"kvm_ioeventfd.flags", unsafe.Offsetof(kvmIoeventfdArgs{}.Flags), 24},
		{"sizeof(kvm_cpuid2)", unsafe.Sizeof(kvmCPUID2Header{}), 8},
		{"sizeof(kvm_cpuid_entry2)", unsafe.Sizeof(kvm.CPUIDEntry2{}), kvmCPUIDEntrySize},
		{"sizeof(kvm_regs)", unsafe.Sizeof(kvm.Regs{}), 144},
		{"kvm_regs.rip", unsafe.Offsetof(kvm.Regs{}.RIP), 128},
		{"sizeof(kvm_sregs)", unsafe.Sizeof(kvm.Sregs{}), 312},
		{"sizeof(kvm_segment)", unsafe.Sizeof(kvm.Segment{}), 24},
		{"kvm_sregs.gdt", unsafe.Offsetof(kvm.Sregs{}.GDT), 192},
		{"kvm_sregs.cr0", unsafe.Offsetof(kvm.Sregs{}.CR0), 224},
		{"kvm_sregs.efer", unsafe.Offsetof(kvm.Sregs{}.EFER), 264},
		{"kvm_run.exit_reason", runExitReason, 8},
		{"kvm_run.io.direction", runIODirection, 32},
		{"kvm_run.io.size", runIOSize, 33},
		{"kvm_run.io.port", runIOPort, 34},
		{"kvm_run.io.count", runIOCount, 36},
		{"kvm_run.io.data_offset", runIODataOffset, 40},
		{"kvm_run.mmio.data", runMMIOData, 40},
		{"kvm_run.mmio.len", runMMIOLen, 48},
		{"kvm_run.mmio.is_write", runMMIOIsWrite, 52},
		{"sizeof(kvm_run)", kvmRunMinSize, 2352},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if kvmRunIoctl != 0xAE80 || kvmGetRegsIoctl != 0x8090AE81 ||
		kvmIoeventfd != 0x4040AE79 {
		t.Errorf("ioctl numbers %#x %#x %#x, want 0xae80 0x8090ae81 "+
			"0x4040ae79", kvmRunIoctl, kvmGetRegsIoctl, kvmIoeventfd)
	}
}

func TestRunFailureRetriesOnlyEINTR(t *testing.T) {
	rip := func() uint64 { return 0x100020 }
	if err := runFailure(unix.EINTR, rip); err != nil {
		t.Errorf("EINTR: %v, want a retry", err)
	}
	err := runFailure(unix.EAGAIN, rip)
	if err == nil || !strings.Contains(err.Error(), "ioctl (RUN) failed") {
		t.Errorf("EAGAIN: %v, want the KVM_RUN failure", err)
	}
	err = runFailure(unix.EFAULT, rip)
	if err == nil || !strings.Contains(err.Error(), "rip=0x100020") {
		t.Errorf("EFAULT: %v, want the translation fault with rip", err)
	}
}
