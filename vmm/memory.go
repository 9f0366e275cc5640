package vmm

import (
	"fmt"

	"github.com/ntender/ntender/abi"
)

// GuestMemory is the tender's view of guest physical memory. Every access
// the tender makes on behalf of the guest goes through Slice or
// WritableSlice, which check the range against the guest-visible size and
// against host read-only pages. Nothing else in vmm indexes guest memory
// with a guest-supplied address.
type GuestMemory struct {
	mem []byte
	// limit is the guest-visible memory size: guest pointers must lie in
	// [0, limit). The net ring above it is reachable only from the ring
	// code, never through a guest pointer.
	limit uint64
	// readOnly lists the host read-only ranges (loaded segments without
	// PF_W). A host write there would fault in the tender.
	readOnly []gpaRange
}

type gpaRange struct{ start, end uint64 }

// NewGuestMemory returns an accessor over mem that accepts guest addresses
// below limit. limit is clamped to len(mem).
func NewGuestMemory(mem []byte, limit uint64) GuestMemory {
	if limit > uint64(len(mem)) {
		limit = uint64(len(mem))
	}
	return GuestMemory{mem: mem, limit: limit}
}

// Size returns the guest-visible memory size in bytes.
func (m *GuestMemory) Size() uint64 { return m.limit }

// markReadOnly records [start, end) as read-only on the host.
func (m *GuestMemory) markReadOnly(start, end uint64) {
	m.readOnly = append(m.readOnly, gpaRange{start, end})
}

// AccessError is a guest pointer or length that falls outside guest memory
// or, for a range the tender writes, onto a read-only page.
type AccessError struct {
	GPA, Size uint64
	ReadOnly  bool
}

func (e *AccessError) Error() string {
	msg := fmt.Sprintf("Invalid guest access: gpa=%#x, sz=%d", e.GPA, e.Size)
	if e.ReadOnly {
		msg += " (read-only guest memory)"
	}
	return msg
}

// Slice returns the size bytes at guest physical address gpa. The whole
// range must lie below the guest-visible size, and gpa+size must not
// overflow.
// A zero-size range at any gpa below the size is valid and empty.
//
// NOTE: solo5-hvt also rejects a range that ends exactly at the top of
// guest memory, because it requires gpa+size < mem_size. Slice accepts it.
func (m *GuestMemory) Slice(gpa, size uint64) ([]byte, error) {
	if gpa >= m.limit || size > m.limit-gpa {
		return nil, &AccessError{GPA: gpa, Size: size}
	}
	end := gpa + size
	return m.mem[gpa:end:end], nil
}

// WritableSlice is Slice for a range the tender writes into: it also
// rejects ranges that touch host read-only memory.
func (m *GuestMemory) WritableSlice(gpa, size uint64) ([]byte, error) {
	b, err := m.Slice(gpa, size)
	if err != nil {
		return nil, err
	}
	end := gpa + size
	for _, r := range m.readOnly {
		if gpa < r.end && end > r.start {
			return nil, &AccessError{GPA: gpa, Size: size, ReadOnly: true}
		}
	}
	return b, nil
}

// Guest memory sizing constants (solo5-hvt v0.12.1).
const (
	defaultMemory = 512 << 20
	// ringSize is sizeof(struct hvt_ring).
	ringSize = 49280
	// ringReserve is the memory reserved for the ring when a net device
	// is attached: sizeof(struct hvt_ring) rounded up to 2 MiB.
	ringReserve = abi.HVTMemAlign
	// ringMinMemory is the smallest mapping that keeps a ring.
	ringMinMemory = 4 << 20
)

// memoryLayout is the result of sizing guest memory.
type memoryLayout struct {
	// allocSize is the size of the host mapping and of memslot 0.
	allocSize uint64
	// guestSize is the guest-visible memory size in boot info: allocSize
	// minus the ring reservation.
	guestSize uint64
	// ringGPA is the guest physical address of the net ring, or 0.
	ringGPA uint64
	// warnings are non-fatal adjustments, worded as solo5-hvt words them.
	warnings []string
}

// sizeMemory computes the guest memory layout the way solo5-hvt v0.12.1
// does: memMiB (0 means the 512 MiB default) rounded down to 2 MiB with a
// 2 MiB minimum, rejected above 4 GiB, then 2 MiB more for the net ring
// when withRing is set, clamped to 4 GiB.
func sizeMemory(memMiB uint64, withRing bool) (memoryLayout, error) {
	var l memoryLayout

	size := uint64(defaultMemory)
	if memMiB != 0 {
		if memMiB > abi.HVTMaxMem>>20 {
			return l, fmt.Errorf("guest memory size %d MiB exceeds the "+
				"max size %d bytes (use --mem=%d or less)",
				memMiB, uint64(abi.HVTMaxMem), abi.HVTMaxMem>>20)
		}
		size = memMiB << 20
	}

	rounded := size &^ (abi.HVTMemAlign - 1)
	if rounded == 0 {
		rounded = abi.HVTMemAlign
	}
	if rounded != size {
		l.warnings = append(l.warnings,
			fmt.Sprintf("adjusting memory to %d bytes", rounded))
	}

	total := rounded
	if withRing {
		total += ringReserve
		total = (total + abi.HVTMemAlign - 1) &^ (abi.HVTMemAlign - 1)
		if total > abi.HVTMaxMem {
			total = abi.HVTMaxMem
		}
	}
	l.allocSize = total
	l.guestSize = total

	if withRing {
		if total >= ringMinMemory {
			l.ringGPA = total - ringReserve
			l.guestSize = l.ringGPA
		} else {
			l.warnings = append(l.warnings,
				"Not enough guest memory for ring allocation")
		}
	}

	return l, nil
}
