package runnc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// InitSocketEnv is the environment variable that marks a runnc process as
// a container init. Its value is the file descriptor of the socket to
// create.
const InitSocketEnv = "_RUNNC_INIT_SOCKET"

// initRequest is the message create sends the container init once the
// namespaces, the cgroup and the createRuntime and prestart hooks are done.
type initRequest struct {
	Launch          *Launch      `json:"launch"`
	Fifo            string       `json:"fifo"`
	State           specs.State  `json:"state"`
	CreateContainer []specs.Hook `json:"create_container,omitempty"`
	StartContainer  []specs.Hook `json:"start_container,omitempty"`
}

// initReply is the init's reply: the attached networks, or why it failed.
type initReply struct {
	Error    string          `json:"error,omitempty"`
	Networks []NetAttachment `json:"networks,omitempty"`
}

// IsInit reports whether this process was started as a container init.
func IsInit() bool { return os.Getenv(InitSocketEnv) != "" }

// Init runs the container init: it attaches the networks, runs the
// createContainer hooks, reports to create, waits on the exec FIFO for
// start, runs the startContainer hooks and replaces itself with the
// tender. It returns only on failure.
func Init() error {
	fd, err := strconv.Atoi(os.Getenv(InitSocketEnv))
	if err != nil {
		return fmt.Errorf("invalid %s: %w", InitSocketEnv, err)
	}
	os.Unsetenv(InitSocketEnv)
	sock := os.NewFile(uintptr(fd), "init-socket")
	defer sock.Close()

	var req initRequest
	if err := json.NewDecoder(sock).Decode(&req); err != nil {
		return fmt.Errorf("reading the launch from create: %w", err)
	}
	argv, nets, err := prepareInit(&req)
	reply := initReply{Networks: nets}
	if err != nil {
		reply.Error = err.Error()
	}
	if werr := json.NewEncoder(sock).Encode(reply); werr != nil {
		return errors.Join(err, fmt.Errorf("reporting to create: %w", werr))
	}
	if err != nil {
		return err
	}
	sock.Close()

	// Opening the FIFO for writing blocks until start opens it for
	// reading. The byte written signals start that the init continues.
	fifo, err := os.OpenFile(req.Fifo, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the exec FIFO: %w", err)
	}
	if _, err := fifo.Write([]byte{0}); err != nil {
		return fmt.Errorf("writing the exec FIFO: %w", err)
	}
	fifo.Close()

	req.State.Status = specs.StateRunning
	if err := runHooks("startContainer", req.StartContainer, req.State); err != nil {
		return err
	}
	if err := setCredentials(req.Launch); err != nil {
		return err
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := syscall.Exec(argv[0], argv, env); err != nil {
		return fmt.Errorf("starting the tender %s: %w", argv[0], err)
	}
	return nil
}

// prepareInit attaches the networks and runs the createContainer hooks,
// the steps whose failure create reports.
func prepareInit(req *initRequest) ([]string, []NetAttachment, error) {
	l := req.Launch
	nets, err := AttachNetworks(l.Nets, l.UID, l.GID)
	if err != nil {
		return nil, nets, err
	}
	argv, err := l.Argv(nets)
	if err != nil {
		return nil, nets, err
	}
	if err := runHooks("createContainer", req.CreateContainer, req.State); err != nil {
		return nil, nets, err
	}
	return argv, nets, nil
}

// setCredentials switches to process.user. Go applies setuid and setgid
// to every thread of the process.
func setCredentials(l *Launch) error {
	if l.UID == 0 && l.GID == 0 && len(l.Groups) == 0 {
		return nil
	}
	groups := make([]int, len(l.Groups))
	for i, g := range l.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setting supplementary groups %v: %w", l.Groups, err)
	}
	if err := syscall.Setgid(int(l.GID)); err != nil {
		return fmt.Errorf("setting gid %d: %w", l.GID, err)
	}
	if err := syscall.Setuid(int(l.UID)); err != nil {
		return fmt.Errorf("setting uid %d: %w", l.UID, err)
	}
	return nil
}
