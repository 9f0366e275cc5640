package corefile

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

func TestPrstatusLayout(t *testing.T) {
	var p prstatus
	if got := binary.Size(p); got != prstatusSize {
		t.Errorf("binary.Size(prstatus) = %d, want %d", got, prstatusSize)
	}
	if got := unsafe.Sizeof(p); got != prstatusSize {
		t.Errorf("unsafe.Sizeof(prstatus) = %d, want %d", got, prstatusSize)
	}
	if got := binary.Size(Registers{}); got != 27*8 {
		t.Errorf("binary.Size(Registers) = %d, want %d", got, 27*8)
	}
	offsets := []struct {
		name      string
		got, want uintptr
	}{
		{"pr_cursig", unsafe.Offsetof(p.CurSig), 12},
		{"pr_sigpend", unsafe.Offsetof(p.SigPend), 16},
		{"pr_sighold", unsafe.Offsetof(p.SigHold), 24},
		{"pr_pid", unsafe.Offsetof(p.PID), 32},
		{"pr_sid", unsafe.Offsetof(p.SID), 44},
		{"pr_utime", unsafe.Offsetof(p.UTime), 48},
		{"pr_cstime", unsafe.Offsetof(p.CSTime), 96},
		{"pr_reg", unsafe.Offsetof(p.Reg), 112},
		{"pr_fpvalid", unsafe.Offsetof(p.FPValid), 328},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("offset of %s = %d, want %d", o.name, o.got, o.want)
		}
	}

	// user_regs_struct offsets that gdb reads registers from.
	var r Registers
	regs := []struct {
		name      string
		got, want uintptr
	}{
		{"r15", unsafe.Offsetof(r.R15), 0},
		{"rax", unsafe.Offsetof(r.RAX), 80},
		{"orig_rax", unsafe.Offsetof(r.OrigRAX), 120},
		{"rip", unsafe.Offsetof(r.RIP), 128},
		{"cs", unsafe.Offsetof(r.CS), 136},
		{"eflags", unsafe.Offsetof(r.EFLAGS), 144},
		{"rsp", unsafe.Offsetof(r.RSP), 152},
		{"ss", unsafe.Offsetof(r.SS), 160},
		{"fs_base", unsafe.Offsetof(r.FSBase), 168},
		{"gs", unsafe.Offsetof(r.GS), 208},
	}
	for _, o := range regs {
		if o.got != o.want {
			t.Errorf("offset of %s = %d, want %d", o.name, o.got, o.want)
		}
	}
}

func TestHeadersLayout(t *testing.T) {
	if got := binary.Size(elf.Header64{}); got != ehdrSize {
		t.Errorf("binary.Size(elf.Header64) = %d, want %d", got, ehdrSize)
	}
	if got := binary.Size(elf.Prog64{}); got != phdrSize {
		t.Errorf("binary.Size(elf.Prog64) = %d, want %d", got, phdrSize)
	}
	if noteOffset != 176 {
		t.Errorf("noteOffset = %d, want 176", noteOffset)
	}
	if noteSize != 356 {
		t.Errorf("noteSize = %d, want 356", noteSize)
	}
	if LoadOffset != PageSize {
		t.Errorf("LoadOffset = %d, want %d", LoadOffset, PageSize)
	}

	h := Headers(1<<20, &Registers{RIP: 0x1234})
	if len(h) != LoadOffset {
		t.Fatalf("Headers returned %d bytes, want %d", len(h), LoadOffset)
	}
	if got := h[elf.EI_OSABI]; got != byte(elf.ELFOSABI_STANDALONE) {
		t.Errorf("EI_OSABI = %d, want %d", got, elf.ELFOSABI_STANDALONE)
	}
	name := h[noteOffset+nhdrSize : noteOffset+nhdrSize+noteNameSize]
	if !bytes.Equal(name, []byte("CORE\x00\x00\x00\x00")) {
		t.Errorf("note name = %q, want \"CORE\" padded to 8 bytes", name)
	}
	ripAt := noteOffset + nhdrSize + noteNameSize + 112 + 128
	if got := binary.LittleEndian.Uint64(h[ripAt:]); got != 0x1234 {
		t.Errorf("pr_reg.rip = %#x, want 0x1234", got)
	}
}

// writeCore writes a core of mem to a file truncated to Size, as the
// tender does, and returns the file's path and the pages written.
func writeCore(t *testing.T, regs *Registers, mem []byte, present []bool) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "core")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(Size(uint64(len(mem)))); err != nil {
		t.Fatal(err)
	}
	n, err := Write(f, regs, mem, present)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return path, n
}

func TestWriteParsesAsCore(t *testing.T) {
	const pages = 8
	mem := make([]byte, pages*PageSize)
	for page := range pages {
		mem[page*PageSize] = byte(page + 1)
	}
	present := []bool{true, false, true, true, false, false, true, false}
	regs := &Registers{RIP: 0x100123, RSP: 0x1ffff8, CS: 8, SS: 0x10}

	path, n := writeCore(t, regs, mem, present)
	if n != 4 {
		t.Errorf("Write wrote %d pages, want 4", n)
	}

	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf cannot open the core: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_CORE {
		t.Errorf("type = %v, want ET_CORE", f.Type)
	}
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("machine = %v, want EM_X86_64", f.Machine)
	}
	if len(f.Progs) != 2 {
		t.Fatalf("core has %d program headers, want 2", len(f.Progs))
	}

	note := f.Progs[0]
	if note.Type != elf.PT_NOTE {
		t.Fatalf("first program header is %v, want PT_NOTE", note.Type)
	}
	desc := make([]byte, note.Filesz)
	if _, err := note.ReadAt(desc, 0); err != nil {
		t.Fatalf("reading the note: %v", err)
	}
	if got := elf.NType(binary.LittleEndian.Uint32(desc[8:])); got != elf.NT_PRSTATUS {
		t.Errorf("note type = %v, want NT_PRSTATUS", got)
	}
	reg := desc[nhdrSize+noteNameSize+112:]
	if got := binary.LittleEndian.Uint64(reg[128:]); got != regs.RIP {
		t.Errorf("rip in the note = %#x, want %#x", got, regs.RIP)
	}
	if got := binary.LittleEndian.Uint64(reg[152:]); got != regs.RSP {
		t.Errorf("rsp in the note = %#x, want %#x", got, regs.RSP)
	}

	load := f.Progs[1]
	if load.Type != elf.PT_LOAD || load.Vaddr != 0 ||
		load.Filesz != uint64(len(mem)) || load.Memsz != uint64(len(mem)) {
		t.Errorf("PT_LOAD = %+v, want vaddr 0 and %d bytes", load.ProgHeader, len(mem))
	}
	got := make([]byte, len(mem))
	if _, err := load.ReadAt(got, 0); err != nil {
		t.Fatalf("reading guest memory from the core: %v", err)
	}
	for page := range pages {
		want := byte(0)
		if present[page] {
			want = byte(page + 1)
		}
		if got[page*PageSize] != want {
			t.Errorf("page %d starts with %d, want %d", page, got[page*PageSize], want)
		}
	}
}

func TestWriteAllPages(t *testing.T) {
	mem := bytes.Repeat([]byte{0xAB}, 3*PageSize)
	path, n := writeCore(t, &Registers{}, mem, nil)
	if n != 3 {
		t.Errorf("Write wrote %d pages, want 3", n)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[LoadOffset:], mem) {
		t.Error("guest memory in the core differs from mem")
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "core"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Write(f, &Registers{}, make([]byte, PageSize+1), nil); err == nil {
		t.Error("Write accepted memory that is not whole pages")
	}
	if _, err := Write(f, &Registers{}, make([]byte, 2*PageSize), []bool{true}); err == nil {
		t.Error("Write accepted a page map of the wrong length")
	}
}
