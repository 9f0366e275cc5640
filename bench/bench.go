package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Config sets what Run measures and how often.
type Config struct {
	Tenders Tenders
	// GuestDir contains the benchmark guests: hello, bench, bench_blk and
	// bench_net, each as NAME.hvt and NAME.spt.
	GuestDir string
	// Modes names the modes to run, from AllModes.
	Modes []string
	// Runs is how many times each workload runs in each mode.
	Runs int
	// Calls is the number of clock reads and of console writes per run.
	Calls int
	// BlockRequests is the number of block requests per run and size.
	BlockRequests int
	// Pings is the number of ICMP echo requests per run.
	Pings int
	// Timeout bounds one tender run.
	Timeout time.Duration
	// Progress, if not nil, is called before each step with the number
	// of steps done, the total and a label for the step.
	Progress func(done, total int, label string)
}

// DefaultConfig returns small iteration counts: under hvt every guest
// call is a VM exit, which costs tens of microseconds on nested
// virtualization, so larger counts mostly add waiting.
func DefaultConfig() Config {
	return Config{
		Modes:         slices.Clone(AllModes),
		Runs:          5,
		Calls:         1000,
		BlockRequests: 2000,
		Pings:         1000,
		Timeout:       60 * time.Second,
	}
}

// Bench is one benchmark run.
type Bench struct {
	cfg   Config
	modes []Mode
	// blockFile backs the "storage" device of bench_blk.
	blockFile string
	// netns and tap are the network the ping figures use.
	netns, tap string
	// containers counts the runc containers started, for unique ids.
	containers int
}

// blockFileSize is the capacity of the benchmark block device. Requests
// wrap around at the end, so it only needs to exceed the largest size.
const blockFileSize = 16 << 20

// Run measures every figure in every available mode and returns the
// report. A figure that fails in one mode is recorded with its error and
// does not stop the others. Run returns no report and an error when it
// cannot measure at all (bad configuration, no guests, no temporary
// directory), and the partial report with ctx.Err() when ctx ends first.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Runs < 1 || cfg.Calls < 1 || cfg.BlockRequests < 1 || cfg.Pings < 1 {
		return nil, fmt.Errorf("invalid iteration counts (runs %d, calls %d, block requests %d, pings %d): each must be at least 1",
			cfg.Runs, cfg.Calls, cfg.BlockRequests, cfg.Pings)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultConfig().Timeout
	}
	for _, name := range []string{"hello", "bench", "bench_blk", "bench_net"} {
		for _, target := range []string{"hvt", "spt"} {
			path := filepath.Join(cfg.GuestDir, name+"."+target)
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("benchmark guest missing: %w; build them with make", err)
			}
		}
	}
	modes, err := NewModes(cfg.Modes, cfg.Tenders)
	if err != nil {
		return nil, err
	}
	b := &Bench{cfg: cfg, modes: modes}

	dir, err := os.MkdirTemp("", "ntender-bench")
	if err != nil {
		return nil, fmt.Errorf("creating the benchmark directory: %w", err)
	}
	defer os.RemoveAll(dir)
	b.blockFile = filepath.Join(dir, "storage.img")
	if err := createBlockFile(b.blockFile, blockFileSize); err != nil {
		return nil, err
	}

	report := newReport(b)
	b.probeModes(ctx)

	var netErr error
	if b.anyMeasures("ping_pps") {
		cleanup, err := b.createNetwork()
		if err != nil {
			netErr = err
		} else {
			defer cleanup()
		}
	}
	b.measure(ctx, report, netErr)
	report.Modes = b.modes
	report.computeRatios()
	return report, ctx.Err()
}

// createBlockFile creates a file of size bytes filled with a pattern, so
// that reads come from real data in the page cache, not from a hole.
func createBlockFile(path string, size int) error {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("creating the block device file: %w", err)
	}
	return nil
}

// probeModes runs hello once in each mode and marks the modes that fail
// as unavailable, with the tender's own message. This also keeps the
// first, cold run out of the samples.
func (b *Bench) probeModes(ctx context.Context) {
	for i := range b.modes {
		m := &b.modes[i]
		if m.Unavailable != "" {
			continue
		}
		_, err := b.run(ctx, *m, helloRun())
		if err != nil {
			m.Unavailable = err.Error()
		}
	}
}

// anyMeasures reports whether an available mode measures figure.
func (b *Bench) anyMeasures(figure string) bool {
	for _, m := range b.modes {
		if m.Unavailable == "" && m.Measures(figure) {
			return true
		}
	}
	return false
}

// guestPath returns the path of guest binary name for target.
func (b *Bench) guestPath(name, target string) string {
	return filepath.Join(b.cfg.GuestDir, name+"."+target)
}

// measure runs every workload in every available mode and stores the
// summarized figures in report.
func (b *Bench) measure(ctx context.Context, report *Report, netErr error) {
	workloads := b.workloads()
	var available []Mode
	for _, m := range b.modes {
		if m.Unavailable == "" {
			available = append(available, m)
		}
	}
	samples, failed := b.sample(ctx, available, workloads, netErr)

	for _, m := range available {
		results := make(map[string]*Result)
		for _, w := range workloads {
			if !measures(m, w) {
				continue
			}
			for _, fig := range w.figures {
				results[fig] = summarizeFigure(samples[m.Name][fig], failed[m.Name][w.name], ctx.Err())
			}
		}
		report.Results[m.Name] = results
	}
}

// sample runs each workload Runs times in the modes that measure it and
// returns the samples by mode and figure, and the first error by mode and
// workload. The modes take turns within each repetition, so that a slow
// phase of the host affects all of them alike. After an error, the
// workload does not run again in that mode.
func (b *Bench) sample(ctx context.Context, modes []Mode, workloads []workload, netErr error) (
	samples map[string]map[string][]float64, failed map[string]map[string]error) {
	samples = make(map[string]map[string][]float64)
	failed = make(map[string]map[string]error)
	total := 0
	for _, m := range modes {
		samples[m.Name] = make(map[string][]float64)
		failed[m.Name] = make(map[string]error)
		for _, w := range workloads {
			if measures(m, w) {
				total += b.cfg.Runs
			}
		}
	}

	done := 0
	for _, w := range workloads {
		for run := 0; run < b.cfg.Runs; run++ {
			for _, m := range modes {
				if !measures(m, w) {
					continue
				}
				if b.cfg.Progress != nil {
					b.cfg.Progress(done, total, fmt.Sprintf("%s %s %d/%d", m.Name, w.name, run+1, b.cfg.Runs))
				}
				done++
				if ctx.Err() != nil || failed[m.Name][w.name] != nil {
					continue
				}
				if w.needsNet && netErr != nil {
					failed[m.Name][w.name] = netErr
					continue
				}
				values, err := w.run(ctx, m)
				if err != nil {
					failed[m.Name][w.name] = err
					continue
				}
				for name, v := range values {
					samples[m.Name][name] = append(samples[m.Name][name], v)
				}
			}
		}
	}
	if b.cfg.Progress != nil {
		b.cfg.Progress(total, total, "done")
	}
	return samples, failed
}

// measures reports whether mode m measures any figure of workload w.
func measures(m Mode, w workload) bool {
	for _, fig := range w.figures {
		if m.Measures(fig) {
			return true
		}
	}
	return false
}

// summarizeFigure returns the result of one figure in one mode. Samples
// from a workload that later failed are discarded, so every reported
// figure has all its runs.
func summarizeFigure(samples []float64, failure, canceled error) *Result {
	if failure == nil && canceled != nil {
		failure = canceled
	}
	if failure != nil {
		return &Result{Error: failure.Error()}
	}
	s, err := Summarize(samples)
	if err != nil {
		return &Result{Error: err.Error()}
	}
	return &Result{Summary: &s}
}
