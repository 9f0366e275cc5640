package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ntender/ntender/bench/internal/ptrace"
)

// guestRun is one guest to start: the guest binary's base name (such as
// "bench_blk"), its arguments, and the devices to attach.
type guestRun struct {
	binary string
	args   []string
	// block maps a manifest block device name to its backing file.
	block map[string]string
	// net maps a manifest net device name to a tap; mac maps it to the
	// guest MAC address.
	net map[string]string
	mac map[string]string
	// netns runs the tender in this network namespace when not empty.
	netns string
}

// runResult is a finished tender process.
type runResult struct {
	wall      time.Duration // from start to exit, as the bench saw it
	output    string        // stdout and stderr, interleaved
	status    int           // exit status; 128+N for death by signal N
	maxRSSKiB int64         // VmHWM at exit, only from runPeakRSS
}

// command returns the argv that runs g under mode m. Under runc, which
// runs its bundle instead of a guest, each run gets a container id of
// its own.
func (b *Bench) command(m Mode, g guestRun) []string {
	if m.Name == ModeRunc {
		b.containers++
		id := fmt.Sprintf("ntender-bench-%d-%d", os.Getpid(), b.containers)
		return []string{m.Tender, "run", "--bundle", b.cfg.Tenders.RuncBundle, id}
	}
	var argv []string
	if g.netns != "" {
		argv = append(argv, "ip", "netns", "exec", g.netns)
	}
	argv = append(argv, m.Tender)
	argv = append(argv, m.TenderArgs...)
	argv = append(argv, fmt.Sprintf("--mem=%d", m.MemMiB))
	for _, name := range sortedKeys(g.block) {
		argv = append(argv, "--block:"+name+"="+g.block[name])
	}
	for _, name := range sortedKeys(g.net) {
		argv = append(argv, "--net:"+name+"="+g.net[name])
		if mac := g.mac[name]; mac != "" {
			argv = append(argv, "--net-mac:"+name+"="+mac)
		}
	}
	argv = append(argv, "--", b.guestPath(g.binary, m.Target))
	return append(argv, g.args...)
}

// start starts g under m and returns the running process. The caller
// must call wait.
func (b *Bench) start(ctx context.Context, m Mode, g guestRun) (*process, error) {
	argv := b.command(m, g)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A process group of its own lets a timeout or Ctrl-C end the
	// tender's children too, such as the container of runc run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	p := &process{cmd: cmd, ctx: ctx, cancel: cancel, argv: argv, timeout: b.cfg.Timeout}
	cmd.Stdout = &p.output
	cmd.Stderr = &p.output
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return p, nil
}

// process is a running tender.
type process struct {
	cmd     *exec.Cmd
	ctx     context.Context
	cancel  context.CancelFunc
	argv    []string
	output  syncBuffer
	started time.Time
	timeout time.Duration
}

// wait waits for the process and returns its result. A timeout or a
// failure to wait is an error; a non-zero exit status is not.
func (p *process) wait() (runResult, error) {
	defer p.cancel()
	err := p.cmd.Wait()
	r := runResult{wall: time.Since(p.started), output: p.output.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		ws, _ := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.status = 128 + int(ws.Signal())
		} else {
			r.status = ws.ExitStatus()
		}
	default:
		return r, fmt.Errorf("waiting for %s: %w", p.argv[0], err)
	}
	if errors.Is(p.ctx.Err(), context.DeadlineExceeded) {
		return r, fmt.Errorf("%s: timed out after %v (raise --timeout); output ends: %s",
			strings.Join(p.argv, " "), p.timeout, tail(r.output, 300))
	}
	if err := p.ctx.Err(); err != nil {
		return r, fmt.Errorf("%s: %w", strings.Join(p.argv, " "), err)
	}
	return r, nil
}

// run runs g under m to its end and checks that the guest succeeded.
func (b *Bench) run(ctx context.Context, m Mode, g guestRun) (runResult, error) {
	p, err := b.start(ctx, m, g)
	if err != nil {
		return runResult{}, err
	}
	r, err := p.wait()
	if err != nil {
		return r, err
	}
	if m.Name == ModeRunc {
		return r, checkStatus(p.argv, r)
	}
	return r, checkSuccess(p.argv, r)
}

// checkStatus returns an error unless the run exited with status 0.
func checkStatus(argv []string, r runResult) error {
	if r.status == 0 {
		return nil
	}
	return fmt.Errorf("%s: exit status %d, expected 0; output ends: %s",
		strings.Join(argv, " "), r.status, tail(r.output, 300))
}

// runPeakRSS runs g under m to its end under ptrace, records the peak
// resident set of the tender process, and checks that the guest
// succeeded.
func (b *Bench) runPeakRSS(m Mode, g guestRun) (runResult, error) {
	argv := b.command(m, g)
	out, err := os.CreateTemp("", "ntender-bench-output")
	if err != nil {
		return runResult{}, fmt.Errorf("creating an output file: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out
	status, peak, err := ptrace.PeakRSS(cmd, b.cfg.Timeout)
	if errors.Is(err, ptrace.ErrTimeout) {
		return runResult{}, fmt.Errorf("%s: %w (raise --timeout)", strings.Join(argv, " "), err)
	}
	if err != nil {
		return runResult{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	output, err := os.ReadFile(out.Name())
	if err != nil {
		return runResult{}, fmt.Errorf("reading the output: %w", err)
	}
	r := runResult{output: string(output), status: status, maxRSSKiB: peak}
	return r, checkSuccess(argv, r)
}

// checkSuccess returns an error unless the guest exited with status 0
// after printing SUCCESS. The error quotes the end of the output.
func checkSuccess(argv []string, r runResult) error {
	if r.status == 0 && strings.Contains(r.output, "SUCCESS") {
		return nil
	}
	return fmt.Errorf("%s: exit status %d, expected 0 and SUCCESS; output ends: %s",
		strings.Join(argv, " "), r.status, tail(r.output, 300))
}

// tail returns the last n bytes of s on one line.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// syncBuffer is a bytes.Buffer that one writer and one reader may use at
// the same time.
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

// sortedKeys returns the keys of m in order, so command lines are stable.
func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
