package devices

import (
	"bytes"
	"errors"
	"testing"
)

// countingWriter records each Write call.
type countingWriter struct {
	calls [][]byte
	err   error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls = append(w.calls, append([]byte(nil), p...))
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func TestConsoleOneWritePerRequest(t *testing.T) {
	w := &countingWriter{}
	c := Console{W: w}
	c.Write([]byte("hello "))
	c.Write([]byte("world\n"))
	if len(w.calls) != 2 {
		t.Fatalf("Write calls = %d, want 2", len(w.calls))
	}
	if !bytes.Equal(w.calls[1], []byte("world\n")) {
		t.Errorf("second write = %q", w.calls[1])
	}
}

func TestConsoleIgnoresErrors(t *testing.T) {
	w := &countingWriter{err: errors.New("broken pipe")}
	Console{W: w}.Write([]byte("lost"))
	if len(w.calls) != 1 {
		t.Errorf("Write calls = %d, want 1", len(w.calls))
	}
}

func TestWallClockAfter2017(t *testing.T) {
	// 1483228800 s is 2017-01-01, the lower bound upstream's time test uses.
	if got := WallClock(); got < 1483228800e9 {
		t.Errorf("WallClock = %d ns, before 2017", got)
	}
}

func TestMonotonicClockNonDecreasing(t *testing.T) {
	a := MonotonicClock()
	b := MonotonicClock()
	if a == 0 || b < a {
		t.Errorf("MonotonicClock went %d then %d", a, b)
	}
}

func TestRandomMAC(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 64; i++ {
		mac, err := RandomMAC()
		if err != nil {
			t.Fatal(err)
		}
		if len(mac) != 6 {
			t.Fatalf("len = %d, want 6", len(mac))
		}
		if mac[0]&1 != 0 {
			t.Errorf("%v is multicast", mac)
		}
		if mac[0]&2 == 0 {
			t.Errorf("%v is not locally administered", mac)
		}
		seen[mac.String()] = true
	}
	if len(seen) < 60 {
		t.Errorf("only %d distinct addresses in 64", len(seen))
	}
}
