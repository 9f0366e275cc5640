package abi

import (
	"encoding/binary"
	"fmt"
)

// Solo5 note layout: a 12-byte Elf64_Nhdr followed by the name "Solo5"
// padded to 8 bytes, then the descriptor at its natural alignment.
const (
	nhdrSize      = 12 // sizeof(Elf64_Nhdr)
	solo5NhdrSize = 20 // Elf64_Nhdr plus the padded name
	solo5NoteName = "Solo5\x00"

	// NoteTypeABI1 and NoteTypeManifest are the n_type values of the ABI
	// and manifest notes ("ABI1" and "MFT1" read as little-endian u32).
	NoteTypeABI1     = 0x31494241
	NoteTypeManifest = 0x3154464d

	// abi1Size is sizeof(struct abi1_info): abi_target, abi_version and
	// two reserved u32. The descriptor is 4-aligned, so it has no padding.
	abi1Size    = 16
	abi1MaxSize = 32
	// The manifest descriptor is 8-aligned, so 4 pad bytes sit between the
	// name and struct mft.
	manifestAlign   = 8
	manifestMaxSize = ManifestHeaderSize + ManifestMaxEntries*ManifestEntrySize + 4
)

// ABIInfo is the payload of the ABI1 note.
type ABIInfo struct {
	Target  Target
	Version uint32
}

// findNote returns the descriptor payload of the first Solo5 note of type
// noteType, found the way the Solo5 tenders do (elf_load_note). Only the
// first note at the start of each PT_NOTE segment is read, and section
// headers are ignored. A PT_NOTE shorter than an Elf64_Nhdr makes the
// whole file invalid. The payload starts at the descriptor offset rounded
// up to align and must hold at least minSize bytes. found is false when
// no such note exists.
func findNote(path string, data []byte, phdrs []programHeader, noteType uint32,
	align, minSize, maxDescSize uint64) (payload []byte, found bool, err error) {
	le := binary.LittleEndian
	for i, ph := range phdrs {
		if ph.typ != ptNote {
			continue
		}
		field := fmt.Sprintf("phdr[%d].p_filesz", i)
		if ph.filesz < nhdrSize {
			return nil, false, invalidExecutable(path, field, ph.filesz,
				"phdr[%d].p_filesz note does not fall within valid size (%d < %d)",
				i, ph.filesz, nhdrSize)
		}
		if ph.filesz < solo5NhdrSize {
			continue
		}
		if ph.offset > uint64(len(data)) || uint64(len(data))-ph.offset < solo5NhdrSize {
			return nil, false, invalidExecutable(path, fmt.Sprintf("phdr[%d].p_offset", i), ph.offset,
				"phdr[%d] note header at offset %#x is beyond the file size %d", i, ph.offset, len(data))
		}
		note := data[ph.offset:]
		namesz := le.Uint32(note[0:])
		descsz := le.Uint32(note[4:])
		typ := le.Uint32(note[8:])
		// Like the tenders' strncmp, this ignores the pad bytes after the
		// NUL of "Solo5".
		if namesz != uint32(len(solo5NoteName)) || string(note[12:18]) != solo5NoteName {
			continue
		}
		if typ != noteType {
			continue
		}
		if descsz < 1 || uint64(descsz) > maxDescSize {
			return nil, false, invalidExecutable(path, fmt.Sprintf("phdr[%d].n_descsz", i), uint64(descsz),
				"phdr[%d] note does not fall within valid size (n_descsz %d is not in [1, %d])",
				i, descsz, maxDescSize)
		}
		if ph.filesz < solo5NhdrSize+uint64(descsz) {
			return nil, false, invalidExecutable(path, field, ph.filesz,
				"phdr[%d] note does not fall within valid size (p_filesz %d < %d)",
				i, ph.filesz, solo5NhdrSize+uint64(descsz))
		}
		payloadOffset := (solo5NhdrSize + align - 1) &^ (align - 1)
		pad := payloadOffset - solo5NhdrSize
		if uint64(descsz) < pad+minSize {
			return nil, false, invalidExecutable(path, fmt.Sprintf("phdr[%d].n_descsz", i), uint64(descsz),
				"phdr[%d] note does not fall within valid size (n_descsz %d leaves %d bytes, expected at least %d)",
				i, descsz, int64(descsz)-int64(pad), minSize)
		}
		size := uint64(descsz) - pad
		if uint64(len(data))-ph.offset < payloadOffset+size {
			return nil, false, invalidExecutable(path, fmt.Sprintf("phdr[%d].p_offset", i), ph.offset,
				"phdr[%d] note of %d bytes at offset %#x is beyond the file size %d",
				i, payloadOffset+size, ph.offset, len(data))
		}
		return note[payloadOffset : payloadOffset+size : payloadOffset+size], true, nil
	}
	return nil, false, nil
}

// readABI1 finds and decodes the ABI1 note. With strict set it requires
// the full 16-byte struct abi1_info that every Solo5 toolchain emits;
// otherwise it requires the 8 bytes of abi_target and abi_version. Both
// are stricter than the tenders, which read the two fields without
// checking the descriptor size.
func readABI1(path string, data []byte, phdrs []programHeader, strict bool) (ABIInfo, error) {
	minSize := uint64(8)
	if strict {
		minSize = abi1Size
	}
	payload, found, err := findNote(path, data, phdrs, NoteTypeABI1, 4, minSize, abi1MaxSize)
	if err != nil {
		return ABIInfo{}, err
	}
	if !found {
		return ABIInfo{}, &FormatError{Path: path, Kind: ErrNoABINote, Reason: ErrNoABINote.Error()}
	}
	le := binary.LittleEndian
	return ABIInfo{
		Target:  Target(le.Uint32(payload[0:])),
		Version: le.Uint32(payload[4:]),
	}, nil
}

// ReadABI returns the ABI1 note of an ELF file, applying only the checks
// solo5-elftool query-abi applies: a valid ELF header and program header
// table, and a well-formed note with at least the 8 bytes of abi_target
// and abi_version. It accepts every target and version, so it also reads
// virtio, muen, genode and xen binaries.
func ReadABI(path string, data []byte) (ABIInfo, error) {
	_, phdrs, err := parseHeaders(path, data)
	if err != nil {
		return ABIInfo{}, err
	}
	return readABI1(path, data, phdrs, false)
}

// String returns the target name solo5-elftool prints, or "unknown".
func (t Target) String() string {
	switch t {
	case TargetHVT:
		return "hvt"
	case TargetSPT:
		return "spt"
	case TargetVirtio:
		return "virtio"
	case TargetMuen:
		return "muen"
	case TargetGenode:
		return "genode"
	case TargetXen:
		return "xen"
	}
	return "unknown"
}

// parseHeaders checks the file size, the ELF header and the program header
// table.
func parseHeaders(path string, data []byte) (elfHeader, []programHeader, error) {
	if uint64(len(data)) > MaxFileSize {
		return elfHeader{}, nil, invalidExecutable(path, "", uint64(len(data)),
			"file size %d exceeds the maximum of %d bytes", len(data), uint64(MaxFileSize))
	}
	h, err := parseELFHeader(path, data)
	if err != nil {
		return h, nil, err
	}
	phdrs, err := parseProgramHeaders(path, data, h)
	return h, phdrs, err
}
