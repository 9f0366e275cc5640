// Package launcher hands a prepared spt launch to a fresh process image of
// ntender, where a C constructor turns the process into the guest before
// the Go runtime starts.
//
// The Go runtime cannot host an spt guest: it runs several threads, keeps
// fds and signal handlers of its own, and maps memory wherever it likes.
// So the Go side of ntender prepares everything (guest segments, boot
// info, manifest, command line, the seccomp filter as BPF) and encodes it
// as an Image. Exec writes the image to a sealed memfd, clears FD_CLOEXEC
// on that memfd and on the fds the guest keeps, and execve()s the ntender
// executable with the environment variable EnvVar naming the memfd. The
// constructor in launcher.c finds the variable in the new process. It
// closes every other fd above 2 and restores the signals that ntender's
// parent had ignored. Then it maps guest memory at the ELF's addresses,
// copies the segments and boot area, and applies the segment protections.
// Last, it sets no_new_privs, installs the filter and jumps to the entry
// point. execve
// keeps the pid, so the guest's exit status or fatal signal becomes the
// status of the ntender process, as with the upstream solo5-spt tender.
//
// Any binary that imports this package (directly or through seccompmode)
// links the constructor. Without EnvVar in its environment the constructor
// does nothing.
//
// Security: the constructor trusts nothing it reads. It accepts only a
// sealed memfd, checks every offset, size, address and protection in the
// image, and reports a malformed image with one line on stderr and exit
// status 1. A user who sets EnvVar by hand can only run code of their own
// choosing in their own process, which they could do anyway.
package launcher

/*
#cgo CFLAGS: -O2 -Wall -Wextra -Werror -fno-strict-aliasing
#include <stdint.h>
#include "image.h"

uint64_t ntl_initially_ignored_signals(void);
*/
import "C"

// EnvVar is the environment variable whose value is the decimal number of
// the memfd that holds the launch image.
const EnvVar = "NTENDER_SPT_LAUNCH"

// InitiallyIgnoredSignals returns the signals that were set to SIG_IGN
// when this process started, before the Go runtime installed its signal
// handlers, as a mask with bit N-1 for signal N. The constructor records
// them. Because execve keeps ignored signals ignored, the guest of
// solo5-spt inherits them from the tender's parent. Image.IgnoredSignals
// set to this value gives the guest the same dispositions under ntender.
func InitiallyIgnoredSignals() uint64 {
	return uint64(C.ntl_initially_ignored_signals())
}
