package runnc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// writeState saves c as container id's state under root and returns the
// path of the state file.
func writeState(t *testing.T, root string, c *Container) string {
	t.Helper()
	c.dir = filepath.Join(root, c.ID)
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(c.dir, stateFile)
}

// startSleeper starts a process that a test container can record as its
// init, and kills it when the test ends.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// corruptStates returns state files that loadContainer must reject, by
// name. Each is a state of container id.
func corruptStates(id string) map[string]string {
	valid := `{"id": "` + id + `", "pid": 0, "status": "stopped", "bundle": "/b"}`
	return map[string]string{
		"empty":          "",
		"truncated":      valid[:len(valid)/2],
		"garbage":        "\x00\x00\x00\x00",
		"not an object":  `["id"]`,
		"wrong type":     `{"id": "` + id + `", "pid": "12"}`,
		"other ID":       `{"id": "other", "status": "stopped"}`,
		"negative pid":   `{"id": "` + id + `", "pid": -1}`,
		"cgroup root":    `{"id": "` + id + `", "cgroup": {"dirs": ["/sys/fs/cgroup/pids"]}}`,
		"cgroup outside": `{"id": "` + id + `", "cgroup": {"dirs": ["/sys/fs/cgroup/../../etc"]}}`,
		"host interface": `{"id": "` + id + `", "netns_path": "/proc/1/ns/net", "networks": [{"tap": "eth0"}]}`,
	}
}

func TestLoadCorruptState(t *testing.T) {
	root := t.TempDir()
	for name, data := range corruptStates("c1") {
		dir := filepath.Join(root, "c1")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, stateFile)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}

		_, err := loadContainer(root, "c1")
		var corrupt *CorruptStateError
		if !errors.As(err, &corrupt) {
			t.Errorf("%s: error %v, want a *CorruptStateError", name, err)
			continue
		}
		msg := err.Error()
		for _, want := range []string{path, "is corrupt", "runnc delete --force c1"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q lacks %q", name, msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: message %q has more than one line", name, msg)
		}
	}
}

func TestDeleteCorruptState(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	for name, data := range corruptStates("c1") {
		dir := filepath.Join(rt.Root, "c1")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}

		var corrupt *CorruptStateError
		if err := rt.Delete("c1", false); !errors.As(err, &corrupt) {
			t.Errorf("%s: delete: error %v, want a *CorruptStateError", name, err)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: delete without --force removed the state: %v", name, err)
		}
		if err := rt.Delete("c1", true); err != nil {
			t.Errorf("%s: delete --force: %v", name, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: state directory left after delete --force: %v", name, err)
		}
	}
}

func TestCreateOverCorruptState(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	dir := filepath.Join(rt.Root, "c1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"id": "c1", "pi`), 0o600); err != nil {
		t.Fatal(err)
	}
	var corrupt *CorruptStateError
	if _, err := rt.Create("c1", t.TempDir(), CreateOptions{}); !errors.As(err, &corrupt) {
		t.Errorf("error %v, want a *CorruptStateError", err)
	}
}

// cutState returns the state file at path cut extra bytes after the
// first occurrence of marker.
func cutState(t *testing.T, path, marker string, extra int) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		t.Fatalf("state file lacks %q:\n%s", marker, data)
	}
	return data[:i+extra]
}

func TestSalvageTruncatedState(t *testing.T) {
	root := t.TempDir()
	c := &Container{
		ID: "c1", Pid: 4242, PidStartTime: 987654, Status: Running,
		NetnsPath: "/run/netns/x",
		Networks:  []NetAttachment{{Device: "service0", Iface: "eth0", Tap: "runnc1"}},
		Bundle:    "/bundle",
	}
	path := writeState(t, root, c)
	full := path + ".full"
	if err := os.Rename(path, full); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		marker    string
		extra     int
		recovered []string
	}{
		{"before pid", `"pid"`, 0, nil},
		{"inside the start time", `"pid_start_time"`, len(`"pid_start_time": 98`), []string{"pid"}},
		{"after the start time", `"status"`, 0, []string{"pid", "pid_start_time"}},
		{"inside networks", `"tap"`, 0, []string{"pid", "pid_start_time", "status", "netns_path"}},
		{"before bundle", `"bundle"`, 0, []string{"pid", "pid_start_time", "status", "netns_path", "networks"}},
	}
	for _, tc := range cases {
		if err := os.WriteFile(path, cutState(t, full, tc.marker, tc.extra), 0o600); err != nil {
			t.Fatal(err)
		}
		got, recovered := salvageContainer(root, "c1")
		if !slices.Equal(recovered, tc.recovered) {
			t.Errorf("%s: recovered %v, want %v", tc.name, recovered, tc.recovered)
		}
		if got.ID != "c1" || got.Dir() != c.dir {
			t.Errorf("%s: id %q dir %q, want c1 %s", tc.name, got.ID, got.Dir(), c.dir)
		}
		if slices.Contains(tc.recovered, "pid_start_time") && got.PidStartTime != c.PidStartTime {
			t.Errorf("%s: start time %d, want %d", tc.name, got.PidStartTime, c.PidStartTime)
		}
		if !slices.Contains(tc.recovered, "pid_start_time") && got.PidStartTime != 0 {
			t.Errorf("%s: start time %d from a cut value, want 0", tc.name, got.PidStartTime)
		}
		if slices.Contains(tc.recovered, "networks") && (len(got.Networks) != 1 || got.Networks[0].Tap != "runnc1") {
			t.Errorf("%s: networks %+v", tc.name, got.Networks)
		}
	}
}

// A field that fails validation is dropped, and the fields after it are
// still read.
func TestSalvageSkipsInvalidField(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data := `{"id": "c1", "pid": 7, "cgroup": {"dirs": ["/"]}, "networks": [{"tap": "runnc0"}], "bundle": "/b", "owner"`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, recovered := salvageContainer(root, "c1")
	if want := []string{"pid", "networks", "bundle"}; !slices.Equal(recovered, want) {
		t.Errorf("recovered %v, want %v", recovered, want)
	}
	if c.Cgroup != nil {
		t.Errorf("cgroup %+v recovered, want it dropped", c.Cgroup)
	}
	if c.Pid != 7 || c.Bundle != "/b" || len(c.Networks) != 1 {
		t.Errorf("container %+v lacks the valid fields", c)
	}
}

// TestForceDeleteKillsSalvagedProcess records a live process as the init
// of a container, cuts the state file after the pid's start time and
// checks that delete --force kills the process.
func TestForceDeleteKillsSalvagedProcess(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	sleeper := startSleeper(t)
	start, _, err := processStartTime(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	c := &Container{ID: "c1", Pid: sleeper.Process.Pid, PidStartTime: start, Status: Running, Bundle: "/bundle"}
	path := writeState(t, rt.Root, c)
	if err := os.WriteFile(path, cutState(t, path, `"status"`, 0), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := rt.Delete("c1", true); err != nil {
		t.Fatal(err)
	}
	err = sleeper.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("wait: %v, want the process killed", err)
	}
	if ws := exit.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ended with %v, want SIGKILL", exit)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory left: %v", err)
	}
}

// Without the start time the pid may belong to another process by now, so
// delete --force must leave it alone.
func TestForceDeleteSparesUnverifiedPid(t *testing.T) {
	rt := &Runtime{Root: t.TempDir()}
	sleeper := startSleeper(t)
	c := &Container{ID: "c1", Pid: sleeper.Process.Pid, PidStartTime: 1, Status: Running}
	path := writeState(t, rt.Root, c)
	if err := os.WriteFile(path, cutState(t, path, `"pid_start_time"`, 0), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := rt.Delete("c1", true); err != nil {
		t.Fatal(err)
	}
	if !processAlive(sleeper.Process.Pid, 0) {
		t.Error("delete --force killed a process whose start time it could not read")
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory left: %v", err)
	}
}
