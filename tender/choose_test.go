package tender

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ntender/ntender/abi"
	"github.com/ntender/ntender/plan"
)

func TestChoose(t *testing.T) {
	kvmOK := func() error { return nil }
	noKVM := func() error { return errors.New("opening /dev/kvm: no such file or directory") }

	tests := []struct {
		name      string
		requested plan.Mode
		target    abi.Target
		probe     func() error
		want      plan.Mode // "" means an error
	}{
		{"hvt auto with kvm", plan.ModeAuto, abi.TargetHVT, kvmOK, plan.ModeHVT},
		{"hvt auto without kvm", plan.ModeAuto, abi.TargetHVT, noKVM, ""},
		{"hvt forced hvt", plan.ModeHVT, abi.TargetHVT, kvmOK, plan.ModeHVT},
		{"hvt forced spt", plan.ModeSPT, abi.TargetHVT, kvmOK, ""},
		{"spt auto with kvm", plan.ModeAuto, abi.TargetSPT, kvmOK, plan.ModeHVT},
		{"spt auto without kvm", plan.ModeAuto, abi.TargetSPT, noKVM, plan.ModeSPT},
		{"spt forced hvt", plan.ModeHVT, abi.TargetSPT, kvmOK, plan.ModeHVT},
		{"spt forced hvt without kvm", plan.ModeHVT, abi.TargetSPT, noKVM, ""},
		{"spt forced spt", plan.ModeSPT, abi.TargetSPT, kvmOK, plan.ModeSPT},
		{"virtio target", plan.ModeAuto, abi.TargetVirtio, kvmOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.requested, tt.target, tt.probe)
			if tt.want == "" {
				if !errors.Is(err, ErrNoBackend) {
					t.Fatalf("Choose = %+v, %v; want ErrNoBackend", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Choose: %v", err)
			}
			if got.Mode != tt.want {
				t.Errorf("mode = %s, want %s", got.Mode, tt.want)
			}
			if got.Reason == "" {
				t.Error("reason is empty")
			}
		})
	}
}

func TestChooseNamesProbeFailure(t *testing.T) {
	_, err := Choose(plan.ModeAuto, abi.TargetHVT, func() error { return errors.New("permission denied") })
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error = %v, want the probe's reason", err)
	}
}

func TestProbeKVMMatchesDevice(t *testing.T) {
	f, openErr := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if openErr == nil {
		f.Close()
	}
	err := ProbeKVM()
	switch {
	case openErr != nil && err == nil:
		t.Errorf("ProbeKVM = nil, but /dev/kvm does not open: %v", openErr)
	case openErr != nil && !strings.Contains(err.Error(), "/dev/kvm"):
		t.Errorf("ProbeKVM = %v, want it to name /dev/kvm", err)
	case openErr == nil && err != nil:
		t.Errorf("ProbeKVM = %v, but /dev/kvm opens", err)
	}
}
