package vmm

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ntender/ntender/abi"
	"golang.org/x/sys/unix"
)

// ringFixture is guest memory of 4 MiB whose top 2 MiB hold the ring, as
// solo5-hvt v0.12.1 reserves it, with fake net devices at handles 1 and 2.
type ringFixture struct {
	mem  []byte
	gm   GuestMemory
	ring []byte
	nets [abi.ManifestMaxEntries]netDevice
	tap1 *fakeNet
}

func newRingFixture(t *testing.T) *ringFixture {
	t.Helper()
	f := &ringFixture{mem: make([]byte, 4<<20)}
	f.gm = NewGuestMemory(f.mem, 2<<20)
	f.ring = f.mem[2<<20 : 2<<20+ringSize]
	f.tap1 = &fakeNet{}
	f.nets[1] = f.tap1
	f.nets[2] = &fakeNet{}
	return f
}

// submit appends a submission entry and advances ent_tail, as the guest
// does.
func (f *ringFixture) submit(op, handle uint32, data uint64, n, id uint32) {
	tail := atomic.LoadUint32(ringWord(f.ring, ringEntTail))
	ent := f.ring[ringEntries+int(tail&ringMask)*ringEntrySize:]
	le.PutUint32(ent[entOperation:], op)
	le.PutUint32(ent[entHandle:], handle)
	le.PutUint64(ent[entData:], data)
	le.PutUint32(ent[entLen:], n)
	le.PutUint32(ent[entID:], id)
	atomic.StoreUint32(ringWord(f.ring, ringEntTail), tail+1)
}

func (f *ringFixture) newRing(t *testing.T) *netRing {
	t.Helper()
	r, err := newNetRing(f.ring, &f.gm, &f.nets)
	if err != nil {
		t.Fatalf("newNetRing: %v", err)
	}
	t.Cleanup(func() { unix.Close(r.eventFd) })
	return r
}

func TestRingLayout(t *testing.T) {
	if ringCommits+ringLen*ringCommitSz != ringSize {
		t.Errorf("commits end at %d, want sizeof(struct hvt_ring) = %d",
			ringCommits+ringLen*ringCommitSz, ringSize)
	}
	if ringEntries+ringLen*ringEntrySize != ringCommits {
		t.Errorf("entries end at %d, want the commits offset %d",
			ringEntries+ringLen*ringEntrySize, ringCommits)
	}
}

func TestRingProcess(t *testing.T) {
	f := newRingFixture(t)
	r := f.newRing(t)
	copy(f.mem[0x30000:], "frame one")
	copy(f.mem[0x31000:], "frame two")
	f.tap1.rx = [][]byte{[]byte("reply")}

	f.submit(ringOpNetWrite, 1, 0x30000, 9, 1)
	f.submit(ringOpNetWrite, 9, 0x30000, 9, 2) // unknown handle: skipped
	f.submit(7, 1, 0x30000, 9, 3)              // unknown operation: skipped
	f.submit(ringOpNetWrite, 1, 0x31000, 9, 4)
	f.submit(ringOpNetRead, 1, 0x40000, 1514, 5)
	f.submit(ringOpNetRead, 1, 0x40000, 1514, 6) // no frame: AGAIN
	f.submit(ringOpNetRead, 5, 0x40000, 1514, 7) // bad handle: EINVAL

	if err := r.process(); err != nil {
		t.Fatalf("process: %v", err)
	}
	if got := atomic.LoadUint32(ringWord(f.ring, ringEntHead)); got != 7 {
		t.Errorf("ent_head = %d, want 7", got)
	}
	if got := atomic.LoadUint32(ringWord(f.ring, ringComTail)); got != 3 {
		t.Errorf("com_tail = %d, want 3", got)
	}
	if len(f.tap1.tx) != 2 || string(f.tap1.tx[0]) != "frame one" ||
		string(f.tap1.tx[1]) != "frame two" {
		t.Errorf("tap got %q, want the two frames", f.tap1.tx)
	}
	if got := string(f.mem[0x40000 : 0x40000+5]); got != "reply" {
		t.Errorf("read buffer = %q, want \"reply\"", got)
	}

	want := []struct {
		id, n uint32
		ret   abi.Result
	}{{5, 5, abi.ResultOK}, {6, 0, abi.ResultAgain}, {7, 0, abi.ResultEINVAL}}
	for i, w := range want {
		com := f.ring[ringCommits+i*ringCommitSz:]
		id, ret, n := le.Uint32(com[comID:]), abi.Result(le.Uint32(com[comRet:])),
			le.Uint32(com[comLen:])
		if id != w.id || ret != w.ret || n != w.n {
			t.Errorf("commit %d = id %d ret %d len %d, want id %d ret %d len %d",
				i, id, ret, n, w.id, w.ret, w.n)
		}
	}
}

func TestRingBadBufferEndsGuest(t *testing.T) {
	for _, c := range []struct {
		name string
		op   uint32
		data uint64
	}{
		{"write outside guest memory", ringOpNetWrite, 2<<20 - 4},
		{"read into the ring", ringOpNetRead, 2 << 20},
	} {
		f := newRingFixture(t)
		r := f.newRing(t)
		f.submit(c.op, 1, c.data, 64, 1)
		err := r.process()
		if err == nil || !strings.Contains(err.Error(), "Invalid guest access") {
			t.Errorf("%s: error = %v, want an invalid guest access", c.name, err)
		}
	}
}

func TestRingWrapsAround(t *testing.T) {
	f := newRingFixture(t)
	r := f.newRing(t)
	// Start near the 32-bit wrap of the free-running indices.
	start := uint32(1<<32 - 2)
	for _, off := range []int{ringEntTail, ringEntHead, ringComHead, ringComTail} {
		atomic.StoreUint32(ringWord(f.ring, off), start)
	}
	f.tap1.rx = [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	for i := uint32(0); i < 4; i++ {
		f.submit(ringOpNetRead, 1, 0x40000+uint64(i)*0x1000, 64, i)
	}
	if err := r.process(); err != nil {
		t.Fatalf("process: %v", err)
	}
	if got := atomic.LoadUint32(ringWord(f.ring, ringComTail)); got != start+4 {
		t.Errorf("com_tail = %d, want %d", got, start+4)
	}
	for i := uint32(0); i < 4; i++ {
		idx := (start + i) & ringMask
		com := f.ring[ringCommits+int(idx)*ringCommitSz:]
		if id := le.Uint32(com[comID:]); id != i {
			t.Errorf("commit slot %d has id %d, want %d", idx, id, i)
		}
	}
}

// TestRingGoroutineKick runs the I/O goroutine: it goes idle, sets
// needs_kick, and serves a submission after an eventfd kick, as KVM
// delivers a guest's OUT to port 0x600.
func TestRingGoroutineKick(t *testing.T) {
	f := newRingFixture(t)
	r, err := newNetRing(f.ring, &f.gm, &f.nets)
	if err != nil {
		t.Fatalf("newNetRing: %v", err)
	}
	failed := make(chan error, 1)
	r.start(func(err error) { failed <- err })

	needsKick := ringWord(f.ring, ringNeedsKick)
	waitFor(t, "needs_kick", func() bool { return atomic.LoadUint32(needsKick) == 1 })

	copy(f.mem[0x30000:], "kicked frame")
	f.submit(ringOpNetWrite, 1, 0x30000, 12, 1)
	var one [8]byte
	le.PutUint64(one[:], 1)
	if _, err := unix.Write(r.eventFd, one[:]); err != nil {
		t.Fatalf("kicking the eventfd: %v", err)
	}
	entHead := ringWord(f.ring, ringEntHead)
	waitFor(t, "ent_head to advance", func() bool { return atomic.LoadUint32(entHead) == 1 })

	if err := r.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if len(f.tap1.tx) != 1 || string(f.tap1.tx[0]) != "kicked frame" {
		t.Errorf("tap got %q, want the kicked frame", f.tap1.tx)
	}
	select {
	case err := <-failed:
		t.Errorf("ring reported %v", err)
	default:
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
