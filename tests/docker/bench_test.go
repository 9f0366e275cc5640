package docker

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// staticHello is the program that runs under runc for comparison: a
// statically linked binary that prints one line, the closest a Linux
// process comes to the hello unikernel.
const staticHello = `package main

import "os"

func main() { os.Stdout.WriteString("Hello, World\n") }
`

// BenchmarkDockerRunHello times docker run --rm, from the command to the
// container's exit, of the hello unikernel under runnc and of a static
// hello binary under runc, on the same engine. It is not run by go test
// without -bench; one iteration each is
//
//	go test -run '^$' -bench DockerRunHello -benchtime 1x ./tests/docker
func BenchmarkDockerRunHello(b *testing.B) {
	requireDocker(b)
	if _, err := exec.LookPath("runc"); err != nil {
		b.Skip("needs runc for the comparison")
	}
	const runcImage = "runnc-bench-static-hello:latest"
	if err := importStaticHello(b, runcImage); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
	}{
		{"runnc-hvt", []string{"--runtime=runnc", image, "/hello.hvt", "Hello_Solo5"}},
		{"runnc-spt", []string{"--runtime=runnc", image, "/hello.spt", "Hello_Solo5"}},
		{"runc-static", []string{"--runtime=runc", runcImage, "/hello"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				r, err := docker(append([]string{"run", "--rm"}, c.args...)...)
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Contains([]byte(r.stdout), []byte("Hello, World")) {
					b.Fatalf("output lacks the greeting: %s", r.stdout)
				}
			}
		})
	}
}

func importStaticHello(b *testing.B, name string) error {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(staticHello), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n"), 0o644); err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	cmd := exec.Command(goTool, "build", "-o", "hello", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the static hello: %v: %s", err, out)
	}

	data, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		return err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = dockerIn(&buf, "import", "-", name)
	return err
}
