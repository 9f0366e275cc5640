package plan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/devices"
)

var (
	storageDev = abi.ManifestEntry{Name: "storage", Type: abi.DeviceBlockBasic}
	backupDev  = abi.ManifestEntry{Name: "backup", Type: abi.DeviceBlockBasic}
	serviceDev = abi.ManifestEntry{Name: "service0", Type: abi.DeviceNetBasic}
)

// writeImage creates a zero-filled file of size bytes.
func writeImage(t *testing.T, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustParse parses args with the kernel appended and fails the test on
// error.
func mustParse(t *testing.T, kernel string, args ...string) *Options {
	t.Helper()
	opts, err := ParseArgs(append(args, kernel))
	if err != nil {
		t.Fatalf("ParseArgs: %v", err)
	}
	return opts
}

// buildErr runs Build, which must fail, and returns the error.
func buildErr(t *testing.T, opts *Options) error {
	t.Helper()
	p, err := Build(opts)
	if err == nil {
		p.Close()
		t.Fatal("Build succeeded")
	}
	return err
}

func TestBuildNoDevices(t *testing.T) {
	kernel := writeUnikernel(t)
	opts, err := ParseArgs([]string{"--mem=8", kernel, "Hello_Solo5", "a  b"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer p.Close()
	if p.Cmdline != "Hello_Solo5 a  b" {
		t.Errorf("Cmdline = %q", p.Cmdline)
	}
	if p.Unikernel.Target != abi.TargetHVT {
		t.Errorf("Target = %v", p.Unikernel.Target)
	}
	if p.Options != opts {
		t.Error("Options is not the parsed options")
	}
	if len(p.Blocks) != 0 || len(p.Nets) != 0 {
		t.Errorf("Blocks, Nets = %d, %d, want none", len(p.Blocks), len(p.Nets))
	}
}

func TestBuildBlocksInManifestOrder(t *testing.T) {
	kernel := writeUnikernel(t, storageDev, backupDev)
	storage := writeImage(t, 8192)
	backup := writeImage(t, 3*4096)
	// Flags in the opposite order of the manifest.
	opts := mustParse(t, kernel,
		"--block-sector-size:backup=4096",
		"--block:backup="+backup,
		"--block:storage="+storage)
	p, err := Build(opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer p.Close()

	if len(p.Blocks) != 2 {
		t.Fatalf("len(Blocks) = %d, want 2", len(p.Blocks))
	}
	first, second := p.Blocks[0], p.Blocks[1]
	if first.Name != "storage" || first.Index != 1 || first.Path != storage {
		t.Errorf("Blocks[0] = %s, index %d, %s", first.Name, first.Index, first.Path)
	}
	if first.Capacity != 8192 || first.SectorSize != 512 {
		t.Errorf("Blocks[0] capacity, sector = %d, %d, want 8192, 512", first.Capacity, first.SectorSize)
	}
	if second.Name != "backup" || second.Index != 2 || second.Path != backup {
		t.Errorf("Blocks[1] = %s, index %d, %s", second.Name, second.Index, second.Path)
	}
	if second.Capacity != 3*4096 || second.SectorSize != 4096 {
		t.Errorf("Blocks[1] capacity, sector = %d, %d, want 12288, 4096", second.Capacity, second.SectorSize)
	}
}

func TestBuildUndeclaredFlags(t *testing.T) {
	kernel := writeUnikernel(t, storageDev, serviceDev)
	image := writeImage(t, 4096)
	tests := []struct {
		name string
		flag string
		want string
	}{
		{"block unknown", "--block:other=" + image, "--block:other=" + image + ": Resource not declared in manifest: 'other'"},
		{"block on a net device", "--block:service0=" + image, "Resource not declared in manifest: 'service0'"},
		{"sector size unknown", "--block-sector-size:other=4096", "--block-sector-size:other=4096: Resource not declared in manifest"},
		{"sector size on a net device", "--block-sector-size:service0=4096", "Resource not declared in manifest: 'service0'"},
		{"net unknown", "--net:other=tap1", "--net:other=tap1: Resource not declared in manifest: 'other'"},
		{"net on a block device", "--net:storage=tap1", "Resource not declared in manifest: 'storage'"},
		{"mac unknown", "--net-mac:other=02:00:00:00:00:01", "--net-mac:other=02:00:00:00:00:01: Resource not declared"},
		{"mac on a block device", "--net-mac:storage=02:00:00:00:00:01", "Resource not declared in manifest: 'storage'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Build checks the flags before the attachments, so the
			// unattached devices do not hide this error.
			err := buildErr(t, mustParse(t, kernel, tt.flag))
			var usage *UsageError
			if !errors.As(err, &usage) {
				t.Errorf("error %q is %T, not *UsageError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "BLOCK_BASIC storage, NET_BASIC service0") {
				t.Errorf("error %q does not list the declared devices", err)
			}
		})
	}
}

func TestBuildUndeclaredNoDevices(t *testing.T) {
	kernel := writeUnikernel(t)
	err := buildErr(t, mustParse(t, kernel, "--net:service0=tap0"))
	if !strings.Contains(err.Error(), "its manifest declares no devices") {
		t.Errorf("error %q does not say the manifest is empty", err)
	}
}

func TestBuildNotAttached(t *testing.T) {
	kernel := writeUnikernel(t, storageDev, serviceDev, backupDev)
	image := writeImage(t, 4096)
	err := buildErr(t, mustParse(t, kernel, "--block:backup="+image))

	var usage *UsageError
	if !errors.As(err, &usage) {
		t.Errorf("error %q is %T, not *UsageError", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"Device 'storage' of type BLOCK_BASIC declared but not attached; attach it with --block:storage=PATH",
		"Device 'service0' of type NET_BASIC declared but not attached; attach it with --net:service0=IFACE",
	}
	if len(lines) != len(want) {
		t.Fatalf("error has %d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, lines[i], want[i])
		}
	}
}

func TestBuildSectorSizeWithoutBlock(t *testing.T) {
	kernel := writeUnikernel(t, storageDev)
	err := buildErr(t, mustParse(t, kernel, "--block-sector-size:storage=4096"))
	if !strings.Contains(err.Error(), "Device 'storage' of type BLOCK_BASIC declared but not attached") {
		t.Errorf("error %q does not report the unattached device", err)
	}
}

func TestBuildBlockErrors(t *testing.T) {
	kernel := writeUnikernel(t, storageDev)
	tests := []struct {
		name   string
		size   int
		sector string
		want   error
		text   string
	}{
		{"misaligned", 6144, "4096", devices.ErrMisaligned, "Backing storage size must be block aligned"},
		{"too small", 256, "512", devices.ErrTooSmall, "Backing storage must be at least 1 block"},
		{"empty", 0, "512", devices.ErrTooSmall, "Backing storage must be at least 1 block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			image := writeImage(t, tt.size)
			err := buildErr(t, mustParse(t, kernel,
				"--block:storage="+image, "--block-sector-size:storage="+tt.sector))
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q is not %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "--block:storage="+image+": "+tt.text) {
				t.Errorf("error %q does not start with the flag and %q", err, tt.text)
			}
		})
	}
}

func TestBuildMissingBlockFile(t *testing.T) {
	kernel := writeUnikernel(t, storageDev)
	missing := filepath.Join(t.TempDir(), "missing.img")
	err := buildErr(t, mustParse(t, kernel, "--block:storage="+missing))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %q is not ErrNotExist", err)
	}
}

func TestBuildMissingTap(t *testing.T) {
	kernel := writeUnikernel(t, serviceDev)
	err := buildErr(t, mustParse(t, kernel, "--net:service0=ntnosuchtap9"))
	if !strings.HasPrefix(err.Error(), "--net:service0=ntnosuchtap9: Could not attach interface: ntnosuchtap9") {
		t.Errorf("error %q does not start with the flag and the upstream phrase", err)
	}
	if !errors.Is(err, devices.ErrInterfaceNotFound) {
		t.Errorf("error %q is not ErrInterfaceNotFound", err)
	}
}

func TestBuildFailureClosesDevices(t *testing.T) {
	// storage opens, then service0 fails: storage's file must be closed.
	kernel := writeUnikernel(t, storageDev, serviceDev)
	image := writeImage(t, 4096)
	opts := mustParse(t, kernel, "--block:storage="+image, "--net:service0=ntnosuchtap9")

	before := countOpenFds(t)
	buildErr(t, opts)
	if after := countOpenFds(t); after != before {
		t.Errorf("open descriptors went from %d to %d", before, after)
	}
}

func countOpenFds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestBuildKernelErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "not.elf")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		kernel string
		want   string
	}{
		{"missing", filepath.Join(dir, "missing.hvt"), "no such file"},
		{"not ELF", notELF, notELF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, mustParse(t, tt.kernel))
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestBuildCmdlineTooLong(t *testing.T) {
	kernel := writeUnikernel(t)
	ok := mustParse(t, kernel)
	ok.Args = []string{strings.Repeat("a", 4095), strings.Repeat("b", 4095)} // 8191 bytes
	p, err := Build(ok)
	if err != nil {
		t.Fatalf("Build with an 8191-byte command line: %v", err)
	}
	p.Close()

	long := mustParse(t, kernel)
	long.Args = []string{strings.Repeat("a", 4096), strings.Repeat("b", 4095)} // 8192 bytes
	err = buildErr(t, long)
	var usage *UsageError
	if !errors.As(err, &usage) {
		t.Errorf("error %q is %T, not *UsageError", err, err)
	}
	if !strings.Contains(err.Error(), "Guest command line too long (max=8191 characters)") {
		t.Errorf("error %q lacks the upstream phrase", err)
	}
	if !errors.Is(err, abi.ErrCmdlineTooLong) {
		t.Errorf("error %q is not abi.ErrCmdlineTooLong", err)
	}
}

func TestPlanClose(t *testing.T) {
	kernel := writeUnikernel(t, storageDev)
	p, err := Build(mustParse(t, kernel, "--block:storage="+writeImage(t, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	file := p.Blocks[0].File
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := file.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Stat after Close = %v, want os.ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}
