package runtime

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// TestContainers reads a real container of the testapp image (FROM
// scratch) started by Compose: running with its start time (as docker
// inspect says it), no restarts and some memory; after a stop, exited
// with no memory. Services of other runtimes are left out.
func TestContainers(t *testing.T) {
	docker := testenv.Docker(t)
	dir := t.TempDir()
	project, file := composeProject(t, docker, dir)
	services := map[string]*lab.Service{
		"app": {Name: "app", Runtime: &lab.Runtime{Compose: &lab.ComposeRuntime{
			Project: project, Service: "app", File: file, Timeout: time.Minute}}},
		"other": {Name: "other", Runtime: &lab.Runtime{Exec: &lab.ExecRuntime{}}},
	}
	rt, err := New(services["app"], Options{Docker: docker})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res := Containers(ctx, services, Options{Docker: docker}, time.Minute)
	if len(res) != 1 || res[0].Service != "app" || res[0].Err != nil || len(res[0].Containers) != 1 {
		t.Fatalf("containers: %+v", res)
	}
	c := res[0].Containers[0]
	out, err := exec.Command(docker, "inspect", "--format", "{{.State.StartedAt}} {{.Name}}", c.ID).Output()
	if err != nil {
		t.Fatal(err)
	}
	startedAt, name, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	want, err := time.Parse(time.RFC3339Nano, startedAt)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "running" || c.Restarts != 0 || !c.StartedAt.Equal(want) || "/"+c.Name != name {
		t.Errorf("container %+v; docker inspect says started %s, name %s", c, want, name)
	}
	// The static testapp idles in a few MiB.
	if c.Memory == 0 || c.Memory > 1<<30 {
		t.Errorf("memory %d bytes", c.Memory)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	res = Containers(ctx, services, Options{Docker: docker}, time.Minute)
	if len(res) != 1 || res[0].Err != nil || len(res[0].Containers) != 1 || res[0].Containers[0].State != "exited" || res[0].Containers[0].Memory != 0 {
		t.Errorf("after stop: %+v", res)
	}
	if res := Containers(ctx, services, Options{Docker: "no-such-docker"}, time.Minute); len(res) != 1 || res[0].Err == nil {
		t.Errorf("without docker: %+v", res)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"0B": 0, "12.5MiB": 12.5 * (1 << 20), "1.5GiB": 1.5 * (1 << 30), "3kB": 3000, "2GB": 2e9} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12XB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}
