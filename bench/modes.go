package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// Mode names. An spt unikernel under hvt runs in a VM whose syscall shim
// turns the guest's system calls into hypercalls.
const (
	ModeHVT      = "hvt"
	ModeSPT      = "spt"
	ModeSPTInHVT = "spt-in-hvt"
	ModeSolo5HVT = "solo5-hvt"
	ModeSolo5SPT = "solo5-spt"
	// ModeRunc runs a container from an OCI bundle with runc. It has no
	// Solo5 guest, so it measures only boot_ms: the bundle's program
	// should be a static hello.
	ModeRunc = "runc"
)

// AllModes lists every mode in table order: ntender's modes, then the
// upstream tenders they are compared with.
var AllModes = []string{ModeHVT, ModeSPT, ModeSPTInHVT, ModeSolo5HVT, ModeSolo5SPT}

// Mode is one way of running the benchmark guests: a tender program, its
// options and the guest target it runs.
type Mode struct {
	Name string `json:"name"`
	// Tender is the tender program, and TenderArgs the options that come
	// before the Solo5 options (such as --mode=hvt).
	Tender     string   `json:"tender"`
	TenderArgs []string `json:"tender_args,omitempty"`
	// Target is the guest binary suffix: "hvt" or "spt".
	Target string `json:"target"`
	// MemMiB is the guest memory given with --mem.
	MemMiB int `json:"mem_mib"`
	// Baseline names the upstream mode whose medians the ratios divide
	// by, or is empty for an upstream mode.
	Baseline string `json:"baseline,omitempty"`
	// Figures lists the figures the mode measures, or is empty when it
	// measures all of them.
	Figures []string `json:"figures,omitempty"`
	// Unavailable is the reason the mode could not run on this host, or
	// empty.
	Unavailable string `json:"unavailable,omitempty"`
}

// Measures reports whether m measures the figure named name.
func (m Mode) Measures(name string) bool {
	return len(m.Figures) == 0 || slices.Contains(m.Figures, name)
}

// Guest memory sizes, as the test guest table uses them: Solo5 hvt
// guests need room for their page tables, spt guests do not.
const (
	memHVT = 4
	memSPT = 2
)

// Tenders names the tender programs. An empty upstream path is looked up
// on PATH as solo5-hvt or solo5-spt.
type Tenders struct {
	Ntender  string
	Solo5HVT string
	Solo5SPT string
	// RuncBundle is the OCI bundle that the runc mode runs.
	RuncBundle string
}

// NewModes returns the named modes in the order given. An upstream mode
// whose tender is not found is returned with Unavailable set, so that
// reports show why its figures are missing.
func NewModes(names []string, t Tenders) ([]Mode, error) {
	var modes []Mode
	for _, name := range names {
		m := Mode{Name: name}
		switch name {
		case ModeHVT:
			m.Tender, m.TenderArgs, m.Target, m.MemMiB = t.Ntender, []string{"--mode=hvt"}, "hvt", memHVT
			m.Baseline = ModeSolo5HVT
		case ModeSPT:
			m.Tender, m.TenderArgs, m.Target, m.MemMiB = t.Ntender, []string{"--mode=spt"}, "spt", memSPT
			m.Baseline = ModeSolo5SPT
		case ModeSPTInHVT:
			// Compared with solo5-hvt because both pay for a VM exit
			// per call; solo5-spt runs the same binary without one.
			m.Tender, m.TenderArgs, m.Target, m.MemMiB = t.Ntender, []string{"--mode=hvt"}, "spt", memHVT
			m.Baseline = ModeSolo5HVT
		case ModeSolo5HVT:
			m.Target, m.MemMiB = "hvt", memHVT
			m.Tender, m.Unavailable = findTender(t.Solo5HVT, "solo5-hvt", t.Ntender)
		case ModeSolo5SPT:
			m.Target, m.MemMiB = "spt", memSPT
			m.Tender, m.Unavailable = findTender(t.Solo5SPT, "solo5-spt", t.Ntender)
		case ModeRunc:
			m.Figures = []string{"boot_ms"}
			m.Tender, m.Unavailable = findRunc(t.RuncBundle)
		default:
			return nil, fmt.Errorf("unknown mode %q: use one of %v or %s", name, AllModes, ModeRunc)
		}
		modes = append(modes, m)
	}
	return modes, nil
}

// findRunc returns the path of runc, or why the runc mode cannot run.
func findRunc(bundle string) (path, unavailable string) {
	if bundle == "" {
		return "", "no bundle: name one with --runc=BUNDLE"
	}
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		return "", fmt.Sprintf("invalid bundle: %v", err)
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		return "", "runc is not installed"
	}
	return p, ""
}

// findTender returns the absolute path of an upstream tender, from flag
// or else from PATH, or a reason why there is none. A tender that
// resolves to ntender (such as the bin/solo5-hvt link) is no baseline.
func findTender(flag, name, ntender string) (path, unavailable string) {
	if flag == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Sprintf("%s is not on PATH; name it with --%s=PATH", name, name)
		}
		flag = p
	}
	abs, err := filepath.Abs(flag)
	if err != nil {
		return "", fmt.Sprintf("%s: %v", flag, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Sprintf("%s not usable: %v", name, err)
	}
	resolved, err1 := filepath.EvalSymlinks(abs)
	self, err2 := filepath.EvalSymlinks(ntender)
	if err1 == nil && err2 == nil && resolved == self {
		return "", fmt.Sprintf("%s is ntender itself; name the upstream tender with --%s=PATH", abs, name)
	}
	return abs, ""
}
