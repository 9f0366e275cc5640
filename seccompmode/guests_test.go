package seccompmode

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ntender/ntender/tests/guests"
)

// TestGuests runs every spt case of the shared guest table under the spt
// backend and checks its exit status and output.
func TestGuests(t *testing.T) {
	cases, err := guests.Cases()
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, c := range cases {
		if c.Target != guests.TargetSPT {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			if issue, ok := c.ActiveHostIssue(); ok {
				t.Skipf("known issue on this host (kernel module %s): %s", issue.Module, issue.Reason)
			}
			if _, err := os.Stat(c.BinaryPath()); err != nil {
				skipOrFail(t, fmt.Sprintf("test guest is not built (run make -C tests/guests): %v", err))
			}
			r := runGuestCase(t, c)
			if err := c.Check(r.exitCode(), r.stdout+r.stderr); err != nil {
				t.Errorf("%v\n%v", err, r)
			}
		})
	}
	if ran == 0 {
		t.Fatal("the guest table has no spt cases")
	}
}

// runGuestCase creates the case's block files and, for a case with
// network devices, a network namespace with its taps, runs the tender and
// sends the case's pings.
func runGuestCase(t *testing.T, c guests.Case) result {
	t.Helper()
	dir := t.TempDir()
	blockPaths := map[string]string{}
	for _, b := range c.Block {
		path := filepath.Join(dir, b.Name+".img")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, b.Size); err != nil {
			t.Fatal(err)
		}
		blockPaths[b.Name] = path
	}

	if len(c.Net) == 0 {
		args, err := c.TenderArgs(blockPaths, nil)
		if err != nil {
			t.Fatal(err)
		}
		return runTender(t, args...)
	}

	if _, err := exec.LookPath("ping"); err != nil && len(c.Ping) > 0 {
		skipOrFail(t, "needs ping (Debian package iputils-ping) to send echo requests to the guest")
	}
	taps := map[string]string{}
	var specs []tapSpec
	for i, n := range c.Net {
		name := fmt.Sprintf("tap%d", i)
		taps[n.Name] = name
		specs = append(specs, tapSpec{name: name, address: n.HostAddress, mtu: n.MTU})
	}
	args, err := c.TenderArgs(blockPaths, taps)
	if err != nil {
		t.Fatal(err)
	}
	var r result
	inNewNetns(t, specs, func() {
		tender, err := startTender(args...)
		if err != nil {
			t.Error(err)
			return
		}
		if !pingAll(t, c.Ping) {
			tender.cmd.Process.Kill()
		}
		if r, err = tender.wait(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// pingAll sends the pings of a case, to all addresses at once, and
// reports whether each got all its replies. With -w, ping keeps sending
// until Count replies arrive, so requests sent before the guest is up do
// not count. Each ping starts on the calling thread, so it runs in that
// thread's network namespace.
func pingAll(t *testing.T, pings []guests.Ping) bool {
	type running struct {
		address string
		cmd     *exec.Cmd
		out     bytes.Buffer
	}
	var started []*running
	ok := true
	for _, p := range pings {
		r := &running{address: p.Address}
		r.cmd = exec.Command("ping", "-n", "-q", "-c", fmt.Sprint(p.Count), "-i", "0.01", "-w", "30", p.Address)
		r.cmd.Stdout = &r.out
		r.cmd.Stderr = &r.out
		if err := r.cmd.Start(); err != nil {
			t.Errorf("starting ping %s: %v", p.Address, err)
			ok = false
			continue
		}
		started = append(started, r)
	}
	for _, r := range started {
		if err := r.cmd.Wait(); err != nil {
			t.Errorf("ping %s: %v\n%s", r.address, err, r.out.String())
			ok = false
		}
	}
	return ok
}
