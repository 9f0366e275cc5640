//lint:file-ignore U1000 the mirror structs exist only for unsafe.Offsetof and unsafe.Sizeof

package abi

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"
)

// The structs below mirror the Solo5 C structs field by field, with the
// padding the x86_64 System V ABI inserts made explicit, so that
// unsafe.Offsetof and unsafe.Sizeof give the C offsets and sizes. The
// tests compare them with the constants in layout.go.

// hvtBootInfoC mirrors struct hvt_boot_info (include/hvt_abi.h, v0.11+).
type hvtBootInfoC struct {
	memSize       uint64
	kernelEnd     uint64
	cpuCycleFreq  uint64
	cmdline       uint64
	mft           uint64
	hostFeatures  uint32
	guestFeatures uint32
	netRing       uint64
}

// hvtBootInfoV1C mirrors struct hvt_boot_info up to Solo5 v0.10.
type hvtBootInfoV1C struct {
	memSize      uint64
	kernelEnd    uint64
	cpuCycleFreq uint64
	cmdline      uint64
	mft          uint64
}

// sptBootInfoC mirrors struct spt_boot_info (include/spt_abi.h).
type sptBootInfoC struct {
	memSize   uint64
	kernelEnd uint64
	cmdline   uint64
	mft       uint64
	epollfd   int32
	timerfd   int32
}

// mftC mirrors the header of struct mft (include/mft_abi.h).
type mftC struct {
	version uint32
	entries uint32
}

// mftEntryBlockC and mftEntryNetC mirror struct mft_entry with each member
// of the union u.
type mftEntryBlockC struct {
	name      [68]byte
	typ       uint32
	capacity  uint64
	blockSize uint16
	_         [6]byte
	hostfd    uint64 // union b: int hostfd or void *data
	attached  bool
	_         [7]byte
}

type mftEntryNetC struct {
	name     [68]byte
	typ      uint32
	mac      [6]byte
	mtu      uint16
	_        [8]byte
	hostfd   uint64
	attached bool
	_        [7]byte
}

type hcWalltimeC struct{ nsecs uint64 }

type hcPutsC struct{ data, len uint64 }

type hcPollC struct {
	timeoutNsecs uint64
	readySet     uint64
	ret          int32
	_            [4]byte
}

type hcBlockC struct {
	handle, offset, data, len uint64
	ret                       int32
	_                         [4]byte
}

type hcNetC struct {
	handle, data, len uint64
	ret               int32
	_                 [4]byte
}

type hcHaltC struct {
	cookie     uint64
	exitStatus int32
	_          [4]byte
}

type trapRegsC struct {
	cr2, ec, rip, cs, rflags, rsp, ss uint64
}

type offsetCase struct {
	name string
	got  uintptr
	want int
}

func checkOffsets(t *testing.T, cases []offsetCase) {
	t.Helper()
	for _, c := range cases {
		if int(c.got) != c.want {
			t.Errorf("%s = %d, layout constant is %d", c.name, c.got, c.want)
		}
	}
}

func TestHVTBootInfoLayout(t *testing.T) {
	var s hvtBootInfoC
	var v1 hvtBootInfoV1C
	checkOffsets(t, []offsetCase{
		{"sizeof(hvt_boot_info)", unsafe.Sizeof(s), HVTBootInfoSize},
		{"sizeof(hvt_boot_info) up to v0.10", unsafe.Sizeof(v1), HVTBootInfoSizeV1},
		{"mem_size", unsafe.Offsetof(s.memSize), HVTBootInfoMemSize},
		{"kernel_end", unsafe.Offsetof(s.kernelEnd), HVTBootInfoKernelEnd},
		{"cpu_cycle_freq", unsafe.Offsetof(s.cpuCycleFreq), HVTBootInfoCPUCycleFreq},
		{"cmdline", unsafe.Offsetof(s.cmdline), HVTBootInfoCmdline},
		{"mft", unsafe.Offsetof(s.mft), HVTBootInfoMft},
		{"host_features", unsafe.Offsetof(s.hostFeatures), HVTBootInfoHostFeatures},
		{"guest_features", unsafe.Offsetof(s.guestFeatures), HVTBootInfoGuestFeatures},
		{"net_ring", unsafe.Offsetof(s.netRing), HVTBootInfoNetRing},
		{"v1 mft", unsafe.Offsetof(v1.mft), HVTBootInfoMft},
	})
}

func TestSPTBootInfoLayout(t *testing.T) {
	var s sptBootInfoC
	checkOffsets(t, []offsetCase{
		{"sizeof(spt_boot_info)", unsafe.Sizeof(s), SPTBootInfoSize},
		{"mem_size", unsafe.Offsetof(s.memSize), SPTBootInfoMemSize},
		{"kernel_end", unsafe.Offsetof(s.kernelEnd), SPTBootInfoKernelEnd},
		{"cmdline", unsafe.Offsetof(s.cmdline), SPTBootInfoCmdline},
		{"mft", unsafe.Offsetof(s.mft), SPTBootInfoMft},
		{"epollfd", unsafe.Offsetof(s.epollfd), SPTBootInfoEpollfd},
		{"timerfd", unsafe.Offsetof(s.timerfd), SPTBootInfoTimerfd},
	})
}

func TestManifestLayout(t *testing.T) {
	var h mftC
	var b mftEntryBlockC
	var n mftEntryNetC
	checkOffsets(t, []offsetCase{
		{"sizeof(struct mft) header", unsafe.Sizeof(h), ManifestHeaderSize},
		{"mft.version", unsafe.Offsetof(h.version), ManifestVersionOffset},
		{"mft.entries", unsafe.Offsetof(h.entries), ManifestEntriesOffset},
		{"sizeof(mft_entry) block", unsafe.Sizeof(b), ManifestEntrySize},
		{"sizeof(mft_entry) net", unsafe.Sizeof(n), ManifestEntrySize},
		{"name", unsafe.Offsetof(b.name), EntryName},
		{"sizeof name", unsafe.Sizeof(b.name), ManifestNameSize},
		{"type", unsafe.Offsetof(b.typ), EntryType},
		{"u.block_basic.capacity", unsafe.Offsetof(b.capacity), EntryBlockCapacity},
		{"u.block_basic.block_size", unsafe.Offsetof(b.blockSize), EntryBlockSize},
		{"b.hostfd", unsafe.Offsetof(b.hostfd), EntryHostFd},
		{"attached", unsafe.Offsetof(b.attached), EntryAttached},
		{"u.net_basic.mac", unsafe.Offsetof(n.mac), EntryNetMAC},
		{"u.net_basic.mtu", unsafe.Offsetof(n.mtu), EntryNetMTU},
		{"net b.hostfd", unsafe.Offsetof(n.hostfd), EntryHostFd},
		{"net attached", unsafe.Offsetof(n.attached), EntryAttached},
	})
	if manifestMaxSize != 6668 {
		t.Errorf("maximum MFT1 n_descsz = %d, want 6668 (12 + 64*104)", manifestMaxSize)
	}
}

func TestHypercallLayouts(t *testing.T) {
	var w hcWalltimeC
	var p hcPutsC
	var poll hcPollC
	var blk hcBlockC
	var net hcNetC
	var halt hcHaltC
	var trap trapRegsC
	checkOffsets(t, []offsetCase{
		{"sizeof(hvt_hc_walltime)", unsafe.Sizeof(w), WalltimeSize},
		{"walltime.nsecs", unsafe.Offsetof(w.nsecs), WalltimeNsecs},
		{"sizeof(hvt_hc_puts)", unsafe.Sizeof(p), PutsSize},
		{"puts.data", unsafe.Offsetof(p.data), PutsData},
		{"puts.len", unsafe.Offsetof(p.len), PutsLen},
		{"sizeof(hvt_hc_poll)", unsafe.Sizeof(poll), PollSize},
		{"poll.timeout_nsecs", unsafe.Offsetof(poll.timeoutNsecs), PollTimeout},
		{"poll.ready_set", unsafe.Offsetof(poll.readySet), PollReadySet},
		{"poll.ret", unsafe.Offsetof(poll.ret), PollRet},
		{"sizeof(hvt_hc_block_*)", unsafe.Sizeof(blk), BlockSize},
		{"block.handle", unsafe.Offsetof(blk.handle), BlockHandle},
		{"block.offset", unsafe.Offsetof(blk.offset), BlockOffset},
		{"block.data", unsafe.Offsetof(blk.data), BlockData},
		{"block.len", unsafe.Offsetof(blk.len), BlockLen},
		{"block.ret", unsafe.Offsetof(blk.ret), BlockRet},
		{"sizeof(hvt_hc_net_*)", unsafe.Sizeof(net), NetSize},
		{"net.handle", unsafe.Offsetof(net.handle), NetHandle},
		{"net.data", unsafe.Offsetof(net.data), NetData},
		{"net.len", unsafe.Offsetof(net.len), NetLen},
		{"net.ret", unsafe.Offsetof(net.ret), NetRet},
		{"sizeof(hvt_hc_halt)", unsafe.Sizeof(halt), HaltSize},
		{"halt.cookie", unsafe.Offsetof(halt.cookie), HaltCookie},
		{"halt.exit_status", unsafe.Offsetof(halt.exitStatus), HaltExitStatus},
		{"sizeof(trap_regs)", unsafe.Sizeof(trap), TrapFrameSize},
		{"trap.cr2", unsafe.Offsetof(trap.cr2), TrapFrameCR2},
		{"trap.ec", unsafe.Offsetof(trap.ec), TrapFrameEC},
		{"trap.rip", unsafe.Offsetof(trap.rip), TrapFrameRIP},
		{"trap.cs", unsafe.Offsetof(trap.cs), TrapFrameCS},
		{"trap.rflags", unsafe.Offsetof(trap.rflags), TrapFrameRFLAGS},
		{"trap.rsp", unsafe.Offsetof(trap.rsp), TrapFrameRSP},
		{"trap.ss", unsafe.Offsetof(trap.ss), TrapFrameSS},
	})
}

func u64At(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
func u32At(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func u16At(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }

func TestHVTBootInfoMarshal(t *testing.T) {
	bi := HVTBootInfo{
		MemSize:      0x1111111111111111,
		KernelEnd:    0x2222222222222222,
		CPUCycleFreq: 0x3333333333333333,
		Cmdline:      0x4444444444444444,
		Mft:          0x5555555555555555,
		HostFeatures: 0x66666666,
		NetRing:      0x7777777777777777,
	}
	b, err := bi.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HVTBootInfoSize {
		t.Fatalf("len = %d, want %d", len(b), HVTBootInfoSize)
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"mem_size", u64At(b, HVTBootInfoMemSize), bi.MemSize},
		{"kernel_end", u64At(b, HVTBootInfoKernelEnd), bi.KernelEnd},
		{"cpu_cycle_freq", u64At(b, HVTBootInfoCPUCycleFreq), bi.CPUCycleFreq},
		{"cmdline", u64At(b, HVTBootInfoCmdline), bi.Cmdline},
		{"mft", u64At(b, HVTBootInfoMft), bi.Mft},
		{"host_features", uint64(u32At(b, HVTBootInfoHostFeatures)), uint64(bi.HostFeatures)},
		{"guest_features", uint64(u32At(b, HVTBootInfoGuestFeatures)), 0},
		{"net_ring", u64At(b, HVTBootInfoNetRing), bi.NetRing},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestSPTBootInfoMarshal(t *testing.T) {
	bi := SPTBootInfo{
		MemSize: 0x200000, KernelEnd: 0x108000, Cmdline: 0x11400,
		Mft: 0x11028, Epollfd: 3, Timerfd: -1,
	}
	b, err := bi.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != SPTBootInfoSize {
		t.Fatalf("len = %d, want %d", len(b), SPTBootInfoSize)
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"mem_size", u64At(b, SPTBootInfoMemSize), bi.MemSize},
		{"kernel_end", u64At(b, SPTBootInfoKernelEnd), bi.KernelEnd},
		{"cmdline", u64At(b, SPTBootInfoCmdline), bi.Cmdline},
		{"mft", u64At(b, SPTBootInfoMft), bi.Mft},
		{"epollfd", uint64(u32At(b, SPTBootInfoEpollfd)), 3},
		{"timerfd", uint64(u32At(b, SPTBootInfoTimerfd)), 0xFFFFFFFF},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestCmdlineJoinAndLimit(t *testing.T) {
	got, err := Cmdline([]string{"a", "b  c", ""})
	if err != nil {
		t.Fatal(err)
	}
	if got != "a b  c " {
		t.Errorf("Cmdline = %q, want %q", got, "a b  c ")
	}
	if got, err := Cmdline(nil); err != nil || got != "" {
		t.Errorf("Cmdline(nil) = %q, %v; want empty", got, err)
	}
	max := string(bytes.Repeat([]byte("x"), CmdlineSize-1))
	if _, err := Cmdline([]string{max}); err != nil {
		t.Errorf("Cmdline of 8191 characters: %v", err)
	}
	_, err = Cmdline([]string{max[1:], "y"})
	if err != ErrCmdlineTooLong {
		t.Errorf("Cmdline of 8192 characters: err = %v, want ErrCmdlineTooLong", err)
	}
	if err != nil && err.Error() != "Guest command line too long (max=8191 characters)" {
		t.Errorf("message = %q", err)
	}
}
