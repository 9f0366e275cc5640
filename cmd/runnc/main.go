// Command runnc is an OCI runtime that runs Solo5 unikernel images with
// ntender. It implements the runc command line that Docker and
// containerd's runc shim use:
//
//	runnc [--root DIR] [--log FILE] [--log-format text|json] [--debug]
//	      [--systemd-cgroup] [--mode hvt|spt|auto] [--ntender PATH]
//	      COMMAND [OPTIONS] ID
//
// Register it with Docker in daemon.json:
//
//	{"runtimes": {"runnc": {"path": "/usr/local/bin/runnc"}}}
//
// and run an image whose process.args[0] is a Solo5 unikernel with
// docker run --runtime=runnc IMAGE /unikernel.hvt ARGS.
//
// What a container gives the unikernel:
//   - each manifest net device gets a tap joined to one of the container's
//     interfaces, and the arguments --ipv4=ADDR/PREFIX --ipv4-gateway=GW,
//     a template that --net-args or RUNNC_NET_ARGS in the container
//     environment replaces;
//   - each manifest block device NAME gets the regular file mounted at
//     /NAME (docker run -v disk.img:/NAME);
//   - docker run -m LIMIT becomes --mem, LIMIT in MiB rounded down;
//   - RUNNC_MODE=hvt|spt|auto in the container environment overrides
//     --mode.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ntender/ntender/runnc"
)

// version is set at link time by release builds.
var version = "0.1.0-dev"

func main() {
	if runnc.IsInit() {
		err := runnc.Init()
		fmt.Fprintln(os.Stderr, "runnc init:", err)
		os.Exit(1)
	}
	os.Exit(mainStatus(os.Args))
}

// exitStatus carries the exit status of run's container through the CLI.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func mainStatus(argv []string) int {
	logger := slog.New(newHandler(os.Stderr, "text", slog.LevelWarn))
	app := newApp(&logger)
	err := app.Run(argv)
	var status exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	}
	// As runc does, an error goes both to the log, where containerd's
	// shim reads the last "error" entry, and to stderr.
	logger.Error(err.Error())
	if app.Metadata["logToFile"] == true {
		fmt.Fprintln(os.Stderr, "runnc:", err)
	}
	return 1
}

// newHandler returns a slog handler whose level names are lowercase, as
// logrus writes them for runc ("debug", "info", "warning", "error");
// containerd's shim matches "error" exactly.
func newHandler(w io.Writer, format string, level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && len(groups) == 0 {
				level := strings.ToLower(a.Value.String())
				if level == "warn" {
					level = "warning"
				}
				return slog.String(slog.LevelKey, level)
			}
			return a
		},
	}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func newApp(logger **slog.Logger) *cli.App {
	app := &cli.App{
		Name:    "runnc",
		Usage:   "OCI runtime that runs Solo5 unikernel images with ntender",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "/run/runnc", Usage: "directory for the state of containers"},
			&cli.StringFlag{Name: "log", Usage: "append log entries to `FILE` instead of stderr"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log debug entries"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "read cgroupsPath as slice:prefix:name (the cgroup is written directly, not through systemd)"},
			&cli.StringFlag{Name: "rootless", Usage: "accepted for compatibility with runc and ignored"},
			&cli.StringFlag{Name: "mode", Value: "auto", Usage: "default backend: hvt, spt or auto; " + runnc.ModeEnv + " in the container environment overrides it"},
			&cli.StringFlag{Name: "ntender", EnvVars: []string{"RUNNC_NTENDER"}, Usage: "path of the ntender binary (default: ntender next to runnc)"},
			&cli.StringFlag{Name: "net-args", Value: runnc.DefaultNetArgs, Usage: "unikernel arguments for each network, with {cidr}, {address}, {prefix}, {gateway} and {device}; " + runnc.NetArgsEnv + " in the container environment overrides it"},
		},
		Metadata:       map[string]any{},
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			createCommand(), startCommand(), stateCommand(), killCommand(),
			deleteCommand(), runCommand(), listCommand(), psCommand(),
			featuresCommand(), specCommand(),
			unsupportedCommand("exec", "a unikernel has no process to start beside it"),
			unsupportedCommand("pause", "runnc does not freeze unikernels"),
			unsupportedCommand("resume", "runnc does not freeze unikernels"),
			unsupportedCommand("update", "resources are fixed when the unikernel starts"),
			unsupportedCommand("checkpoint", "runnc does not checkpoint unikernels"),
			unsupportedCommand("restore", "runnc does not checkpoint unikernels"),
		},
	}
	app.Before = func(c *cli.Context) error {
		format := c.String("log-format")
		if format != "text" && format != "json" {
			return fmt.Errorf("invalid --log-format %q: use text or json", format)
		}
		// Progress entries go to a log file but not to a terminal.
		w, level := io.Writer(os.Stderr), slog.LevelWarn
		if path := c.String("log"); path != "" {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("opening the log file: %w", err)
			}
			w, level = f, slog.LevelInfo
			app.Metadata["logToFile"] = true
		}
		if c.Bool("debug") {
			level = slog.LevelDebug
		}
		*logger = slog.New(newHandler(w, format, level))
		(*logger).Debug("runnc invoked", "args", os.Args)
		return nil
	}
	app.Metadata["logger"] = logger
	return app
}

// runtimeFrom builds the runtime from the global flags. Only create and
// run need the ntender binary.
func runtimeFrom(c *cli.Context) (*runnc.Runtime, error) {
	mode, err := runnc.ParseMode(c.String("mode"))
	if err != nil {
		return nil, err
	}
	logger := *(c.App.Metadata["logger"].(**slog.Logger))
	return &runnc.Runtime{
		Root:          c.String("root"),
		SystemdCgroup: c.Bool("systemd-cgroup"),
		Options:       runnc.Options{Mode: mode, NetArgs: c.String("net-args")},
		Log:           logger,
	}, nil
}

// launchingRuntimeFrom is runtimeFrom with the ntender binary located.
func launchingRuntimeFrom(c *cli.Context) (*runnc.Runtime, error) {
	r, err := runtimeFrom(c)
	if err != nil {
		return nil, err
	}
	tenderPath := c.String("ntender")
	if tenderPath == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the runnc binary to locate ntender: %w", err)
		}
		tenderPath = filepath.Join(filepath.Dir(self), "ntender")
	}
	if _, err := os.Stat(tenderPath); err != nil {
		return nil, fmt.Errorf("ntender binary not found: %w; install it next to runnc or give --ntender or RUNNC_NTENDER", err)
	}
	r.Options.Tender = tenderPath
	return r, nil
}

// containerID returns the ID argument of a verb once it is valid, so that
// a verb rejects an invalid ID before it reads or creates anything.
func containerID(c *cli.Context) (string, error) {
	if c.NArg() < 1 {
		return "", fmt.Errorf("%s: missing the container ID; usage: runnc %s %s", c.Command.Name, c.Command.Name, c.Command.ArgsUsage)
	}
	id := c.Args().First()
	if err := runnc.ValidateID(id); err != nil {
		return "", err
	}
	return id, nil
}

var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "bundle directory containing config.json"},
	&cli.StringFlag{Name: "pid-file", Usage: "write the container's pid to `FILE`"},
	&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pseudoterminal master when process.terminal is true"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "accepted for compatibility with runc; runnc never pivots into the rootfs"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted for compatibility with runc and ignored"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "accepted for compatibility with runc; extra file descriptors are not passed"},
}

func createOptions(c *cli.Context) runnc.CreateOptions {
	return runnc.CreateOptions{PidFile: c.String("pid-file"), ConsoleSocket: c.String("console-socket")}
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a container whose process waits for start",
		ArgsUsage: "ID",
		Flags:     createFlags,
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			r, err := launchingRuntimeFrom(c)
			if err != nil {
				return err
			}
			proc, err := r.Create(id, c.String("bundle"), createOptions(c))
			if err != nil {
				return err
			}
			return proc.Release()
		},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "create and start a container and wait for it unless --detach",
		ArgsUsage: "ID",
		Flags:     append([]cli.Flag{&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return after start"}}, createFlags...),
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			r, err := launchingRuntimeFrom(c)
			if err != nil {
				return err
			}
			status, err := r.Run(id, c.String("bundle"), createOptions(c), c.Bool("detach"))
			if err != nil {
				return err
			}
			if status != 0 {
				return exitStatus(status)
			}
			return nil
		},
	}
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start a created container",
		ArgsUsage: "ID",
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			r, err := runtimeFrom(c)
			if err != nil {
				return err
			}
			return r.Start(id)
		},
	}
}

func stateCommand() *cli.Command {
	return &cli.Command{
		Name:      "state",
		Usage:     "print the state of a container as OCI state JSON",
		ArgsUsage: "ID",
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			r, err := runtimeFrom(c)
			if err != nil {
				return err
			}
			ct, err := r.Load(id)
			if err != nil {
				return err
			}
			return printJSON(c.App.Writer, ct.OCIState())
		},
	}
}

func killCommand() *cli.Command {
	return &cli.Command{
		Name:      "kill",
		Usage:     "send a signal (default SIGTERM) to a container's process",
		ArgsUsage: "ID [SIGNAL]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "send the signal to every process in the container's cgroup"},
		},
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			sigText := "SIGTERM"
			if c.NArg() > 1 {
				sigText = c.Args().Get(1)
			}
			sig, err := runnc.ParseSignal(sigText)
			if err != nil {
				return err
			}
			r, err := runtimeFrom(c)
			if err != nil {
				return err
			}
			return r.Kill(id, sig, c.Bool("all"))
		},
	}
}

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a stopped or created container with its processes, cgroup, taps and state",
		ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first and remove one whose state file is corrupt; a missing container is not an error"},
		},
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			r, err := runtimeFrom(c)
			if err != nil {
				return err
			}
			return r.Delete(id, c.Bool("force"))
		},
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the containers",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the IDs"},
		},
		Action: func(c *cli.Context) error {
			r, err := runtimeFrom(c)
			if err != nil {
				return err
			}
			list, err := r.List()
			if err != nil {
				return err
			}
			w := c.App.Writer
			switch {
			case c.Bool("quiet"):
				for _, ct := range list {
					fmt.Fprintln(w, ct.ID)
				}
				return nil
			case c.String("format") == "json":
				states := make([]any, 0, len(list))
				for _, ct := range list {
					states = append(states, ct.OCIState())
				}
				return printJSON(w, states)
			case c.String("format") != "table":
				return fmt.Errorf("invalid --format %q: use table or json", c.String("format"))
			}
			tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
			for _, ct := range list {
				status := ct.CurrentStatus()
				pid := ct.Pid
				if status == runnc.Stopped {
					pid = 0
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", ct.ID, pid, status, ct.Bundle, ct.Created.Format(time.RFC3339Nano), ct.Owner)
			}
			return tw.Flush()
		},
	}
}

func psCommand() *cli.Command {
	return &cli.Command{
		Name:      "ps",
		Usage:     "list the processes in a container's cgroup",
		ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		},
		Action: func(c *cli.Context) error {
			id, err := containerID(c)
			if err != nil {
				return err
			}
			r, err := runtimeFrom(c)
			if err != nil {
				return err
			}
			ct, err := r.Load(id)
			if err != nil {
				return err
			}
			pids := []int{}
			if ct.Cgroup != nil {
				if pids, err = ct.Cgroup.Pids(); err != nil {
					return err
				}
			}
			if c.String("format") == "json" {
				return printJSON(c.App.Writer, pids)
			}
			fmt.Fprintln(c.App.Writer, "PID")
			for _, p := range pids {
				fmt.Fprintln(c.App.Writer, p)
			}
			return nil
		},
	}
}

func featuresCommand() *cli.Command {
	return &cli.Command{
		Name:  "features",
		Usage: "print the runtime features as JSON",
		Action: func(c *cli.Context) error {
			return printJSON(c.App.Writer, runnc.Features())
		},
	}
}

func specCommand() *cli.Command {
	return &cli.Command{
		Name:  "spec",
		Usage: "write a config.json for a unikernel bundle",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "bundle directory to write config.json in"},
		},
		Action: func(c *cli.Context) error {
			path := filepath.Join(c.String("bundle"), "config.json")
			data, err := json.MarshalIndent(runnc.DefaultSpec(), "", "\t")
			if err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("writing the bundle configuration: %w", err)
			}
			_, err = f.Write(append(data, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
}

// unsupportedCommand accepts a runc verb that runnc does not implement,
// so that Docker shows why instead of a usage error.
func unsupportedCommand(name, reason string) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           "not supported: " + reason,
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return fmt.Errorf("runnc does not support %s: %s", name, reason)
		},
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
