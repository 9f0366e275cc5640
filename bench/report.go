package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Report is the result of Run, and the --json output of ntender bench.
type Report struct {
	Machine  Machine  `json:"machine"`
	Settings Settings `json:"settings"`
	Figures  []Figure `json:"figures"`
	Modes    []Mode   `json:"modes"`
	// Results maps a mode name and a figure name to the result. Modes
	// that are unavailable have no entry.
	Results map[string]map[string]*Result `json:"results"`
}

// Settings are the iteration counts of a report.
type Settings struct {
	Runs          int   `json:"runs"`
	Calls         int   `json:"calls"`
	BlockRequests int   `json:"block_requests"`
	BlockSizes    []int `json:"block_sizes"`
	Pings         int   `json:"pings"`
}

// Result is one figure in one mode: a summary of its samples, or the
// error that stopped it.
type Result struct {
	*Summary
	// Ratio is this mode's median over the baseline mode's median from
	// the same run, when both exist.
	Ratio *float64 `json:"ratio,omitempty"`
	Error string   `json:"error,omitempty"`
}

func newReport(b *Bench) *Report {
	return &Report{
		Machine: DescribeMachine(),
		Settings: Settings{
			Runs:          b.cfg.Runs,
			Calls:         b.cfg.Calls,
			BlockRequests: b.cfg.BlockRequests,
			BlockSizes:    BlockSizes,
			Pings:         b.cfg.Pings,
		},
		Figures: Figures(),
		Results: make(map[string]map[string]*Result),
	}
}

// computeRatios fills Ratio in every result whose mode has a baseline
// with a result for the same figure.
func (r *Report) computeRatios() {
	for _, m := range r.Modes {
		base := r.Results[m.Baseline]
		if m.Baseline == "" || base == nil {
			continue
		}
		for name, res := range r.Results[m.Name] {
			b := base[name]
			if res.Summary == nil || b == nil || b.Summary == nil {
				continue
			}
			if ratio, ok := Ratio(res.Median, b.Median); ok {
				res.Ratio = &ratio
			}
		}
	}
}

// Machine describes the host a report was measured on.
type Machine struct {
	CPU       string `json:"cpu"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	// KVMModules lists the loaded KVM modules, such as kvm_amd or
	// kvm_pvm (a paravirtual KVM used on nested-virtualization hosts).
	KVMModules []string `json:"kvm_modules"`
	Go         string   `json:"go"`
	Date       string   `json:"date"`
}

// DescribeMachine returns what /proc and uname say about this host.
// Fields it cannot read are left empty.
func DescribeMachine() Machine {
	m := Machine{
		CPUs: runtime.NumCPU(),
		Go:   runtime.Version(),
		Date: time.Now().UTC().Format(time.RFC3339),
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	// MemTotal reads "24683520 kB".
	fields := strings.Fields(procField("/proc/meminfo", "MemTotal"))
	if len(fields) == 2 && fields[1] == "kB" {
		if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			m.MemoryMiB = kb / 1024
		}
	}
	for _, mod := range []string{"kvm", "kvm_intel", "kvm_amd", "kvm_pvm"} {
		if _, err := os.Stat("/sys/module/" + mod); err == nil {
			m.KVMModules = append(m.KVMModules, mod)
		}
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "".
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report as JSON: %w", err)
	}
	return nil
}

// WriteTable writes one row per figure and mode: median, min, max and
// the ratio to the baseline. Unavailable modes are listed with the
// reason below the table.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s, %d CPUs, Linux %s, KVM modules %s; runs per figure: %d\n\n",
		r.Machine.CPU, r.Machine.CPUs, r.Machine.Kernel,
		strings.Join(r.Machine.KVMModules, ","), r.Settings.Runs)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FIGURE\tMODE\tMEDIAN\tMIN\tMAX\tRATIO\t")
	for _, fig := range r.Figures {
		for _, m := range r.Modes {
			res := r.Results[m.Name][fig.Name]
			if res == nil {
				continue
			}
			label := fig.Name + " (" + fig.Unit + ")"
			if res.Summary == nil {
				fmt.Fprintf(tw, "%s\t%s\tfailed\t\t\t\t\n", label, m.Name)
				continue
			}
			ratio := ""
			if res.Ratio != nil {
				ratio = fmt.Sprintf("%.2f vs %s", *res.Ratio, m.Baseline)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", label, m.Name,
				formatValue(res.Median), formatValue(res.Min), formatValue(res.Max), ratio)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	var notes []string
	for _, m := range r.Modes {
		if m.Unavailable != "" {
			notes = append(notes, fmt.Sprintf("%s: unavailable: %s", m.Name, m.Unavailable))
		}
		for _, fig := range r.Figures {
			if res := r.Results[m.Name][fig.Name]; res != nil && res.Error != "" {
				notes = append(notes, fmt.Sprintf("%s %s: %s", m.Name, fig.Name, res.Error))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(slices.Compact(notes), "\n"))
	}
	return nil
}

// formatValue prints v with three significant digits or as an integer.
func formatValue(v float64) string {
	if v >= 1000 || v == float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
