package measure

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tracefsMount is the mount point used when tracefs is not mounted yet.
const tracefsMount = "/sys/kernel/tracing"

// mountTracefs returns the tracefs mount point, mounting tracefs at
// /sys/kernel/tracing first when /proc/mounts lists none. A mount made
// here is unmounted by s.Restore.
func mountTracefs(s *Settings) (string, error) {
	if dir, ok := findTracefs(); ok {
		return dir, nil
	}
	if err := unix.Mount("nodev", tracefsMount, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("mounting tracefs at %s: %w", tracefsMount, err)
	}
	s.AddUndo("unmounting "+tracefsMount, func() error {
		return unix.Unmount(tracefsMount, 0)
	})
	return tracefsMount, nil
}

// findTracefs returns the first tracefs mount point in /proc/mounts,
// preferring /sys/kernel/tracing.
func findTracefs() (string, bool) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "", false
	}
	defer f.Close()
	var found []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 3 && fields[2] == "tracefs" {
			found = append(found, fields[1])
		}
	}
	for _, dir := range found {
		if dir == tracefsMount {
			return dir, true
		}
	}
	if len(found) > 0 {
		return found[0], true
	}
	return "", false
}

// instance is a tracefs instance: a ring buffer with its own events,
// tracer and pid filters, so that measuring leaves the top-level
// buffer, which other tools may use, untouched.
type instance struct {
	dir string
}

// newInstance creates instance name under root with a buffer of
// bufferKiB per CPU and the global clock, which is comparable across
// CPUs. It sets event-fork and function-fork, so that the threads and
// children of a traced pid are traced too. Every change is recorded in s.
func newInstance(s *Settings, root, name string, bufferKiB int) (*instance, error) {
	in := &instance{dir: filepath.Join(root, "instances", name)}
	if err := s.Mkdir(in.dir); err != nil {
		return nil, err
	}
	steps := [][2]string{
		{"tracing_on", "0"},
		{"buffer_size_kb", strconv.Itoa(bufferKiB)},
		{"trace_clock", "global"},
		{"options/event-fork", "1"},
		{"options/function-fork", "1"},
	}
	for _, step := range steps {
		if err := s.Write(in.path(step[0]), step[1]); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func (in *instance) path(name string) string {
	return filepath.Join(in.dir, name)
}

// functionTracerAllowed reports whether the kernel lets this instance
// use the function tracer, and if not, why. Tracing is off during the
// probe, so it records nothing.
func (in *instance) functionTracerAllowed() (bool, string) {
	err := writeSetting(in.path("current_tracer"), "function")
	if err != nil {
		reason := err.Error()
		if errors.Is(err, syscall.EPERM) {
			reason = "the kernel rejects the function tracer (EPERM), as some nested-virtualization hosts do"
		}
		return false, reason
	}
	if err := writeSetting(in.path("current_tracer"), "nop"); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// clear empties the instance's ring buffer.
func (in *instance) clear() error {
	return writeSetting(in.path("trace"), "")
}

// pipePollInterval is how long a pipeReader waits when trace_pipe is
// empty before it reads again.
const pipePollInterval = 10 * time.Millisecond

// pipeReader reads an instance's trace_pipe, which consumes the events
// it returns, without blocking in the kernel: an empty pipe is read again
// after pipePollInterval, and is the end of the input once stop is
// closed. So the caller closes stop only after tracing is off.
type pipeReader struct {
	fd   int
	stop <-chan struct{}
}

// openPipe opens the instance's trace_pipe for reading.
func (in *instance) openPipe(stop <-chan struct{}) (*pipeReader, error) {
	path := in.path("trace_pipe")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &pipeReader{fd: fd, stop: stop}, nil
}

func (p *pipeReader) Read(b []byte) (int, error) {
	for {
		// stop is checked before the read, so that the read after it
		// closes drains what was written before.
		stopped := isClosed(p.stop)
		n, err := unix.Read(p.fd, b)
		switch {
		case n > 0:
			return n, nil
		case err == unix.EINTR:
			continue
		case err != nil && err != unix.EAGAIN:
			return 0, fmt.Errorf("reading trace_pipe: %w", err)
		}
		// Empty for now (EAGAIN, or 0 bytes).
		if stopped {
			return 0, io.EOF
		}
		select {
		case <-p.stop:
		case <-time.After(pipePollInterval):
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (p *pipeReader) Close() error {
	return unix.Close(p.fd)
}

// lostEvents returns the events the instance's ring buffer overwrote or
// dropped, summed over the CPUs (per_cpu/cpuN/stats).
func (in *instance) lostEvents() (int64, error) {
	stats, err := filepath.Glob(in.path("per_cpu/cpu*/stats"))
	if err != nil {
		return 0, err
	}
	var lost int64
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", path, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			key, value, ok := strings.Cut(line, ":")
			if !ok || (key != "overrun" && key != "dropped events") {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("reading %s: %q: %w", path, line, err)
			}
			lost += n
		}
	}
	return lost, nil
}
