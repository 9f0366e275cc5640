package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/bench"
)

// benchCommand returns `ntender bench`, which times the benchmark guests
// under each mode and beside the upstream Solo5 tenders.
func benchCommand() *cli.Command {
	def := bench.DefaultConfig()
	return &cli.Command{
		Name:  "bench",
		Usage: "benchmark hvt, spt and spt-in-hvt against upstream solo5-hvt, solo5-spt and runc",
		Description: `Runs the benchmark guests (tests/guests: hello, bench, bench_blk,
bench_net) in every mode and prints the min, median and max of each figure,
with the ratio of ntender's median to the upstream tender's median from the
same run. The ping figures need root: the bench creates a network namespace
with a tap for them and deletes it at the end.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "modes", Value: strings.Join(def.Modes, ","), Usage: "comma-separated modes to run, from " + strings.Join(bench.AllModes, ", ") + " and " + bench.ModeRunc},
			&cli.StringFlag{Name: "solo5-hvt", Usage: "upstream solo5-hvt `PATH` (default: solo5-hvt on PATH)"},
			&cli.StringFlag{Name: "solo5-spt", Usage: "upstream solo5-spt `PATH` (default: solo5-spt on PATH)"},
			&cli.StringFlag{Name: "runc", Usage: "also time runc running the OCI bundle `BUNDLE` (boot_ms only; its program should be a static hello)"},
			&cli.StringFlag{Name: "guests", Usage: "`DIR` of the built benchmark guests (default: tests/guests/build beside bin/ntender, else in the current directory)"},
			&cli.IntFlag{Name: "runs", Value: def.Runs, Usage: "repetitions of each workload in each mode"},
			&cli.IntFlag{Name: "calls", Value: def.Calls, Usage: "clock reads and console writes per run"},
			&cli.IntFlag{Name: "block-requests", Value: def.BlockRequests, Usage: "block requests per run and request size"},
			&cli.IntFlag{Name: "pings", Value: def.Pings, Usage: "ICMP echo requests per run"},
			&cli.DurationFlag{Name: "timeout", Value: def.Timeout, Usage: "limit for one tender run"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON instead of a table"},
			&cli.StringFlag{Name: "json-file", Usage: "also write the report as JSON to `FILE`"},
			&cli.StringFlag{Name: "plot", Usage: "also write a PNG chart of the medians to `FILE`"},
		},
		Action: runBench,
	}
}

func runBench(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit(fmt.Sprintf("bench: unexpected argument %q; bench takes options only, see ntender bench --help", c.Args().First()), 1)
	}
	self, err := tenderExecutable()
	if err != nil {
		return cli.Exit(fmt.Sprintf("bench: %v", err), 1)
	}
	cfg := bench.DefaultConfig()
	cfg.Tenders = bench.Tenders{Ntender: self, Solo5HVT: c.String("solo5-hvt"), Solo5SPT: c.String("solo5-spt")}
	cfg.Modes = strings.Split(c.String("modes"), ",")
	if bundle := c.String("runc"); bundle != "" {
		cfg.Tenders.RuncBundle = bundle
		if !slices.Contains(cfg.Modes, bench.ModeRunc) {
			cfg.Modes = append(cfg.Modes, bench.ModeRunc)
		}
	}
	cfg.Runs = c.Int("runs")
	cfg.Calls = c.Int("calls")
	cfg.BlockRequests = c.Int("block-requests")
	cfg.Pings = c.Int("pings")
	cfg.Timeout = c.Duration("timeout")
	cfg.GuestDir = c.String("guests")
	if cfg.GuestDir == "" {
		cfg.GuestDir = defaultGuestDir(self)
	}

	var bar *bench.ProgressBar
	if isTerminal(os.Stderr) {
		bar = &bench.ProgressBar{W: os.Stderr}
		cfg.Progress = bar.Update
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := bench.Run(ctx, cfg)
	if bar != nil {
		bar.Finish()
	}
	if report == nil {
		return cli.Exit("bench: "+err.Error(), 1)
	}
	if err != nil {
		// Run returns a report with an error only when ctx ended.
		return cli.Exit("bench: interrupted; no figures printed", 1)
	}

	out := c.App.Writer
	if c.Bool("json") {
		err = report.WriteJSON(out)
	} else {
		err = report.WriteTable(out)
	}
	if err != nil {
		return cli.Exit("bench: "+err.Error(), 1)
	}
	if path := c.String("json-file"); path != "" {
		if err := writeFile(path, report.WriteJSON); err != nil {
			return cli.Exit("bench: "+err.Error(), 1)
		}
	}
	if path := c.String("plot"); path != "" {
		if err := bench.PlotReport(report, path); err != nil {
			return cli.Exit("bench: "+err.Error(), 1)
		}
	}
	return nil
}

// writeFile creates path and writes it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// defaultGuestDir returns tests/guests/build beside the bin directory of
// the ntender executable when it exists, as in a source checkout after
// make, and otherwise that path in the current directory.
func defaultGuestDir(self string) string {
	dir := filepath.Join(filepath.Dir(filepath.Dir(self)), "tests", "guests", "build")
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	return filepath.Join("tests", "guests", "build")
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
