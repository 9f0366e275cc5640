package measure

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SyscallEvent is one raw_syscalls:sys_enter event from a tracefs trace.
type SyscallEvent struct {
	Comm string
	TID  int
	// Time is the event timestamp in seconds, in the trace clock.
	Time float64
	NR   int
	Args []uint64
}

// traceHeader matches the fields that start every event line of a tracefs
// "trace" file: comm-tid, an optional "(tgid)" column (the record-tgid
// option), the CPU, an optional latency-flags column (irq-info) and the
// timestamp. comm may contain '-' and spaces, so the greedy match ends at
// the last "-digits" before the CPU column.
const traceHeader = `^\s*(.+)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:\S+\s+)?(\d+\.\d+):\s+`

var (
	sysEnterLine = regexp.MustCompile(traceHeader + `sys_enter:\s+NR\s+(-?\d+)\s+\(([0-9a-f, ]*)\)`)
	functionLine = regexp.MustCompile(traceHeader + `(\S+)\s+<-(\S+)\s*$`)
)

// ParseSyscallTrace reads the events of the raw_syscalls:sys_enter
// tracepoint from tracefs "trace" output, such as
//
//	ntender-1234  [001] ..... 52.123456: sys_enter: NR 1 (1, c000010000, 5, 0, 0, 0)
//
// Comment lines and lines of other events are skipped. A sys_enter line
// whose fields do not parse is an error.
func ParseSyscallTrace(r io.Reader) ([]SyscallEvent, error) {
	var events []SyscallEvent
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if strings.HasPrefix(line, "#") || !strings.Contains(line, "sys_enter:") {
			continue
		}
		m := sysEnterLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("parsing syscall trace line %d: unexpected format %q", n, line)
		}
		e := SyscallEvent{Comm: m[1]}
		var err error
		if e.TID, err = strconv.Atoi(m[2]); err != nil {
			return nil, fmt.Errorf("parsing syscall trace line %d: tid: %w", n, err)
		}
		if e.Time, err = strconv.ParseFloat(m[4], 64); err != nil {
			return nil, fmt.Errorf("parsing syscall trace line %d: timestamp: %w", n, err)
		}
		if e.NR, err = strconv.Atoi(m[5]); err != nil {
			return nil, fmt.Errorf("parsing syscall trace line %d: syscall number: %w", n, err)
		}
		for _, a := range strings.Split(m[6], ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			v, err := strconv.ParseUint(a, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("parsing syscall trace line %d: argument %q: %w", n, a, err)
			}
			e.Args = append(e.Args, v)
		}
		events = append(events, e)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading syscall trace: %w", err)
	}
	return events, nil
}

// ParseFunctionTrace returns the distinct kernel functions in output of
// the ftrace function tracer, such as
//
//	ntender-1234  [000] ...1. 52.123456: do_syscall_64 <-entry_SYSCALL_64_after_hwframe
//
// Both the function and its caller count as reached. Offsets that the
// sym-offset option adds ("+0x10/0x40") are removed.
func ParseFunctionTrace(r io.Reader) ([]string, error) {
	seen := make(map[string]bool)
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := functionLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, sym := range m[5:7] {
			if name := stripOffset(sym); name != "" {
				seen[name] = true
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading function trace: %w", err)
	}
	return sortedSet(seen), nil
}

// kernelBase is the lowest kernel address on x86-64 (the upper half of
// the 48-bit address space, also right for 57-bit paging).
const kernelBase = 0xffff800000000000

// PerfProfile is the kernel functions found in perf samples.
type PerfProfile struct {
	// Functions are the distinct kernel functions on any sampled stack.
	Functions []string
	// AfterFilter are those sampled after the first seccomp filter
	// install; nil when the samples contain no install.
	AfterFilter []string
}

// perfSampleHeader matches the first line of a sample of
// `perf script -F comm,pid,tid,time,event,ip,sym,trace`:
// comm, pid/tid, time, event name and the tracepoint fields, if any.
var perfSampleHeader = regexp.MustCompile(`^\s*(.*?)\s+(\d+)/(\d+)\s+(\d+\.\d+):\s+(\S+):\s*(.*)$`)

// ParsePerfScript returns the kernel functions in the call chains of the
// cpu-clock samples in `perf script -F comm,pid,tid,time,event,ip,sym,trace`
// output, such as
//
//	ntender 1234/1234  52.123456:  cpu-clock/freq=100000/:
//		ffffffff8159470c perf_event_exec
//		ffffffff816e8429 begin_new_exec
//
// Samples of the syscalls:sys_enter_seccomp and sys_enter_prctl
// tracepoints mark the first seccomp filter install (a non-NULL program,
// see isFilterInstall), after which functions also go to AfterFilter.
// Frames at user addresses and unresolved frames are skipped, and so are
// the samples of skipComm (perf's "perf-exec", the child before its
// execve), so that counting starts, as the syscall trace does, with the
// measured program. perf script prints samples in time order.
func ParsePerfScript(r io.Reader, skipComm string) (PerfProfile, error) {
	all := make(map[string]bool)
	var after map[string]bool
	counting := false // the current sample is a cpu-clock sample to count
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		// Call chain frames start with a tab; sample headers do not,
		// though perf pads a short comm with spaces.
		if line[0] != '\t' {
			m := perfSampleHeader.FindStringSubmatch(line)
			if m == nil {
				return PerfProfile{}, fmt.Errorf("parsing perf script sample header %q: unexpected format", line)
			}
			comm, event, fields := m[1], m[5], m[6]
			counting = strings.HasPrefix(event, "cpu-clock") && comm != skipComm
			if after == nil && comm != skipComm && isPerfFilterInstall(event, fields) {
				after = make(map[string]bool)
			}
			continue
		}
		if !counting {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return PerfProfile{}, fmt.Errorf("parsing perf script frame %q: %w", line, err)
		}
		if addr < kernelBase {
			continue
		}
		name := stripOffset(fields[1])
		if name == "" || name == "[unknown]" {
			continue
		}
		all[name] = true
		if after != nil {
			after[name] = true
		}
	}
	if err := s.Err(); err != nil {
		return PerfProfile{}, fmt.Errorf("reading perf script output: %w", err)
	}
	p := PerfProfile{Functions: sortedSet(all)}
	if after != nil {
		p.AfterFilter = sortedSet(after)
	}
	return p, nil
}

// isPerfFilterInstall reports whether a tracepoint sample, such as
// "syscalls:sys_enter_seccomp" with "op: 0x00000001, flags: 0x00000000,
// uargs: 0x7ffd5000", installs a seccomp filter.
func isPerfFilterInstall(event, fields string) bool {
	values := make(map[string]uint64)
	for _, field := range strings.Split(fields, ",") {
		key, value, ok := strings.Cut(field, ":")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(value), "0x"), 16, 64)
		if err == nil {
			values[strings.TrimSpace(key)] = v
		}
	}
	switch event {
	case "syscalls:sys_enter_seccomp":
		return isFilterInstall(SyscallEvent{NR: nrSeccomp, Args: []uint64{values["op"], values["flags"], values["uargs"]}})
	case "syscalls:sys_enter_prctl":
		return isFilterInstall(SyscallEvent{NR: nrPrctl, Args: []uint64{values["option"], values["arg2"], values["arg3"]}})
	}
	return false
}

// stripOffset removes a "+0x12/0x40" or "+0x12" suffix from a symbol.
func stripOffset(sym string) string {
	if i := strings.Index(sym, "+0x"); i >= 0 {
		return sym[:i]
	}
	return sym
}

func sortedSet(set map[string]bool) []string {
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
