package bench

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
)

// Figure describes one measured quantity.
type Figure struct {
	Name        string `json:"name"`
	Unit        string `json:"unit"`
	Description string `json:"description"`
	// HigherIsBetter is true for throughputs, false for times and sizes.
	HigherIsBetter bool `json:"higher_is_better"`
}

// BlockSizes are the request sizes of the block figures, in bytes.
var BlockSizes = []int{512, 4096, 32768}

// blockFigure returns the name of the block figure for op ("read" or
// "write") at size bytes.
func blockFigure(op string, size int) string {
	return fmt.Sprintf("block_%s_%d_mbs", op, size)
}

// Figures returns every figure in report order.
func Figures() []Figure {
	figures := []Figure{
		{Name: "boot_ms", Unit: "ms", Description: "start of the tender to its exit, running hello"},
		{Name: "rss_kib", Unit: "KiB", Description: "peak resident set (VmHWM) of the tender process at its exit, running hello"},
		{Name: "clock_read_ns", Unit: "ns", Description: "one monotonic clock read, timed by the guest over N reads"},
		{Name: "wall_clock_read_ns", Unit: "ns", Description: "one wall clock read (a hypercall under hvt, a system call under spt), timed by the guest over N reads"},
		{Name: "console_write_ns", Unit: "ns", Description: "one 1-byte console write, timed by the guest over N writes"},
	}
	for _, op := range []string{"read", "write"} {
		for _, size := range BlockSizes {
			figures = append(figures, Figure{
				Name: blockFigure(op, size), Unit: "MB/s", HigherIsBetter: true,
				Description: fmt.Sprintf("sequential block %ss of %d bytes, timed by the guest (1 MB = 10^6 bytes)", op, size),
			})
		}
	}
	return append(figures,
		Figure{Name: "ping_pps", Unit: "packets/s", HigherIsBetter: true,
			Description: "ICMP echo requests answered per second under ping -f from the host, over a tap"},
		Figure{Name: "ping_rtt_us", Unit: "us", Description: "mean round-trip time under ping -f"},
	)
}

// workload is one guest run that yields one or more figures.
type workload struct {
	name     string
	figures  []string
	needsNet bool
	run      func(ctx context.Context, m Mode) (map[string]float64, error)
}

func helloRun() guestRun {
	return guestRun{binary: "hello", args: []string{"Hello_Solo5"}}
}

// workloads returns the workloads in the order they run.
func (b *Bench) workloads() []workload {
	ws := []workload{
		{name: "boot", figures: []string{"boot_ms"}, run: b.runBoot},
		{name: "rss", figures: []string{"rss_kib"}, run: b.runRSS},
		{name: "calls", figures: []string{"clock_read_ns", "wall_clock_read_ns", "console_write_ns"}, run: b.runCalls},
	}
	for _, op := range []string{"read", "write"} {
		for _, size := range BlockSizes {
			ws = append(ws, workload{
				name:    fmt.Sprintf("block %s %d", op, size),
				figures: []string{blockFigure(op, size)},
				run: func(ctx context.Context, m Mode) (map[string]float64, error) {
					return b.runBlock(ctx, m, op, size)
				},
			})
		}
	}
	return append(ws, workload{
		name: "ping", figures: []string{"ping_pps", "ping_rtt_us"},
		needsNet: true, run: b.runPing,
	})
}

func (b *Bench) runBoot(ctx context.Context, m Mode) (map[string]float64, error) {
	r, err := b.run(ctx, m, helloRun())
	if err != nil {
		return nil, err
	}
	return map[string]float64{"boot_ms": float64(r.wall.Nanoseconds()) / 1e6}, nil
}

// runRSS runs hello apart from the timed boots, because reading the peak
// at exit stops the process under ptrace.
func (b *Bench) runRSS(ctx context.Context, m Mode) (map[string]float64, error) {
	r, err := b.runPeakRSS(m, helloRun())
	if err != nil {
		return nil, err
	}
	return map[string]float64{"rss_kib": float64(r.maxRSSKiB)}, nil
}

var callsLine = regexp.MustCompile(`bench calls: (\d+) clock reads in (\d+) ns, (\d+) wall clock reads in (\d+) ns, (\d+) console writes in (\d+) ns`)

func (b *Bench) runCalls(ctx context.Context, m Mode) (map[string]float64, error) {
	g := guestRun{binary: "bench", args: []string{"calls", strconv.Itoa(b.cfg.Calls)}}
	r, err := b.run(ctx, m, g)
	if err != nil {
		return nil, err
	}
	return parseCalls(r.output)
}

// parseCalls returns the per-call times from the output of "bench calls".
func parseCalls(output string) (map[string]float64, error) {
	match := callsLine.FindStringSubmatch(output)
	if match == nil {
		return nil, fmt.Errorf("parsing bench calls output: no %q line in %q", "bench calls:", tail(output, 200))
	}
	n := make([]float64, 6)
	for i := range n {
		v, err := strconv.ParseUint(match[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing bench calls output %q: %w", match[0], err)
		}
		n[i] = float64(v)
	}
	if n[0] == 0 || n[2] == 0 || n[4] == 0 {
		return nil, fmt.Errorf("parsing bench calls output %q: zero calls", match[0])
	}
	return map[string]float64{
		"clock_read_ns":      n[1] / n[0],
		"wall_clock_read_ns": n[3] / n[2],
		"console_write_ns":   n[5] / n[4],
	}, nil
}

var blockLine = regexp.MustCompile(`bench blk(read|write): (\d+) requests of (\d+) bytes in (\d+) ns`)

func (b *Bench) runBlock(ctx context.Context, m Mode, op string, size int) (map[string]float64, error) {
	g := guestRun{
		binary: "bench_blk",
		args:   []string{"blk" + op, strconv.Itoa(size), strconv.Itoa(b.cfg.BlockRequests)},
		block:  map[string]string{"storage": b.blockFile},
	}
	r, err := b.run(ctx, m, g)
	if err != nil {
		return nil, err
	}
	mbs, err := parseBlock(r.output, op, size)
	if err != nil {
		return nil, err
	}
	return map[string]float64{blockFigure(op, size): mbs}, nil
}

// parseBlock returns the throughput in MB/s (10^6 bytes per second) from
// the output of "bench blkread" or "bench blkwrite", checking that the
// guest ran the requested operation and size.
func parseBlock(output, op string, size int) (float64, error) {
	match := blockLine.FindStringSubmatch(output)
	if match == nil {
		return 0, fmt.Errorf("parsing bench blk%s output: no %q line in %q", op, "bench blk"+op+":", tail(output, 200))
	}
	if match[1] != op || match[3] != strconv.Itoa(size) {
		return 0, fmt.Errorf("parsing bench blk%s output %q: expected %s of %d bytes", op, match[0], op, size)
	}
	requests, err1 := strconv.ParseUint(match[2], 10, 64)
	ns, err2 := strconv.ParseUint(match[4], 10, 64)
	if err1 != nil || err2 != nil || ns == 0 {
		return 0, fmt.Errorf("parsing bench blk%s output %q: invalid numbers", op, match[0])
	}
	return float64(requests) * float64(size) / float64(ns) * 1e3, nil
}
