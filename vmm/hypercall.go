package vmm

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	"github.com/ntender/ntender/abi"
)

// blockDevice is the part of devices.Block the hypercalls use.
type blockDevice interface {
	ReadAt(p []byte, off uint64) (abi.Result, error)
	WriteAt(p []byte, off uint64) (abi.Result, error)
}

// netDevice is the part of devices.Net the hypercalls and the ring use.
type netDevice interface {
	Read(p []byte) (int, abi.Result, error)
	Write(p []byte) (abi.Result, error)
}

// poller is the part of devices.Poller the POLL hypercall uses.
type poller interface {
	Poll(timeoutNs uint64) (readySet uint64, n int, err error)
}

// pollSlice is the longest single wait of a POLL hypercall. A longer guest
// timeout is served as several waits, so that a stop request (a signal)
// ends the guest within this time even when it sleeps without network
// traffic.
const pollSlice = 100_000_000 // ns

// hypercalls serves the hvt hypercalls of one guest. Every guest address
// goes through mem, and the devices get only byte slices.
type hypercalls struct {
	mem       *GuestMemory
	console   io.Writer
	wallClock func() uint64
	monoClock func() uint64
	poll      poller

	// blocks and nets are indexed by manifest index (the guest's handle);
	// nil means no device of that type at that index.
	blocks   [abi.ManifestMaxEntries]blockDevice
	capacity [abi.ManifestMaxEntries]uint64
	nets     [abi.ManifestMaxEntries]netDevice
	hasBlock bool
	hasNet   bool

	// stop is set when the tender ends the guest, and a long POLL returns
	// early once it is set.
	stop *atomic.Bool
}

// GuestError is a protocol violation by the guest, such as a bad pointer
// or an unknown hypercall. It ends the guest, and the tender exits with 1.
type GuestError struct{ Msg string }

func (e *GuestError) Error() string { return e.Msg }

// invalidHypercall returns the error for a hypercall number without a
// handler, worded as solo5-hvt words it.
func invalidHypercall(nr uint32) error {
	return &GuestError{Msg: fmt.Sprintf("Invalid guest hypercall: num=%d", nr)}
}

// invalidPort returns the error for a port access that is not a hypercall.
func invalidPort(port uint16) error {
	return &GuestError{Msg: fmt.Sprintf(
		"Invalid guest port access: port=%#x", port)}
}

// handle serves hypercall nr with its argument struct at gpa. HALT is not
// handled here (see decodeHalt). A returned error ends the guest.
func (h *hypercalls) handle(nr uint32, gpa uint64) error {
	switch nr {
	case abi.HypercallWalltime:
		return h.walltime(gpa)
	case abi.HypercallPuts:
		return h.puts(gpa)
	case abi.HypercallPoll:
		return h.pollCall(gpa)
	case abi.HypercallBlockWrite:
		if h.hasBlock {
			return h.block(gpa, true)
		}
	case abi.HypercallBlockRead:
		if h.hasBlock {
			return h.block(gpa, false)
		}
	case abi.HypercallNetWrite:
		if h.hasNet {
			return h.netWrite(gpa)
		}
	case abi.HypercallNetRead:
		if h.hasNet {
			return h.netRead(gpa)
		}
	}
	return invalidHypercall(nr)
}

var le = binary.LittleEndian

func (h *hypercalls) walltime(gpa uint64) error {
	arg, err := h.mem.WritableSlice(gpa, abi.WalltimeSize)
	if err != nil {
		return err
	}
	le.PutUint64(arg[abi.WalltimeNsecs:], h.wallClock())
	return nil
}

// puts writes the guest's buffer to the console in one write. As with
// solo5-hvt, a failed or short write is ignored.
func (h *hypercalls) puts(gpa uint64) error {
	arg, err := h.mem.Slice(gpa, abi.PutsSize)
	if err != nil {
		return err
	}
	data, err := h.mem.Slice(le.Uint64(arg[abi.PutsData:]),
		le.Uint64(arg[abi.PutsLen:]))
	if err != nil {
		return err
	}
	_, _ = h.console.Write(data)
	return nil
}

// pollCall waits until a net device is readable or the guest's relative
// timeout passes, and stores the ready set and the count of ready devices.
func (h *hypercalls) pollCall(gpa uint64) error {
	arg, err := h.mem.WritableSlice(gpa, abi.PollSize)
	if err != nil {
		return err
	}
	timeout := le.Uint64(arg[abi.PollTimeout:])

	var deadline uint64
	if timeout > pollSlice {
		deadline = h.monoClock() + timeout
		if deadline < timeout {
			deadline = math.MaxUint64
		}
	}

	for {
		wait := timeout
		if wait > pollSlice {
			wait = pollSlice
		}
		set, n, err := h.poll.Poll(wait)
		if err != nil {
			return fmt.Errorf("POLL: %w", err)
		}
		if n > 0 || timeout <= pollSlice || h.stop.Load() {
			le.PutUint64(arg[abi.PollReadySet:], set)
			le.PutUint32(arg[abi.PollRet:], uint32(n))
			return nil
		}
		now := h.monoClock()
		if now >= deadline {
			timeout = 0
		} else {
			timeout = deadline - now
		}
	}
}

// block serves BLOCK_WRITE (write set) and BLOCK_READ. The data buffer is
// checked before the range on the device, so a bad pointer ends the guest
// even when the range is also wrong. solo5-hvt checks the range first and
// returns EINVAL in that case.
func (h *hypercalls) block(gpa uint64, write bool) error {
	arg, err := h.mem.WritableSlice(gpa, abi.BlockSize)
	if err != nil {
		return err
	}
	handle := le.Uint64(arg[abi.BlockHandle:])
	off := le.Uint64(arg[abi.BlockOffset:])
	data := le.Uint64(arg[abi.BlockData:])
	n := le.Uint64(arg[abi.BlockLen:])

	if handle >= abi.ManifestMaxEntries || h.blocks[handle] == nil {
		putResult(arg[abi.BlockRet:], abi.ResultEINVAL)
		return nil
	}
	var buf []byte
	if write {
		buf, err = h.mem.Slice(data, n)
	} else {
		buf, err = h.mem.WritableSlice(data, n)
	}
	if err != nil {
		return err
	}
	if off >= h.capacity[handle] || n > h.capacity[handle]-off {
		putResult(arg[abi.BlockRet:], abi.ResultEINVAL)
		return nil
	}

	var res abi.Result
	dev := h.blocks[handle]
	if write {
		res, err = dev.WriteAt(buf, off)
		if err != nil {
			//lint:ignore ST1005 the capitalised upstream message is what scripts search for
			return fmt.Errorf("Fatal error when writing: %w", err)
		}
	} else {
		res, err = dev.ReadAt(buf, off)
		if err != nil {
			//lint:ignore ST1005 the capitalised upstream message is what scripts search for
			return fmt.Errorf("Fatal error when reading: %w", err)
		}
	}
	putResult(arg[abi.BlockRet:], res)
	return nil
}

// netArgs returns the argument struct of a NET_WRITE or NET_READ at gpa
// and the device its handle names. For a handle that names no net device
// it stores EINVAL in the struct and returns a nil device.
func (h *hypercalls) netArgs(gpa uint64) ([]byte, netDevice, error) {
	arg, err := h.mem.WritableSlice(gpa, abi.NetSize)
	if err != nil {
		return nil, nil, err
	}
	handle := le.Uint64(arg[abi.NetHandle:])
	if handle >= abi.ManifestMaxEntries || h.nets[handle] == nil {
		putResult(arg[abi.NetRet:], abi.ResultEINVAL)
		return arg, nil, nil
	}
	return arg, h.nets[handle], nil
}

func (h *hypercalls) netWrite(gpa uint64) error {
	arg, dev, err := h.netArgs(gpa)
	if err != nil || dev == nil {
		return err
	}
	buf, err := h.mem.Slice(le.Uint64(arg[abi.NetData:]),
		le.Uint64(arg[abi.NetLen:]))
	if err != nil {
		return err
	}
	res, err := dev.Write(buf)
	if err != nil {
		//lint:ignore ST1005 the capitalised upstream message is what scripts search for
		return fmt.Errorf("Fatal error when writing: %w", err)
	}
	putResult(arg[abi.NetRet:], res)
	return nil
}

func (h *hypercalls) netRead(gpa uint64) error {
	arg, dev, err := h.netArgs(gpa)
	if err != nil || dev == nil {
		return err
	}
	buf, err := h.mem.WritableSlice(le.Uint64(arg[abi.NetData:]),
		le.Uint64(arg[abi.NetLen:]))
	if err != nil {
		return err
	}
	n, res, err := dev.Read(buf)
	if err != nil {
		//lint:ignore ST1005 the capitalised upstream message is what scripts search for
		return fmt.Errorf("Fatal error when reading: %w", err)
	}
	if res == abi.ResultOK {
		le.PutUint64(arg[abi.NetLen:], uint64(n))
	}
	putResult(arg[abi.NetRet:], res)
	return nil
}

func putResult(b []byte, r abi.Result) {
	le.PutUint32(b, uint32(r))
}

// TrapFrame is the CPU exception frame a guest passes as the HALT cookie
// when it aborts on a trap (status 255).
type TrapFrame struct {
	CR2, ErrorCode, RIP, CS, RFLAGS, RSP, SS uint64
}

func (f TrapFrame) String() string {
	return fmt.Sprintf("rip=%#x cs=%#x rflags=%#x rsp=%#x ss=%#x "+
		"cr2=%#x ec=%#x", f.RIP, f.CS, f.RFLAGS, f.RSP, f.SS, f.CR2,
		f.ErrorCode)
}

// Halt is a decoded HALT hypercall.
type Halt struct {
	// Status is the guest's exit status. The process exit code is its low
	// 8 bits.
	Status int32
	// Cookie is the guest address of the trap frame, or 0.
	Cookie uint64
	// Frame is the trap frame when Cookie is not 0.
	Frame *TrapFrame
	// Reason explains a halt the tender decided on for an spt guest (a
	// fault or a forbidden system call).
	Reason string
}

// decodeHalt reads the HALT argument struct at gpa. A non-zero cookie must
// point to HVTHaltCookieMax readable bytes, as solo5-hvt requires.
func decodeHalt(mem *GuestMemory, gpa uint64) (Halt, error) {
	var h Halt
	arg, err := mem.Slice(gpa, abi.HaltSize)
	if err != nil {
		return h, err
	}
	h.Status = int32(le.Uint32(arg[abi.HaltExitStatus:]))
	h.Cookie = le.Uint64(arg[abi.HaltCookie:])
	if h.Cookie == 0 {
		return h, nil
	}

	b, err := mem.Slice(h.Cookie, abi.HVTHaltCookieMax)
	if err != nil {
		return h, err
	}
	h.Frame = &TrapFrame{
		CR2:       le.Uint64(b[0:]),
		ErrorCode: le.Uint64(b[8:]),
		RIP:       le.Uint64(b[16:]),
		CS:        le.Uint64(b[24:]),
		RFLAGS:    le.Uint64(b[32:]),
		RSP:       le.Uint64(b[40:]),
		SS:        le.Uint64(b[48:]),
	}
	return h, nil
}

// handleIO serves a KVM_EXIT_IO: a hypercall or HALT. It returns the halt
// when the guest halted. A port that is not a 4-byte OUT to a hypercall
// port, an unknown hypercall and a bad pointer are errors.
func handleIO(h *hypercalls, e Exit) (*Halt, error) {
	if e.IODirection != ioDirectionOut || e.IOSize != 4 ||
		e.IOPort < abi.HVTHypercallPIOBase ||
		e.IOPort >= abi.HVTHypercallPIOBase+abi.HypercallMax {
		return nil, invalidPort(e.IOPort)
	}
	nr := uint32(e.IOPort - abi.HVTHypercallPIOBase)
	gpa := uint64(e.IOValue)

	if nr == abi.HypercallHalt {
		halt, err := decodeHalt(h.mem, gpa)
		if err != nil {
			return nil, err
		}
		return &halt, nil
	}
	return nil, h.handle(nr, gpa)
}
