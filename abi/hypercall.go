package abi

import (
	"encoding/binary"
	"fmt"
)

// This file decodes the hvt hypercall argument structs that the guest
// passes by guest physical address, and encodes their OUT fields. The
// functions work on the struct's bytes, which the caller copies from and
// back to guest memory after checking the address. Buffer addresses
// inside the structs are guest physical addresses too, and the caller
// must check them before use.

// checkArgs returns an error when b is shorter than the struct.
func checkArgs(name string, b []byte, size int) error {
	if len(b) < size {
		return fmt.Errorf("decoding %s hypercall arguments: %d bytes, expected %d", name, len(b), size)
	}
	return nil
}

// PutWalltime stores nsecs, the wall clock in nanoseconds since the Unix
// epoch, in struct hvt_hc_walltime.
func PutWalltime(b []byte, nsecs uint64) error {
	if err := checkArgs("WALLTIME", b, WalltimeSize); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[WalltimeNsecs:], nsecs)
	return nil
}

// Puts is struct hvt_hc_puts: a console write of Len bytes at Data.
type Puts struct {
	Data uint64
	Len  uint64
}

// DecodePuts decodes struct hvt_hc_puts.
func DecodePuts(b []byte) (Puts, error) {
	if err := checkArgs("PUTS", b, PutsSize); err != nil {
		return Puts{}, err
	}
	le := binary.LittleEndian
	return Puts{Data: le.Uint64(b[PutsData:]), Len: le.Uint64(b[PutsLen:])}, nil
}

// Poll is the IN part of struct hvt_hc_poll.
type Poll struct {
	// TimeoutNsecs is the relative timeout in nanoseconds.
	TimeoutNsecs uint64
}

// DecodePoll decodes the IN field of struct hvt_hc_poll.
func DecodePoll(b []byte) (Poll, error) {
	if err := checkArgs("POLL", b, PollSize); err != nil {
		return Poll{}, err
	}
	return Poll{TimeoutNsecs: binary.LittleEndian.Uint64(b[PollTimeout:])}, nil
}

// PutPollResult stores the OUT fields of struct hvt_hc_poll: readySet has
// bit i set for each ready handle i, and ret is the number of ready
// devices.
func PutPollResult(b []byte, readySet uint64, ret int32) error {
	if err := checkArgs("POLL", b, PollSize); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[PollReadySet:], readySet)
	binary.LittleEndian.PutUint32(b[PollRet:], uint32(ret))
	return nil
}

// BlockIO is struct hvt_hc_block_write and struct hvt_hc_block_read,
// which share one layout: Len bytes at guest address Data, at byte Offset
// of the device with manifest index Handle.
type BlockIO struct {
	Handle uint64
	Offset uint64
	Data   uint64
	Len    uint64
}

// DecodeBlockIO decodes the IN fields of a BLOCK_WRITE or BLOCK_READ
// struct.
func DecodeBlockIO(b []byte) (BlockIO, error) {
	if err := checkArgs("block", b, BlockSize); err != nil {
		return BlockIO{}, err
	}
	le := binary.LittleEndian
	return BlockIO{
		Handle: le.Uint64(b[BlockHandle:]),
		Offset: le.Uint64(b[BlockOffset:]),
		Data:   le.Uint64(b[BlockData:]),
		Len:    le.Uint64(b[BlockLen:]),
	}, nil
}

// PutBlockResult stores ret in a BLOCK_WRITE or BLOCK_READ struct. The
// Solo5 tender never writes len back, although the header marks it
// IN/OUT for BLOCK_READ, so this does not either.
func PutBlockResult(b []byte, ret Result) error {
	if err := checkArgs("block", b, BlockSize); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[BlockRet:], uint32(ret))
	return nil
}

// NetIO is struct hvt_hc_net_write and struct hvt_hc_net_read, which share
// one layout. For NET_READ, Len is the buffer size on input.
type NetIO struct {
	Handle uint64
	Data   uint64
	Len    uint64
}

// DecodeNetIO decodes the IN fields of a NET_WRITE or NET_READ struct.
func DecodeNetIO(b []byte) (NetIO, error) {
	if err := checkArgs("net", b, NetSize); err != nil {
		return NetIO{}, err
	}
	le := binary.LittleEndian
	return NetIO{
		Handle: le.Uint64(b[NetHandle:]),
		Data:   le.Uint64(b[NetData:]),
		Len:    le.Uint64(b[NetLen:]),
	}, nil
}

// PutNetWriteResult stores ret in a NET_WRITE struct.
func PutNetWriteResult(b []byte, ret Result) error {
	if err := checkArgs("NET_WRITE", b, NetSize); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[NetRet:], uint32(ret))
	return nil
}

// PutNetReadResult stores the frame length n in len and ret in a NET_READ
// struct. The Solo5 tender writes len only with ResultOK, so callers
// should pass the guest's original len otherwise.
func PutNetReadResult(b []byte, n uint64, ret Result) error {
	if err := checkArgs("NET_READ", b, NetSize); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[NetLen:], n)
	binary.LittleEndian.PutUint32(b[NetRet:], uint32(ret))
	return nil
}

// Halt is struct hvt_hc_halt.
type Halt struct {
	// Cookie is 0, or the guest address of a TrapFrame after a CPU
	// exception (at most HVTHaltCookieMax bytes).
	Cookie uint64
	// ExitStatus becomes the process exit status modulo 256.
	ExitStatus int32
}

// DecodeHalt decodes struct hvt_hc_halt.
func DecodeHalt(b []byte) (Halt, error) {
	if err := checkArgs("HALT", b, HaltSize); err != nil {
		return Halt{}, err
	}
	le := binary.LittleEndian
	return Halt{
		Cookie:     le.Uint64(b[HaltCookie:]),
		ExitStatus: int32(le.Uint32(b[HaltExitStatus:])),
	}, nil
}

// TrapFrame is the CPU state an hvt guest passes as HALT cookie after an
// exception (struct trap_regs of the Solo5 x86_64 bindings).
type TrapFrame struct {
	CR2    uint64
	EC     uint64 // error code
	RIP    uint64
	CS     uint64
	RFLAGS uint64
	RSP    uint64
	SS     uint64
}

// DecodeTrapFrame decodes a TrapFrame from the bytes at a HALT cookie.
func DecodeTrapFrame(b []byte) (TrapFrame, error) {
	if err := checkArgs("HALT cookie", b, TrapFrameSize); err != nil {
		return TrapFrame{}, err
	}
	le := binary.LittleEndian
	return TrapFrame{
		CR2:    le.Uint64(b[TrapFrameCR2:]),
		EC:     le.Uint64(b[TrapFrameEC:]),
		RIP:    le.Uint64(b[TrapFrameRIP:]),
		CS:     le.Uint64(b[TrapFrameCS:]),
		RFLAGS: le.Uint64(b[TrapFrameRFLAGS:]),
		RSP:    le.Uint64(b[TrapFrameRSP:]),
		SS:     le.Uint64(b[TrapFrameSS:]),
	}, nil
}
