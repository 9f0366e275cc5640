package runnc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var cloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// nsPlan is the set of namespaces of the container init: new ones come
// from clone flags, existing ones by path from setns(2) before the fork.
type nsPlan struct {
	cloneFlags uintptr
	joins      []nsJoin
}

type nsJoin struct {
	path string
	flag int
}

func planNamespaces(linux *specs.Linux) (nsPlan, error) {
	var p nsPlan
	if linux == nil {
		return p, nil
	}
	for _, ns := range linux.Namespaces {
		flag, ok := cloneFlags[ns.Type]
		if !ok {
			return p, fmt.Errorf("namespace type %q is not supported: remove it from linux.namespaces", ns.Type)
		}
		if ns.Path == "" {
			p.cloneFlags |= flag
			continue
		}
		// setns(2) refuses mount and user namespaces to a multithreaded
		// process, and the Go runtime always runs several threads.
		if ns.Type == specs.MountNamespace || ns.Type == specs.UserNamespace {
			return p, fmt.Errorf("joining an existing %s namespace (%s) is not supported: give it without a path", ns.Type, ns.Path)
		}
		p.joins = append(p.joins, nsJoin{path: ns.Path, flag: int(flag)})
	}
	return p, nil
}

// netnsPath returns the path of the network namespace that linux names by
// path, or "" when it requests a new one or none.
func netnsPath(linux *specs.Linux) string {
	if linux == nil {
		return ""
	}
	for _, ns := range linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path
		}
	}
	return ""
}

// startIn starts cmd in the namespaces of p. Joined namespaces are entered
// by one locked OS thread that then forks the child, so the child inherits
// them. The thread is never unlocked, so the Go runtime ends it with the
// goroutine instead of reusing it with foreign namespaces.
func startIn(cmd *exec.Cmd, p nsPlan, linux *specs.Linux) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Cloneflags = p.cloneFlags
	if p.cloneFlags&unix.CLONE_NEWUSER != 0 && linux != nil {
		for _, m := range linux.UIDMappings {
			cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings,
				syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range linux.GIDMappings {
			cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings,
				syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
	}
	if len(p.joins) == 0 {
		return cmd.Start()
	}

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, j := range p.joins {
			f, err := os.Open(j.path)
			if err != nil {
				errc <- fmt.Errorf("opening namespace %s: %w", j.path, err)
				return
			}
			err = unix.Setns(int(f.Fd()), j.flag)
			f.Close()
			if err != nil {
				errc <- fmt.Errorf("joining namespace %s: %w", j.path, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}
