package runnc

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResolveCgroupsPath(t *testing.T) {
	cases := []struct {
		path    string
		systemd bool
		want    string
	}{
		{"", false, "/runnc/c1"},
		{"/docker/abc", false, "/docker/abc"},
		{"/docker/../docker/abc/", false, "/docker/abc"},
		{"kubepods/pod1", false, "/kubepods/pod1"},
		{"system.slice:docker:abc", true, "/system.slice/docker-abc.scope"},
		{"system.slice:docker:abc", false, "/system.slice/docker-abc.scope"},
		{"kubepods-besteffort-pod1.slice:cri:abc", true,
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-abc.scope"},
		{":docker:abc", true, "/system.slice/docker-abc.scope"},
		{"-.slice::abc", true, "/abc.scope"},
	}
	for _, c := range cases {
		got, err := ResolveCgroupsPath(c.path, "c1", c.systemd)
		if err != nil {
			t.Errorf("%q systemd=%v: %v", c.path, c.systemd, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q systemd=%v: %q, want %q", c.path, c.systemd, got, c.want)
		}
	}
	if _, err := ResolveCgroupsPath("/docker/abc", "c1", true); err == nil {
		t.Error("systemd cgroups accepted a plain path")
	}
}

func TestCgroupLimits(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	u64 := func(n uint64) *uint64 { return &n }
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: i64(10)},
	}
	v1 := []hierarchy{
		{controllers: []string{"memory"}},
		{controllers: []string{"cpu"}},
		{controllers: []string{"cpuset"}},
		{controllers: []string{"pids"}},
		{controllers: []string{"name=systemd"}},
	}
	var got []limit
	for _, h := range v1 {
		got = append(got, cgroupLimits(h, res)...)
	}
	want := []limit{
		{"memory.limit_in_bytes", "67108864"},
		{"memory.memsw.limit_in_bytes", "134217728"},
		{"memory.soft_limit_in_bytes", "33554432"},
		{"cpu.shares", "512"},
		{"cpu.cfs_period_us", "100000"},
		{"cpu.cfs_quota_us", "50000"},
		{"cpuset.cpus", "0"},
		{"pids.max", "10"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("cgroup v1 limits\n got %v\nwant %v", got, want)
	}

	got = cgroupLimits(hierarchy{v2: true}, res)
	want = []limit{
		{"memory.max", "67108864"},
		{"memory.swap.max", "67108864"},
		{"memory.low", "33554432"},
		{"cpu.weight", "20"},
		{"cpu.max", "50000 100000"},
		{"cpuset.cpus", "0"},
		{"pids.max", "10"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("cgroup v2 limits\n got %v\nwant %v", got, want)
	}

	if got := cgroupLimits(hierarchy{v2: true}, nil); len(got) != 0 {
		t.Errorf("no resources gave limits %v", got)
	}
	unlimited := &specs.LinuxResources{Pids: &specs.LinuxPids{}, CPU: &specs.LinuxCPU{Quota: i64(-1)}}
	got = cgroupLimits(hierarchy{v2: true}, unlimited)
	want = []limit{{"cpu.max", "max 100000"}, {"pids.max", "max"}}
	if !slices.Equal(got, want) {
		t.Errorf("unlimited v2\n got %v\nwant %v", got, want)
	}
}

func TestCPUWeight(t *testing.T) {
	cases := map[uint64]uint64{2: 1, 1024: 39, 262144: 10000}
	for shares, want := range cases {
		if got := cpuWeight(shares); got != want {
			t.Errorf("cpuWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

// A container must not share a cgroup with another process, because delete
// kills every process in the container's cgroup.
func TestPlaceCgroupRejectsOccupied(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for cgroups")
	}
	cgPath := fmt.Sprintf("/runnc-test/t%d-occupied", os.Getpid())
	first := startSleeper(t)
	cg, err := PlaceCgroup(cgPath, nil, first.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		first.Process.Kill()
		first.Wait()
		if err := cg.Remove(); err != nil {
			t.Error(err)
		}
		for _, dir := range cgroupDirs(t, "/runnc-test") {
			os.Remove(dir)
		}
	})

	second := startSleeper(t)
	_, err = PlaceCgroup(cgPath, nil, second.Process.Pid)
	if err == nil {
		t.Fatal("PlaceCgroup put a second process into an occupied cgroup")
	}
	for _, want := range []string{"already contains 1 processes", strconv.Itoa(first.Process.Pid), "cgroupsPath of its own"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	pids, err := cg.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{first.Process.Pid}) {
		t.Errorf("cgroup contains %v, want only %d", pids, first.Process.Pid)
	}
}
