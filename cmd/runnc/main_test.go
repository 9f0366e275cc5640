package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logEntry is what containerd's runc shim decodes from each --log line to
// find the last error.
type logEntry struct {
	Level string
	Msg   string
}

func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []logEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	return entries
}

func TestErrorsGoToJSONLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log.json")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"state", "missing"}, "container does not exist: missing"},
		{[]string{"start", "missing"}, "does not exist"},
		{[]string{"kill", "missing", "9"}, "does not exist"},
		{[]string{"delete", "missing"}, "does not exist"},
		{[]string{"kill", "missing", "SIGNOPE"}, `invalid signal "SIGNOPE"`},
		{[]string{"state", "../x"}, "invalid container ID"},
		{[]string{"create", "--bundle", dir, "c1"}, "ntender binary not found"},
		{[]string{"exec", "--pid-file", "p", "c1"}, "runnc does not support exec"},
		{[]string{"pause", "c1"}, "runnc does not support pause"},
	}
	for _, c := range cases {
		os.Remove(logPath)
		argv := append([]string{"runnc", "--root", filepath.Join(dir, "root"), "--log", logPath, "--log-format", "json",
			"--ntender", filepath.Join(dir, "no-ntender")}, c.args...)
		if status := mainStatus(argv); status != 1 {
			t.Errorf("%v: exit status %d, want 1", c.args, status)
		}
		entries := readLog(t, logPath)
		if len(entries) == 0 {
			t.Errorf("%v: nothing logged", c.args)
			continue
		}
		last := entries[len(entries)-1]
		if last.Level != "error" {
			t.Errorf("%v: level %q, want error (lowercase, as containerd matches it)", c.args, last.Level)
		}
		if !strings.Contains(last.Msg, c.want) {
			t.Errorf("%v: message %q lacks %q", c.args, last.Msg, c.want)
		}
	}
}

func TestForceDeleteMissingSucceeds(t *testing.T) {
	dir := t.TempDir()
	if status := mainStatus([]string{"runnc", "--root", dir, "delete", "--force", "missing"}); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
}

func TestInvalidLogFormat(t *testing.T) {
	if status := mainStatus([]string{"runnc", "--log-format", "xml", "list"}); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
}

func TestSpecWritesLoadableConfig(t *testing.T) {
	dir := t.TempDir()
	if status := mainStatus([]string{"runnc", "spec", "--bundle", dir}); status != 0 {
		t.Fatalf("exit status %d", status)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Process struct{ Args []string }
		Root    struct{ Path string }
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if len(spec.Process.Args) != 1 || spec.Process.Args[0] != "/unikernel.hvt" || spec.Root.Path != "rootfs" {
		t.Errorf("config.json: %s", data)
	}
	// A second spec must not overwrite the bundle's configuration.
	if status := mainStatus([]string{"runnc", "spec", "--bundle", dir}); status != 1 {
		t.Errorf("second spec: exit status %d, want 1", status)
	}
}

func TestListEmptyRoot(t *testing.T) {
	dir := t.TempDir()
	if status := mainStatus([]string{"runnc", "--root", filepath.Join(dir, "none"), "list", "--format", "json"}); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
}

// An invalid ID fails every verb before runnc looks for ntender or creates
// the state root.
func TestInvalidIDRejectedFirst(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	logPath := filepath.Join(dir, "log.json")
	long := strings.Repeat("x", 256)
	cases := [][]string{
		{"create", "--bundle", dir, "../x"},
		{"run", "--bundle", dir, "a/b"},
		{"create", "--bundle", dir, long},
		{"start", ".."},
		{"delete", "--force", "."},
		{"kill", long, "KILL"},
		{"state", ""},
	}
	for _, args := range cases {
		os.Remove(logPath)
		argv := append([]string{"runnc", "--root", root, "--log", logPath, "--log-format", "json",
			"--ntender", filepath.Join(dir, "no-ntender")}, args...)
		if status := mainStatus(argv); status != 1 {
			t.Errorf("%.40q: exit status %d, want 1", args, status)
		}
		entries := readLog(t, logPath)
		var errs []logEntry
		for _, e := range entries {
			if e.Level == "error" {
				errs = append(errs, e)
			}
		}
		if len(errs) != 1 {
			t.Errorf("%.40q: %d error entries, want 1: %v", args, len(errs), errs)
			continue
		}
		if !strings.Contains(errs[0].Msg, "invalid container ID") {
			t.Errorf("%.40q: message %q, want an invalid container ID", args, errs[0].Msg)
		}
		if _, err := os.Stat(root); err == nil {
			t.Errorf("%.40q: the state root was created", args)
		}
	}
}

func TestDeleteCorruptState(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	logPath := filepath.Join(dir, "log.json")
	state := filepath.Join(root, "c1", "state.json")
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte(`{"id": "c1", "pid": 12`), 0o600); err != nil {
		t.Fatal(err)
	}

	argv := []string{"runnc", "--root", root, "--log", logPath, "--log-format", "json", "delete", "c1"}
	if status := mainStatus(argv); status != 1 {
		t.Errorf("delete: exit status %d, want 1", status)
	}
	entries := readLog(t, logPath)
	if len(entries) != 1 {
		t.Fatalf("delete: %d log entries, want one error: %v", len(entries), entries)
	}
	for _, want := range []string{state, "corrupt", "delete --force c1"} {
		if !strings.Contains(entries[0].Msg, want) {
			t.Errorf("delete: message %q lacks %q", entries[0].Msg, want)
		}
	}

	argv = []string{"runnc", "--root", root, "delete", "--force", "c1"}
	if status := mainStatus(argv); status != 0 {
		t.Errorf("delete --force: exit status %d, want 0", status)
	}
	if _, err := os.Stat(filepath.Dir(state)); err == nil {
		t.Error("delete --force left the state directory")
	}
}
