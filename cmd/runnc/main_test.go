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
