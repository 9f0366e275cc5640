package abi

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize is the largest unikernel file Load and Parse accept (1 GiB).
// Unikernels are far smaller (the Solo5 v0.12.1 test binaries are below
// 1 MiB), so the cap only bounds the memory a hostile file can claim.
const MaxFileSize = 1 << 30

// Load reads the unikernel file at path, checks it with Parse and accepts
// only the hvt and spt targets. The error is a *FormatError for a rejected
// file and a wrapped *os.PathError when the file cannot be read.
func Load(path string) (*Unikernel, error) {
	data, err := readFileCapped(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	u, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if u.Target != TargetHVT && u.Target != TargetSPT {
		return nil, &FormatError{
			Path:   path,
			Kind:   ErrUnsupportedTarget,
			Field:  "ABI1.abi_target",
			Value:  uint64(u.Target),
			Reason: fmt.Sprintf("Executable is for the %s target (%d), ntender runs only hvt and spt", u.Target, uint32(u.Target)),
		}
	}
	return u, nil
}

// readFileCapped reads the file at path, rejecting files larger than limit
// bytes before reading them where Stat gives a size, and while reading
// otherwise (a FIFO, or a file that grows).
func readFileCapped(path string, limit int64) ([]byte, error) {
	// O_NONBLOCK keeps the open of a FIFO from waiting for a writer; the
	// file type is checked right after.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("loading unikernel: %w", err)
	}
	defer f.Close()

	tooLarge := func(size int64) error {
		return invalidExecutable(path, "", uint64(size),
			"file size %d exceeds the maximum of %d bytes", size, limit)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loading unikernel: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("loading unikernel: %s is not a regular file: it is %s", path, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, tooLarge(fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("loading unikernel: reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(int64(len(data)))
	}
	return data, nil
}

// ABIVersionMin and ABIVersionMax bound the hvt and spt ABI versions
// ntender runs: 1 (Solo5 v0.6 and v0.7) and 2 (v0.8 and later).
const (
	ABIVersionMin = 1
	ABIVersionMax = 2
)

// Parse checks data, the contents of the unikernel file named path, and
// returns the unikernel it describes. path is used only in error messages.
// The returned segments refer to data, which the caller must not modify
// afterwards.
//
// The checks follow the Solo5 hvt and spt tenders, in their order:
//   - the ELF header (x86_64 little-endian ELF64 ET_EXEC) and program
//     header table;
//   - the ABI1 note, which must hold the full 16-byte struct abi1_info.
//     For the hvt and spt targets the ABI version must be 1 (Solo5 v0.6,
//     v0.7) or 2 (v0.8 and later). Other targets are accepted as they are;
//   - the MFT1 note and the tenders' manifest validation (at most 64
//     entries, so 63 devices). Like solo5-elftool gen-manifest, Parse also
//     requires non-empty alphanumeric names and BLOCK_BASIC or NET_BASIC
//     types, and it rejects duplicate names, which no Solo5 tool checks;
//   - e_entry at or above GuestMinBase;
//   - every PT_LOAD with p_filesz > 0, as the v0.8 and later loader does;
//   - e_entry inside an executable segment, which the tenders do not check.
//
// Checks that need the guest memory size are in CheckFits.
func Parse(path string, data []byte) (*Unikernel, error) {
	h, phdrs, err := parseHeaders(path, data)
	if err != nil {
		return nil, err
	}

	abi, err := readABI1(path, data, phdrs, true)
	if err != nil {
		return nil, err
	}
	if (abi.Target == TargetHVT || abi.Target == TargetSPT) &&
		(abi.Version < ABIVersionMin || abi.Version > ABIVersionMax) {
		return nil, &FormatError{
			Path:  path,
			Kind:  ErrUnsupportedABIVersion,
			Field: "ABI1.abi_version",
			Value: uint64(abi.Version),
			Reason: fmt.Sprintf("%s %d (ntender supports %d to %d)", ErrUnsupportedABIVersion,
				abi.Version, ABIVersionMin, ABIVersionMax),
		}
	}

	entries, err := readManifestNote(path, data, phdrs)
	if err != nil {
		return nil, err
	}
	devices, err := checkDevices(path, entries)
	if err != nil {
		return nil, err
	}

	if h.entry < GuestMinBase {
		return nil, invalidExecutable(path, "e_entry", h.entry,
			"e_entry %#x does not fall within the memory allocation range (below %#x)",
			h.entry, GuestMinBase)
	}
	segments, kernelEnd, err := parseSegments(path, data, phdrs)
	if err != nil {
		return nil, err
	}
	if !entryIsExecutable(h.entry, segments) {
		return nil, invalidExecutable(path, "e_entry", h.entry,
			"e_entry %#x is not inside an executable PT_LOAD segment", h.entry)
	}

	return &Unikernel{
		Path:            path,
		Target:          abi.Target,
		ABIVersion:      abi.Version,
		Entry:           h.entry,
		KernelEnd:       kernelEnd,
		Segments:        segments,
		Devices:         devices,
		ManifestEntries: len(entries),
	}, nil
}

// entryIsExecutable reports whether entry lies in the file-backed bytes of
// a segment with PF_X.
func entryIsExecutable(entry uint64, segments []Segment) bool {
	for _, s := range segments {
		if s.Prot&ProtExec != 0 && entry >= s.Vaddr && entry-s.Vaddr < s.Filesz {
			return true
		}
	}
	return false
}

// CheckFits checks that the unikernel fits in a guest memory of memSize
// bytes, with the checks and order of the Solo5 elf_load: e_entry below
// memSize, then for each segment p_vaddr below memSize, p_vaddr+p_filesz
// and the aligned end at most memSize. For spt, memSize is the --mem size.
// solo5-hvt checks against the whole mapping, net ring included. Passing
// the guest-visible size instead is stricter and keeps segments out of the
// ring. The error is a *FormatError of kind ErrDoesNotFit.
func (u *Unikernel) CheckFits(memSize uint64) error {
	doesNotFit := func(field string, value uint64, format string, args ...any) error {
		return &FormatError{
			Path:  u.Path,
			Kind:  ErrDoesNotFit,
			Field: field,
			Value: value,
			Reason: "invalid executable: " + fmt.Sprintf(format, args...) +
				fmt.Sprintf("; guest memory is %d bytes and the executable "+
					"needs at least %d MiB", memSize, u.minMemMiB()),
		}
	}
	if u.Entry >= memSize {
		return doesNotFit("e_entry", u.Entry,
			"e_entry %#x does not fall within the memory allocation range", u.Entry)
	}
	for _, s := range u.Segments {
		field := fmt.Sprintf("phdr[%d].p_vaddr", s.Index)
		if s.Vaddr >= memSize {
			return doesNotFit(field, s.Vaddr,
				"phdr[%d] program file segment at %#x falls outside of valid range", s.Index, s.Vaddr)
		}
		// Parse has checked that p_vaddr + p_filesz does not overflow.
		if s.Vaddr+s.Filesz > memSize {
			return doesNotFit(field, s.Vaddr,
				"phdr[%d] program file segment ending at %#x falls outside of valid range",
				s.Index, s.Vaddr+s.Filesz)
		}
		if s.End > memSize {
			return doesNotFit(field, s.Vaddr,
				"phdr[%d] program memory segment ending at %#x falls outside of valid range",
				s.Index, s.End)
		}
	}
	return nil
}

// minMemMiB returns the guest memory in MiB that CheckFits needs at the
// least: past the entry point and the end of every segment. The tenders
// add room for the stack and heap on top.
func (u *Unikernel) minMemMiB() uint64 {
	need := u.Entry + 1
	for _, s := range u.Segments {
		need = max(need, s.End, s.Vaddr+s.Filesz)
	}
	return need>>20 + min(need&(1<<20-1), 1)
}

// Device returns the manifest device called name.
func (u *Unikernel) Device(name string) (Device, bool) {
	for _, d := range u.Devices {
		if d.Name == name {
			return d, true
		}
	}
	return Device{}, false
}

// ReadFile reads a unikernel file with the MaxFileSize cap of Load, for
// callers that use ReadABI or ReadManifest.
func ReadFile(path string) ([]byte, error) {
	return readFileCapped(path, MaxFileSize)
}

// fileKind names the type of a file that is not regular, for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "of type " + m.Type().String()
}
