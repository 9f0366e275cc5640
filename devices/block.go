package devices

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ntender/ntender/abi"
)

// DefaultSectorSize is the block size of a block device when the command
// line gives none.
const DefaultSectorSize = 512

// MaxSectorSize is the largest block size the manifest can carry: its
// block_size field is a u16, and block sizes are powers of two.
const MaxSectorSize = 1 << 15

// Errors for block devices. Their text keeps the capitalised wording of the
// upstream Solo5 tenders, which scripts and tests search for.
var (
	ErrSectorSize = errors.New("Block size must be a multiple of 2 greater than or equal 512")
	//lint:ignore ST1005 upstream wording
	ErrTooSmall = errors.New("Backing storage must be at least 1 block")
	//lint:ignore ST1005 upstream wording
	ErrMisaligned = errors.New("Backing storage size must be block aligned")
)

// Block is a block device backed by a regular file or a host block device,
// opened read-write.
type Block struct {
	Name       string
	Index      int // manifest index, which is also the guest's handle
	Path       string
	File       *os.File
	Capacity   uint64 // bytes, a whole number of sectors
	SectorSize uint64 // bytes, a power of two in [512, MaxSectorSize]

	closed bool
}

// CheckSectorSize returns ErrSectorSize, with the value, unless size is a
// power of two between 512 and MaxSectorSize.
func CheckSectorSize(size uint64) error {
	if size < DefaultSectorSize || size > MaxSectorSize || size&(size-1) != 0 {
		return fmt.Errorf("%w: got %d, expected a power of two from %d to %d",
			ErrSectorSize, size, DefaultSectorSize, MaxSectorSize)
	}
	return nil
}

// OpenBlock opens path read-write as the backing storage of the manifest
// device dev. A sectorSize of 0 means DefaultSectorSize. The capacity is
// the size of the file (or of the block device), which must be a non-zero
// multiple of the sector size.
func OpenBlock(dev abi.Device, path string, sectorSize uint64) (*Block, error) {
	if dev.Type != abi.DeviceBlockBasic {
		return nil, fmt.Errorf("device %q is not a BLOCK_BASIC device", dev.Name)
	}
	if sectorSize == 0 {
		sectorSize = DefaultSectorSize
	}
	if err := CheckSectorSize(sectorSize); err != nil {
		return nil, err
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening block device: %w", err)
	}
	capacity, err := blockCapacity(f)
	if err != nil {
		f.Close()
		return nil, err
	}

	if capacity < sectorSize {
		f.Close()
		return nil, fmt.Errorf("%w (%d bytes) in size: %s has %d bytes",
			ErrTooSmall, sectorSize, path, capacity)
	}
	if capacity%sectorSize != 0 {
		f.Close()
		return nil, fmt.Errorf("%w (%d bytes): capacity %d bytes of %s is not a multiple "+
			"of the block size (the file must be a whole number of blocks)",
			ErrMisaligned, sectorSize, capacity, path)
	}

	return &Block{
		Name:       dev.Name,
		Index:      dev.Index,
		Path:       path,
		File:       f,
		Capacity:   capacity,
		SectorSize: sectorSize,
	}, nil
}

// blockCapacity returns the size of a regular file or block device, found
// by seeking to its end as the upstream tenders do, because Stat reports
// size 0 for block devices.
func blockCapacity(f *os.File) (uint64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("determining capacity: %w", err)
	}
	mode := info.Mode()
	if !mode.IsRegular() && mode&os.ModeDevice == 0 || mode&os.ModeCharDevice != 0 {
		return 0, fmt.Errorf("%s is not a regular file or block device (mode %v)", f.Name(), mode)
	}

	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("determining capacity of %s: %w", f.Name(), err)
	}
	return uint64(end), nil
}

// inRange reports whether [off, off+n) lies within the device. It rejects
// off == Capacity even when n is 0, as the upstream hvt tender does.
func (b *Block) inRange(off uint64, n int) bool {
	if off >= b.Capacity {
		return false
	}
	end := off + uint64(n)
	return end >= off && end <= b.Capacity
}

// ReadAt reads len(p) bytes at byte offset off. A range that does not lie
// within the device returns abi.ResultEINVAL. A zero-length read inside the
// device returns abi.ResultOK without I/O. The length need not be the
// sector size and the offset need not be aligned: the Solo5 bindings
// enforce both, and the upstream hvt tender does not. A host I/O error or a
// short read returns an error, which ends the guest.
func (b *Block) ReadAt(p []byte, off uint64) (abi.Result, error) {
	if !b.inRange(off, len(p)) {
		return abi.ResultEINVAL, nil
	}
	if len(p) == 0 {
		return abi.ResultOK, nil
	}

	n, err := b.File.ReadAt(p, int64(off))
	if err != nil {
		return 0, fmt.Errorf("reading %d bytes at offset %d of block device %s (%s): read %d: %w",
			len(p), off, b.Name, b.Path, n, err)
	}
	return abi.ResultOK, nil
}

// WriteAt writes p at byte offset off, with the same checks and results as
// ReadAt. The data reaches the file (the page cache) before it returns. It
// is not synced to stable storage, as with the upstream tenders.
func (b *Block) WriteAt(p []byte, off uint64) (abi.Result, error) {
	if !b.inRange(off, len(p)) {
		return abi.ResultEINVAL, nil
	}
	if len(p) == 0 {
		return abi.ResultOK, nil
	}

	n, err := b.File.WriteAt(p, int64(off))
	if err != nil {
		return 0, fmt.Errorf("writing %d bytes at offset %d of block device %s (%s): wrote %d: %w",
			len(p), off, b.Name, b.Path, n, err)
	}
	return abi.ResultOK, nil
}

// Close closes the backing file. It is safe to call more than once.
func (b *Block) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.File.Close()
	if err != nil {
		return fmt.Errorf("closing block device %s: %w", b.Name, err)
	}
	return nil
}
