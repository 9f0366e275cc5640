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

// ParsePerfScript returns the distinct kernel functions in the call
// chains of `perf script -F comm,tid,ip,sym` output, such as
//
//	ntender 1234
//		ffffffff8159470c perf_event_exec
//		ffffffff816e8429 begin_new_exec
//
// Frames at user addresses and unresolved frames are skipped, and so are
// the samples of skipComm (perf's "perf-exec", the child before its
// execve), so that counting starts, as the syscall trace does, with the
// measured program.
func ParsePerfScript(r io.Reader, skipComm string) ([]string, error) {
	seen := make(map[string]bool)
	skipping := false
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			// A sample header: "comm tid".
			fields := strings.Fields(line)
			comm := strings.Join(fields[:max(len(fields)-1, 1)], " ")
			skipping = skipComm != "" && comm == skipComm
			continue
		}
		if skipping {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing perf script frame %q: %w", line, err)
		}
		if addr < kernelBase {
			continue
		}
		if name := stripOffset(fields[1]); name != "" && name != "[unknown]" {
			seen[name] = true
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading perf script output: %w", err)
	}
	return sortedSet(seen), nil
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
