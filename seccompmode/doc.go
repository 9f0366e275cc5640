// Package seccompmode is the spt backend: it runs a Solo5 spt unikernel as
// ordinary code in a process confined by a seccomp filter, as the upstream
// solo5-spt tender does.
//
// The guest runs in a process that has exactly one thread and no Go
// runtime. Its only fds are 0, 1, 2, its devices and the yield epoll set
// and timerfd. Its memory is one private anonymous region
// [0x10000, mem_size) at the ELF's own addresses, as solo5-spt maps it.
// The segments are copied in and protected with exactly their PF flags,
// and boot info at 0x11000 is followed by the manifest and the command
// line. The seccomp filter comes next, then a jump to e_entry with
// RSP = mem_size - 8 and RDI = 0x11000.
//
// A Go process cannot become such a process: the runtime has several
// threads that a seccomp filter installed from Go would confine as well
// (with SECCOMP_FILTER_FLAG_TSYNC) or leave running (without it), it maps
// heap arenas and libraries wherever it likes, and it needs system calls
// the guest must not have. So Run does all the work that can fail in Go,
// and a small C stage (package launcher) does the rest before any Go code
// runs:
//
//  1. Run validates the plan for spt (target, memory size, segments within
//     memory, memory below the executable), creates the yield epoll set and
//     timerfd, builds the filter with libseccomp-golang and exports its BPF
//     program, and encodes segments, protections, boot info, manifest (with
//     the fd numbers the guest process will see), command line and BPF into
//     a launch image.
//  2. launcher.Exec writes the image to a sealed memfd, clears FD_CLOEXEC on
//     exactly the fds to keep, and execve()s the ntender executable with an
//     environment variable naming the memfd.
//  3. A cgo constructor in the new process image, which runs before the Go
//     runtime starts, reads the image, closes every other fd, rejects the
//     READ_IMPLIES_EXEC personality, maps and loads the guest, sets
//     no_new_privs, installs the filter and jumps.
//
// Exec rather than fork keeps the pid, so the guest's exit_group status,
// or the signal that kills it, is the status of the ntender process: 139
// for a guest fault and 159 (SIGSYS) for a forbidden system call, from a
// shell, as with solo5-spt. The fd numbers survive execve, so the numbers
// in the manifest and the filter are the ones of this process.
//
// ntender must be built position-independent (-buildmode=pie). The kernel
// then loads it above 4 GiB, out of the guest's range. Run checks the
// executable's load address, and the constructor maps guest memory with
// MAP_FIXED_NOREPLACE, so an overlap is an error and never a clobbered
// mapping.
//
// Security: the filter (see NewPolicy and Policy.Render) is the upstream
// solo5-spt policy. It allows write only to fd 1, exit_group,
// clock_gettime only for CLOCK_MONOTONIC and CLOCK_REALTIME, epoll_pwait
// and timerfd_settime only on the guest's own epoll set and timerfd,
// arch_prctl only for ARCH_SET_FS, pread64 and pwrite64 only on each
// block device's fd with a count of one sector and an offset of at most
// capacity minus one sector, and read and write only on each tap's fd.
// Any other call, a foreign architecture or an x32 call kills the process
// (SECCOMP_RET_KILL_PROCESS). The constructor makes no system call after
// installing the filter. The guest can read everything mapped in its
// process, as in solo5-spt: besides guest memory that is the ntender
// executable, its libraries, a copy of the filter and the initial stack
// with ntender's arguments and environment. The Go runtime never starts
// in that process, so no Go heap is there.
package seccompmode
