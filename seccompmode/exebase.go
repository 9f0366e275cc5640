package seccompmode

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// checkBelowExecutable rejects a guest memory size that would reach the
// ntender executable, because the guest is mapped at its own addresses
// [0x10000, memSize) in the ntender process. On x86_64 Linux the kernel
// loads a position-independent executable above 4 GiB (at 0x55... to
// 0x56... with ASLR, as observed on Linux 6.18), and a default Go build
// sits at 0x400000. The constructor checks again in the new process
// image, whose load address differs under ASLR.
func checkBelowExecutable(memSize uint64) error {
	base, err := executableBase()
	if err != nil {
		return err
	}
	return belowExecutable(memSize, base)
}

// belowExecutable rejects memSize if it reaches an executable loaded at
// base. It suggests -buildmode=pie only for an executable below 4 GiB,
// where the kernel puts one that is not position-independent.
func belowExecutable(memSize, base uint64) error {
	if memSize <= base {
		return nil
	}
	fix := "lower --mem"
	if base < 1<<32 {
		fix += ", or build ntender with -buildmode=pie"
	}
	return fmt.Errorf("guest memory of %d MiB reaches the ntender executable at %#x, "+
		"the maximum is %d MiB: %s", memSize>>20, base, base>>20, fix)
}

// executableBase returns the lowest address at which the running
// executable is mapped, from /proc/self/maps.
func executableBase() (uint64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("finding the ntender executable: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("reading the process memory map: %w", err)
	}
	return lowestMapping(maps, exe)
}

// lowestMapping returns the start of the lowest mapping of path in maps,
// in the format of /proc/PID/maps.
func lowestMapping(maps []byte, path string) (uint64, error) {
	lowest := uint64(0)
	found := false
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		fields, name := splitMapsLine(sc.Text())
		if name != path {
			continue
		}
		start, _, ok := strings.Cut(fields[0], "-")
		if !ok {
			return 0, fmt.Errorf("invalid address range %q in the process memory map", fields[0])
		}
		addr, err := strconv.ParseUint(start, 16, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid address range %q in the process memory map: %w", fields[0], err)
		}
		if !found || addr < lowest {
			lowest, found = addr, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the process memory map: %w", err)
	}
	if !found {
		return 0, fmt.Errorf("the process memory map has no mapping of %s", path)
	}
	return lowest, nil
}

// splitMapsLine returns the five fields of a /proc/PID/maps line (address,
// perms, offset, dev, inode) and the pathname, which may contain spaces
// and is empty for anonymous mappings.
func splitMapsLine(line string) (fields [5]string, name string) {
	rest := line
	for i := range fields {
		rest = strings.TrimLeft(rest, " ")
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			fields[i], rest = rest, ""
			continue
		}
		fields[i], rest = rest[:end], rest[end:]
	}
	return fields, strings.TrimLeft(rest, " ")
}
