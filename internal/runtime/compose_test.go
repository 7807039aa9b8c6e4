package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// composeProject writes a compose file running the testapp image with its
// data bind-mounted from dir/data, under a fresh project name, and takes
// the project down at the end of the test.
func composeProject(t *testing.T, docker, dir string) (project, file string) {
	t.Helper()
	image := testenv.TestAppImage(t, docker, "1.0.0")
	b := make([]byte, 4)
	rand.Read(b)
	project = "hltest-" + hex.EncodeToString(b)
	file = filepath.Join(dir, "compose.yaml")
	// pull_policy never: no registry is reachable, the image is local.
	yaml := "services:\n  app:\n    image: " + image + "\n    pull_policy: never\n    stop_grace_period: 5s\n    volumes: [\"./data:/data\"]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, docker, "compose", "-p", project, "-f", file, "down", "--volumes", "--timeout", "1").CombinedOutput(); err != nil {
			t.Logf("compose down: %v: %s", err, out)
		}
	})
	return project, file
}

func TestComposeRuntime(t *testing.T) {
	docker := testenv.Docker(t)
	dir := t.TempDir()
	project, file := composeProject(t, docker, dir)
	ctx := t.Context()
	mk := func(file string) Runtime {
		rt, err := New(&lab.Service{Name: "app", Runtime: &lab.Runtime{Compose: &lab.ComposeRuntime{
			Project: project, Service: "app", File: file, Timeout: time.Minute}}}, Options{Docker: docker})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rt := mk(file)
	want := func(rt Runtime, state State, detail string) Status {
		t.Helper()
		st, err := rt.Status(ctx)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if st.State != state || !strings.Contains(st.Detail, detail) {
			t.Fatalf("status %s (%s), want %s (%s)", st.State, st.Detail, state, detail)
		}
		return st
	}
	want(rt, Stopped, "no container")
	if err := mk("").Start(ctx); err == nil || !strings.Contains(err.Error(), "without runtime.compose.file homelab cannot create one") {
		t.Fatalf("Start without a file or container: %v", err)
	}

	before := time.Now().Add(-time.Second) // Docker's clock is this machine's
	if err := rt.Start(ctx); err != nil {  // up: creates the container
		t.Fatalf("Start: %v", err)
	}
	st := want(rt, Running, "running")
	if st.Since.Before(before) || st.Since.After(time.Now().Add(time.Second)) {
		t.Errorf("Since %s, want about now", st.Since)
	}

	// Without the compose file, state, stop and start work from the
	// containers' labels.
	bare := mk("")
	want(bare, Running, "running")
	if err := bare.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	want(bare, Stopped, "exited (0)")
	events, _ := os.ReadFile(filepath.Join(dir, "data", "events.log"))
	if got := string(events); got != "start 1.0.0\nstop 1.0.0 (terminated)\n" {
		t.Errorf("events.log = %q: want one start and one clean stop", got)
	}
	if err := bare.Stop(ctx); err != nil {
		t.Fatalf("Stop of a stopped service: %v", err)
	}
	if err := bare.Start(ctx); err != nil { // start: the existing container
		t.Fatalf("Start: %v", err)
	}
	want(bare, Running, "running")
}

func TestComposeRuntimeErrors(t *testing.T) {
	docker := testenv.Docker(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	os.WriteFile(file, []byte("services:\n  app:\n    image: homelab-no-such-image:0\n    pull_policy: never\n"), 0o644)
	t.Cleanup(func() { exec.Command(docker, "compose", "-p", "hltest-errors", "-f", file, "down").Run() })
	rt, _ := New(&lab.Service{Name: "app", Runtime: &lab.Runtime{Compose: &lab.ComposeRuntime{
		Project: "hltest-errors", Service: "app", File: file, Timeout: time.Minute}}}, Options{Docker: docker})
	err := rt.Start(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "service app: docker compose up: ") || !strings.Contains(err.Error(), "homelab-no-such-image") {
		t.Fatalf("Start with a missing image: %v", err)
	}
	rt, _ = New(&lab.Service{Name: "app", Runtime: &lab.Runtime{Compose: &lab.ComposeRuntime{
		Project: "hltest-errors", Service: "app", Timeout: time.Minute}}}, Options{Docker: "no-such-docker"})
	if _, err := rt.Status(t.Context()); err == nil || !strings.Contains(err.Error(), "no-such-docker") {
		t.Fatalf("Status without docker: %v", err)
	}
}

func health(s string) *struct{ Status string } { return &struct{ Status string }{s} }

func TestSummarize(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	run := func(started string) containerState {
		return containerState{Status: "running", StartedAt: at(started)}
	}
	tests := []struct {
		name   string
		states []containerState
		want   Status
	}{
		{"one running", []containerState{run("2026-11-23T10:00:00Z")}, Status{State: Running, Since: at("2026-11-23T10:00:00Z"), Detail: "running"}},
		{"replicas: newest start", []containerState{run("2026-11-23T10:00:00Z"), run("2026-11-23T11:00:00Z")},
			Status{State: Running, Since: at("2026-11-23T11:00:00Z"), Detail: "running, running"}},
		{"one replica down", []containerState{run("2026-11-23T10:00:00Z"), {Status: "exited", ExitCode: 137}},
			Status{State: Stopped, Detail: "1 of 2 running: running, exited (137)"}},
		{"restarting", []containerState{{Status: "restarting", Restarting: true}}, Status{State: Restarting, Detail: "restarting"}},
		{"created", []containerState{{Status: "created"}}, Status{State: Stopped, Detail: "created"}},
		{"health", []containerState{{Status: "running", Health: health("unhealthy")}}, Status{State: Running, Detail: "running (unhealthy)", Health: HealthUnhealthy}},
		{"all healthy", []containerState{{Status: "running", Health: health("healthy")}, {Status: "running", Health: health("healthy")}},
			Status{State: Running, Detail: "running (healthy), running (healthy)", Health: HealthHealthy}},
		{"one starting", []containerState{{Status: "running", Health: health("healthy")}, {Status: "running", Health: health("starting")}},
			Status{State: Running, Detail: "running (healthy), running (starting)", Health: HealthStarting}},
		{"one unhealthy", []containerState{{Status: "running", Health: health("starting")}, {Status: "running", Health: health("unhealthy")}},
			Status{State: Running, Detail: "running (starting), running (unhealthy)", Health: HealthUnhealthy}},
		{"stopped: no health", []containerState{{Status: "exited", Health: health("unhealthy")}}, Status{State: Stopped, Detail: "exited (0)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.states); got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRetag(t *testing.T) {
	tests := []struct{ name, in, want, err string }{
		{"plain", "services:\n  app:\n    image: reg:5000/team/app:1.0.0 # pinned\n    ports: [\"80:80\"]\n",
			"services:\n  app:\n    image: reg:5000/team/app:1.1.0 # pinned\n    ports: [\"80:80\"]\n", ""},
		{"double quoted", "# top\nservices:\n  db: {image: postgres:15}\n  app:\n    image: \"app:1.0.0\"\n",
			"# top\nservices:\n  db: {image: postgres:15}\n  app:\n    image: \"app:1.1.0\"\n", ""},
		{"flow mapping", "services: {app: {image: 'app:1.0.0', restart: always}}\n",
			"services: {app: {image: 'app:1.1.0', restart: always}}\n", ""},
		{"unicode before", "services:\n  app: {labels: {x: \"é\"}, image: app:1.0.0}\n",
			"services:\n  app: {labels: {x: \"é\"}, image: app:1.1.0}\n", ""},
		{"no tag", "services:\n  app:\n    image: app\n", "", `image "app" has no tag`},
		{"variable", "services:\n  app:\n    image: app:${TAG}\n", "", "uses a variable"},
		{"digest", "services:\n  app:\n    image: app@sha256:abc\n", "", "pinned by digest"},
		{"build", "services:\n  app:\n    build: .\n", "", "has no image"},
		{"no service", "services:\n  web:\n    image: web:1\n", "", `no service "app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &composeRuntime{name: "app", cfg: &lab.ComposeRuntime{Service: "app", File: "compose.yaml"}}
			got, err := r.retag([]byte(tt.in), "1.1.0")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

// TestComposeSetVersion changes the image tag of a real project: the
// file is edited in place with a .bak kept, and the container runs the
// new version (the testapp migrates its data forward).
func TestComposeSetVersion(t *testing.T) {
	docker := testenv.Docker(t)
	testenv.TestAppImage(t, docker, "1.0.5")
	dir := t.TempDir()
	project, file := composeProject(t, docker, dir)
	rt, _ := New(&lab.Service{Name: "app", Runtime: &lab.Runtime{Compose: &lab.ComposeRuntime{
		Project: project, Service: "app", File: file, Timeout: time.Minute}}}, Options{Docker: docker})
	v, err := AsVersioner(rt)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(file)
	if got, err := v.Version(ctx); err != nil || got != "1.0.0" {
		t.Fatalf("Version = %q, %v", got, err)
	}
	// Prepare: the image of a tag is on this host, or cannot be had with
	// pull_policy: never.
	p := rt.(Preparer)
	if err := p.Prepare(ctx, "1.0.5"); err != nil {
		t.Fatalf("Prepare 1.0.5: %v", err)
	}
	err = p.Prepare(ctx, "9.9.9")
	if want := "service app: image homelab-testapp:9.9.9 is not on this host and the service's pull_policy is never: build or load it first"; err == nil || err.Error() != want {
		t.Fatalf("Prepare of a missing image: %v\nwant %s", err, want)
	}
	if err := v.SetVersion(ctx, "1.0.5"); err != nil {
		t.Fatalf("SetVersion: %v", err)
	}
	if got, err := v.Version(ctx); err != nil || got != "1.0.5" {
		t.Fatalf("Version after = %q, %v", got, err)
	}
	if bak, _ := os.ReadFile(file + ".bak"); string(bak) != string(before) {
		t.Errorf(".bak = %q, want the previous file", bak)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Join(dir, "data", "data.txt"))
		if string(data) == "migrated to schema 1 by 1.0.0\nmigrated to schema 2 by 1.0.5\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("data.txt = %q: the container did not run 1.0.5", data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, err := rt.Status(ctx); err != nil || st.State != Running {
		t.Errorf("status %+v, %v", st, err)
	}
	// Back to 1.0.0 without starting it: the container is recreated on
	// 1.0.0 and left created, so a later start runs 1.0.0.
	if err := rt.(StoppedVersioner).SetVersionStopped(ctx, "1.0.0"); err != nil {
		t.Fatalf("SetVersionStopped: %v", err)
	}
	if st, err := rt.Status(ctx); err != nil || st.State != Stopped || st.Detail != "created" {
		t.Errorf("status after SetVersionStopped %+v, %v; want stopped, created", st, err)
	}
	out, err := exec.Command(docker, "compose", "-p", project, "-f", file, "ps", "-a", "--format", "{{.Image}}").Output()
	if err != nil || strings.TrimSpace(string(out)) != "homelab-testapp:1.0.0" {
		t.Errorf("container image %q, %v; want homelab-testapp:1.0.0", out, err)
	}
}
