// Package plan turns a tender command line into a launch plan: a loaded,
// validated unikernel whose manifest devices are all opened and attached,
// ready for a backend to execute.
//
// The plan checks what every backend needs: the unikernel file, the match
// between device flags and the manifest, and the devices themselves. It
// checks nothing backend-specific, such as the memory size limits, which
// differ between hvt (2 MiB granularity, at most 4 GiB) and spt (exact).
package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
)

// Plan is the validated launch plan that a backend executes. Nothing in it
// changes after Build returns it, except that Close closes the devices.
type Plan struct {
	Unikernel *abi.Unikernel
	Options   *Options
	// Cmdline is the guest command line: the guest arguments joined with
	// single spaces, at most abi.CmdlineSize-1 bytes.
	Cmdline string
	Blocks  []*devices.Block // in manifest order
	Nets    []*devices.Net   // in manifest order

	closed bool
}

// Build loads and validates the unikernel named by opts, checks that every
// device flag names a manifest device of the right type and that every
// manifest device is attached, and opens the devices. Mismatches between
// the flags and the manifest are *UsageError values. On error, every device
// opened so far is closed again.
func Build(opts *Options) (*Plan, error) {
	u, err := abi.Load(opts.Kernel)
	if err != nil {
		// abi errors already name the file and the failed check.
		return nil, err
	}
	cmdline, err := abi.Cmdline(opts.Args)
	if err != nil {
		return nil, &UsageError{Msg: fmt.Sprintf("%v: the guest arguments join to %d characters",
			err, len(strings.Join(opts.Args, " "))), Err: err}
	}
	if err := checkFlags(u, opts); err != nil {
		return nil, err
	}
	if err := checkAttached(u, opts); err != nil {
		return nil, err
	}

	p := &Plan{Unikernel: u, Options: opts, Cmdline: cmdline}
	if err := p.openDevices(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// checkFlags returns a UsageError for the first device flag, in the order
// of the flag kinds and then of the names, that does not name a manifest
// device of the flag's type.
func checkFlags(u *abi.Unikernel, opts *Options) error {
	type flagKind struct {
		prefix string
		want   abi.DeviceType
		values map[string]string
	}
	kinds := []flagKind{
		{"--block:", abi.DeviceBlockBasic, opts.Blocks},
		{"--block-sector-size:", abi.DeviceBlockBasic, formatValues(opts.SectorSizes)},
		{"--net:", abi.DeviceNetBasic, opts.Nets},
		{"--net-mac:", abi.DeviceNetBasic, formatValues(opts.MACs)},
	}
	for _, kind := range kinds {
		for _, name := range sortedKeys(kind.values) {
			dev, ok := u.Device(name)
			if ok && dev.Type == kind.want {
				continue
			}
			flag := kind.prefix + name + "=" + kind.values[name]
			return &UsageError{Msg: fmt.Sprintf(
				"%s: Resource not declared in manifest: '%s': %s has no %s device of that name (%s)",
				flag, name, u.Path, kind.want, describeDevices(u))}
		}
	}
	return nil
}

// checkAttached returns a UsageError with one line per manifest device
// that no --block or --net flag attaches.
func checkAttached(u *abi.Unikernel, opts *Options) error {
	var missing []string
	for _, dev := range u.Devices {
		var attached bool
		var hint string
		switch dev.Type {
		case abi.DeviceBlockBasic:
			_, attached = opts.Blocks[dev.Name]
			hint = "--block:" + dev.Name + "=PATH"
		case abi.DeviceNetBasic:
			_, attached = opts.Nets[dev.Name]
			hint = "--net:" + dev.Name + "=IFACE"
		}
		if attached {
			continue
		}
		line := fmt.Sprintf("Device '%s' of type %s declared but not attached", dev.Name, dev.Type)
		if hint != "" {
			line += "; attach it with " + hint
		}
		missing = append(missing, line)
	}
	if len(missing) == 0 {
		return nil
	}
	return &UsageError{Msg: strings.Join(missing, "\n")}
}

// openDevices opens every attached device in manifest order.
func (p *Plan) openDevices() error {
	opts := p.Options
	for _, dev := range p.Unikernel.Devices {
		switch dev.Type {
		case abi.DeviceBlockBasic:
			path := opts.Blocks[dev.Name]
			b, err := devices.OpenBlock(dev, path, opts.SectorSizes[dev.Name])
			if err != nil {
				return fmt.Errorf("--block:%s=%s: %w", dev.Name, path, err)
			}
			p.Blocks = append(p.Blocks, b)

		case abi.DeviceNetBasic:
			iface := opts.Nets[dev.Name]
			n, err := devices.OpenTap(dev, iface, opts.MACs[dev.Name])
			if err != nil {
				return fmt.Errorf("--net:%s=%s: Could not attach interface: %w", dev.Name, iface, err)
			}
			p.Nets = append(p.Nets, n)
		}
	}
	return nil
}

// Close closes every device the plan opened. It is safe to call more than
// once.
func (p *Plan) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, b := range p.Blocks {
		errs = append(errs, b.Close())
	}
	for _, n := range p.Nets {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}

// describeDevices lists the manifest's devices for error messages.
func describeDevices(u *abi.Unikernel) string {
	if len(u.Devices) == 0 {
		return "its manifest declares no devices"
	}
	parts := make([]string, len(u.Devices))
	for i, dev := range u.Devices {
		parts[i] = fmt.Sprintf("%s %s", dev.Type, dev.Name)
	}
	return "its manifest declares " + strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatValues[V any](m map[string]V) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}
