package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// skipOrFail skips the test with reason, or fails it when
// NTENDER_REQUIRE_ALL=1 requires every test to run.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

// requireBenchHost returns the ntender binary and the guest directory of
// this checkout, skipping the test when the host cannot run the bench.
func requireBenchHost(t *testing.T) (ntender, guests string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "the bench needs root for the ping network")
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		skipOrFail(t, "the bench needs /dev/kvm: "+err.Error())
	} else {
		f.Close()
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ntender = filepath.Join(root, "bin", "ntender")
	guests = filepath.Join(root, "tests", "guests", "build")
	for _, path := range []string{ntender, filepath.Join(guests, "bench_net.spt")} {
		if _, err := os.Stat(path); err != nil {
			skipOrFail(t, "not built, run make first: "+err.Error())
		}
	}
	return ntender, guests
}

// TestBenchCommandReportsEveryFigure runs `ntender bench --json` with
// few iterations and checks that the JSON has every figure for every
// mode that ran, that hvt and spt ran, and that the chart was written.
// NTENDER_SOLO5_HVT and NTENDER_SOLO5_SPT add the upstream tenders.
func TestBenchCommandReportsEveryFigure(t *testing.T) {
	ntender, guests := requireBenchHost(t)
	chart := filepath.Join(t.TempDir(), "bench.png")
	args := []string{"bench", "--json", "--runs=2", "--calls=20", "--block-requests=20",
		"--pings=20", "--timeout=30s", "--guests=" + guests, "--plot=" + chart}
	if path := os.Getenv("NTENDER_SOLO5_HVT"); path != "" {
		args = append(args, "--solo5-hvt="+path)
	}
	if path := os.Getenv("NTENDER_SOLO5_SPT"); path != "" {
		args = append(args, "--solo5-spt="+path)
	}
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

	ran := make(map[string]bool)
	for _, m := range report.Modes {
		if m.Unavailable != "" {
			t.Logf("%s unavailable: %s", m.Name, m.Unavailable)
			continue
		}
		ran[m.Name] = true
		for _, fig := range Figures() {
			if !m.Measures(fig.Name) {
				continue
			}
			res := report.Results[m.Name][fig.Name]
			if res == nil {
				t.Errorf("%s: no %s in the JSON", m.Name, fig.Name)
				continue
			}
			if res.Error != "" || res.Summary == nil {
				t.Errorf("%s: %s failed: %s", m.Name, fig.Name, res.Error)
				continue
			}
			if len(res.Samples) != 2 {
				t.Errorf("%s: %s has %d samples, expected 2", m.Name, fig.Name, len(res.Samples))
			}
			if res.Median <= 0 {
				t.Errorf("%s: %s median is %v, expected a positive value", m.Name, fig.Name, res.Median)
			}
			if m.Baseline != "" && ran[m.Baseline] && res.Ratio == nil {
				t.Errorf("%s: %s has no ratio to %s", m.Name, fig.Name, m.Baseline)
			}
		}
	}
	for _, mode := range []string{ModeHVT, ModeSPT} {
		if !ran[mode] {
			t.Errorf("mode %s did not run", mode)
		}
	}
	if info, err := os.Stat(chart); err != nil || info.Size() == 0 {
		t.Errorf("chart %s not written: %v", chart, err)
	}
}
