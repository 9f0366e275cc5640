package launcher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

// helperVar selects the helper role: the test binary re-runs itself with
// the variable set to a case name, builds that case's image and calls
// Exec, so the constructor linked into the test binary starts the guest.
const helperVar = "NTENDER_LAUNCHER_TEST_CASE"

// testMemSize is small so that the guest range stays below the test
// binary even when the test binary is not position-independent (it then
// loads at 0x400000).
const testMemSize = 0x345000

func TestMain(m *testing.M) {
	if name := os.Getenv(helperVar); name != "" {
		os.Exit(runHelper(name))
	}
	os.Exit(m.Run())
}

// Machine code of the test guests, each at the start of the text segment
// at 0x100000.
var (
	// exit_group(42)
	codeExit42 = []byte{
		0xbf, 0x2a, 0x00, 0x00, 0x00, // mov edi, 42
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// exit_group(*(uint8_t *)rdi): checks RDI and the boot area copy.
	codeExitBootByte = []byte{
		0x0f, 0xb6, 0x3f, // movzx edi, byte [rdi]
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// exit_group((rsp + 8) >> 12): checks the initial stack pointer.
	codeExitStackPage = []byte{
		0x48, 0x8d, 0x7c, 0x24, 0x08, // lea rdi, [rsp+8]
		0x48, 0xc1, 0xef, 0x0c, // shr rdi, 12
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// dup(0), which the test filter does not allow, then exit_group(0).
	codeDup = []byte{
		0x31, 0xff, // xor edi, edi
		0xb8, 0x20, 0x00, 0x00, 0x00, // mov eax, 32
		0x0f, 0x05, // syscall
		0x31, 0xff, // xor edi, edi
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// A store to the guest's own read-only, executable text.
	codeWriteText = []byte{
		0xc6, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00, 0x00, // mov byte [0x100000], 0
		0x31, 0xff, // xor edi, edi
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// jmp rdi: runs the boot area as code.
	codeJumpToBoot = []byte{0xff, 0xe7}
	// exit_group(7), placed in the boot area by the execheap cases.
	codeExit7 = []byte{
		0xbf, 0x07, 0x00, 0x00, 0x00, // mov edi, 7
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// exit_group(handler of SIGQUIT): 1 for SIG_IGN, 0 for SIG_DFL. The
	// old struct sigaction goes to 0x300000.
	codeSigquitHandler = []byte{
		0xbf, 0x03, 0x00, 0x00, 0x00, // mov edi, SIGQUIT
		0x31, 0xf6, // xor esi, esi
		0xba, 0x00, 0x00, 0x30, 0x00, // mov edx, 0x300000
		0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // mov r10d, 8
		0xb8, 0x0d, 0x00, 0x00, 0x00, // mov eax, 13 (rt_sigaction)
		0x0f, 0x05, // syscall
		0x8b, 0x3c, 0x25, 0x00, 0x00, 0x30, 0x00, // mov edi, [0x300000]
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	// write(1, "hi\n", 3), then exit_group(0).
	codeHello = []byte{
		0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1
		0x48, 0x8d, 0x35, 0x15, 0x00, 0x00, 0x00, // lea rsi, [rip+21]
		0xba, 0x03, 0x00, 0x00, 0x00, // mov edx, 3
		0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
		0x0f, 0x05, // syscall
		0x31, 0xff, // xor edi, edi
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
		'h', 'i', '\n',
	}
)

// codeFcntl returns a guest that exits with -fcntl(fd, F_GETFD): 0 for an
// open fd without FD_CLOEXEC, EBADF (9) for a closed one.
func codeFcntl(fd int) []byte {
	code := []byte{
		0xbf, 0, 0, 0, 0, // mov edi, fd
		0xbe, 0x01, 0x00, 0x00, 0x00, // mov esi, F_GETFD
		0xb8, 0x48, 0x00, 0x00, 0x00, // mov eax, 72 (fcntl)
		0x0f, 0x05, // syscall
		0xf7, 0xd8, // neg eax
		0x89, 0xc7, // mov edi, eax
		0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
		0x0f, 0x05, // syscall
	}
	binary.LittleEndian.PutUint32(code[1:], uint32(fd))
	return code
}

// testFilter allows exit_group, write, fcntl and rt_sigaction with any
// arguments and kills the process on any other call or architecture.
func testFilter() []unix.SockFilter {
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipFalse: 6},
		bpf.LoadAbsolute{Off: 0, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_EXIT_GROUP, SkipTrue: 5},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_WRITE, SkipTrue: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_FCNTL, SkipTrue: 3},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_RT_SIGACTION, SkipTrue: 2},
		bpf.RetConstant{Val: kill},
		bpf.RetConstant{Val: kill},
		bpf.RetConstant{Val: allow},
	})
	if err != nil {
		panic(err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}

func guestImage(code []byte) *Image {
	boot := make([]byte, abi.SPTBootInfoSize+16)
	boot[0] = 0x5a
	return &Image{
		MemSize: testMemSize,
		Entry:   abi.GuestMinBase,
		Boot:    boot,
		Segments: []Segment{{
			Vaddr: abi.GuestMinBase,
			Start: abi.GuestMinBase,
			End:   abi.GuestMinBase + abi.PageSize,
			Prot:  abi.ProtRead | abi.ProtExec,
			Data:  code,
		}},
		Filter: testFilter(),
	}
}

// runHelper builds the image of case name and executes it. It returns
// only on failure, with exit status 2 so that no case can pass by it.
func runHelper(name string) int {
	im, err := helperImage(name)
	if err == nil {
		err = Exec("/proc/self/exe", []string{os.Args[0]}, os.Environ(), im)
	}
	fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
	return 2
}

func helperImage(name string) (*Image, error) {
	switch name {
	case "exit42":
		return guestImage(codeExit42), nil
	case "bootbyte":
		return guestImage(codeExitBootByte), nil
	case "stack":
		return guestImage(codeExitStackPage), nil
	case "dup":
		return guestImage(codeDup), nil
	case "writetext":
		return guestImage(codeWriteText), nil
	case "hello":
		return guestImage(codeHello), nil
	case "keptfd", "closedfd":
		// Both fds lack FD_CLOEXEC after Exec: the kept one because Exec
		// clears it, the other because it is opened without it, so only
		// the constructor can close the second.
		kept, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		leaked, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			return nil, err
		}
		fd := kept
		if name == "closedfd" {
			fd = leaked
		}
		im := guestImage(codeFcntl(fd))
		im.KeepFds = []int{kept}
		return im, nil
	case "execheap", "noexecheap":
		im := guestImage(codeJumpToBoot)
		copy(im.Boot, codeExit7)
		im.ExecHeap = name == "execheap"
		return im, nil
	case "sigquit":
		im := guestImage(codeSigquitHandler)
		im.IgnoredSignals = InitiallyIgnoredSignals()
		return im, nil
	case "collide":
		im := guestImage(codeExit42)
		im.MemSize = 0x7ffffffff000
		return im, nil
	}
	return nil, fmt.Errorf("unknown case %q", name)
}

// runCase runs the helper role for name and returns its wait status,
// stdout and stderr.
func runCase(t *testing.T, name string, env ...string) (syscall.WaitStatus, string, string) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), env...)
	if name != "" {
		cmd.Env = append(cmd.Env, helperVar+"="+name)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running case %s: %v", name, err)
	}
	return cmd.ProcessState.Sys().(syscall.WaitStatus), stdout.String(), stderr.String()
}

func TestLaunchExitStatus(t *testing.T) {
	ws, _, stderr := runCase(t, "exit42")
	if !ws.Exited() || ws.ExitStatus() != 42 {
		t.Fatalf("status %v, want exit 42; stderr %q", ws, stderr)
	}
}

func TestLaunchBootInfoInRDI(t *testing.T) {
	ws, _, stderr := runCase(t, "bootbyte")
	if !ws.Exited() || ws.ExitStatus() != 0x5a {
		t.Fatalf("status %v, want exit 0x5a (first boot area byte); stderr %q", ws, stderr)
	}
}

func TestLaunchStackPointer(t *testing.T) {
	ws, _, stderr := runCase(t, "stack")
	want := (testMemSize >> 12) & 0xff
	if !ws.Exited() || ws.ExitStatus() != want {
		t.Fatalf("status %v, want exit %#x (page of RSP+8 = mem_size); stderr %q", ws, want, stderr)
	}
}

func TestLaunchConsoleWrite(t *testing.T) {
	ws, stdout, stderr := runCase(t, "hello")
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("status %v, want exit 0; stderr %q", ws, stderr)
	}
	if stdout != "hi\n" {
		t.Errorf("stdout %q, want %q", stdout, "hi\n")
	}
}

func TestLaunchForbiddenSyscallKills(t *testing.T) {
	ws, _, stderr := runCase(t, "dup")
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("status %v, want death by SIGSYS; stderr %q", ws, stderr)
	}
}

func TestLaunchTextIsReadOnly(t *testing.T) {
	ws, _, stderr := runCase(t, "writetext")
	if !ws.Signaled() || ws.Signal() != unix.SIGSEGV {
		t.Fatalf("status %v, want death by SIGSEGV; stderr %q", ws, stderr)
	}
}

func TestLaunchExecHeap(t *testing.T) {
	ws, _, stderr := runCase(t, "execheap")
	if !ws.Exited() || ws.ExitStatus() != 7 {
		t.Fatalf("status %v, want exit 7 from code in the boot area; stderr %q", ws, stderr)
	}
}

func TestLaunchHeapNotExecutable(t *testing.T) {
	ws, _, stderr := runCase(t, "noexecheap")
	if !ws.Signaled() || ws.Signal() != unix.SIGSEGV {
		t.Fatalf("status %v, want death by SIGSEGV; stderr %q", ws, stderr)
	}
}

// TestLaunchKeepsIgnoredSignals starts the helper from a shell that
// ignores SIGQUIT. The Go runtime of the helper installs its own SIGQUIT
// handler, so only the constructor's record can make the guest inherit
// SIG_IGN, as a guest of solo5-spt would.
func TestLaunchKeepsIgnoredSignals(t *testing.T) {
	// /proc/self/exe inside the shell would name the shell.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		trap string
		want int
	}{
		{"trap '' QUIT", 1}, // SIG_IGN
		{"trap - QUIT", 0},  // SIG_DFL
	} {
		cmd := exec.Command("/bin/sh", "-c", c.trap+`; exec "$0"`, self)
		cmd.Env = append(os.Environ(), helperVar+"=sigquit")
		out, err := cmd.CombinedOutput()
		status := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			status = exitErr.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", c.trap, err)
		}
		if status != c.want {
			t.Errorf("%s: guest saw SIGQUIT handler %d, want %d; output %q", c.trap, status, c.want, out)
		}
	}
}

func TestLaunchKeepsListedFd(t *testing.T) {
	ws, _, stderr := runCase(t, "keptfd")
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("status %v, want exit 0 (fd open); stderr %q", ws, stderr)
	}
}

func TestLaunchClosesOtherFds(t *testing.T) {
	ws, _, stderr := runCase(t, "closedfd")
	if !ws.Exited() || ws.ExitStatus() != int(unix.EBADF) {
		t.Fatalf("status %v, want exit %d (EBADF); stderr %q", ws, unix.EBADF, stderr)
	}
}

func TestLaunchRejectsCollidingMemory(t *testing.T) {
	ws, _, stderr := runCase(t, "collide")
	if !ws.Exited() || ws.ExitStatus() != 1 {
		t.Fatalf("status %v, want exit 1; stderr %q", ws, stderr)
	}
	if !strings.Contains(stderr, "overlaps a mapping") {
		t.Errorf("stderr %q does not explain the overlap", stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 1 {
		t.Errorf("stderr has %d lines, want 1: %q", n, stderr)
	}
}

func TestConstructorRejectsBadVariable(t *testing.T) {
	for _, value := range []string{"", "abc", "-1", "3x", "99999999999"} {
		ws, _, stderr := runCase(t, "", EnvVar+"="+value)
		if !ws.Exited() || ws.ExitStatus() != 1 {
			t.Errorf("%s=%q: status %v, want exit 1; stderr %q", EnvVar, value, ws, stderr)
			continue
		}
		if !strings.HasPrefix(stderr, "ntender: spt launch: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s=%q: stderr %q, want one ntender line", EnvVar, value, stderr)
		}
	}
}

func TestConstructorRejectsUnsealedFd(t *testing.T) {
	// fd 0 of the child is /dev/null, not a memfd.
	ws, _, stderr := runCase(t, "", EnvVar+"=0")
	if !ws.Exited() || ws.ExitStatus() != 1 {
		t.Fatalf("status %v, want exit 1; stderr %q", ws, stderr)
	}
	if !strings.Contains(stderr, "is not a memfd") {
		t.Errorf("stderr %q does not name the problem", stderr)
	}
}

// TestConstructorRejectsMalformedImage corrupts one header field at a
// time of a valid image and checks that the constructor fails cleanly.
func TestConstructorRejectsMalformedImage(t *testing.T) {
	good, err := guestImage(codeExit42).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		offset int
		value  uint64
		want   string
	}{
		{"magic", 0, 0x1234, "unknown format"},
		{"image size", headerImageSize, 1 << 20, "header records"},
		{"memory size unaligned", headerMemSize, testMemSize + 1, "invalid guest memory size"},
		{"memory size too large", headerMemSize, 1 << 48, "invalid guest memory size"},
		{"entry below base", headerEntry, 0x1000, "invalid entry point"},
		{"entry past memory", headerEntry, testMemSize, "invalid entry point"},
		{"flags", headerFlags, 6, "unknown flags"},
		{"boot too short", headerBootSize, 8, "invalid boot area"},
		{"boot outside image", headerBootOffset, 1 << 40, "invalid boot area"},
		{"no segments", headerSegmentsCount, 0, "invalid segment table"},
		{"segment count overflow", headerSegmentsCount, 1 << 61, "invalid segment table"},
		{"fd count", headerFdsCount, 1 << 62, "invalid fd table"},
		{"filter empty", headerFilterCount, 0, "invalid seccomp filter"},
		{"filter too long", headerFilterCount, MaxFilterLen + 1, "invalid seccomp filter"},
		{"segment start", headerSize + segmentStart, 0x1000, "segment 0: invalid range"},
		{"segment end", headerSize + segmentEnd, testMemSize + abi.PageSize, "segment 0: invalid range"},
		{"segment filesz", headerSize + segmentFilesz, 2 * abi.PageSize, "segment 0: invalid range"},
		{"segment prot", headerSize + segmentProt, 3, "invalid protection flags"},
		{"segment data", headerSize + segmentDataOffset, 1 << 40, "outside the launch image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			image := bytes.Clone(good)
			binary.LittleEndian.PutUint64(image[c.offset:], c.value)
			stderr := runRawImage(t, image)
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q does not contain %q", stderr, c.want)
			}
		})
	}
}

// runRawImage runs the test binary on image without any validation on the
// Go side and checks that it exits 1 with one line on stderr.
func runRawImage(t *testing.T, image []byte) string {
	t.Helper()
	fd, err := writeSealedMemfd(image)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "launch image")
	defer f.Close()

	cmd := exec.Command("/proc/self/exe")
	cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
	cmd.Env = append(os.Environ(), EnvVar+"=3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit status 1; stderr %q", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 {
		t.Errorf("stderr has %d lines, want 1: %q", n, stderr.String())
	}
	return stderr.String()
}

func TestImageLayoutMatchesC(t *testing.T) {
	want := map[string]uint64{
		"header size":            headerSize,
		"header.image_size":      headerImageSize,
		"header.mem_size":        headerMemSize,
		"header.entry":           headerEntry,
		"header.flags":           headerFlags,
		"header.boot_offset":     headerBootOffset,
		"header.boot_size":       headerBootSize,
		"header.segments_offset": headerSegmentsOffset,
		"header.segments_count":  headerSegmentsCount,
		"header.fds_offset":      headerFdsOffset,
		"header.fds_count":       headerFdsCount,
		"header.filter_offset":   headerFilterOffset,
		"header.filter_count":    headerFilterCount,
		"segment size":           segmentSize,
		"segment.vaddr":          segmentVaddr,
		"segment.filesz":         segmentFilesz,
		"segment.start":          segmentStart,
		"segment.end":            segmentEnd,
		"segment.prot":           segmentProt,
		"segment.data_offset":    segmentDataOffset,
		"boot info address":      abi.SPTBootInfoAddr,
		"host memory base":       abi.SPTHostMemBase,
		"guest minimum base":     abi.GuestMinBase,
		"flag exec heap":         flagExecHeap,
	}
	got := cLayout()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: missing from the C layout", name)
			continue
		}
		if g != w {
			t.Errorf("%s: C has %d, Go has %d", name, g, w)
		}
	}
	if m := cMagic(); m != imageMagic {
		t.Errorf("magic: C has %q, Go has %q", m, imageMagic)
	}
	if v := cEnvVar(); v != EnvVar {
		t.Errorf("environment variable: C has %q, Go has %q", v, EnvVar)
	}
}

func TestMarshalRejectsInvalidImage(t *testing.T) {
	cases := map[string]func(*Image){
		"memory unaligned":  func(im *Image) { im.MemSize++ },
		"entry past memory": func(im *Image) { im.Entry = im.MemSize },
		"boot too short":    func(im *Image) { im.Boot = im.Boot[:8] },
		"no segments":       func(im *Image) { im.Segments = nil },
		"segment W and X":   func(im *Image) { im.Segments[0].Prot = abi.ProtWrite | abi.ProtExec },
		"segment past end":  func(im *Image) { im.Segments[0].End = im.MemSize + abi.PageSize },
		"segment too short": func(im *Image) { im.Segments[0].Data = make([]byte, 2*abi.PageSize) },
		"fd 2 kept":         func(im *Image) { im.KeepFds = []int{2} },
		"fd twice":          func(im *Image) { im.KeepFds = []int{5, 5} },
		"no filter":         func(im *Image) { im.Filter = nil },
	}
	for name, mutate := range cases {
		im := guestImage(codeExit42)
		mutate(im)
		if _, err := im.MarshalBinary(); !errors.Is(err, ErrInvalidImage) {
			t.Errorf("%s: error %v, want ErrInvalidImage", name, err)
		}
	}
}

func TestMarshalSortsFds(t *testing.T) {
	im := guestImage(codeExit42)
	im.KeepFds = []int{9, 4, 7}
	b, err := im.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	offset := le.Uint64(b[headerFdsOffset:])
	var got []string
	for i := range le.Uint64(b[headerFdsCount:]) {
		got = append(got, strconv.FormatUint(le.Uint64(b[offset+8*i:]), 10))
	}
	if strings.Join(got, ",") != "4,7,9" {
		t.Errorf("fd table %v, want 4,7,9", got)
	}
}

func TestConstructorRejectsClosedFd(t *testing.T) {
	im := guestImage(codeExit42)
	im.KeepFds = []int{100}
	image, err := im.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	stderr := runRawImage(t, image)
	if !strings.Contains(stderr, "fd 100 of the guest is not open") {
		t.Errorf("stderr %q does not name the closed fd", stderr)
	}
}

func TestExecRejectsClosedFd(t *testing.T) {
	// An open fd 1000 would let Exec replace the test process.
	if _, err := unix.FcntlInt(1000, unix.F_GETFD, 0); err == nil {
		t.Skip("fd 1000 is open in the test process")
	}
	im := guestImage(codeExit42)
	im.KeepFds = []int{1000}
	err := Exec("/proc/self/exe", []string{os.Args[0]}, os.Environ(), im)
	if !errors.Is(err, unix.EBADF) {
		t.Errorf("Exec error %v, want EBADF", err)
	}
}
