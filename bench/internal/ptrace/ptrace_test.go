package ptrace

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// processState returns the state letter of /proc/PID/stat, such as "t"
// for a process stopped by a tracer.
func processState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The state follows the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return fields[0]
}

func TestStartGatedStopsBeforeRunning(t *testing.T) {
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	cmd := exec.Command("/bin/sh", "-c", "echo ran")
	cmd.Stdout = out
	var state string
	var setupPid int
	err = StartGated(cmd, func(pid int) error {
		setupPid = pid
		state = processState(t, pid)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}

	if setupPid != cmd.Process.Pid {
		t.Errorf("setup got pid %d, expected %d", setupPid, cmd.Process.Pid)
	}
	if state != "t" {
		t.Errorf("process state during setup = %q, expected t (traced, stopped)", state)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "ran\n" {
		t.Errorf("output = %q, expected the command to run after setup", data)
	}
}

func TestStartGatedSetupFailureKills(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	setupErr := errors.New("setup failed")
	err := StartGated(cmd, func(int) error { return setupErr })
	if !errors.Is(err, setupErr) {
		t.Fatalf("StartGated = %v, expected the setup error", err)
	}
	if cmd.ProcessState == nil {
		t.Fatal("the process was not reaped")
	}
	if cmd.ProcessState.Success() {
		t.Error("the process ran to success, expected it killed before running")
	}
}

func TestPeakRSSReportsStatusAndPeak(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	status, peak, err := PeakRSS(cmd, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if status != 3 {
		t.Errorf("status = %d, expected 3", status)
	}
	if peak <= 0 {
		t.Errorf("peak = %d KiB, expected a positive size", peak)
	}
	// The shell is smaller than this Go test binary. getrusage's
	// ru_maxrss would report at least the test binary's peak here.
	self, err := readVmHWM(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if peak >= self {
		t.Errorf("peak = %d KiB, expected less than the test binary's %d KiB", peak, self)
	}
}

func TestPeakRSSReportsSignal(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "kill -SEGV $$")
	status, _, err := PeakRSS(cmd, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if status != 128+11 {
		t.Errorf("status = %d, expected 139 (SIGSEGV)", status)
	}
}

func TestPeakRSSRejectsPipedOutput(t *testing.T) {
	cmd := exec.Command("/bin/true")
	cmd.Stdout = &strings.Builder{}
	if _, _, err := PeakRSS(cmd, time.Minute); err == nil {
		t.Error("PeakRSS accepted a writer that only cmd.Wait would copy")
	}
}

func TestPeakRSSKillsAtTimeout(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "600")
	_, _, err := PeakRSS(cmd, 100*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("PeakRSS = %v, expected ErrTimeout", err)
	}
}
