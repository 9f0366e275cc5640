package measure

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile creates a stand-in for a tracefs file with content.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Regular files stand in for tracefs files here. They keep what is
// written, so the test checks the values Restore writes back; tracefs
// itself reformats some of them on read, which restoreValue handles.
func TestSettingsRestoreWritesOldValues(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"tracing_on":     "1\n",
		"current_tracer": "nop\n",
		"trace_clock":    "[local] global counter uptime perf mono\n",
		"buffer_size_kb": "7 (expanded: 1408)\n",
		"set_event_pid":  "",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	var s Settings
	changes := [][2]string{
		{"tracing_on", "0"},
		{"current_tracer", "function"},
		{"trace_clock", "global"},
		{"buffer_size_kb", "16384"},
		{"set_event_pid", "4242"},
	}
	for _, c := range changes {
		if err := s.Write(filepath.Join(dir, c[0]), c[1]); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(dir, c[0])); got != c[1] {
			t.Errorf("%s = %q after Write, expected %q", c[0], got, c[1])
		}
	}
	if s.Pending() != len(changes) {
		t.Errorf("Pending = %d, expected %d", s.Pending(), len(changes))
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	expected := map[string]string{
		"tracing_on":     "1",
		"current_tracer": "nop",
		"trace_clock":    "local",
		"buffer_size_kb": "7",
		"set_event_pid":  "",
	}
	for name, want := range expected {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q after Restore, expected %q", name, got, want)
		}
	}
	if s.Pending() != 0 {
		t.Errorf("Pending = %d after Restore, expected 0", s.Pending())
	}
}

func TestSettingsRestoreInReverseOrder(t *testing.T) {
	dir := t.TempDir()
	instance := filepath.Join(dir, "instances", "probe")
	if err := os.MkdirAll(filepath.Dir(instance), 0o755); err != nil {
		t.Fatal(err)
	}
	var s Settings
	var order []string
	s.AddUndo("unmount", func() error { order = append(order, "unmount"); return nil })
	if err := s.Mkdir(instance); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(instance, "tracing_on")
	writeFile(t, file, "1\n")
	if err := s.Write(file, "0"); err != nil {
		t.Fatal(err)
	}
	s.AddUndo("last", func() error { order = append(order, "last"); return nil })

	// The file must be restored before its directory is removed, and the
	// directory before the unmount.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, "0")
	err := s.Restore()
	if err == nil || !strings.Contains(err.Error(), "removing") {
		t.Errorf("Restore error = %v, expected the removal of the non-empty directory to fail", err)
	}
	if got := readFile(t, file); got != "1" {
		t.Errorf("tracing_on = %q, expected 1 restored before the removal", got)
	}
	if strings.Join(order, ",") != "last,unmount" {
		t.Errorf("undo order = %v, expected last then unmount", order)
	}
}

func TestSettingsRestoreContinuesPastFailure(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	writeFile(t, good, "old\n")
	writeFile(t, bad, "old\n")
	var s Settings
	if err := s.Write(good, "new"); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(bad, "new"); err != nil {
		t.Fatal(err)
	}
	// Make the later change impossible to undo.
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(); err == nil {
		t.Error("Restore reported no error for a setting it could not restore")
	}
	if got := readFile(t, good); got != "old" {
		t.Errorf("good = %q, expected old despite the earlier failure", got)
	}
	if err := s.Restore(); err != nil {
		t.Errorf("second Restore = %v, expected nothing left to do", err)
	}
}

func TestSettingsRestorePidList(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "set_ftrace_pid")
	writeFile(t, path, "12\n34\n")
	var s Settings
	if err := s.Write(path, "99"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}
	// tracefs takes pids in separate appending writes; a regular file
	// concatenates them.
	if got := readFile(t, path); got != "1234" {
		t.Errorf("set_ftrace_pid = %q, expected the writes 12 and 34", got)
	}
}

func TestRestoreValueRejectsUnknownClock(t *testing.T) {
	if _, err := restoreValue("/x/trace_clock", "local global"); err == nil {
		t.Error("a trace_clock without a bracketed clock was accepted")
	}
}
