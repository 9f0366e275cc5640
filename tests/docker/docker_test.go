// Package docker tests runnc end to end under a real Docker engine: a
// private dockerd started by scripts/docker-env with runnc registered as
// the runtime "runnc", images imported from tarballs of the project's test
// guests, and the docker CLI. Docker is never given a registry.
//
// The tests need root, /dev/kvm, dockerd (Debian's docker.io), the Go
// toolchain and the built guests (make -C tests/guests). Without one of
// them they skip, unless NTENDER_REQUIRE_ALL=1 makes them fail.
package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ntender/ntender/tender"
	"github.com/ntender/ntender/tests/guests"
)

// image is the name of the imported test image. It holds every guest used
// here at /NAME.hvt and /NAME.spt, plus /notes.txt, which is not a
// unikernel.
const image = "runnc-test-guests:latest"

// testSubnet returns the subnet of the Docker network the tests create,
// 172.31.X.0/24 with X taken from the process ID, so that concurrent test
// runs with their own engines rarely pick the same one. The range is
// private, and Docker's default pools do not hand it out.
func testSubnet() string { return fmt.Sprintf("172.31.%d.0/24", 16+os.Getpid()%224) }

var imageGuests = []string{"hello", "abort", "exit", "net", "blk"}

// env is the engine shared by all tests, set up once by setup.
var env struct {
	once    sync.Once
	err     error
	skip    string
	tmp     string // temporary directory holding binaries and engine
	dir     string // scripts/docker-env directory
	host    string // DOCKER_HOST
	network string
}

func TestMain(m *testing.M) {
	status := m.Run()
	// Docker keeps a network's bridge after it stops, so the network goes
	// first.
	if env.network != "" {
		if _, err := docker("network", "rm", env.network); err != nil {
			fmt.Fprintf(os.Stderr, "removing the test network: %v\n", err)
			status = 1
		}
	}
	if env.dir != "" {
		if out, err := exec.Command(envScript(), "stop", env.dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the test dockerd: %v: %s\n", err, out)
			status = 1
		}
	}
	if env.tmp != "" {
		os.RemoveAll(env.tmp)
	}
	os.Exit(status)
}

// moduleRoot is the repository root, two levels above this package.
func moduleRoot() string { return filepath.Join(guests.BuildDir(), "..", "..", "..") }

func envScript() string { return filepath.Join(moduleRoot(), "scripts", "docker-env") }

// requireDocker returns once the shared engine runs, or skips or fails
// the test with the reason it cannot.
func requireDocker(t testing.TB) {
	t.Helper()
	env.once.Do(setup)
	if env.skip != "" {
		if os.Getenv("NTENDER_REQUIRE_ALL") == "1" {
			t.Fatalf("%s (NTENDER_REQUIRE_ALL=1)", env.skip)
		}
		t.Skip(env.skip)
	}
	if env.err != nil {
		t.Fatal(env.err)
	}
}

func setup() {
	switch {
	case os.Geteuid() != 0:
		env.skip = "needs root to run dockerd"
		return
	case tender.ProbeKVM() != nil:
		env.skip = "needs KVM: " + tender.ProbeKVM().Error()
		return
	}
	// scripts/docker-env installs docker.io when dockerd is missing. Only
	// a run that requires every test goes that far.
	_, err := exec.LookPath("dockerd")
	if err != nil && os.Getenv("NTENDER_REQUIRE_ALL") != "1" {
		env.skip = "needs dockerd; install Debian's docker.io"
		return
	}
	for _, g := range imageGuests {
		if _, err := os.Stat(guests.Binary(g, "hvt")); err != nil {
			env.skip = "needs the test guests; run make -C tests/guests"
			return
		}
	}
	env.err = startEngine()
}

// startEngine builds runnc and ntender, starts the private engine, imports
// the test image and creates the test network.
func startEngine() error {
	dir, err := os.MkdirTemp("", "runnc-e2e.")
	if err != nil {
		return err
	}
	env.tmp = dir
	bin := filepath.Join(dir, "bin")
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building runnc and ntender needs the go command on PATH: %w", err)
	}
	builds := [][]string{
		{goTool, "build", "-o", filepath.Join(bin, "runnc"), "./cmd/runnc"},
		{goTool, "build", "-buildmode=pie", "-o", filepath.Join(bin, "ntender"), "./cmd/ntender"},
	}
	for _, args := range builds {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}

	env.dir = filepath.Join(dir, "engine")
	out, err := exec.Command(envScript(), "start", env.dir, filepath.Join(bin, "runnc")).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("scripts/docker-env start: %v: %s", err, ee.Stderr)
		}
		return fmt.Errorf("scripts/docker-env start: %w", err)
	}
	env.host = strings.TrimSpace(string(out))

	tarball, err := imageTar()
	if err != nil {
		return err
	}
	if _, err := dockerIn(tarball, "import", "-", image); err != nil {
		return err
	}
	// The bridge lives in the host's namespace, so its name is unique per
	// test process too (at most 15 characters).
	const network = "runnc-e2e"
	bridge := fmt.Sprintf("runnc-e2e%d", os.Getpid()%100000)
	if _, err := docker("network", "create", "--subnet", testSubnet(),
		"-o", "com.docker.network.bridge.name="+bridge, network); err != nil {
		return err
	}
	env.network = network
	return nil
}

// imageTar returns a tarball of the test guests and one non-unikernel file.
func imageTar() (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, g := range imageGuests {
		for _, target := range []string{"hvt", "spt"} {
			data, err := os.ReadFile(guests.Binary(g, target))
			if err != nil {
				return nil, err
			}
			if err := add(g+"."+target, data); err != nil {
				return nil, err
			}
		}
	}
	if err := add("notes.txt", []byte("not a unikernel\n")); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// result is a finished docker command.
type result struct {
	status int
	stdout string
	stderr string
}

func dockerIn(stdin io.Reader, args ...string) (result, error) {
	cmd := exec.Command("docker", append([]string{"-H", env.host}, args...)...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.status = ee.ExitCode()
		return r, fmt.Errorf("docker %s: exit status %d: %s", strings.Join(args, " "), r.status, r.stderr)
	case err != nil:
		return r, fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

func docker(args ...string) (result, error) { return dockerIn(nil, args...) }

// dockerRun runs a container to its end and returns its status and
// output; a non-zero status is not an error.
func dockerRun(t *testing.T, args ...string) result {
	t.Helper()
	r, err := docker(append([]string{"run", "--rm", "--runtime=runnc"}, args...)...)
	if err != nil && r.status == 0 {
		t.Fatal(err)
	}
	return r
}

func TestHelloOutputAndStatus(t *testing.T) {
	requireDocker(t)
	for _, target := range []string{"hvt", "spt"} {
		t.Run(target, func(t *testing.T) {
			r := dockerRun(t, image, "/hello."+target, "Hello_Solo5")
			if r.status != 0 {
				t.Errorf("exit status %d, want 0; stderr: %s", r.status, r.stderr)
			}
			if !strings.Contains(r.stdout, "Hello, World") || !strings.Contains(r.stdout, "SUCCESS") {
				t.Errorf("output lacks the greeting and SUCCESS:\n%s", r.stdout)
			}

			r = dockerRun(t, image, "/exit."+target, "42")
			if r.status != 42 {
				t.Errorf("exit guest: status %d, want 42; stderr: %s", r.status, r.stderr)
			}
		})
	}
}

func TestDockerLogsShowsConsole(t *testing.T) {
	requireDocker(t)
	r, err := docker("run", "-d", "--runtime=runnc", image, "/hello.hvt", "Hello_Solo5")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(r.stdout)
	defer docker("rm", "-f", id)
	if r, err = docker("wait", id); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("docker wait: status %s, want 0", r.stdout)
	}
	if r, err = docker("logs", id); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, "SUCCESS") {
		t.Errorf("docker logs lacks the console output:\n%s", r.stdout)
	}
}

// TestTerminal runs with docker run -t, where runnc hands containerd a
// pseudoterminal through --console-socket.
func TestTerminal(t *testing.T) {
	requireDocker(t)
	r := dockerRun(t, "-t", image, "/hello.spt", "Hello_Solo5")
	if r.status != 0 {
		t.Errorf("exit status %d, want 0; stderr: %s", r.status, r.stderr)
	}
	// The terminal turns each newline into CR LF.
	if !strings.Contains(r.stdout, "SUCCESS\r\n") {
		t.Errorf("output lacks SUCCESS through the terminal: %q", r.stdout)
	}
}

func TestAbortStatus(t *testing.T) {
	requireDocker(t)
	for _, target := range []string{"hvt", "spt"} {
		r := dockerRun(t, image, "/abort."+target)
		if r.status != 255 {
			t.Errorf("%s: exit status %d, want 255; stderr: %s", target, r.status, r.stderr)
		}
	}
}

// TestSptImageUnderBothBackends runs one spt binary with RUNNC_MODE=spt
// and RUNNC_MODE=hvt.
func TestSptImageUnderBothBackends(t *testing.T) {
	requireDocker(t)
	for _, mode := range []string{"spt", "hvt"} {
		t.Run(mode, func(t *testing.T) {
			r := dockerRun(t, "-e", "RUNNC_MODE="+mode, image, "/hello.spt", "Hello_Solo5")
			if r.status != 0 {
				t.Errorf("exit status %d, want 0; stderr: %s", r.status, r.stderr)
			}
			if !strings.Contains(r.stdout, "SUCCESS") {
				t.Errorf("output lacks SUCCESS:\n%s", r.stdout)
			}
		})
	}
}

// TestRuntimeModeFlag uses the runtime runnc-spt, which passes --mode=spt
// to runnc through daemon.json's runtimeArgs.
func TestRuntimeModeFlag(t *testing.T) {
	requireDocker(t)
	r, err := docker("run", "--rm", "--runtime=runnc-spt", image, "/hello.spt", "Hello_Solo5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, "target spt") {
		t.Errorf("hello.spt did not run under spt:\n%s", r.stdout)
	}

	r, _ = docker("run", "--rm", "--runtime=runnc-spt", image, "/hello.hvt", "Hello_Solo5")
	if r.status == 0 {
		t.Fatal("an hvt unikernel ran under --mode=spt")
	}
	if !strings.Contains(r.stderr, "cannot run under --mode=spt") {
		t.Errorf("docker does not show why:\n%s", r.stderr)
	}

	// RUNNC_MODE in the container overrides the runtime's --mode.
	r, err = docker("run", "--rm", "--runtime=runnc-spt", "-e", "RUNNC_MODE=auto", image, "/hello.hvt", "Hello_Solo5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, "target hvt") {
		t.Errorf("RUNNC_MODE=auto did not run hello.hvt under hvt:\n%s", r.stdout)
	}
}

func TestMemoryLimitIsGuestMemory(t *testing.T) {
	requireDocker(t)
	r := dockerRun(t, "-m", "6m", image, "/hello.hvt", "Hello_Solo5")
	if r.status != 0 {
		t.Fatalf("exit status %d; stderr: %s", r.status, r.stderr)
	}
	// The guest runtime prints the guest memory size it was given.
	if !strings.Contains(r.stdout, "mem_size 0x600000") {
		t.Errorf("guest memory is not 6 MiB:\n%s", r.stdout)
	}
}

func TestNotUnikernelRejected(t *testing.T) {
	requireDocker(t)
	r := dockerRun(t, image, "/notes.txt")
	if r.status == 0 {
		t.Fatal("a text file ran as a unikernel")
	}
	if !strings.Contains(r.stderr, `"/notes.txt" is not a Solo5 unikernel`) {
		t.Errorf("docker does not show why the image cannot run:\n%s", r.stderr)
	}
}

func TestVolumeBlockDevice(t *testing.T) {
	requireDocker(t)
	for _, target := range []string{"hvt", "spt"} {
		t.Run(target, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(disk, make([]byte, 64<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			r := dockerRun(t, "-v", disk+":/storage", image, "/blk."+target)
			if r.status != 0 || !strings.Contains(r.stdout, "SUCCESS") {
				t.Fatalf("exit status %d; output:\n%s%s", r.status, r.stdout, r.stderr)
			}
			data, err := os.ReadFile(disk)
			if err != nil {
				t.Fatal(err)
			}
			// The blk guest fills block 0 with '0'+i%64.
			for i := 0; i < 512; i++ {
				if data[i] != byte('0'+i%64) {
					t.Fatalf("disk byte %d is %#x, want %#x: the guest's write is not in the file", i, data[i], '0'+i%64)
				}
			}
		})
	}
}

// container is a detached net guest on the test network.
type container struct {
	id, ip, sandbox string
	pid             int
}

func startNetGuest(t *testing.T, target string) container {
	t.Helper()
	// runnc's default arguments (--ipv4=ADDR/PREFIX --ipv4-gateway=GW)
	// give the net guest its address. The guest runs on the backend of its
	// own target: --mode=auto would run the spt guest in a VM.
	r, err := docker("run", "-d", "--runtime=runnc", "--network", env.network,
		"-e", "RUNNC_MODE="+target, image, "/net."+target)
	if err != nil {
		t.Fatal(err)
	}
	c := container{id: strings.TrimSpace(r.stdout)}
	t.Cleanup(func() { docker("rm", "-f", c.id) })
	r, err = docker("inspect", "-f", "{{.State.Pid}} {{.NetworkSettings.SandboxKey}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c.id)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(r.stdout)
	if len(fields) != 3 {
		t.Fatalf("docker inspect: %q, want pid, sandbox and address", r.stdout)
	}
	c.pid, _ = strconv.Atoi(fields[0])
	c.sandbox, c.ip = fields[1], fields[2]

	// The checks that nothing is left behind look for these.
	if len(containerCgroups(c.id)) == 0 {
		t.Fatalf("container %s has no cgroup under the engine's cgroup parent", c.id)
	}
	if len(runtimeStates(c.id)) == 0 {
		t.Fatalf("container %s has no runnc state under %s", c.id, env.dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(c.sandbox, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		t.Fatalf("network namespace %s of container %s is not mounted (%v)", c.sandbox, c.id, err)
	}
	return c
}

// ping sends an echo request every 0.2 s until a reply arrives, for at
// most 10 s, because the guest may not serve its tap yet when ping starts.
func ping(ip string) error {
	out, err := exec.Command("ping", "-c", "1", "-i", "0.2", "-w", "10", ip).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s: %v: %s", ip, err, out)
	}
	return nil
}

func TestNetGuestAnswersPing(t *testing.T) {
	requireDocker(t)
	for _, target := range []string{"hvt", "spt"} {
		t.Run(target, func(t *testing.T) {
			c := startNetGuest(t, target)
			if err := ping(c.ip); err != nil {
				r, _ := docker("logs", c.id)
				t.Fatalf("%v\nguest console:\n%s%s", err, r.stdout, r.stderr)
			}
		})
	}
}

// containerCgroups returns the cgroup directories of container id, under
// the cgroup parent that scripts/docker-env gives the engine.
func containerCgroups(id string) []string {
	v1, _ := filepath.Glob("/sys/fs/cgroup/*/docker-env-*/" + id)
	v2, _ := filepath.Glob("/sys/fs/cgroup/docker-env-*/" + id)
	return append(v1, v2...)
}

// runtimeStates returns runnc's state directories of container id; the
// runc shim gives runnc a --root under dockerd's exec root.
func runtimeStates(id string) []string {
	states, _ := filepath.Glob(filepath.Join(env.dir, "exec", "runtime-*", "*", id))
	return states
}

// checkNothingLeft checks that container c left no process, cgroup,
// network namespace (with its tap) or runtime state behind.
func checkNothingLeft(t *testing.T, c container) {
	t.Helper()
	if err := unix.Kill(c.pid, 0); err == nil {
		t.Errorf("tender pid %d still exists", c.pid)
	}
	for _, dir := range containerCgroups(c.id) {
		t.Errorf("cgroup %s left behind", dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(c.sandbox, &st); err == nil && st.Type == unix.NSFS_MAGIC {
		t.Errorf("network namespace %s (and its tap) left behind", c.sandbox)
	}
	for _, s := range runtimeStates(c.id) {
		t.Errorf("runtime state %s left behind", s)
	}
}

func TestStopKillRmLeaveNothing(t *testing.T) {
	requireDocker(t)
	cases := []struct {
		name, target string
		end          func(c container) error
		status       int
	}{
		// The hvt tender exits with status 1 on SIGTERM, as solo5-hvt.
		{"stop-hvt", "hvt", func(c container) error { _, err := docker("stop", "-t", "10", c.id); return err }, 1},
		// The spt tender is its pid namespace's init with no handlers, so
		// runnc delivers SIGTERM as SIGKILL.
		{"stop-spt", "spt", func(c container) error { _, err := docker("stop", "-t", "10", c.id); return err }, 137},
		{"kill-hvt", "hvt", func(c container) error { _, err := docker("kill", c.id); return err }, 137},
		{"kill-spt", "spt", func(c container) error { _, err := docker("kill", c.id); return err }, 137},
		{"sigkill-hvt", "hvt", func(c container) error { return unix.Kill(c.pid, unix.SIGKILL) }, 137},
		{"sigkill-spt", "spt", func(c container) error { return unix.Kill(c.pid, unix.SIGKILL) }, 137},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startNetGuest(t, tc.target)
			if err := ping(c.ip); err != nil {
				t.Fatal(err)
			}
			if err := tc.end(c); err != nil {
				t.Fatal(err)
			}
			r, err := docker("wait", c.id)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(r.stdout); got != strconv.Itoa(tc.status) {
				t.Errorf("exit status %s, want %d", got, tc.status)
			}
			if _, err := docker("rm", c.id); err != nil {
				t.Fatal(err)
			}
			checkNothingLeft(t, c)
		})
	}
}

func TestRmForceLeavesNothing(t *testing.T) {
	requireDocker(t)
	c := startNetGuest(t, "hvt")
	if _, err := docker("rm", "-f", c.id); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, c)
}
