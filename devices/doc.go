// Package devices implements the host side of the Solo5 devices that both
// backends serve: the console, the clocks, block devices backed by files,
// network devices backed by tap interfaces, and the yield (poll) service.
//
// The package does not depend on KVM, seccomp or guest memory. A backend
// decodes a guest request, checks every guest pointer itself, and passes
// plain byte slices and offsets here. Each I/O method returns a Solo5
// result for mistakes the guest can see and correct (abi.ResultEINVAL,
// abi.ResultAgain), and a non-nil error only for host failures, which end
// the guest as the upstream tenders do.
//
// The package does not log.
//
// Security: a tap's file descriptor is kept out of the Go runtime's network
// poller, so that Read and Write are exactly one read(2) or write(2) on the
// descriptor. This keeps the system calls the backends must allow under
// seccomp predictable, and the spt backend hands the raw descriptors to the
// guest process.
package devices
