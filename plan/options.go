package plan

import (
	"fmt"
	"math/bits"
	"net"
	"strconv"
	"strings"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
)

// Mode selects the backend.
type Mode string

// Backends.
const (
	ModeHVT  Mode = "hvt"  // KVM virtual machine
	ModeSPT  Mode = "spt"  // seccomp-confined process
	ModeAuto Mode = "auto" // hvt when /dev/kvm is usable, else spt
)

// maxIfaceName is the longest Linux interface name (IFNAMSIZ - 1).
const maxIfaceName = 15

// maxPath is the longest --block path Linux can open: PATH_MAX (4096)
// counts the terminating NUL.
const maxPath = 4095

// Options is the parsed command line, in the syntax of the upstream Solo5
// tenders plus --mode:
//
//	[--mode=M] [--mem=MiB] [--block:NAME=PATH] [--block-sector-size:NAME=N]
//	[--net:NAME=IFACE] [--net-mac:NAME=MAC] [--x-exec-heap] [--dumpcore=DIR]
//	[--] KERNEL [ARGS...]
//
// Arguments after KERNEL belong to the guest, even those that look like
// options.
type Options struct {
	Mode Mode
	// MemMiB is the guest memory in MiB, or 0 when not given, which means
	// the backend's default (512 MiB). The backend checks the upper bound.
	MemMiB uint64
	// Blocks maps a manifest device name to the backing file path.
	Blocks map[string]string
	// SectorSizes maps a block device name to its sector size in bytes.
	SectorSizes map[string]uint64
	// Nets maps a manifest device name to a tap interface name.
	Nets map[string]string
	// MACs maps a network device name to its MAC address.
	MACs      map[string]net.HardwareAddr
	XExecHeap bool
	// DumpCore is the directory where an hvt guest that aborts (exit
	// status 255) leaves an ELF core file, or "" for no core file.
	DumpCore string
	Kernel   string
	Args     []string
}

// Usage is the command line synopsis and option help.
const Usage = `usage: ntender run [OPTIONS] [--] KERNEL [ARGS...]

Options (all before KERNEL; later arguments go to the guest):
  --mode=hvt|spt|auto          backend: KVM (hvt), seccomp process (spt), or
                               auto (the default): hvt when /dev/kvm is
                               usable, else spt for spt unikernels
  --mem=MiB                    guest memory in MiB (default 512)
  --block:NAME=PATH            attach block device NAME to the file PATH
  --block-sector-size:NAME=N   sector size of block device NAME in bytes, a
                               power of two from 512 to 32768 (default 512)
  --net:NAME=IFACE             attach network device NAME to the tap IFACE
  --net-mac:NAME=MAC           MAC address of network device NAME, six hex
                               octets such as 02:00:00:00:00:01 (default:
                               random, locally administered)
  --x-exec-heap                spt only: make the heap and stack executable
  --dumpcore=DIR               hvt only: when the guest aborts (status 255),
                               write its memory and registers to the ELF
                               core file DIR/core.solo5-hvt.PID
`

// ParseArgs parses args, the command line after the program or subcommand
// name. It returns a *UsageError for any malformed argument, ErrHelp for
// --help, or ErrVersion for --version.
func ParseArgs(args []string) (*Options, error) {
	opts := &Options{
		Mode:        ModeAuto,
		Blocks:      map[string]string{},
		SectorSizes: map[string]uint64{},
		Nets:        map[string]string{},
		MACs:        map[string]net.HardwareAddr{},
	}

	i := 0
	for ; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			i++
			break
		}
		if !strings.HasPrefix(arg, "-") {
			break
		}
		if arg == "--help" || arg == "-h" {
			return nil, ErrHelp
		}
		if arg == "--version" {
			return nil, ErrVersion
		}
		if err := opts.parseOption(arg); err != nil {
			return nil, err
		}
	}

	if i >= len(args) {
		return nil, usageErrorf("Missing KERNEL operand (give the unikernel file after the options)")
	}
	if args[i] == "" {
		return nil, usageErrorf("Missing KERNEL operand: the unikernel file name is empty")
	}
	opts.Kernel = args[i]
	opts.Args = append([]string{}, args[i+1:]...)
	return opts, nil
}

// parseOption parses one option argument into opts.
func (opts *Options) parseOption(arg string) error {
	switch {
	case strings.HasPrefix(arg, "--mode="):
		mode := Mode(strings.TrimPrefix(arg, "--mode="))
		if mode != ModeHVT && mode != ModeSPT && mode != ModeAuto {
			return invalidOption(arg, "the mode must be hvt, spt or auto")
		}
		opts.Mode = mode

	case strings.HasPrefix(arg, "--mem="):
		mem, err := parseMem(strings.TrimPrefix(arg, "--mem="))
		if err != nil {
			return err
		}
		opts.MemMiB = mem

	case strings.HasPrefix(arg, "--block:"):
		name, path, err := splitDeviceOption(arg, "--block:")
		if err != nil {
			return err
		}
		if path == "" || len(path) > maxPath {
			return invalidOption(arg, fmt.Sprintf("PATH must be 1 to %d bytes", maxPath))
		}
		if _, dup := opts.Blocks[name]; dup {
			return invalidOption(arg, fmt.Sprintf("block device %s is given twice", name))
		}
		opts.Blocks[name] = path

	case strings.HasPrefix(arg, "--block-sector-size:"):
		name, value, err := splitDeviceOption(arg, "--block-sector-size:")
		if err != nil {
			return err
		}
		size, err := strconv.ParseUint(value, 10, 64)
		if err == nil {
			err = devices.CheckSectorSize(size)
		}
		if err != nil {
			return invalidOption(arg, fmt.Sprintf("%v: expected a power of two from %d to %d",
				devices.ErrSectorSize, devices.DefaultSectorSize, devices.MaxSectorSize))
		}
		if _, dup := opts.SectorSizes[name]; dup {
			return invalidOption(arg, fmt.Sprintf("the sector size of %s is given twice", name))
		}
		opts.SectorSizes[name] = size

	case strings.HasPrefix(arg, "--net:"):
		name, iface, err := splitDeviceOption(arg, "--net:")
		if err != nil {
			return err
		}
		if err := checkIfaceName(arg, iface); err != nil {
			return err
		}
		if _, dup := opts.Nets[name]; dup {
			return invalidOption(arg, fmt.Sprintf("network device %s is given twice", name))
		}
		for other, otherIface := range opts.Nets {
			if otherIface == iface {
				return invalidOption(arg, fmt.Sprintf(
					"tap %s is already given for network device %s; each device needs its own tap",
					iface, other))
			}
		}
		opts.Nets[name] = iface

	case strings.HasPrefix(arg, "--net-mac:"):
		name, value, err := splitDeviceOption(arg, "--net-mac:")
		if err != nil {
			return err
		}
		mac, err := parseMAC(value)
		if err != nil {
			return invalidOption(arg, err.Error())
		}
		if _, dup := opts.MACs[name]; dup {
			return invalidOption(arg, fmt.Sprintf("the MAC address of %s is given twice", name))
		}
		opts.MACs[name] = mac

	case arg == "--x-exec-heap":
		opts.XExecHeap = true

	case strings.HasPrefix(arg, "--dumpcore="):
		dir := strings.TrimPrefix(arg, "--dumpcore=")
		if dir == "" || len(dir) > maxPath {
			return invalidOption(arg, fmt.Sprintf("DIR must be 1 to %d bytes", maxPath))
		}
		opts.DumpCore = dir

	case arg == "--mem" || arg == "--mode" || arg == "--dumpcore":
		return invalidOption(arg, "the value must follow an equals sign, as in "+arg+"=VALUE")

	default:
		return invalidOption(arg, "unknown option; see --help")
	}
	return nil
}

// parseMem parses the --mem value: a positive decimal number of MiB whose
// byte count fits in 64 bits.
func parseMem(value string) (uint64, error) {
	mem, err := strconv.ParseUint(value, 10, 64)
	if err != nil || mem == 0 {
		return 0, usageErrorf("Malformed argument to --mem: %q "+
			"(give the guest memory as a positive whole number of MiB)", value)
	}
	if hi, _ := bits.Mul64(mem, 1<<20); hi != 0 {
		return 0, usageErrorf("Malformed argument to --mem: %d MiB does not fit in 64 bits of bytes", mem)
	}
	return mem, nil
}

// splitDeviceOption splits "PREFIXNAME=VALUE" and checks NAME against the
// rules for manifest device names.
func splitDeviceOption(arg, prefix string) (name, value string, err error) {
	rest := strings.TrimPrefix(arg, prefix)
	name, value, ok := strings.Cut(rest, "=")
	if !ok {
		return "", "", invalidOption(arg, "expected "+prefix+"NAME=VALUE")
	}
	if !validDeviceName(name) {
		return "", "", invalidOption(arg, fmt.Sprintf(
			"device NAME must be 1 to %d letters or digits", abi.ManifestNameSize-1))
	}
	return name, value, nil
}

// validDeviceName reports whether name is 1 to 67 ASCII letters or digits,
// the names solo5-elftool accepts in a manifest.
func validDeviceName(name string) bool {
	if name == "" || len(name) > abi.ManifestNameSize-1 {
		return false
	}
	for _, c := range []byte(name) {
		isLetter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		isDigit := c >= '0' && c <= '9'
		if !isLetter && !isDigit {
			return false
		}
	}
	return true
}

// checkIfaceName rejects interface names that Linux cannot have, and the
// upstream "@NN" form, which passes an already open file descriptor and has
// been broken in the upstream tenders since v0.10.0.
func checkIfaceName(arg, iface string) error {
	if strings.HasPrefix(iface, "@") {
		return invalidOption(arg, "Could not attach interface: "+iface+
			": passing an open file descriptor is not supported; give the tap's name")
	}
	if iface == "" || len(iface) > maxIfaceName {
		return invalidOption(arg, fmt.Sprintf("IFACE must be 1 to %d bytes", maxIfaceName))
	}
	if strings.ContainsAny(iface, "/ \t\n:%") {
		return invalidOption(arg, "IFACE must not contain '/', ':', '%' or white space")
	}
	return nil
}

// parseMAC parses six colon-separated hex octets of one or two digits each,
// the form the upstream tenders read. It rejects multicast addresses (the
// group bit in the first octet), including broadcast, and the all-zero
// address: a guest cannot use either as its own source address. Upstream
// accepts both, and treats all zeros as "pick a random address".
func parseMAC(value string) (net.HardwareAddr, error) {
	octets := strings.Split(value, ":")
	if len(octets) != 6 {
		return nil, fmt.Errorf("MAC must be six hex octets separated by ':', such as 02:00:00:00:00:01")
	}
	mac := make(net.HardwareAddr, 6)
	for i, octet := range octets {
		if len(octet) < 1 || len(octet) > 2 {
			return nil, fmt.Errorf("MAC octet %q must be one or two hex digits", octet)
		}
		v, err := strconv.ParseUint(octet, 16, 8)
		if err != nil {
			return nil, fmt.Errorf("MAC octet %q is not hexadecimal", octet)
		}
		mac[i] = byte(v)
	}
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("MAC %v is a multicast address; the first octet must be even", mac)
	}
	if string(mac) == string(make([]byte, 6)) {
		return nil, fmt.Errorf("MAC 00:00:00:00:00:00 is not a valid address")
	}
	return mac, nil
}
