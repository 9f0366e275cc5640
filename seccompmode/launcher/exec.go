package launcher

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exec writes image to a sealed memfd and replaces the process with path,
// run with argv and env plus EnvVar, keeping the fds listed in
// image.KeepFds open. On success it does not return: the constructor in
// the new process image starts the guest. On failure it restores
// FD_CLOEXEC on those fds and returns the error.
//
// Exec holds syscall.ForkLock from clearing FD_CLOEXEC to the end, so a
// child process that another goroutine starts through os/exec does not
// inherit the kept fds.
func Exec(path string, argv, env []string, image *Image) error {
	data, err := image.MarshalBinary()
	if err != nil {
		return err
	}
	memfd, err := writeSealedMemfd(data)
	if err != nil {
		return err
	}
	defer unix.Close(memfd)

	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	inherited := append([]int{memfd}, image.KeepFds...)
	for i, fd := range inherited {
		if err := setCloexec(fd, false); err != nil {
			restoreCloexec(inherited[:i])
			return fmt.Errorf("making fd %d inheritable: %w", fd, err)
		}
	}

	env = append(withoutVar(env, EnvVar), EnvVar+"="+strconv.Itoa(memfd))
	err = unix.Exec(path, argv, env)
	restoreCloexec(inherited)
	return fmt.Errorf("executing %s to launch the guest: %w", path, err)
}

// writeSealedMemfd returns a memfd with FD_CLOEXEC that holds data and is
// sealed against any change, so the new process image reads exactly data.
func writeSealedMemfd(data []byte) (int, error) {
	fd, err := unix.MemfdCreate("ntender-spt-launch", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("creating the launch image memfd: %w", err)
	}
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("writing the launch image: %w", err)
		}
		rest = rest[n:]
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("sealing the launch image memfd: %w", err)
	}
	return fd, nil
}

func setCloexec(fd int, on bool) error {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.FD_CLOEXEC
	} else {
		flags &^= unix.FD_CLOEXEC
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags)
	return err
}

// restoreCloexec sets FD_CLOEXEC again after a failed exec. Errors are
// ignored: the fds were valid a moment ago, and the exec error is the one
// to report.
func restoreCloexec(fds []int) {
	for _, fd := range fds {
		_ = setCloexec(fd, true)
	}
}

// withoutVar returns env without any entry for the variable name.
func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
