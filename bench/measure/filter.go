package measure

import (
	"bufio"
	"regexp"
	"slices"
	"strings"
)

// Filter is the allow-list of a tender's seccomp filter.
type Filter struct {
	// Allowed are the syscalls the filter lets run, possibly only with
	// some arguments.
	Allowed []string `json:"allowed"`
	// Failed are the syscalls for which the filter returns an error
	// instead of killing the process, such as clone3 with ENOSYS.
	Failed []string `json:"failed,omitempty"`
	// Source is the origin of the list.
	Source string `json:"source"`
}

var (
	// A rule line of the hvt process filter: "ioctl    allow if ...".
	hvtRuleLine = regexp.MustCompile(`^([a-z0-9_]+)\s+(allow|fail with)\b`)
	// A row of the spt policy table: "write    1    fd == stdout (1) ...".
	sptRuleLine = regexp.MustCompile(`^([a-z0-9_]+)\s+\d+\s`)
)

// hvtFilterHeader starts the process filter in the output of
// `ntender run --print-filter` under hvt. The spt policy of the syscall
// shim may follow it.
const hvtFilterHeader = "seccomp filter (default action"

// ParseFilter reads the output of `ntender run --print-filter`. Under hvt
// it returns the process filter, which comes first. Under spt it returns
// the rows of the guest policy table.
func ParseFilter(output string) Filter {
	f := Filter{Source: "ntender run --print-filter"}
	if i := strings.Index(output, hvtFilterHeader); i >= 0 {
		s := bufio.NewScanner(strings.NewReader(output[i:]))
		s.Scan() // the header
		for s.Scan() {
			line := s.Text()
			if strings.TrimSpace(line) == "" {
				break
			}
			m := hvtRuleLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if m[2] == "allow" {
				f.Allowed = append(f.Allowed, m[1])
			} else {
				f.Failed = append(f.Failed, m[1])
			}
		}
	} else {
		s := bufio.NewScanner(strings.NewReader(output))
		for s.Scan() {
			line := s.Text()
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "SYSCALL") {
				continue
			}
			if m := sptRuleLine.FindStringSubmatch(line); m != nil {
				f.Allowed = append(f.Allowed, m[1])
			}
		}
	}
	f.Allowed = distinct(f.Allowed)
	f.Failed = distinct(f.Failed)
	return f
}

func distinct(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}

// upstreamHVTAllowed is the allow-list of solo5-hvt on Linux in Solo5
// v0.12.1 (tenders/hvt/hvt_seccomp_linux.c), which checks no arguments.
var upstreamHVTAllowed = []string{
	"ioctl", "read", "write", "pread64", "pwrite64", "epoll_pwait",
	"timerfd_settime", "clock_gettime", "exit_group", "rt_sigreturn",
	"futex", "mmap", "mprotect", "munmap", "madvise", "rt_sigprocmask",
	"exit", "close",
}

// upstreamSPTFilter returns the allow-list of solo5-spt in Solo5 v0.12.1
// (tenders/spt/spt_core.c and the block and net modules) for a run with
// or without block and net devices.
func upstreamSPTFilter(block, net bool) Filter {
	allowed := []string{"write", "exit_group", "epoll_pwait", "timerfd_settime", "clock_gettime", "arch_prctl"}
	if block {
		allowed = append(allowed, "pread64", "pwrite64")
	}
	if net {
		allowed = append(allowed, "read")
	}
	return Filter{Allowed: distinct(allowed), Source: "Solo5 v0.12.1 source, tenders/spt"}
}

func upstreamHVTFilter() Filter {
	return Filter{Allowed: distinct(slices.Clone(upstreamHVTAllowed)), Source: "Solo5 v0.12.1 source, tenders/hvt/hvt_seccomp_linux.c"}
}
