package measure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Settings changes kernel tracing settings (tracefs and /proc/sys files,
// tracefs instances and the tracefs mount) and records how to undo each
// change. Restore undoes them in reverse order. Every change goes through
// Settings, so that one deferred Restore covers every exit path of the
// caller except SIGKILL.
type Settings struct {
	undo []undoStep
}

type undoStep struct {
	description string
	fn          func() error
}

// Write sets the file at path to value after reading its current value,
// which Restore writes back. Files whose read format differs from their
// write format (a bracketed choice list, a set of pids, an "expanded"
// buffer size) are converted, see restoreValue.
func (s *Settings) Write(path, value string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading tracing setting %s: %w", path, err)
	}
	restore, err := restoreValue(path, string(old))
	if err != nil {
		return err
	}
	if err := writeSetting(path, value); err != nil {
		return err
	}
	s.undo = append(s.undo, undoStep{
		description: "restoring " + path,
		fn: func() error {
			return restoreSetting(path, restore)
		},
	})
	return nil
}

// Mkdir creates a directory, such as a tracefs instance, that Restore
// removes.
func (s *Settings) Mkdir(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	s.undo = append(s.undo, undoStep{
		description: "removing " + path,
		fn:          func() error { return os.Remove(path) },
	})
	return nil
}

// AddUndo registers a step that Restore runs, such as an unmount.
func (s *Settings) AddUndo(description string, fn func() error) {
	s.undo = append(s.undo, undoStep{description: description, fn: fn})
}

// Restore undoes every change in reverse order, continues past failures
// and returns them joined. A second call does nothing.
func (s *Settings) Restore() error {
	var errs []error
	for _, step := range slices.Backward(s.undo) {
		if err := step.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", step.description, err))
		}
	}
	s.undo = nil
	return errors.Join(errs...)
}

// Pending returns the number of changes Restore would undo.
func (s *Settings) Pending() int {
	return len(s.undo)
}

func writeSetting(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("setting %s: %w", path, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("setting %s to %q: %w", path, value, err)
	}
	return nil
}

// restoreSetting writes back an old value. A pid list is emptied by
// opening it with O_TRUNC and refilled one pid per O_APPEND write, as
// tracefs takes them.
func restoreSetting(path string, values []string) error {
	if !isPidList(path) {
		return writeSetting(path, values[0])
	}
	if err := writeSetting(path, ""); err != nil {
		return err
	}
	for _, v := range values {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("restoring %s: %w", path, err)
		}
		_, err = f.WriteString(v)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("restoring %s to %q: %w", path, v, err)
		}
	}
	return nil
}

func isPidList(path string) bool {
	switch filepath.Base(path) {
	case "set_event_pid", "set_ftrace_pid", "set_ftrace_notrace_pid":
		return true
	}
	return false
}

var (
	bracketed    = regexp.MustCompile(`\[([^\]]+)\]`)
	expandedSize = regexp.MustCompile(`^(\d+)( \(expanded: \d+\))?$`)
)

// restoreValue converts what path contains to the writes that restore it.
//
//   - trace_clock lists every clock with the current one in brackets.
//   - buffer_size_kb reads "N (expanded: M)" before the buffer is used.
//   - set_event_pid, set_ftrace_pid and set_ftrace_notrace_pid list one pid
//     per line, or "no pid" for none.
//   - Every other file reads as it is written, trailing newline aside.
func restoreValue(path, content string) ([]string, error) {
	content = strings.TrimSpace(content)
	if isPidList(path) {
		if content == "" || content == "no pid" {
			return nil, nil
		}
		return strings.Fields(content), nil
	}
	switch filepath.Base(path) {
	case "trace_clock":
		m := bracketed.FindStringSubmatch(content)
		if m == nil {
			return nil, fmt.Errorf("reading %s: no current clock in %q", path, content)
		}
		return []string{m[1]}, nil
	case "buffer_size_kb":
		m := expandedSize.FindStringSubmatch(content)
		if m == nil {
			return nil, fmt.Errorf("reading %s: unexpected content %q", path, content)
		}
		return []string{m[1]}, nil
	}
	return []string{content}, nil
}
