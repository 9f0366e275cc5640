package runnc

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features returns what runnc implements of the runtime specification, in
// the form of "runc features".
func Features() features.Features {
	yes, no := true, false
	var namespaces []string
	for t := range cloneFlags {
		namespaces = append(namespaces, string(t))
	}
	slices.Sort(namespaces)
	return features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  []string{"bind", "rbind", "ro", "rw"},
		Linux: &features.Linux{
			Namespaces: namespaces,
			Cgroup:     &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no, Rdma: &no},
			Seccomp:    &features.Seccomp{Enabled: &no},
			Apparmor:   &features.Apparmor{Enabled: &no},
			Selinux:    &features.Selinux{Enabled: &no},
		},
		Annotations: map[string]string{
			"org.opencontainers.runtime-spec.features.runnc.tender": "ntender",
		},
	}
}

// DefaultSpec returns the config.json that "runnc spec" writes: a bundle
// whose rootfs holds the unikernel /unikernel.hvt.
func DefaultSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: []string{"/unikernel.hvt"},
			Env:  []string{ModeEnv + "=auto"},
			Cwd:  "/",
		},
		Hostname: "runnc",
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
		},
	}
}
