// Package tender picks the backend that runs a launch plan and runs it.
//
// It is the one package that imports both backends, so neither backend
// imports the other: the CLI calls Choose and Run, and runnc calls Choose
// to pick the mode it passes to ntender.
package tender

import (
	"errors"
	"fmt"
	"os"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/plan"
)

// kvmAPIVersion is the only KVM API version Linux has shipped since 2.6.22
// and the one solo5-hvt requires.
const kvmAPIVersion = 12

// ProbeKVM checks that /dev/kvm opens read-write and offers what the hvt
// backend needs: API version 12, user memory regions and the TSC frequency
// query. It returns nil when KVM is usable, otherwise an error that
// states the reason.
func ProbeKVM() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/kvm: %w", err)
	}
	defer f.Close()

	fd := f.Fd()
	v, err := kvm.GetAPIVersion(fd)
	if err != nil {
		return fmt.Errorf("reading the KVM API version: %w", err)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("KVM API version is %d, ntender requires %d", v, kvmAPIVersion)
	}
	for _, c := range []kvm.Capability{kvm.CapUserMemory, kvm.CapGetTSCkHz} {
		ok, err := kvm.CheckExtension(fd, c)
		if err != nil {
			return fmt.Errorf("checking KVM capability %v: %w", c, err)
		}
		if ok == 0 {
			return fmt.Errorf("KVM lacks capability %v", c)
		}
	}
	return nil
}

// ErrNoBackend is returned when no backend on this host can run the
// unikernel.
var ErrNoBackend = errors.New("no backend can run this unikernel")

// Choice is the backend Choose picked and why.
type Choice struct {
	Mode   plan.Mode
	Reason string
}

// Choose picks the backend for a unikernel of the given target. An hvt
// unikernel runs only under hvt, so it needs KVM. An spt unikernel runs
// under either backend: --mode=auto takes hvt when KVM is usable, because
// a virtual machine reaches less of the host kernel than a process, and
// spt otherwise. probe reports whether KVM is usable (ProbeKVM in
// production; tests pass their own).
func Choose(requested plan.Mode, target abi.Target, probe func() error) (Choice, error) {
	switch target {
	case abi.TargetHVT:
		if requested == plan.ModeSPT {
			return Choice{}, fmt.Errorf("%w: an hvt unikernel cannot run under --mode=spt; build it for spt or use --mode=hvt", ErrNoBackend)
		}
		if err := probe(); err != nil {
			return Choice{}, fmt.Errorf("%w: an hvt unikernel needs KVM, which is not usable here (%v)", ErrNoBackend, err)
		}
		return Choice{plan.ModeHVT, "hvt unikernel and KVM is usable"}, nil
	case abi.TargetSPT:
		switch requested {
		case plan.ModeHVT:
			if err := probe(); err != nil {
				return Choice{}, fmt.Errorf("%w: --mode=hvt needs KVM, which is not usable here (%v); use --mode=spt", ErrNoBackend, err)
			}
			return Choice{plan.ModeHVT, "requested with --mode=hvt; spt unikernel in a VM"}, nil
		case plan.ModeSPT:
			return Choice{plan.ModeSPT, "requested with --mode=spt"}, nil
		}
		if err := probe(); err != nil {
			return Choice{plan.ModeSPT, fmt.Sprintf("spt unikernel and KVM is not usable (%v)", err)}, nil
		}
		return Choice{plan.ModeHVT, "spt unikernel in a VM because KVM is usable"}, nil
	}
	return Choice{}, fmt.Errorf("%w: ABI target %d is neither hvt nor spt", ErrNoBackend, target)
}
