package abi

import (
	"encoding/binary"
	"errors"
	"strings"
)

// ErrCmdlineTooLong is the error of Cmdline for a command line over 8191
// bytes, with the message the Solo5 tenders print.
//
//lint:ignore ST1005 the Solo5 tenders print this capitalized message
var ErrCmdlineTooLong = errors.New("Guest command line too long (max=8191 characters)")

// Cmdline returns the guest command line for args, the arguments after the
// unikernel path: joined with one space, without quoting, as the Solo5
// tenders do. The result must fit the CmdlineSize buffer with its NUL.
func Cmdline(args []string) (string, error) {
	s := strings.Join(args, " ")
	if len(s) > CmdlineSize-1 {
		return "", ErrCmdlineTooLong
	}
	return s, nil
}

// HVTBootInfo is struct hvt_boot_info, which the hvt tender writes at
// HVTBootInfoAddr and passes to the guest in RDI. Addresses are guest
// physical addresses.
type HVTBootInfo struct {
	// MemSize is the guest-visible memory size in bytes, excluding the
	// net ring.
	MemSize uint64
	// KernelEnd is Unikernel.KernelEnd. Guests do not read it.
	KernelEnd uint64
	// CPUCycleFreq is the TSC frequency in Hz.
	CPUCycleFreq uint64
	// Cmdline is the address of the NUL-terminated command line.
	Cmdline uint64
	// Mft is the address of the manifest copy.
	Mft uint64
	// HostFeatures is a set of HVTFeature* bits (v0.11 and later guests).
	HostFeatures uint32
	// NetRing is the address of struct hvt_ring, or 0 without a ring.
	NetRing uint64
}

// MarshalBinary returns the HVTBootInfoSize-byte (56) v0.11 layout, with
// guest_features zero. Guests up to v0.10 read only the first
// HVTBootInfoSizeV1 (40) bytes, which have the same layout. It never
// returns an error.
func (b HVTBootInfo) MarshalBinary() ([]byte, error) {
	out := make([]byte, HVTBootInfoSize)
	le := binary.LittleEndian
	le.PutUint64(out[HVTBootInfoMemSize:], b.MemSize)
	le.PutUint64(out[HVTBootInfoKernelEnd:], b.KernelEnd)
	le.PutUint64(out[HVTBootInfoCPUCycleFreq:], b.CPUCycleFreq)
	le.PutUint64(out[HVTBootInfoCmdline:], b.Cmdline)
	le.PutUint64(out[HVTBootInfoMft:], b.Mft)
	le.PutUint32(out[HVTBootInfoHostFeatures:], b.HostFeatures)
	le.PutUint32(out[HVTBootInfoGuestFeatures:], 0)
	le.PutUint64(out[HVTBootInfoNetRing:], b.NetRing)
	return out, nil
}

// SPTBootInfo is struct spt_boot_info, which the spt tender writes at
// SPTBootInfoAddr and passes to the guest in RDI. Guest addresses are
// host virtual addresses on spt.
type SPTBootInfo struct {
	MemSize   uint64
	KernelEnd uint64
	// Cmdline is the address of the NUL-terminated command line.
	Cmdline uint64
	// Mft is the address of the manifest copy.
	Mft uint64
	// Epollfd is the epoll file descriptor the guest waits on in
	// solo5_yield.
	Epollfd int32
	// Timerfd is the CLOCK_MONOTONIC timerfd registered in Epollfd with
	// data SPTInternalTimerfd.
	Timerfd int32
}

// MarshalBinary returns the SPTBootInfoSize-byte (40) layout. It never
// returns an error.
func (b SPTBootInfo) MarshalBinary() ([]byte, error) {
	out := make([]byte, SPTBootInfoSize)
	le := binary.LittleEndian
	le.PutUint64(out[SPTBootInfoMemSize:], b.MemSize)
	le.PutUint64(out[SPTBootInfoKernelEnd:], b.KernelEnd)
	le.PutUint64(out[SPTBootInfoCmdline:], b.Cmdline)
	le.PutUint64(out[SPTBootInfoMft:], b.Mft)
	le.PutUint32(out[SPTBootInfoEpollfd:], uint32(b.Epollfd))
	le.PutUint32(out[SPTBootInfoTimerfd:], uint32(b.Timerfd))
	return out, nil
}
