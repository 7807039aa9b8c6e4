package health

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// The test image: the static webapp of testdata/webapp, alone in an image
// built FROM scratch, so nothing is pulled from a registry.
const dockerfile = `FROM scratch
COPY app /app
HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["/app", "-check"]
ENTRYPOINT ["/app"]
`

// dockerCLI runs docker for the tests.
type dockerCLI struct {
	t   *testing.T
	bin string
}

func (d dockerCLI) run(args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.bin, args...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// cleanup runs docker args at the end of the test, ignoring failures.
func (d dockerCLI) cleanup(args ...string) {
	d.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		exec.CommandContext(ctx, d.bin, args...).Run()
	})
}

func randName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// buildImage builds the test image and removes it when the test ends.
func buildImage(t *testing.T, d dockerCLI) string {
	t.Helper()
	tag := randName("homelab-health-test:")
	d.cleanup("rmi", "--force", tag) // registered before the containers' removal: runs after it
	testenv.ScratchImage(t, d.bin, "./testdata/webapp", "app", "", tag, dockerfile)
	return tag
}

// start runs a container of image and removes it when the test ends.
func start(t *testing.T, d dockerCLI, image string, runArgs []string, appArgs ...string) string {
	t.Helper()
	name := randName("homelab-health-test-")
	d.cleanup("rm", "--force", "--volumes", name)
	args := append([]string{"run", "--detach", "--name", name}, runArgs...)
	d.run(append(append(args, image), appArgs...)...)
	return name
}

// waitHealth waits until Docker reports the container's health as want.
func waitHealth(t *testing.T, d dockerCLI, name, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got = d.run("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name)
		if got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("container %s: health %q after 60s, want %q\n%s", name, got, want, d.run("logs", name))
}

func containerProbe(name string) *lab.Health {
	return &lab.Health{Container: &lab.ContainerProbe{Name: name, Timeout: 10 * time.Second}}
}

func TestContainer(t *testing.T) {
	t.Parallel()
	d := dockerCLI{t: t, bin: testenv.Docker(t)}
	image := buildImage(t, d)
	healthy := start(t, d, image, nil)
	failing := start(t, d, image, nil, "-addr", "127.0.0.1:9999") // its HEALTHCHECK asks port 8080
	unchecked := start(t, d, image, []string{"--no-healthcheck"})
	stopped := start(t, d, image, nil)
	waitHealth(t, d, healthy, "healthy")
	waitHealth(t, d, failing, "unhealthy")
	waitHealth(t, d, stopped, "healthy")
	d.run("stop", "--time", "1", stopped)
	opts := Options{Docker: d.bin}

	runConformance(t, conformance{
		kind:    lab.ProbeContainer,
		opts:    opts,
		healthy: func(t *testing.T) *lab.Health { return containerProbe(healthy) },
		unhealthy: func(t *testing.T) (*lab.Health, string) {
			return containerProbe(stopped), "exited (exit code "
		},
		hang: func(t *testing.T, timeout time.Duration) (*lab.Health, Options) {
			// The same healthy container, asked of a "daemon" that accepts
			// the connection and never answers (DOCKER_HOST is passed on).
			h := containerProbe(healthy)
			h.Container.Timeout = timeout
			silent := Options{Docker: d.bin, LookupEnv: env(map[string]string{"DOCKER_HOST": "tcp://" + listen(t)})}
			return h, silent
		},
	})

	tests := []struct {
		name, container string
		healthy         bool
		detail          string
	}{
		{"passing healthcheck", healthy, true, "running, healthy"},
		{"failing healthcheck", failing, false, "failing checks): check: Get \"http://127.0.0.1:8080/healthz\""},
		{"no healthcheck", unchecked, true, "running (no healthcheck)"},
		{"stopped", stopped, false, "exited (exit code "},
		{"no such container", "homelab-health-test-none", false, "docker inspect: No such container: homelab-health-test-none"},
		{"an image, not a container", image, false, "docker inspect: No such container: " + image},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Probe(t.Context(), service("app", containerProbe(tt.container)), opts)
			t.Logf("detail %q in %v", r.Detail, r.Duration)
			if r.Healthy != tt.healthy || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("healthy=%v detail=%q, want %v and %q", r.Healthy, r.Detail, tt.healthy, tt.detail)
			}
		})
	}
	t.Run("no docker", func(t *testing.T) {
		r := Probe(t.Context(), service("app", containerProbe(healthy)), Options{Docker: "no-such-docker"})
		if r.Healthy || !strings.Contains(r.Detail, `"no-such-docker": executable file not found`) {
			t.Errorf("healthy=%v detail=%q", r.Healthy, r.Detail)
		}
	})
}
