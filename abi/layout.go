package abi

// Guest memory layout shared by both targets.
const (
	// GuestMinBase is the lowest address a loadable segment may use.
	GuestMinBase = 0x100000
	// PageSize is the x86_64 page size segment bounds must align to.
	PageSize = 0x1000
	// CmdlineSize is the size of the guest command line buffer, including
	// the terminating NUL.
	CmdlineSize = 8192
)

// hvt: the KVM target.
const (
	// HVTBootInfoAddr is the guest physical address of struct hvt_boot_info,
	// passed to the guest in RDI.
	HVTBootInfoAddr = 0x10000
	// HVTBootInfoSizeV1 is the boot info size read by guests up to v0.10;
	// HVTBootInfoSize the size from v0.11 on. Old guests read a prefix.
	HVTBootInfoSizeV1 = 40
	HVTBootInfoSize   = 56
	// HVTHypercallPIOBase is the port of hypercall 0; hypercall n is an
	// outl of the argument struct's guest physical address to base+n.
	HVTHypercallPIOBase = 0x500
	// HVTRingKickPort is the port a v0.11+ guest writes to kick the net ring.
	HVTRingKickPort = 0x600
	// HVTHaltCookieMax is the size of the trap frame a HALT cookie points to.
	HVTHaltCookieMax = 512
	// HVTFeatureRingIO is the host_features bit announcing the net ring.
	HVTFeatureRingIO = 1
	// HVTMaxMem is the largest guest memory the tender maps (4 GiB, as
	// solo5-hvt from v0.9 on; v0.6 to v0.8 allowed 1 GiB).
	HVTMaxMem = 1 << 32
	// HVTMemAlign is the granularity of hvt guest memory (one 2 MiB page).
	HVTMemAlign = 2 << 20
)

// Offsets in struct hvt_boot_info.
const (
	HVTBootInfoMemSize       = 0
	HVTBootInfoKernelEnd     = 8
	HVTBootInfoCPUCycleFreq  = 16
	HVTBootInfoCmdline       = 24
	HVTBootInfoMft           = 32
	HVTBootInfoHostFeatures  = 40
	HVTBootInfoGuestFeatures = 44
	HVTBootInfoNetRing       = 48
)

// Hypercall numbers (port = HVTHypercallPIOBase + number).
const (
	HypercallWalltime   = 1
	HypercallPuts       = 2
	HypercallPoll       = 3
	HypercallBlockWrite = 4
	HypercallBlockRead  = 5
	HypercallNetWrite   = 6
	HypercallNetRead    = 7
	HypercallHalt       = 8
	HypercallMax        = 9
)

// Hypercall argument struct sizes and field offsets. Every field is a
// little-endian u64 except the ret and exit_status fields, which are i32.
const (
	WalltimeSize  = 8
	WalltimeNsecs = 0

	PutsSize = 16
	PutsData = 0
	PutsLen  = 8

	PollSize     = 24
	PollTimeout  = 0 // relative timeout in nanoseconds (IN)
	PollReadySet = 8 // bit set of ready handles (OUT)
	PollRet      = 16

	BlockSize   = 40 // for both BLOCK_WRITE and BLOCK_READ
	BlockHandle = 0
	BlockOffset = 8
	BlockData   = 16
	BlockLen    = 24
	BlockRet    = 32

	NetSize   = 32 // for both NET_WRITE and NET_READ
	NetHandle = 0
	NetData   = 8
	NetLen    = 16 // NET_READ: buffer size in, bytes read out
	NetRet    = 24

	HaltSize       = 16
	HaltCookie     = 0
	HaltExitStatus = 8
)

// Layout of the trap frame a HALT cookie points to after a guest CPU
// exception: seven u64.
const (
	TrapFrameSize   = 56
	TrapFrameCR2    = 0
	TrapFrameEC     = 8
	TrapFrameRIP    = 16
	TrapFrameCS     = 24
	TrapFrameRFLAGS = 32
	TrapFrameRSP    = 40
	TrapFrameSS     = 48
)

// Result is solo5_result_t, the status the guest receives from a call.
type Result int32

// Solo5 call results.
const (
	ResultOK      Result = 0
	ResultAgain   Result = 1
	ResultEINVAL  Result = 2
	ResultEUNSPEC Result = 3
)

// spt: the seccomp target.
const (
	// SPTHostMemBase is the lowest guest address the spt tender maps;
	// below it stays unmapped so that NULL dereferences fault.
	SPTHostMemBase = 0x10000
	// SPTBootInfoAddr is the address of struct spt_boot_info, passed in RDI.
	SPTBootInfoAddr = 0x11000
	SPTBootInfoSize = 40
	// SPTInternalTimerfd is the epoll data value of the yield timerfd.
	SPTInternalTimerfd = 0xFFFFFFFE
)

// Offsets in struct spt_boot_info.
const (
	SPTBootInfoMemSize   = 0
	SPTBootInfoKernelEnd = 8
	SPTBootInfoCmdline   = 16
	SPTBootInfoMft       = 24
	SPTBootInfoEpollfd   = 32 // i32
	SPTBootInfoTimerfd   = 36 // i32
)

// Manifest layout (struct mft and struct mft_entry).
const (
	ManifestVersion    = 1
	ManifestMaxEntries = 64 // including the reserved entry 0
	ManifestHeaderSize = 8
	// Offsets in struct mft: version u32, entries u32, then the entries.
	ManifestVersionOffset = 0
	ManifestEntriesOffset = 4
	ManifestEntrySize     = 104
	ManifestNameSize      = 68 // including the NUL, so names are at most 67 bytes

	EntryName          = 0
	EntryType          = 68
	EntryBlockCapacity = 72 // u64
	EntryBlockSize     = 80 // u16
	EntryNetMAC        = 72 // 6 bytes
	EntryNetMTU        = 78 // u16
	EntryHostFd        = 88 // int in a u64 slot
	EntryAttached      = 96 // bool
)
