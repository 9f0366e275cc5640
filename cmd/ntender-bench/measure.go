package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ntender/ntender/bench"
	"github.com/ntender/ntender/bench/measure"
)

const measureHelp = `Runs UNIKERNEL once per mode and counts the distinct system calls the
tender's processes make (raw_syscalls tracepoint), the system calls its
seccomp filter allows, and the distinct host kernel functions it reaches.
The binary of the other target is taken from beside UNIKERNEL (NAME.hvt,
NAME.spt). Needs root. Tracing settings are restored on exit.

Kernel functions come from the ftrace function tracer when the kernel
allows it, otherwise from perf sampling with kernel call stacks, which
gives a lower bound and is labelled "sampled lower bound" in every output.

Options (before UNIKERNEL; any other option is passed to every tender):
   --modes=LIST          comma-separated modes (default %s)
   --solo5-hvt=PATH      upstream solo5-hvt (default: solo5-hvt on PATH)
   --solo5-spt=PATH      upstream solo5-spt (default: solo5-spt on PATH)
   --runc=BUNDLE         also measure runc running the OCI bundle BUNDLE
   --perf-runs=N         sampled runs merged per mode (default %d)
   --timeout=DURATION    limit for one run (default %v)
   --json                print the report as JSON instead of a table
   --json-file=FILE      also write the report as JSON to FILE
   --plot=FILE           also write a PNG chart to FILE`

// measureSettings are the parsed arguments of ntender measure.
type measureSettings struct {
	cfg      measure.Config
	json     bool
	jsonPath string
	plotPath string
}

const (
	defaultPerfRuns       = 5
	defaultMeasureTimeout = 60 * time.Second
)

// measureCommand returns `ntender measure`, which reproduces the nabla
// containers isolation measurement for one unikernel in every mode.
func measureCommand() *cli.Command {
	return &cli.Command{
		Name:      "measure",
		Usage:     "count the syscalls and host kernel functions each mode reaches",
		ArgsUsage: "[OPTIONS] [RUN OPTIONS] [--] UNIKERNEL [ARGS...]",
		Description: fmt.Sprintf(measureHelp, strings.Join(bench.AllModes, ","),
			defaultPerfRuns, defaultMeasureTimeout),
		SkipFlagParsing: true,
		HideHelp:        true,
		Action:          runMeasure,
	}
}

func runMeasure(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		// SkipFlagParsing leaves --help to this action. ShowCommandHelp
		// looks "measure" up among the subcommands of this command's
		// context and finds none, so the help is printed directly.
		cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
		return nil
	}
	self, err := tenderExecutable()
	if err != nil {
		return cli.Exit(fmt.Sprintf("measure: %v", err), 1)
	}
	s, err := parseMeasureArgs(args, self)
	if err != nil {
		return cli.Exit("measure: "+err.Error()+"; see ntender measure --help", 1)
	}
	if isTerminal(os.Stderr) {
		s.cfg.Progress = func(label string) {
			fmt.Fprintf(os.Stderr, "\r%s\033[K", label)
		}
	}

	// Restoring the tracing settings needs Measure to return, so a
	// signal cancels the run instead of ending the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	report, err := measure.Measure(ctx, s.cfg)
	if s.cfg.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if report == nil {
		return cli.Exit(measureError(err), 1)
	}

	out := c.App.Writer
	var werr error
	if s.json {
		werr = report.WriteJSON(out)
	} else {
		werr = report.WriteTable(out)
	}
	if werr == nil && s.jsonPath != "" {
		werr = writeFile(s.jsonPath, report.WriteJSON)
	}
	if werr == nil && s.plotPath != "" {
		werr = report.Plot(s.plotPath)
	}
	if err != nil {
		return cli.Exit(measureError(err), 1)
	}
	if werr != nil {
		return cli.Exit("measure: "+werr.Error(), 1)
	}
	for _, m := range report.Modes {
		if m.Unavailable == "" {
			return nil
		}
	}
	return cli.Exit("measure: no mode could run; see the reasons above", 1)
}

// measureError returns the message for an error of measure.Measure. The
// message of an interrupted run states that the tracing settings are
// restored, unless restoring them failed.
func measureError(err error) string {
	if errors.Is(err, context.Canceled) && !errors.Is(err, measure.ErrRestore) {
		return "measure: interrupted; the tracing settings are restored"
	}
	return "measure: " + err.Error()
}

// parseMeasureArgs separates measure's own options from the tender
// options, which come before UNIKERNEL as in the run form.
func parseMeasureArgs(args []string, self string) (measureSettings, error) {
	s := measureSettings{cfg: measure.Config{
		Tenders:  bench.Tenders{Ntender: self},
		Modes:    bench.AllModes,
		PerfRuns: defaultPerfRuns,
		Timeout:  defaultMeasureTimeout,
	}}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "--json":
			s.json = true
			continue
		case "--modes", "--solo5-hvt", "--solo5-spt", "--runc", "--perf-runs", "--timeout", "--plot", "--json-file":
		default:
			s.cfg.RunFlags = append(s.cfg.RunFlags, a)
			continue
		}
		if !hasValue || value == "" {
			return s, fmt.Errorf("missing value for %s: use %s=VALUE", name, name)
		}
		switch name {
		case "--modes":
			s.cfg.Modes = strings.Split(value, ",")
		case "--solo5-hvt":
			s.cfg.Tenders.Solo5HVT = value
		case "--solo5-spt":
			s.cfg.Tenders.Solo5SPT = value
		case "--runc":
			s.cfg.RuncBundle = value
		case "--plot":
			s.plotPath = value
		case "--json-file":
			s.jsonPath = value
		case "--perf-runs":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				return s, fmt.Errorf("invalid --perf-runs %q: expected a positive integer", value)
			}
			s.cfg.PerfRuns = n
		case "--timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return s, fmt.Errorf("invalid --timeout %q: expected a positive duration such as 30s", value)
			}
			s.cfg.Timeout = d
		}
	}
	if i >= len(args) {
		return s, fmt.Errorf("missing UNIKERNEL")
	}
	s.cfg.Unikernel = args[i]
	s.cfg.Args = args[i+1:]
	return s, nil
}
