package seccompmode

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
	"github.com/ntender/ntender/plan"
	"github.com/ntender/ntender/seccompmode/launcher"
)

// ExecHeapWarning is solo5-spt's warning for --x-exec-heap, word for
// word, so that scripts grepping for it keep working.
const ExecHeapWarning = "The use of --x-exec-heap is dangerous and not " +
	"recommended as it makes the heap and stack executable."

// DefaultMemSize is the guest memory size without --mem, as solo5-spt.
const DefaultMemSize = 512 << 20

// ErrNotSPT is returned for a unikernel built for another target.
var ErrNotSPT = errors.New("not an spt unikernel")

// Config holds the settings of Run that do not come from the plan.
type Config struct {
	// Stderr receives the --x-exec-heap warning. Nil means os.Stderr.
	Stderr io.Writer
	// Executable is the ntender binary to re-execute, which must link the
	// launcher package. Empty means /proc/self/exe.
	Executable string
}

// Run starts the spt guest of p in this process. On success it does not
// return: the process is replaced by a fresh image of the ntender
// executable, which becomes the guest, so the guest's exit status or fatal
// signal is the status of this process. On failure it returns status 1 and
// an error, and leaves the process as it was.
//
// launcher.Exec holds syscall.ForkLock while the guest's fds are
// inheritable, so a child that another goroutine starts through os/exec
// does not inherit them.
func Run(p *plan.Plan, cfg Config) (status int, err error) {
	l, err := prepare(p)
	if err != nil {
		return 1, err
	}
	defer l.poller.Close()

	stderr := cfg.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if l.image.ExecHeap {
		// The wording of solo5-spt's warning, so that scripts grepping
		// for it keep working.
		fmt.Fprintln(stderr, "ntender: WARNING: "+ExecHeapWarning)
	}

	exe := cfg.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	err = launcher.Exec(exe, os.Args, os.Environ(), l.image)
	return 1, fmt.Errorf("%s: starting the spt guest: %w", p.Unikernel.Path, err)
}

// PrintFilter writes the seccomp policy that Run would install for p, with
// the fds a run would give the guest.
func PrintFilter(w io.Writer, p *plan.Plan) error {
	l, err := prepare(p)
	if err != nil {
		return err
	}
	defer l.poller.Close()
	return l.policy.Render(w)
}

// launch is a prepared spt launch.
type launch struct {
	image  *launcher.Image
	policy *Policy
	poller *devices.Poller
}

// prepare validates p for spt, creates the yield epoll set and timer, and
// lays out the whole launch. The caller must close launch.poller.
func prepare(p *plan.Plan) (*launch, error) {
	u := p.Unikernel
	if u.Target != abi.TargetSPT {
		return nil, fmt.Errorf("%s: %w (ABI target %d); run it with --mode=hvt",
			u.Path, ErrNotSPT, u.Target)
	}
	memSize, err := MemSize(p.Options.MemMiB)
	if err != nil {
		return nil, err
	}
	if err := u.CheckFits(memSize); err != nil {
		return nil, err
	}
	if err := checkBelowExecutable(memSize); err != nil {
		return nil, err
	}
	for _, n := range p.Nets {
		// The guest relies on EAGAIN from read(2) when no frame waits.
		if err := unix.SetNonblock(n.Fd, true); err != nil {
			return nil, fmt.Errorf("setting O_NONBLOCK on tap %s of device %s: %w", n.Iface, n.Name, err)
		}
	}

	poller, err := devices.NewPoller(p.Nets)
	if err != nil {
		return nil, err
	}
	l := &launch{poller: poller}
	if err := l.layout(p, memSize); err != nil {
		poller.Close()
		return nil, err
	}
	return l, nil
}

// layout builds the policy and the launch image. execve keeps fd numbers,
// so the guest process uses the fd numbers of this process.
func (l *launch) layout(p *plan.Plan, memSize uint64) error {
	u := p.Unikernel
	res := Resources{EpollFd: l.poller.EpollFd(), TimerFd: l.poller.TimerFd()}
	keep := []int{res.EpollFd, res.TimerFd}
	for _, b := range p.Blocks {
		fd := int(b.File.Fd())
		res.Blocks = append(res.Blocks, BlockResource{
			Name: b.Name, Fd: fd, SectorSize: b.SectorSize, Capacity: b.Capacity,
		})
		keep = append(keep, fd)
	}
	for _, n := range p.Nets {
		res.Nets = append(res.Nets, NetResource{Name: n.Name, Iface: n.Iface, Fd: n.Fd})
		keep = append(keep, n.Fd)
	}

	policy, err := NewPolicy(res)
	if err != nil {
		return fmt.Errorf("%s: building the seccomp policy: %w", u.Path, err)
	}
	filter, err := policy.Filter()
	if err != nil {
		return fmt.Errorf("%s: %w", u.Path, err)
	}
	boot, err := bootArea(p, memSize, res)
	if err != nil {
		return err
	}

	segments := make([]launcher.Segment, len(u.Segments))
	for i, s := range u.Segments {
		segments[i] = launcher.Segment{
			Vaddr: s.Vaddr, Start: s.Start, End: s.End, Prot: s.Prot, Data: s.Data,
		}
	}
	l.policy = policy
	l.image = &launcher.Image{
		MemSize:  memSize,
		Entry:    u.Entry,
		ExecHeap: p.Options.XExecHeap,
		Boot:     boot,
		Segments: segments,
		KeepFds:  keep,
		Filter:   filter,
		// The guest of solo5-spt inherits the dispositions of the
		// tender's parent; the Go runtime has changed ours since.
		IgnoredSignals: launcher.InitiallyIgnoredSignals(),
	}
	return nil
}

// bootArea returns the bytes the guest finds at abi.SPTBootInfoAddr, laid
// out as solo5-spt does: struct spt_boot_info, the manifest right after
// it, then the NUL-terminated command line. The manifest records each
// device's fd as the guest process will have it.
func bootArea(p *plan.Plan, memSize uint64, res Resources) ([]byte, error) {
	u := p.Unikernel
	manifest := u.MarshalManifest(devices.Attachments(p.Blocks, p.Nets, nil))
	mftAddr := uint64(abi.SPTBootInfoAddr + abi.SPTBootInfoSize)
	cmdlineAddr := mftAddr + uint64(len(manifest))
	if len(p.Cmdline) >= abi.CmdlineSize {
		return nil, fmt.Errorf("%s: guest command line of %d bytes is too long (max=%d characters)",
			u.Path, len(p.Cmdline), abi.CmdlineSize-1)
	}

	info, err := abi.SPTBootInfo{
		MemSize:   memSize,
		KernelEnd: u.KernelEnd,
		Cmdline:   cmdlineAddr,
		Mft:       mftAddr,
		Epollfd:   int32(res.EpollFd),
		Timerfd:   int32(res.TimerFd),
	}.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the spt boot info: %w", u.Path, err)
	}

	// Upstream reserves abi.CmdlineSize bytes for the command line. Only
	// the string and its NUL are copied because the rest of guest memory
	// is zero.
	if reserved := len(info) + len(manifest) + abi.CmdlineSize; reserved > launcher.MaxBootSize {
		return nil, fmt.Errorf("%s: boot info, manifest and command line need %d bytes, more than the %d below %#x",
			u.Path, reserved, launcher.MaxBootSize, abi.GuestMinBase)
	}
	boot := make([]byte, 0, len(info)+len(manifest)+len(p.Cmdline)+1)
	boot = append(boot, info...)
	boot = append(boot, manifest...)
	boot = append(boot, p.Cmdline...)
	boot = append(boot, 0)
	return boot, nil
}

// MemSize returns the guest memory size in bytes for --mem=memMiB, 0
// meaning the default of 512 MiB. The size is exact (no rounding), as
// solo5-spt.
func MemSize(memMiB uint64) (uint64, error) {
	if memMiB == 0 {
		return DefaultMemSize, nil
	}
	if memMiB > maxMemSize>>20 {
		return 0, fmt.Errorf("--mem=%d is too large: the spt guest memory must end below %#x (%d MiB)",
			memMiB, uint64(maxMemSize), uint64(maxMemSize>>20))
	}
	return memMiB << 20, nil
}

// maxMemSize is the top of the x86_64 user address space with 4-level
// paging, which no guest can reach in any case.
const maxMemSize = 0x7ffffffff000
