package main

import (
	"bytes"
	"log/slog"
	"testing"
)

func TestLineHandlerFormat(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newLineHandler(&buf, "ntender", slog.LevelInfo))
	log.Info("backend chosen", "mode", "hvt", "reason", "KVM is usable")
	log.With("unikernel", "a.hvt").WithGroup("dev").Warn("slow", "size", 3)
	log.Debug("hidden")
	log.Error("failed", "err", "", "note", `say "hi"`)

	want := `ntender: info: backend chosen mode=hvt reason="KVM is usable"
ntender: warning: slow unikernel=a.hvt dev.size=3
ntender: error: failed err="" note="say \"hi\""
`
	if got := buf.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
