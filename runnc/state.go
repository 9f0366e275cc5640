package runnc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// Container is the record of one container in its state directory
// <root>/<id>/state.json. The fields that name the process, the cgroup and
// the taps come first. A truncated file then keeps them whenever it keeps
// anything, and delete --force can still remove those resources.
type Container struct {
	ID string `json:"id"`
	// Pid is the container init process, which becomes the tender at start.
	Pid int `json:"pid"`
	// PidStartTime is field 22 of /proc/<pid>/stat when create started the
	// process. A live process with another start time reused the pid.
	PidStartTime uint64 `json:"pid_start_time"`
	// Status is the last status a verb recorded. Status derives the
	// current one from it and the process.
	Status Status `json:"status"`
	// Cgroup is the cgroup that create placed the process in, nil before
	// placement.
	Cgroup *Cgroup `json:"cgroup,omitempty"`
	// NetnsPath is the network namespace that config.json named by path,
	// or "" when the container got a new one. Taps in a joined namespace
	// outlive the container, so delete removes them.
	NetnsPath string          `json:"netns_path,omitempty"`
	Networks  []NetAttachment `json:"networks,omitempty"`
	Bundle    string          `json:"bundle"`
	Rootfs    string          `json:"rootfs"`
	Created   time.Time       `json:"created"`
	Owner     string          `json:"owner"`
	// Hooks are the config.json hooks that start and delete still run.
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	dir string
}

// Dir returns the container's state directory.
func (c *Container) Dir() string { return c.dir }

func (c *Container) fifoPath() string { return filepath.Join(c.dir, fifoFile) }

// CorruptStateError is a state file that cannot be parsed or records
// values that runnc never writes. Only delete --force removes such a
// container.
type CorruptStateError struct {
	ID   string
	Path string
	Err  error
}

func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("container %s: state file %s is corrupt: %v; runnc delete --force %s removes the container",
		e.ID, e.Path, e.Err, e.ID)
}

// Unwrap returns the parse or validation error.
func (e *CorruptStateError) Unwrap() error { return e.Err }

// loadContainer reads the state of container id under root.
func loadContainer(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state of container %s: %w", id, err)
	}
	c := &Container{dir: dir}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, &CorruptStateError{ID: id, Path: path, Err: err}
	}
	if err := c.validate(id); err != nil {
		return nil, &CorruptStateError{ID: id, Path: path, Err: err}
	}
	return c, nil
}

// validate rejects values that runnc never records, so that a damaged
// file cannot direct delete or kill at processes, cgroups or interfaces
// of something other than container id.
func (c *Container) validate(id string) error {
	if c.ID != id {
		return fmt.Errorf("it records container ID %q", c.ID)
	}
	if c.Pid < 0 {
		return fmt.Errorf("it records pid %d", c.Pid)
	}
	if c.Cgroup != nil {
		if err := c.Cgroup.check(); err != nil {
			return err
		}
	}
	if c.NetnsPath != "" && !filepath.IsAbs(c.NetnsPath) {
		return fmt.Errorf("it records the relative network namespace path %q", c.NetnsPath)
	}
	for _, n := range c.Networks {
		if !isTapName(n.Tap) {
			return fmt.Errorf("it records %q as a tap, which is not a name runnc gives taps", n.Tap)
		}
	}
	return nil
}

// salvageContainer reads what it can of the corrupt state file of
// container id: the leading top-level fields that are complete, valid JSON
// and pass validate. It stops at the first field that cannot be parsed,
// so a truncated file yields the fields before the cut. It also returns
// the names of the fields it recovered.
func salvageContainer(root, id string) (*Container, []string) {
	dir := filepath.Join(root, id)
	fields := map[string]json.RawMessage{"id": json.RawMessage(strconv.Quote(id))}
	decode := func() *Container {
		c := &Container{dir: dir}
		data, err := json.Marshal(fields)
		if err == nil {
			err = json.Unmarshal(data, c)
		}
		if err != nil || c.validate(id) != nil {
			return nil
		}
		return c
	}

	var recovered []string
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return &Container{ID: id, dir: dir}, recovered
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return &Container{ID: id, dir: dir}, recovered
	}
	for {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			break
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			break
		}
		// A number cut short at the end of the file still decodes, so a
		// value counts only when a ',' or '}' follows it.
		rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")
		if len(rest) == 0 || (rest[0] != ',' && rest[0] != '}') {
			break
		}
		// Each field is checked on its own against the ones recovered so
		// far, so one bad value loses only that field.
		previous, had := fields[key]
		fields[key] = value
		if decode() == nil {
			if had {
				fields[key] = previous
			} else {
				delete(fields, key)
			}
			continue
		}
		if key != "id" {
			recovered = append(recovered, key)
		}
	}
	c := decode()
	if c == nil {
		c = &Container{ID: id, dir: dir}
	}
	return c, recovered
}

// save writes the state file atomically, so a concurrent reader sees the
// old or the new state and never a partial one. The data reaches the disk
// before the rename, so a crash of the host cannot leave an empty or
// truncated file behind either.
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
	if err == nil {
		err = tmp.Sync()
	}
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
	// The rename is durable once the directory is synced.
	if err := syncDir(c.dir); err != nil {
		return fmt.Errorf("saving the state of container %s: %w", c.ID, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
