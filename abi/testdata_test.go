package abi

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Run "go test ./abi -run 'TestBadFiles|TestGoodFiles' -update" to rewrite
// abi/testdata from the generators below. The tests otherwise read the
// committed files, so a change to a generator shows up as a diff there.
var update = flag.Bool("update", false, "rewrite abi/testdata from the generators")

// Program header indexes in goodSpec.
const (
	phText    = 0
	phRodata  = 1
	phData    = 2
	phTdata   = 3
	phBss     = 4
	phOpenBSD = 5
	phABI     = 6
	phMft     = 7
)

// Byte offsets inside the notes built by abi1Note and manifestNote.
const (
	noteDescsz    = 4
	noteType      = 8
	noteName      = 12
	abiPayload    = 20
	mftPayload    = 24
	mftFirstEntry = mftPayload + ManifestHeaderSize
)

// withNote returns spec with note i (0 OpenBSD, 1 ABI1, 2 MFT1) replaced.
func (s testSpec) withNote(i int, note []byte) testSpec {
	s.notes = append([][]byte(nil), s.notes...)
	s.notes[i] = note
	return s
}

// withoutNote returns spec without note i.
func (s testSpec) withoutNote(i int) testSpec {
	notes := append([][]byte(nil), s.notes[:i]...)
	s.notes = append(notes, s.notes[i+1:]...)
	return s
}

// withSegments returns spec with its segments replaced.
func (s testSpec) withSegments(segs ...testSegment) testSpec {
	s.segments = segs
	return s
}

// patchNote returns a copy of note with a little-endian value written at
// off.
func patchNote(note []byte, off, size int, value uint64) []byte {
	return patch(note, off, size, value)
}

// entryOffset is the offset of field in manifest entry i inside an MFT1
// note.
func entryOffset(i, field int) int {
	return mftFirstEntry + i*ManifestEntrySize + field
}

func good() testSpec { return goodSpec(TargetHVT, 2) }

func devices(n int) []ManifestEntry {
	d := make([]ManifestEntry, n)
	for i := range d {
		d[i] = ManifestEntry{Name: fmt.Sprintf("storage%d", i), Type: DeviceBlockBasic}
	}
	return d
}

func seg(flags uint32, vaddr, filesz, memsz, align uint64) testSegment {
	return testSegment{typ: ptLoad, flags: flags, vaddr: vaddr, filesz: filesz, memsz: memsz, align: align}
}

// badCase is one crafted file and the rejection Parse must report.
type badCase struct {
	name  string
	build func() []byte
	kind  error
	// field is the expected FormatError.Field.
	field string
	// message is a substring of the expected error message.
	message string
}

var badCases = []badCase{
	// ELF header.
	{"short-header", func() []byte { return good().build()[:40] },
		ErrInvalidExecutable, "", "elf header does not match the expected size (40 != 64)"},
	{"bad-magic", func() []byte { return patch(good().build(), 1, 1, 'F') },
		ErrInvalidExecutable, "e_ident", "ELF magic"},
	{"class32", func() []byte { return patch(good().build(), 4, 1, 1) },
		ErrInvalidExecutable, "e_ident[EI_CLASS]", "EI_CLASS] is 1"},
	{"big-endian", func() []byte { return patch(good().build(), 5, 1, 2) },
		ErrInvalidExecutable, "e_ident[EI_DATA]", "EI_DATA] is 2"},
	{"e-version-0", func() []byte { return patch(good().build(), 20, 4, 0) },
		ErrInvalidExecutable, "e_version", "e_version is 0"},
	{"e-ehsize-52", func() []byte { return patch(good().build(), 52, 2, 52) },
		ErrInvalidExecutable, "e_ehsize", "e_ehsize is 52"},
	{"e-phnum-0", func() []byte { return patch(good().build(), 56, 2, 0) },
		ErrInvalidExecutable, "e_phnum", "e_phnum is 0"},
	{"e-phentsize-64", func() []byte { return patch(good().build(), 54, 2, 64) },
		ErrInvalidExecutable, "e_phentsize", "e_phentsize is 64"},
	{"et-dyn", func() []byte { return patch(good().build(), 16, 2, 3) },
		ErrInvalidExecutable, "e_type", "e_type is 3"},
	{"aarch64", func() []byte { return patch(good().build(), 18, 2, 183) },
		ErrInvalidExecutable, "e_machine", "e_machine is 183"},
	{"phdrs-beyond-file", func() []byte { return patch(good().build(), 56, 2, 0xFFFF) },
		ErrInvalidExecutable, "e_phoff", "program header does not match the expected size"},
	{"phoff-overflow", func() []byte { return patch(good().build(), 32, 8, 0xFFFFFFFFFFFFFFF0) },
		ErrInvalidExecutable, "e_phoff", "program header does not match the expected size"},

	// Note discovery and sizes.
	{"note-filesz-11", func() []byte { return patchPhdr(good().build(), phOpenBSD, phFilesz, 11) },
		ErrInvalidExecutable, "phdr[5].p_filesz", "note does not fall within valid size (11 < 12)"},
	{"no-abi-note", func() []byte { return good().withoutNote(1).build() },
		ErrNoABINote, "", "No Solo5 ABI information found in executable"},
	{"abi-note-wrong-name", func() []byte {
		return good().withNote(1, patchNote(abi1Note(TargetHVT, 2), noteName+4, 1, '6')).build()
	}, ErrNoABINote, "", "No Solo5 ABI information found"},
	{"abi-note-namesz-5", func() []byte {
		return good().withNote(1, patchNote(abi1Note(TargetHVT, 2), 0, 4, 5)).build()
	}, ErrNoABINote, "", "No Solo5 ABI information found"},
	{"abi-note-in-short-ptnote", func() []byte { return patchPhdr(good().build(), phABI, phFilesz, 19) },
		ErrNoABINote, "", "No Solo5 ABI information found"},
	{"abi-descsz-0", func() []byte {
		return good().withNote(1, patchNote(abi1Note(TargetHVT, 2), noteDescsz, 4, 0)).build()
	}, ErrInvalidExecutable, "phdr[6].n_descsz", "note does not fall within valid size"},
	{"abi-descsz-33", func() []byte {
		return good().withNote(1, patchNote(abi1Note(TargetHVT, 2), noteDescsz, 4, 33)).build()
	}, ErrInvalidExecutable, "phdr[6].n_descsz", "note does not fall within valid size"},
	{"abi-descsz-8", func() []byte {
		return good().withNote(1, patchNote(abi1Note(TargetHVT, 2), noteDescsz, 4, 8)).build()
	}, ErrInvalidExecutable, "phdr[6].n_descsz", "expected at least 16"},
	{"abi-descsz-beyond-filesz", func() []byte { return patchPhdr(good().build(), phABI, phFilesz, 35) },
		ErrInvalidExecutable, "phdr[6].p_filesz", "note does not fall within valid size (p_filesz 35 < 36)"},
	{"abi-note-beyond-file", func() []byte { return patchPhdr(good().build(), phABI, phOffset, 1<<40) },
		ErrInvalidExecutable, "phdr[6].p_offset", "beyond the file size"},
	{"abi-version-3", func() []byte { return good().withNote(1, abi1Note(TargetHVT, 3)).build() },
		ErrUnsupportedABIVersion, "ABI1.abi_version", "Executable requests unsupported ABI version 3"},
	{"abi-version-0-spt", func() []byte { return good().withNote(1, abi1Note(TargetSPT, 0)).build() },
		ErrUnsupportedABIVersion, "ABI1.abi_version", "Executable requests unsupported ABI version 0"},

	// Manifest note.
	{"no-manifest", func() []byte { return good().withoutNote(2).build() },
		ErrNoManifest, "", "No Solo5 manifest found in executable"},
	{"buggyelf", func() []byte {
		return good().withNote(2, patchNote(manifestNote(), noteDescsz, 4, 1)).build()
	}, ErrInvalidExecutable, "phdr[7].n_descsz", "note does not fall within valid size"},
	{"mft-descsz-6669", func() []byte {
		return good().withNote(2, patchNote(manifestNote(), noteDescsz, 4, 6669)).build()
	}, ErrInvalidExecutable, "phdr[7].n_descsz", "n_descsz 6669 is not in [1, 6668]"},
	{"mft-payload-4", func() []byte {
		return good().withNote(2, patchNote(manifestNote(), noteDescsz, 4, 8)).build()
	}, ErrInvalidExecutable, "phdr[7].n_descsz", "note does not fall within valid size"},
	{"mft-version-2", func() []byte {
		return good().withNote(2, patchNote(manifestNote(), mftPayload, 4, 2)).build()
	}, ErrInvalidManifest, "manifest.version", "Solo5 manifest is invalid: version is 2"},
	{"mft-64-devices", func() []byte { return goodSpec(TargetHVT, 2, devices(64)...).build() },
		ErrInvalidExecutable, "phdr[7].n_descsz", "n_descsz 6772 is not in [1, 6668]"},
	{"mft-entries-65", func() []byte {
		return good().withNote(2, patchNote(manifestNote(devices(1)...), mftPayload+4, 4, 65)).build()
	}, ErrInvalidManifest, "manifest.entries", "65 entries, the maximum is 64 including the reserved entry (63 devices)"},
	{"mft-entries-mismatch", func() []byte {
		return good().withNote(2, patchNote(manifestNote(devices(1)...), mftPayload+4, 4, 3)).build()
	}, ErrInvalidManifest, "manifest.entries", "3 entries need 320 bytes, but the note holds 216"},
	{"mft-0-entries", func() []byte {
		n := patchNote(manifestNote(), noteDescsz, 4, 12)
		n = patchNote(n, mftPayload+4, 4, 0)
		return good().withNote(2, n[:mftPayload+ManifestHeaderSize]).build()
	}, ErrInvalidManifest, "manifest.entries", "no entries"},
	{"mft-entry0-block", func() []byte {
		return good().withNote(2, patchNote(manifestNote(), entryOffset(0, EntryType), 4, 1)).build()
	}, ErrInvalidManifest, "manifest.e[0].type", "entry 0 is not the reserved entry"},
	{"mft-entry0-named", func() []byte {
		return good().withNote(2, patchNote(manifestNote(), entryOffset(0, EntryName), 1, 'x')).build()
	}, ErrInvalidManifest, "manifest.e[0].type", "entry 0 is not the reserved entry"},
	{"mft-name-unterminated", func() []byte {
		n := manifestNote(devices(1)...)
		for i := range ManifestNameSize {
			n[entryOffset(1, EntryName+i)] = 'a'
		}
		return good().withNote(2, n).build()
	}, ErrInvalidManifest, "manifest.e[1].name", "not NUL-terminated"},
	{"mft-attached", func() []byte {
		return good().withNote(2, patchNote(manifestNote(devices(1)...), entryOffset(1, EntryAttached), 1, 1)).build()
	}, ErrInvalidManifest, "manifest.e[1].attached", "marked attached"},
	{"mft-type-3", func() []byte {
		return goodSpec(TargetHVT, 2, ManifestEntry{Name: "x", Type: 3}).build()
	}, ErrInvalidManifest, "manifest.e[1].type", "has type 0x3, expected BLOCK_BASIC (1) or NET_BASIC (2)"},
	{"mft-type-reserved", func() []byte {
		return goodSpec(TargetHVT, 2, ManifestEntry{Name: "x", Type: DeviceReservedFirst}).build()
	}, ErrInvalidManifest, "manifest.e[1].type", "has type 0x40000000"},
	{"mft-empty-name", func() []byte {
		return goodSpec(TargetHVT, 2, ManifestEntry{Type: DeviceNetBasic}).build()
	}, ErrInvalidManifest, "manifest.e[1].name", "entry 1 has an empty name"},
	{"mft-name-dash", func() []byte {
		return goodSpec(TargetHVT, 2, ManifestEntry{Name: "my-disk", Type: DeviceBlockBasic}).build()
	}, ErrInvalidManifest, "manifest.e[1].name", `name "my-disk" of entry 1 is not alphanumeric`},
	{"mft-duplicate-name", func() []byte {
		return goodSpec(TargetHVT, 2,
			ManifestEntry{Name: "disk", Type: DeviceBlockBasic},
			ManifestEntry{Name: "net", Type: DeviceNetBasic},
			ManifestEntry{Name: "disk", Type: DeviceNetBasic}).build()
	}, ErrInvalidManifest, "manifest.e[3].name", `name "disk" of entry 3 is already used by entry 1`},

	// Entry point and segments.
	{"entry-below-min", func() []byte { s := good(); s.entry = 0xFFFFF; return s.build() },
		ErrInvalidExecutable, "e_entry", "e_entry 0xfffff does not fall within the memory allocation range"},
	{"entry-in-rodata", func() []byte { s := good(); s.entry = 0x101000; return s.build() },
		ErrInvalidExecutable, "e_entry", "not inside an executable PT_LOAD segment"},
	{"entry-in-text-bss", func() []byte { s := good(); s.entry = 0x100100; return s.build() },
		ErrInvalidExecutable, "e_entry", "not inside an executable PT_LOAD segment"},
	{"vaddr-below-min", func() []byte { return patchPhdr(good().build(), phText, phVaddr, 0x1000) },
		ErrInvalidExecutable, "phdr[0].p_vaddr", "phdr[0].p_vaddr 0x1000 is below the guest minimum load address 0x100000"},
	{"vaddr-descending", func() []byte { return patchPhdr(good().build(), phData, phVaddr, 0x100800) },
		ErrInvalidExecutable, "phdr[2].p_vaddr", "not in ascending order"},
	{"align-0", func() []byte { return patchPhdr(good().build(), phRodata, phAlign, 0) },
		ErrInvalidExecutable, "phdr[1].p_align", "not a non-zero power of two"},
	{"align-3", func() []byte { return patchPhdr(good().build(), phRodata, phAlign, 3) },
		ErrInvalidExecutable, "phdr[1].p_align", "p_align 0x3 is not a non-zero power of two"},
	{"aligned-start-below-min", func() []byte { return patchPhdr(good().build(), phText, phAlign, 0x200000) },
		ErrInvalidExecutable, "phdr[0].p_vaddr", "aligned down to p_align 0x200000 is below"},
	{"overlap", func() []byte { return patchPhdr(good().build(), phText, phMemsz, 0x1001) },
		ErrInvalidExecutable, "phdr[1].p_vaddr", "overlaps the previous segment ending at 0x102000"},
	{"shared-page", func() []byte {
		return good().withSegments(seg(5, 0x100000, 0x100, 0x100, 0x1000), seg(6, 0x100800, 0x40, 0x40, 0x1000)).build()
	}, ErrInvalidExecutable, "phdr[1].p_vaddr", "starts at 0x100000, which overlaps"},
	{"filesz-overflow", func() []byte {
		return patchPhdr(good().build(), phData, phFilesz, 0xFFFFFFFFFFFFF000)
	}, ErrInvalidExecutable, "phdr[2].p_filesz", "p_filesz 0xfffffffffffff000 overflows"},
	{"memsz-below-filesz", func() []byte { return patchPhdr(good().build(), phData, phMemsz, 0x20) },
		ErrInvalidExecutable, "phdr[2].p_memsz", "p_memsz 0x20 is smaller than p_filesz 0x40"},
	{"memsz-overflow", func() []byte {
		return patchPhdr(good().build(), phData, phMemsz, 0xFFFFFFFFFFFFF000)
	}, ErrInvalidExecutable, "phdr[2].p_memsz", "p_memsz 0xfffffffffffff000 overflows"},
	{"aligned-end-overflow", func() []byte {
		return patchPhdr(good().build(), phData, phMemsz, 0xFFFFFFFFFFEFDFFF)
	}, ErrInvalidExecutable, "phdr[2].p_memsz", "aligned up to 0x1000 overflows"},
	{"data-beyond-file", func() []byte { return patchPhdr(good().build(), phData, phFilesz, 0x800) },
		ErrInvalidExecutable, "phdr[2].p_offset", "host file segment mismatched"},
	{"offset-overflow", func() []byte { return patchPhdr(good().build(), phData, phOffset, 0xFFFFFFFFFFFFFFF0) },
		ErrInvalidExecutable, "phdr[2].p_offset", "host file segment mismatched"},
	{"start-not-page-aligned", func() []byte {
		return good().withSegments(seg(5, 0x100010, 0x100, 0x100, 0x10)).build()
	}, ErrInvalidExecutable, "phdr[0].p_vaddr", "p_vaddr_start 0x100010 not aligned with architectural page size"},
	{"end-not-page-aligned", func() []byte {
		return good().withSegments(seg(5, 0x100000, 0x100, 0x1010, 0x10)).build()
	}, ErrInvalidExecutable, "phdr[0].p_memsz", "p_vaddr_end 0x101010 not aligned with architectural page size"},
	{"write-exec", func() []byte { return patchPhdr(good().build(), phText, phFlags, 7) },
		ErrInvalidExecutable, "phdr[0].p_flags", "phdr[0] requests WRITE and EXEC permissions"},
	{"no-loadable-segment", func() []byte {
		return good().withSegments(seg(5, 0x100000, 0, 0x1000, 0x1000)).build()
	}, ErrInvalidExecutable, "e_phnum", "no PT_LOAD program header with p_filesz > 0"},
}

func testdataPath(dir, name string) string {
	return filepath.Join("testdata", dir, name)
}

// readTestdata returns the committed file, after rewriting it from
// generate when -update is set.
func readTestdata(t *testing.T, path string, generate func() []byte) []byte {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, generate(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s (run with -update to generate it): %v", path, err)
	}
	return b
}

func TestBadFiles(t *testing.T) {
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			path := testdataPath("bad", c.name+".elf")
			data := readTestdata(t, path, c.build)

			u, err := Parse(path, data)
			if err == nil {
				t.Fatalf("Parse accepted the file: %+v", u)
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error %q is not %q", err, c.kind)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
			if fe.Field != c.field {
				t.Errorf("Field = %q, want %q", fe.Field, c.field)
			}
			if fe.Path != path {
				t.Errorf("Path = %q, want %q", fe.Path, path)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("message %q does not start with the path", msg)
			}
			if !strings.Contains(msg, c.message) {
				t.Errorf("message %q does not contain %q", msg, c.message)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q has more than one line", msg)
			}

			_, err = Load(path)
			if !errors.Is(err, c.kind) {
				t.Errorf("Load: error %v is not %q", err, c.kind)
			}
		})
	}
}
