package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ntender/ntender/abi"
)

// infoCommand returns `ntender info`, which prints the Solo5 ABI and
// manifest notes of a unikernel. It reads them with the checks of
// solo5-elftool query-abi and query-manifest, so it also works on
// binaries for targets ntender does not run (virtio, muen, genode, xen).
func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "print the Solo5 ABI and manifest of a unikernel",
		ArgsUsage: "[--format=json|text] [--abi] [--manifest] UNIKERNEL",
		Description: `The default JSON output combines the fields of solo5-elftool query-abi
and query-manifest. --abi and --manifest print exactly what those two
commands print. --format=text also shows the load checks of ntender run.`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:  "format",
				Value: "json",
				Usage: "output format: json or text",
			},
			&cli.BoolFlag{
				Name:  "abi",
				Usage: "print the ABI note as solo5-elftool query-abi does",
			},
			&cli.BoolFlag{
				Name:  "manifest",
				Usage: "print the manifest as solo5-elftool query-manifest does",
			},
		},
		Action: runInfo,
	}
}

// runInfo prints the notes of the one UNIKERNEL argument. Every failure,
// including a rejected file, is a cli.Exit error with status 1 whose
// message is one line.
func runInfo(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit(fmt.Sprintf("info: expected one UNIKERNEL argument, got %d", c.NArg()), 1)
	}
	path := c.Args().First()
	format := c.String("format")
	if format != "json" && format != "text" {
		return cli.Exit(fmt.Sprintf("info: invalid --format %q: use json or text", format), 1)
	}

	if (c.Bool("abi") || c.Bool("manifest")) && c.IsSet("format") {
		return cli.Exit("info: --abi and --manifest print solo5-elftool's own format; leave out --format", 1)
	}
	data, err := abi.ReadFile(path)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	out := c.App.Writer

	if c.Bool("abi") || c.Bool("manifest") {
		if c.Bool("abi") {
			info, err := abi.ReadABI(path, data)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if _, err := io.WriteString(out, abi.QueryABIText(info)); err != nil {
				return cli.Exit(fmt.Sprintf("info: writing output: %v", err), 1)
			}
		}
		if c.Bool("manifest") {
			entries, err := abi.ReadManifest(path, data)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if _, err := io.WriteString(out, abi.QueryManifestText(entries)); err != nil {
				return cli.Exit(fmt.Sprintf("info: writing output: %v", err), 1)
			}
		}
		return nil
	}

	info, err := abi.ReadABI(path, data)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	entries, err := abi.ReadManifest(path, data)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	if format == "json" {
		return writeInfoJSON(out, info, entries)
	}
	writeInfoText(out, path, data, info, entries)
	return nil
}

// writeInfoJSON prints the notes as one indented JSON object.
func writeInfoJSON(w io.Writer, info abi.ABIInfo, entries []abi.ManifestEntry) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(abi.NewNoteInfo(info, entries)); err != nil {
		return cli.Exit(fmt.Sprintf("info: writing JSON: %v", err), 1)
	}
	return nil
}

// writeInfoText prints the notes as a table, then the result of the
// stricter checks of ntender run and, when they pass, the segments the
// tender would load.
func writeInfoText(w io.Writer, path string, data []byte, info abi.ABIInfo, entries []abi.ManifestEntry) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "File:\t%s\n", path)
	fmt.Fprintf(tw, "ABI:\t%s, version %d\n", info.Target, info.Version)
	fmt.Fprintf(tw, "Manifest:\tversion %d\n", abi.ManifestVersion)
	fmt.Fprintf(tw, "Entries:\t%d (entry 0 is reserved)\n", len(entries))
	tw.Flush()

	fmt.Fprintln(w, "\nDevices:")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  HANDLE\tNAME\tTYPE")
	for i, e := range entries[1:] {
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", i+1, displayName(e.Name), e.Type)
	}
	tw.Flush()

	u, err := abi.Parse(path, data)
	if err == nil && u.Target != abi.TargetHVT && u.Target != abi.TargetSPT {
		err = fmt.Errorf("the %s target is not supported, only hvt and spt", u.Target)
	}
	if err != nil {
		fmt.Fprintf(w, "\nLoad check: failed: %s\n", strings.TrimPrefix(err.Error(), path+": "))
		return
	}
	fmt.Fprintf(w, "\nLoad check: passed\nEntry: %#x\nKernel end: %#x\n\nSegments:\n", u.Entry, u.KernelEnd)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHDR\tVADDR\tFILESZ\tMEMSZ\tPAGES\tFLAGS")
	for _, s := range u.Segments {
		fmt.Fprintf(tw, "  %d\t%#x\t%#x\t%#x\t[%#x, %#x)\t%s\n",
			s.Index, s.Vaddr, s.Filesz, s.Memsz, s.Start, s.End, protFlags(s.Prot))
	}
	tw.Flush()
}

// displayName returns name unchanged when it is printable ASCII and
// quoted otherwise, so that a hostile manifest cannot send control
// sequences to the terminal.
func displayName(name string) string {
	for _, c := range []byte(name) {
		if c < 0x20 || c > 0x7e {
			return strconv.Quote(name)
		}
	}
	return name
}

// protFlags returns p as readelf prints segment flags ("R E", "RW ").
func protFlags(p abi.Prot) string {
	flags := []byte("   ")
	if p&abi.ProtRead != 0 {
		flags[0] = 'R'
	}
	if p&abi.ProtWrite != 0 {
		flags[1] = 'W'
	}
	if p&abi.ProtExec != 0 {
		flags[2] = 'E'
	}
	return string(flags)
}
