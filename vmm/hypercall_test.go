package vmm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ntender/ntender/abi"
)

// fakeBlock is an in-memory block device with the devices.Block range
// checks left to the hypercall layer.
type fakeBlock struct{ data []byte }

func (b *fakeBlock) ReadAt(p []byte, off uint64) (abi.Result, error) {
	copy(p, b.data[off:])
	return abi.ResultOK, nil
}

func (b *fakeBlock) WriteAt(p []byte, off uint64) (abi.Result, error) {
	copy(b.data[off:], p)
	return abi.ResultOK, nil
}

// fakeNet queues frames for Read and records frames from Write.
type fakeNet struct {
	rx      [][]byte
	tx      [][]byte
	readErr error
}

func (n *fakeNet) Read(p []byte) (int, abi.Result, error) {
	if n.readErr != nil {
		return 0, 0, n.readErr
	}
	if len(n.rx) == 0 {
		return 0, abi.ResultAgain, nil
	}
	c := copy(p, n.rx[0])
	n.rx = n.rx[1:]
	return c, abi.ResultOK, nil
}

func (n *fakeNet) Write(p []byte) (abi.Result, error) {
	n.tx = append(n.tx, bytes.Clone(p))
	return abi.ResultOK, nil
}

// fakePoller records the timeouts it was asked for and returns ready
// after the given number of calls.
type fakePoller struct {
	timeouts []uint64
	readyAt  int
	set      uint64
}

func (p *fakePoller) Poll(timeoutNs uint64) (uint64, int, error) {
	p.timeouts = append(p.timeouts, timeoutNs)
	if len(p.timeouts) == p.readyAt {
		return p.set, 1, nil
	}
	return 0, 0, nil
}

// testCalls is a hypercall table over a plain byte slice, with a console
// buffer, fixed clocks and no devices.
type testCalls struct {
	*hypercalls
	mem     []byte
	console *bytes.Buffer
	now     uint64
}

func newTestCalls(t *testing.T, size uint64) *hypercalls {
	return newTestCallsFull(t, size).hypercalls
}

func newTestCallsFull(t *testing.T, size uint64) *testCalls {
	t.Helper()
	tc := &testCalls{mem: make([]byte, size), console: &bytes.Buffer{}}
	gm := NewGuestMemory(tc.mem, size)
	tc.hypercalls = &hypercalls{
		mem:       &gm,
		console:   tc.console,
		wallClock: func() uint64 { return 1_700_000_000_123_456_789 },
		monoClock: func() uint64 { tc.now += pollSlice; return tc.now },
		poll:      &fakePoller{},
		stop:      &atomic.Bool{},
	}
	return tc
}

// call runs hypercall nr with its argument struct at gpa through the
// same path as a VM exit.
func call(h *hypercalls, nr uint16, gpa uint32) (*Halt, error) {
	return handleExit(h, ioExit(ioDirectionOut, 4,
		abi.HVTHypercallPIOBase+nr, gpa), 1<<40)
}

var lePut = binary.LittleEndian

func TestHypercallWalltime(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	if _, err := call(tc.hypercalls, abi.HypercallWalltime, 0x20000); err != nil {
		t.Fatalf("WALLTIME: %v", err)
	}
	if got := lePut.Uint64(tc.mem[0x20000:]); got != 1_700_000_000_123_456_789 {
		t.Errorf("nsecs = %d, want 1700000000123456789", got)
	}
}

func TestHypercallPuts(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	copy(tc.mem[0x30000:], "hello, console")
	lePut.PutUint64(tc.mem[0x20000+abi.PutsData:], 0x30000)
	lePut.PutUint64(tc.mem[0x20000+abi.PutsLen:], 14)
	if _, err := call(tc.hypercalls, abi.HypercallPuts, 0x20000); err != nil {
		t.Fatalf("PUTS: %v", err)
	}
	if got := tc.console.String(); got != "hello, console" {
		t.Errorf("console = %q, want %q", got, "hello, console")
	}
}

func TestHypercallInvalidAccess(t *testing.T) {
	const size = 4 << 20
	cases := []struct {
		name      string
		nr        uint16
		gpa       uint32
		data, len uint64 // buffer pointer and length inside the struct
		dataOff   int    // offset of the data field, -1 for none
		lenOff    int
	}{
		{name: "struct outside memory", nr: abi.HypercallPuts, gpa: size, dataOff: -1},
		{name: "struct across the end", nr: abi.HypercallPoll, gpa: size - 8, dataOff: -1},
		{name: "struct in the ring gap", nr: abi.HypercallWalltime, gpa: 0xFFFFFFF0, dataOff: -1},
		{name: "puts buffer outside", nr: abi.HypercallPuts, gpa: 0x20000,
			data: 1 << 40, len: 1, dataOff: abi.PutsData, lenOff: abi.PutsLen},
		{name: "puts length past the end", nr: abi.HypercallPuts, gpa: 0x20000,
			data: size - 10, len: 11, dataOff: abi.PutsData, lenOff: abi.PutsLen},
		{name: "puts pointer plus length overflows", nr: abi.HypercallPuts, gpa: 0x20000,
			data: 0x30000, len: ^uint64(0) - 0x100, dataOff: abi.PutsData, lenOff: abi.PutsLen},
		{name: "halt struct outside", nr: abi.HypercallHalt, gpa: size, dataOff: -1},
		{name: "halt cookie outside", nr: abi.HypercallHalt, gpa: 0x20000,
			data: size - 100, dataOff: abi.HaltCookie, lenOff: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestCallsFull(t, size)
			if c.dataOff >= 0 {
				lePut.PutUint64(tc.mem[int(c.gpa)+c.dataOff:], c.data)
			}
			if c.lenOff > 0 {
				lePut.PutUint64(tc.mem[int(c.gpa)+c.lenOff:], c.len)
			}
			halt, err := call(tc.hypercalls, c.nr, c.gpa)
			if halt != nil {
				t.Fatalf("halt = %+v, want an error", halt)
			}
			var ae *AccessError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want an *AccessError", err)
			}
			if !strings.Contains(err.Error(), "Invalid guest access: gpa=0x") {
				t.Errorf("error = %q, want the upstream phrase", err)
			}
			if tc.console.Len() != 0 {
				t.Errorf("console got %d bytes, want none", tc.console.Len())
			}
		})
	}
}

func TestHypercallPollSlicesLongTimeout(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	p := &fakePoller{readyAt: 3, set: 1 << 5}
	tc.poll = p
	lePut.PutUint64(tc.mem[0x20000+abi.PollTimeout:], 10*pollSlice)
	if _, err := call(tc.hypercalls, abi.HypercallPoll, 0x20000); err != nil {
		t.Fatalf("POLL: %v", err)
	}
	if len(p.timeouts) != 3 {
		t.Fatalf("Poll called %d times, want 3", len(p.timeouts))
	}
	for i, got := range p.timeouts {
		if got != pollSlice {
			t.Errorf("wait %d = %d ns, want %d", i, got, pollSlice)
		}
	}
	if got := lePut.Uint64(tc.mem[0x20000+abi.PollReadySet:]); got != 1<<5 {
		t.Errorf("ready_set = %#x, want 0x20", got)
	}
	if got := lePut.Uint32(tc.mem[0x20000+abi.PollRet:]); got != 1 {
		t.Errorf("ret = %d, want 1", got)
	}
}

func TestHypercallPollShortTimeout(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	p := &fakePoller{}
	tc.poll = p
	lePut.PutUint64(tc.mem[0x20000+abi.PollTimeout:], 1000)
	lePut.PutUint64(tc.mem[0x20000+abi.PollReadySet:], 0xFFFF)
	if _, err := call(tc.hypercalls, abi.HypercallPoll, 0x20000); err != nil {
		t.Fatalf("POLL: %v", err)
	}
	if len(p.timeouts) != 1 || p.timeouts[0] != 1000 {
		t.Errorf("timeouts = %v, want [1000]", p.timeouts)
	}
	if got := lePut.Uint64(tc.mem[0x20000+abi.PollReadySet:]); got != 0 {
		t.Errorf("ready_set = %#x, want 0", got)
	}
}

func TestHypercallPollStopsEarly(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	p := &fakePoller{}
	tc.poll = p
	tc.stop.Store(true)
	lePut.PutUint64(tc.mem[0x20000+abi.PollTimeout:], 1<<62)
	if _, err := call(tc.hypercalls, abi.HypercallPoll, 0x20000); err != nil {
		t.Fatalf("POLL: %v", err)
	}
	if len(p.timeouts) != 1 {
		t.Errorf("Poll called %d times after stop, want 1", len(p.timeouts))
	}
}

// blockRequest writes a block hypercall struct at 0x20000.
func blockRequest(mem []byte, handle, off, data, n uint64) {
	lePut.PutUint64(mem[0x20000+abi.BlockHandle:], handle)
	lePut.PutUint64(mem[0x20000+abi.BlockOffset:], off)
	lePut.PutUint64(mem[0x20000+abi.BlockData:], data)
	lePut.PutUint64(mem[0x20000+abi.BlockLen:], n)
	lePut.PutUint32(mem[0x20000+abi.BlockRet:], 0xDEAD)
}

func TestHypercallBlock(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	dev := &fakeBlock{data: make([]byte, 8192)}
	tc.blocks[3] = dev
	tc.capacity[3] = 8192
	tc.hasBlock = true

	copy(tc.mem[0x30000:], bytes.Repeat([]byte{0xAB}, 512))
	blockRequest(tc.mem, 3, 1024, 0x30000, 512)
	if _, err := call(tc.hypercalls, abi.HypercallBlockWrite, 0x20000); err != nil {
		t.Fatalf("BLOCK_WRITE: %v", err)
	}
	if got := abi.Result(lePut.Uint32(tc.mem[0x20000+abi.BlockRet:])); got != abi.ResultOK {
		t.Errorf("BLOCK_WRITE ret = %d, want OK", got)
	}
	if !bytes.Equal(dev.data[1024:1536], tc.mem[0x30000:0x30200]) {
		t.Error("BLOCK_WRITE did not reach the device")
	}

	blockRequest(tc.mem, 3, 1024, 0x40000, 512)
	if _, err := call(tc.hypercalls, abi.HypercallBlockRead, 0x20000); err != nil {
		t.Fatalf("BLOCK_READ: %v", err)
	}
	if !bytes.Equal(tc.mem[0x40000:0x40200], dev.data[1024:1536]) {
		t.Error("BLOCK_READ did not fill the guest buffer")
	}
}

func TestHypercallBlockEINVAL(t *testing.T) {
	cases := []struct {
		name              string
		handle, off, data uint64
		n                 uint64
	}{
		{"unknown handle", 4, 0, 0x30000, 512},
		{"handle past the manifest", 64, 0, 0x30000, 512},
		{"huge handle", ^uint64(0), 0, 0x30000, 512},
		{"offset at capacity", 3, 8192, 0x30000, 512},
		{"length past capacity", 3, 7680, 0x30000, 513},
		{"offset near the top of the range", 3, ^uint64(0) - 100, 0x30000, 512},
	}
	for _, c := range cases {
		for _, nr := range []uint16{abi.HypercallBlockWrite, abi.HypercallBlockRead} {
			tc := newTestCallsFull(t, 4<<20)
			tc.blocks[3] = &fakeBlock{data: make([]byte, 8192)}
			tc.capacity[3] = 8192
			tc.hasBlock = true
			blockRequest(tc.mem, c.handle, c.off, c.data, c.n)
			if _, err := call(tc.hypercalls, nr, 0x20000); err != nil {
				t.Errorf("%s (hypercall %d): error %v, want EINVAL", c.name, nr, err)
				continue
			}
			got := abi.Result(lePut.Uint32(tc.mem[0x20000+abi.BlockRet:]))
			if got != abi.ResultEINVAL {
				t.Errorf("%s (hypercall %d): ret = %d, want EINVAL", c.name, nr, got)
			}
		}
	}
}

func TestHypercallBlockBadBufferBeforeRange(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	tc.blocks[3] = &fakeBlock{data: make([]byte, 8192)}
	tc.capacity[3] = 8192
	tc.hasBlock = true
	// Both the range and the buffer are wrong. The buffer check ends the
	// guest, unlike solo5-hvt, which returns EINVAL.
	blockRequest(tc.mem, 3, 8192, 0x30000, ^uint64(0)-0x30000+2)
	_, err := call(tc.hypercalls, abi.HypercallBlockWrite, 0x20000)
	var ae *AccessError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want an *AccessError", err)
	}
}

func TestHypercallBlockReadIntoReadOnly(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	tc.blocks[1] = &fakeBlock{data: make([]byte, 4096)}
	tc.capacity[1] = 4096
	tc.hasBlock = true
	tc.hypercalls.mem.markReadOnly(0x100000, 0x105000)

	blockRequest(tc.mem, 1, 0, 0x104F00, 512)
	_, err := call(tc.hypercalls, abi.HypercallBlockRead, 0x20000)
	var ae *AccessError
	if !errors.As(err, &ae) || !ae.ReadOnly {
		t.Fatalf("error = %v, want a read-only *AccessError", err)
	}

	// The tender may still read from read-only memory.
	blockRequest(tc.mem, 1, 0, 0x104F00, 256)
	if _, err := call(tc.hypercalls, abi.HypercallBlockWrite, 0x20000); err != nil {
		t.Errorf("BLOCK_WRITE from read-only memory: %v", err)
	}
}

func netRequest(mem []byte, handle, data, n uint64) {
	lePut.PutUint64(mem[0x20000+abi.NetHandle:], handle)
	lePut.PutUint64(mem[0x20000+abi.NetData:], data)
	lePut.PutUint64(mem[0x20000+abi.NetLen:], n)
	lePut.PutUint32(mem[0x20000+abi.NetRet:], 0xDEAD)
}

func TestHypercallNet(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	dev := &fakeNet{rx: [][]byte{[]byte("incoming frame")}}
	tc.nets[2] = dev
	tc.hasNet = true

	copy(tc.mem[0x30000:], "outgoing frame")
	netRequest(tc.mem, 2, 0x30000, 14)
	if _, err := call(tc.hypercalls, abi.HypercallNetWrite, 0x20000); err != nil {
		t.Fatalf("NET_WRITE: %v", err)
	}
	if len(dev.tx) != 1 || string(dev.tx[0]) != "outgoing frame" {
		t.Errorf("device got %q, want [\"outgoing frame\"]", dev.tx)
	}

	netRequest(tc.mem, 2, 0x40000, 1514)
	if _, err := call(tc.hypercalls, abi.HypercallNetRead, 0x20000); err != nil {
		t.Fatalf("NET_READ: %v", err)
	}
	if got := lePut.Uint64(tc.mem[0x20000+abi.NetLen:]); got != 14 {
		t.Errorf("NET_READ len = %d, want 14", got)
	}
	if got := string(tc.mem[0x40000 : 0x40000+14]); got != "incoming frame" {
		t.Errorf("NET_READ data = %q", got)
	}

	netRequest(tc.mem, 2, 0x40000, 1514)
	if _, err := call(tc.hypercalls, abi.HypercallNetRead, 0x20000); err != nil {
		t.Fatalf("NET_READ: %v", err)
	}
	if got := abi.Result(lePut.Uint32(tc.mem[0x20000+abi.NetRet:])); got != abi.ResultAgain {
		t.Errorf("NET_READ with no frame: ret = %d, want AGAIN", got)
	}
	if got := lePut.Uint64(tc.mem[0x20000+abi.NetLen:]); got != 1514 {
		t.Errorf("NET_READ with no frame: len = %d, want unchanged 1514", got)
	}

	netRequest(tc.mem, 5, 0x40000, 1514)
	if _, err := call(tc.hypercalls, abi.HypercallNetRead, 0x20000); err != nil {
		t.Fatalf("NET_READ: %v", err)
	}
	if got := abi.Result(lePut.Uint32(tc.mem[0x20000+abi.NetRet:])); got != abi.ResultEINVAL {
		t.Errorf("NET_READ bad handle: ret = %d, want EINVAL", got)
	}

	dev.readErr = errors.New("tap gone")
	netRequest(tc.mem, 2, 0x40000, 1514)
	_, err := call(tc.hypercalls, abi.HypercallNetRead, 0x20000)
	if err == nil || !strings.Contains(err.Error(), "Fatal error when reading: tap gone") {
		t.Errorf("NET_READ host error: %v, want a fatal error", err)
	}
}

func TestHypercallHalt(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	lePut.PutUint64(tc.mem[0x20000+abi.HaltCookie:], 0)
	lePut.PutUint32(tc.mem[0x20000+abi.HaltExitStatus:], 0x1FF)
	halt, err := call(tc.hypercalls, abi.HypercallHalt, 0x20000)
	if err != nil || halt == nil {
		t.Fatalf("HALT = %v, %v; want a halt", halt, err)
	}
	if halt.Status != 0x1FF || halt.Frame != nil {
		t.Errorf("halt = %+v, want status 0x1ff and no frame", halt)
	}
	if got := int(uint8(halt.Status)); got != 255 {
		t.Errorf("exit status = %d, want 255", got)
	}
}

func TestHypercallHaltTrapFrame(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	frame := tc.mem[0x30000:]
	for i, v := range []uint64{0x8, 0x2, 0x101234, 0x8, 0x10046, 0x3FFF00, 0x10} {
		lePut.PutUint64(frame[i*8:], v)
	}
	lePut.PutUint64(tc.mem[0x20000+abi.HaltCookie:], 0x30000)
	lePut.PutUint32(tc.mem[0x20000+abi.HaltExitStatus:], 255)
	halt, err := call(tc.hypercalls, abi.HypercallHalt, 0x20000)
	if err != nil || halt == nil || halt.Frame == nil {
		t.Fatalf("HALT = %v, %v; want a halt with a frame", halt, err)
	}
	want := TrapFrame{CR2: 0x8, ErrorCode: 0x2, RIP: 0x101234, CS: 0x8,
		RFLAGS: 0x10046, RSP: 0x3FFF00, SS: 0x10}
	if *halt.Frame != want {
		t.Errorf("frame = %+v, want %+v", *halt.Frame, want)
	}
	if s := halt.Frame.String(); !strings.Contains(s, "rip=0x101234") ||
		!strings.Contains(s, "cr2=0x8") {
		t.Errorf("frame text = %q, want rip and cr2", s)
	}
}

func TestHypercallsDoNotAllocate(t *testing.T) {
	tc := newTestCallsFull(t, 4<<20)
	tc.blocks[1] = &fakeBlock{data: make([]byte, 4096)}
	tc.capacity[1] = 4096
	tc.hasBlock = true
	tc.console = &bytes.Buffer{}
	tc.hypercalls.console = discard{}
	run := ioExit(ioDirectionOut, 4, abi.HVTHypercallPIOBase+abi.HypercallBlockRead, 0x20000)
	blockRequest(tc.mem, 1, 0, 0x30000, 512)
	puts := ioExit(ioDirectionOut, 4, abi.HVTHypercallPIOBase+abi.HypercallPuts, 0x21000)
	lePut.PutUint64(tc.mem[0x21000+abi.PutsData:], 0x30000)
	lePut.PutUint64(tc.mem[0x21000+abi.PutsLen:], 100)

	allocs := testing.AllocsPerRun(100, func() {
		if _, err := handleExit(tc.hypercalls, run, 4<<20); err != nil {
			t.Fatal(err)
		}
		if _, err := handleExit(tc.hypercalls, puts, 4<<20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("BLOCK_READ and PUTS allocate %v times per call, want 0", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
