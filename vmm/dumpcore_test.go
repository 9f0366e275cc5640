package vmm

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/tests/guests"
)

// coreTestFds are testFds with the fds of --dumpcore.
func coreTestFds() policyFds {
	f := testFds
	f.CoreFile, f.CoreDir, f.Pagemap = 30, 31, 32
	return f
}

func TestCoreDumpPolicySize(t *testing.T) {
	allowed := 0
	for _, r := range hvtPolicy(coreTestFds()) {
		if r.Errno == 0 {
			allowed++
		}
	}
	if allowed > 25 {
		t.Errorf("policy with --dumpcore allows %d system calls, want at most 25", allowed)
	}
}

func TestCoreDumpFilterDecisions(t *testing.T) {
	cases := []filterCase{
		{"KVM_GET_SREGS on the vCPU", unix.SYS_IOCTL, []uint64{7, kvmGetSregsIoctl}, allow},
		{"KVM_GET_SREGS on another fd", unix.SYS_IOCTL, []uint64{8, kvmGetSregsIoctl}, kill},
		{"KVM_RUN on the vCPU", unix.SYS_IOCTL, []uint64{7, kvmRunIoctl}, allow},
		{"linkat of the core file", unix.SYS_LINKAT, []uint64{30, 0, 31, 0, unix.AT_EMPTY_PATH}, allow},
		{"linkat of another fd", unix.SYS_LINKAT, []uint64{21, 0, 31, 0, unix.AT_EMPTY_PATH}, kill},
		{"linkat into another dir", unix.SYS_LINKAT, []uint64{30, 0, 3, 0, unix.AT_EMPTY_PATH}, kill},
		{"linkat by path", unix.SYS_LINKAT, []uint64{30, 0, 31, 0, unix.AT_SYMLINK_FOLLOW}, kill},
		{"pwrite64 the core file", unix.SYS_PWRITE64, []uint64{30}, allow},
		{"pwrite64 the page map", unix.SYS_PWRITE64, []uint64{32}, kill},
		{"pwrite64 a block fd", unix.SYS_PWRITE64, []uint64{21}, allow},
		{"pread64 the page map", unix.SYS_PREAD64, []uint64{32}, allow},
		{"pread64 the core file", unix.SYS_PREAD64, []uint64{30}, kill},
		{"write the core file", unix.SYS_WRITE, []uint64{30}, kill},
		{"sched_yield", unix.SYS_SCHED_YIELD, nil, nosys},
		{"openat", unix.SYS_OPENAT, []uint64{31}, kill},
		{"unlinkat", unix.SYS_UNLINKAT, []uint64{31}, kill},
	}
	vm := filterVM(t, hvtPolicy(coreTestFds()))
	checkDecisions(t, vm, cases)

	// Without --dumpcore, none of this is allowed.
	vm = filterVM(t, hvtPolicy(testFds))
	if got := evalFilter(t, vm, auditArchX8664, unix.SYS_IOCTL, 7, kvmGetSregsIoctl); got != kill {
		t.Errorf("KVM_GET_SREGS without --dumpcore: filter returned %#x, want kill", got)
	}
	if got := evalFilter(t, vm, auditArchX8664, unix.SYS_LINKAT, 30, 0, 31, 0, unix.AT_EMPTY_PATH); got != kill {
		t.Errorf("linkat without --dumpcore: filter returned %#x, want kill", got)
	}
	if got := evalFilter(t, vm, auditArchX8664, unix.SYS_SCHED_YIELD); got != allow {
		t.Errorf("sched_yield without --dumpcore: filter returned %#x, want allow", got)
	}
}

func TestGetSregsIoctlNumber(t *testing.T) {
	want := kvm.IIOR(0x83, unsafe.Sizeof(kvm.Sregs{}))
	if kvmGetSregsIoctl != want {
		t.Errorf("kvmGetSregsIoctl = %#x, want %#x", kvmGetSregsIoctl, want)
	}
}

// coreMessage matches the line that names the core file, with the path at
// the end of the line as upstream's tests expect. The test tender's text
// log handler puts the message in quotes.
var coreMessage = regexp.MustCompile(`dumpcore: dumping guest core to: (\S*core\.solo5-hvt\.[0-9]+)"?\n`)

// runDumpCore runs guest under the seccomp filter with 4 MiB of memory and
// --dumpcore=dir.
func runDumpCore(t *testing.T, dir, guest string, args ...string) tenderResult {
	t.Helper()
	requireKVM(t)
	argv := append([]string{"--mem=4", "--dumpcore=" + dir,
		guests.Binary(guest, guests.TargetHVT)}, args...)
	return runHelper(t, "seccomp", argv...)
}

// openCore checks that the tender named a core file in dir and opens it.
func openCore(t *testing.T, dir string, r tenderResult) *elf.File {
	t.Helper()
	m := coreMessage.FindStringSubmatch(r.output)
	if m == nil {
		t.Fatalf("output lacks the dumpcore message:\n%s", r.output)
	}
	if filepath.Dir(m[1]) != dir {
		t.Errorf("core file %s is not in %s", m[1], dir)
	}
	f, err := elf.Open(m[1])
	if err != nil {
		t.Fatalf("debug/elf cannot open the core file: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// coreRegister returns the register at byte offset off of user_regs_struct
// in the core's NT_PRSTATUS note.
func coreRegister(t *testing.T, f *elf.File, off int) uint64 {
	t.Helper()
	note := f.Progs[0]
	if note.Type != elf.PT_NOTE {
		t.Fatalf("first program header is %v, want PT_NOTE", note.Type)
	}
	b := make([]byte, note.Filesz)
	if _, err := note.ReadAt(b, 0); err != nil {
		t.Fatalf("reading the note: %v", err)
	}
	if len(b) < 20+336 {
		t.Fatalf("note is %d bytes, want %d", len(b), 20+336)
	}
	if got := elf.NType(binary.LittleEndian.Uint32(b[8:])); got != elf.NT_PRSTATUS {
		t.Fatalf("note type = %v, want NT_PRSTATUS", got)
	}
	// The descriptor follows the 12-byte header and the 8-byte name;
	// pr_reg is at offset 112 of prstatus_t.
	return binary.LittleEndian.Uint64(b[20+112+off:])
}

func TestDumpCoreAbort(t *testing.T) {
	dir := t.TempDir()
	r := runDumpCore(t, dir, "abort")
	if r.status != 255 {
		t.Fatalf("status %d, want 255; output:\n%s", r.status, r.output)
	}
	// Pages the guest never touched are left out.
	m := pageCount.FindStringSubmatch(r.output)
	if m == nil {
		t.Fatalf("output lacks the page count:\n%s", r.output)
	}
	written, _ := strconv.Atoi(m[1])
	total, _ := strconv.Atoi(m[2])
	if total != 1024 {
		t.Errorf("total pages = %d, want 1024 for 4 MiB", total)
	}
	if written == 0 || written >= total {
		t.Errorf("%d of %d pages written, want some but not all", written, total)
	}
	f := openCore(t, dir, r)
	if f.Type != elf.ET_CORE {
		t.Errorf("type = %v, want ET_CORE", f.Type)
	}
	if len(f.Progs) != 2 {
		t.Fatalf("core has %d program headers, want 2", len(f.Progs))
	}
	load := f.Progs[1]
	if load.Type != elf.PT_LOAD || load.Vaddr != 0 || load.Memsz != 4<<20 {
		t.Fatalf("second program header = %+v, want PT_LOAD of 4 MiB at 0", load.ProgHeader)
	}

	// The guest's code is in the core at its load address.
	kernel, err := elf.Open(guests.Binary("abort", guests.TargetHVT))
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	text := kernel.Progs[0]
	for _, p := range kernel.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			text = p
			break
		}
	}
	want := make([]byte, text.Filesz)
	if _, err := text.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, text.Filesz)
	if _, err := load.ReadAt(got, int64(text.Paddr)); err != nil {
		t.Fatalf("reading guest memory at %#x from the core: %v", text.Paddr, err)
	}
	if string(got) != string(want) {
		t.Errorf("guest memory at %#x differs from the unikernel's code", text.Paddr)
	}

	// The guest stopped in its own code, on a stack in guest memory, and
	// the stack is in the core.
	rip := coreRegister(t, f, 128)
	if rip < text.Vaddr || rip >= text.Vaddr+text.Memsz {
		t.Errorf("rip %#x is outside the guest's code [%#x, %#x)", rip,
			text.Vaddr, text.Vaddr+text.Memsz)
	}
	rsp := coreRegister(t, f, 152)
	if rsp == 0 || rsp >= load.Memsz {
		t.Fatalf("rsp %#x is outside guest memory", rsp)
	}
	stack := make([]byte, 64)
	if _, err := load.ReadAt(stack, int64(rsp)); err != nil {
		t.Fatalf("reading the stack from the core: %v", err)
	}
	if string(stack) == string(make([]byte, 64)) {
		t.Error("the stack in the core is all zeros")
	}
}

// pageCount matches the page counts of a finished dump.
var pageCount = regexp.MustCompile(`dumpcore: dumped ([0-9]+) pages of total ([0-9]+) pages`)

// trapRIP matches the guest runtime's trap report.
var trapRIP = regexp.MustCompile(`trap: type=#PF .*rip=(0x[0-9a-f]+)`)

func TestDumpCoreTrapFrame(t *testing.T) {
	dir := t.TempDir()
	r := runDumpCore(t, dir, "exception")
	if r.status != 255 {
		t.Fatalf("status %d, want 255; output:\n%s", r.status, r.output)
	}
	m := trapRIP.FindStringSubmatch(r.output)
	if m == nil {
		t.Fatalf("output lacks the guest's trap report:\n%s", r.output)
	}
	want, err := strconv.ParseUint(m[1], 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	f := openCore(t, dir, r)
	if got := coreRegister(t, f, 128); got != want {
		t.Errorf("rip in the core = %#x, want the faulting rip %#x", got, want)
	}
}

func TestDumpCoreNormalExit(t *testing.T) {
	dir := t.TempDir()
	r := runDumpCore(t, dir, "hello", "Hello_Solo5")
	if r.status != 0 {
		t.Fatalf("status %d, want 0; output:\n%s", r.status, r.output)
	}
	if strings.Contains(r.output, "dumpcore") {
		t.Errorf("output mentions dumpcore:\n%s", r.output)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("directory contains %d files after a normal exit, want none", len(entries))
	}
}

func TestDumpCoreExitStatusNot255(t *testing.T) {
	dir := t.TempDir()
	r := runDumpCore(t, dir, "exit", "3")
	if r.status != 3 {
		t.Fatalf("status %d, want 3; output:\n%s", r.status, r.output)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("directory contains %d files after status %d, want none", len(entries), r.status)
	}
}

func TestDumpCoreMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	r := runDumpCore(t, dir, "abort")
	if r.status != 1 {
		t.Errorf("status %d, want 1", r.status)
	}
	if !strings.Contains(r.output, "--dumpcore="+dir+": opening the directory failed") {
		t.Errorf("output lacks the directory error:\n%s", r.output)
	}
	if strings.Contains(r.output, "Solo5:") {
		t.Errorf("the guest started:\n%s", r.output)
	}
}

func TestDumpCoreRejectsSPTUnikernel(t *testing.T) {
	requireKVM(t)
	r := runHelper(t, "seccomp", "--mem=4", "--dumpcore="+t.TempDir(),
		guests.Binary("abort", guests.TargetSPT))
	if r.status != 1 {
		t.Errorf("status %d, want 1", r.status)
	}
	if !strings.Contains(r.output, "--dumpcore applies only to hvt unikernels") {
		t.Errorf("output lacks the rejection:\n%s", r.output)
	}
	if strings.Contains(r.output, "Solo5:") {
		t.Errorf("the guest started:\n%s", r.output)
	}
}
