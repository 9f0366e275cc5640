package abi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds mutated unikernel files to every entry point that reads
// a file and checks the invariants Parse promises to the backends. Run it
// with: go test -run='^$' -fuzz=FuzzParse -fuzztime=10m ./abi
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, ".golden") {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadABI("f", data)
		checkOneLineFormatError(t, "ReadABI", err)
		_, err = ReadManifest("f", data)
		checkOneLineFormatError(t, "ReadManifest", err)

		u, err := Parse("f", data)
		if err != nil {
			checkOneLineFormatError(t, "Parse", err)
			return
		}

		if u.Entry < GuestMinBase || !entryIsExecutable(u.Entry, u.Segments) {
			t.Errorf("entry %#x is not in an executable segment", u.Entry)
		}
		var prevEnd uint64
		for _, s := range u.Segments {
			if s.Start < GuestMinBase || s.Start < prevEnd || s.Start > s.Vaddr {
				t.Errorf("segment phdr[%d] starts at %#x (previous end %#x)", s.Index, s.Start, prevEnd)
			}
			if s.End < s.Vaddr+s.Memsz || s.End > u.KernelEnd {
				t.Errorf("segment phdr[%d] ends at %#x, vaddr+memsz %#x, kernel end %#x",
					s.Index, s.End, s.Vaddr+s.Memsz, u.KernelEnd)
			}
			if s.Start%PageSize != 0 || s.End%PageSize != 0 {
				t.Errorf("segment phdr[%d] range [%#x, %#x) is not page aligned", s.Index, s.Start, s.End)
			}
			if uint64(len(s.Data)) != s.Filesz || s.Filesz == 0 || s.Memsz < s.Filesz {
				t.Errorf("segment phdr[%d]: %d data bytes, filesz %#x, memsz %#x",
					s.Index, len(s.Data), s.Filesz, s.Memsz)
			}
			if s.Prot&ProtWrite != 0 && s.Prot&ProtExec != 0 {
				t.Errorf("segment phdr[%d] is writable and executable", s.Index)
			}
			prevEnd = s.End
		}

		if u.ManifestEntries < 1 || u.ManifestEntries > ManifestMaxEntries || len(u.Devices) != u.ManifestEntries-1 {
			t.Errorf("%d manifest entries, %d devices", u.ManifestEntries, len(u.Devices))
		}
		for i, d := range u.Devices {
			if d.Index != i+1 || d.Name == "" || len(d.Name) >= ManifestNameSize {
				t.Errorf("device %+v at position %d", d, i)
			}
		}
		mft := u.MarshalManifest(map[int]Attachment{1: {Capacity: 512, BlockSize: 512, HostFD: 3}})
		entries, err := decodeManifest("f", mft)
		if len(u.Devices) > 0 {
			// Entry 1 is attached, which decodeManifest rejects.
			if !errors.Is(err, ErrInvalidManifest) {
				t.Errorf("decodeManifest of an attached manifest: %v", err)
			}
		} else if err != nil || len(entries) != 1 {
			t.Errorf("decodeManifest of MarshalManifest output: %v, %d entries", err, len(entries))
		}

		for _, mem := range []uint64{0, GuestMinBase, u.KernelEnd, u.KernelEnd - 1, 1 << 32} {
			if err := u.CheckFits(mem); err != nil {
				checkOneLineFormatError(t, "CheckFits", err)
			} else if mem < u.KernelEnd {
				t.Errorf("CheckFits(%#x) accepted a kernel ending at %#x", mem, u.KernelEnd)
			}
		}
		if err := u.CheckFits(u.KernelEnd); err != nil && u.Entry < u.KernelEnd {
			t.Errorf("CheckFits(kernel end %#x): %v", u.KernelEnd, err)
		}
	})
}

// checkOneLineFormatError fails the test unless err is nil or a one-line
// *FormatError.
func checkOneLineFormatError(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Errorf("%s: %T is not a *FormatError: %v", name, err, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: message has more than one line: %q", name, err)
	}
}
