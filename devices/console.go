package devices

import (
	"io"

	"golang.org/x/sys/unix"
)

// Console writes the guest's console output, normally to the tender's
// standard output.
type Console struct {
	W io.Writer
}

// Write writes p with one call to W.Write. Errors and short writes are
// ignored, because solo5_console_write cannot fail and the upstream tenders
// ignore them too.
func (c Console) Write(p []byte) {
	_, _ = c.W.Write(p)
}

// WallClock returns CLOCK_REALTIME in nanoseconds since the Unix epoch.
func WallClock() uint64 {
	return clockNs(unix.CLOCK_REALTIME)
}

// MonotonicClock returns CLOCK_MONOTONIC in nanoseconds.
func MonotonicClock() uint64 {
	return clockNs(unix.CLOCK_MONOTONIC)
}

// clockNs reads clock with a clock_gettime(2) system call. It does not go
// through the vDSO, so a seccomp filter on the tender must allow the call.
// It returns 0 on error, which the call reports only for an invalid clock
// or pointer.
func clockNs(clock int32) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}
