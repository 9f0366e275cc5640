package abi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sptSpec returns the layout of a Solo5 v0.8+ spt binary: PT_INTERP, one
// R+X segment with text, rodata and notes, data, tdata, PT_TLS, bss and
// PT_GNU_STACK.
func sptSpec(devices ...ManifestEntry) testSpec {
	s := goodSpec(TargetSPT, 2, devices...)
	s.segments = []testSegment{
		{typ: 3, flags: 4, vaddr: 0x100000, filesz: 0x14, memsz: 0x14, align: 1, data: []byte("/nonexistent/solo5/\x00")},
		seg(5, 0x100000, 0x1800, 0x1800, 0x1000),
		seg(6, 0x102000, 0x40, 0x1000, 0x1000),
		seg(4, 0x103000, 0x10, 0x10, 0x1000),
		{typ: 7, flags: 4, vaddr: 0x103000, filesz: 0x10, memsz: 0x18, align: 8},
		seg(6, 0x104000, 0, 0x3000, 0x1000),
		{typ: 0x6474e551, flags: 6},
	}
	return s
}

type goodCase struct {
	name   string
	build  func() []byte
	target Target
}

var goodCases = []goodCase{
	{"hvt-v2.hvt", func() []byte {
		return goodSpec(TargetHVT, 2,
			ManifestEntry{Name: "storage", Type: DeviceBlockBasic},
			ManifestEntry{Name: "service0", Type: DeviceNetBasic}).build()
	}, TargetHVT},
	{"hvt-v1.hvt", func() []byte { return v1Spec().build() }, TargetHVT},
	{"spt-v2.spt", func() []byte {
		return sptSpec(ManifestEntry{Name: "service0", Type: DeviceNetBasic}).build()
	}, TargetSPT},
	{"hvt-63-devices.hvt", func() []byte { return goodSpec(TargetHVT, 2, devices(63)...).build() }, TargetHVT},
	{"virtio-v1.virtio", func() []byte { return goodSpec(TargetVirtio, 1).build() }, TargetVirtio},
}

// summarize returns a text description of u for golden files.
func summarize(u *Unikernel) string {
	var b strings.Builder
	fmt.Fprintf(&b, "target %s\nabi_version %d\nentry %#x\nkernel_end %#x\n",
		u.Target, u.ABIVersion, u.Entry, u.KernelEnd)
	for _, s := range u.Segments {
		fmt.Fprintf(&b, "segment phdr[%d] offset %#x vaddr %#x filesz %#x memsz %#x range [%#x, %#x) prot %s\n",
			s.Index, s.Offset, s.Vaddr, s.Filesz, s.Memsz, s.Start, s.End, protString(s.Prot))
	}
	fmt.Fprintf(&b, "manifest_entries %d\n", u.ManifestEntries)
	for _, d := range u.Devices {
		fmt.Fprintf(&b, "device %d %s %s\n", d.Index, d.Name, d.Type)
	}
	return b.String()
}

func protString(p Prot) string {
	s := []byte("---")
	if p&ProtRead != 0 {
		s[0] = 'R'
	}
	if p&ProtWrite != 0 {
		s[1] = 'W'
	}
	if p&ProtExec != 0 {
		s[2] = 'X'
	}
	return string(s)
}

func TestGoodFiles(t *testing.T) {
	for _, c := range goodCases {
		t.Run(c.name, func(t *testing.T) {
			path := testdataPath("good", c.name)
			data := readTestdata(t, path, c.build)

			u, err := Parse(path, data)
			if err != nil {
				t.Fatal(err)
			}
			got := summarize(u)
			golden := readTestdata(t, path+".golden", func() []byte { return []byte(got) })
			if got != string(golden) {
				t.Errorf("summary differs from %s.golden:\n%s\nwant:\n%s", path, got, golden)
			}
			for _, s := range u.Segments {
				want := data[s.Offset : s.Offset+s.Filesz]
				if !bytes.Equal(s.Data, want) {
					t.Errorf("segment phdr[%d] data is not the file bytes at %#x", s.Index, s.Offset)
				}
			}

			_, err = Load(path)
			if c.target == TargetHVT || c.target == TargetSPT {
				if err != nil {
					t.Errorf("Load: %v", err)
				}
			} else if !errors.Is(err, ErrUnsupportedTarget) {
				t.Errorf("Load: error %v, want ErrUnsupportedTarget", err)
			}
		})
	}
}

func TestLoadUnsupportedTargetMessage(t *testing.T) {
	path := testdataPath("good", "virtio-v1.virtio")
	_, err := Load(path)
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("Load: %v is not a *FormatError", err)
	}
	if fe.Field != "ABI1.abi_target" || fe.Value != uint64(TargetVirtio) {
		t.Errorf("Field, Value = %q, %d", fe.Field, fe.Value)
	}
	want := path + ": Executable is for the virtio target (3), ntender runs only hvt and spt"
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.hvt"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load: %v, want os.ErrNotExist", err)
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		t.Errorf("Load returned a *FormatError for a missing file: %v", err)
	}
}

func TestReadFileCappedRejectsLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, make([]byte, 101), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readFileCapped(path, 101); err != nil {
		t.Errorf("file at the limit: %v", err)
	}
	_, err := readFileCapped(path, 100)
	if !errors.Is(err, ErrInvalidExecutable) {
		t.Errorf("file over the limit: %v, want ErrInvalidExecutable", err)
	}
	if err != nil && !strings.Contains(err.Error(), "file size 101 exceeds the maximum of 100 bytes") {
		t.Errorf("message = %q", err)
	}
}

func TestLoadRejectsNonRegularFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A FIFO with no writer must not block the load.
	for path, kind := range map[string]string{
		fifo: "a named pipe", t.TempDir(): "a directory", "/dev/zero": "a character device",
	} {
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "is not a regular file: it is "+kind) {
			t.Errorf("Load(%s) = %v, want a not-regular-file error naming %s", path, err, kind)
		}
	}
}

func TestParseRejectsOversizedData(t *testing.T) {
	// The runtime serves an allocation this large with fresh zero pages
	// from the OS and Parse reads none of them after the size check, so
	// this costs address space, not resident memory.
	if testing.Short() {
		t.Skip("allocates 1 GiB of address space")
	}
	data := make([]byte, MaxFileSize+1)
	_, err := Parse("huge", data)
	if !errors.Is(err, ErrInvalidExecutable) || !strings.Contains(err.Error(), "exceeds the maximum") {
		t.Errorf("Parse of %d bytes: %v", len(data), err)
	}
}

func TestCheckFits(t *testing.T) {
	u, err := Parse("fit.hvt", good().build())
	if err != nil {
		t.Fatal(err)
	}
	// Segments: text [0x100000, 0x101000), rodata [0x101000, 0x102000),
	// data 0x102000 with 0x40 file bytes, aligned end 0x103000.
	cases := []struct {
		mem     uint64
		field   string
		message string
	}{
		{0x103000, "", ""},
		{0x100020, "e_entry", "e_entry 0x100020 does not fall within the memory allocation range"},
		{0x101000, "phdr[1].p_vaddr", "phdr[1] program file segment at 0x101000 falls outside of valid range"},
		{0x102020, "phdr[2].p_vaddr", "phdr[2] program file segment ending at 0x102040 falls outside of valid range"},
		{0x102fff, "phdr[2].p_vaddr", "phdr[2] program memory segment ending at 0x103000 falls outside of valid range"},
	}
	for _, c := range cases {
		err := u.CheckFits(c.mem)
		if c.field == "" {
			if err != nil {
				t.Errorf("CheckFits(%#x): %v", c.mem, err)
			}
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("CheckFits(%#x) = %v, want a *FormatError", c.mem, err)
			continue
		}
		if !errors.Is(err, ErrDoesNotFit) {
			t.Errorf("CheckFits(%#x): %v is not ErrDoesNotFit", c.mem, err)
		}
		if fe.Field != c.field {
			t.Errorf("CheckFits(%#x): Field = %q, want %q", c.mem, fe.Field, c.field)
		}
		if !strings.Contains(err.Error(), c.message) {
			t.Errorf("CheckFits(%#x): %q does not contain %q", c.mem, err, c.message)
		}
	}
}

func TestDeviceLookup(t *testing.T) {
	u, err := Parse("dev.hvt", testdataFile(t, "good", "hvt-v2.hvt"))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := u.Device("service0")
	if !ok || d.Index != 2 || d.Type != DeviceNetBasic {
		t.Errorf("Device(service0) = %+v, %v", d, ok)
	}
	if _, ok := u.Device("missing"); ok {
		t.Error("Device(missing) found a device")
	}
	if _, ok := u.Device(""); ok {
		t.Error("Device(\"\") found the reserved entry")
	}
}

func testdataFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdataPath(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadABILenient(t *testing.T) {
	data := testdataFile(t, "good", "virtio-v1.virtio")
	abi, err := ReadABI("v", data)
	if err != nil {
		t.Fatal(err)
	}
	if abi != (ABIInfo{Target: TargetVirtio, Version: 1}) {
		t.Errorf("ReadABI = %+v", abi)
	}

	// An 8-byte descriptor is enough for ReadABI, but not for Parse.
	short := testdataFile(t, "bad", "abi-descsz-8.elf")
	if abi, err := ReadABI("s", short); err != nil || abi.Target != TargetHVT || abi.Version != 2 {
		t.Errorf("ReadABI of an 8-byte descriptor = %+v, %v", abi, err)
	}
	// Unknown versions are reported, not rejected.
	v3 := testdataFile(t, "bad", "abi-version-3.elf")
	if abi, err := ReadABI("v3", v3); err != nil || abi.Version != 3 {
		t.Errorf("ReadABI of version 3 = %+v, %v", abi, err)
	}
	if _, err := ReadABI("n", testdataFile(t, "bad", "no-abi-note.elf")); !errors.Is(err, ErrNoABINote) {
		t.Errorf("ReadABI without a note: %v", err)
	}
}

func TestReadManifestLenient(t *testing.T) {
	// ReadManifest follows the tenders' validation, which accepts names and
	// types that Parse rejects.
	for _, name := range []string{"mft-type-3.elf", "mft-name-dash.elf", "mft-duplicate-name.elf", "mft-empty-name.elf"} {
		entries, err := ReadManifest(name, testdataFile(t, "bad", name))
		if err != nil {
			t.Errorf("ReadManifest(%s): %v", name, err)
			continue
		}
		if len(entries) < 2 || entries[0].Type != DeviceReservedFirst {
			t.Errorf("ReadManifest(%s) = %+v", name, entries)
		}
	}
	entries, err := ReadManifest("d", testdataFile(t, "bad", "mft-duplicate-name.elf"))
	if err != nil {
		t.Fatal(err)
	}
	want := []ManifestEntry{
		{Type: DeviceReservedFirst},
		{Name: "disk", Type: DeviceBlockBasic},
		{Name: "net", Type: DeviceNetBasic},
		{Name: "disk", Type: DeviceNetBasic},
	}
	if fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Errorf("ReadManifest = %+v, want %+v", entries, want)
	}
	for _, name := range []string{"mft-version-2.elf", "mft-attached.elf", "mft-entry0-block.elf"} {
		if _, err := ReadManifest(name, testdataFile(t, "bad", name)); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("ReadManifest(%s): %v, want ErrInvalidManifest", name, err)
		}
	}
	if _, err := ReadManifest("b", testdataFile(t, "bad", "buggyelf.elf")); !errors.Is(err, ErrInvalidExecutable) {
		t.Errorf("ReadManifest(buggyelf): %v, want ErrInvalidExecutable", err)
	}
}

// TestCheckFitsNamesTheNeed expects the smallest memory the executable
// needs in the message, so that an impossible request is visible.
func TestCheckFitsNamesTheNeed(t *testing.T) {
	u := &Unikernel{Path: "k", Entry: 0x100000, Segments: []Segment{
		{Index: 0, Vaddr: 0x7fff00000000, Filesz: 0x1000, Memsz: 0x1000,
			Start: 0x7fff00000000, End: 0x7fff00001000},
	}}
	err := u.CheckFits(512 << 20)
	if err == nil || !strings.Contains(err.Error(), "needs at least 134213633 MiB") {
		t.Errorf("CheckFits = %v, want the need in MiB", err)
	}
	u.Segments[0] = Segment{Vaddr: 0x100000, Filesz: 0x1000, Memsz: 0x1000,
		Start: 0x100000, End: 0x200001}
	err = u.CheckFits(0x200000)
	if err == nil || !strings.Contains(err.Error(), "needs at least 3 MiB") {
		t.Errorf("CheckFits = %v, want 3 MiB", err)
	}
}
