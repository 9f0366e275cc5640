// Package ptrace starts a command stopped right after its execve, so that
// a caller can set up measurements of exactly that process before its
// first instruction runs. It also reads the peak memory of a process at
// its exit.
//
// The kernel accepts ptrace requests for a tracee only from the thread
// that traces it, so every function here runs its whole ptrace session on
// one locked OS thread.
package ptrace

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StartGated starts cmd, which must not have been started, and stops it
// after its execve succeeds. It calls setup with the pid and then lets
// the process run. The caller waits for cmd with cmd.Wait as usual. If
// setup fails, the process is killed and reaped, and the error returned.
func StartGated(cmd *exec.Cmd, setup func(pid int) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread stays locked and is discarded when the goroutine
		// ends, so no later goroutine inherits a tracer thread.
		errc <- startGated(cmd, setup)
	}()
	return <-errc
}

func startGated(cmd *exec.Cmd, setup func(pid int) error) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Ptrace = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	if err := waitExecStop(pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	if err := setup(pid); err != nil {
		cmd.Process.Kill()
		unix.PtraceDetach(pid)
		cmd.Wait()
		return err
	}
	if err := unix.PtraceDetach(pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("releasing process %d: %w", pid, err)
	}
	return nil
}

// waitExecStop waits for the SIGTRAP stop that follows the execve of a
// process started with PTRACE_TRACEME.
func waitExecStop(pid int) error {
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return fmt.Errorf("waiting for process %d to stop after execve: %w", pid, err)
	}
	if !ws.Stopped() || ws.StopSignal() != unix.SIGTRAP {
		return fmt.Errorf("process %d did not stop after execve (wait status %#x)", pid, uint32(ws))
	}
	return nil
}

// PeakRSS runs cmd, which must not have been started, to its end. It
// returns the exit status (128+N for death by signal N) and VmHWM in KiB,
// the peak resident set of the last program image. VmHWM is read from
// /proc/PID/status at the ptrace exit stop, just before the process ends.
//
// getrusage's ru_maxrss cannot give this figure for a child of a large
// process: os/exec starts children with vfork, and execve folds the
// parent's peak, from the shared memory map, into the child's ru_maxrss.
//
// cmd.Stdout and cmd.Stderr must be nil or *os.File, because cmd.Wait,
// which copies other writers, is never called. A process still running
// after timeout is killed with SIGKILL, and its result is ErrTimeout.
func PeakRSS(cmd *exec.Cmd, timeout time.Duration) (status int, peakKiB int64, err error) {
	type result struct {
		status int
		peak   int64
		err    error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		s, p, err := peakRSS(cmd, timeout)
		done <- result{s, p, err}
	}()
	r := <-done
	return r.status, r.peak, r.err
}

// ErrTimeout is returned by PeakRSS for a process it killed at the
// timeout.
var ErrTimeout = errors.New("timed out")

func peakRSS(cmd *exec.Cmd, timeout time.Duration) (int, int64, error) {
	for _, w := range []any{cmd.Stdout, cmd.Stderr} {
		if _, ok := w.(*os.File); w != nil && !ok {
			return 0, 0, fmt.Errorf("measuring peak RSS: stdout and stderr must be files")
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Ptrace = true
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	defer cmd.Process.Release()
	// A pidfd names this process even after it is reaped, so the timer
	// can never signal another process that reuses the pid.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		cmd.Process.Kill()
		return 0, 0, fmt.Errorf("opening a pidfd for process %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	})
	defer timer.Stop()

	if err := waitExecStop(pid); err != nil {
		cmd.Process.Kill()
		return 0, 0, err
	}
	if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_TRACEEXIT|unix.PTRACE_O_TRACEEXEC); err != nil {
		cmd.Process.Kill()
		return 0, 0, fmt.Errorf("setting ptrace options on %d: %w", pid, err)
	}
	var peak int64 = -1
	signal := 0
	for {
		if err := unix.PtraceCont(pid, signal); err != nil {
			return 0, 0, fmt.Errorf("continuing process %d: %w", pid, err)
		}
		signal = 0
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			return 0, 0, fmt.Errorf("waiting for process %d: %w", pid, err)
		}
		switch {
		case (ws.Exited() || ws.Signaled()) && timedOut.Load():
			return 0, 0, fmt.Errorf("process %d: %w after %v", pid, ErrTimeout, timeout)
		case ws.Exited():
			return ws.ExitStatus(), peak, checkPeak(peak, pid)
		case ws.Signaled():
			return 128 + int(ws.Signal()), peak, checkPeak(peak, pid)
		case !ws.Stopped():
			continue
		case ws.TrapCause() == unix.PTRACE_EVENT_EXIT:
			v, err := readVmHWM(pid)
			if err != nil {
				return 0, 0, err
			}
			peak = v
		case ws.TrapCause() == unix.PTRACE_EVENT_EXEC:
			// A later execve (the spt backend re-executes itself)
			// starts a new image whose peak the exit stop reads.
		default:
			// Deliver the signal that stopped the process, such as the
			// Go runtime's preemption signal.
			signal = int(ws.StopSignal())
		}
	}
}

func checkPeak(peak int64, pid int) error {
	if peak < 0 {
		return fmt.Errorf("process %d exited without an exit stop; no peak RSS", pid)
	}
	return nil
}

// readVmHWM returns the VmHWM line of /proc/PID/status in KiB.
func readVmHWM(pid int) (int64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		value, ok := strings.CutPrefix(s.Text(), "VmHWM:")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("reading peak RSS: unexpected line %q in %s", s.Text(), path)
		}
		return strconv.ParseInt(fields[0], 10, 64)
	}
	return 0, fmt.Errorf("reading peak RSS: no VmHWM line in %s", path)
}
