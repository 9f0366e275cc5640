package devices

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

// Poller implements solo5_yield for the network devices: an epoll set that
// contains each tap with the device's manifest index as event data, and a
// CLOCK_MONOTONIC timerfd with event data abi.SPTInternalTimerfd. This is
// the set the upstream tenders build, and spt guests wait on it directly.
// A Poller is not safe for concurrent use.
type Poller struct {
	epollFd int
	timerFd int
	events  []unix.EpollEvent
	closed  bool
}

// NewPoller creates the epoll set and the timer for nets. Manifest indices
// must be below 64, because the ready set is a 64-bit mask.
func NewPoller(nets []*Net) (*Poller, error) {
	epollFd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating the yield epoll set: %w", err)
	}
	timerFd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(epollFd)
		return nil, fmt.Errorf("creating the yield timerfd: %w", err)
	}
	p := &Poller{
		epollFd: epollFd,
		timerFd: timerFd,
		events:  make([]unix.EpollEvent, len(nets)+1),
	}

	if err := p.add(timerFd, abi.SPTInternalTimerfd); err != nil {
		p.Close()
		return nil, fmt.Errorf("adding the yield timerfd to the epoll set: %w", err)
	}
	for _, n := range nets {
		if n.Index <= 0 || n.Index >= abi.ManifestMaxEntries {
			p.Close()
			return nil, fmt.Errorf("network device %s: manifest index %d is outside 1..%d",
				n.Name, n.Index, abi.ManifestMaxEntries-1)
		}
		if err := p.add(n.Fd, uint32(n.Index)); err != nil {
			p.Close()
			return nil, fmt.Errorf("adding tap %s of device %s to the epoll set: %w",
				n.Iface, n.Name, err)
		}
	}
	return p, nil
}

// add registers fd for EPOLLIN with the 64-bit event data set to data.
// unix.EpollEvent splits the data into Fd (low 32 bits) and Pad (high 32
// bits). Pad stays 0 because spt guests compare the whole 64-bit value.
func (p *Poller) add(fd int, data uint32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(data)}
	return unix.EpollCtl(p.epollFd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// EpollFd returns the epoll set's file descriptor.
func (p *Poller) EpollFd() int { return p.epollFd }

// TimerFd returns the timerfd's file descriptor.
func (p *Poller) TimerFd() int { return p.timerFd }

// Poll waits until a network device is readable or timeoutNs nanoseconds
// have passed. It arms the timer with 1 ORed into the nanoseconds, as
// upstream does, because a zero value would disarm the timer and the wait
// would never end. It returns the ready set (bit i set for manifest index
// i) and the number of readable devices. The timerfd is never read, because
// re-arming it resets its expiration count. EINTR is retried.
func (p *Poller) Poll(timeoutNs uint64) (readySet uint64, n int, err error) {
	spec := unix.ItimerSpec{
		Value: unix.Timespec{
			Sec:  int64(timeoutNs / 1e9),
			Nsec: int64(timeoutNs%1e9) | 1,
		},
	}
	if err := unix.TimerfdSettime(p.timerFd, 0, &spec, nil); err != nil {
		return 0, 0, fmt.Errorf("arming the yield timer: %w", err)
	}

	var count int
	for {
		count, err = unix.EpollWait(p.epollFd, p.events, -1)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("waiting on the yield epoll set: %w", err)
	}

	for _, ev := range p.events[:count] {
		data := uint32(ev.Fd)
		if data == abi.SPTInternalTimerfd {
			continue
		}
		readySet |= 1 << data
		n++
	}
	return readySet, n, nil
}

// Close closes the epoll set and the timerfd, but not the taps. It is safe
// to call more than once.
func (p *Poller) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	err := unix.Close(p.timerFd)
	if err2 := unix.Close(p.epollFd); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("closing the yield poller: %w", err)
	}
	return nil
}
