package vmm

import (
	"errors"
	"strings"
	"testing"
)

func TestSizeMemory(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		memMiB    uint64
		ring      bool
		alloc     uint64
		guest     uint64
		ringGPA   uint64
		adjusting bool
		noRing    bool
	}{
		{memMiB: 0, alloc: 512 * mib, guest: 512 * mib},
		{memMiB: 4, alloc: 4 * mib, guest: 4 * mib},
		{memMiB: 5, alloc: 4 * mib, guest: 4 * mib, adjusting: true},
		{memMiB: 1, alloc: 2 * mib, guest: 2 * mib, adjusting: true},
		{memMiB: 4096, alloc: 4096 * mib, guest: 4096 * mib},
		{memMiB: 512, ring: true, alloc: 514 * mib, guest: 512 * mib, ringGPA: 512 * mib},
		{memMiB: 4096, ring: true, alloc: 4096 * mib, guest: 4094 * mib, ringGPA: 4094 * mib},
		{memMiB: 2, ring: true, alloc: 4 * mib, guest: 2 * mib, ringGPA: 2 * mib},
		{memMiB: 3, ring: true, alloc: 4 * mib, guest: 2 * mib, ringGPA: 2 * mib, adjusting: true},
	}
	for _, c := range cases {
		l, err := sizeMemory(c.memMiB, c.ring)
		if err != nil {
			t.Errorf("sizeMemory(%d, %v): %v", c.memMiB, c.ring, err)
			continue
		}
		if l.allocSize != c.alloc || l.guestSize != c.guest || l.ringGPA != c.ringGPA {
			t.Errorf("sizeMemory(%d, %v) = alloc %#x guest %#x ring %#x, "+
				"want %#x %#x %#x", c.memMiB, c.ring, l.allocSize, l.guestSize,
				l.ringGPA, c.alloc, c.guest, c.ringGPA)
		}
		adjusting := len(l.warnings) > 0 &&
			strings.HasPrefix(l.warnings[0], "adjusting memory to ")
		if adjusting != c.adjusting {
			t.Errorf("sizeMemory(%d, %v) warnings = %q, want adjusting=%v",
				c.memMiB, c.ring, l.warnings, c.adjusting)
		}
	}
}

func TestSizeMemoryTooLarge(t *testing.T) {
	for _, memMiB := range []uint64{4097, 1 << 40, ^uint64(0)} {
		_, err := sizeMemory(memMiB, false)
		if err == nil {
			t.Errorf("sizeMemory(%d): no error", memMiB)
			continue
		}
		if !strings.Contains(err.Error(), "exceeds the max size 4294967296 bytes") {
			t.Errorf("sizeMemory(%d) error = %q", memMiB, err)
		}
	}
}

func TestGuestMemorySlice(t *testing.T) {
	const size = 0x10000
	m := NewGuestMemory(make([]byte, size+0x2000), size)
	ok := []struct{ gpa, n uint64 }{
		{0, 0}, {0, size}, {size - 1, 1}, {0x1000, 0x1000}, {size - 1, 0},
	}
	for _, c := range ok {
		b, err := m.Slice(c.gpa, c.n)
		if err != nil {
			t.Errorf("Slice(%#x, %d): %v", c.gpa, c.n, err)
			continue
		}
		if uint64(len(b)) != c.n || uint64(cap(b)) != c.n {
			t.Errorf("Slice(%#x, %d) has len %d cap %d", c.gpa, c.n, len(b), cap(b))
		}
	}

	bad := []struct{ gpa, n uint64 }{
		{size, 0}, {size, 1}, {size - 1, 2}, {0, size + 1},
		{1, ^uint64(0)}, {^uint64(0), 1}, {^uint64(0), 0},
		{size + 0x1000, 1}, // inside the mapping, above the guest size
	}
	for _, c := range bad {
		_, err := m.Slice(c.gpa, c.n)
		var ae *AccessError
		if !errors.As(err, &ae) {
			t.Errorf("Slice(%#x, %d) = %v, want an *AccessError", c.gpa, c.n, err)
			continue
		}
		if ae.GPA != c.gpa || ae.Size != c.n {
			t.Errorf("AccessError = %+v, want gpa %#x size %d", ae, c.gpa, c.n)
		}
	}
}

func TestGuestMemoryWritableSlice(t *testing.T) {
	m := NewGuestMemory(make([]byte, 0x10000), 0x10000)
	m.markReadOnly(0x4000, 0x6000)
	for _, c := range []struct {
		gpa, n uint64
		ok     bool
	}{
		{0x3000, 0x1000, true},
		{0x3000, 0x1001, false},
		{0x5FFF, 1, false},
		{0x6000, 0x100, true},
		{0x4000, 0, true},
	} {
		_, err := m.WritableSlice(c.gpa, c.n)
		if (err == nil) != c.ok {
			t.Errorf("WritableSlice(%#x, %#x) error = %v, want ok=%v", c.gpa, c.n, err, c.ok)
		}
		if _, err := m.Slice(c.gpa, c.n); err != nil {
			t.Errorf("Slice(%#x, %#x) of read-only memory: %v", c.gpa, c.n, err)
		}
	}
}
