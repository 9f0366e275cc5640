// Package vmm is the hvt backend: it runs a Solo5 hvt unikernel in a KVM
// virtual machine with one vCPU. It also runs Solo5 spt unikernels in the
// same kind of VM, in ring 3 as in a process, through a syscall shim that
// turns each SYSCALL into a VM exit served with the spt backend's
// allow-list (see shim.go).
//
// Run sizes and maps guest memory, loads the unikernel's segments, builds
// the boot GDT, identity page tables, boot info, manifest and command line
// below 0x100000, puts the vCPU in 64-bit long mode and runs it on a locked
// OS thread. decodeExit decodes each VM exit from the kvm_run area and
// handleIO serves each hypercall over guest memory. Both are pure functions
// over byte slices, so tests drive them with synthetic exits.
// A v0.11+ guest with a network device also gets the net ring: an ioeventfd
// on port 0x600 and an I/O goroutine on its own OS thread.
//
// The package returns errors and does not log. Config.Log receives the
// non-fatal messages that solo5-hvt prints as warnings.
//
// Security: every guest address, from a hypercall or the ring, goes
// through GuestMemory, which checks bounds and overflow and rejects host
// writes to read-only segments. Devices only get byte slices. After setup
// and before the guest's first instruction, Run confines all threads of
// the process with a seccomp filter (hvtPolicy): KVM_RUN on the vCPU fd,
// I/O on the attached fds, and what the Go runtime needs. It closes the
// fds it inherited first. A guest mistake
// ends the guest with an error naming the exit reason and the instruction
// pointer, but the guest cannot end the tender process any other way.
package vmm
