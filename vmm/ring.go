package vmm

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/abi"
)

// Layout of struct hvt_ring (Solo5 v0.11+, 49280 bytes). The guest writes
// ent_tail, com_head and the submission entries. The host writes ent_head,
// com_tail, needs_kick and the commits.
const (
	ringEntTail   = 0
	ringComHead   = 4
	ringEntHead   = 64
	ringComTail   = 68
	ringNeedsKick = 72
	ringEntries   = 128
	ringCommits   = 32896

	ringLen       = 1024
	ringMask      = ringLen - 1
	ringEntrySize = 32
	ringCommitSz  = 16

	// Submission entry fields.
	entOperation = 0  // u32
	entHandle    = 4  // u32
	entData      = 8  // u64 guest address
	entLen       = 16 // u32
	entID        = 20 // u32

	// Commit entry fields.
	comID  = 0 // u32
	comRet = 4 // u32 (solo5_result_t)
	comLen = 8 // u32

	ringOpNetWrite = 1
	ringOpNetRead  = 2

	// ringSpins is how many times the I/O goroutine checks for new
	// submissions before it sets needs_kick and blocks on the eventfd.
	ringSpins = 4096
)

// netRing is the host side of the hvt net ring: a goroutine on its own
// locked OS thread that takes the guest's submissions, writes frames to the
// taps and completes reads.
type netRing struct {
	ring []byte // the ring area in guest memory, ringSize bytes
	mem  *GuestMemory
	nets *[abi.ManifestMaxEntries]netDevice
	// eventFd is the eventfd KVM signals on a guest kick. close also
	// writes it to wake the goroutine.
	eventFd int
	stop    atomic.Bool
	started bool
	done    chan error
}

// newNetRing prepares the ring at ring (already zeroed). It does not start
// the goroutine.
func newNetRing(ring []byte, mem *GuestMemory,
	nets *[abi.ManifestMaxEntries]netDevice) (*netRing, error) {
	if len(ring) < ringSize {
		return nil, fmt.Errorf("net ring area is %d bytes, need %d",
			len(ring), ringSize)
	}
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating the net ring eventfd: %w", err)
	}
	return &netRing{
		ring:    ring[:ringSize:ringSize],
		mem:     mem,
		nets:    nets,
		eventFd: fd,
		done:    make(chan error, 1),
	}, nil
}

// start runs the I/O loop in a new goroutine. onFatal is called from that
// goroutine when the loop ends with an error, before done receives it.
func (r *netRing) start(onFatal func(error)) {
	r.started = true
	go func() {
		runtime.LockOSThread()
		err := r.loop()
		runtime.UnlockOSThread()
		if err != nil && !r.stop.Load() {
			onFatal(err)
		}
		r.done <- err
	}()
}

// close stops the goroutine, waits for it and closes the eventfd. It
// returns the loop's error, if the loop failed.
func (r *netRing) close() error {
	var err error
	if r.started {
		r.stop.Store(true)
		var wake [8]byte
		le.PutUint64(wake[:], 1)
		_, _ = unix.Write(r.eventFd, wake[:])
		err = <-r.done
	}
	unix.Close(r.eventFd)
	return err
}

func (r *netRing) loop() error {
	entHead := ringWord(r.ring, ringEntHead)
	entTail := ringWord(r.ring, ringEntTail)
	needsKick := ringWord(r.ring, ringNeedsKick)
	var buf [8]byte

	for !r.stop.Load() {
		found := false
		for i := 0; i < ringSpins; i++ {
			if atomic.LoadUint32(entHead) != atomic.LoadUint32(entTail) {
				found = true
				break
			}
		}

		if !found {
			// The atomic store is a full barrier on amd64 (XCHG), so
			// needs_kick is visible to the guest before the re-check
			// reads ent_tail. A guest that submitted just before the
			// store and did not kick is caught by the re-check.
			atomic.StoreUint32(needsKick, 1)
			if atomic.LoadUint32(entHead) == atomic.LoadUint32(entTail) {
				_, err := unix.Read(r.eventFd, buf[:])
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					return fmt.Errorf("reading the net ring eventfd: %w",
						err)
				}
			}
			atomic.StoreUint32(needsKick, 0)
		}

		if err := r.process(); err != nil {
			return err
		}
	}
	return nil
}

// process serves every submission up to the current ent_tail. Writes are
// fire-and-forget: the guest gets no completion, and ent_head advances
// once per batch of writes. A read completes at once, with AGAIN when no
// frame is queued.
func (r *netRing) process() error {
	entHead := ringWord(r.ring, ringEntHead)
	tail := atomic.LoadUint32(ringWord(r.ring, ringEntTail))
	head := atomic.LoadUint32(entHead)

	for head != tail {
		ent := r.ring[ringEntries+int(head&ringMask)*ringEntrySize:][:ringEntrySize]
		switch le.Uint32(ent[entOperation:]) {
		case ringOpNetWrite:
			if err := r.write(ent); err != nil {
				return err
			}
			head++
		case ringOpNetRead:
			// Publish the writes before the read's completion.
			atomic.StoreUint32(entHead, head)
			if err := r.read(ent); err != nil {
				return err
			}
			head++
			atomic.StoreUint32(entHead, head)
		default:
			head++
		}
	}
	atomic.StoreUint32(entHead, head)
	return nil
}

// write sends one frame. An unknown handle is skipped, as solo5-hvt does.
// A bad buffer or a host write error ends the guest.
func (r *netRing) write(ent []byte) error {
	handle := le.Uint32(ent[entHandle:])
	if handle >= abi.ManifestMaxEntries || r.nets[handle] == nil {
		return nil
	}
	buf, err := r.mem.Slice(le.Uint64(ent[entData:]),
		uint64(le.Uint32(ent[entLen:])))
	if err != nil {
		return fmt.Errorf("net ring write: %w", err)
	}
	if _, err := r.nets[handle].Write(buf); err != nil {
		//lint:ignore ST1005 the capitalised upstream message is what scripts search for
		return fmt.Errorf("Fatal write error on net device: %w", err)
	}
	return nil
}

// read completes one read submission into the next commit slot. A bad
// handle or a host read error completes with EINVAL, as in solo5-hvt. A
// bad buffer ends the guest.
func (r *netRing) read(ent []byte) error {
	comTail := ringWord(r.ring, ringComTail)
	tail := atomic.LoadUint32(comTail)
	com := r.ring[ringCommits+int(tail&ringMask)*ringCommitSz:][:ringCommitSz]

	le.PutUint32(com[comID:], le.Uint32(ent[entID:]))
	res, n := abi.ResultEINVAL, 0
	handle := le.Uint32(ent[entHandle:])
	if handle < abi.ManifestMaxEntries && r.nets[handle] != nil {
		buf, err := r.mem.WritableSlice(le.Uint64(ent[entData:]),
			uint64(le.Uint32(ent[entLen:])))
		if err != nil {
			return fmt.Errorf("net ring read: %w", err)
		}
		var rerr error
		n, res, rerr = r.nets[handle].Read(buf)
		if rerr != nil {
			res, n = abi.ResultEINVAL, 0
		}
	}
	if res != abi.ResultOK {
		n = 0
	}
	le.PutUint32(com[comRet:], uint32(res))
	le.PutUint32(com[comLen:], uint32(n))
	atomic.StoreUint32(comTail, tail+1)
	return nil
}
