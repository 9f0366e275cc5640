// Package corefile writes an ELF core file of an x86_64 hvt guest in the
// layout of solo5-hvt-debug's --dumpcore (Solo5 v0.12.1,
// tenders/hvt/hvt_module_dumpcore.c). The file has an ET_CORE header, a
// PT_NOTE with one NT_PRSTATUS note for the vCPU registers, and one
// PT_LOAD of guest physical memory at address 0. gdb opens such a file
// together with the unikernel, whose virtual addresses are its guest
// physical addresses.
//
// Unlike upstream, the PT_LOAD data starts at a page-aligned file offset,
// so that the file holes left for pages that are not written line up with
// guest pages.
package corefile

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// PageSize is the unit in which guest memory is written or skipped.
const PageSize = 4096

// Registers mirrors struct user_regs_struct of x86_64 Linux
// (<sys/user.h>), the pr_reg field of prstatus_t, in its field order.
type Registers struct {
	R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8 uint64
	RAX, RCX, RDX, RSI, RDI, OrigRAX               uint64
	RIP, CS, EFLAGS, RSP, SS                       uint64
	FSBase, GSBase                                 uint64
	DS, ES, FS, GS                                 uint64
}

// timeval mirrors struct timeval on x86_64 (16 bytes).
type timeval struct {
	Sec, Usec int64
}

// prstatus mirrors glibc's prstatus_t on x86_64 (<sys/procfs.h>, 336
// bytes), the descriptor of an NT_PRSTATUS note. Only Reg is filled in, as
// upstream does: the guest has no process, signal or CPU time to report.
type prstatus struct {
	Signo, Code, Errno int32 // pr_info, a struct elf_siginfo
	CurSig             int16
	_                  [2]byte
	SigPend, SigHold   uint64
	PID, PPID, PGrp    int32
	SID                int32
	UTime, STime       timeval
	CUTime, CSTime     timeval
	Reg                Registers
	FPValid            int32
	_                  [4]byte
}

// Sizes of the ELF64 structures and of the note, in bytes.
const (
	ehdrSize     = 64  // Elf64_Ehdr
	phdrSize     = 56  // Elf64_Phdr
	nhdrSize     = 12  // Elf64_Nhdr: n_namesz, n_descsz, n_type
	prstatusSize = 336 // prstatus_t
	// noteNameSize is the size of the note name "CORE" with the NUL
	// padding to 8 bytes, which upstream counts in n_namesz.
	noteNameSize = 8
	phnum        = 2 // PT_NOTE, PT_LOAD

	noteOffset = ehdrSize + phnum*phdrSize
	noteSize   = nhdrSize + noteNameSize + prstatusSize

	// LoadOffset is the file offset of guest physical address 0.
	LoadOffset = (noteOffset + noteSize + PageSize - 1) / PageSize * PageSize
)

// Size returns the size of the core file of memSize bytes of guest memory.
// A caller that truncates the file to Size before Write gets holes, which
// read as zeros, for the pages Write skips.
func Size(memSize uint64) int64 {
	return LoadOffset + int64(memSize)
}

// Headers returns the file contents before LoadOffset: the ELF header, the
// program headers and the NT_PRSTATUS note with regs. The rest up to
// LoadOffset is zero.
func Headers(memSize uint64, regs *Registers) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer

	ehdr := elf.Header64{
		Type:      uint16(elf.ET_CORE),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     ehdrSize,
		Ehsize:    ehdrSize,
		Phentsize: phdrSize,
		Phnum:     phnum,
	}
	copy(ehdr.Ident[:], elf.ELFMAG)
	ehdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	ehdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ehdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	ehdr.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_STANDALONE)
	mustWrite(&b, ehdr)

	mustWrite(&b, elf.Prog64{
		Type:   uint32(elf.PT_NOTE),
		Off:    noteOffset,
		Filesz: noteSize,
		Memsz:  noteSize,
	})
	mustWrite(&b, elf.Prog64{
		Type:   uint32(elf.PT_LOAD),
		Off:    LoadOffset,
		Filesz: memSize,
		Memsz:  memSize,
		Align:  PageSize,
	})

	var nhdr [nhdrSize]byte
	le.PutUint32(nhdr[0:], noteNameSize)
	le.PutUint32(nhdr[4:], prstatusSize)
	le.PutUint32(nhdr[8:], uint32(elf.NT_PRSTATUS))
	b.Write(nhdr[:])
	var name [noteNameSize]byte
	copy(name[:], "CORE")
	b.Write(name[:])
	mustWrite(&b, prstatus{Reg: *regs})

	out := make([]byte, LoadOffset)
	copy(out, b.Bytes())
	return out
}

// mustWrite appends the fixed-size value v. binary.Write fails only for
// values without a fixed size, and mustWrite panics on such a value.
func mustWrite(b *bytes.Buffer, v any) {
	if err := binary.Write(b, binary.LittleEndian, v); err != nil {
		panic(err)
	}
}

// Write writes the core file of guest memory mem with the registers regs
// to w and returns the number of pages written. present reports for each
// page of mem whether to write it, and nil writes every page. Skipped pages
// are not written at all, so w should be a file truncated to
// Size(len(mem)) beforehand.
func Write(w io.WriterAt, regs *Registers, mem []byte, present []bool) (int, error) {
	if len(mem)%PageSize != 0 {
		return 0, fmt.Errorf("guest memory of %d bytes is not a whole "+
			"number of %d-byte pages", len(mem), PageSize)
	}
	pages := len(mem) / PageSize
	if present != nil && len(present) != pages {
		return 0, fmt.Errorf("page map has %d entries for %d pages",
			len(present), pages)
	}

	if _, err := w.WriteAt(Headers(uint64(len(mem)), regs), 0); err != nil {
		return 0, fmt.Errorf("writing the core file headers: %w", err)
	}

	// Runs of consecutive pages go out in one write each.
	written := 0
	for page := 0; page < pages; {
		if present != nil && !present[page] {
			page++
			continue
		}
		end := page + 1
		for end < pages && (present == nil || present[end]) {
			end++
		}
		start := page * PageSize
		_, err := w.WriteAt(mem[start:end*PageSize], LoadOffset+int64(start))
		if err != nil {
			return written, fmt.Errorf("writing guest memory pages %d to "+
				"%d: %w", page, end-1, err)
		}
		written += end - page
		page = end
	}
	return written, nil
}
