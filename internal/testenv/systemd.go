package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SystemdInnerEnv is set (to "1") in the environment of a test binary
// that SystemdHost.RunTest runs inside the container; see SystemdInner.
const SystemdInnerEnv = "HOMELAB_SYSTEMD_INNER"

// SystemdHost is a Docker container running a real systemd as PID 1
// (Debian bookworm: systemd 252, with journald and D-Bus), booted for one
// test by Systemd and removed at its end.
//
// Tools that talk to systemd (systemctl, journalctl) must run inside the
// container: with Exec or Command for single commands, or with RunTest for
// Go code (a test binary built statically, copied in and run there).
//
// Journald runs with a volatile journal (/run/log/journal). To read a
// unit's log, as a journald log reader would:
//
//	h.Exec(t, "journalctl", "--unit", "app.service", "--output", "json", "--lines", "5", "--no-pager")
//
// prints one JSON object per line with MESSAGE, _SYSTEMD_UNIT, PRIORITY,
// __REALTIME_TIMESTAMP (µs since the epoch, as a string), _PID and so on
// (systemd.journal-fields(7)); a reader written in Go that runs journalctl
// itself is tested with RunTest, inside the container. Lines a unit wrote
// moments ago may take a little while to reach the journal: poll.
type SystemdHost struct {
	// Docker is the docker CLI.
	Docker string
	// Container is the container's name.
	Container string
	// Image is the image it runs (SystemdImage).
	Image string
}

// systemdRunFlags are the `docker run` flags that let systemd boot as
// PID 1 in a container, on cgroup v1 (hybrid, as on this project's test
// machines) and v2 alike:
//   - the host's cgroup tree mounted read-write and the host cgroup
//     namespace: systemd makes its own cgroups (units' scopes and slices)
//     under the container's cgroup;
//   - all capabilities but CAP_SYS_RESOURCE, and no seccomp or AppArmor
//     profile, instead of --privileged: --privileged asks for every
//     capability, and on a host whose bounding set lacks one (Firecracker
//     VMs drop CAP_SYS_RESOURCE) runc fails with "unable to apply caps:
//     operation not permitted". systemd does without CAP_SYS_RESOURCE;
//   - tmpfs on /run, /run/lock and /tmp, which systemd expects to be
//     empty at boot;
//   - SIGRTMIN+3, systemd's "halt" signal, as the stop signal, and
//     container=docker, which tells systemd it is in a container;
//   - no network: the tests need none.
var systemdRunFlags = []string{
	"--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
	"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
	"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
	"--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
	"--stop-signal", "SIGRTMIN+3", "--env", "container=docker",
	"--network", "none",
}

// Systemd boots a systemd container for the test (the image from
// SystemdImage, built on first use) and returns once `systemctl
// is-system-running --wait` says running or degraded. The container is
// removed at the end of the test; when the test failed, the tail of its
// journal is logged first. Without docker, or without the image and a
// way to build it, the test is skipped (it fails under CI=true).
func Systemd(t testing.TB) *SystemdHost {
	t.Helper()
	docker := Docker(t)
	h := &SystemdHost{Docker: docker, Image: SystemdImage(t, docker), Container: "homelab-systemd-" + randHex(6)}
	args := append([]string{"run", "--detach", "--name", h.Container, "--label", "homelab.test=systemd"}, systemdRunFlags...)
	args = append(args, h.Image, "/lib/systemd/systemd")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, docker, args...).CombinedOutput(); err != nil {
		exec.Command(docker, "rm", "--force", "--volumes", h.Container).Run()
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := h.output(context.Background(), nil, "journalctl", "--no-pager", "--lines", "40"); err == nil {
				t.Logf("journal of %s (last 40 lines):\n%s", h.Container, out)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, docker, "rm", "--force", "--volumes", h.Container).CombinedOutput(); err != nil {
			t.Logf("docker rm %s: %v: %s", h.Container, err, out)
		}
	})
	h.waitBooted(t)
	return h
}

// waitBooted waits (at most a minute) until systemd has finished booting.
func (h *SystemdHost) waitBooted(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		out, err := h.output(ctx, nil, "systemctl", "is-system-running", "--wait")
		cancel()
		state := strings.TrimSpace(out)
		switch {
		case state == "running":
			return
		case state == "degraded":
			failed, _ := h.output(context.Background(), nil, "systemctl", "--failed", "--no-pager")
			t.Logf("systemd in %s booted degraded:\n%s", h.Container, failed)
			return
		}
		// Before systemd listens, systemctl cannot connect ("offline",
		// or an error): try again, unless the container has died.
		if running, _ := exec.Command(h.Docker, "inspect", "--format", "{{.State.Running}}", h.Container).Output(); strings.TrimSpace(string(running)) != "true" {
			logs, _ := exec.Command(h.Docker, "logs", "--tail", "40", h.Container).CombinedOutput()
			t.Fatalf("systemd container %s exited while booting:\n%s", h.Container, logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd in %s did not finish booting within a minute: is-system-running: %q (%v)", h.Container, state, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Command returns `docker exec [-e env]... CONTAINER args...`, for a test
// that wants the exit status, stdin or separate streams; env is
// KEY=VALUE pairs set for the command inside the container.
func (h *SystemdHost) Command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	a := []string{"exec"}
	for _, e := range env {
		a = append(a, "--env", e)
	}
	a = append(a, h.Container)
	return exec.CommandContext(ctx, h.Docker, append(a, args...)...)
}

// output runs args in the container and returns stdout; the error
// carries stderr.
func (h *SystemdHost) output(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := h.Command(ctx, env, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Exec runs args in the container (within two minutes) and returns its
// stdout; it fails the test when the command fails, with its stderr.
func (h *SystemdHost) Exec(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.output(ctx, nil, args...)
	if err != nil {
		t.Fatalf("in %s: %v", h.Container, err)
	}
	return out
}

// CopyIn copies the file or directory src of the host to dst in the
// container (`docker cp`; dst's directory must exist). Modes are kept.
func (h *SystemdHost) CopyIn(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command(h.Docker, "cp", src, h.Container+":"+dst).CombinedOutput(); err != nil {
		t.Fatalf("docker cp %s %s:%s: %v: %s", src, h.Container, dst, err, out)
	}
}

// WriteFile writes data to the absolute path name in the container, with
// mode perm, creating its directory.
func (h *SystemdHost) WriteFile(t testing.TB, name string, data []byte, perm os.FileMode) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), path.Base(name))
	if err := os.WriteFile(tmp, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, perm); err != nil { // umask
		t.Fatal(err)
	}
	h.Exec(t, "mkdir", "-p", path.Dir(name))
	h.CopyIn(t, tmp, name)
}

// InstallUnit writes a unit file (systemd.unit(5)) named name, such as
// "app.service", to /etc/systemd/system and runs `systemctl
// daemon-reload`, so that the unit can be started right away.
func (h *SystemdHost) InstallUnit(t testing.TB, name, content string) {
	t.Helper()
	h.WriteFile(t, "/etc/systemd/system/"+name, []byte(content), 0o644)
	h.Exec(t, "systemctl", "daemon-reload")
}

var (
	testBinMu sync.Mutex
	testBins  = map[string]string{} // package -> static test binary, per test process
)

// RunTest runs tests of the Go package pkg (an import path, such as
// "homelab/internal/runtime") inside the container: it builds the
// package's test binary statically (CGO_ENABLED=0 go test -c; once per
// test process), copies it in and runs it there with SystemdInnerEnv=1
// and -test.run run -test.v. It returns the binary's combined output and
// a non-nil error when it failed (an *exec.ExitError when tests failed).
// The inner tests call SystemdInner first, so that they skip everywhere
// else.
func (h *SystemdHost) RunTest(t testing.TB, pkg, run string) (string, error) {
	t.Helper()
	bin := staticTestBinary(t, pkg)
	dst := "/usr/local/bin/" + filepath.Base(bin)
	h.CopyIn(t, bin, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := h.Command(ctx, []string{SystemdInnerEnv + "=1"}, dst, "-test.run", run, "-test.v", "-test.count", "1", "-test.timeout", "4m")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// SystemdInner skips the test unless it runs inside a systemd container,
// started by SystemdHost.RunTest.
func SystemdInner(t testing.TB) {
	t.Helper()
	if os.Getenv(SystemdInnerEnv) != "1" {
		t.Skipf("runs inside the systemd test container only (%s=1, set by testenv.SystemdHost.RunTest)", SystemdInnerEnv)
	}
}

// staticTestBinary builds pkg's test binary without cgo, so that it runs
// in the container whatever its C library.
func staticTestBinary(t testing.TB, pkg string) string {
	t.Helper()
	testBinMu.Lock()
	defer testBinMu.Unlock()
	if bin, ok := testBins[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "homelab-inner-test-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, strings.ReplaceAll(path.Base(pkg), ".", "_")+".test")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCommand(), "test", "-c", "-o", bin, pkg)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go test -c %s: %v\n%s", pkg, err, out)
	}
	testBins[pkg] = bin
	return bin
}

// goCommand is the go command of the running tests: $GOROOT/bin/go when
// GOROOT is set (go test sets it), else go in PATH.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// moduleRoot is the directory of the go.mod above the working directory
// (a test's working directory is its package's directory).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

var (
	systemdImageMu sync.Mutex
	systemdImage   string // per test process
)

// SystemdImage returns the name of the systemd test image,
// homelab-test-systemd:<hash of the recipe>, building it with
// scripts/build-systemd-image.sh when this machine does not have it yet
// (about two minutes, as root, with debootstrap and Debian's mirror; see
// the script). docker is the CLI from Docker(t). When the image is
// missing and cannot be built here (not root, no debootstrap), the test is
// skipped, or fails under CI=true.
func SystemdImage(t testing.TB, docker string) string {
	t.Helper()
	systemdImageMu.Lock()
	defer systemdImageMu.Unlock()
	if systemdImage != "" {
		return systemdImage
	}
	script := filepath.Join(moduleRoot(t), "scripts", "build-systemd-image.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	// The script finds docker in PATH: put the one in use first.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(docker)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			Missing(t, "systemd test image: %s", strings.TrimSpace(stderr.String()))
		}
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Logf("built the systemd test image in %s", d.Round(time.Second))
	}
	systemdImage = strings.TrimSpace(string(out))
	return systemdImage
}
