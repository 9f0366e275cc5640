// Command ntender runs Solo5 unikernels under KVM (hvt) or seccomp (spt).
//
// The run form is a superset of the upstream solo5-hvt and solo5-spt
// command lines:
//
//	ntender [--mode=hvt|spt|auto] [--mem=MiB] [--block:NAME=PATH]
//	        [--block-sector-size:NAME=N] [--net:NAME=TAP]
//	        [--net-mac:NAME=MAC] [--] UNIKERNEL [ARGS...]
//
// `ntender run ...` is the same, spelled out. Invoked through a link named
// solo5-hvt or solo5-spt, ntender behaves as --mode=hvt or --mode=spt so
// that scripts written for the upstream tenders work unchanged.
package main

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/ntender/ntender/plan"
)

// version is set at link time by release builds.
var version = "0.1.0-dev"

func main() {
	os.Exit(mainStatus(os.Args))
}

// mainStatus runs ntender with argv and returns the process exit status.
func mainStatus(argv []string) int {
	switch filepath.Base(argv[0]) {
	case "solo5-hvt":
		return runTender(argv[1:], runSettings{mode: plan.ModeHVT, prog: "solo5-hvt"})
	case "solo5-spt":
		return runTender(argv[1:], runSettings{mode: plan.ModeSPT, prog: "solo5-spt"})
	}

	app := newApp()
	// Anything that is not a subcommand or a top-level help/version flag is
	// the run form, so `ntender hello.hvt` works as `solo5-hvt hello.hvt`.
	if len(argv) > 1 && !isAppArgument(app, argv[1]) {
		argv = slices.Concat([]string{argv[0], "run"}, argv[1:])
	}
	if err := app.Run(argv); err != nil {
		if ec, ok := err.(cli.ExitCoder); ok {
			if msg := ec.Error(); msg != "" {
				printError(msg)
			}
			return ec.ExitCode()
		}
		printError(err.Error())
		return 1
	}
	return 0
}

func isAppArgument(app *cli.App, arg string) bool {
	switch arg {
	case "-h", "--help", "-v", "--version", "help", "h":
		return true
	}
	return app.Command(arg) != nil
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "ntender",
		Usage:   "run Solo5 unikernels under KVM (hvt) or seccomp (spt)",
		Version: version,
		// Errors are printed by mainStatus with the program prefix.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			runCommand(),
			infoCommand(),
			delegatedCommand("bench", "benchmark hvt, spt and spt-in-hvt against upstream solo5-hvt, solo5-spt and runc"),
			delegatedCommand("measure", "count the syscalls and host kernel functions each mode reaches"),
		},
	}
}

func printError(msg string) {
	os.Stderr.WriteString("ntender: " + msg + "\n")
}
