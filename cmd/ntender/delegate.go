package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"
)

// benchProgram is the program beside ntender that implements the
// benchmark subcommands. Keeping them out of the tender binary keeps
// every tender process small.
const benchProgram = "ntender-bench"

// delegatedCommand returns a subcommand that replaces this process with
// ntender-bench running the same subcommand and arguments.
func delegatedCommand(name, usage string) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		SkipFlagParsing: true,
		HideHelp:        true,
		Action: func(c *cli.Context) error {
			self, err := os.Executable()
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: finding the ntender executable: %v", name, err), 1)
			}
			prog := filepath.Join(filepath.Dir(self), benchProgram)
			argv := append([]string{prog, name}, c.Args().Slice()...)
			env := append(os.Environ(), "NTENDER_BIN="+self)
			err = syscall.Exec(prog, argv, env)
			return cli.Exit(fmt.Sprintf("%s: running %s (make builds it beside ntender): %v", name, prog, err), 1)
		},
	}
}
