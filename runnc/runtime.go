package runnc

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Runtime runs the lifecycle verbs on the containers under Root.
type Runtime struct {
	// Root is the directory holding one state directory per container.
	Root    string
	Options Options
	// SystemdCgroup makes cgroupsPath take the systemd form
	// slice:prefix:name.
	SystemdCgroup bool
	// Self is the runnc binary that runs the container init; empty means
	// /proc/self/exe.
	Self string
	Log  *slog.Logger
}

// CreateOptions are the create command's options.
type CreateOptions struct {
	PidFile       string
	ConsoleSocket string
	// Stdio are the container's standard input, output and error. A nil
	// entry means runnc's own, which is how the runc shim passes them.
	Stdio [3]*os.File
}

func (r *Runtime) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// LoadSpec reads bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	p := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the bundle configuration: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", p, err)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, fmt.Errorf("%s has no root.path", p)
	}
	return &spec, nil
}

// Create prepares container id from the bundle and leaves its init waiting
// for Start. It returns the init process, which the caller may wait for.
func (r *Runtime) Create(id, bundle string, o CreateOptions) (*os.Process, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	c, err := loadContainer(r.Root, id)
	if err == nil {
		_, err := Transition(id, c.CurrentStatus(), OpCreate)
		return nil, err
	}
	if !errors.Is(err, ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state root %s: %w", r.Root, err)
	}
	dir := filepath.Join(r.Root, id)
	// Mkdir fails on an existing directory, so two creates of one ID
	// cannot both proceed.
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &TransitionError{ID: id, Op: OpCreate, From: Creating}
		}
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}

	proc, err := r.create(id, bundle, dir, o)
	var cleanupErr *createCleanupError
	if err != nil && !errors.As(err, &cleanupErr) {
		os.RemoveAll(dir)
	}
	return proc, err
}

// createCleanupError is a failed create that could not remove all it had
// made. The state stays in status Creating, so that delete --force can
// remove the rest.
type createCleanupError struct {
	ID      string
	Err     error
	Cleanup error
}

func (e *createCleanupError) Error() string {
	return fmt.Sprintf("%v; undoing the create failed too: %v; run runnc delete --force %s to remove the rest", e.Err, e.Cleanup, e.ID)
}

func (e *createCleanupError) Unwrap() []error { return []error{e.Err, e.Cleanup} }

func (r *Runtime) create(id, bundle, dir string, o CreateOptions) (*os.Process, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("resolving the bundle path: %w", err)
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	launch, err := PlanLaunch(spec, rootfs, r.Options)
	if err != nil {
		return nil, err
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" {
		return nil, errors.New("process.terminal is true but no --console-socket was given")
	}
	nsp, err := planNamespaces(spec.Linux)
	if err != nil {
		return nil, err
	}
	var cgPath string
	var res *specs.LinuxResources
	if spec.Linux != nil {
		cgPath, res = spec.Linux.CgroupsPath, spec.Linux.Resources
	}
	cgPath, err = ResolveCgroupsPath(cgPath, id, r.SystemdCgroup)
	if err != nil {
		return nil, err
	}

	c := &Container{
		ID:          id,
		Bundle:      bundle,
		Rootfs:      rootfs,
		Created:     time.Now().UTC(),
		Owner:       owner(),
		Annotations: spec.Annotations,
		Status:      Creating,
		Hooks:       spec.Hooks,
		NetnsPath:   netnsPath(spec.Linux),
		dir:         dir,
	}
	if err := unix.Mkfifo(c.fifoPath(), 0o600); err != nil {
		return nil, fmt.Errorf("creating the exec FIFO: %w", err)
	}
	if err := c.save(); err != nil {
		return nil, err
	}

	cmd, parentSock, err := r.startInit(c, spec, nsp, o)
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	// fail undoes what create made so far. What it cannot remove stays
	// recorded in the state, which then outlives the failed create.
	fail := func(err error) (*os.Process, error) {
		cmd.Process.Kill()
		cmd.Wait()
		var leftovers []string
		if c.Cgroup != nil {
			// Hooks that the init started may outlive it.
			if rerr := emptyCgroup(c.Cgroup); rerr != nil {
				leftovers = append(leftovers, rerr.Error())
			}
			if rerr := c.Cgroup.Remove(); rerr != nil {
				leftovers = append(leftovers, rerr.Error())
			}
		}
		// Taps in a new network namespace ended with the init, but taps in
		// a joined one stay until they are removed.
		if c.NetnsPath != "" && len(c.Networks) > 0 {
			if rerr := DetachNetworks(c.NetnsPath, c.Networks); rerr != nil {
				leftovers = append(leftovers, rerr.Error())
			}
		}
		if len(leftovers) == 0 {
			return nil, err
		}
		cleanup := errors.New(strings.ReplaceAll(strings.Join(leftovers, "; "), "\n", "; "))
		r.log().Warn("cleaning up after a failed create", "id", id, "error", cleanup)
		if serr := c.save(); serr != nil {
			r.log().Warn("recording what a failed create left", "id", id, "error", serr)
		}
		return nil, &createCleanupError{ID: id, Err: err, Cleanup: cleanup}
	}

	c.Pid = cmd.Process.Pid
	if c.PidStartTime, _, err = processStartTime(c.Pid); err != nil {
		return fail(fmt.Errorf("reading the start time of the container init: %w", err))
	}
	if err := c.save(); err != nil {
		return fail(err)
	}
	r.log().Debug("container init started", "id", id, "pid", c.Pid)

	c.Cgroup, err = PlaceCgroup(cgPath, res, c.Pid)
	if err != nil {
		return fail(fmt.Errorf("placing the container in cgroup %s: %w", cgPath, err))
	}
	if err := c.save(); err != nil {
		return fail(err)
	}

	state := c.hookState(Creating)
	if spec.Hooks != nil {
		if err := runHooks("createRuntime", spec.Hooks.CreateRuntime, state); err != nil {
			return fail(err)
		}
		//lint:ignore SA1019 Docker sets up container networking in a prestart hook.
		prestart := spec.Hooks.Prestart
		if err := runHooks("prestart", prestart, state); err != nil {
			return fail(err)
		}
	}

	// The taps are recorded by name before the init makes them. If the
	// init or create dies before the init reports, delete and fail still
	// find the taps of a joined network namespace.
	c.Networks = plannedNetworks(launch.Nets)
	if err := c.save(); err != nil {
		return fail(err)
	}
	req := initRequest{Launch: launch, Fifo: c.fifoPath(), State: state}
	if spec.Hooks != nil {
		req.CreateContainer, req.StartContainer = spec.Hooks.CreateContainer, spec.Hooks.StartContainer
	}
	if err := json.NewEncoder(parentSock).Encode(req); err != nil {
		return fail(fmt.Errorf("sending the launch to the container init: %w", err))
	}
	var reply initReply
	if err := json.NewDecoder(parentSock).Decode(&reply); err != nil {
		return fail(fmt.Errorf("reading the container init's report: %w", err))
	}
	c.Networks = reply.Networks
	if reply.Error != "" {
		return fail(errors.New(reply.Error))
	}

	next, err := Transition(id, c.Status, OpCreated)
	if err != nil {
		return fail(err)
	}
	c.Status = next
	if err := c.save(); err != nil {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, c.Pid); err != nil {
			return fail(err)
		}
	}
	r.log().Info("container created", "id", id, "pid", c.Pid, "mode", launch.Mode, "unikernel", launch.Unikernel)
	return cmd.Process, nil
}

// startInit starts the container init in its namespaces with the stdio of
// the container and returns it with create's end of their socket.
func (r *Runtime) startInit(c *Container, spec *specs.Spec, nsp nsPlan, o CreateOptions) (*exec.Cmd, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the init socket: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "init-socket")
	childSock := os.NewFile(uintptr(fds[1]), "init-socket")
	defer childSock.Close()

	self := r.Self
	if self == "" {
		self = "/proc/self/exe"
	}
	cmd := exec.Command(self, "init")
	// The tender gets absolute paths only, so its working directory need
	// not pin the bundle.
	cmd.Dir = "/"
	cmd.Env = []string{InitSocketEnv + "=3"}
	cmd.ExtraFiles = []*os.File{childSock}
	stdio := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	for i, f := range o.Stdio {
		if f != nil {
			stdio[i] = f
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	if spec.Process.Terminal {
		master, slave, err := newPty()
		if err != nil {
			parentSock.Close()
			return nil, nil, err
		}
		defer slave.Close()
		err = sendConsole(o.ConsoleSocket, master)
		master.Close()
		if err != nil {
			parentSock.Close()
			return nil, nil, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	}
	if err := startIn(cmd, nsp, spec.Linux); err != nil {
		parentSock.Close()
		return nil, nil, fmt.Errorf("starting the container init: %w", err)
	}
	return cmd, parentSock, nil
}

// plannedNetworks returns the attachments of devices before the init has
// made them: the device and tap names only.
func plannedNetworks(devices []NetDevice) []NetAttachment {
	var atts []NetAttachment
	for _, d := range devices {
		atts = append(atts, NetAttachment{Device: d.Device, Tap: tapName(d.Index)})
	}
	return atts
}

func owner() string {
	if uid := os.Getuid(); uid != 0 {
		return strconv.Itoa(uid)
	}
	return "root"
}

// writePidFile writes pid to path through a temporary file and a rename,
// so a reader never sees an empty file.
func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("writing the pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the pid file: %w", err)
	}
	return nil
}

// Load returns the state of container id.
func (r *Runtime) Load(id string) (*Container, error) {
	return loadContainer(r.Root, id)
}

// List returns every container under the root.
func (r *Runtime) List() ([]*Container, error) {
	return listContainers(r.Root)
}

// Start releases the init of a created container to run the tender.
func (r *Runtime) Start(id string) error {
	c, err := loadContainer(r.Root, id)
	if err != nil {
		return err
	}
	next, err := Transition(id, c.CurrentStatus(), OpStart)
	if err != nil {
		return err
	}
	if err := releaseInit(c); err != nil {
		return err
	}
	os.Remove(c.fifoPath())
	c.Status = next
	if err := c.save(); err != nil {
		return err
	}
	r.log().Info("container started", "id", id, "pid", c.Pid)
	if c.Hooks != nil {
		// A failed poststart hook does not stop the container, as the
		// runtime specification requires.
		if err := runHooks("poststart", c.Hooks.Poststart, c.hookState(Running)); err != nil {
			r.log().Warn("poststart hook failed", "id", id, "error", err)
		}
	}
	return nil
}

// releaseInit opens the exec FIFO for reading, which unblocks the init's
// open for writing, and reads the init's byte. It watches the init through
// a pidfd, so an init that dies meanwhile is an error and not a hang.
func releaseInit(c *Container) error {
	pidfd, err := openPidfd(c)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	fifo, err := unix.Open(c.fifoPath(), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the exec FIFO of container %s: %w", c.ID, err)
	}
	defer unix.Close(fifo)

	buf := make([]byte, 1)
	for {
		fds := []unix.PollFd{{Fd: int32(fifo), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("waiting for the init of container %s: %w", c.ID, err)
		}
		if fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0 {
			n, err := unix.Read(fifo, buf)
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			if err != nil {
				return fmt.Errorf("reading the exec FIFO of container %s: %w", c.ID, err)
			}
			if n == 1 {
				return nil
			}
			return fmt.Errorf("the init of container %s closed the exec FIFO without starting", c.ID)
		}
		if fds[1].Revents != 0 {
			return fmt.Errorf("the init of container %s (pid %d) exited before start", c.ID, c.Pid)
		}
	}
}

// openPidfd opens a pidfd for the container's process and checks that the
// pid was not reused by another process.
func openPidfd(c *Container) (int, error) {
	pidfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return -1, fmt.Errorf("container %s (pid %d) is not running: %w", c.ID, c.Pid, err)
	}
	// The pidfd pins the pid, so a start time that still matches now
	// proves the pidfd refers to the container's process.
	if start, _, err := processStartTime(c.Pid); err != nil || start != c.PidStartTime {
		unix.Close(pidfd)
		return -1, fmt.Errorf("container %s (pid %d) is not running: the process is gone", c.ID, c.Pid)
	}
	return pidfd, nil
}

// waitPidfd blocks until the process behind pidfd has exited.
func waitPidfd(pidfd int) error {
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err
	}
}

// Kill sends sig to the container's process, or with all to every process
// in its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := loadContainer(r.Root, id)
	if err != nil {
		return err
	}
	status := c.CurrentStatus()

	if all && c.Cgroup != nil {
		// runc kill --all also reaches processes left in the cgroup of a
		// stopped container.
		pids, err := c.Cgroup.Pids()
		if err != nil {
			return err
		}
		if len(pids) > 0 || status == Stopped {
			for _, pid := range pids {
				if err := unix.Kill(pid, deliverableSignal(pid, sig)); err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("sending %v to pid %d of container %s: %w", sig, pid, id, err)
				}
			}
			return nil
		}
	}
	if _, err := Transition(id, status, OpKill); err != nil {
		return err
	}

	pidfd, err := openPidfd(c)
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	effective := deliverableSignal(c.Pid, sig)
	if effective != sig {
		r.log().Info("the tender is the init of its pid namespace and does not handle the signal, so SIGKILL ends it instead",
			"id", id, "pid", c.Pid, "signal", sig.String())
	}
	if err := unix.PidfdSendSignal(pidfd, effective, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("cannot kill container %s: container not running", id)
		}
		return fmt.Errorf("sending %v to container %s (pid %d): %w", effective, id, c.Pid, err)
	}
	return nil
}

// terminatingSignals are the signals whose default action ends the
// process, per signal(7), apart from SIGKILL.
var terminatingSignals = map[unix.Signal]bool{
	unix.SIGHUP: true, unix.SIGINT: true, unix.SIGQUIT: true, unix.SIGILL: true,
	unix.SIGTRAP: true, unix.SIGABRT: true, unix.SIGBUS: true, unix.SIGFPE: true,
	unix.SIGUSR1: true, unix.SIGSEGV: true, unix.SIGUSR2: true, unix.SIGPIPE: true,
	unix.SIGALRM: true, unix.SIGTERM: true, unix.SIGSTKFLT: true, unix.SIGXCPU: true,
	unix.SIGXFSZ: true, unix.SIGVTALRM: true, unix.SIGPROF: true, unix.SIGIO: true,
	unix.SIGPWR: true, unix.SIGSYS: true,
}

// deliverableSignal returns the signal that makes sig take effect on pid.
// The kernel drops a signal left at its default action when the target is
// the init of its pid namespace (pid_namespaces(7)). Under spt the tender
// runs the guest with every signal at its default action, so docker
// stop's SIGTERM would end it only after the stop timeout. For such a pid
// and a terminating sig this returns SIGKILL, which ends the process as
// sig would. Otherwise it returns sig.
func deliverableSignal(pid int, sig unix.Signal) unix.Signal {
	if !terminatingSignals[sig] {
		return sig
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return sig
	}
	var nsInit bool
	var caught, ignored uint64
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch key {
		case "NSpid":
			ids := strings.Fields(value)
			nsInit = len(ids) > 1 && ids[len(ids)-1] == "1"
		case "SigCgt":
			caught, _ = strconv.ParseUint(value, 16, 64)
		case "SigIgn":
			ignored, _ = strconv.ParseUint(value, 16, 64)
		}
	}
	bit := uint64(1) << (uint(sig) - 1)
	if nsInit && caught&bit == 0 && ignored&bit == 0 {
		return unix.SIGKILL
	}
	return sig
}

// ParseSignal parses a signal as a number or a name, with or without the
// SIG prefix: "9", "KILL", "SIGKILL".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: numbers run from 1 to 64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q: use a number or a name such as TERM or SIGKILL", s)
}

// Delete removes container id: its process, the processes left in its
// cgroup, the cgroup, the taps in a joined network namespace and the
// state, and then runs the poststop hooks. Without force the container
// must be created or stopped.
//
// With force, a container whose state file is corrupt is deleted too: the
// resources recorded in the part of the file that can still be read are
// removed, and a warning names the fields that were lost.
func (r *Runtime) Delete(id string, force bool) error {
	c, err := loadContainer(r.Root, id)
	var corrupt *CorruptStateError
	switch {
	case errors.Is(err, ErrNotExist):
		// A create that died before its first save leaves a directory
		// without state.json, which would block that ID forever.
		if rerr := os.RemoveAll(filepath.Join(r.Root, id)); rerr != nil {
			r.log().Warn("removing a state directory without state", "id", id, "error", rerr)
		}
		if force {
			return nil
		}
		return err
	case errors.As(err, &corrupt) && force:
		c = r.salvage(corrupt)
	case err != nil:
		return err
	}

	status := c.CurrentStatus()
	op := OpDelete
	if force {
		op = OpForceDelete
	}
	if _, err := Transition(id, status, op); err != nil {
		return err
	}

	var errs []error
	if status != Stopped && c.Pid != 0 {
		if err := killAndWait(c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Cgroup != nil {
		if err := emptyCgroup(c.Cgroup); err != nil {
			errs = append(errs, err)
		}
		if err := c.Cgroup.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.NetnsPath != "" && len(c.Networks) > 0 {
		if err := DetachNetworks(c.NetnsPath, c.Networks); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The state stays, so delete can be run again.
		return fmt.Errorf("deleting container %s: %w", id, err)
	}
	if c.Hooks != nil {
		// A failed poststop hook is only a warning, as the runtime
		// specification requires.
		if err := runHooks("poststop", c.Hooks.Poststop, c.hookState(Stopped)); err != nil {
			r.log().Warn("poststop hook failed", "id", id, "error", err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("removing the state of container %s: %w", id, err)
	}
	r.log().Info("container deleted", "id", id)
	return nil
}

// salvage returns what can be read of a corrupt state file and logs which
// of the resources that delete removes the file no longer records.
func (r *Runtime) salvage(corrupt *CorruptStateError) *Container {
	c, recovered := salvageContainer(r.Root, corrupt.ID)
	var lost []string
	for _, field := range []string{"pid", "pid_start_time", "cgroup", "netns_path", "networks", "hooks"} {
		if !slices.Contains(recovered, field) {
			lost = append(lost, field)
		}
	}
	r.log().Warn("deleting a container whose state file is corrupt; the resources in fields that could not be read are not removed",
		"id", corrupt.ID, "file", corrupt.Path, "error", corrupt.Err, "recovered", recovered, "unreadable_or_absent", lost)
	return c
}

// killAndWait sends SIGKILL to the container's process and waits until it
// has exited. A process that is already gone is not an error.
func killAndWait(c *Container) error {
	pidfd, err := openPidfd(c)
	if err != nil {
		return nil
	}
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing container %s (pid %d): %w", c.ID, c.Pid, err)
	}
	if err := waitPidfd(pidfd); err != nil {
		return fmt.Errorf("waiting for container %s (pid %d) to exit: %w", c.ID, c.Pid, err)
	}
	return nil
}

// emptyCgroup kills every process left in cg and waits until each has
// exited, so that its directories can be removed.
func emptyCgroup(cg *Cgroup) error {
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err == nil {
			waitPidfd(pidfd)
		}
		unix.Close(pidfd)
	}
	return nil
}

// forwardedSignals are the signals that Run passes on to the container:
// the ones a terminal, a shell or a supervisor sends to stop or notify a
// foreground process.
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
}

// Run creates and starts container id. Unless detach is set it waits for
// the tender, deletes the container and returns the exit status: the
// unikernel's, or 128 plus the signal that ended the tender. While it
// waits, it forwards forwardedSignals to the tender, as runc run does, so
// that Ctrl-C or a kill of runnc ends the container rather than leaving it
// running with no runnc left to delete it.
func (r *Runtime) Run(id, bundle string, o CreateOptions, detach bool) (int, error) {
	var signals chan os.Signal
	if !detach {
		// A signal that arrives during create waits in the channel and
		// goes to the tender once it has started.
		signals = make(chan os.Signal, len(forwardedSignals))
		signal.Notify(signals, forwardedSignals...)
		defer signal.Stop(signals)
	}
	proc, err := r.Create(id, bundle, o)
	if err != nil {
		return 0, err
	}
	if err := r.Start(id); err != nil {
		if derr := r.Delete(id, true); derr != nil {
			r.log().Warn("deleting a container that failed to start", "id", id, "error", derr)
		}
		return 0, err
	}
	if detach {
		return 0, proc.Release()
	}

	type waitResult struct {
		state *os.ProcessState
		err   error
	}
	exited := make(chan waitResult, 1)
	go func() {
		ps, err := proc.Wait()
		exited <- waitResult{ps, err}
	}()
	var result waitResult
	for waiting := true; waiting; {
		select {
		case sig := <-signals:
			r.log().Info("forwarding a signal to the container", "id", id, "signal", sig.String())
			if err := r.Kill(id, sig.(unix.Signal), false); err != nil {
				r.log().Warn("forwarding a signal to the container", "id", id, "signal", sig.String(), "error", err)
			}
		case result = <-exited:
			waiting = false
		}
	}
	if result.err != nil {
		if derr := r.Delete(id, true); derr != nil {
			r.log().Warn("deleting a container that runnc could not wait for", "id", id, "error", derr)
		}
		return 0, fmt.Errorf("waiting for container %s: %w", id, result.err)
	}
	status := result.state.ExitCode()
	if ws, ok := result.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	if err := r.Delete(id, false); err != nil {
		return status, err
	}
	return status, nil
}
