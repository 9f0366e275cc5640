package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestRunReportsEveryFigure runs the bench with few iterations and checks
// that its JSON has every figure for every mode that ran, and that hvt
// and spt ran.
func TestRunReportsEveryFigure(t *testing.T) {
	ntender, guests := requireBenchHost(t)
	cfg := DefaultConfig()
	cfg.Tenders = Tenders{Ntender: ntender, Solo5HVT: os.Getenv("NTENDER_SOLO5_HVT"), Solo5SPT: os.Getenv("NTENDER_SOLO5_SPT")}
	cfg.GuestDir = guests
	cfg.Runs, cfg.Calls, cfg.BlockRequests, cfg.Pings = 2, 20, 20, 20
	cfg.Timeout = 30 * time.Second
	report, err := Run(context.Background(), cfg)
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

	ran := make(map[string]bool)
	for _, m := range decoded.Modes {
		if m.Unavailable != "" {
			t.Logf("%s unavailable: %s", m.Name, m.Unavailable)
			continue
		}
		ran[m.Name] = true
		for _, fig := range Figures() {
			if !m.Measures(fig.Name) {
				continue
			}
			res := decoded.Results[m.Name][fig.Name]
			if res == nil {
				t.Errorf("%s: no %s in the JSON", m.Name, fig.Name)
				continue
			}
			if res.Error != "" || res.Summary == nil {
				t.Errorf("%s: %s failed: %s", m.Name, fig.Name, res.Error)
				continue
			}
			if len(res.Samples) != cfg.Runs {
				t.Errorf("%s: %s has %d samples, expected %d", m.Name, fig.Name, len(res.Samples), cfg.Runs)
			}
			if res.Median <= 0 {
				t.Errorf("%s: %s median is %v, expected a positive value", m.Name, fig.Name, res.Median)
			}
		}
	}
	for _, mode := range []string{ModeHVT, ModeSPT} {
		if !ran[mode] {
			t.Errorf("mode %s did not run", mode)
		}
	}
	if err := PlotReport(report, filepath.Join(t.TempDir(), "bench.png")); err != nil {
		t.Errorf("PlotReport: %v", err)
	}
}
