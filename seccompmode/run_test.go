package seccompmode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ntender/ntender/plan"
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
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperArgsVar+"="+strings.Join(args, helperArgsSep))
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running the tender with %q: %v", args, err)
	}
	return result{
		status: cmd.ProcessState.Sys().(syscall.WaitStatus),
		stdout: stdout.String(),
		stderr: stderr.String(),
	}
}

// guestBinary returns the path of a project test guest, built by
// `make -C tests/guests`. It skips the test when the guest is missing,
// unless NTENDER_REQUIRE_ALL=1.
func guestBinary(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "tests", "guests", "build", name)
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
	r := runTender(t, "--mem=2", guestBinary(t, "hello.spt"), "Hello_Solo5")
	if r.exitCode() != 0 {
		t.Fatalf("want exit 0:\n%v", r)
	}
	if !strings.Contains(r.stdout, "SUCCESS") {
		t.Errorf("stdout lacks SUCCESS:\n%v", r)
	}
}

func TestRunRejectsHVTUnikernel(t *testing.T) {
	r := runTender(t, "--mem=2", guestBinary(t, "hello.hvt"))
	if r.exitCode() != 1 {
		t.Fatalf("want exit 1:\n%v", r)
	}
	if !strings.Contains(r.stderr, ErrNotSPT.Error()) {
		t.Errorf("stderr does not say %q:\n%v", ErrNotSPT, r)
	}
}

func TestRunRejectsEntryOutsideMemory(t *testing.T) {
	r := runTender(t, "--mem=1", guestBinary(t, "hello.spt"))
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
	r := runTender(t, guestBinary(t, "hello.spt"), "Hello_Solo5")
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
