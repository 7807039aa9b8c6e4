package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Docker returns the path of a docker CLI whose daemon answers (`docker
// info` succeeds): $HOMELAB_DOCKER, or docker in PATH. Otherwise the test
// is skipped, or fails under CI=true. Tests must not pull images (no
// registry may be reachable): build them locally, FROM scratch.
func Docker(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("HOMELAB_DOCKER")
	if bin == "" {
		bin = "docker"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		Missing(t, "docker not found in PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		Missing(t, "docker info: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return p
}
