package plan

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgsKernelOnly(t *testing.T) {
	opts, err := ParseArgs([]string{"hello.hvt"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Kernel != "hello.hvt" {
		t.Errorf("Kernel = %q", opts.Kernel)
	}
	if len(opts.Args) != 0 {
		t.Errorf("Args = %q, want none", opts.Args)
	}
	if opts.Mode != ModeAuto {
		t.Errorf("Mode = %q, want auto", opts.Mode)
	}
	if opts.MemMiB != 0 || opts.XExecHeap {
		t.Errorf("MemMiB, XExecHeap = %d, %v, want 0, false", opts.MemMiB, opts.XExecHeap)
	}
}

func TestParseArgsEveryOption(t *testing.T) {
	opts, err := ParseArgs([]string{
		"--mode=spt",
		"--mem=64",
		"--block:storage=/tmp/disk.img",
		"--block-sector-size:storage=4096",
		"--net:service0=tap100",
		"--net-mac:service0=02:aa:bb:cc:dd:ee",
		"--x-exec-heap",
		"--dumpcore=/tmp/cores",
		"--",
		"test_net.spt",
		"--mem=2", "limit", "a  b",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		Mode:        ModeSPT,
		MemMiB:      64,
		Blocks:      map[string]string{"storage": "/tmp/disk.img"},
		SectorSizes: map[string]uint64{"storage": 4096},
		Nets:        map[string]string{"service0": "tap100"},
		MACs:        map[string]net.HardwareAddr{"service0": {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}},
		XExecHeap:   true,
		DumpCore:    "/tmp/cores",
		Kernel:      "test_net.spt",
		Args:        []string{"--mem=2", "limit", "a  b"},
	}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("ParseArgs =\n%+v\nwant\n%+v", opts, want)
	}
}

func TestParseArgsGuestArgsAfterKernel(t *testing.T) {
	opts, err := ParseArgs([]string{"--mem=8", "k.hvt", "--net:x=y", "--", "--bogus"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"--net:x=y", "--", "--bogus"}; !reflect.DeepEqual(opts.Args, want) {
		t.Errorf("Args = %q, want %q", opts.Args, want)
	}
	if len(opts.Nets) != 0 {
		t.Errorf("Nets = %v, want none", opts.Nets)
	}
}

func TestParseArgsDoubleDashKernel(t *testing.T) {
	opts, err := ParseArgs([]string{"--", "-odd-name", "arg"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Kernel != "-odd-name" {
		t.Errorf("Kernel = %q, want -odd-name", opts.Kernel)
	}
	if !reflect.DeepEqual(opts.Args, []string{"arg"}) {
		t.Errorf("Args = %q", opts.Args)
	}
}

func TestParseArgsLastScalarWins(t *testing.T) {
	opts, err := ParseArgs([]string{"--mem=8", "--mode=hvt", "--mem=16", "--mode=auto", "k"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.MemMiB != 16 || opts.Mode != ModeAuto {
		t.Errorf("MemMiB, Mode = %d, %q, want 16, auto", opts.MemMiB, opts.Mode)
	}
}

func TestParseArgsValidValues(t *testing.T) {
	tests := []struct {
		arg   string
		check func(*Options) bool
	}{
		{"--mem=1", func(o *Options) bool { return o.MemMiB == 1 }},
		{"--mem=4096", func(o *Options) bool { return o.MemMiB == 4096 }},
		{"--mem=17592186044415", func(o *Options) bool { return o.MemMiB == 1<<44-1 }},
		{"--mode=hvt", func(o *Options) bool { return o.Mode == ModeHVT }},
		{"--block-sector-size:a=512", func(o *Options) bool { return o.SectorSizes["a"] == 512 }},
		{"--block-sector-size:a=32768", func(o *Options) bool { return o.SectorSizes["a"] == 32768 }},
		{"--block:" + strings.Repeat("x", 67) + "=/p", func(o *Options) bool { return len(o.Blocks) == 1 }},
		{"--block:a=/path with space", func(o *Options) bool { return o.Blocks["a"] == "/path with space" }},
		{"--block:a=x=y", func(o *Options) bool { return o.Blocks["a"] == "x=y" }},
		{"--net:service1=abcdefghijklmno", func(o *Options) bool { return o.Nets["service1"] == "abcdefghijklmno" }},
		{"--net-mac:a=2:0:0:0:0:1", func(o *Options) bool { return o.MACs["a"].String() == "02:00:00:00:00:01" }},
		{"--net-mac:a=FE:ff:00:00:00:01", func(o *Options) bool { return o.MACs["a"].String() == "fe:ff:00:00:00:01" }},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			opts, err := ParseArgs([]string{tt.arg, "k"})
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			if !tt.check(opts) {
				t.Errorf("unexpected options %+v", opts)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	long := strings.Repeat("x", 68)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "Missing KERNEL operand"},
		{"options only", []string{"--mem=2"}, "Missing KERNEL operand"},
		{"double dash only", []string{"--"}, "Missing KERNEL operand"},
		{"unknown option", []string{"--foo", "k"}, "Invalid option: '--foo'"},
		{"single dash", []string{"-", "k"}, "Invalid option: '-'"},
		{"exec heap with value", []string{"--x-exec-heap=1", "k"}, "Invalid option"},
		{"dumpcore without value", []string{"--dumpcore", "k"}, "the value must follow an equals sign"},
		{"dumpcore empty", []string{"--dumpcore=", "k"}, "DIR must be 1 to 4095 bytes"},
		{"dumpcore too long", []string{"--dumpcore=/" + strings.Repeat("d", 4095), "k"}, "DIR must be 1 to 4095 bytes"},
		{"mode", []string{"--mode=kvm", "k"}, "Invalid option: '--mode=kvm': the mode must be hvt, spt or auto"},
		{"mem empty", []string{"--mem=", "k"}, "Malformed argument to --mem"},
		{"mem zero", []string{"--mem=0", "k"}, "Malformed argument to --mem"},
		{"mem negative", []string{"--mem=-1", "k"}, "Malformed argument to --mem"},
		{"mem plus sign", []string{"--mem=+4", "k"}, "Malformed argument to --mem"},
		{"mem text", []string{"--mem=lots", "k"}, "Malformed argument to --mem"},
		{"mem fraction", []string{"--mem=1.5", "k"}, "Malformed argument to --mem"},
		{"mem unit", []string{"--mem=512M", "k"}, "Malformed argument to --mem"},
		{"mem bytes overflow", []string{"--mem=17592186044416", "k"}, "does not fit in 64 bits"},
		{"mem uint64 overflow", []string{"--mem=18446744073709551616", "k"}, "Malformed argument to --mem"},
		{"block no equals", []string{"--block:storage", "k"}, "expected --block:NAME=VALUE"},
		{"block empty name", []string{"--block:=/p", "k"}, "device NAME must be 1 to 67 letters or digits"},
		{"block name dash", []string{"--block:st-1=/p", "k"}, "letters or digits"},
		{"block name too long", []string{"--block:" + long + "=/p", "k"}, "letters or digits"},
		{"block empty path", []string{"--block:storage=", "k"}, "PATH must be 1 to 4095 bytes"},
		{"block path too long", []string{"--block:a=/" + strings.Repeat("p", 4095), "k"}, "PATH must be"},
		{"block twice", []string{"--block:a=/p", "--block:a=/q", "k"}, "block device a is given twice"},
		{"sector size odd", []string{"--block-sector-size:a=521", "k"}, "Block size must be a multiple of 2 greater than or equal 512"},
		{"sector size small", []string{"--block-sector-size:a=256", "k"}, "Block size must be a multiple of 2 greater than or equal 512"},
		{"sector size large", []string{"--block-sector-size:a=65536", "k"}, "Block size must be a multiple of 2"},
		{"sector size text", []string{"--block-sector-size:a=4k", "k"}, "Block size must be a multiple of 2"},
		{"sector size negative", []string{"--block-sector-size:a=-512", "k"}, "Block size must be a multiple of 2"},
		{"sector size twice", []string{"--block-sector-size:a=512", "--block-sector-size:a=4096", "k"}, "given twice"},
		{"net fd", []string{"--net:service0=@3", "k"}, "Could not attach interface: @3"},
		{"net empty", []string{"--net:service0=", "k"}, "IFACE must be 1 to 15 bytes"},
		{"net too long", []string{"--net:service0=abcdefghijklmnop", "k"}, "IFACE must be 1 to 15 bytes"},
		{"net slash", []string{"--net:service0=a/b", "k"}, "IFACE must not contain"},
		{"net template", []string{"--net:service0=tap%d", "k"}, "IFACE must not contain"},
		{"net bad name", []string{"--net:service_0=tap0", "k"}, "letters or digits"},
		{"net twice", []string{"--net:a=tap0", "--net:a=tap1", "k"}, "network device a is given twice"},
		{"tap twice", []string{"--net:a=tap0", "--net:b=tap0", "k"}, "tap tap0 is already given for network device a"},
		{"mac five octets", []string{"--net-mac:a=02:00:00:00:00", "k"}, "six hex octets"},
		{"mac seven octets", []string{"--net-mac:a=02:00:00:00:00:01:02", "k"}, "six hex octets"},
		{"mac dashes", []string{"--net-mac:a=02-00-00-00-00-01", "k"}, "six hex octets"},
		{"mac not hex", []string{"--net-mac:a=02:00:00:00:00:0g", "k"}, "not hexadecimal"},
		{"mac long octet", []string{"--net-mac:a=002:00:00:00:00:01", "k"}, "one or two hex digits"},
		{"mac empty octet", []string{"--net-mac:a=02::00:00:00:01", "k"}, "one or two hex digits"},
		{"mac multicast", []string{"--net-mac:a=01:00:5e:00:00:01", "k"}, "multicast"},
		{"mac broadcast", []string{"--net-mac:a=ff:ff:ff:ff:ff:ff", "k"}, "multicast"},
		{"mac zero", []string{"--net-mac:a=00:00:00:00:00:00", "k"}, "not a valid address"},
		{"mac twice", []string{"--net-mac:a=02:00:00:00:00:01", "--net-mac:a=02:00:00:00:00:02", "k"}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := ParseArgs(tt.args)
			if err == nil {
				t.Fatalf("ParseArgs succeeded: %+v", opts)
			}
			var usage *UsageError
			if !errors.As(err, &usage) {
				t.Errorf("error %q is %T, not *UsageError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
		})
	}
}

func TestParseArgsVersion(t *testing.T) {
	if _, err := ParseArgs([]string{"--version"}); !errors.Is(err, ErrVersion) {
		t.Errorf("ParseArgs(--version) = %v, want ErrVersion", err)
	}
	// After KERNEL, --version belongs to the guest.
	opts, err := ParseArgs([]string{"k", "--version"})
	if err != nil || len(opts.Args) != 1 {
		t.Errorf("ParseArgs(k --version) = %+v, %v; want one guest argument", opts, err)
	}
}

func TestParseArgsHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		_, err := ParseArgs([]string{"--mem=2", arg, "k"})
		if !errors.Is(err, ErrHelp) {
			t.Errorf("ParseArgs(%s) = %v, want ErrHelp", arg, err)
		}
	}
	// After KERNEL, --help belongs to the guest.
	opts, err := ParseArgs([]string{"k", "--help"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(opts.Args, []string{"--help"}) {
		t.Errorf("Args = %q", opts.Args)
	}
}

func TestParseArgsEmptyKernel(t *testing.T) {
	_, err := ParseArgs([]string{"--mem=2", ""})
	if err == nil || !strings.Contains(err.Error(), "Missing KERNEL operand") {
		t.Errorf("ParseArgs with an empty KERNEL = %v, want Missing KERNEL operand", err)
	}
}
