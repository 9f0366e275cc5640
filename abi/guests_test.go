package abi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProjectGuests loads every unikernel that "make -C tests/guests"
// built. The guests come from the project's own toolchain, so this checks
// Parse against real linker output rather than the synthetic files.
func TestProjectGuests(t *testing.T) {
	var paths []string
	for _, pattern := range []string{"*.hvt", "*.spt"} {
		m, err := filepath.Glob(filepath.Join("..", "tests", "guests", "build", pattern))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		msg := "no guests in tests/guests/build; run make -C tests/guests"
		if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			u, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := TargetHVT
			if strings.HasSuffix(path, ".spt") {
				want = TargetSPT
			}
			if u.Target != want {
				t.Errorf("Target = %s, want %s", u.Target, want)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			abi, err := ReadABI(path, data)
			if err != nil {
				t.Fatal(err)
			}
			if abi.Target != u.Target || abi.Version != u.ABIVersion {
				t.Errorf("ReadABI = %+v, Parse found target %s version %d", abi, u.Target, u.ABIVersion)
			}
			entries, err := ReadManifest(path, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != u.ManifestEntries {
				t.Errorf("ReadManifest returned %d entries, Parse found %d", len(entries), u.ManifestEntries)
			}
		})
	}
}
