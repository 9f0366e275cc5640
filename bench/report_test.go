package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDescribeMachineReadsProc(t *testing.T) {
	m := DescribeMachine()
	if m.CPUs < 1 {
		t.Errorf("CPUs = %d, expected at least 1", m.CPUs)
	}
	if m.MemoryMiB <= 0 {
		t.Errorf("MemoryMiB = %d, expected the size from /proc/meminfo", m.MemoryMiB)
	}
	if m.Kernel == "" {
		t.Error("Kernel is empty, expected the uname release")
	}
}

// sampleReport returns a report with one measured figure, one failed
// figure and one unavailable mode.
func sampleReport() *Report {
	ratio := 1.25
	return &Report{
		Settings: Settings{Runs: 3},
		Figures:  Figures()[:2],
		Modes: []Mode{
			{Name: ModeHVT, Baseline: ModeSolo5HVT},
			{Name: ModeSolo5HVT},
			{Name: ModeSPTInHVT, Unavailable: "not supported yet"},
		},
		Results: map[string]map[string]*Result{
			ModeHVT: {
				"boot_ms": {Summary: &Summary{Min: 10, Median: 12.5, Max: 20}, Ratio: &ratio},
				"rss_kib": {Error: "ptrace failed"},
			},
			ModeSolo5HVT: {
				"boot_ms": {Summary: &Summary{Min: 9, Median: 10, Max: 11}},
				"rss_kib": {Summary: &Summary{Min: 1700, Median: 1764, Max: 1800}},
			},
		},
	}
}

func TestWriteTableRows(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"runs per figure: 3",
		"12.5", "1.25 vs solo5-hvt",
		"failed",
		"hvt rss_kib: ptrace failed",
		"spt-in-hvt: unavailable: not supported yet",
		"1764",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var decoded Report
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	boot := decoded.Results[ModeHVT]["boot_ms"]
	if boot == nil || boot.Summary == nil || boot.Median != 12.5 {
		t.Errorf("hvt boot_ms = %+v, expected median 12.5", boot)
	}
	if boot != nil && (boot.Ratio == nil || *boot.Ratio != 1.25) {
		t.Errorf("hvt boot_ms ratio = %v, expected 1.25", boot.Ratio)
	}
	failed := decoded.Results[ModeHVT]["rss_kib"]
	if failed == nil || failed.Summary != nil || failed.Error != "ptrace failed" {
		t.Errorf("hvt rss_kib = %+v, expected only the error", failed)
	}
	if decoded.Modes[2].Unavailable != "not supported yet" {
		t.Errorf("modes = %+v, expected spt-in-hvt unavailable", decoded.Modes)
	}
}
