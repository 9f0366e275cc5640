// Package guests describes the project's own Solo5 test unikernels and
// what a tender must do with each of them.
//
// The guests are freestanding C programs in this directory (src/, lib/),
// built for the hvt and spt targets by `make -C tests/guests` into
// tests/guests/build/NAME.hvt and NAME.spt. guests.json lists, for every
// guest and target, the tender command line (memory, block and network
// devices, guest arguments) and the expected exit status and console
// output. Every backend's end-to-end tests read the same table through
// Cases, so the backends cannot drift apart in what they accept.
package guests

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Targets, as the Solo5 ABI names them.
const (
	TargetHVT = "hvt"
	TargetSPT = "spt"
)

// Case is one guest run on one target.
type Case struct {
	// Name identifies the case within its target, for example "blk-4096".
	Name string
	// Target is TargetHVT or TargetSPT.
	Target string
	// Binary is the guest's file name without the target suffix; see
	// Binary for the path.
	Binary string
	// Args are the guest's command-line arguments, after the unikernel.
	Args []string
	// MemMiB is the tender's --mem value in MiB.
	MemMiB int
	// Block lists the block devices to create and attach, in order.
	Block []BlockDevice
	// Net lists the network devices to attach, in order.
	Net []NetDevice
	// Ping lists the ICMP echo requests to send from the host once the
	// guest runs. The guest exits only after it has replied to them.
	Ping []Ping
	// Status is the expected exit status of the tender process, with
	// death by signal N reported as 128+N (139 SIGSEGV, 159 SIGSYS).
	Status int
	// Output lists substrings that the combined stdout and stderr must
	// contain.
	Output []string
	// NoOutput lists substrings that the combined output must not contain.
	NoOutput []string
	// Note explains an expectation that is not obvious, such as where
	// the upstream Solo5 tenders behave differently.
	Note string
	// Upstream, when not nil, is what the upstream Solo5 v0.12.1 tenders
	// do where that differs from Status, Output and NoOutput.
	Upstream *Expectation
	// HostIssues lists hosts on which the case is known to fail for
	// reasons outside the tender.
	HostIssues []HostIssue
}

// ID returns "NAME/TARGET", unique within the table.
func (c Case) ID() string {
	return c.Name + "/" + c.Target
}

// Expectation is the outcome of a run: the exit status and the
// substrings the output must and must not contain.
type Expectation struct {
	Status   int
	Output   []string
	NoOutput []string
}

// WithUpstreamExpectation returns c with the upstream Solo5 tenders'
// outcome as its expectation, for checking the table against them.
func (c Case) WithUpstreamExpectation() Case {
	if c.Upstream != nil {
		c.Status = c.Upstream.Status
		c.Output = c.Upstream.Output
		c.NoOutput = c.Upstream.NoOutput
	}
	return c
}

// BlockDevice is a backing file to create for a BLOCK_BASIC device.
type BlockDevice struct {
	// Name is the manifest name, as in --block:NAME=PATH.
	Name string `json:"name"`
	// Size is the file size in bytes, a multiple of the sector size.
	Size int64 `json:"size"`
	// SectorSize is the --block-sector-size value in bytes, or 0 to leave
	// the option out (the tender default of 512).
	SectorSize int `json:"sector_size,omitempty"`
}

// NetDevice is a NET_BASIC device attached to a tap on a test network.
type NetDevice struct {
	// Name is the manifest name, as in --net:NAME=TAP.
	Name string
	// Network names the test network of the tap.
	Network string
	// HostAddress is the tap's IPv4 address in CIDR notation, or empty
	// when the host needs no address on this network.
	HostAddress string
	// MTU is the MTU to set on the tap. The tender reports it to the
	// guest as the device MTU.
	MTU int
}

// Ping is a number of ICMP echo requests for one guest address.
type Ping struct {
	Address string `json:"address"`
	Count   int    `json:"count"`
}

// HostIssue marks a host on which a case fails for reasons outside the
// tender. The host is recognised by a loaded kernel module.
type HostIssue struct {
	// Module is the kernel module name, as under /sys/module.
	Module string `json:"module"`
	// Reason describes the failure.
	Reason string `json:"reason"`
}

// Present reports whether this host has the issue.
func (h HostIssue) Present() bool {
	_, err := os.Stat(filepath.Join("/sys/module", h.Module))
	return err == nil
}

// ActiveHostIssue returns the first of the case's host issues that this
// host has. Tests skip such a case with the issue's reason.
func (c Case) ActiveHostIssue() (HostIssue, bool) {
	for _, issue := range c.HostIssues {
		if issue.Present() {
			return issue, true
		}
	}
	return HostIssue{}, false
}

//go:embed guests.json
var tableJSON []byte

// table mirrors guests.json.
type table struct {
	Comment  string                  `json:"comment"`
	Mem      map[string]int          `json:"mem"`
	NoOutput []string                `json:"no_output"`
	Networks map[string]networkEntry `json:"networks"`
	Guests   []guestEntry            `json:"guests"`
}

type networkEntry struct {
	HostAddress string `json:"host_address"`
	MTU         int    `json:"mtu"`
}

type guestEntry struct {
	Name     string                 `json:"name"`
	Binary   string                 `json:"binary"`
	Args     []string               `json:"args"`
	Mem      int                    `json:"mem"`
	Block    []BlockDevice          `json:"block"`
	Net      []netEntry             `json:"net"`
	Ping     []Ping                 `json:"ping"`
	NoOutput []string               `json:"no_output"`
	Targets  map[string]targetEntry `json:"targets"`
}

type netEntry struct {
	Name    string `json:"name"`
	Network string `json:"network"`
}

type targetEntry struct {
	Status     *int           `json:"status"`
	Output     []string       `json:"output"`
	NoOutput   []string       `json:"no_output"`
	Note       string         `json:"note"`
	HostIssues []HostIssue    `json:"host_issues"`
	Upstream   *upstreamEntry `json:"upstream"`
}

// upstreamEntry replaces the expectation of a target entry as a whole;
// the table-wide no_output does not apply to it.
type upstreamEntry struct {
	Status   *int     `json:"status"`
	Output   []string `json:"output"`
	NoOutput []string `json:"no_output"`
}

// Cases returns every case in the table, in table order with hvt before
// spt for each guest. It returns an error if the table is inconsistent.
func Cases() ([]Case, error) {
	return parseTable(tableJSON)
}

func parseTable(data []byte) ([]Case, error) {
	var t table
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&t); err != nil {
		return nil, fmt.Errorf("decoding guests.json: %w", err)
	}

	var cases []Case
	seen := make(map[string]bool)
	for _, g := range t.Guests {
		if g.Name == "" || g.Binary == "" {
			return nil, fmt.Errorf("guests.json: guest %q: name and binary are required", g.Name)
		}
		if len(g.Targets) == 0 {
			return nil, fmt.Errorf("guests.json: guest %q: no targets", g.Name)
		}
		for _, target := range []string{TargetHVT, TargetSPT} {
			entry, ok := g.Targets[target]
			if !ok {
				continue
			}
			c, err := buildCase(t, g, target, entry)
			if err != nil {
				return nil, fmt.Errorf("guests.json: case %s/%s: %w", g.Name, target, err)
			}
			if seen[c.ID()] {
				return nil, fmt.Errorf("guests.json: case %s is listed twice", c.ID())
			}
			seen[c.ID()] = true
			cases = append(cases, c)
		}
		for target := range g.Targets {
			if target != TargetHVT && target != TargetSPT {
				return nil, fmt.Errorf("guests.json: guest %q: invalid target %q, expected hvt or spt",
					g.Name, target)
			}
		}
	}
	return cases, nil
}

func buildCase(t table, g guestEntry, target string, entry targetEntry) (Case, error) {
	c := Case{
		Name:       g.Name,
		Target:     target,
		Binary:     g.Binary,
		Args:       g.Args,
		MemMiB:     g.Mem,
		Block:      g.Block,
		Ping:       g.Ping,
		Output:     entry.Output,
		NoOutput:   slices.Concat(t.NoOutput, g.NoOutput, entry.NoOutput),
		Note:       entry.Note,
		HostIssues: entry.HostIssues,
	}
	if c.MemMiB == 0 {
		c.MemMiB = t.Mem[target]
	}
	if c.MemMiB <= 0 {
		return c, fmt.Errorf("invalid memory size %d MiB", c.MemMiB)
	}
	if entry.Status == nil {
		return c, fmt.Errorf("missing status")
	}
	c.Status = *entry.Status
	if c.Status < 0 || c.Status > 255 {
		return c, fmt.Errorf("invalid status %d, expected 0 to 255", c.Status)
	}
	if u := entry.Upstream; u != nil {
		if u.Status == nil {
			return c, fmt.Errorf("upstream: missing status")
		}
		if *u.Status < 0 || *u.Status > 255 {
			return c, fmt.Errorf("upstream: invalid status %d, expected 0 to 255", *u.Status)
		}
		c.Upstream = &Expectation{Status: *u.Status, Output: u.Output, NoOutput: u.NoOutput}
	}

	names := make(map[string]bool)
	for _, b := range c.Block {
		if err := checkDeviceName(names, b.Name); err != nil {
			return c, err
		}
		sector := int64(b.SectorSize)
		if sector == 0 {
			sector = 512
		}
		if sector < 512 || sector&(sector-1) != 0 {
			return c, fmt.Errorf("block device %q: invalid sector size %d, expected a power of two of at least 512",
				b.Name, b.SectorSize)
		}
		if b.Size <= 0 || b.Size%sector != 0 {
			return c, fmt.Errorf("block device %q: invalid size %d, expected a positive multiple of %d",
				b.Name, b.Size, sector)
		}
	}
	for _, n := range g.Net {
		if err := checkDeviceName(names, n.Name); err != nil {
			return c, err
		}
		network, ok := t.Networks[n.Network]
		if !ok {
			return c, fmt.Errorf("net device %q: unknown network %q", n.Name, n.Network)
		}
		if network.MTU < 68 || network.MTU > 65535 {
			return c, fmt.Errorf("network %q: invalid MTU %d", n.Network, network.MTU)
		}
		c.Net = append(c.Net, NetDevice{
			Name:        n.Name,
			Network:     n.Network,
			HostAddress: network.HostAddress,
			MTU:         network.MTU,
		})
	}
	for _, p := range c.Ping {
		if p.Address == "" || p.Count <= 0 {
			return c, fmt.Errorf("invalid ping %+v", p)
		}
	}
	if len(c.Ping) > 0 && len(c.Net) == 0 {
		return c, fmt.Errorf("ping without a net device")
	}
	return c, nil
}

func checkDeviceName(seen map[string]bool, name string) error {
	if name == "" || len(name) > 67 {
		return fmt.Errorf("invalid device name %q", name)
	}
	if seen[name] {
		return fmt.Errorf("device %q is listed twice", name)
	}
	seen[name] = true
	return nil
}

// BuildDir returns the directory that `make -C tests/guests` writes the
// guests to. It looks for the module root above the working directory,
// which works from any package's tests. Without one, it uses the location
// of this source file.
func BuildDir() string {
	if dir, err := os.Getwd(); err == nil {
		for {
			if isModuleRoot(dir) {
				return filepath.Join(dir, "tests", "guests", "build")
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("tests", "guests", "build")
	}
	return filepath.Join(filepath.Dir(file), "build")
}

func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "module github.com/ntender/ntender" {
			return true
		}
	}
	return false
}

// Binary returns the path of guest name built for target ("hvt" or
// "spt"). The file exists only after `make -C tests/guests`.
func Binary(name, target string) string {
	return filepath.Join(BuildDir(), name+"."+target)
}

// BinaryPath returns the path of the case's guest.
func (c Case) BinaryPath() string {
	return Binary(c.Binary, c.Target)
}
