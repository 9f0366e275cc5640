package abi

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// ELF64 constants used by the checks, with the values of the System V
// gABI. Only the fields a Solo5 tender inspects are listed.
const (
	elfHeaderSize   = 64 // sizeof(Elf64_Ehdr)
	elfPhdrSize     = 56 // sizeof(Elf64_Phdr)
	elfClass64      = 2  // ELFCLASS64
	elfData2LSB     = 1  // ELFDATA2LSB
	elfVersion      = 1  // EV_CURRENT
	elfTypeExec     = 2  // ET_EXEC
	elfMachineX8664 = 62 // EM_X86_64

	ptLoad = 1 // PT_LOAD
	ptNote = 4 // PT_NOTE
)

// elfHeader holds the Elf64_Ehdr fields the tender uses.
type elfHeader struct {
	entry     uint64
	phoff     uint64
	phentsize uint16
	phnum     uint16
}

// programHeader is one Elf64_Phdr.
type programHeader struct {
	typ    uint32
	flags  uint32
	offset uint64
	vaddr  uint64
	filesz uint64
	memsz  uint64
	align  uint64
}

// parseELFHeader checks the ELF header the way the Solo5 tenders do
// (ehdr_is_valid): EI_OSABI, EI_ABIVERSION and EI_VERSION are deliberately
// not checked because toolchains do not let users set them. It does not
// check e_entry.
func parseELFHeader(path string, data []byte) (elfHeader, error) {
	var h elfHeader
	if len(data) < elfHeaderSize {
		return h, invalidExecutable(path, "", uint64(len(data)),
			"elf header does not match the expected size (%d != %d)",
			len(data), elfHeaderSize)
	}

	le := binary.LittleEndian
	if string(data[0:4]) != "\x7fELF" {
		return h, invalidExecutable(path, "e_ident", 0,
			"e_ident does not start with the ELF magic 0x7f 'E' 'L' 'F'")
	}
	if data[4] != elfClass64 {
		return h, invalidExecutable(path, "e_ident[EI_CLASS]", uint64(data[4]),
			"e_ident[EI_CLASS] is %d, expected %d (ELFCLASS64)", data[4], elfClass64)
	}
	if data[5] != elfData2LSB {
		return h, invalidExecutable(path, "e_ident[EI_DATA]", uint64(data[5]),
			"e_ident[EI_DATA] is %d, expected %d (ELFDATA2LSB)", data[5], elfData2LSB)
	}

	if v := le.Uint32(data[20:]); v != elfVersion {
		return h, invalidExecutable(path, "e_version", uint64(v),
			"e_version is %d, expected %d (EV_CURRENT)", v, elfVersion)
	}
	if v := le.Uint16(data[52:]); v != elfHeaderSize {
		return h, invalidExecutable(path, "e_ehsize", uint64(v),
			"e_ehsize is %d, expected %d", v, elfHeaderSize)
	}
	h.phnum = le.Uint16(data[56:])
	if h.phnum < 1 {
		return h, invalidExecutable(path, "e_phnum", 0,
			"e_phnum is 0, expected at least one program header")
	}
	h.phentsize = le.Uint16(data[54:])
	if h.phentsize != elfPhdrSize {
		return h, invalidExecutable(path, "e_phentsize", uint64(h.phentsize),
			"e_phentsize is %d, expected %d", h.phentsize, elfPhdrSize)
	}

	if v := le.Uint16(data[16:]); v != elfTypeExec {
		return h, invalidExecutable(path, "e_type", uint64(v),
			"e_type is %d, expected %d (ET_EXEC; position-independent executables are not supported)",
			v, elfTypeExec)
	}
	if v := le.Uint16(data[18:]); v != elfMachineX8664 {
		return h, invalidExecutable(path, "e_machine", uint64(v),
			"e_machine is %d, expected %d (EM_X86_64)", v, elfMachineX8664)
	}

	h.entry = le.Uint64(data[24:])
	h.phoff = le.Uint64(data[32:])
	return h, nil
}

// parseProgramHeaders decodes the whole program header table, which must
// lie inside data.
func parseProgramHeaders(path string, data []byte, h elfHeader) ([]programHeader, error) {
	size := uint64(h.phnum) * elfPhdrSize
	end, carry := bits.Add64(h.phoff, size, 0)
	if carry != 0 || end > uint64(len(data)) {
		return nil, invalidExecutable(path, "e_phoff", h.phoff,
			"program header does not match the expected size (table of %d bytes at offset %#x, file size %d)",
			size, h.phoff, len(data))
	}
	le := binary.LittleEndian
	phdrs := make([]programHeader, h.phnum)
	for i := range phdrs {
		b := data[h.phoff+uint64(i)*elfPhdrSize:]
		phdrs[i] = programHeader{
			typ:    le.Uint32(b[0:]),
			flags:  le.Uint32(b[4:]),
			offset: le.Uint64(b[8:]),
			vaddr:  le.Uint64(b[16:]),
			filesz: le.Uint64(b[32:]),
			memsz:  le.Uint64(b[40:]),
			align:  le.Uint64(b[48:]),
		}
	}
	return phdrs, nil
}

// parseSegments applies the Solo5 elf_load rules (v0.8 and later) that do
// not depend on the guest memory size, in the same order as the tender.
// Only PT_LOAD entries with p_filesz != 0 count. v0.6 and v0.7 binaries
// have no empty PT_LOAD, so the rule accepts them too. It returns the
// segments and kernel_end, the highest aligned segment end.
func parseSegments(path string, data []byte, phdrs []programHeader) ([]Segment, uint64, error) {
	var (
		segments  []Segment
		end       uint64 // e_end in the tender
		lastVaddr uint64
	)
	for i, ph := range phdrs {
		if ph.typ != ptLoad || ph.filesz == 0 {
			continue
		}
		field := func(name string) string { return fmt.Sprintf("phdr[%d].%s", i, name) }

		if ph.vaddr < GuestMinBase {
			return nil, 0, invalidExecutable(path, field("p_vaddr"), ph.vaddr,
				"phdr[%d].p_vaddr %#x is below the guest minimum load address %#x",
				i, ph.vaddr, GuestMinBase)
		}
		// The ELF specification requires PT_LOAD entries sorted by p_vaddr.
		if ph.vaddr < lastVaddr {
			return nil, 0, invalidExecutable(path, field("p_vaddr"), ph.vaddr,
				"phdr[%d].p_vaddr %#x is not in ascending order (previous segment at %#x)",
				i, ph.vaddr, lastVaddr)
		}
		lastVaddr = ph.vaddr

		if ph.align == 0 || ph.align&(ph.align-1) != 0 {
			return nil, 0, invalidExecutable(path, field("p_align"), ph.align,
				"phdr[%d].p_align %#x is not a non-zero power of two", i, ph.align)
		}
		start := ph.vaddr &^ (ph.align - 1)
		if start < GuestMinBase {
			return nil, 0, invalidExecutable(path, field("p_vaddr"), ph.vaddr,
				"phdr[%d].p_vaddr %#x aligned down to p_align %#x is below the guest minimum load address %#x",
				i, ph.vaddr, ph.align, GuestMinBase)
		}
		// Overlapping segments, or two segments sharing a page, would need
		// two protections for one page.
		if start < end {
			return nil, 0, invalidExecutable(path, field("p_vaddr"), ph.vaddr,
				"phdr[%d] starts at %#x, which overlaps the previous segment ending at %#x",
				i, start, end)
		}
		if _, carry := bits.Add64(ph.vaddr, ph.filesz, 0); carry != 0 {
			return nil, 0, invalidExecutable(path, field("p_filesz"), ph.filesz,
				"phdr[%d] program file segment falls outside of valid range (p_vaddr %#x + p_filesz %#x overflows)",
				i, ph.vaddr, ph.filesz)
		}
		if ph.memsz < ph.filesz {
			return nil, 0, invalidExecutable(path, field("p_memsz"), ph.memsz,
				"phdr[%d].p_memsz %#x is smaller than p_filesz %#x", i, ph.memsz, ph.filesz)
		}
		memEnd, carry := bits.Add64(ph.vaddr, ph.memsz, 0)
		if carry != 0 {
			return nil, 0, invalidExecutable(path, field("p_memsz"), ph.memsz,
				"phdr[%d] program memory segment falls outside of valid range (p_vaddr %#x + p_memsz %#x overflows)",
				i, ph.vaddr, ph.memsz)
		}
		alignedEnd, carry := bits.Add64(memEnd, ph.align-1, 0)
		if carry != 0 {
			return nil, 0, invalidExecutable(path, field("p_memsz"), ph.memsz,
				"phdr[%d] program memory segment falls outside of valid range (end %#x aligned up to %#x overflows)",
				i, memEnd, ph.align)
		}
		alignedEnd &^= ph.align - 1
		end = max(end, alignedEnd)

		fileEnd, carry := bits.Add64(ph.offset, ph.filesz, 0)
		if carry != 0 || fileEnd > uint64(len(data)) {
			return nil, 0, invalidExecutable(path, field("p_offset"), ph.offset,
				"phdr[%d] host file segment mismatched (p_offset %#x + p_filesz %#x is beyond the file size %d)",
				i, ph.offset, ph.filesz, len(data))
		}
		if start%PageSize != 0 {
			return nil, 0, invalidExecutable(path, field("p_vaddr"), ph.vaddr,
				"phdr[%d] p_vaddr_start %#x not aligned with architectural page size (%#x)",
				i, start, PageSize)
		}
		if alignedEnd%PageSize != 0 {
			return nil, 0, invalidExecutable(path, field("p_memsz"), ph.memsz,
				"phdr[%d] p_vaddr_end %#x not aligned with architectural page size (%#x)",
				i, alignedEnd, PageSize)
		}
		prot := Prot(ph.flags) & (ProtRead | ProtWrite | ProtExec)
		if prot&ProtWrite != 0 && prot&ProtExec != 0 {
			return nil, 0, invalidExecutable(path, field("p_flags"), uint64(ph.flags),
				"phdr[%d] requests WRITE and EXEC permissions", i)
		}
		segments = append(segments, Segment{
			Index:  i,
			Offset: ph.offset,
			Vaddr:  ph.vaddr,
			Filesz: ph.filesz,
			Memsz:  ph.memsz,
			Start:  start,
			End:    alignedEnd,
			Prot:   prot,
			Data:   data[ph.offset:fileEnd:fileEnd],
		})
	}
	if len(segments) == 0 {
		return nil, 0, invalidExecutable(path, "e_phnum", 0,
			"no PT_LOAD program header with p_filesz > 0")
	}
	return segments, end, nil
}

// invalidExecutable returns a *FormatError of kind ErrInvalidExecutable.
func invalidExecutable(path, field string, value uint64, format string, args ...any) error {
	return &FormatError{
		Path:   path,
		Kind:   ErrInvalidExecutable,
		Field:  field,
		Value:  value,
		Reason: "invalid executable: " + fmt.Sprintf(format, args...),
	}
}
