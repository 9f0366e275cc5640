package vmm

import (
	"encoding/binary"
	"fmt"

	"github.com/bobuhiro11/gokvm/kvm"

	"github.com/ntender/ntender/abi"
)

// Guest physical addresses of the structures the tender builds below the
// unikernel, as solo5-hvt v0.9 and later place them. Older guests replace
// the GDT and page tables only after they start, so the newer layout suits
// them too.
const (
	gdtAddr  = 0x1000
	pml4Addr = 0x2000
	pdptAddr = 0x3000
	pdAddr   = 0x4000 // four page directories, 0x4000-0x7FFF
	pt0Addr  = 0x8000 // 4 KiB page table for GPA 0-2 MiB
	// ptTailAddr is the 4 KiB page table of an spt guest's last 2 MiB
	// page when the guest memory size ends inside it.
	ptTailAddr = 0x9000

	// Page table entry bits: present, writable, 2 MiB page.
	ptePresent  = 0x1
	pteWritable = 0x2
	ptePageSize = 0x80

	// gdtCode and gdtData are the boot GDT's 64-bit code segment (0x08)
	// and data segment (0x10) descriptors.
	gdtCode = 0x00AF99000000FFFF
	gdtData = 0x00CF93000000FFFF

	// Control register values at entry.
	cr0PE   = 1 << 0
	cr0NE   = 1 << 5
	cr0WP   = 1 << 16
	cr0PG   = 1 << 31
	cr4PAE  = 1 << 5
	cr4OSFX = 1 << 9  // OSFXSR: SSE enabled
	cr4OSXE = 1 << 10 // OSXMMEXCPT: SSE exceptions enabled
	eferLME = 1 << 8
	eferLMA = 1 << 10
)

// writeGDT writes the three-entry boot GDT (null, code, data).
// gdtSize is the size of the boot GDT: null, code and data descriptors.
const gdtSize = 3 * 8

func writeGDT(mem []byte) {
	le := binary.LittleEndian
	le.PutUint64(mem[gdtAddr:], 0)
	le.PutUint64(mem[gdtAddr+8:], gdtCode)
	le.PutUint64(mem[gdtAddr+16:], gdtData)
}

// writePageTables identity-maps [0, allocSize) in long mode: 4 KiB pages
// for the first 2 MiB and 2 MiB pages above. Pages below 0x10000 are not
// present so that NULL dereferences fault. 0x10000-0xFFFFF (boot info,
// manifest, command line) is read-only to the guest unless bootWritable
// is set, as an spt process has it writable. allocSize must be a multiple
// of 2 MiB and at most 4 GiB.
func writePageTables(mem []byte, allocSize uint64, bootWritable bool) {
	le := binary.LittleEndian
	le.PutUint64(mem[pml4Addr:], pdptAddr|ptePresent|pteWritable)

	// All four PDPT entries are present whatever the memory size, as
	// solo5-hvt v0.9+ builds them. Unused PD entries stay zero.
	for i := uint64(0); i < 4; i++ {
		pd := pdAddr + i*0x1000
		le.PutUint64(mem[pdptAddr+i*8:], pd|ptePresent|pteWritable)
	}

	le.PutUint64(mem[pdAddr:], pt0Addr|ptePresent|pteWritable)
	for gpa := uint64(abi.HVTMemAlign); gpa < allocSize; gpa += abi.HVTMemAlign {
		entry := pdAddr + (gpa>>21)*8
		le.PutUint64(mem[entry:], gpa|ptePresent|pteWritable|ptePageSize)
	}

	for page := uint64(0x10); page < 512; page++ {
		gpa := page << 12
		flags := uint64(ptePresent)
		if gpa >= abi.GuestMinBase || bootWritable {
			flags |= pteWritable
		}
		le.PutUint64(mem[pt0Addr+page*8:], gpa|flags)
	}
}

// limitToGuest unmaps what writePageTables mapped at or above guestSize,
// so that the guest faults there as an spt process does above its memory.
// A 2 MiB page that guestSize ends inside becomes a 4 KiB page table at
// ptTailAddr that maps only its pages below guestSize. guestSize must be
// a multiple of 4 KiB and at most allocSize.
func limitToGuest(mem []byte, guestSize, allocSize uint64) {
	le := binary.LittleEndian
	for page := uint64(0x10); page < 512; page++ {
		if page<<12 >= guestSize {
			le.PutUint64(mem[pt0Addr+page*8:], 0)
		}
	}
	for gpa := uint64(abi.HVTMemAlign); gpa < allocSize; gpa += abi.HVTMemAlign {
		entry := pdAddr + (gpa>>21)*8
		switch {
		case gpa >= guestSize:
			le.PutUint64(mem[entry:], 0)
		case gpa+abi.HVTMemAlign > guestSize:
			for i := uint64(0); i < 512; i++ {
				var pte uint64
				if page := gpa + i<<12; page < guestSize {
					pte = page | ptePresent | pteWritable
				}
				le.PutUint64(mem[ptTailAddr+i*8:], pte)
			}
			le.PutUint64(mem[entry:], ptTailAddr|ptePresent|pteWritable)
		}
	}
}

// pteNoExecute is the NX bit of a page table entry, honoured when
// EFER.NXE is set.
const pteNoExecute = 1 << 63

// markNoExecute sets NX on every leaf entry writePageTables wrote, except
// for pages that overlap an exec range. With execByDefault, pages are also
// executable unless they lie inside a noExec range. A 2 MiB page is one
// unit: any executable part makes all of it executable.
func markNoExecute(mem []byte, allocSize uint64, exec, noExec []gpaRange,
	execByDefault bool) {
	executable := func(start, end uint64) bool {
		for _, r := range exec {
			if start < r.end && end > r.start {
				return true
			}
		}
		if !execByDefault {
			return false
		}
		for _, r := range noExec {
			if start >= r.start && end <= r.end {
				return false
			}
		}
		return true
	}

	le := binary.LittleEndian
	for page := uint64(0x10); page < 512; page++ {
		gpa := page << 12
		if !executable(gpa, gpa+abi.PageSize) {
			entry := mem[pt0Addr+page*8:]
			le.PutUint64(entry, le.Uint64(entry)|pteNoExecute)
		}
	}
	for gpa := uint64(abi.HVTMemAlign); gpa < allocSize; gpa += abi.HVTMemAlign {
		if !executable(gpa, gpa+abi.HVTMemAlign) {
			entry := mem[pdAddr+(gpa>>21)*8:]
			le.PutUint64(entry, le.Uint64(entry)|pteNoExecute)
		}
	}
}

// markReadOnly clears the writable bit of every leaf entry writePageTables
// wrote whose page lies inside one of ranges, so that a guest write there
// faults in the guest. A 2 MiB page that is only partly inside stays
// writable; the host mapping still protects that part.
func markReadOnly(mem []byte, allocSize uint64, ranges []gpaRange) {
	inside := func(start, end uint64) bool {
		for _, r := range ranges {
			if start >= r.start && end <= r.end {
				return true
			}
		}
		return false
	}
	le := binary.LittleEndian
	clearW := func(entry uint64) {
		le.PutUint64(mem[entry:], le.Uint64(mem[entry:])&^pteWritable)
	}
	for page := uint64(0x10); page < 512; page++ {
		if gpa := page << 12; inside(gpa, gpa+abi.PageSize) {
			clearW(pt0Addr + page*8)
		}
	}
	for gpa := uint64(abi.HVTMemAlign); gpa < allocSize; gpa += abi.HVTMemAlign {
		if inside(gpa, gpa+abi.HVTMemAlign) {
			clearW(pdAddr + (gpa>>21)*8)
		}
	}
}

// bootArea holds the guest physical addresses of the boot info, the
// manifest and the command line.
type bootArea struct {
	bootInfo, manifest, cmdline uint64
}

// placeBootArea lays out the 56-byte boot info at 0x10000, the manifest
// after it and the command line buffer after the manifest, as solo5-hvt
// v0.11+ does. Guests up to v0.10 read a 40-byte prefix of the same boot
// info and find the rest through its pointers.
func placeBootArea(manifestSize int) (bootArea, error) {
	a := bootArea{bootInfo: abi.HVTBootInfoAddr}
	a.manifest = a.bootInfo + abi.HVTBootInfoSize
	a.cmdline = a.manifest + uint64(manifestSize)
	if a.cmdline+abi.CmdlineSize > abi.GuestMinBase {
		return a, fmt.Errorf("manifest of %d bytes does not fit below %#x",
			manifestSize, abi.GuestMinBase)
	}
	return a, nil
}

// writeBootArea writes boot info, manifest and the NUL-terminated command
// line into guest memory.
func writeBootArea(mem []byte, a bootArea, bi abi.HVTBootInfo,
	manifest []byte, cmdline string) error {
	if len(cmdline) > abi.CmdlineSize-1 {
		return abi.ErrCmdlineTooLong
	}
	bi.Cmdline = a.cmdline
	bi.Mft = a.manifest
	b, err := bi.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encoding boot info: %w", err)
	}
	copy(mem[a.bootInfo:], b)
	copy(mem[a.manifest:], manifest)

	buf := mem[a.cmdline : a.cmdline+abi.CmdlineSize]
	clear(buf)
	copy(buf, cmdline)
	return nil
}

// loadSegments copies each loadable segment into guest memory, zeroes its
// tail up to p_memsz and records the range a host mprotect will make
// read-only. It returns the ranges to protect. Segment bounds are checked
// against len(mem) again, because a panic here would take the tender down.
func loadSegments(mem []byte, segs []abi.Segment) ([]segmentProt, error) {
	size := uint64(len(mem))
	var prots []segmentProt
	for i, s := range segs {
		if s.Start > s.End || s.End > size || s.Vaddr < s.Start ||
			s.Memsz < s.Filesz || s.Vaddr+s.Memsz > s.End ||
			uint64(len(s.Data)) != s.Filesz {
			return nil, fmt.Errorf("segment %d [%#x, %#x) does not fit "+
				"guest memory of %d bytes", i, s.Start, s.End, size)
		}
		copy(mem[s.Vaddr:], s.Data)
		clear(mem[s.Vaddr+s.Filesz : s.Vaddr+s.Memsz])
		prots = append(prots, segmentProt{
			start:    s.Start,
			end:      s.End,
			writable: s.Prot&abi.ProtWrite != 0,
		})
	}
	return prots, nil
}

// segmentProt is the host protection of one loaded segment. Executable
// segments become read-only, because the host never executes guest memory.
type segmentProt struct {
	start, end uint64
	writable   bool
}

// initialSregs returns the special registers for 64-bit long mode with the
// boot GDT, as solo5-hvt sets them.
func initialSregs(s kvm.Sregs) kvm.Sregs {
	code := kvm.Segment{
		Base: 0, Limit: 0xFFFFFFFF, Selector: 0x08,
		Typ: 9, Present: 1, DPL: 0, DB: 0, S: 1, L: 1, G: 1,
	}
	data := kvm.Segment{
		Base: 0, Limit: 0xFFFFFFFF, Selector: 0x10,
		Typ: 3, Present: 1, DPL: 0, DB: 1, S: 1, L: 0, G: 1,
	}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvm.Segment{Typ: 11, Present: 1}
	s.LDT = kvm.Segment{Unusable: 1}
	s.GDT = kvm.Descriptor{Base: gdtAddr, Limit: gdtSize - 1}
	s.IDT = kvm.Descriptor{}
	s.CR0 = cr0PE | cr0NE | cr0WP | cr0PG
	s.CR2 = 0
	s.CR3 = pml4Addr
	s.CR4 = cr4PAE | cr4OSFX | cr4OSXE
	s.CR8 = 0
	s.EFER = eferLME | eferLMA
	return s
}

// initialRegs returns the general registers at entry: RIP at the ELF
// entry, the stack at the top of guest memory with (RSP+8) 16-byte
// aligned, RDI pointing to the boot info, interrupts off.
func initialRegs(entry, guestSize uint64) kvm.Regs {
	return kvm.Regs{
		RIP:    entry,
		RSP:    guestSize - 8,
		RDI:    abi.HVTBootInfoAddr,
		RFLAGS: 0x2,
	}
}
