// Package conformance runs the project's test guests through the ntender
// binary on every backend that can run them: hvt guests under hvt, and spt
// guests under spt and, through the syscall shim, under hvt. An spt
// guest must give the same console output and exit status on both.
package conformance

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ntender/ntender/tests/guests"
)

var ntenderBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ntender-conformance")
	if err != nil {
		panic(err)
	}
	ntenderBin = filepath.Join(dir, "ntender")
	build := exec.Command("go", "build", "-buildmode=pie", "-o", ntenderBin, "../../cmd/ntender")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building ntender: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestMatrix checks every case of the shared guest table against its
// expectations on each backend that runs its target.
func TestMatrix(t *testing.T) {
	cases, err := guests.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		modes := []string{"hvt"}
		if c.Target == guests.TargetSPT {
			modes = []string{"spt", "hvt"}
		}
		for _, mode := range modes {
			t.Run(c.ID()+"/mode="+mode, func(t *testing.T) {
				skipHostIssue(t, c)
				guests.Run(t, c, ntenderBin, "--mode="+mode)
			})
		}
	}
}

// variable matches what legitimately differs between two runs of one
// guest: measured times and counts.
var variable = regexp.MustCompile(`[0-9]+`)

// TestSPTSameOnBothBackends runs each spt case that needs no network under
// both backends and compares the guest's console output (stdout) and the
// exit status. Digits are masked because the time guest prints what it
// measured.
func TestSPTSameOnBothBackends(t *testing.T) {
	cases, err := guests.Cases()
	if err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		guests.SkipOrFail(t, "hvt needs /dev/kvm: "+err.Error())
	} else {
		f.Close()
	}
	for _, c := range cases {
		if c.Target != guests.TargetSPT || len(c.Net) > 0 {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			if _, err := os.Stat(c.BinaryPath()); err != nil {
				guests.SkipOrFail(t, "guest not built, run make -C tests/guests: "+err.Error())
			}
			skipHostIssue(t, c)
			sptOut, sptStatus := runConsole(t, c, "spt")
			hvtOut, hvtStatus := runConsole(t, c, "hvt")
			if sptStatus != hvtStatus {
				t.Errorf("exit status: spt %d, hvt %d", sptStatus, hvtStatus)
			}
			if !bytes.Equal(variable.ReplaceAll(sptOut, nil), variable.ReplaceAll(hvtOut, nil)) {
				t.Errorf("console output differs\nspt:\n%s\nhvt:\n%s", sptOut, hvtOut)
			}
		})
	}
}

// skipHostIssue skips the run of c when this host is known to fail it.
// An spt guest in the VM runs its own code in ring 3, outside the
// instruction emulator that the hvt host issues come from, so it has only
// its own.
func skipHostIssue(t *testing.T, c guests.Case) {
	t.Helper()
	if issue, ok := c.ActiveHostIssue(); ok {
		t.Skipf("known to fail on this host: %s", issue.Reason)
	}
}

// runConsole runs c under ntender --mode=mode with fresh block images and
// returns the guest's stdout and the exit status.
func runConsole(t *testing.T, c guests.Case, mode string) ([]byte, int) {
	t.Helper()
	dir := t.TempDir()
	blockPaths := make(map[string]string)
	for _, b := range c.Block {
		path := filepath.Join(dir, b.Name+".img")
		if err := os.WriteFile(path, make([]byte, b.Size), 0o600); err != nil {
			t.Fatal(err)
		}
		blockPaths[b.Name] = path
	}
	args, err := c.TenderArgs(blockPaths, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guests.CaseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ntenderBin, append([]string{"--mode=" + mode}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	status, err := guests.ExitStatus(cmd.Run())
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("--mode=%s timed out after %v; stderr:\n%s", mode, guests.CaseTimeout, stderr.String())
	}
	return stdout.Bytes(), status
}
