package measure

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A FIFO replaces trace_pipe here: both return EAGAIN to a non-blocking
// read while a writer is open and nothing is buffered.
func TestPipeReaderDrainsUntilStop(t *testing.T) {
	in := &instance{dir: t.TempDir()}
	path := filepath.Join(in.dir, "trace_pipe")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	pipe, err := in.openPipe(stop)
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	writer, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	read := make(chan string, 1)
	go func() {
		data, err := io.ReadAll(pipe)
		if err != nil {
			t.Error(err)
		}
		read <- string(data)
	}()
	if _, err := writer.WriteString("first\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.WriteString("second\n"); err != nil {
		t.Fatal(err)
	}
	close(stop)

	if got := <-read; got != "first\nsecond\n" {
		t.Errorf("read %q, expected both lines written before stop", got)
	}
}
