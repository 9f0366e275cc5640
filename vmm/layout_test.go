package vmm

import (
	"encoding/binary"
	"testing"

	"github.com/bobuhiro11/gokvm/kvm"

	"github.com/ntender/ntender/abi"
)

func TestPageTables(t *testing.T) {
	const alloc = 8 << 20
	mem := make([]byte, alloc)
	writePageTables(mem, alloc, false)
	u64 := func(gpa uint64) uint64 { return binary.LittleEndian.Uint64(mem[gpa:]) }

	want := map[uint64]uint64{
		pml4Addr:        0x3003,
		pdptAddr:        0x4003,
		pdptAddr + 8:    0x5003,
		pdptAddr + 16:   0x6003,
		pdptAddr + 24:   0x7003,
		pdAddr:          0x8003,
		pdAddr + 8:      0x200083,
		pdAddr + 16:     0x400083,
		pdAddr + 24:     0x600083,
		pdAddr + 32:     0, // 8 MiB: beyond memory
		pdAddr + 511*8:  0,
		pt0Addr:         0, // page 0 not present
		pt0Addr + 15*8:  0,
		pt0Addr + 16*8:  0x10001, // boot info: read-only
		pt0Addr + 255*8: 0xFF001,
		pt0Addr + 256*8: 0x100003,
		pt0Addr + 511*8: 0x1FF003,
		pdptAddr + 4*8:  0,
		pml4Addr + 8:    0,
		pdAddr + 0x1000: 0, // second PD: first entry is 1 GiB, absent
	}
	for gpa, w := range want {
		if got := u64(gpa); got != w {
			t.Errorf("entry at %#x = %#x, want %#x", gpa, got, w)
		}
	}
}

func TestPageTables4GiB(t *testing.T) {
	// Only the page-table area matters, so a 4 GiB allocation is not
	// needed to check where the last 2 MiB entry goes.
	mem := make([]byte, 0x9000)
	writePageTables(mem, 1<<32, false)
	last := binary.LittleEndian.Uint64(mem[pdAddr+2047*8:])
	if last != 0xFFE00083 {
		t.Errorf("last PD entry = %#x, want 0xffe00083", last)
	}
}

func TestGDT(t *testing.T) {
	mem := make([]byte, 0x2000)
	writeGDT(mem)
	for i, w := range []uint64{0, 0x00AF99000000FFFF, 0x00CF93000000FFFF} {
		if got := binary.LittleEndian.Uint64(mem[gdtAddr+i*8:]); got != w {
			t.Errorf("GDT[%d] = %#x, want %#x", i, got, w)
		}
	}
}

func TestBootArea(t *testing.T) {
	mem := make([]byte, 2<<20)
	manifest := make([]byte, abi.ManifestHeaderSize+2*abi.ManifestEntrySize)
	manifest[0] = 1
	a, err := placeBootArea(len(manifest))
	if err != nil {
		t.Fatalf("placeBootArea: %v", err)
	}
	if a.manifest != 0x10038 || a.cmdline != 0x10038+uint64(len(manifest)) {
		t.Errorf("manifest at %#x, cmdline at %#x", a.manifest, a.cmdline)
	}
	bi := abi.HVTBootInfo{MemSize: 2 << 20, CPUCycleFreq: 2_000_000_000,
		HostFeatures: 1, NetRing: 0x200000}
	if err := writeBootArea(mem, a, bi, manifest, "Hello_Solo5"); err != nil {
		t.Fatalf("writeBootArea: %v", err)
	}
	le := binary.LittleEndian
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"mem_size", le.Uint64(mem[0x10000:]), 2 << 20},
		{"cpu_cycle_freq", le.Uint64(mem[0x10010:]), 2_000_000_000},
		{"cmdline", le.Uint64(mem[0x10018:]), a.cmdline},
		{"mft", le.Uint64(mem[0x10020:]), 0x10038},
		{"host_features", uint64(le.Uint32(mem[0x10028:])), 1},
		{"guest_features", uint64(le.Uint32(mem[0x1002C:])), 0},
		{"net_ring", le.Uint64(mem[0x10030:]), 0x200000},
		{"manifest version", uint64(mem[0x10038]), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	got := string(mem[a.cmdline : a.cmdline+12])
	if got != "Hello_Solo5\x00" {
		t.Errorf("cmdline = %q", got)
	}

	long := make([]byte, abi.CmdlineSize)
	if err := writeBootArea(mem, a, bi, manifest, string(long)); err == nil {
		t.Error("8192-byte command line: no error")
	}
}

func TestLoadSegmentsRejectsOutOfRange(t *testing.T) {
	mem := make([]byte, 2<<20)
	segs := []abi.Segment{{Vaddr: 0x1FF000, Filesz: 0x2000, Memsz: 0x2000,
		Start: 0x1FF000, End: 0x201000, Data: make([]byte, 0x2000)}}
	if _, err := loadSegments(mem, segs); err == nil {
		t.Error("segment past the end of memory: no error")
	}
}

func TestLoadSegments(t *testing.T) {
	mem := make([]byte, 4<<20)
	for i := range mem[0x101000:0x103000] {
		mem[0x101000+i] = 0xFF
	}
	segs := []abi.Segment{
		{Vaddr: 0x100000, Filesz: 4, Memsz: 4, Start: 0x100000, End: 0x101000,
			Prot: abi.ProtExec, Data: []byte{1, 2, 3, 4}},
		{Vaddr: 0x101000, Filesz: 2, Memsz: 0x1800, Start: 0x101000, End: 0x103000,
			Prot: abi.ProtRead | abi.ProtWrite, Data: []byte{5, 6}},
	}
	prots, err := loadSegments(mem, segs)
	if err != nil {
		t.Fatalf("loadSegments: %v", err)
	}
	if mem[0x100003] != 4 || mem[0x101001] != 6 {
		t.Error("segment data not copied")
	}
	if mem[0x101002] != 0 || mem[0x1027FF] != 0 {
		t.Error("bss part not zeroed")
	}
	if mem[0x102800] != 0xFF {
		t.Error("zeroed past p_memsz")
	}
	want := []segmentProt{{0x100000, 0x101000, false}, {0x101000, 0x103000, true}}
	if len(prots) != 2 || prots[0] != want[0] || prots[1] != want[1] {
		t.Errorf("prots = %+v, want %+v", prots, want)
	}
}

func TestInitialRegisters(t *testing.T) {
	s := initialSregs(kvm.Sregs{ApicBase: 0xFEE00900})
	if s.CR0 != 0x80010021 || s.CR3 != 0x2000 || s.CR4 != 0x620 || s.EFER != 0x500 {
		t.Errorf("CR0 %#x CR3 %#x CR4 %#x EFER %#x, want 0x80010021 0x2000 0x620 0x500",
			s.CR0, s.CR3, s.CR4, s.EFER)
	}
	if s.CS.Selector != 0x08 || s.CS.L != 1 || s.CS.Typ != 9 || s.CS.DB != 0 {
		t.Errorf("CS = %+v", s.CS)
	}
	for _, seg := range []kvm.Segment{s.DS, s.ES, s.FS, s.GS, s.SS} {
		if seg.Selector != 0x10 || seg.Typ != 3 || seg.DB != 1 || seg.L != 0 {
			t.Errorf("data segment = %+v", seg)
		}
	}
	if s.GDT.Base != 0x1000 || s.GDT.Limit != 23 {
		t.Errorf("GDTR = %+v, want base 0x1000 limit 23", s.GDT)
	}
	if s.TR.Typ != 11 || s.TR.Present != 1 || s.LDT.Unusable != 1 {
		t.Errorf("TR %+v LDT %+v", s.TR, s.LDT)
	}
	if s.ApicBase != 0xFEE00900 {
		t.Errorf("ApicBase changed to %#x", s.ApicBase)
	}

	r := initialRegs(0x100020, 4<<20)
	if r.RIP != 0x100020 || r.RSP != 4<<20-8 || r.RDI != 0x10000 || r.RFLAGS != 2 {
		t.Errorf("regs = %+v", r)
	}
	if (r.RSP+8)%16 != 0 {
		t.Errorf("RSP %#x: (RSP+8) is not 16-byte aligned", r.RSP)
	}
}
