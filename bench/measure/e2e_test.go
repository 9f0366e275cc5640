package measure

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

// TestMeasureCommandReportsEveryMode runs `ntender measure --json` on
// hello with one perf run per mode and checks that the JSON has every
// count for every mode that ran, and that the chart was written.
// NTENDER_SOLO5_HVT and NTENDER_SOLO5_SPT add the upstream tenders.
func TestMeasureCommandReportsEveryMode(t *testing.T) {
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
	chart := filepath.Join(t.TempDir(), "measure.png")
	args := []string{"measure", "--json", "--perf-runs=1", "--timeout=30s", "--plot=" + chart}
	if path := os.Getenv("NTENDER_SOLO5_HVT"); path != "" {
		args = append(args, "--solo5-hvt="+path)
	}
	if path := os.Getenv("NTENDER_SOLO5_SPT"); path != "" {
		args = append(args, "--solo5-spt="+path)
	}
	args = append(args, "--mem=4", hello, "Hello_Solo5")
	cmd := exec.Command(ntender, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ntender %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var report Report
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("decoding the JSON output: %v\n%s", err, out)
	}
	if report.KernelFunctionsMethod == "" {
		t.Error("the JSON does not name the method that counted kernel functions")
	}
	if report.SampledLowerBound && !strings.Contains(report.KernelFunctionsMethod, "sampled lower bound") {
		t.Errorf("method %q is not labelled a sampled lower bound", report.KernelFunctionsMethod)
	}
	if report.SampledLowerBound && report.FunctionTracerRejected == "" {
		t.Error("a sampled lower bound without the reason the function tracer was not used")
	}

	ran := make(map[string]bool)
	for _, m := range report.Modes {
		if m.Unavailable != "" {
			t.Logf("%s unavailable: %s", m.Name, m.Unavailable)
			continue
		}
		ran[m.Name] = true
		checkModeResult(t, m, report.SampledLowerBound)
	}
	for _, mode := range []string{bench.ModeHVT, bench.ModeSPT} {
		if !ran[mode] {
			t.Errorf("mode %s did not run", mode)
		}
	}
	if info, err := os.Stat(chart); err != nil || info.Size() == 0 {
		t.Errorf("chart %s not written: %v", chart, err)
	}
}

// checkModeResult checks every count of a Solo5 mode's measurement.
func checkModeResult(t *testing.T, m *ModeResult, sampled bool) {
	t.Helper()
	if m.Error != "" {
		t.Errorf("%s failed: %s", m.Name, m.Error)
		return
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
	if m.OutsideFilter == nil {
		t.Errorf("%s: no outside_filter list", m.Name)
	}
	if len(m.OutsideFilter) != 0 {
		t.Errorf("%s: syscalls made after the filter that it does not allow: %v", m.Name, m.OutsideFilter)
	}
	if m.KernelFunctions == 0 || m.KernelFunctions != len(m.KernelFunctionNames) {
		t.Errorf("%s: %d kernel functions, %d names", m.Name, m.KernelFunctions, len(m.KernelFunctionNames))
	}
	if sampled && m.KernelFunctionNamesAfterFilter == nil {
		t.Errorf("%s: no kernel functions after the filter", m.Name)
	}
}

// TestMeasureCommandRejectsNonRoot runs `ntender measure` as uid 65534
// and checks that it stops before touching any tracing setting.
func TestMeasureCommandRejectsNonRoot(t *testing.T) {
	requireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		skipOrFail(t, "setpriv (util-linux) is needed to drop root: "+err.Error())
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// uid 65534 may not reach the checkout (a clone under a 0700
	// directory), so the test runs copies from a directory it can.
	dir, err := os.MkdirTemp("", "ntender-nonroot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ntender", "ntender-bench"} {
		data, err := os.ReadFile(filepath.Join(root, "bin", name))
		if err != nil {
			skipOrFail(t, "not built, run make first: "+err.Error())
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ntender := filepath.Join(dir, "ntender")
	_, mountedBefore := findTracefs()

	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		ntender, "measure", "--json", "/nonexistent.hvt")
	out, err := cmd.CombinedOutput()
	status, werr := exitStatus(err)
	if werr != nil {
		t.Fatal(werr)
	}
	if status != 1 {
		t.Errorf("exit status %d, expected 1; output: %s", status, out)
	}
	if !strings.Contains(string(out), "needs root") {
		t.Errorf("output %q lacks the message that measuring needs root", out)
	}
	if _, mounted := findTracefs(); mounted != mountedBefore {
		t.Errorf("tracefs mounted = %v, expected %v as before", mounted, mountedBefore)
	}
}
