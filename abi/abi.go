// Package abi reads Solo5 unikernel files and describes the binary interface
// between a Solo5 guest and its tender: the ELF load rules, the ABI and
// manifest notes, the boot information blocks and the hvt hypercall
// argument layouts.
//
// Load and Parse treat the file as hostile input. They return an immutable
// *Unikernel only when every check passes, and a *FormatError naming the
// offending field and value otherwise. The checks follow the Solo5 tenders
// of releases v0.6.0 through v0.12.1, which produce ABI version 1 (v0.6,
// v0.7) and 2 (v0.8 and later), both with manifest version 1.
package abi

// Target is the Solo5 ABI target recorded in the ABI1 note.
type Target uint32

// ABI targets as numbered by Solo5.
const (
	TargetHVT    Target = 1
	TargetSPT    Target = 2
	TargetVirtio Target = 3
	TargetMuen   Target = 4
	TargetGenode Target = 5
	TargetXen    Target = 6
)

// DeviceType is the type of a manifest entry.
type DeviceType uint32

// Manifest entry types as numbered by Solo5.
const (
	DeviceBlockBasic    DeviceType = 1
	DeviceNetBasic      DeviceType = 2
	DeviceReservedFirst DeviceType = 0x40000000
)

// Prot is a set of segment access rights, with the ELF PF_* bit values.
type Prot uint32

// Segment access rights (ELF PF_X, PF_W, PF_R).
const (
	ProtExec  Prot = 1
	ProtWrite Prot = 2
	ProtRead  Prot = 4
)

// Device is one manifest entry that a user can attach.
type Device struct {
	// Index is the entry's position in the manifest, which is also the
	// solo5_handle_t the guest uses for it (1..63).
	Index int
	Name  string
	Type  DeviceType
}

// Segment is one PT_LOAD program header that the tender loads.
type Segment struct {
	// Index is the position of the program header in the ELF program
	// header table.
	Index  int
	Offset uint64 // p_offset
	Vaddr  uint64 // p_vaddr
	Filesz uint64 // p_filesz
	Memsz  uint64 // p_memsz
	// Start and End are the page-aligned range [Start, End) the segment
	// occupies after rounding p_vaddr down and p_vaddr+p_memsz up to p_align.
	Start, End uint64
	// Prot is p_flags restricted to PF_R, PF_W and PF_X. Parse rejects
	// segments that request both write and exec.
	Prot Prot
	// Data holds the p_filesz bytes from the file. The bytes from Filesz
	// to Memsz are zero in the guest.
	Data []byte
}

// Unikernel is a validated Solo5 unikernel file.
type Unikernel struct {
	Path       string
	Target     Target
	ABIVersion uint32
	Entry      uint64
	// KernelEnd is the highest aligned end of the loaded segments, what the
	// upstream tenders report in boot info as kernel_end.
	KernelEnd uint64
	Segments  []Segment
	// Devices lists the manifest entries after the reserved entry 0, in
	// manifest order.
	Devices []Device
	// ManifestEntries is the number of manifest entries including the
	// reserved entry 0.
	ManifestEntries int
}
