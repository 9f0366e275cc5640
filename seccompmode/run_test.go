package seccompmode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ntender/ntender/plan"
	"github.com/ntender/ntender/tests/guests"
)

// helperArgsVar selects the helper role: the test binary re-runs itself
// with the variable set to a tender command line (arguments separated by
// helperArgsSep), builds the plan and calls Run. The launcher's
// constructor is linked into the test binary, so the re-executed test
// binary becomes the guest.
const (
	helperArgsVar = "NTENDER_SPT_TEST_ARGS"
	helperArgsSep = "\x1f"
)

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(helperArgsVar); ok {
		os.Exit(runHelper(strings.Split(args, helperArgsSep)))
	}
	os.Exit(m.Run())
}

// runHelper runs a tender command line as `ntender --mode=spt` would and
// returns the exit status when Run fails.
func runHelper(args []string) int {
	opts, err := plan.ParseArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntender:", err)
		return 1
	}
	p, err := plan.Build(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntender:", err)
		return 1
	}
	status, err := Run(p, Config{})
	fmt.Fprintln(os.Stderr, "ntender:", err)
	return status
}

// result is the outcome of one tender run.
type result struct {
	status syscall.WaitStatus
	stdout string
	stderr string
}

// exitCode returns the status as a shell reports it: the exit status, or
// 128 plus the number of the signal that killed the process.
func (r result) exitCode() int {
	if r.status.Signaled() {
		return 128 + int(r.status.Signal())
	}
	return r.status.ExitStatus()
}

func (r result) String() string {
	return fmt.Sprintf("status %d (%v)\nstdout: %q\nstderr: %q", r.exitCode(), r.status, r.stdout, r.stderr)
}

// runTender runs the test binary in the helper role with args.
func runTender(t *testing.T, args ...string) result {
	t.Helper()
	tender, err := startTender(args...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tender.wait()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runningTender is a tender started by startTender.
type runningTender struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startTender starts the test binary in the helper role with args. It
// returns errors instead of failing the test, so that goroutines other
// than the test's own can call it.
// helperProcessName is argv[0] of the tender processes startTender runs.
const helperProcessName = "spt-test-guest"

func startTender(args ...string) (*runningTender, error) {
	rt := &runningTender{cmd: exec.Command("/proc/self/exe")}
	// The guest process takes its name from argv[0].
	rt.cmd.Args[0] = helperProcessName
	rt.cmd.Env = append(os.Environ(), helperArgsVar+"="+strings.Join(args, helperArgsSep))
	rt.cmd.Stdout = &rt.stdout
	rt.cmd.Stderr = &rt.stderr
	if err := rt.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the tender with %q: %w", args, err)
	}
	return rt, nil
}

func (rt *runningTender) wait() (result, error) {
	err := rt.cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return result{}, fmt.Errorf("waiting for the tender: %w", err)
	}
	return result{
		status: rt.cmd.ProcessState.Sys().(syscall.WaitStatus),
		stdout: rt.stdout.String(),
		stderr: rt.stderr.String(),
	}, nil
}

// guestBinary returns the path of a project test guest, built by
// `make -C tests/guests`. It skips the test when the guest is missing,
// unless NTENDER_REQUIRE_ALL=1.
func guestBinary(t *testing.T, name, target string) string {
	t.Helper()
	path := guests.Binary(name, target)
	if _, err := os.Stat(path); err != nil {
		skipOrFail(t, fmt.Sprintf("test guest %s is not built (run make -C tests/guests): %v", name, err))
	}
	return path
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

func TestRunHello(t *testing.T) {
	r := runTender(t, "--mem=2", guestBinary(t, "hello", guests.TargetSPT), "Hello_Solo5")
	if r.exitCode() != 0 {
		t.Fatalf("want exit 0:\n%v", r)
	}
	if !strings.Contains(r.stdout, "SUCCESS") {
		t.Errorf("stdout lacks SUCCESS:\n%v", r)
	}
}

func TestRunRejectsHVTUnikernel(t *testing.T) {
	r := runTender(t, "--mem=2", guestBinary(t, "hello", guests.TargetHVT))
	if r.exitCode() != 1 {
		t.Fatalf("want exit 1:\n%v", r)
	}
	if !strings.Contains(r.stderr, ErrNotSPT.Error()) {
		t.Errorf("stderr does not say %q:\n%v", ErrNotSPT, r)
	}
}

func TestRunRejectsEntryOutsideMemory(t *testing.T) {
	r := runTender(t, "--mem=1", guestBinary(t, "hello", guests.TargetSPT))
	if r.exitCode() != 1 {
		t.Fatalf("want exit 1:\n%v", r)
	}
	if !strings.Contains(r.stderr, "does not fall within the memory allocation range") {
		t.Errorf("stderr does not explain the entry point:\n%v", r)
	}
}

// TestRunDefaultMemory runs with the default 512 MiB. A test binary that
// is not position-independent sits at 0x400000, inside that range, and
// Run must reject it with a clear message; a PIE test binary
// (go test -buildmode=pie) must run the guest.
func TestRunDefaultMemory(t *testing.T) {
	base, err := executableBase()
	if err != nil {
		t.Fatal(err)
	}
	r := runTender(t, guestBinary(t, "hello", guests.TargetSPT), "Hello_Solo5")
	if base < DefaultMemSize {
		if r.exitCode() != 1 {
			t.Fatalf("executable at %#x: want exit 1:\n%v", base, r)
		}
		if !strings.Contains(r.stderr, "build ntender with -buildmode=pie") {
			t.Errorf("stderr does not say how to fix it:\n%v", r)
		}
		return
	}
	if r.exitCode() != 0 || !strings.Contains(r.stdout, "SUCCESS") {
		t.Fatalf("executable at %#x: want exit 0 and SUCCESS:\n%v", base, r)
	}
}

func TestMemSize(t *testing.T) {
	cases := []struct {
		mib  uint64
		want uint64
	}{
		{0, 512 << 20},
		{1, 1 << 20},
		{2, 2 << 20},
		{3, 3 << 20}, // not rounded, unlike hvt
		{4096, 4 << 30},
		{maxMemSize >> 20, (maxMemSize >> 20) << 20},
	}
	for _, c := range cases {
		got, err := MemSize(c.mib)
		if err != nil {
			t.Errorf("MemSize(%d): %v", c.mib, err)
			continue
		}
		if got != c.want {
			t.Errorf("MemSize(%d) = %#x, want %#x", c.mib, got, c.want)
		}
	}
	for _, mib := range []uint64{maxMemSize>>20 + 1, 1 << 44, ^uint64(0)} {
		if got, err := MemSize(mib); err == nil {
			t.Errorf("MemSize(%d) = %#x, want an error", mib, got)
		}
	}
}

func TestLowestMapping(t *testing.T) {
	maps := `55d4c6a00000-55d4c6a3c000 r--p 00000000 08:01 1234   /usr/bin/ntender
55d4c6a3c000-55d4c6b00000 r-xp 0003c000 08:01 1234   /usr/bin/ntender
55d4c5000000-55d4c5001000 r--p 00000000 08:01 99     /usr/bin/ntender2
55d4c6c00000-55d4c6c10000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 08:01 77     /tmp/dir with space/ntender
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]
`
	cases := []struct {
		path string
		want uint64
	}{
		{"/usr/bin/ntender", 0x55d4c6a00000},
		{"/usr/bin/ntender2", 0x55d4c5000000},
		{"/tmp/dir with space/ntender", 0x7f0000000000},
	}
	for _, c := range cases {
		got, err := lowestMapping([]byte(maps), c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: %#x, want %#x", c.path, got, c.want)
		}
	}
	if _, err := lowestMapping([]byte(maps), "/bin/true"); err == nil {
		t.Error("an executable that is not mapped was found")
	}
}

func TestRunExecHeapWarns(t *testing.T) {
	r := runTender(t, "--mem=2", "--x-exec-heap", guestBinary(t, "hello", guests.TargetSPT), "Hello_Solo5")
	if r.exitCode() != 0 || !strings.Contains(r.stdout, "SUCCESS") {
		t.Fatalf("want exit 0 and SUCCESS:\n%v", r)
	}
	want := "WARNING: The use of --x-exec-heap is dangerous and not recommended as it makes the heap and stack executable."
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks the upstream warning:\n%v", r)
	}
}

func TestPrintFilter(t *testing.T) {
	img := filepath.Join(t.TempDir(), "storage.img")
	if err := os.WriteFile(img, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := plan.ParseArgs([]string{"--mem=2", "--block:storage=" + img,
		"--block-sector-size:storage=4096", guestBinary(t, "blk", guests.TargetSPT)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	var out bytes.Buffer
	if err := PrintFilter(&out, p); err != nil {
		t.Fatal(err)
	}
	fd := p.Blocks[0].File.Fd()
	for _, want := range []string{
		"fd == stdout (1)",
		"exit_group",
		fmt.Sprintf("fd == %d && count == 4096 && offset <= 4096", fd),
		"solo5_block_write on storage",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "solo5_net_read") {
		t.Errorf("output has net rules for a guest without network devices:\n%s", out.String())
	}
}

// TestRunRejectsMemoryReachingExecutable requests the largest size MemSize
// accepts, which reaches every executable's load address, and must be
// rejected before the exec. The limit depends on the helper's own load
// address, which ASLR changes in every process, so no smaller size is
// certain to be rejected.
func TestRunRejectsMemoryReachingExecutable(t *testing.T) {
	mem := fmt.Sprintf("--mem=%d", maxMemSize>>20)
	r := runTender(t, mem, guestBinary(t, "hello", guests.TargetSPT))
	if r.exitCode() != 1 {
		t.Fatalf("%s: want exit 1:\n%v", mem, r)
	}
	if !strings.Contains(r.stderr, "reaches the ntender executable") {
		t.Errorf("stderr does not explain the limit:\n%v", r)
	}
	if strings.Contains(r.stderr, "spt launch:") {
		t.Errorf("the launcher ran; Run should have rejected the size first:\n%v", r)
	}
}

// TestGuestProcessState inspects the process of a running guest: the time
// guest sleeps for about a second, which leaves time to read /proc once
// the filter is installed.
func TestGuestProcessState(t *testing.T) {
	tender, err := startTender("--mem=2", guestBinary(t, "time", guests.TargetSPT))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r, err := tender.wait(); err != nil || r.exitCode() != 0 {
			t.Errorf("guest run failed (%v):\n%v", err, r)
		}
	}()
	proc := fmt.Sprintf("/proc/%d", tender.cmd.Process.Pid)

	// Seccomp: 2 means a filter is installed, so the guest runs.
	var status string
	for range 2000 {
		b, err := os.ReadFile(proc + "/status")
		if err != nil {
			t.Fatalf("the guest ended before its state was read: %v", err)
		}
		if status = string(b); strings.Contains(status, "\nSeccomp:\t2\n") {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for _, want := range []string{"\nSeccomp:\t2\n", "\nSeccomp_filters:\t1\n", "\nThreads:\t1\n", "\nNoNewPrivs:\t1\n"} {
		if !strings.Contains(status, want) {
			t.Errorf("/proc status lacks %q:\n%s", strings.TrimSpace(want), status)
		}
	}

	comm, err := os.ReadFile(proc + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(comm)); got != helperProcessName {
		t.Errorf("guest process name is %q, want argv[0] %q", got, helperProcessName)
	}

	entries, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range entries {
		target, err := os.Readlink(proc + "/fd/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(e.Name()); n > 2 {
			kinds = append(kinds, target)
		}
	}
	sort.Strings(kinds)
	if got, want := strings.Join(kinds, " "), "anon_inode:[eventpoll] anon_inode:[timerfd]"; got != want {
		t.Errorf("fds above 2 are %q, want %q", got, want)
	}

	maps, err := os.ReadFile(proc + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(maps), "00010000-00100000 rw-p ") {
		t.Errorf("guest memory is not the first mapping at 0x10000:\n%s", maps)
	}
	if strings.Contains(string(maps), "ntender-spt-launch") {
		t.Errorf("the launch image is still mapped:\n%s", maps)
	}
}

func TestPrintFilterRejectsHVT(t *testing.T) {
	opts, err := plan.ParseArgs([]string{"--mem=2", guestBinary(t, "hello", guests.TargetHVT)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out bytes.Buffer
	if err := PrintFilter(&out, p); !errors.Is(err, ErrNotSPT) {
		t.Errorf("error %v, want ErrNotSPT", err)
	}
	if out.Len() != 0 {
		t.Errorf("output %q, want none", out.String())
	}
}

func TestBelowExecutableHint(t *testing.T) {
	if err := belowExecutable(512<<20, 0x400000); err == nil ||
		!strings.Contains(err.Error(), "-buildmode=pie") {
		t.Errorf("non-PIE executable at 0x400000: error %v, want the -buildmode=pie hint", err)
	}
	err := belowExecutable(1<<47, 0x558ccd9f6000)
	if err == nil || !strings.Contains(err.Error(), "lower --mem") {
		t.Errorf("PIE executable: error %v, want the --mem hint", err)
	}
	if err != nil && strings.Contains(err.Error(), "-buildmode=pie") {
		t.Errorf("PIE executable: error %v suggests -buildmode=pie", err)
	}
	if err := belowExecutable(512<<20, 0x558ccd9f6000); err != nil {
		t.Errorf("512 MiB below a PIE executable: %v", err)
	}
}
