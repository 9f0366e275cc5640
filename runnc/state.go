package runnc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotExist is returned for a container ID with no state directory. Its
// message contains "does not exist", which containerd's runc shim matches.
var ErrNotExist = errors.New("container does not exist")

// Files in a container's state directory.
const (
	stateFile = "state.json"
	fifoFile  = "exec.fifo"
)

// validID is the container ID syntax runc accepts; it keeps an ID usable as
// one path element.
var validID = regexp.MustCompile(`^[\w+\-.]+$`)

func checkID(id string) error {
	if !validID.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container ID %q: use letters, digits, '_', '+', '-' and '.'", id)
	}
	return nil
}

// Container is the record of one container in its state directory
// <root>/<id>/state.json.
type Container struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	// Pid is the container init process, which becomes the tender at start.
	Pid int `json:"pid"`
	// PidStartTime is field 22 of /proc/<pid>/stat when create started the
	// process. A live process with another start time reused the pid.
	PidStartTime uint64            `json:"pid_start_time"`
	Created      time.Time         `json:"created"`
	Owner        string            `json:"owner"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Status is the last status a verb recorded. Status derives the
	// current one from it and the process.
	Status Status `json:"status"`
	// Hooks are the config.json hooks that start and delete still run.
	Hooks *specs.Hooks `json:"hooks,omitempty"`
	// Cgroup is the cgroup that create placed the process in, nil before
	// placement.
	Cgroup *Cgroup `json:"cgroup,omitempty"`
	// NetnsPath is the network namespace that config.json named by path,
	// or "" when the container got a new one. Taps in a joined namespace
	// outlive the container, so delete removes them.
	NetnsPath string          `json:"netns_path,omitempty"`
	Networks  []NetAttachment `json:"networks,omitempty"`

	dir string
}

// Dir returns the container's state directory.
func (c *Container) Dir() string { return c.dir }

func (c *Container) fifoPath() string { return filepath.Join(c.dir, fifoFile) }

// loadContainer reads the state of container id under root.
func loadContainer(root, id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state of container %s: %w", id, err)
	}
	c := &Container{dir: dir}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("reading the state of container %s: %s: %w", id, filepath.Join(dir, stateFile), err)
	}
	return c, nil
}

// save writes the state file atomically, so a concurrent reader sees the
// old or the new state and never a partial one.
func (c *Container) save() error {
	data, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return fmt.Errorf("encoding the state of container %s: %w", c.ID, err)
	}
	tmp, err := os.CreateTemp(c.dir, stateFile+".*")
	if err != nil {
		return fmt.Errorf("saving the state of container %s: %w", c.ID, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.dir, stateFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving the state of container %s: %w", c.ID, err)
	}
	return nil
}

// CurrentStatus derives the status from the recorded one and the process.
// A process that is gone, a zombie or a reused pid means Stopped. While
// the exec FIFO exists, the process has not been started.
func (c *Container) CurrentStatus() Status {
	if c.Status == Stopped || c.Pid == 0 {
		if c.Status == Creating && c.Pid == 0 {
			return Creating
		}
		return Stopped
	}
	if !processAlive(c.Pid, c.PidStartTime) {
		return Stopped
	}
	if c.Status == Creating {
		return Creating
	}
	if _, err := os.Stat(c.fifoPath()); err == nil {
		return Created
	}
	return Running
}

// OCIState returns the state as the OCI runtime specification and runc's
// state command print it, with runc's extra fields rootfs, created and
// owner, which containerd's go-runc reads.
func (c *Container) OCIState() any {
	status := c.CurrentStatus()
	pid := c.Pid
	if status == Stopped {
		pid = 0
	}
	return struct {
		specs.State
		Rootfs  string    `json:"rootfs"`
		Created time.Time `json:"created"`
		Owner   string    `json:"owner"`
	}{
		State: specs.State{
			Version:     specs.Version,
			ID:          c.ID,
			Status:      specs.ContainerState(status),
			Pid:         pid,
			Bundle:      c.Bundle,
			Annotations: c.Annotations,
		},
		Rootfs:  c.Rootfs,
		Created: c.Created,
		Owner:   c.Owner,
	}
}

// hookState is the state document hooks read on their standard input.
func (c *Container) hookState(status Status) specs.State {
	return specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(status),
		Pid:         c.Pid,
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
}

// processStartTime returns field 22 of /proc/<pid>/stat (starttime, in
// clock ticks since boot) and the state letter of field 3, as proc(5)
// describes them.
func processStartTime(pid int) (uint64, byte, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name in field 2 may contain spaces and parentheses, so
	// the fields are counted after its last ')'.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat: no ')' after the command name", pid)
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state) and fields[19] is field 22.
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat: %d fields after the command name, want at least 20", pid, len(fields))
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat starttime: %w", pid, err)
	}
	return start, fields[0][0], nil
}

// processAlive reports whether pid is still the process that had start
// time startTime and has not exited. A zombie (Z) or dead (X) process
// counts as exited.
func processAlive(pid int, startTime uint64) bool {
	start, state, err := processStartTime(pid)
	if err != nil {
		return false
	}
	if startTime != 0 && start != startTime {
		return false
	}
	return state != 'Z' && state != 'X'
}

// listContainers returns the containers under root, skipping directories
// that hold no readable state.
func listContainers(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing containers in %s: %w", root, err)
	}
	var list []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := loadContainer(root, e.Name())
		if err != nil {
			continue
		}
		list = append(list, c)
	}
	return list, nil
}
