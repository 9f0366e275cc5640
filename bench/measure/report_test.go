package measure

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampledReport() *Report {
	return &Report{
		KernelFunctionsMethod:  "perf sampling (sampled lower bound)",
		SampledLowerBound:      true,
		FunctionTracerRejected: "EPERM",
		PerfRuns:               5,
		Modes: []*ModeResult{
			{
				Name: "spt", Syscalls: []string{"arch_prctl", "exit_group", "write"},
				SyscallsAfterFilter: []string{"exit_group", "write"},
				OutsideFilter:       []string{},
				Filter:              &Filter{Allowed: []string{"exit_group", "write"}},
				KernelFunctions:     2, KernelFunctionNames: []string{"a", "b"},
				KernelFunctionsAfterFilter: 1, KernelFunctionNamesAfterFilter: []string{"a"},
			},
			{Name: "runc", Syscalls: []string{"clone"}, KernelFunctions: 3, KernelFunctionNames: []string{"a", "b", "c"}},
			{Name: "spt-in-hvt", Unavailable: "not supported yet"},
		},
	}
}

func TestWriteTableLabelsLowerBound(t *testing.T) {
	var buf bytes.Buffer
	if err := sampledReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"KERNEL FUNCTIONS (SAMPLED LOWER BOUND)",
		"sampled lower bound, merged over 5 perf runs",
		"spt: syscalls after filter: exit_group write",
		"runc: no seccomp filter was installed during the run",
		"spt-in-hvt: unavailable: not supported yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteTableWithoutSampling(t *testing.T) {
	r := sampledReport()
	r.SampledLowerBound = false
	r.KernelFunctionsMethod = "ftrace function tracer"
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(buf.String()), "lower bound") {
		t.Errorf("a traced count is labelled a lower bound:\n%s", buf.String())
	}
}

func TestWriteJSONLabelsLowerBound(t *testing.T) {
	var buf bytes.Buffer
	if err := sampledReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"sampled_lower_bound": true`, `"kernel_functions_method": "perf sampling (sampled lower bound)"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestPlotWritesPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "measure.png")
	if err := sampledReport().Plot(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Errorf("%s is not a PNG file", path)
	}
	if got := sampledReport().functionsLabel(); got != "kernel functions (sampled lower bound)" {
		t.Errorf("chart title = %q, expected the sampled lower bound label", got)
	}
}
