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
	"testing"
	"time"
)

// Environment variables naming the tenders TestCasesUnderTender runs the
// table with: any program with the Solo5 tender command line, such as
// solo5-hvt and solo5-spt, or ntender under those names.
// GUESTS_EXPECT=upstream checks the upstream Solo5 outcome where the
// table records one.
const (
	hvtTenderEnv = "GUESTS_TENDER_HVT"
	sptTenderEnv = "GUESTS_TENDER_SPT"
	expectEnv    = "GUESTS_EXPECT"
)

// caseTimeout bounds one guest run; the slowest case needs about 2 s.
const caseTimeout = 60 * time.Second

// TestCasesUnderTender runs every case of the table under the tenders
// named by GUESTS_TENDER_HVT and GUESTS_TENDER_SPT and checks the exit
// status and output. It checks the table against a reference tender (the
// upstream Solo5 ones) and any other tender against the table. Network
// cases need root: they create a network namespace with taps.
func TestCasesUnderTender(t *testing.T) {
	tenders := map[string]string{
		TargetHVT: os.Getenv(hvtTenderEnv),
		TargetSPT: os.Getenv(sptTenderEnv),
	}
	if tenders[TargetHVT] == "" && tenders[TargetSPT] == "" {
		t.Skipf("set %s or %s to a Solo5-compatible tender to run the table",
			hvtTenderEnv, sptTenderEnv)
	}
	if _, err := os.Stat(BuildDir()); err != nil {
		skipOrFail(t, "guests not built: run make -C tests/guests first")
	}
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	upstream := false
	switch expect := os.Getenv(expectEnv); expect {
	case "":
	case "upstream":
		upstream = true
	default:
		t.Fatalf("invalid %s=%q, expected upstream or nothing", expectEnv, expect)
	}

	for _, c := range cases {
		if upstream {
			c = c.WithUpstreamExpectation()
		}
		t.Run(c.ID(), func(t *testing.T) {
			tender := tenders[c.Target]
			if tender == "" {
				t.Skipf("no %s tender given", c.Target)
			}
			runCase(t, c, tender)
		})
	}
}

func runCase(t *testing.T, c Case, tender string) {
	if issue, ok := c.ActiveHostIssue(); ok {
		t.Skipf("known to fail on this host: %s", issue.Reason)
	}
	if c.Target == TargetHVT {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			skipOrFail(t, fmt.Sprintf("hvt needs /dev/kvm: %v", err))
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
	taps := make(map[string]string)
	var namespace string
	if len(c.Net) > 0 {
		if os.Geteuid() != 0 {
			skipOrFail(t, "network cases need root to create taps")
		}
		namespace = createNetwork(t, c, taps)
		prefix = []string{"ip", "netns", "exec", namespace}
	}

	args, err := c.TenderArgs(blockPaths, taps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	argv := append(append(prefix, tender), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var output syncBuffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if len(c.Ping) > 0 {
		sendPings(t, ctx, c, namespace, &output)
	}
	status, err := ExitStatus(cmd.Wait())
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s timed out after %v; output:\n%s", c.ID(), caseTimeout, output.String())
	}
	if err := c.Check(status, output.String()); err != nil {
		t.Errorf("%v\ncommand: %s\noutput:\n%s", err, strings.Join(argv, " "), output.String())
	}
}

// createNetwork creates a network namespace with one tap per net device
// of c, configured for the device's test network, and fills taps.
// The namespace keeps the taps and their addresses away from the host.
func createNetwork(t *testing.T, c Case, taps map[string]string) string {
	namespace := fmt.Sprintf("ntguests%d", os.Getpid())
	ip(t, "netns", "add", namespace)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", namespace).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", namespace, err, out)
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

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// sendPings waits until the guest serves, then sends the case's echo
// requests from the namespace. ping -w keeps sending until count replies
// arrive, so requests lost while ARP resolves are made up for.
func sendPings(t *testing.T, ctx context.Context, c Case, namespace string, output *syncBuffer) {
	for !strings.Contains(output.String(), "Serving ping") {
		if ctx.Err() != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range c.Ping {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", namespace,
			"ping", "-q", "-i", "0.01", "-c", fmt.Sprint(p.Count), "-w", "30", p.Address)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ping %s: %v: %s", p.Address, err, out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
