package devices

import (
	"math"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

// pipeNet returns a Net whose descriptor is the read end of a pipe, and
// the write end. The poller treats it like a tap.
func pipeNet(t *testing.T, index int) (*Net, int) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	n := &Net{Name: "pipe", Index: index, Iface: "pipe", Fd: fds[0], MTU: 1500}
	t.Cleanup(func() {
		n.Close()
		unix.Close(fds[1])
	})
	return n, fds[1]
}

func newTestPoller(t *testing.T, nets ...*Net) *Poller {
	t.Helper()
	p, err := NewPoller(nets)
	if err != nil {
		t.Fatalf("NewPoller: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPollerTimeout(t *testing.T) {
	p := newTestPoller(t)
	for _, timeout := range []uint64{0, 1, 1e6} {
		set, n, err := p.Poll(timeout)
		if err != nil {
			t.Fatalf("Poll(%d): %v", timeout, err)
		}
		if set != 0 || n != 0 {
			t.Errorf("Poll(%d) = %#x, %d, want 0, 0", timeout, set, n)
		}
	}
}

func TestPollerTimeoutWithIdleNet(t *testing.T) {
	n, _ := pipeNet(t, 3)
	p := newTestPoller(t, n)
	set, count, err := p.Poll(1e6)
	if err != nil {
		t.Fatal(err)
	}
	if set != 0 || count != 0 {
		t.Errorf("Poll = %#x, %d, want 0, 0", set, count)
	}
}

func TestPollerReadyBit(t *testing.T) {
	idle, _ := pipeNet(t, 2)
	ready, writeFd := pipeNet(t, 63)
	p := newTestPoller(t, idle, ready)

	if _, err := unix.Write(writeFd, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// The largest timeout also checks that the timer accepts it. A lost
	// wake-up would hang the test until the go test timeout.
	set, count, err := p.Poll(math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	if set != 1<<63 {
		t.Errorf("ready set = %#x, want %#x", set, uint64(1)<<63)
	}
	if count != 1 {
		t.Errorf("count = %d, want 1", count)
	}
}

func TestPollerBothReady(t *testing.T) {
	a, writeA := pipeNet(t, 1)
	b, writeB := pipeNet(t, 5)
	p := newTestPoller(t, a, b)
	for _, fd := range []int{writeA, writeB} {
		if _, err := unix.Write(fd, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	set, count, err := p.Poll(10e9)
	if err != nil {
		t.Fatal(err)
	}
	if set != 1<<1|1<<5 {
		t.Errorf("ready set = %#x, want 0x22", set)
	}
	if count != 2 {
		t.Errorf("count = %d, want 2", count)
	}
}

func TestPollerRejectsIndex(t *testing.T) {
	for _, index := range []int{0, abi.ManifestMaxEntries, -1} {
		n, _ := pipeNet(t, index)
		if p, err := NewPoller([]*Net{n}); err == nil {
			p.Close()
			t.Errorf("NewPoller accepted manifest index %d", index)
		}
	}
}

func TestPollerTimerData(t *testing.T) {
	p := newTestPoller(t)
	if p.EpollFd() < 0 || p.TimerFd() < 0 || p.EpollFd() == p.TimerFd() {
		t.Fatalf("EpollFd, TimerFd = %d, %d", p.EpollFd(), p.TimerFd())
	}
	// Let the timer expire, then read the raw event the way an spt guest
	// does: the 64-bit data must be exactly 0xFFFFFFFE.
	if _, _, err := p.Poll(1); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 1)
	n, err := unix.EpollWait(p.EpollFd(), events, -1)
	if err != nil || n != 1 {
		t.Fatalf("EpollWait = %d, %v", n, err)
	}
	data := uint64(uint32(events[0].Fd)) | uint64(uint32(events[0].Pad))<<32
	if data != abi.SPTInternalTimerfd {
		t.Errorf("timer event data = %#x, want %#x", data, abi.SPTInternalTimerfd)
	}
}

func TestPollerClose(t *testing.T) {
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}
