package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ntender/ntender/tender"
	"github.com/ntender/ntender/tests/guests"
)

// ntenderBin is the ntender binary these tests run, built once by TestMain
// the way the Makefile builds it.
var ntenderBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ntender-cmd-test")
	if err != nil {
		panic(err)
	}
	ntenderBin = filepath.Join(dir, "ntender")
	build := exec.Command("go", "build", "-buildmode=pie", "-o", ntenderBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building ntender: " + err.Error())
	}
	for _, name := range []string{"solo5-hvt", "solo5-spt"} {
		if err := os.Symlink("ntender", filepath.Join(dir, name)); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs prog (ntender or one of its links) and returns stdout,
// stderr and the exit status.
func runBinary(t *testing.T, prog string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(filepath.Dir(ntenderBin), prog), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exitErr):
		return stdout.String(), stderr.String(), exitErr.ExitCode()
	}
	t.Fatalf("running %s: %v", prog, err)
	return "", "", 0
}

func TestInfoJSON(t *testing.T) {
	stdout, stderr, status := runBinary(t, "ntender", "info", "../../abi/testdata/good/hvt-v2.hvt")
	if status != 0 {
		t.Fatalf("status %d, want 0; stderr: %s", status, stderr)
	}
	var got struct {
		ABI struct {
			Type    string `json:"type"`
			Target  string `json:"target"`
			Version int    `json:"version"`
		} `json:"abi"`
		Manifest struct {
			Type    string `json:"type"`
			Version int    `json:"version"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if got.ABI.Type != "solo5.abi" || got.ABI.Target != "hvt" || got.ABI.Version != 2 {
		t.Errorf("abi = %+v, want solo5.abi, hvt, 2", got.ABI)
	}
	if got.Manifest.Type != "solo5.manifest" || got.Manifest.Version != 1 {
		t.Errorf("manifest = %+v, want solo5.manifest, 1", got.Manifest)
	}
}

func TestInfoInvalidFile(t *testing.T) {
	stdout, stderr, status := runBinary(t, "ntender", "info", "../../abi/testdata/bad/buggyelf.elf")
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
		t.Errorf("stderr has %d lines, want 1: %q", lines, stderr)
	}
	if !strings.Contains(stderr, "note does not fall within valid size") {
		t.Errorf("stderr = %q, want the note size error", stderr)
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		prog string
		args []string
		want string
	}{
		{"no unikernel", "ntender", []string{"run"}, "Missing KERNEL operand"},
		{"link without unikernel", "solo5-spt", nil, "Missing KERNEL operand"},
		{"missing file", "ntender", []string{"/nonexistent/x.hvt"}, "/nonexistent/x.hvt"},
		{"bad mode", "ntender", []string{"--mode=xen", "x.hvt"}, "--mode"},
		{"bad mem", "ntender", []string{"--mem=abc", "x.hvt"}, "Malformed argument to --mem"},
		{"bad log level", "ntender", []string{"--log-level=loud", "x.hvt"}, "--log-level"},
		{"unknown option", "ntender", []string{"--frobnicate", "x.hvt"}, "Invalid option"},
		{"link forces mode", "solo5-hvt", []string{"--mode=spt", "x.hvt"}, "solo5-hvt runs only --mode=hvt"},
		{"invalid elf", "ntender", []string{"../../abi/testdata/bad/buggyelf.elf"}, "note does not fall within valid size"},
		{"info format with abi", "ntender", []string{"info", "--format=text", "--abi", "../../abi/testdata/good/hvt-v2.hvt"}, "leave out --format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runBinary(t, tt.prog, tt.args...)
			if status != 1 {
				t.Errorf("status %d, want 1", status)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

func TestRunWrongBackend(t *testing.T) {
	hello := guests.Binary("hello", guests.TargetHVT)
	if _, err := os.Stat(hello); err != nil {
		t.Skipf("%s not built (make -C tests/guests): %v", hello, err)
	}
	_, stderr, status := runBinary(t, "ntender", "--mode=spt", hello)
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	if !strings.Contains(stderr, "cannot run under --mode=spt") {
		t.Errorf("stderr = %q, want the backend mismatch", stderr)
	}
}

// TestLinkNamesVersion expects the two lines of the upstream tenders'
// --version.
func TestLinkNamesVersion(t *testing.T) {
	for _, link := range []string{"solo5-hvt", "solo5-spt"} {
		stdout, stderr, status := runBinary(t, link, "--version")
		if status != 0 {
			t.Errorf("%s --version: status %d; stderr: %s", link, status, stderr)
		}
		want := link + " tender, version ntender-"
		if !strings.HasPrefix(stdout, want) || !strings.HasSuffix(stdout, "\nABI version 2\n") {
			t.Errorf("%s --version = %q, want %q... and ABI version 2", link, stdout, want)
		}
	}
}

// TestLinkNamesRejectOtherTarget expects the upstream message from
// solo5-hvt given an spt unikernel, and from solo5-spt given an hvt one.
func TestLinkNamesRejectOtherTarget(t *testing.T) {
	for _, c := range []struct{ link, target string }{
		{"solo5-hvt", guests.TargetSPT},
		{"solo5-spt", guests.TargetHVT},
	} {
		hello := guests.Binary("hello", c.target)
		if _, err := os.Stat(hello); err != nil {
			t.Skipf("%s not built (make -C tests/guests): %v", hello, err)
		}
		_, stderr, status := runBinary(t, c.link, hello)
		if status != 1 {
			t.Errorf("%s %s: status %d, want 1", c.link, hello, status)
		}
		want := "Executable is not for the " + c.link + " target"
		if !strings.Contains(stderr, want) {
			t.Errorf("%s %s: stderr = %q, want %q", c.link, hello, stderr, want)
		}
	}
}

func TestDryRun(t *testing.T) {
	hello := guests.Binary("hello", guests.TargetSPT)
	if _, err := os.Stat(hello); err != nil {
		t.Skipf("%s not built (make -C tests/guests): %v", hello, err)
	}
	want := "mode: hvt ("
	if err := tender.ProbeKVM(); err != nil {
		want = "mode: spt ("
	}
	stdout, stderr, status := runBinary(t, "ntender", "--dry-run", hello)
	if status != 0 {
		t.Fatalf("status %d, want 0; stderr: %s", status, stderr)
	}
	if !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout = %q, want it to start with %q", stdout, want)
	}
	stdout, _, _ = runBinary(t, "ntender", "--dry-run", "--mode=spt", hello)
	if !strings.HasPrefix(stdout, "mode: spt (") {
		t.Errorf("with --mode=spt, stdout = %q, want the spt choice", stdout)
	}
}

func TestLinkNamesRunGuests(t *testing.T) {
	for _, target := range []string{guests.TargetHVT, guests.TargetSPT} {
		t.Run(target, func(t *testing.T) {
			hello := guests.Binary("hello", target)
			if _, err := os.Stat(hello); err != nil {
				t.Skipf("%s not built (make -C tests/guests): %v", hello, err)
			}
			if target == guests.TargetHVT {
				if _, err := os.Stat("/dev/kvm"); err != nil && os.Getenv("NTENDER_REQUIRE_ALL") != "1" {
					t.Skipf("no /dev/kvm: %v", err)
				}
			}
			stdout, stderr, status := runBinary(t, "solo5-"+target, "--mem=4", hello, "Hello_Solo5")
			if status != 0 {
				t.Fatalf("status %d, want 0; stderr: %s", status, stderr)
			}
			if !strings.Contains(stdout, "SUCCESS") {
				t.Errorf("stdout = %q, want SUCCESS", stdout)
			}
		})
	}
}

// TestSignalsStopHVTGuest checks the exit status when a signal stops an
// hvt guest that is still running: 1 for SIGINT and SIGTERM, as
// solo5-hvt, and 128+N for the signals that kill solo5-hvt, with one
// message line and no Go runtime output.
func TestSignalsStopHVTGuest(t *testing.T) {
	tests := []struct {
		signal syscall.Signal
		status int
	}{
		{syscall.SIGTERM, 1},
		{syscall.SIGINT, 1},
		{syscall.SIGHUP, 129},
		{syscall.SIGQUIT, 131},
		{syscall.SIGUSR1, 138},
	}
	for _, tt := range tests {
		t.Run(tt.signal.String(), func(t *testing.T) {
			cmd, stderr := startRunningHVT(t)
			if err := cmd.Process.Signal(tt.signal); err != nil {
				t.Fatal(err)
			}
			status, err := guests.ExitStatus(cmd.Wait())
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("status %d, want %d; stderr: %s", status, tt.status, stderr.String())
			}
			if lines := strings.Count(stderr.String(), "\n"); lines != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", lines, stderr.String())
			}
		})
	}
}

// startRunningHVT starts the hvt bench guest on a long call loop with
// extra as inherited files and returns once the guest has printed its
// first line, which comes after the tender installed its filter. The
// returned buffer collects the tender's stderr.
func startRunningHVT(t *testing.T, extra ...*os.File) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	bench := guests.Binary("bench", guests.TargetHVT)
	if _, err := os.Stat(bench); err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	if err := tender.ProbeKVM(); err != nil {
		guests.SkipOrFail(t, "hvt needs KVM: "+err.Error())
	}
	cmd := exec.Command(ntenderBin, "--mode=hvt", "--mem=4", bench, "calls", "1000000000")
	cmd.ExtraFiles = extra
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("reading the guest's first line: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	return cmd, &stderr
}

// TestStopContinueHVT stops and continues a running hvt tender, as job
// control and a cgroup freeze do, and expects it to run on under its
// seccomp filter and then end cleanly on SIGTERM.
func TestStopContinueHVT(t *testing.T) {
	cmd, stderr := startRunningHVT(t)
	for range 5 {
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status, err := guests.ExitStatus(cmd.Wait())
	if err != nil {
		t.Fatal(err)
	}
	if status != 1 {
		t.Errorf("status %d, want 1 (SIGTERM); stderr: %s", status, stderr.String())
	}
}

// TestClosedStdoutHVT checks that an hvt guest writing to a closed pipe
// ends the tender with 141, as SIGPIPE ends solo5-hvt, rather than
// tripping the tender's own seccomp filter.
func TestClosedStdoutHVT(t *testing.T) {
	hello := guests.Binary("output", guests.TargetHVT)
	if _, err := os.Stat(hello); err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	if err := tender.ProbeKVM(); err != nil {
		guests.SkipOrFail(t, "hvt needs KVM: "+err.Error())
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(ntenderBin, "--mode=hvt", "--mem=4", hello, "Output_Solo5")
	cmd.Stdout = w
	status, err := guests.ExitStatus(cmd.Run())
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if status != 141 {
		t.Errorf("status %d, want 141", status)
	}
}

func TestRunHelp(t *testing.T) {
	// ntender prints help to stdout and exits 0; the solo5-hvt link does
	// what solo5-hvt does: stderr and exit 1.
	tests := []struct {
		prog     string
		args     []string
		status   int
		toStderr bool
	}{
		{"ntender", []string{"run", "--help"}, 0, false},
		{"ntender", []string{"--mode=hvt", "--help"}, 0, false},
		{"solo5-hvt", []string{"--help"}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.prog+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, status := runBinary(t, tt.prog, tt.args...)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			help := stdout
			if tt.toStderr {
				help = stderr
			}
			for _, want := range []string{"--block:NAME=PATH", "--dry-run"} {
				if !strings.Contains(help, want) {
					t.Errorf("help lacks %q: stdout %q, stderr %q", want, stdout, stderr)
				}
			}
		})
	}
}

func TestHelpCommandIsNotAUnikernel(t *testing.T) {
	stdout, stderr, status := runBinary(t, "ntender", "help", "run")
	if status != 0 {
		t.Errorf("status %d, want 0; stderr: %s", status, stderr)
	}
	if !strings.Contains(stdout, "ntender run") {
		t.Errorf("stdout = %q, want the run command's help", stdout)
	}
}

func TestExecHeapOnlyForSPT(t *testing.T) {
	hello := guests.Binary("hello", guests.TargetHVT)
	if _, err := os.Stat(hello); err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	if err := tender.ProbeKVM(); err != nil {
		guests.SkipOrFail(t, "hvt needs KVM: "+err.Error())
	}
	stdout, stderr, status := runBinary(t, "ntender", "--x-exec-heap", "--mem=4", hello, "Hello_Solo5")
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	if stdout != "" {
		t.Errorf("the guest ran: stdout = %q", stdout)
	}
	if !strings.Contains(stderr, "--x-exec-heap applies only to spt unikernels") {
		t.Errorf("stderr = %q, want the option named", stderr)
	}
}

func TestDumpCoreOnAbort(t *testing.T) {
	abort := guests.Binary("abort", guests.TargetHVT)
	if _, err := os.Stat(abort); err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	if err := tender.ProbeKVM(); err != nil {
		guests.SkipOrFail(t, "hvt needs KVM: "+err.Error())
	}
	dir := t.TempDir()
	_, stderr, status := runBinary(t, "ntender", "--dumpcore="+dir, "--mem=4", abort)
	if status != 255 {
		t.Fatalf("status %d, want 255; stderr:\n%s", status, stderr)
	}

	// upstream's tests take the file name from the end of this line.
	var path string
	for _, line := range strings.Split(stderr, "\n") {
		if _, p, ok := strings.Cut(line, "dumpcore: dumping guest core to: "); ok {
			path = p
		}
	}
	if path == "" {
		t.Fatalf("stderr lacks the dumpcore message:\n%s", stderr)
	}
	if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), "core.solo5-hvt.") {
		t.Errorf("core file %q, want %s/core.solo5-hvt.PID", path, dir)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf cannot open the core file: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_CORE {
		t.Errorf("type = %v, want ET_CORE", f.Type)
	}
}

func TestDumpCoreOnlyForHVT(t *testing.T) {
	abort := guests.Binary("abort", guests.TargetSPT)
	if _, err := os.Stat(abort); err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	for _, mode := range []string{"--mode=spt", "--mode=auto"} {
		dir := t.TempDir()
		stdout, stderr, status := runBinary(t, "ntender", mode, "--dumpcore="+dir, "--mem=4", abort)
		if status != 1 {
			t.Errorf("%s: status %d, want 1", mode, status)
		}
		if stdout != "" {
			t.Errorf("%s: the guest ran: stdout = %q", mode, stdout)
		}
		if !strings.Contains(stderr, "--dumpcore applies only to hvt unikernels") {
			t.Errorf("%s: stderr = %q, want the option named", mode, stderr)
		}
	}
}

// TestExecHeapWarnsInBothBackends expects solo5-spt's --x-exec-heap
// warning from an spt unikernel under either backend.
func TestExecHeapWarnsInBothBackends(t *testing.T) {
	hello := guests.Binary("hello", guests.TargetSPT)
	if _, err := os.Stat(hello); err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	modes := []string{"spt"}
	if err := tender.ProbeKVM(); err == nil {
		modes = append(modes, "hvt")
	}
	for _, mode := range modes {
		_, stderr, status := runBinary(t, "ntender", "--mode="+mode, "--x-exec-heap", "--mem=4", hello, "Hello_Solo5")
		if status != 0 {
			t.Errorf("--mode=%s: status %d; stderr: %s", mode, status, stderr)
		}
		if !strings.Contains(stderr, "--x-exec-heap is dangerous") {
			t.Errorf("--mode=%s: stderr = %q, want the warning", mode, stderr)
		}
	}
}

// TestInheritedFdClosedHVT passes the hvt tender an open file as fd 3 and
// expects it closed while the guest runs: under the filter the tender has
// no use for descriptors it did not open itself.
func TestInheritedFdClosedHVT(t *testing.T) {
	extra, err := os.Open(guests.Binary("bench", guests.TargetHVT))
	if err != nil {
		guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
	}
	defer extra.Close()
	cmd, _ := startRunningHVT(t, extra)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	// The guest's first line comes after the filter is installed.
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", cmd.Process.Pid))
	if err == nil {
		t.Errorf("fd 3 (%s) is still open in the running tender", link)
	}
}
