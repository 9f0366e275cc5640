// Package runnc is an OCI runtime that runs Solo5 unikernel images with
// ntender, so that Docker and containerd's runc shim can start them with
// the runc command-line contract: create, start, state, kill and delete.
//
// A bundle's process.args[0] names a Solo5 unikernel file in the root
// filesystem and the other arguments go to the unikernel. create forks a
// container init process in the namespaces and cgroup that config.json
// names and runs the createRuntime and prestart hooks, where Docker
// configures the network. The init then attaches taps and waits on the
// exec FIFO in the state directory. start opens the FIFO, which releases
// the init to execve ntender, so the process that the runc shim reaps is
// the tender and its exit status is the unikernel's.
//
// State: each container has a directory <root>/<id> whose state.json
// records the init's pid, the cgroup and the taps. A verb that finds the
// file corrupt fails with a message that names it, and delete --force
// then removes the container and the resources that the readable part of
// the file still records. A create that cannot undo its own steps keeps
// its state for delete --force too. Container IDs follow runc's rule
// (see ValidateID).
//
// Network: for each interface of the container's network namespace the
// init creates a tap and links the two with tc ingress redirects (a u32
// filter that matches everything and a mirred egress redirect, in both
// directions), not a bridge. The kernel stack of the namespace then never
// receives the frames, the interface keeps the address Docker gave it,
// and the unikernel takes over the interface's MAC address, so peers and
// Docker's records stay valid.
//
// The unikernel never sees the root filesystem or the other mounts: only
// the mounts that become block devices reach it. Device cgroup rules,
// capabilities, AppArmor and the container's seccomp profile are not
// applied, because the tender needs /dev/kvm and the tap and confines
// itself with a seccomp filter tighter than a container profile before the
// guest runs.
package runnc
