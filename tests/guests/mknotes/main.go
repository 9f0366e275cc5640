// Command mknotes turns a Solo5 manifest in JSON into the assembler source
// of the three ELF notes a Solo5 tender looks for in a unikernel: the
// OpenBSD note, the ABI1 note and the MFT1 (manifest) note.
//
// Usage:
//
//	mknotes -target hvt|spt MANIFEST.json OUTPUT.S
//
// MANIFEST.json has the format that solo5-elftool gen-manifest reads:
//
//	{"type": "solo5.manifest", "version": 1,
//	 "devices": [{"name": "storage", "type": "BLOCK_BASIC"}]}
//
// and is validated with the rules and messages of solo5-elftool
// gen-manifest, so a manifest that mknotes accepts is one that the Solo5
// toolchain accepts. Either file name may be "-" for
// standard input or output. The test guests' linker scripts give each note
// section its own PT_NOTE program header.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "mknotes: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	flags := flag.NewFlagSet("mknotes", flag.ContinueOnError)
	targetName := flags.String("target", "", "Solo5 ABI target of the guest: hvt or spt")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 2 {
		return fmt.Errorf("usage: mknotes -target hvt|spt MANIFEST.json OUTPUT.S")
	}
	target, err := parseTarget(*targetName)
	if err != nil {
		return err
	}
	source, output := flags.Arg(0), flags.Arg(1)

	var data []byte
	if source == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(source)
	}
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	devices, err := parseManifest(data)
	var manifestErr *manifestError
	if errors.As(err, &manifestErr) {
		// FILE:LINE: PATH: problem, as solo5-elftool prints it.
		return fmt.Errorf("%s:%w", source, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}

	notes := buildNotes(target, devices)
	if output == "-" {
		return writeAssembly(stdout, source, notes)
	}
	file, err := os.Create(output)
	if err != nil {
		return fmt.Errorf("creating output: %w", err)
	}
	if err := writeAssembly(file, source, notes); err != nil {
		file.Close()
		return fmt.Errorf("writing %s: %w", output, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", output, err)
	}
	return nil
}

func parseTarget(name string) (uint32, error) {
	switch name {
	case "hvt":
		return abiTargetHVT, nil
	case "spt":
		return abiTargetSPT, nil
	default:
		return 0, fmt.Errorf("invalid -target %q, expected hvt or spt", name)
	}
}
