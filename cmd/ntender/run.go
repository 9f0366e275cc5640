package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/plan"
	"github.com/ntender/ntender/tender"
)

// runSettings are the parts of a run decided before the Solo5 options.
type runSettings struct {
	mode plan.Mode // forced by the program name, or "" to follow --mode
	prog string    // name used in messages
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a Solo5 unikernel (the default command)",
		ArgsUsage: "[OPTIONS] [--] UNIKERNEL [ARGS...]",
		Description: `Options, as the upstream solo5-hvt and solo5-spt tenders take them:
   --mode=hvt|spt|auto           backend (default auto: hvt when KVM is usable,
                                 else spt for spt unikernels)
   --mem=MiB                     guest memory in MiB (default 512)
   --block:NAME=PATH             attach block device NAME to a file or device
   --block-sector-size:NAME=N    sector size of NAME in bytes (default 512)
   --net:NAME=TAP                attach net device NAME to tap interface TAP
   --net-mac:NAME=MAC            MAC address of NAME (default: random)
   --x-exec-heap                 spt: make heap and stack executable
   --dumpcore=DIR                hvt: on abort (status 255), write the ELF core
                                 file DIR/core.solo5-hvt.PID
 ntender's own options (before UNIKERNEL):
   --dry-run                     print the chosen backend and exit
   --print-filter                print the seccomp policy and exit
   --log-level=LEVEL             debug, info, warn (default) or error
Options after UNIKERNEL are passed to the unikernel.`,
		SkipFlagParsing: true,
		HideHelp:        true,
		Action: func(c *cli.Context) error {
			status := runTender(c.Args().Slice(), runSettings{prog: "ntender"})
			if status != 0 {
				return cli.Exit("", status)
			}
			return nil
		},
	}
}

// ownUsage describes the options of splitOwnOptions, after plan.Usage.
const ownUsage = `
ntender's own options (before KERNEL):
  --dry-run                    print the chosen backend and its reason, and exit
  --print-filter               print the seccomp policy of the run, and exit
  --log-level=LEVEL            debug, info, warn (the default) or error
`

// ownOptions are ntender's options that the Solo5 syntax does not know.
type ownOptions struct {
	dryRun      bool
	printFilter bool
	logLevel    slog.Level
}

// splitOwnOptions removes ntender's own options from the option part of
// args (before "--" or the unikernel) and returns the rest for
// plan.ParseArgs.
func splitOwnOptions(args []string) (ownOptions, []string, error) {
	own := ownOptions{logLevel: slog.LevelWarn}
	rest := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			rest = append(rest, args[i:]...)
			break
		}
		switch {
		case a == "--dry-run":
			own.dryRun = true
		case a == "--print-filter":
			own.printFilter = true
		case strings.HasPrefix(a, "--log-level="):
			if err := own.logLevel.UnmarshalText([]byte(strings.TrimPrefix(a, "--log-level="))); err != nil {
				return own, nil, &plan.UsageError{Msg: fmt.Sprintf("invalid %s: use debug, info, warn or error", a)}
			}
		default:
			rest = append(rest, a)
		}
	}
	return own, rest, nil
}

// runTender runs the Solo5 run form and returns the exit status: the
// guest's own status, or 1 when ntender rejects the input or fails.
func runTender(args []string, rs runSettings) int {
	own, args, err := splitOwnOptions(args)
	if err != nil {
		printError(err.Error())
		return 1
	}
	log := slog.New(newLineHandler(os.Stderr, "ntender", own.logLevel))

	status, err := runPlan(args, rs, own, log, os.Stdout)
	if errors.Is(err, plan.ErrVersion) {
		// The upstream tenders print these two lines; the ABI version is
		// the newest ntender runs (it also runs version 1).
		fmt.Printf("%s tender, version ntender-%s\nABI version %d\n",
			rs.prog, version, abi.ABIVersionMax)
		return 0
	}
	if errors.Is(err, plan.ErrHelp) {
		if rs.mode != "" {
			// solo5-hvt and solo5-spt print their usage to stderr and
			// exit with 1 after --help.
			fmt.Fprint(os.Stderr, plan.Usage, ownUsage)
			return 1
		}
		fmt.Fprint(os.Stdout, plan.Usage, ownUsage)
		return 0
	}
	if err != nil {
		var usage *plan.UsageError
		var exitStatus interface{ ExitStatus() int }
		printError(err.Error())
		switch {
		case errors.As(err, &usage):
			fmt.Fprintf(os.Stderr, "usage: %s [OPTIONS] [--] UNIKERNEL [ARGS...]; see ntender run --help\n", rs.prog)
		case errors.As(err, &exitStatus):
			// A signal that stopped the guest sets the status.
			return exitStatus.ExitStatus()
		}
		return 1
	}
	return status
}

func runPlan(args []string, rs runSettings, own ownOptions, log *slog.Logger, stdout io.Writer) (int, error) {
	opts, err := plan.ParseArgs(args)
	if err != nil {
		return 0, err
	}
	requested := opts.Mode
	if rs.mode != "" {
		if requested != plan.ModeAuto && requested != rs.mode {
			return 0, &plan.UsageError{Msg: fmt.Sprintf("%s runs only --mode=%s", rs.prog, rs.mode)}
		}
		requested = rs.mode
	}

	p, err := plan.Build(opts)
	if err != nil {
		return 0, err
	}
	defer p.Close()

	if rs.mode != "" && p.Unikernel.Target.String() != string(rs.mode) {
		// solo5-hvt and solo5-spt run only their own target, as upstream,
		// even though the hvt backend can also run spt unikernels.
		return 0, fmt.Errorf("%s: Executable is not for the %s target", p.Unikernel.Path, rs.prog)
	}
	choice, err := tender.Choose(requested, p.Unikernel.Target, tender.ProbeKVM)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.Unikernel.Path, err)
	}
	log.Info("backend chosen", "mode", choice.Mode, "reason", choice.Reason, "unikernel", p.Unikernel.Path)

	switch {
	case own.dryRun:
		fmt.Fprintf(stdout, "mode: %s (%s)\n", choice.Mode, choice.Reason)
		return 0, nil
	case own.printFilter:
		return 0, tender.PrintFilter(stdout, choice.Mode, p)
	}
	return tender.Run(choice.Mode, p, tender.Config{Stdout: stdout, Log: log})
}
