package guests

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// builtGuests returns the paths of all built guests, or skips.
func builtGuests(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(BuildDir(), "*.[hs][vp]t"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		SkipOrFail(t, "guests not built: run make -C tests/guests first")
	}
	return paths
}

// TestBuiltGuestsLayout checks the ELF rules a Solo5 tender enforces on
// every built guest, plus the layout the linker scripts promise.
func TestBuiltGuestsLayout(t *testing.T) {
	for _, path := range builtGuests(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			checkLayout(t, path)
		})
	}
}

func checkLayout(t *testing.T, path string) {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	target := TargetSPT
	if filepath.Ext(path) == ".hvt" {
		target = TargetHVT
	}

	if f.Type != elf.ET_EXEC || f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("type %v, machine %v, class %v; expected a 64-bit x86-64 ET_EXEC", f.Type, f.Machine, f.Class)
	}
	if f.Entry < 0x100000 {
		t.Errorf("entry %#x below 0x100000", f.Entry)
	}

	var notes []string
	var loads, tls, interps int
	var end uint64
	for i, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			loads++
			if p.Filesz == 0 {
				continue // skipped by the tenders
			}
			if p.Vaddr < 0x100000 {
				t.Errorf("PT_LOAD %d at %#x below 0x100000", i, p.Vaddr)
			}
			if p.Vaddr%0x1000 != 0 {
				t.Errorf("PT_LOAD %d at %#x is not page aligned", i, p.Vaddr)
			}
			if p.Vaddr < end {
				t.Errorf("PT_LOAD %d at %#x shares a page with the previous segment, which ends at %#x", i, p.Vaddr, end)
			}
			end = (p.Vaddr + p.Memsz + 0xfff) &^ 0xfff
			if p.Flags&elf.PF_W != 0 && p.Flags&elf.PF_X != 0 {
				t.Errorf("PT_LOAD %d at %#x is writable and executable", i, p.Vaddr)
			}
			if p.Vaddr == 0x100000 {
				want := elf.PF_R | elf.PF_X
				if target == TargetHVT {
					want = elf.PF_X
				}
				if p.Flags != want {
					t.Errorf("text flags %v, expected %v", p.Flags, want)
				}
			}
		case elf.PT_TLS:
			tls++
		case elf.PT_INTERP:
			interps++
			data, err := io.ReadAll(p.Open())
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != "/nonexistent/solo5/\x00" {
				t.Errorf("PT_INTERP %q, expected /nonexistent/solo5/", data)
			}
		case elf.PT_NOTE:
			notes = append(notes, readFirstNote(t, p))
		}
	}
	if loads == 0 {
		t.Error("no PT_LOAD")
	}
	if tls != 1 {
		t.Errorf("%d PT_TLS, expected 1", tls)
	}
	if interps != 1 {
		t.Errorf("%d PT_INTERP, expected 1", interps)
	}
	want := []string{"OpenBSD/1", "Solo5/ABI1", "Solo5/MFT1"}
	if len(notes) != len(want) {
		t.Fatalf("PT_NOTE segments contain %q, expected %q", notes, want)
	}
	for i := range want {
		if notes[i] != want[i] {
			t.Errorf("PT_NOTE %d contains %s, expected %s", i, notes[i], want[i])
		}
	}
	checkABINote(t, f, target)
}

// readFirstNote returns "NAME/TYPE" of the first note in a PT_NOTE
// segment, the only one a Solo5 tender reads.
func readFirstNote(t *testing.T, p *elf.Prog) string {
	t.Helper()
	data, err := io.ReadAll(p.Open())
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 20 {
		t.Fatalf("PT_NOTE at %#x has %d bytes, expected at least 20", p.Off, len(data))
	}
	namesz := binary.LittleEndian.Uint32(data[0:])
	descsz := binary.LittleEndian.Uint32(data[4:])
	typ := binary.LittleEndian.Uint32(data[8:])
	padded := (namesz + 3) &^ 3
	if uint64(len(data)) != uint64(12+padded+descsz) {
		t.Errorf("PT_NOTE at %#x has %d bytes, expected one note of %d", p.Off, len(data), 12+padded+descsz)
	}
	name := string(bytes.TrimRight(data[12:12+namesz], "\x00"))
	if typ == 1 {
		return name + "/1"
	}
	var tag [4]byte
	binary.LittleEndian.PutUint32(tag[:], typ)
	return name + "/" + string(tag[:])
}

func checkABINote(t *testing.T, f *elf.File, target string) {
	t.Helper()
	section := f.Section(".note.solo5.abi")
	if section == nil {
		t.Fatal("no .note.solo5.abi section")
	}
	data, err := section.Data()
	if err != nil {
		t.Fatal(err)
	}
	wantTarget := uint32(2)
	if target == TargetHVT {
		wantTarget = 1
	}
	if got := binary.LittleEndian.Uint32(data[20:]); got != wantTarget {
		t.Errorf("abi_target %d, expected %d", got, wantTarget)
	}
	if got := binary.LittleEndian.Uint32(data[24:]); got != 2 {
		t.Errorf("abi_version %d, expected 2", got)
	}
}

// TestGuestsDoNotRunOnHost checks that the kernel rejects running a
// guest directly, because its interpreter does not exist.
func TestGuestsDoNotRunOnHost(t *testing.T) {
	for _, path := range builtGuests(t) {
		err := exec.Command(path).Run()
		if err == nil {
			t.Errorf("%s ran on the host", path)
			continue
		}
		if !errors.Is(err, syscall.ENOENT) {
			t.Errorf("running %s: %v, expected ENOENT for the missing interpreter", path, err)
		}
	}
}
