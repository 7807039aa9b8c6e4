package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	appMu     sync.Mutex
	appBins   = map[string]string{} // version -> binary, per test process
	appImages = map[string]string{} // version -> image tag
)

// TestApp builds internal/testenv/testapp as version (statically, once
// per test process) and returns the binary's path.
func TestApp(t testing.TB, version string) string {
	t.Helper()
	appMu.Lock()
	defer appMu.Unlock()
	if bin, ok := appBins[version]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "homelab-testapp-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "testapp")
	StaticBinary(t, "homelab/internal/testenv/testapp", bin, "-X main.version="+version)
	appBins[version] = bin
	return bin
}

// appDockerfile makes an image of the static testapp FROM scratch: it
// serves on :8080 with its data in /data, and Docker's HEALTHCHECK asks
// its /healthz.
const appDockerfile = `FROM scratch
COPY testapp /app
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --start-period=5s --retries=2 CMD ["/app", "check", "-addr", "127.0.0.1:8080"]
ENTRYPOINT ["/app", "serve", "-addr", "0.0.0.0:8080", "-data", "/data"]
`

// TestAppImage builds the Docker image homelab-testapp:<version> of the
// testapp (once per test process; the image is kept, as a cache) and
// returns its tag. docker is the CLI from Docker(t).
func TestAppImage(t testing.TB, docker, version string) string {
	t.Helper()
	appMu.Lock()
	defer appMu.Unlock()
	if tag, ok := appImages[version]; ok {
		return tag
	}
	tag := "homelab-testapp:" + version
	ScratchImage(t, docker, "homelab/internal/testenv/testapp", "testapp", "-X main.version="+version, tag, appDockerfile)
	appImages[version] = tag
	return tag
}

// goBin is the go command running the tests.
func goBin() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}
