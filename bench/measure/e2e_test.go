package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ntender/ntender/bench"
)

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "measuring needs root")
	}
}

// TestRestoreLeavesTracingAsFound changes the real tracing settings the
// way Measure does and checks that Restore brings back the mount state,
// the instance list and the sample rate.
func TestRestoreLeavesTracingAsFound(t *testing.T) {
	requireRoot(t)
	_, mountedBefore := findTracefs()
	rateBefore, err := os.ReadFile(sampleRatePath)
	if err != nil {
		t.Fatal(err)
	}

	var s Settings
	root, err := mountTracefs(&s)
	if err != nil {
		s.Restore()
		t.Fatal(err)
	}
	in, err := newInstance(&s, root, "ntender-measure-test", 1024)
	if err != nil {
		s.Restore()
		t.Fatal(err)
	}
	if err := s.Write(in.path("set_event_pid"), "1"); err != nil {
		s.Restore()
		t.Fatal(err)
	}
	if err := s.Write(sampleRatePath, "1000"); err != nil {
		s.Restore()
		t.Fatal(err)
	}
	if err := s.Restore(); err != nil {
		t.Fatal(err)
	}

	if _, mounted := findTracefs(); mounted != mountedBefore {
		t.Errorf("tracefs mounted = %v after Restore, expected %v", mounted, mountedBefore)
	}
	if mountedBefore {
		if _, err := os.Stat(in.dir); !os.IsNotExist(err) {
			t.Errorf("instance %s still exists after Restore: %v", in.dir, err)
		}
	}
	rateAfter, err := os.ReadFile(sampleRatePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rateAfter, rateBefore) {
		t.Errorf("sample rate = %q after Restore, expected %q", rateAfter, rateBefore)
	}
}

// TestMeasureReportsEveryMode measures hello with one perf run per mode
// and checks that the JSON has every count for every mode that ran.
func TestMeasureReportsEveryMode(t *testing.T) {
	requireRoot(t)
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		skipOrFail(t, "measuring hvt needs /dev/kvm: "+err.Error())
	} else {
		f.Close()
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ntender := filepath.Join(root, "bin", "ntender")
	hello := filepath.Join(root, "tests", "guests", "build", "hello.hvt")
	for _, path := range []string{ntender, hello} {
		if _, err := os.Stat(path); err != nil {
			skipOrFail(t, "not built, run make first: "+err.Error())
		}
	}
	cfg := Config{
		Tenders:   bench.Tenders{Ntender: ntender, Solo5HVT: os.Getenv("NTENDER_SOLO5_HVT"), Solo5SPT: os.Getenv("NTENDER_SOLO5_SPT")},
		Modes:     bench.AllModes,
		Unikernel: hello,
		Args:      []string{"Hello_Solo5"},
		RunFlags:  []string{"--mem=4"},
		PerfRuns:  1,
		Timeout:   30 * time.Second,
	}
	report, err := Measure(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var decoded Report
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.KernelFunctionsMethod == "" {
		t.Error("the JSON does not say how kernel functions were counted")
	}
	if decoded.SampledLowerBound && decoded.FunctionTracerRejected == "" {
		t.Error("a sampled lower bound without the reason the function tracer was not used")
	}

	ran := make(map[string]bool)
	for _, m := range decoded.Modes {
		if m.Unavailable != "" {
			t.Logf("%s unavailable: %s", m.Name, m.Unavailable)
			continue
		}
		ran[m.Name] = true
		if m.Error != "" {
			t.Errorf("%s failed: %s", m.Name, m.Error)
			continue
		}
		if m.Status != 0 {
			t.Errorf("%s: exit status %d, expected 0", m.Name, m.Status)
		}
		if !slices.Contains(m.Syscalls, "exit_group") {
			t.Errorf("%s: syscalls %v lack exit_group", m.Name, m.Syscalls)
		}
		if m.SyscallsAfterFilter == nil {
			t.Errorf("%s: no seccomp filter install was traced", m.Name)
		}
		if m.Filter == nil || len(m.Filter.Allowed) == 0 {
			t.Errorf("%s: no filter allow-list", m.Name)
		}
		if len(m.OutsideFilter) != 0 {
			t.Errorf("%s: syscalls made after the filter that it does not allow: %v", m.Name, m.OutsideFilter)
		}
		if m.KernelFunctions == 0 || m.KernelFunctions != len(m.KernelFunctionNames) {
			t.Errorf("%s: %d kernel functions, %d names", m.Name, m.KernelFunctions, len(m.KernelFunctionNames))
		}
	}
	for _, mode := range []string{bench.ModeHVT, bench.ModeSPT} {
		if !ran[mode] {
			t.Errorf("mode %s did not run", mode)
		}
	}
	if err := report.Plot(filepath.Join(t.TempDir(), "measure.png")); err != nil {
		t.Errorf("Plot: %v", err)
	}
}
