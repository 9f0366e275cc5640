package vmm

import (
	"encoding/binary"
	"fmt"
)

// KVM exit reasons (KVM_EXIT_* in linux/kvm.h) that the run loop names.
const (
	exitUnknown       = 0
	exitException     = 1
	exitIO            = 2
	exitHypercall     = 3
	exitDebug         = 4
	exitHLT           = 5
	exitMMIO          = 6
	exitIRQWindowOpen = 7
	exitShutdown      = 8
	exitFailEntry     = 9
	exitIntr          = 10
	exitInternalError = 17
)

// Offsets in struct kvm_run (linux/kvm.h, x86_64). The exit-specific data
// is a union that starts at offset 32.
const (
	runExitReason = 8

	runIODirection  = 32 // u8, 1 = OUT
	runIOSize       = 33 // u8
	runIOPort       = 34 // u16
	runIOCount      = 36 // u32
	runIODataOffset = 40 // u64, offset of the data from the start of kvm_run

	runMMIOPhysAddr = 32 // u64
	runMMIOData     = 40 // [8]u8
	runMMIOLen      = 48 // u32
	runMMIOIsWrite  = 52 // u8

	runFailEntryReason = 32 // u64 hardware_entry_failure_reason
	runInternalSuberr  = 32 // u32 suberror

	// kvmRunMinSize is sizeof(struct kvm_run) in the Linux 6.x UAPI.
	kvmRunMinSize = 2352

	ioDirectionOut = 1
)

// exitReasonName returns the KVM_EXIT_* name of an exit reason.
func exitReasonName(reason uint32) string {
	switch reason {
	case exitUnknown:
		return "UNKNOWN"
	case exitException:
		return "EXCEPTION"
	case exitIO:
		return "IO"
	case exitHypercall:
		return "HYPERCALL"
	case exitDebug:
		return "DEBUG"
	case exitHLT:
		return "HLT"
	case exitMMIO:
		return "MMIO"
	case exitIRQWindowOpen:
		return "IRQ_WINDOW_OPEN"
	case exitShutdown:
		return "SHUTDOWN"
	case exitFailEntry:
		return "FAIL_ENTRY"
	case exitIntr:
		return "INTR"
	case exitInternalError:
		return "INTERNAL_ERROR"
	}
	return "unknown"
}

// Exit is a decoded KVM exit: the reason and the fields of the union
// member that reason selects.
type Exit struct {
	Reason uint32

	// KVM_EXIT_IO. IOValue is the 32-bit value of a 4-byte OUT and is 0
	// for any other access.
	IODirection uint8
	IOSize      uint8
	IOPort      uint16
	IOCount     uint32
	IOValue     uint32

	// KVM_EXIT_MMIO.
	MMIOAddr    uint64
	MMIOLen     uint32
	MMIOIsWrite bool
	// MMIOData is the value of a write of up to 8 bytes, little-endian.
	MMIOData uint64

	// KVM_EXIT_FAIL_ENTRY.
	FailEntryReason uint64

	// KVM_EXIT_INTERNAL_ERROR.
	Suberror uint32
}

// decodeExit reads the exit reason and its data from a kvm_run area. It
// treats run as untrusted: a data offset pointing outside run is an error,
// never a panic.
func decodeExit(run []byte) (Exit, error) {
	var e Exit
	if len(run) < 56 {
		return e, fmt.Errorf("kvm_run area is %d bytes, too small", len(run))
	}

	le := binary.LittleEndian
	e.Reason = le.Uint32(run[runExitReason:])

	switch e.Reason {
	case exitIO:
		e.IODirection = run[runIODirection]
		e.IOSize = run[runIOSize]
		e.IOPort = le.Uint16(run[runIOPort:])
		e.IOCount = le.Uint32(run[runIOCount:])
		if e.IODirection == ioDirectionOut && e.IOSize == 4 {
			off := le.Uint64(run[runIODataOffset:])
			if off > uint64(len(run)) || uint64(len(run))-off < 4 {
				return e, fmt.Errorf("KVM_EXIT_IO data offset %#x is "+
					"outside the %d-byte kvm_run area", off, len(run))
			}
			e.IOValue = le.Uint32(run[off:])
		}
	case exitMMIO:
		e.MMIOAddr = le.Uint64(run[runMMIOPhysAddr:])
		e.MMIOLen = le.Uint32(run[runMMIOLen:])
		e.MMIOData = le.Uint64(run[runMMIOData:])
		e.MMIOIsWrite = run[runMMIOIsWrite] != 0
	case exitFailEntry:
		e.FailEntryReason = le.Uint64(run[runFailEntryReason:])
	case exitInternalError:
		e.Suberror = le.Uint32(run[runInternalSuberr:])
	}

	return e, nil
}
