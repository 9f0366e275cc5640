// Package measure counts how much of the host kernel a tender reaches,
// the way the nabla containers measurements did. It counts three things:
// the distinct system calls the tender's processes make (the
// raw_syscalls:sys_enter tracepoint through tracefs), the system calls its
// seccomp filter allows, and the distinct kernel functions it reaches.
//
// Kernel functions come from the ftrace function tracer, limited to the
// tender's processes, when the kernel allows it. Where it does not, they
// come from perf sampling with kernel call stacks: every function on a
// sampled stack counts, so the result is a lower bound, labelled so in
// every output.
//
// Counting starts right after the execve of the measured program: the
// program is started stopped under ptrace, and released once the
// tracing filters name its pid. Threads and child processes are
// followed.
//
// Security: Measure needs root. It mounts tracefs if needed, creates its
// own tracefs instance, and may change perf_event_max_sample_rate (the
// kernel lowers it when sampling takes too long). It restores all of
// these on return, including after an error or a canceled context.
package measure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	seccomp "github.com/seccomp/libseccomp-golang"

	"github.com/ntender/ntender/bench"
	"github.com/ntender/ntender/bench/internal/ptrace"
)

// Config sets what Measure runs.
type Config struct {
	Tenders bench.Tenders
	// Modes names the modes to measure, from bench.AllModes and
	// bench.ModeRunc.
	Modes []string
	// Unikernel is the hvt or spt binary; the binary of the other target
	// is taken from beside it, with the .hvt or .spt suffix swapped.
	Unikernel string
	Args      []string
	// RunFlags are Solo5 tender options (--mem, --block:..., --net:...)
	// given to every tender.
	RunFlags []string
	// RuncBundle, when not empty, adds a runc container run from this
	// OCI bundle.
	RuncBundle string
	// PerfRuns is how many sampled runs are merged per mode when the
	// function tracer is not allowed.
	PerfRuns int
	// Timeout bounds one run.
	Timeout time.Duration
	// Progress, if not nil, is called with a label before each run.
	Progress func(label string)
}

// Report is the result of Measure, and the --json output.
type Report struct {
	Machine bench.Machine `json:"machine"`
	// KernelFunctionsMethod is "ftrace function tracer" or "perf
	// sampling (sampled lower bound)".
	KernelFunctionsMethod string `json:"kernel_functions_method"`
	// SampledLowerBound is true when the kernel function counts come
	// from sampling and are lower bounds.
	SampledLowerBound bool `json:"sampled_lower_bound"`
	// FunctionTracerRejected is the reason the function tracer was not
	// used, or empty.
	FunctionTracerRejected string        `json:"function_tracer_rejected,omitempty"`
	PerfRuns               int           `json:"perf_runs,omitempty"`
	Modes                  []*ModeResult `json:"modes"`
}

// ModeResult is the measurement of one mode.
type ModeResult struct {
	Name        string   `json:"name"`
	Command     []string `json:"command,omitempty"`
	Unavailable string   `json:"unavailable,omitempty"`
	// Status is the exit status of the traced run.
	Status int `json:"status"`

	// Syscalls are the distinct system calls the processes made.
	Syscalls []string `json:"syscalls"`
	// SyscallsAfterFilter are the distinct system calls made after the
	// first seccomp filter was installed; nil when none was installed.
	SyscallsAfterFilter []string `json:"syscalls_after_filter"`
	// OutsideFilter are SyscallsAfterFilter that Filter neither allows
	// nor fails with an error, so calls for which it kills the process.
	OutsideFilter []string `json:"outside_filter"`
	// FailedByFilter are SyscallsAfterFilter for which the filter
	// returns an error, such as ENOSYS for clone3.
	FailedByFilter []string `json:"failed_by_filter,omitempty"`
	// Filter is the tender's seccomp allow-list; nil for runc.
	Filter *Filter `json:"filter,omitempty"`
	// LostEvents counts tracepoint events the ring buffer lost; when
	// not zero, Syscalls may be incomplete.
	LostEvents int64 `json:"lost_events"`

	// KernelFunctions is the number of distinct kernel functions
	// reached, a lower bound when Report.SampledLowerBound is set.
	KernelFunctions     int      `json:"kernel_functions"`
	KernelFunctionNames []string `json:"kernel_function_names"`
	// KernelFunctionsAfterFilter counts the functions reached after the
	// first seccomp filter install: the guest's share for the Solo5
	// modes. It is measured only by perf sampling; with the function
	// tracer, and where no filter is installed, it is 0 and the names
	// are null.
	KernelFunctionsAfterFilter     int      `json:"kernel_functions_after_filter"`
	KernelFunctionNamesAfterFilter []string `json:"kernel_function_names_after_filter"`
	// FunctionEventsLost counts function tracer events the ring buffer
	// lost. When it is not zero, KernelFunctions is a lower bound too.
	FunctionEventsLost int64 `json:"function_events_lost,omitempty"`

	Error string `json:"error,omitempty"`
}

// Measure measures every mode of cfg. It returns an error without a
// report when it cannot measure at all (not root, no tracefs), and
// records per-mode failures in the report otherwise.
func Measure(ctx context.Context, cfg Config) (report *Report, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("measuring needs root: it mounts tracefs, traces the tender's processes and samples the kernel with perf; run it as root")
	}
	if cfg.PerfRuns < 1 {
		return nil, fmt.Errorf("invalid number of perf runs %d: expected at least 1", cfg.PerfRuns)
	}
	modes, err := newModes(cfg)
	if err != nil {
		return nil, err
	}

	var settings Settings
	defer func() {
		if rerr := settings.Restore(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("%w: %w", ErrRestore, rerr))
		}
	}()
	root, err := mountTracefs(&settings)
	if err != nil {
		return nil, err
	}
	in, err := newInstance(&settings, root, fmt.Sprintf("ntender-measure-%d", os.Getpid()), 16384)
	if err != nil {
		return nil, err
	}
	// The kernel lowers this limit by itself when sampling interrupts
	// take too long; writing the current value records it for Restore.
	rate, err := os.ReadFile(sampleRatePath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", sampleRatePath, err)
	}
	if err := settings.Write(sampleRatePath, strings.TrimSpace(string(rate))); err != nil {
		return nil, err
	}

	m := &measurer{cfg: cfg, in: in}
	report = &Report{Machine: bench.DescribeMachine()}
	if err := m.chooseFunctionMethod(report); err != nil {
		return nil, err
	}

	for _, mode := range modes {
		if ctx.Err() != nil {
			return report, ctx.Err()
		}
		report.Modes = append(report.Modes, mode)
		if mode.Unavailable != "" {
			continue
		}
		if err := m.measureMode(ctx, mode); err != nil {
			mode.Error = err.Error()
		}
	}
	return report, ctx.Err()
}

const sampleRatePath = "/proc/sys/kernel/perf_event_max_sample_rate"

// ErrRestore marks the error of a tracing setting that Measure changed
// and could not restore; the message names the setting.
var ErrRestore = errors.New("restoring tracing settings failed")

// chooseFunctionMethod picks the function tracer when the kernel allows
// it and perf sampling otherwise, and records the choice in report.
func (m *measurer) chooseFunctionMethod(report *Report) error {
	ok, reason := m.in.functionTracerAllowed()
	if ok {
		m.useFunctionTracer = true
		report.KernelFunctionsMethod = "ftrace function tracer"
		return nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("the function tracer is not usable (%s) and perf is not installed: %w", reason, err)
	}
	report.KernelFunctionsMethod = "perf sampling (sampled lower bound)"
	report.SampledLowerBound = true
	report.FunctionTracerRejected = reason
	report.PerfRuns = m.cfg.PerfRuns
	return nil
}

// newModes returns one result per mode with its command, or with the
// reason it cannot run. A runc bundle adds the runc mode.
func newModes(cfg Config) ([]*ModeResult, error) {
	names := cfg.Modes
	tenders := cfg.Tenders
	if cfg.RuncBundle != "" {
		tenders.RuncBundle = cfg.RuncBundle
		if !slices.Contains(names, bench.ModeRunc) {
			names = append(slices.Clone(names), bench.ModeRunc)
		}
	}
	modes, err := bench.NewModes(names, tenders)
	if err != nil {
		return nil, err
	}

	base := strings.TrimSuffix(strings.TrimSuffix(cfg.Unikernel, ".hvt"), ".spt")
	var results []*ModeResult
	for _, m := range modes {
		r := &ModeResult{Name: m.Name, Unavailable: m.Unavailable}
		results = append(results, r)
		if r.Unavailable != "" {
			continue
		}
		if m.Name == bench.ModeRunc {
			r.Command = []string{m.Tender, "run", "--bundle", tenders.RuncBundle}
			continue
		}
		guest := base + "." + m.Target
		if _, err := os.Stat(guest); err != nil {
			r.Unavailable = fmt.Sprintf("no %s binary: %v", m.Target, err)
			continue
		}
		r.Filter, err = tenderFilter(m, guest, cfg)
		if err != nil {
			// ntender rejects the mode, as it rejects spt-in-hvt
			// before that backend exists.
			r.Unavailable = err.Error()
			continue
		}
		r.Command = append(append([]string{m.Tender}, m.TenderArgs...), cfg.RunFlags...)
		r.Command = append(append(r.Command, "--", guest), cfg.Args...)
	}
	return results, nil
}

// tenderFilter returns the filter of mode m: ntender prints its own, and
// the upstream lists are facts from the Solo5 source.
func tenderFilter(m bench.Mode, guest string, cfg Config) (*Filter, error) {
	switch m.Name {
	case bench.ModeSolo5HVT:
		f := upstreamHVTFilter()
		return &f, nil
	case bench.ModeSolo5SPT:
		var block, net bool
		for _, flag := range cfg.RunFlags {
			block = block || strings.HasPrefix(flag, "--block:")
			net = net || strings.HasPrefix(flag, "--net:")
		}
		f := upstreamSPTFilter(block, net)
		return &f, nil
	}
	argv := append([]string{"run", "--print-filter"}, m.TenderArgs...)
	argv = append(append(argv, cfg.RunFlags...), "--", guest)
	out, err := exec.Command(m.Tender, argv...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", m.Tender, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	f := ParseFilter(string(out))
	if len(f.Allowed) == 0 {
		return nil, fmt.Errorf("%s %s printed no filter rules", m.Tender, strings.Join(argv, " "))
	}
	return &f, nil
}

// measurer runs the traced and sampled runs of each mode.
type measurer struct {
	cfg               Config
	in                *instance
	useFunctionTracer bool
	runs              int
}

func (m *measurer) progress(label string) {
	if m.cfg.Progress != nil {
		m.cfg.Progress(label)
	}
}

func (m *measurer) measureMode(ctx context.Context, r *ModeResult) error {
	m.progress(r.Name + ": tracing system calls")
	events, status, lost, err := m.traceSyscalls(ctx, r)
	if err != nil {
		return err
	}
	r.Status, r.LostEvents = status, lost
	r.Syscalls = syscallNames(events)
	if after, ok := afterFirstFilter(events); ok {
		r.SyscallsAfterFilter = syscallNames(after)
		if r.Filter != nil {
			r.OutsideFilter = outside(r.SyscallsAfterFilter, append(slices.Clone(r.Filter.Allowed), r.Filter.Failed...))
			r.FailedByFilter = inside(r.SyscallsAfterFilter, r.Filter.Failed)
		}
	}

	var names PerfProfile
	if m.useFunctionTracer {
		m.progress(r.Name + ": tracing kernel functions")
		names.Functions, r.FunctionEventsLost, err = m.traceFunctions(ctx, r)
	} else {
		names, err = m.sampleFunctions(ctx, r)
	}
	if err != nil {
		return err
	}
	r.KernelFunctionNames = names.Functions
	r.KernelFunctions = len(names.Functions)
	if names.AfterFilter != nil {
		r.KernelFunctionsAfterFilter = len(names.AfterFilter)
		r.KernelFunctionNamesAfterFilter = names.AfterFilter
	}
	return nil
}

// command returns the command of r; runc runs get a container id of
// their own each time.
func (m *measurer) command(ctx context.Context, r *ModeResult, prefix ...string) *exec.Cmd {
	argv := append(prefix, r.Command...)
	if r.Name == bench.ModeRunc {
		m.runs++
		argv = append(argv, fmt.Sprintf("ntender-measure-%d-%d", os.Getpid(), m.runs))
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	killGroupOnCancel(cmd)
	return cmd
}

// killGroupOnCancel starts cmd in a process group of its own and makes
// the end of its context kill the whole group, so that no child of perf
// or runc outlives a canceled measurement.
func killGroupOnCancel(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
}

// runGated runs cmd stopped after execve, calls setup with its pid, and
// waits for it. It returns the exit status (128+N for signal N) and the
// output.
func (m *measurer) runGated(ctx context.Context, cmd *exec.Cmd, setup func(pid int) error) (int, string, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := ptrace.StartGated(cmd, setup); err != nil {
		return 0, out.String(), err
	}
	timer := time.AfterFunc(m.cfg.Timeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	if !timer.Stop() {
		return 0, out.String(), fmt.Errorf("%s: timed out after %v; raise --timeout", cmd.Path, m.cfg.Timeout)
	}
	status, err := exitStatus(err)
	return status, out.String(), err
}

// exitStatus converts the error of exec.Cmd.Wait into an exit status:
// the exit code, or 128+N for death by signal N. Errors other than an
// exit are returned.
func exitStatus(err error) (int, error) {
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

// traceSyscalls runs r once with the sys_enter tracepoint enabled for its
// processes only and returns the events, the exit status and the number
// of events the ring buffer lost.
func (m *measurer) traceSyscalls(ctx context.Context, r *ModeResult) ([]SyscallEvent, int, int64, error) {
	steps := func(pid int) [][2]string {
		return [][2]string{
			{"set_event_pid", strconv.Itoa(pid)},
			{"events/raw_syscalls/sys_enter/enable", "1"},
			{"tracing_on", "1"},
		}
	}
	var events []SyscallEvent
	parse := func(pipe io.Reader) (err error) {
		events, err = ParseSyscallTrace(pipe)
		return err
	}
	status, lost, err := m.tracedRun(ctx, r, steps, parse)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(events) == 0 {
		return nil, 0, 0, fmt.Errorf("the trace of %s contains no system call; is the raw_syscalls tracepoint enabled in this kernel?", r.Name)
	}
	return events, status, lost, nil
}

// traceFunctions runs r once under the function tracer limited to its
// processes and returns the distinct functions and the number of events
// the ring buffer lost.
//
// NOTE: this path has not run on a kernel that allows the function
// tracer. Only its parser, ParseFunctionTrace, has tests. It also counts
// no functions after the filter, unlike the perf path.
func (m *measurer) traceFunctions(ctx context.Context, r *ModeResult) ([]string, int64, error) {
	steps := func(pid int) [][2]string {
		return [][2]string{
			{"set_ftrace_pid", strconv.Itoa(pid)},
			{"current_tracer", "function"},
			{"tracing_on", "1"},
		}
	}
	var names []string
	parse := func(pipe io.Reader) (err error) {
		names, err = ParseFunctionTrace(pipe)
		return err
	}
	_, lost, err := m.tracedRun(ctx, r, steps, parse)
	return names, lost, err
}

// tracedRun runs r once under the instance's tracing. It applies the
// settings of steps(pid) while the process is stopped after its execve,
// and undoes them when it exits. parse reads the instance's trace_pipe
// while the process runs, so that the ring buffer is drained as it
// fills. Its input ends once tracing has stopped and the pipe is empty. tracedRun returns the exit status and the number of
// events the ring buffer lost all the same.
func (m *measurer) tracedRun(ctx context.Context, r *ModeResult, steps func(pid int) [][2]string,
	parse func(io.Reader) error) (status int, lost int64, err error) {
	var run Settings
	defer run.Restore()
	if err := m.in.clear(); err != nil {
		return 0, 0, err
	}
	stop := make(chan struct{})
	pipe, err := m.in.openPipe(stop)
	if err != nil {
		return 0, 0, err
	}
	defer pipe.Close()
	parsed := make(chan error, 1)
	go func() { parsed <- parse(pipe) }()

	setup := func(pid int) error {
		for _, step := range steps(pid) {
			if err := run.Write(m.in.path(step[0]), step[1]); err != nil {
				return err
			}
		}
		return nil
	}
	status, _, err = m.runGated(ctx, m.command(ctx, r), setup)
	// Tracing stops before stop is closed, so that the reader drains
	// every event.
	if rerr := run.Restore(); err == nil && rerr != nil {
		err = rerr
	}
	close(stop)
	perr := <-parsed
	if err != nil {
		return 0, 0, err
	}
	if perr != nil {
		return 0, 0, perr
	}

	lost, err = m.in.lostEvents()
	return status, lost, err
}

// sampleFunctions runs r PerfRuns times under perf record, which samples
// the CPU clock with call stacks at the highest rate the kernel allows,
// up to maxSampleRate.
// It returns the distinct kernel functions on any sampled stack, in all
// and after the first seccomp filter install. perf also records every
// seccomp and prctl call, from which the install is found.
func (m *measurer) sampleFunctions(ctx context.Context, r *ModeResult) (PerfProfile, error) {
	dir, err := os.MkdirTemp("", "ntender-measure")
	if err != nil {
		return PerfProfile{}, fmt.Errorf("creating a directory for perf data: %w", err)
	}
	defer os.RemoveAll(dir)
	seen := make(map[string]bool)
	var after map[string]bool
	for i := range m.cfg.PerfRuns {
		m.progress(fmt.Sprintf("%s: sampling kernel functions, run %d/%d", r.Name, i+1, m.cfg.PerfRuns))
		data := filepath.Join(dir, fmt.Sprintf("perf-%d.data", i))
		// "-F max" would also put the tracepoints in frequency mode,
		// where they sample only some events. So the cpu-clock event
		// gets the rate as a term. The rate is read before each run
		// because the kernel lowers it when sampling takes too long.
		rate, err := readSampleRate()
		if err != nil {
			return PerfProfile{}, err
		}
		tctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
		cmd := m.command(tctx, r, "perf", "record", "-q", "-g", "-o", data,
			"-e", fmt.Sprintf("cpu-clock/freq=%d/", rate),
			"-e", "syscalls:sys_enter_seccomp", "-e", "syscalls:sys_enter_prctl", "--")
		out, err := cmd.CombinedOutput()
		timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded)
		cancel()
		if timedOut {
			return PerfProfile{}, fmt.Errorf("perf record: timed out after %v; raise --timeout or measure a shorter run", m.cfg.Timeout)
		}
		if _, serr := exitStatus(err); serr != nil {
			return PerfProfile{}, withOutput(fmt.Errorf("perf record: %w", serr), out)
		}
		script := exec.CommandContext(ctx, "perf", "script", "-i", data, "-F", "comm,pid,tid,time,event,ip,sym,trace")
		var stderr bytes.Buffer
		script.Stderr = &stderr
		stdout, err := script.StdoutPipe()
		if err != nil {
			return PerfProfile{}, fmt.Errorf("perf script: %w", err)
		}
		if err := script.Start(); err != nil {
			return PerfProfile{}, fmt.Errorf("perf script: %w", err)
		}
		profile, perr := ParsePerfScript(stdout, "perf-exec")
		if err := script.Wait(); err != nil {
			return PerfProfile{}, withOutput(fmt.Errorf("perf script: %w", err), stderr.Bytes())
		}
		if perr != nil {
			return PerfProfile{}, perr
		}
		for _, n := range profile.Functions {
			seen[n] = true
		}
		if profile.AfterFilter != nil && after == nil {
			after = make(map[string]bool)
		}
		for _, n := range profile.AfterFilter {
			after[n] = true
		}
	}
	result := PerfProfile{Functions: sortedSet(seen)}
	if after != nil {
		result.AfterFilter = sortedSet(after)
	}
	return result, nil
}

// withOutput appends a program's output to err when there is any.
func withOutput(err error, output []byte) error {
	if text := strings.TrimSpace(string(output)); text != "" {
		return fmt.Errorf("%w: %s", err, text)
	}
	return err
}

// readSampleRate returns perf_event_max_sample_rate.
func readSampleRate() (int, error) {
	data, err := os.ReadFile(sampleRatePath)
	if err != nil {
		return 0, fmt.Errorf("reading the perf sample rate: %w", err)
	}
	rate, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || rate < 1 {
		return 0, fmt.Errorf("reading the perf sample rate: invalid %s %q", sampleRatePath, data)
	}
	return min(rate, maxSampleRate), nil
}

// maxSampleRate caps the sampling rate for every mode alike. On kvm_pvm
// hosts, entering a ring 3 guest (an spt unikernel in the VM) takes
// about 15 µs, so sampling interrupts every 12.5 µs (80 kHz) or more
// often stop the guest from making progress at all.
const maxSampleRate = 50000

// syscallNames returns the distinct names of the events' system calls.
// A number libseccomp does not know is named "syscall_N".
func syscallNames(events []SyscallEvent) []string {
	seen := make(map[string]bool)
	for _, e := range events {
		name, err := seccomp.ScmpSyscall(e.NR).GetName()
		if err != nil || name == "" {
			name = fmt.Sprintf("syscall_%d", e.NR)
		}
		seen[name] = true
	}
	return sortedSet(seen)
}

// x86-64 numbers of the calls that install a seccomp filter.
const (
	nrPrctl              = 157
	nrSeccomp            = 317
	prSetSeccomp         = 22
	seccompModeFilter    = 2 // prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)
	seccompSetModeFilter = 1 // seccomp(SECCOMP_SET_MODE_FILTER, ...)
)

// afterFirstFilter returns the events later than the first call that
// installs a seccomp filter, and false when there is none. A call with a
// NULL program is no install: libseccomp makes such calls to probe
// which filter flags the kernel supports. This assumes
// one process whose filter covers every thread (TSYNC), which holds for
// ntender and the Solo5 tenders but not for runc's process tree.
func afterFirstFilter(events []SyscallEvent) ([]SyscallEvent, bool) {
	for i, e := range events {
		if isFilterInstall(e) {
			var after []SyscallEvent
			for _, later := range events[i+1:] {
				if later.Time >= e.Time {
					after = append(after, later)
				}
			}
			return after, true
		}
	}
	return nil, false
}

func isFilterInstall(e SyscallEvent) bool {
	switch e.NR {
	case nrSeccomp:
		// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)
		return len(e.Args) > 2 && e.Args[0] == seccompSetModeFilter && e.Args[2] != 0
	case nrPrctl:
		// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)
		return len(e.Args) > 2 && e.Args[0] == prSetSeccomp && e.Args[1] == seccompModeFilter && e.Args[2] != 0
	}
	return false
}

// outside returns the names in made that listed does not contain, as a
// non-nil slice.
func outside(made, listed []string) []string {
	out := []string{}
	for _, name := range made {
		if !slices.Contains(listed, name) {
			out = append(out, name)
		}
	}
	return out
}

// inside returns the names in made that listed contains.
func inside(made, listed []string) []string {
	var in []string
	for _, name := range made {
		if slices.Contains(listed, name) {
			in = append(in, name)
		}
	}
	return in
}
