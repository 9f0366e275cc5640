package vmm

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/vmm/corefile"
)

// abortStatus is SOLO5_EXIT_ABORT, the HALT status of solo5_abort(), a
// failed assertion and a CPU exception. Only such a halt writes a core.
const abortStatus = 255

// coreDump is the state of --dumpcore=DIR for one run. The seccomp filter
// forbids openat, so everything the dump needs is opened before it: the
// directory, an unnamed file in it (O_TMPFILE) and /proc/self/pagemap.
// A guest that aborts gets its core written to the unnamed file, which
// linkat then names DIR/core.solo5-hvt.PID. Any other end of the guest
// leaves no file, because the kernel frees an unnamed file on its last
// close.
type coreDump struct {
	dirName string
	dir     *os.File
	file    *os.File
	pagemap *os.File
}

// openCoreDump opens dir and creates the unnamed core file in it, sized
// for memSize bytes of guest memory.
func openCoreDump(dir string, memSize uint64) (*coreDump, error) {
	c := &coreDump{dirName: dir}
	dirFd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|
		unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("--dumpcore=%s: opening the directory "+
			"failed: %w; give an existing directory", dir, err)
	}
	c.dir = os.NewFile(uintptr(dirFd), dir)

	// O_TMPFILE without O_EXCL is what lets linkat name the file later.
	fd, err := unix.Openat(dirFd, ".",
		unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("--dumpcore=%s: creating an unnamed file "+
			"in the directory failed: %w; the directory must be "+
			"writable and on a file system with O_TMPFILE, such as "+
			"ext4, xfs, btrfs or tmpfs", dir, err)
	}
	c.file = os.NewFile(uintptr(fd), "core")

	if err := c.file.Truncate(corefile.Size(memSize)); err != nil {
		c.close()
		return nil, fmt.Errorf("--dumpcore=%s: sizing the core file: %w",
			dir, err)
	}
	c.pagemap, err = os.Open("/proc/self/pagemap")
	if err != nil {
		c.close()
		return nil, fmt.Errorf("dumpcore: opening the page map: %w", err)
	}
	return c, nil
}

func (c *coreDump) close() {
	for _, f := range []*os.File{c.pagemap, c.file, c.dir} {
		if f != nil {
			f.Close()
		}
	}
}

// Bits of a /proc/self/pagemap entry (proc_pid_pagemap(5)).
const (
	pagemapPresent = 1 << 63
	pagemapSwapped = 1 << 62
)

// touchedPages reports for each 4 KiB page of mem whether the process has
// it in memory or in swap. A page that neither the guest nor the tender
// ever touched has neither bit set and reads as zeros.
//
// NOTE: a shared page that the kernel swapped out and unmapped may show
// neither bit, so its contents would be missing from the core. Upstream's
// mincore() check skips swapped-out pages too.
func (c *coreDump) touchedPages(mem []byte) ([]bool, error) {
	pages := len(mem) / corefile.PageSize
	entries := make([]byte, 8*pages)
	first := int64(hostAddress(mem) / corefile.PageSize)
	if _, err := c.pagemap.ReadAt(entries, 8*first); err != nil {
		return nil, fmt.Errorf("reading the page map: %w", err)
	}
	touched := make([]bool, pages)
	for i := range touched {
		entry := binary.LittleEndian.Uint64(entries[8*i:])
		touched[i] = entry&(pagemapPresent|pagemapSwapped) != 0
	}
	return touched, nil
}

// dumpCore writes the core of the halted guest and names it
// DIR/core.solo5-hvt.PID, as solo5-hvt-debug does. Failures are logged,
// because the guest's exit status stays 255 either way.
func (m *machine) dumpCore(halt *Halt) {
	c := m.core
	name := fmt.Sprintf("core.solo5-hvt.%d", m.pid)
	path := filepath.Join(c.dirName, name)
	// NOTE: linkat(2) documents that AT_EMPTY_PATH needs
	// CAP_DAC_READ_SEARCH and fails with ENOENT without it, so on such
	// kernels a tender that is not root gets no core. Linux 6.18 allowed
	// it for a user without capabilities when tested.
	err := unix.Linkat(int(c.file.Fd()), "", int(c.dir.Fd()), name,
		unix.AT_EMPTY_PATH)
	if err != nil {
		m.log("dumpcore: creating %s failed: %v", path, err)
		return
	}
	m.log("dumpcore: dumping guest core to: %s", path)

	if err := m.writeCore(halt); err != nil {
		m.log("dumpcore: %v; the core file may be incomplete", err)
	}
}

func (m *machine) writeCore(halt *Halt) error {
	regs, err := m.vcpu.coreRegisters()
	if err != nil {
		return err
	}
	if f := halt.Frame; f != nil {
		// The guest's trap handler saved the registers of the faulting
		// instruction. KVM's registers are those of the HALT hypercall.
		regs.RIP, regs.CS, regs.EFLAGS = f.RIP, f.CS, f.RFLAGS
		regs.RSP, regs.SS = f.RSP, f.SS
	}

	mem := m.mem[:m.layout.guestSize]
	touched, err := m.core.touchedPages(mem)
	if err != nil {
		return err
	}
	written, err := corefile.Write(m.core.file, regs, mem, touched)
	if err != nil {
		return err
	}
	m.log("dumpcore: dumped %d pages of total %d pages", written,
		len(touched))
	return nil
}
