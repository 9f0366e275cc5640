package guests

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// TenderArgs returns the Solo5 tender command line of the case, without
// the tender program: --mem, the block and net options, "--", the guest
// binary and its arguments. blockPaths maps each block device name to its
// backing file and taps maps each net device name to a tap interface.
func (c Case) TenderArgs(blockPaths, taps map[string]string) ([]string, error) {
	args := []string{fmt.Sprintf("--mem=%d", c.MemMiB)}
	for _, b := range c.Block {
		path, ok := blockPaths[b.Name]
		if !ok {
			return nil, fmt.Errorf("case %s: no backing file for block device %q", c.ID(), b.Name)
		}
		args = append(args, "--block:"+b.Name+"="+path)
		if b.SectorSize != 0 {
			args = append(args, fmt.Sprintf("--block-sector-size:%s=%d", b.Name, b.SectorSize))
		}
	}
	for _, n := range c.Net {
		tap, ok := taps[n.Name]
		if !ok {
			return nil, fmt.Errorf("case %s: no tap for net device %q", c.ID(), n.Name)
		}
		args = append(args, "--net:"+n.Name+"="+tap)
	}
	args = append(args, "--", c.BinaryPath())
	return append(args, c.Args...), nil
}

// Check compares the exit status and the combined output of a finished
// run with the case's expectations. The error lists every mismatch.
func (c Case) Check(status int, output string) error {
	var problems []string
	if status != c.Status {
		problems = append(problems, fmt.Sprintf("exit status %d, expected %d", status, c.Status))
	}
	for _, want := range c.Output {
		if !strings.Contains(output, want) {
			problems = append(problems, fmt.Sprintf("output is missing %q", want))
		}
	}
	for _, unwanted := range c.NoOutput {
		if strings.Contains(output, unwanted) {
			problems = append(problems, fmt.Sprintf("output contains %q", unwanted))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("case %s: %s", c.ID(), strings.Join(problems, "; "))
}

// ExitStatus converts the error of exec.Cmd.Wait or Run into an exit
// status the way a shell reports it: the process's exit code, or 128+N
// when signal N killed it. A nil error is status 0. Errors other than an
// exit are returned unchanged.
func ExitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return 0, err
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return exitErr.ExitCode(), nil
}
