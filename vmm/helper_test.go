package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"github.com/ntender/ntender/plan"
)

// helperEnv names the environment variable that turns the test binary
// into a tender: it then runs "ntender run" with the arguments after "--"
// and exits with the guest's status, as cmd/ntender would.
const helperEnv = "NTENDER_VMM_TEST_TENDER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
	case "filter-runtime":
		os.Exit(runtimeUnderFilter())
	case "spin":
		os.Exit(runSpinningGuest())
	case "ring":
		os.Exit(runRingGuest(helperArgs()))
	default:
		os.Exit(runTender(mode, helperArgs()))
	}
	os.Exit(m.Run())
}

func helperArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// runTender runs a guest the way the CLI does and returns the exit status.
// Mode "seccomp" installs the filter, "print-filter" prints it, and any
// other mode runs without it.
func runTender(mode string, args []string) int {
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
	defer p.Close()

	// The logger is the kind cmd/ntender uses, so that the tests catch
	// system calls a log line makes under the filter.
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := Config{
		NoSeccomp: mode != "seccomp",
		Log:       func(msg string) { log.Warn(msg) },
	}
	if mode == "print-filter" {
		cfg.PrintFilter = os.Stdout
	}
	status, err := Run(p, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntender:", err)
	}
	return status
}

// tenderResult is the outcome of one tender process.
type tenderResult struct {
	status int
	output string // stdout and stderr, interleaved
}

// runHelper runs the test binary as a tender with args and returns its
// exit status and output. A process killed by a signal reports 128+signal,
// as a shell does.
func runHelper(t *testing.T, mode string, args ...string) tenderResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()

	var exitErr *exec.ExitError
	status := 0
	switch {
	case errors.As(err, &exitErr):
		status = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	case err != nil:
		t.Fatalf("running the tender: %v", err)
	}
	return tenderResult{status: status, output: out.String()}
}

// runFilterHelper runs runtimeUnderFilter in a child process.
func runFilterHelper(t *testing.T) tenderResult {
	t.Helper()
	return runHelper(t, "filter-runtime")
}

func debugFreeOSMemory() { debug.FreeOSMemory() }

func TestHelperSeccompHello(t *testing.T) {
	r := runHelper(t, "seccomp", "--mem=4", "../tests/guests/build/hello.hvt", "Hello_Solo5")
	t.Logf("status %d\n%s", r.status, r.output)
	if !strings.Contains(r.output, "SUCCESS") {
		t.Fail()
	}
}
