package abi

import (
	"encoding/binary"
)

// This file builds synthetic Solo5 ELF files for the tests. The layout
// mimics what the Solo5 toolchain produces (see testSpec), and the
// mutators patch single fields so that each bad file differs from a good
// one in one place.

// testSegment is one program header of a synthetic file. build places
// data in the file after the headers and notes, unless offset is non-zero,
// in which case offset becomes p_offset and no data is written.
type testSegment struct {
	typ    uint32
	flags  uint32
	vaddr  uint64
	filesz uint64
	memsz  uint64
	align  uint64
	offset uint64
	data   []byte // file contents, padded with 0xCC up to filesz
}

// testSpec describes a synthetic file: program headers in order, and
// notes, each becoming its own PT_NOTE after the segments.
type testSpec struct {
	entry    uint64
	segments []testSegment
	notes    [][]byte
}

const testEntry = 0x100020

// goodSpec returns the layout of a Solo5 v0.8+ hvt binary: text (R+X),
// rodata (R), data (RW), an empty tdata at vaddr 0, bss only (filesz 0),
// then the OpenBSD, ABI1 and MFT1 notes.
func goodSpec(target Target, version uint32, devices ...ManifestEntry) testSpec {
	return testSpec{
		entry: testEntry,
		segments: []testSegment{
			{typ: ptLoad, flags: 5, vaddr: 0x100000, filesz: 0x100, memsz: 0x100, align: 0x1000},
			{typ: ptLoad, flags: 4, vaddr: 0x101000, filesz: 0x80, memsz: 0x80, align: 0x1000},
			{typ: ptLoad, flags: 6, vaddr: 0x102000, filesz: 0x40, memsz: 0x1000, align: 0x1000},
			{typ: ptLoad, flags: 4, vaddr: 0, filesz: 0, memsz: 0, align: 0x1000},
			{typ: ptLoad, flags: 6, vaddr: 0x103000, filesz: 0, memsz: 0x5000, align: 0x1000},
		},
		notes: [][]byte{
			openBSDNote(),
			abi1Note(target, version),
			manifestNote(devices...),
		},
	}
}

// v1Spec returns the layout of a Solo5 v0.6/v0.7 hvt binary: R+X text
// and one RW data+bss segment, with ABI version 1.
func v1Spec(devices ...ManifestEntry) testSpec {
	return testSpec{
		entry: testEntry,
		segments: []testSegment{
			{typ: ptLoad, flags: 5, vaddr: 0x100000, filesz: 0x1200, memsz: 0x1200, align: 0x1000},
			{typ: ptLoad, flags: 6, vaddr: 0x102000, filesz: 0x40, memsz: 0x4000, align: 0x1000},
		},
		notes: [][]byte{
			abi1Note(TargetHVT, 1),
			manifestNote(devices...),
		},
	}
}

// solo5NoteHeader returns an Elf64_Nhdr for a "Solo5" note followed by the
// padded name.
func solo5NoteHeader(typ, descsz uint32) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 6)
	binary.LittleEndian.PutUint32(b[4:], descsz)
	binary.LittleEndian.PutUint32(b[8:], typ)
	copy(b[12:], "Solo5")
	return b
}

func abi1Note(target Target, version uint32) []byte {
	b := solo5NoteHeader(NoteTypeABI1, 16)
	b = binary.LittleEndian.AppendUint32(b, uint32(target))
	b = binary.LittleEndian.AppendUint32(b, version)
	return append(b, make([]byte, 8)...)
}

func openBSDNote() []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], 8)
	binary.LittleEndian.PutUint32(b[4:], 4)
	binary.LittleEndian.PutUint32(b[8:], 1)
	copy(b[12:], "OpenBSD")
	return b
}

// manifestNote returns an MFT1 note with the reserved entry 0 followed by
// devices.
func manifestNote(devices ...ManifestEntry) []byte {
	entries := append([]ManifestEntry{{Type: DeviceReservedFirst}}, devices...)
	mft := make([]byte, ManifestHeaderSize+len(entries)*ManifestEntrySize)
	binary.LittleEndian.PutUint32(mft[0:], ManifestVersion)
	binary.LittleEndian.PutUint32(mft[4:], uint32(len(entries)))
	for i, e := range entries {
		b := mft[ManifestHeaderSize+i*ManifestEntrySize:]
		copy(b[EntryName:EntryName+ManifestNameSize-1], e.Name)
		binary.LittleEndian.PutUint32(b[EntryType:], uint32(e.Type))
	}
	b := solo5NoteHeader(NoteTypeManifest, uint32(4+len(mft)))
	b = append(b, 0, 0, 0, 0)
	return append(b, mft...)
}

// build lays out the file: ELF header, program headers (segments then one
// PT_NOTE per note), note contents, then segment data.
func (s testSpec) build() []byte {
	le := binary.LittleEndian
	phnum := len(s.segments) + len(s.notes)
	out := make([]byte, elfHeaderSize+phnum*elfPhdrSize)

	copy(out[0:], "\x7fELF")
	out[4] = elfClass64
	out[5] = elfData2LSB
	out[6] = 1 // EI_VERSION
	le.PutUint16(out[16:], elfTypeExec)
	le.PutUint16(out[18:], elfMachineX8664)
	le.PutUint32(out[20:], elfVersion)
	le.PutUint64(out[24:], s.entry)
	le.PutUint64(out[32:], elfHeaderSize) // e_phoff
	le.PutUint16(out[52:], elfHeaderSize)
	le.PutUint16(out[54:], elfPhdrSize)
	le.PutUint16(out[56:], uint16(phnum))
	le.PutUint16(out[58:], 64) // e_shentsize, although there are no section headers
	putPhdr := func(i int, p testSegment) {
		b := out[elfHeaderSize+i*elfPhdrSize:]
		le.PutUint32(b[0:], p.typ)
		le.PutUint32(b[4:], p.flags)
		le.PutUint64(b[8:], p.offset)
		le.PutUint64(b[16:], p.vaddr)
		le.PutUint64(b[24:], p.vaddr) // p_paddr
		le.PutUint64(b[32:], p.filesz)
		le.PutUint64(b[40:], p.memsz)
		le.PutUint64(b[48:], p.align)
	}

	for i, n := range s.notes {
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
		putPhdr(len(s.segments)+i, testSegment{
			typ: ptNote, flags: 4, offset: uint64(len(out)),
			filesz: uint64(len(n)), memsz: uint64(len(n)), align: 4,
		})
		out = append(out, n...)
	}
	for i, seg := range s.segments {
		if seg.filesz != 0 && seg.offset == 0 {
			seg.offset = uint64(len(out))
			data := make([]byte, seg.filesz)
			for j := range data {
				data[j] = 0xCC
			}
			copy(data, seg.data)
			out = append(out, data...)
		}
		putPhdr(i, seg)
	}
	return out
}

// Field offsets inside Elf64_Phdr, for patchPhdr.
const (
	phType   = 0
	phFlags  = 4
	phOffset = 8
	phVaddr  = 16
	phFilesz = 32
	phMemsz  = 40
	phAlign  = 48
)

// patchPhdr returns a copy of b with one field of program header i set to
// value. p_type and p_flags are 4 bytes wide, every other field 8 bytes.
func patchPhdr(b []byte, i int, field int, value uint64) []byte {
	b = append([]byte(nil), b...)
	p := b[elfHeaderSize+i*elfPhdrSize+field:]
	if field == phType || field == phFlags {
		binary.LittleEndian.PutUint32(p, uint32(value))
	} else {
		binary.LittleEndian.PutUint64(p, value)
	}
	return b
}

// patch returns a copy of b with value written little-endian at offset
// off, using size bytes (1, 2, 4 or 8).
func patch(b []byte, off int, size int, value uint64) []byte {
	b = append([]byte(nil), b...)
	switch size {
	case 1:
		b[off] = byte(value)
	case 2:
		binary.LittleEndian.PutUint16(b[off:], uint16(value))
	case 4:
		binary.LittleEndian.PutUint32(b[off:], uint32(value))
	case 8:
		binary.LittleEndian.PutUint64(b[off:], value)
	}
	return b
}
