// Command ntender-bench implements `ntender bench` and `ntender measure`.
//
// It is a separate program so that the tender stays small: the charts and
// tracing code would add megabytes to the resident memory of every
// tender process. ntender runs it from its own directory, with the
// tender's path in NTENDER_BIN.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// tenderEnv names the variable through which ntender passes its own path.
const tenderEnv = "NTENDER_BIN"

func main() {
	app := &cli.App{
		Name:  "ntender-bench",
		Usage: "benchmark ntender's modes and measure the host kernel they reach",
		// Errors are printed below with the program prefix.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       []*cli.Command{benchCommand(), measureCommand()},
	}
	if err := app.Run(os.Args); err != nil {
		status := 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			status = ec.ExitCode()
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "ntender: "+msg)
		}
		os.Exit(status)
	}
}

// tenderExecutable returns the ntender binary to benchmark: NTENDER_BIN
// when ntender started this program, else ntender beside this program.
func tenderExecutable() (string, error) {
	if path := os.Getenv(tenderEnv); path != "" {
		return path, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the ntender executable: %w", err)
	}
	path := filepath.Join(filepath.Dir(self), "ntender")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("finding the ntender executable: %w; set %s", err, tenderEnv)
	}
	return path, nil
}
