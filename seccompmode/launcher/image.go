package launcher

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

// The image format, mirrored from image.h. Every field is a little-endian
// u64, so the structs have no padding.
const (
	imageMagic = "ntspt\x00\x01\x00"

	headerImageSize      = 8
	headerMemSize        = 16
	headerEntry          = 24
	headerFlags          = 32
	headerBootOffset     = 40
	headerBootSize       = 48
	headerSegmentsOffset = 56
	headerSegmentsCount  = 64
	headerFdsOffset      = 72
	headerFdsCount       = 80
	headerFilterOffset   = 88
	headerFilterCount    = 96
	headerIgnoredSignals = 104
	headerSize           = 112

	segmentVaddr      = 0
	segmentFilesz     = 8
	segmentStart      = 16
	segmentEnd        = 24
	segmentProt       = 32
	segmentDataOffset = 40
	segmentSize       = 48

	fdSize          = 8
	instructionSize = 8 // struct sock_filter

	flagExecHeap = 1
)

// Limits the constructor enforces, checked here too so that a bad launch
// fails before execve with a Go error.
const (
	maxSegments = 1024
	maxFds      = 1024
	// MaxFilterLen is the longest BPF program the kernel accepts
	// (BPF_MAXINSNS).
	MaxFilterLen = 4096
	// MaxBootSize is the room for boot info, manifest and command line
	// between the boot info address and the lowest segment address.
	MaxBootSize = abi.GuestMinBase - abi.SPTBootInfoAddr
)

// Segment is a guest memory range to fill from the unikernel file and
// protect.
type Segment struct {
	// Vaddr is the guest address of Data.
	Vaddr uint64
	// Start and End are the page-aligned range that gets Prot; it contains
	// [Vaddr, Vaddr+len(Data)).
	Start, End uint64
	Prot       abi.Prot
	Data       []byte
}

// Image is everything the constructor needs to start a guest.
type Image struct {
	// MemSize is the guest memory size: addresses [0, MemSize), of which
	// [abi.SPTHostMemBase, MemSize) is mapped.
	MemSize uint64
	Entry   uint64
	// ExecHeap maps all of guest memory outside the segments RWX
	// (--x-exec-heap).
	ExecHeap bool
	// Boot is copied to abi.SPTBootInfoAddr: the spt boot info, then the
	// manifest and the command line at the addresses the boot info gives.
	Boot     []byte
	Segments []Segment
	// KeepFds are the fds above 2 that stay open in the guest process.
	KeepFds []int
	// Filter is the seccomp BPF program installed before the jump.
	Filter []unix.SockFilter
	// IgnoredSignals has bit N-1 set for each signal N to set to SIG_IGN
	// in the guest process, normally InitiallyIgnoredSignals().
	IgnoredSignals uint64
}

// ErrInvalidImage is wrapped by every error of MarshalBinary.
var ErrInvalidImage = errors.New("invalid spt launch image")

// MarshalBinary validates the image as the constructor will and encodes it
// in the format of image.h.
func (im *Image) MarshalBinary() ([]byte, error) {
	if err := im.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidImage, err)
	}
	fds := slices.Clone(im.KeepFds)
	slices.Sort(fds)

	segmentsOffset := uint64(headerSize)
	fdsOffset := segmentsOffset + uint64(len(im.Segments))*segmentSize
	filterOffset := fdsOffset + uint64(len(fds))*fdSize
	bootOffset := filterOffset + uint64(len(im.Filter))*instructionSize
	dataOffset := align8(bootOffset + uint64(len(im.Boot)))
	size := dataOffset
	for _, s := range im.Segments {
		size = align8(size + uint64(len(s.Data)))
	}

	b := make([]byte, size)
	le := binary.LittleEndian
	copy(b, imageMagic)
	le.PutUint64(b[headerImageSize:], size)
	le.PutUint64(b[headerMemSize:], im.MemSize)
	le.PutUint64(b[headerEntry:], im.Entry)
	if im.ExecHeap {
		le.PutUint64(b[headerFlags:], flagExecHeap)
	}
	le.PutUint64(b[headerBootOffset:], bootOffset)
	le.PutUint64(b[headerBootSize:], uint64(len(im.Boot)))
	le.PutUint64(b[headerSegmentsOffset:], segmentsOffset)
	le.PutUint64(b[headerSegmentsCount:], uint64(len(im.Segments)))
	le.PutUint64(b[headerFdsOffset:], fdsOffset)
	le.PutUint64(b[headerFdsCount:], uint64(len(fds)))
	le.PutUint64(b[headerFilterOffset:], filterOffset)
	le.PutUint64(b[headerFilterCount:], uint64(len(im.Filter)))
	le.PutUint64(b[headerIgnoredSignals:], im.IgnoredSignals)

	data := dataOffset
	for i, s := range im.Segments {
		e := b[segmentsOffset+uint64(i)*segmentSize:]
		le.PutUint64(e[segmentVaddr:], s.Vaddr)
		le.PutUint64(e[segmentFilesz:], uint64(len(s.Data)))
		le.PutUint64(e[segmentStart:], s.Start)
		le.PutUint64(e[segmentEnd:], s.End)
		le.PutUint64(e[segmentProt:], uint64(s.Prot))
		le.PutUint64(e[segmentDataOffset:], data)
		copy(b[data:], s.Data)
		data = align8(data + uint64(len(s.Data)))
	}
	for i, fd := range fds {
		le.PutUint64(b[fdsOffset+uint64(i)*fdSize:], uint64(fd))
	}
	for i, ins := range im.Filter {
		e := b[filterOffset+uint64(i)*instructionSize:]
		le.PutUint16(e[0:], ins.Code)
		e[2] = ins.Jt
		e[3] = ins.Jf
		le.PutUint32(e[4:], ins.K)
	}
	copy(b[bootOffset:], im.Boot)
	return b, nil
}

func (im *Image) validate() error {
	if im.MemSize%abi.PageSize != 0 || im.MemSize <= abi.GuestMinBase {
		return fmt.Errorf("memory size %#x is not a multiple of %#x above %#x",
			im.MemSize, abi.PageSize, abi.GuestMinBase)
	}
	if im.Entry < abi.GuestMinBase || im.Entry >= im.MemSize {
		return fmt.Errorf("entry point %#x is outside [%#x, %#x)",
			im.Entry, abi.GuestMinBase, im.MemSize)
	}
	if len(im.Boot) < abi.SPTBootInfoSize || len(im.Boot) > MaxBootSize {
		return fmt.Errorf("boot area of %d bytes is outside [%d, %d]",
			len(im.Boot), abi.SPTBootInfoSize, MaxBootSize)
	}
	if len(im.Segments) == 0 || len(im.Segments) > maxSegments {
		return fmt.Errorf("%d segments, want 1 to %d", len(im.Segments), maxSegments)
	}
	if err := validateSegments(im.Segments, im.MemSize); err != nil {
		return err
	}
	if len(im.KeepFds) > maxFds {
		return fmt.Errorf("%d fds to keep, the maximum is %d", len(im.KeepFds), maxFds)
	}
	fds := slices.Clone(im.KeepFds)
	slices.Sort(fds)
	for i, fd := range fds {
		if fd <= 2 {
			return fmt.Errorf("fd %d to keep is not above 2", fd)
		}
		if i > 0 && fd == fds[i-1] {
			return fmt.Errorf("fd %d to keep is listed twice", fd)
		}
	}
	if len(im.Filter) == 0 || len(im.Filter) > MaxFilterLen {
		return fmt.Errorf("seccomp filter of %d instructions, want 1 to %d",
			len(im.Filter), MaxFilterLen)
	}
	return nil
}

// validateSegments checks that each segment lies in guest memory above
// abi.GuestMinBase, is page-aligned, is W^X, and that the segments are
// sorted without sharing a page.
func validateSegments(segments []Segment, memSize uint64) error {
	previousEnd := uint64(abi.GuestMinBase)
	for i, s := range segments {
		filesz := uint64(len(s.Data))
		if s.Start%abi.PageSize != 0 || s.End%abi.PageSize != 0 ||
			s.Start < previousEnd || s.Start >= s.End || s.End > memSize ||
			s.Vaddr < s.Start || s.Vaddr > s.End || filesz > s.End-s.Vaddr {
			return fmt.Errorf("segment %d: range [%#x, %#x) with %d file bytes at %#x "+
				"is invalid in guest memory of %#x bytes after %#x",
				i, s.Start, s.End, filesz, s.Vaddr, memSize, previousEnd)
		}
		if s.Prot&^(abi.ProtRead|abi.ProtWrite|abi.ProtExec) != 0 ||
			(s.Prot&abi.ProtWrite != 0 && s.Prot&abi.ProtExec != 0) {
			return fmt.Errorf("segment %d: invalid protection flags %#x", i, s.Prot)
		}
		previousEnd = s.End
	}
	return nil
}

func align8(n uint64) uint64 {
	return (n + 7) &^ 7
}
