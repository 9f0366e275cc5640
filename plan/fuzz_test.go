package plan

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseArgs feeds ParseArgs command lines whose arguments are separated
// by NUL bytes, and checks the invariants of every accepted result.
func FuzzParseArgs(f *testing.F) {
	seeds := []string{
		"k",
		"--mem=64\x00--block:storage=/tmp/x\x00--block-sector-size:storage=4096\x00k\x00a",
		"--net:service0=tap100\x00--net-mac:service0=02:00:00:00:00:01\x00--\x00k",
		"--mode=spt\x00--x-exec-heap\x00k\x00--mem=2",
		"--mem=-1\x00k",
		"--net-mac:a=1:2:3:4:5:6\x00k",
	}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		opts, err := ParseArgs(strings.Split(line, "\x00"))
		if err != nil {
			var usage *UsageError
			if !errors.As(err, &usage) && !errors.Is(err, ErrHelp) {
				t.Fatalf("error %q is %T, not *UsageError", err, err)
			}
			return
		}
		if opts.Kernel == "" {
			t.Error("accepted an empty KERNEL")
		}
		if opts.MemMiB >= 1<<44 {
			t.Errorf("accepted --mem=%d, whose byte count overflows", opts.MemMiB)
		}
		if opts.Mode != ModeHVT && opts.Mode != ModeSPT && opts.Mode != ModeAuto {
			t.Errorf("accepted mode %q", opts.Mode)
		}
		for name := range opts.Blocks {
			if !validDeviceName(name) {
				t.Errorf("accepted block device name %q", name)
			}
		}
		for name, iface := range opts.Nets {
			if !validDeviceName(name) || iface == "" || len(iface) > maxIfaceName {
				t.Errorf("accepted --net:%s=%s", name, iface)
			}
		}
		for name, size := range opts.SectorSizes {
			if size < 512 || size > 32768 || size&(size-1) != 0 {
				t.Errorf("accepted sector size %d for %s", size, name)
			}
		}
		for name, mac := range opts.MACs {
			if len(mac) != 6 || mac[0]&1 != 0 {
				t.Errorf("accepted MAC %v for %s", mac, name)
			}
		}
	})
}
