package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StaticBinary builds the Go package pkg (an import path, or a ./path
// relative to the test's package) with CGO_ENABLED=0 for linux into out,
// with ldflags when not empty ("-X main.version=1.1.0"). It runs on any
// image, FROM scratch included.
func StaticBinary(t testing.TB, pkg, out, ldflags string) {
	t.Helper()
	args := []string{"build", "-trimpath"}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin(), append(args, "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// ScratchImage builds the Docker image tag from dockerfile (a FROM scratch
// recipe: no registry is reachable) in a directory holding the static
// build of pkg as name. docker is the CLI from Docker(t). The image is not
// removed: callers that want it gone register `docker rmi` themselves.
func ScratchImage(t testing.TB, docker, pkg, name, ldflags, tag, dockerfile string) {
	t.Helper()
	dir := t.TempDir()
	StaticBinary(t, pkg, filepath.Join(dir, name), ldflags)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, docker, "build", "--quiet", "--tag", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", tag, err, strings.TrimSpace(string(out)))
	}
}

// FreeAddr returns a 127.0.0.1 address with a port nobody listened on a
// moment ago, for a server a test starts as another process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
