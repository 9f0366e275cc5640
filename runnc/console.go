package runnc

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// newPty opens a pseudoterminal pair, as posix_openpt(3), unlockpt(3) and
// ptsname(3) do.
func newPty() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pseudoterminal: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("reading the pseudoterminal number: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	return master, slave, nil
}

// sendConsole sends the pseudoterminal master to the unix socket at
// socketPath as one SCM_RIGHTS message whose payload is the file's name,
// which is how runc hands the console to containerd.
func sendConsole(socketPath string, master *os.File) error {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socketPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("connecting to the console socket %s: %w", socketPath, err)
	}
	defer conn.Close()
	rights := unix.UnixRights(int(master.Fd()))
	if _, _, err := conn.WriteMsgUnix([]byte(master.Name()), rights, nil); err != nil {
		return fmt.Errorf("sending the console to %s: %w", socketPath, err)
	}
	return nil
}
