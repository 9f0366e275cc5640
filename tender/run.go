package tender

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/ntender/ntender/plan"
	"github.com/ntender/ntender/seccompmode"
	"github.com/ntender/ntender/vmm"
)

// Config holds the caller's settings for one run.
type Config struct {
	Stdout io.Writer    // guest console output
	Log    *slog.Logger // tender messages that are not errors
}

// Run runs p on the backend mode and returns the guest's exit status.
// Under spt a successful start does not return: the process becomes the
// guest.
func Run(mode plan.Mode, p *plan.Plan, cfg Config) (int, error) {
	if err := checkOptions(mode, p); err != nil {
		return 1, err
	}
	switch mode {
	case plan.ModeHVT:
		return vmm.Run(p, vmm.Config{
			Stdout: cfg.Stdout,
			Log:    func(msg string) { cfg.Log.Warn(msg) },
		})
	case plan.ModeSPT:
		return seccompmode.Run(p, seccompmode.Config{})
	}
	return 1, fmt.Errorf("no backend for mode %q", mode)
}

// PrintFilter writes the seccomp policy that a run of p on mode would
// install, with the fd numbers it would use.
func PrintFilter(w io.Writer, mode plan.Mode, p *plan.Plan) error {
	if err := checkOptions(mode, p); err != nil {
		return err
	}
	switch mode {
	case plan.ModeHVT:
		_, err := vmm.Run(p, vmm.Config{PrintFilter: w, NoSignals: true})
		return err
	case plan.ModeSPT:
		return seccompmode.PrintFilter(w, p)
	}
	return fmt.Errorf("no backend for mode %q", mode)
}

// checkOptions rejects options that the backend mode does not have. The
// hvt backend checks its own against the unikernel's target.
func checkOptions(mode plan.Mode, p *plan.Plan) error {
	if mode == plan.ModeSPT && p.Options != nil && p.Options.DumpCore != "" {
		return &plan.UsageError{Msg: "--dumpcore applies only to hvt unikernels"}
	}
	return nil
}
