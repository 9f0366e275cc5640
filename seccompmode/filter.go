package seccompmode

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/seccompmode/launcher"
)

// sockFilterSize is sizeof(struct sock_filter): u16 code, u8 jt, u8 jf,
// u32 k, in host byte order.
const sockFilterSize = 8

// Filter compiles the policy to a classic BPF program with libseccomp. The
// default action and the action for a foreign architecture are
// SECCOMP_RET_KILL_PROCESS, so a violation ends the whole process with
// SIGSYS. libseccomp also adds the x32 guard (system call numbers with bit
// 30 set are killed).
//
// The program is exported rather than loaded: the launcher installs it in
// the guest process, not in this one.
func (p *Policy) Filter() ([]unix.SockFilter, error) {
	f, err := seccomp.NewFilter(seccomp.ActKillProcess)
	if err != nil {
		return nil, fmt.Errorf("creating the seccomp filter: %w", err)
	}
	defer f.Release()
	if err := f.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("setting the seccomp action for other architectures: %w", err)
	}

	for _, r := range p.Rules {
		if err := addRule(f, r); err != nil {
			return nil, err
		}
	}

	prog, err := exportBPF(f)
	if err != nil {
		return nil, err
	}
	if len(prog) == 0 || len(prog) > launcher.MaxFilterLen {
		return nil, fmt.Errorf("seccomp filter has %d instructions, the kernel accepts 1 to %d",
			len(prog), launcher.MaxFilterLen)
	}
	return prog, nil
}

func addRule(f *seccomp.ScmpFilter, r Rule) error {
	call := seccomp.ScmpSyscall(r.Number)
	if len(r.Conds) == 0 {
		if err := f.AddRuleExact(call, seccomp.ActAllow); err != nil {
			return fmt.Errorf("adding seccomp rule for %s: %w", r.Syscall, err)
		}
		return nil
	}

	conds := make([]seccomp.ScmpCondition, len(r.Conds))
	for i, c := range r.Conds {
		op := seccomp.CompareEqual
		if c.Op == CompareLessOrEqual {
			op = seccomp.CompareLessOrEqual
		}
		cond, err := seccomp.MakeCondition(c.Arg, op, c.Value)
		if err != nil {
			return fmt.Errorf("making seccomp condition %s of %s: %w", c, r.Syscall, err)
		}
		conds[i] = cond
	}
	if err := f.AddRuleConditionalExact(call, seccomp.ActAllow, conds); err != nil {
		return fmt.Errorf("adding seccomp rule for %s: %w", r.Syscall, err)
	}
	return nil
}

// exportBPF returns the program of f. libseccomp 2.5 exports only to a
// file descriptor, so the program passes through a memfd.
func exportBPF(f *seccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("ntender-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating a memfd for the seccomp filter: %w", err)
	}
	file := os.NewFile(uintptr(fd), "seccomp filter")
	defer file.Close()

	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("exporting the seccomp filter: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding the seccomp filter memfd: %w", err)
	}
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("reading the seccomp filter: %w", err)
	}
	if len(raw)%sockFilterSize != 0 {
		return nil, fmt.Errorf("exported seccomp filter is %d bytes, not a whole number of instructions", len(raw))
	}

	prog := make([]unix.SockFilter, len(raw)/sockFilterSize)
	for i := range prog {
		b := raw[i*sockFilterSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}
