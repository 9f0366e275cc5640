package plan

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ntender/ntender/abi"
)

// This file writes minimal Solo5 unikernel files for the tests: an ELF64
// x86_64 executable with one R+X PT_LOAD at 0x100000, an ABI1 note and an
// MFT1 note, each in its own PT_NOTE as the Solo5 toolchain lays them out.

const (
	ptLoad = 1
	ptNote = 4

	elfHeaderSize = 64
	phdrSize      = 56

	abi1Offset = 0x100
	mft1Offset = 0x200
	textOffset = 0x4000 // after the largest manifest note (20 + 12 + 104*64)
	textVaddr  = 0x100000
	textSize   = 0x1000
)

// writeUnikernel writes an hvt ABI version 2 unikernel declaring devs and
// returns its path.
func writeUnikernel(t *testing.T, devs ...abi.ManifestEntry) string {
	t.Helper()
	le := binary.LittleEndian
	file := make([]byte, textOffset+textSize)

	// ELF header.
	copy(file, []byte{0x7F, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(file[16:], 2)  // ET_EXEC
	le.PutUint16(file[18:], 62) // EM_X86_64
	le.PutUint32(file[20:], 1)  // EV_CURRENT
	le.PutUint64(file[24:], textVaddr)
	le.PutUint64(file[32:], elfHeaderSize)
	le.PutUint16(file[52:], elfHeaderSize)
	le.PutUint16(file[54:], phdrSize)
	le.PutUint16(file[56:], 3)

	// ABI1 note: target hvt, version 2.
	abi1 := file[abi1Offset:]
	putNoteHeader(abi1, 16, 0x31494241)
	le.PutUint32(abi1[20:], uint32(abi.TargetHVT))
	le.PutUint32(abi1[24:], 2)

	// MFT1 note: 4 pad bytes, struct mft with the reserved entry 0.
	entries := len(devs) + 1
	descsz := 4 + abi.ManifestHeaderSize + entries*abi.ManifestEntrySize
	mft1 := file[mft1Offset:]
	putNoteHeader(mft1, uint32(descsz), 0x3154464d)
	mft := mft1[24:]
	le.PutUint32(mft[0:], abi.ManifestVersion)
	le.PutUint32(mft[4:], uint32(entries))
	le.PutUint32(mft[abi.ManifestHeaderSize+abi.EntryType:], uint32(abi.DeviceReservedFirst))
	for i, dev := range devs {
		entry := mft[abi.ManifestHeaderSize+(i+1)*abi.ManifestEntrySize:]
		copy(entry[abi.EntryName:], dev.Name)
		le.PutUint32(entry[abi.EntryType:], uint32(dev.Type))
	}

	// Text: an infinite loop (jmp .) at the entry point.
	copy(file[textOffset:], []byte{0xEB, 0xFE})

	phdrs := file[elfHeaderSize:]
	putPhdr(phdrs[0*phdrSize:], ptLoad, 5, textOffset, textVaddr, textSize, 0x1000)
	putPhdr(phdrs[1*phdrSize:], ptNote, 4, abi1Offset, 0, 20+16, 4)
	putPhdr(phdrs[2*phdrSize:], ptNote, 4, mft1Offset, 0, uint64(20+descsz), 4)

	path := filepath.Join(t.TempDir(), "test.hvt")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func putNoteHeader(b []byte, descsz, typ uint32) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], 6)
	le.PutUint32(b[4:], descsz)
	le.PutUint32(b[8:], typ)
	copy(b[12:20], "Solo5\x00\x00\x00")
}

func putPhdr(b []byte, typ, flags uint32, offset, vaddr, size, align uint64) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], typ)
	le.PutUint32(b[4:], flags)
	le.PutUint64(b[8:], offset)
	le.PutUint64(b[16:], vaddr)
	le.PutUint64(b[24:], vaddr)
	le.PutUint64(b[32:], size)
	le.PutUint64(b[40:], size)
	le.PutUint64(b[48:], align)
}

func TestWriteUnikernelLoads(t *testing.T) {
	path := writeUnikernel(t,
		abi.ManifestEntry{Name: "storage", Type: abi.DeviceBlockBasic},
		abi.ManifestEntry{Name: "service0", Type: abi.DeviceNetBasic})
	u, err := abi.Load(path)
	if err != nil {
		t.Fatalf("abi.Load: %v", err)
	}
	if len(u.Devices) != 2 || u.Devices[1].Name != "service0" || u.Devices[1].Index != 2 {
		t.Errorf("Devices = %+v", u.Devices)
	}
}
