package seccompmode

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

// archSetFS is ARCH_SET_FS from asm/prctl.h (x86_64), which
// golang.org/x/sys/unix does not define.
const archSetFS = 0x1002

// CompareOp is the comparison of one system call argument with a value.
// Both sides are compared as unsigned 64-bit integers.
type CompareOp int

// Comparisons the policy uses.
const (
	CompareEqual CompareOp = iota
	CompareLessOrEqual
)

func (op CompareOp) String() string {
	if op == CompareLessOrEqual {
		return "<="
	}
	return "=="
}

// ArgCondition restricts one argument of a system call.
type ArgCondition struct {
	// Arg is the argument index, 0 to 5.
	Arg uint
	// Name is the argument's name in the system call's man page.
	Name  string
	Op    CompareOp
	Value uint64
	// ValueName is the name of the constant Value stands for, if any.
	ValueName string
}

func (c ArgCondition) String() string {
	if c.ValueName != "" {
		return fmt.Sprintf("%s %s %s (%d)", c.Name, c.Op, c.ValueName, c.Value)
	}
	return fmt.Sprintf("%s %s %d", c.Name, c.Op, c.Value)
}

// Rule allows one system call when all of its conditions hold. Several
// rules for the same system call allow it when any of them matches.
type Rule struct {
	Syscall string // name in the x86_64 system call table
	Number  int    // x86_64 system call number
	Conds   []ArgCondition
	// Reason is the Solo5 call that needs the system call.
	Reason string
}

// Policy is the seccomp policy of an spt guest: the system calls it may
// make, with their arguments pinned to the guest's own fds and to the
// constants the Solo5 spt bindings pass. Anything else, and any system
// call of another architecture or ABI (x32), kills the process.
type Policy struct {
	Rules []Rule
}

// BlockResource is a block device, with the fd the guest process uses.
type BlockResource struct {
	Name       string
	Fd         int
	SectorSize uint64
	Capacity   uint64 // bytes; at least SectorSize
}

// NetResource is a tap device, with the fd the guest process uses.
type NetResource struct {
	Name  string
	Iface string
	Fd    int
}

// Resources are the fds and sizes that the policy pins arguments to.
type Resources struct {
	EpollFd int
	TimerFd int
	Blocks  []BlockResource
	Nets    []NetResource
}

// NewPolicy returns the policy of upstream solo5-spt (releases v0.6.0 to
// v0.12.1) for the guest's resources, with the rules in the order the
// upstream modules add them: core, then net, then block.
func NewPolicy(r Resources) (*Policy, error) {
	fds := map[int]string{}
	claim := func(fd int, what string) error {
		if fd <= 2 {
			return fmt.Errorf("%s has fd %d, want an fd above 2", what, fd)
		}
		if other, ok := fds[fd]; ok {
			return fmt.Errorf("%s and %s share fd %d", other, what, fd)
		}
		fds[fd] = what
		return nil
	}
	if err := claim(r.EpollFd, "the yield epoll set"); err != nil {
		return nil, err
	}
	if err := claim(r.TimerFd, "the yield timerfd"); err != nil {
		return nil, err
	}

	p := &Policy{Rules: coreRules(r.EpollFd, r.TimerFd)}
	for _, n := range r.Nets {
		if err := claim(n.Fd, "network device "+n.Name); err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, netRules(n)...)
	}
	for _, b := range r.Blocks {
		if err := claim(b.Fd, "block device "+b.Name); err != nil {
			return nil, err
		}
		// A zero sector size or a capacity below one sector would turn
		// the offset bound capacity - sector size into a huge value.
		if b.SectorSize == 0 || b.Capacity < b.SectorSize {
			return nil, fmt.Errorf("block device %s: capacity %d is below one sector of %d bytes",
				b.Name, b.Capacity, b.SectorSize)
		}
		p.Rules = append(p.Rules, blockRules(b)...)
	}
	return p, nil
}

func coreRules(epollFd, timerFd int) []Rule {
	return []Rule{
		{
			Syscall: "write", Number: unix.SYS_WRITE,
			Conds:  []ArgCondition{{Arg: 0, Name: "fd", Value: 1, ValueName: "stdout"}},
			Reason: "solo5_console_write",
		},
		{
			Syscall: "exit_group", Number: unix.SYS_EXIT_GROUP,
			Reason: "solo5_exit, solo5_abort",
		},
		{
			Syscall: "epoll_pwait", Number: unix.SYS_EPOLL_PWAIT,
			Conds:  []ArgCondition{{Arg: 0, Name: "epfd", Value: uint64(epollFd)}},
			Reason: "solo5_yield: wait for the deadline or a network device",
		},
		{
			Syscall: "timerfd_settime", Number: unix.SYS_TIMERFD_SETTIME,
			Conds:  []ArgCondition{{Arg: 0, Name: "fd", Value: uint64(timerFd)}},
			Reason: "solo5_yield: arm the deadline timer",
		},
		{
			Syscall: "clock_gettime", Number: unix.SYS_CLOCK_GETTIME,
			Conds: []ArgCondition{{Arg: 0, Name: "clockid",
				Value: unix.CLOCK_MONOTONIC, ValueName: "CLOCK_MONOTONIC"}},
			Reason: "solo5_clock_monotonic",
		},
		{
			Syscall: "clock_gettime", Number: unix.SYS_CLOCK_GETTIME,
			Conds: []ArgCondition{{Arg: 0, Name: "clockid",
				Value: unix.CLOCK_REALTIME, ValueName: "CLOCK_REALTIME"}},
			Reason: "solo5_clock_wall",
		},
		{
			Syscall: "arch_prctl", Number: unix.SYS_ARCH_PRCTL,
			Conds: []ArgCondition{{Arg: 0, Name: "code",
				Value: archSetFS, ValueName: "ARCH_SET_FS"}},
			Reason: "solo5_set_tls_base",
		},
	}
}

func netRules(n NetResource) []Rule {
	fd := []ArgCondition{{Arg: 0, Name: "fd", Value: uint64(n.Fd)}}
	return []Rule{
		{
			Syscall: "read", Number: unix.SYS_READ, Conds: fd,
			Reason: fmt.Sprintf("solo5_net_read on %s (tap %s)", n.Name, n.Iface),
		},
		{
			Syscall: "write", Number: unix.SYS_WRITE, Conds: fd,
			Reason: fmt.Sprintf("solo5_net_write on %s (tap %s)", n.Name, n.Iface),
		},
	}
}

// blockRules allow exactly one sector per call that ends within the
// capacity, so a guest cannot grow a backing file: count == sector size and
// offset <= capacity - sector size. The offset need not be sector-aligned,
// as upstream; the bindings check alignment.
func blockRules(b BlockResource) []Rule {
	conds := []ArgCondition{
		{Arg: 0, Name: "fd", Value: uint64(b.Fd)},
		{Arg: 2, Name: "count", Value: b.SectorSize},
		{Arg: 3, Name: "offset", Op: CompareLessOrEqual, Value: b.Capacity - b.SectorSize},
	}
	return []Rule{
		{
			Syscall: "pread64", Number: unix.SYS_PREAD64, Conds: conds,
			Reason: "solo5_block_read on " + b.Name,
		},
		{
			Syscall: "pwrite64", Number: unix.SYS_PWRITE64, Conds: conds,
			Reason: "solo5_block_write on " + b.Name,
		},
	}
}

// Allows reports whether the policy lets an x86_64 guest make system call
// nr with args, evaluating the rules directly rather than through BPF. It
// agrees with the compiled filter (a test checks both on the same calls),
// so code that serves guest system calls without seccomp can apply the
// same allow-list.
func (p *Policy) Allows(nr int, args [6]uint64) bool {
	for _, r := range p.Rules {
		if r.Number == nr && r.matches(args) {
			return true
		}
	}
	return false
}

func (r Rule) matches(args [6]uint64) bool {
	for _, c := range r.Conds {
		if c.Arg >= uint(len(args)) {
			return false
		}
		v := args[c.Arg]
		switch c.Op {
		case CompareEqual:
			if v != c.Value {
				return false
			}
		case CompareLessOrEqual:
			if v > c.Value {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Render writes the policy as a table, one rule per line, for
// `ntender run --print-filter`.
func (p *Policy) Render(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "# spt guest seccomp policy: any other system call, or a call of another")
	fmt.Fprintln(tw, "# architecture, kills the process with SIGSYS (exit status 159).")
	fmt.Fprintln(tw, "SYSCALL\tNR\tARGUMENTS\tFOR")
	for _, r := range p.Rules {
		args := "any"
		if len(r.Conds) > 0 {
			parts := make([]string, len(r.Conds))
			for i, c := range r.Conds {
				parts[i] = c.String()
			}
			args = strings.Join(parts, " && ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Syscall, r.Number, args, r.Reason)
	}
	return tw.Flush()
}
