package guests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CaseTimeout bounds one guest run. The slowest case, blk/hvt, took 4 to
// 12 s on a loaded host where every hvt exit is slow (see README.md).
const CaseTimeout = 120 * time.Second

// requireAllEnv turns the skips for a missing prerequisite (guests not
// built, no /dev/kvm, not root) into failures when set to 1.
const requireAllEnv = "NTENDER_REQUIRE_ALL"

// SkipOrFail skips the test with reason, or fails it when
// NTENDER_REQUIRE_ALL=1 requires every prerequisite to be present.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(requireAllEnv) == "1" {
		t.Fatalf("%s (%s=1)", reason, requireAllEnv)
	}
	t.Skip(reason)
}

// Run runs c under a tender and checks the exit status and output.
// tender is the program and any leading options, such as
// {"ntender", "--mode=hvt"}; Run appends the case's tender arguments.
//
// Run creates the block images in t.TempDir(). For a case with net
// devices, which needs root, it creates a network namespace with one tap
// per device and runs the tender in it. It sends the case's pings from
// the namespace once the guest prints "Serving ping". It skips (or fails, see
// SkipOrFail) when the guests are not built, when an hvt case has no
// usable /dev/kvm, when a net case does not run as root, and when the
// host has one of the case's known issues.
func Run(t testing.TB, c Case, tender ...string) {
	t.Helper()
	if len(tender) == 0 {
		t.Fatal("Run: no tender command")
	}
	if _, err := os.Stat(c.BinaryPath()); err != nil {
		SkipOrFail(t, fmt.Sprintf("guest not built, run make -C tests/guests: %v", err))
	}
	if issue, ok := c.ActiveHostIssue(); ok {
		t.Skipf("known to fail on this host: %s", issue.Reason)
	}
	if c.Target == TargetHVT {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			SkipOrFail(t, fmt.Sprintf("hvt needs /dev/kvm: %v", err))
		}
		f.Close()
	}

	dir := t.TempDir()
	blockPaths := make(map[string]string)
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

	var prefix []string
	var namespace string
	taps := make(map[string]string)
	if len(c.Net) > 0 {
		if os.Geteuid() != 0 {
			SkipOrFail(t, "net cases need root to create taps")
		}
		namespace = createNetwork(t, c, taps)
		prefix = []string{"ip", "netns", "exec", namespace}
	}

	args, err := c.TenderArgs(blockPaths, taps)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append(prefix, tender...), args...)
	ctx, cancel := context.WithTimeout(context.Background(), CaseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var threads string
	cmd.Cancel = func() error {
		// Record where a hung tender waits before killing it.
		threads = threadStates(cmd.Process.Pid)
		return cmd.Process.Kill()
	}
	var output SyncBuffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	if len(c.Ping) > 0 {
		sendPings(ctx, t, c, namespace, &output, exited)
	}
	<-exited
	status, err := ExitStatus(waitErr)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s timed out after %v\ncommand: %s\noutput:\n%s\nthreads at the timeout:\n%s",
			c.ID(), CaseTimeout, strings.Join(argv, " "), output.String(), threads)
	}
	if err := c.Check(status, output.String()); err != nil {
		t.Errorf("%v\ncommand: %s\noutput:\n%s", err, strings.Join(argv, " "), output.String())
	}
}

// threadStates returns one line per thread of process pid: its name, its
// state and the kernel function it waits in, so that a timed-out run
// shows where the tender hung.
func threadStates(pid int) string {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, task := range tasks {
		read := func(name string) string {
			data, err := os.ReadFile(filepath.Join(dir, task.Name(), name))
			if err != nil {
				return "?"
			}
			return strings.TrimSpace(string(data))
		}
		stat := read("stat")
		// The state is the field after the parenthesised name.
		if i := strings.LastIndexByte(stat, ')'); i >= 0 && i+3 <= len(stat) {
			stat = stat[i+2 : i+3]
		}
		fmt.Fprintf(&b, "tid %s %s state %s wchan %s syscall %s\n",
			task.Name(), read("comm"), stat, read("wchan"), read("syscall"))
	}
	return b.String()
}

// namespaceCount makes namespace names unique within the process.
var namespaceCount atomic.Int64

// createNetwork creates a network namespace with one tap per net device
// of c, configured for the device's test network, and fills taps. The
// namespace keeps the taps and their addresses away from the host, and
// t.Cleanup deletes it with the taps.
func createNetwork(t testing.TB, c Case, taps map[string]string) string {
	t.Helper()
	namespace := fmt.Sprintf("ntguests%d-%d", os.Getpid(), namespaceCount.Add(1))
	ip(t, "netns", "add", namespace)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", namespace).CombinedOutput(); err != nil {
			t.Errorf("deleting network namespace %s: %v: %s", namespace, err, out)
		}
	})
	ip(t, "-n", namespace, "link", "set", "lo", "up")
	for i, n := range c.Net {
		tap := fmt.Sprintf("tap%d", i)
		ip(t, "-n", namespace, "tuntap", "add", "dev", tap, "mode", "tap")
		ip(t, "-n", namespace, "link", "set", tap, "mtu", fmt.Sprint(n.MTU))
		if n.HostAddress != "" {
			ip(t, "-n", namespace, "addr", "add", n.HostAddress, "dev", tap)
		}
		ip(t, "-n", namespace, "link", "set", tap, "up")
		taps[n.Name] = tap
	}
	return namespace
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// sendPings waits until the guest serves, then sends the case's echo
// requests from the namespace. It returns early when the tender exits
// first. With -w, ping keeps sending until count replies arrive, which
// makes up for requests lost while ARP resolves.
func sendPings(ctx context.Context, t testing.TB, c Case, namespace string, output *SyncBuffer, exited <-chan struct{}) {
	t.Helper()
	for !strings.Contains(output.String(), "Serving ping") {
		select {
		case <-ctx.Done():
			return
		case <-exited:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, p := range c.Ping {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", namespace,
			"ping", "-q", "-i", "0.01", "-c", fmt.Sprint(p.Count), "-w", "30", p.Address)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ping %s: %v: %s", p.Address, err, out)
		}
	}
}

// SyncBuffer is a bytes.Buffer that a process writes while a test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
