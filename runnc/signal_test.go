package runnc

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	cases := map[string]unix.Signal{
		"9": unix.SIGKILL, "15": unix.SIGTERM, "KILL": unix.SIGKILL,
		"SIGTERM": unix.SIGTERM, "term": unix.SIGTERM, "SIGRTMIN": 0,
	}
	for s, want := range cases {
		got, err := ParseSignal(s)
		if want == 0 {
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "65", "-1", "SIGFOO"} {
		if _, err := ParseSignal(s); err == nil {
			t.Errorf("ParseSignal(%q) accepted", s)
		}
	}
}

// The test process is not the init of a pid namespace, so every signal
// goes through unchanged.
func TestDeliverableSignalOutsidePidNamespace(t *testing.T) {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGKILL} {
		if got := deliverableSignal(os.Getpid(), sig); got != sig {
			t.Errorf("%v became %v", sig, got)
		}
	}
}
