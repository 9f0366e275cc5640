package devices

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntender/ntender/abi"
)

var blockDev = abi.Device{Index: 1, Name: "storage", Type: abi.DeviceBlockBasic}

// writeImage creates a file of size bytes, each byte its offset mod 251,
// so that reads at different offsets return different data.
func writeImage(t *testing.T, size int) string {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i % 251)
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTestBlock(t *testing.T, size int, sectorSize uint64) *Block {
	t.Helper()
	b, err := OpenBlock(blockDev, writeImage(t, size), sectorSize)
	if err != nil {
		t.Fatalf("OpenBlock: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestOpenBlockDefaults(t *testing.T) {
	b := openTestBlock(t, 8192, 0)
	if b.Capacity != 8192 {
		t.Errorf("Capacity = %d, want 8192", b.Capacity)
	}
	if b.SectorSize != 512 {
		t.Errorf("SectorSize = %d, want 512", b.SectorSize)
	}
	if b.Name != "storage" || b.Index != 1 {
		t.Errorf("Name, Index = %q, %d, want storage, 1", b.Name, b.Index)
	}
}

func TestOpenBlockSectorSize4096(t *testing.T) {
	b := openTestBlock(t, 4*4096, 4096)
	if b.SectorSize != 4096 {
		t.Errorf("SectorSize = %d, want 4096", b.SectorSize)
	}
}

func TestOpenBlockRejects(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		sectorSize uint64
		want       error
		wantText   string
	}{
		{"misaligned", 6144, 4096, ErrMisaligned, "Backing storage size must be block aligned (4096 bytes)"},
		{"smaller than a block", 256, 512, ErrTooSmall, "Backing storage must be at least 1 block (512 bytes)"},
		{"empty", 0, 512, ErrTooSmall, "at least 1 block"},
		{"odd sector size", 1563, 521, ErrSectorSize, "Block size must be a multiple of 2"},
		{"sector size 256", 256, 256, ErrSectorSize, "greater than or equal 512"},
		{"sector size 65536", 65536, 65536, ErrSectorSize, "from 512 to 32768"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := OpenBlock(blockDev, writeImage(t, tt.size), tt.sectorSize)
			if err == nil {
				b.Close()
				t.Fatal("OpenBlock succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestOpenBlockRejectsFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "missing.img"), "no such file"},
		{"directory", dir, "is a directory"},
		{"character device", "/dev/zero", "not a regular file or block device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := OpenBlock(blockDev, tt.path, 512)
			if err == nil {
				b.Close()
				t.Fatal("OpenBlock succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestOpenBlockRejectsNetDevice(t *testing.T) {
	dev := abi.Device{Index: 1, Name: "service0", Type: abi.DeviceNetBasic}
	b, err := OpenBlock(dev, writeImage(t, 512), 512)
	if err == nil {
		b.Close()
		t.Fatal("OpenBlock succeeded on a NET_BASIC device")
	}
}

func TestCheckSectorSize(t *testing.T) {
	for _, size := range []uint64{512, 1024, 4096, 32768} {
		if err := CheckSectorSize(size); err != nil {
			t.Errorf("CheckSectorSize(%d) = %v, want nil", size, err)
		}
	}
	for _, size := range []uint64{0, 1, 256, 511, 513, 521, 1536, 65536, 1 << 20} {
		if err := CheckSectorSize(size); !errors.Is(err, ErrSectorSize) {
			t.Errorf("CheckSectorSize(%d) = %v, want ErrSectorSize", size, err)
		}
	}
}

func TestBlockBounds(t *testing.T) {
	b := openTestBlock(t, 4096, 512)
	tests := []struct {
		name string
		off  uint64
		len  int
		want abi.Result
	}{
		{"first sector", 0, 512, abi.ResultOK},
		{"last sector", 3584, 512, abi.ResultOK},
		{"whole device", 0, 4096, abi.ResultOK},
		{"unaligned length and offset", 100, 7, abi.ResultOK},
		{"empty inside", 4095, 0, abi.ResultOK},
		{"ends at capacity", 4095, 1, abi.ResultOK},
		{"offset at capacity", 4096, 512, abi.ResultEINVAL},
		{"empty at capacity", 4096, 0, abi.ResultEINVAL},
		{"past capacity by one", 3585, 512, abi.ResultEINVAL},
		{"one byte too long", 0, 4097, abi.ResultEINVAL},
		{"offset far past", 1 << 40, 512, abi.ResultEINVAL},
		{"offset plus length overflows", math.MaxUint64 - 10, 512, abi.ResultEINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, tt.len)
			got, err := b.ReadAt(buf, tt.off)
			if err != nil {
				t.Fatalf("ReadAt: %v", err)
			}
			if got != tt.want {
				t.Errorf("ReadAt result = %d, want %d", got, tt.want)
			}
			got, err = b.WriteAt(buf, tt.off)
			if err != nil {
				t.Fatalf("WriteAt: %v", err)
			}
			if got != tt.want {
				t.Errorf("WriteAt result = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBlockReadAtData(t *testing.T) {
	b := openTestBlock(t, 4096, 512)
	buf := make([]byte, 512)
	res, err := b.ReadAt(buf, 1024)
	if err != nil || res != abi.ResultOK {
		t.Fatalf("ReadAt = %d, %v", res, err)
	}
	for i, c := range buf {
		if want := byte((1024 + i) % 251); c != want {
			t.Fatalf("byte %d = %d, want %d", i, c, want)
		}
	}
}

func TestBlockWriteAtReachesFile(t *testing.T) {
	b := openTestBlock(t, 4096, 512)
	data := bytes.Repeat([]byte{0xA5}, 512)
	res, err := b.WriteAt(data, 3584)
	if err != nil || res != abi.ResultOK {
		t.Fatalf("WriteAt = %d, %v", res, err)
	}

	// Read the file through a separate descriptor.
	file, err := os.ReadFile(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file[3584:], data) {
		t.Errorf("last sector of the file = % x..., want a5", file[3584:3584+8])
	}
	for i := 0; i < 3584; i++ {
		if want := byte(i % 251); file[i] != want {
			t.Fatalf("byte %d changed to %d, want %d", i, file[i], want)
		}
	}
}

func TestBlockShortReadIsError(t *testing.T) {
	b := openTestBlock(t, 4096, 512)
	// Shrink the file behind the device's back, so a read inside the
	// recorded capacity comes up short.
	if err := os.Truncate(b.Path, 1024); err != nil {
		t.Fatal(err)
	}
	_, err := b.ReadAt(make([]byte, 512), 2048)
	if err == nil {
		t.Fatal("ReadAt after truncation succeeded")
	}
	if !strings.Contains(err.Error(), "offset 2048") {
		t.Errorf("error %q does not name the offset", err)
	}
}

func TestBlockIOErrorAfterClose(t *testing.T) {
	b := openTestBlock(t, 4096, 512)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("ReadAt on a closed device succeeded")
	}
	if _, err := b.WriteAt(make([]byte, 512), 0); err == nil {
		t.Error("WriteAt on a closed device succeeded")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}
