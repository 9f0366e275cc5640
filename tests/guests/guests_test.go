package guests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTableLoads(t *testing.T) {
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	targets := make(map[string]int)
	for _, c := range cases {
		targets[c.Target]++
	}
	if targets[TargetHVT] == 0 {
		t.Error("no hvt cases")
	}
	if targets[TargetSPT] == 0 {
		t.Error("no spt cases")
	}
}

func TestTableStatusesInRange(t *testing.T) {
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Status < 0 || c.Status > 255 {
			t.Errorf("%s: status %d outside 0..255", c.ID(), c.Status)
		}
		if c.MemMiB <= 0 {
			t.Errorf("%s: memory %d MiB", c.ID(), c.MemMiB)
		}
	}
}

func TestTableAppliesDefaults(t *testing.T) {
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]Case)
	for _, c := range cases {
		byID[c.ID()] = c
	}

	quiet, ok := byID["quiet/spt"]
	if !ok {
		t.Fatal("quiet/spt missing")
	}
	if quiet.MemMiB != 2 {
		t.Errorf("quiet/spt memory = %d MiB, expected the spt default 2", quiet.MemMiB)
	}
	if !slices.Contains(quiet.NoOutput, "FAILURE") {
		t.Errorf("quiet/spt no_output %q lacks the table-wide FAILURE", quiet.NoOutput)
	}
	if !slices.Contains(quiet.NoOutput, "Solo5:") {
		t.Errorf("quiet/spt no_output %q lacks its own Solo5:", quiet.NoOutput)
	}

	mtu, ok := byID["mtu/hvt"]
	if !ok {
		t.Fatal("mtu/hvt missing")
	}
	if len(mtu.Net) != 1 || mtu.Net[0].MTU != 9000 {
		t.Errorf("mtu/hvt net devices = %+v, expected one with MTU 9000", mtu.Net)
	}
}

// TestTableBinariesExist checks the table against the build: every case
// names a built guest, and every built guest has a case.
func TestTableBinariesExist(t *testing.T) {
	dir := BuildDir()
	if _, err := os.Stat(dir); err != nil {
		SkipOrFail(t, "guests not built: run make -C tests/guests first")
	}
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}

	used := make(map[string]bool)
	for _, c := range cases {
		path := c.BinaryPath()
		used[filepath.Base(path)] = true
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: %v", c.ID(), err)
		}
	}

	built, err := filepath.Glob(filepath.Join(dir, "*.[hs][vp]t"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range built {
		if !used[filepath.Base(path)] {
			t.Errorf("%s is built but no case runs it", path)
		}
	}
}

func TestParseTableRejects(t *testing.T) {
	tests := []struct {
		name  string
		table string
		want  string
	}{
		{
			name:  "status over 255",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","targets":{"hvt":{"status":256}}}]}`,
			want:  "invalid status 256",
		},
		{
			name:  "missing status",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","targets":{"hvt":{}}}]}`,
			want:  "missing status",
		},
		{
			name:  "unknown target",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","targets":{"xen":{"status":0}}}]}`,
			want:  `invalid target "xen"`,
		},
		{
			name:  "unknown field",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","targets":{"hvt":{"status":0,"stats":1}}}]}`,
			want:  `unknown field "stats"`,
		},
		{
			name:  "unknown network",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","net":[{"name":"n","network":"x"}],"targets":{"hvt":{"status":0}}}]}`,
			want:  `unknown network "x"`,
		},
		{
			name:  "sector size not a power of two",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","block":[{"name":"b","size":4096,"sector_size":1000}],"targets":{"hvt":{"status":0}}}]}`,
			want:  "invalid sector size 1000",
		},
		{
			name:  "size not a multiple of the sector size",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","block":[{"name":"b","size":1000}],"targets":{"hvt":{"status":0}}}]}`,
			want:  "invalid size 1000",
		},
		{
			name:  "duplicate device",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","block":[{"name":"b","size":512},{"name":"b","size":512}],"targets":{"hvt":{"status":0}}}]}`,
			want:  `device "b" is listed twice`,
		},
		{
			name:  "duplicate case",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","targets":{"hvt":{"status":0}}},{"name":"a","binary":"b","targets":{"hvt":{"status":0}}}]}`,
			want:  "case a/hvt is listed twice",
		},
		{
			name:  "no memory size",
			table: `{"guests":[{"name":"a","binary":"a","targets":{"hvt":{"status":0}}}]}`,
			want:  "invalid memory size 0",
		},
		{
			name:  "upstream without status",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","targets":{"hvt":{"status":0,"upstream":{"output":["x"]}}}}]}`,
			want:  "upstream: missing status",
		},
		{
			name:  "ping without net",
			table: `{"mem":{"hvt":4},"guests":[{"name":"a","binary":"a","ping":[{"address":"10.0.0.2","count":1}],"targets":{"hvt":{"status":0}}}]}`,
			want:  "ping without a net device",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTable([]byte(tt.table))
			if err == nil {
				t.Fatalf("parseTable accepted the table, expected %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestUpstreamExpectationReplacesAll(t *testing.T) {
	table := `{"mem":{"hvt":4},"no_output":["FAILURE"],"guests":[{"name":"a","binary":"a",
		"targets":{"hvt":{"status":1,"output":["Invalid guest"],
		"upstream":{"status":1,"output":["FAILURE: continued"]}}}}]}`
	cases, err := parseTable([]byte(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 1 {
		t.Fatalf("got %d cases, expected 1", len(cases))
	}
	c := cases[0]
	if err := c.Check(1, "FAILURE: continued"); err == nil {
		t.Error("the ntender expectation accepted the upstream outcome")
	}
	if err := c.WithUpstreamExpectation().Check(1, "FAILURE: continued"); err != nil {
		t.Errorf("the upstream expectation rejected the upstream outcome: %v", err)
	}
}

func TestTenderArgs(t *testing.T) {
	c := Case{
		Name:   "blk-4096",
		Target: TargetHVT,
		Binary: "blk",
		Args:   []string{"x", "y"},
		MemMiB: 4,
		Block:  []BlockDevice{{Name: "storage", Size: 8192, SectorSize: 4096}},
		Net:    []NetDevice{{Name: "service0", Network: "net0", MTU: 1500}},
	}
	got, err := c.TenderArgs(map[string]string{"storage": "/tmp/disk"},
		map[string]string{"service0": "tap7"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--mem=4",
		"--block:storage=/tmp/disk",
		"--block-sector-size:storage=4096",
		"--net:service0=tap7",
		"--",
		Binary("blk", "hvt"),
		"x",
		"y",
	}
	if !slices.Equal(got, want) {
		t.Errorf("TenderArgs = %q, expected %q", got, want)
	}

	if _, err := c.TenderArgs(nil, map[string]string{"service0": "tap7"}); err == nil {
		t.Error("TenderArgs accepted a missing backing file")
	}
	if _, err := c.TenderArgs(map[string]string{"storage": "/tmp/disk"}, nil); err == nil {
		t.Error("TenderArgs accepted a missing tap")
	}
}

func TestCheckReportsEveryMismatch(t *testing.T) {
	c := Case{
		Name:     "x",
		Target:   TargetSPT,
		Status:   0,
		Output:   []string{"SUCCESS"},
		NoOutput: []string{"FAILURE"},
	}
	if err := c.Check(0, "...SUCCESS\n"); err != nil {
		t.Errorf("Check of a passing run: %v", err)
	}

	err := c.Check(139, "FAILURE: something\n")
	if err == nil {
		t.Fatal("Check accepted a failing run")
	}
	for _, want := range []string{"exit status 139, expected 0", `missing "SUCCESS"`, `contains "FAILURE"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"kill -SEGV $$", 139},
		{"kill -SYS $$", 159},
	}
	for _, tt := range tests {
		status, err := ExitStatus(exec.Command("sh", "-c", tt.script).Run())
		if err != nil {
			t.Errorf("%s: %v", tt.script, err)
			continue
		}
		if status != tt.want {
			t.Errorf("%s: status %d, expected %d", tt.script, status, tt.want)
		}
	}

	if _, err := ExitStatus(exec.Command("/nonexistent/program").Run()); err == nil {
		t.Error("ExitStatus turned a start failure into a status")
	}
}

func TestBinaryUnderModuleRoot(t *testing.T) {
	path := Binary("hello", TargetSPT)
	want := filepath.Join("tests", "guests", "build", "hello.spt")
	if !strings.HasSuffix(path, want) {
		t.Errorf("Binary = %q, expected it to end in %q", path, want)
	}
	if !filepath.IsAbs(path) {
		t.Errorf("Binary = %q, expected an absolute path", path)
	}
}

func TestThreadStatesOfSelf(t *testing.T) {
	got := threadStates(os.Getpid())
	if !strings.Contains(got, "state ") || !strings.Contains(got, "wchan ") {
		t.Errorf("threadStates = %q, want a state and wchan per thread", got)
	}
	if strings.Count(got, "\n") < 1 {
		t.Errorf("threadStates = %q, want at least one thread", got)
	}
}
