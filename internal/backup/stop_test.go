package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/testenv"
)

// execService is the YAML of an exec service running the real testapp in
// dir/<name> (data, pid file and log there).
func execService(t *testing.T, dir, name string) string {
	t.Helper()
	bin := testenv.TestApp(t, "1.0.0")
	sd := filepath.Join(dir, name)
	os.MkdirAll(sd, 0o755)
	pid := filepath.Join(sd, "app.pid")
	t.Cleanup(func() {
		// Kill it and wait until it is gone: it writes its stop line to
		// data/events.log as it exits, which would race t.TempDir's
		// removal ("directory not empty", seen under load).
		b, err := os.ReadFile(pid)
		if err != nil {
			return
		}
		p := strings.TrimSpace(string(b))
		exec.Command("kill", p).Run()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			// Gone, or a zombie (it has closed its files).
			if st, err := os.ReadFile("/proc/" + p + "/stat"); err != nil || strings.Contains(string(st), ") Z ") {
				return
			}
		}
	})
	return fmt.Sprintf(`  %[1]s:
    runtime:
      exec:
        dir: %[2]s
        start: "setsid %[3]s serve -addr %[4]s -data data -pidfile app.pid >app.log 2>&1 </dev/null &"
        stop: "kill $(cat app.pid)"
        pid_file: app.pid
        timeout: 10s
`, name, sd, bin, testenv.FreeAddr(t))
}

// dump returns a file of the target's latest snapshot.
func envDump(t *testing.T, e *env, path string) string {
	t.Helper()
	ctx := context.Background()
	c, err := e.M.Repo(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Dump(ctx, "latest", path, &buf, false); err != nil {
		t.Fatalf("restic dump %s: %v", path, err)
	}
	return buf.String()
}

func envState(t *testing.T, e *env, name string) runtime.Status {
	t.Helper()
	rt, err := runtime.New(e.Lab.Services[name], runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func envStart(t *testing.T, e *env, name string) {
	t.Helper()
	rt, _ := runtime.New(e.Lab.Services[name], runtime.Options{})
	if err := rt.Start(context.Background()); err != nil {
		if x := e.Lab.Services[name].Runtime.Exec; x != nil {
			out, _ := os.ReadFile(filepath.Join(x.Dir, "app.log"))
			t.Fatalf("%v; app.log:\n%s", err, out)
		}
		t.Fatal(err)
	}
}

// TestStopAroundBackup: the services of a target's stop list are stopped
// during the copy, and running again afterwards, also when the backup
// fails; a service stopped before stays stopped. Real processes under
// the exec runtime, a real restic repository.
func TestStopAroundBackup(t *testing.T) {
	dir := t.TempDir()
	services := execService(t, dir, "app") + execService(t, dir, "idle")
	appData := filepath.Join(dir, "app", "data")
	e := newEnvIn(t, dir, services, fmt.Sprintf(`  data:
    provider: restic
    repository: local
    source: {paths: [%[1]s]}
    stop: [app, idle]
    hooks:
      # The before hook sees the state the copy is taken in.
      before: ["test -e %[2]s && echo app running >> %[3]s || echo app stopped >> %[3]s"]
  broken:
    provider: restic
    repository: local
    source: {paths: [%[1]s, /nonexistent/homelab-test]}
    stop: [app]
`, appData, filepath.Join(dir, "app", "app.pid"), filepath.Join(dir, "hook.log")))
	envStart(t, e, "app")
	pid1 := envState(t, e, "app").Detail

	ctx := context.Background()
	rep := e.M.Backup(ctx, "data")
	if rep.Err != nil || rep.Run.Result != catalog.ResultOK {
		t.Fatalf("backup: %v (%+v)", rep.Err, rep.Run)
	}
	// The copy was taken after the app's clean stop...
	if got := envDump(t, e, filepath.Join(appData, "events.log")); got != "start 1.0.0\nstop 1.0.0 (terminated)\n" {
		t.Errorf("events.log in the snapshot = %q, want the app stopped at copy time", got)
	}
	if hook, _ := os.ReadFile(filepath.Join(dir, "hook.log")); string(hook) != "app stopped\n" {
		t.Errorf("before hook saw %q", hook)
	}
	// ...and it runs again, as a new process; idle was stopped and is left so.
	if st := envState(t, e, "app"); st.State != runtime.Running || st.Detail == pid1 {
		t.Errorf("app after the backup: %+v (before: %s)", st, pid1)
	}
	if st := envState(t, e, "idle"); st.State != runtime.Stopped {
		t.Errorf("idle after the backup: %+v, want left stopped", st)
	}
	if len(rep.Services) != 2 || !rep.Services[0].Stopped || !rep.Services[0].Restarted || rep.Services[0].Down <= 0 ||
		rep.Services[1].Stopped || rep.Services[1].Was != runtime.Stopped {
		t.Errorf("report.Services = %+v", rep.Services)
	}

	// A failing backup restarts the app too, and earlier snapshots stay.
	rep = e.M.Backup(ctx, "broken")
	if rep.Err == nil || rep.Run.Result != catalog.ResultFailed {
		t.Fatalf("broken backup: %v (%+v)", rep.Err, rep.Run)
	}
	if st := envState(t, e, "app"); st.State != runtime.Running {
		t.Errorf("app after the failed backup: %+v", st)
	}
	if len(rep.Services) != 1 || !rep.Services[0].Restarted {
		t.Errorf("report.Services = %+v", rep.Services)
	}
	events, _ := os.ReadFile(filepath.Join(appData, "events.log"))
	if got := strings.Count(string(events), "start 1.0.0"); got != 3 {
		t.Errorf("events.log:\n%s\nwant 3 starts", events)
	}
}

// TestStopFailureAbortsBackup: when a service cannot be stopped the copy
// is not taken, and the services already stopped run again.
func TestStopFailureAbortsBackup(t *testing.T) {
	dir := t.TempDir()
	services := execService(t, dir, "app") + `  stuck:
    runtime: {exec: {status: "exit 0", start: "true", stop: "echo refusing to stop >&2; exit 1"}}
`
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnvIn(t, dir, services, fmt.Sprintf(`  data:
    provider: restic
    repository: local
    source: {paths: [%s]}
    stop: [app, stuck]
`, src))
	envStart(t, e, "app")
	rep := e.M.Backup(context.Background(), "data")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "stop stuck: service stuck: stop command") || !strings.Contains(rep.Err.Error(), "refusing to stop") {
		t.Fatalf("backup: %v", rep.Err)
	}
	if rep.Run.SnapshotID != "" || len(e.Runs(t, "data")) != 1 {
		t.Errorf("a snapshot was taken: %+v", rep.Run)
	}
	if st := envState(t, e, "app"); st.State != runtime.Running {
		t.Errorf("app after the aborted backup: %+v", st)
	}
}

// TestStopAroundBackupCompose: the same with a real Compose project: the
// container is stopped for the copy and started again, also on failure.
func TestStopAroundBackupCompose(t *testing.T) {
	docker := testenv.Docker(t)
	image := testenv.TestAppImage(t, docker, "1.0.0")
	dir := t.TempDir()
	b := make([]byte, 4)
	rand.Read(b)
	project := "hltest-" + hex.EncodeToString(b)
	compose := filepath.Join(dir, "compose.yaml")
	os.WriteFile(compose, []byte("services:\n  web:\n    image: "+image+"\n    pull_policy: never\n    volumes: [\"./data:/data\"]\n"), 0o644)
	t.Cleanup(func() { exec.Command(docker, "compose", "-p", project, "-f", compose, "down", "-t", "1").Run() })
	data := filepath.Join(dir, "data")
	e := newEnvIn(t, dir, fmt.Sprintf("  web:\n    runtime: {compose: {project: %s, service: web, file: compose.yaml}}\n", project), fmt.Sprintf(`  data:
    provider: restic
    repository: local
    source: {paths: [%[1]s]}
    stop: [web]
  broken:
    provider: restic
    repository: local
    source: {paths: [%[1]s, /nonexistent/homelab-test]}
    stop: [web]
`, data))
	e.M.Runtime = func(s *lab.Service) (runtime.Runtime, error) { return runtime.New(s, runtime.Options{Docker: docker}) }
	envStart(t, e, "web")
	waitFile(t, filepath.Join(data, "events.log"), "start 1.0.0\n")

	ctx := context.Background()
	if rep := e.M.Backup(ctx, "data"); rep.Err != nil {
		t.Fatalf("backup: %v", rep.Err)
	}
	if got := envDump(t, e, filepath.Join(data, "events.log")); got != "start 1.0.0\nstop 1.0.0 (terminated)\n" {
		t.Errorf("events.log in the snapshot = %q, want the container stopped at copy time", got)
	}
	if st := envState(t, e, "web"); st.State != runtime.Running {
		t.Errorf("web after the backup: %+v", st)
	}
	if rep := e.M.Backup(ctx, "broken"); rep.Err == nil {
		t.Fatal("broken backup succeeded")
	}
	if st := envState(t, e, "web"); st.State != runtime.Running {
		t.Errorf("web after the failed backup: %+v", st)
	}
}

// waitFile waits until the file at path has content want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := os.ReadFile(path)
		if string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %q", path, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRestartFailureFailsRun: a service that does not start again after
// the copy fails the run, though the snapshot was saved, and is recorded
// as an error event.
func TestRestartFailureFailsRun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "up"), nil, 0o644)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnvIn(t, dir, `  fragile:
    runtime: {exec: {status: "test -f up || exit 3", stop: "rm -f up", start: "echo port in use >&2; exit 1"}}
`, fmt.Sprintf(`  data:
    provider: restic
    repository: local
    source: {paths: [%s]}
    stop: [fragile]
`, src))
	rep := e.M.Backup(context.Background(), "data")
	if rep.Run.Result != catalog.ResultFailed || rep.Run.SnapshotID == "" {
		t.Fatalf("run = %+v", rep.Run)
	}
	want := "snapshot " + rep.Run.SnapshotID + " saved, but a stopped service is still down: restart fragile: service fragile: start command"
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), want) || !strings.Contains(rep.Err.Error(), "port in use") {
		t.Fatalf("err = %v\nwant it to contain %q", rep.Err, want)
	}
	if len(rep.Services) != 1 || rep.Services[0].Restarted || !strings.Contains(rep.Services[0].Error, "port in use") {
		t.Errorf("services = %+v", rep.Services)
	}
	events, err := e.Store.Events(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range events {
		found = found || (ev.Kind == "service_restart_failed" && ev.Level == "error" && ev.Target == "data")
	}
	if !found {
		t.Errorf("no service_restart_failed event in %+v", events)
	}
}

// runningAppEnv is a lab with the exec service app (the real testapp,
// running) and the target data backing up its data with stop: [app].
func runningAppEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := newEnvIn(t, dir, execService(t, dir, "app"), fmt.Sprintf(`  data:
    provider: restic
    repository: local
    source: {paths: [%s]}
    stop: [app]
`, filepath.Join(dir, "app", "data")))
	envStart(t, e, "app")
	return e
}

// TestStopDuringUpgrade: a backup does not stop a service whose upgrade
// lock is held (an upgrade is in its health gate or rollback): it fails
// before the copy and leaves the service alone; the upgrade's own restore
// point (Manager.Upgrading) may stop it.
func TestStopDuringUpgrade(t *testing.T) {
	e := runningAppEnv(t)
	ctx := context.Background()
	held, err := lock.Acquire(ctx, e.Lab.StateDir, saga.LockName("app"), false)
	if err != nil {
		t.Fatal(err)
	}
	rep := e.M.Backup(ctx, "data")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "stop app: it is being upgraded, so the backup does not stop it") || rep.Run.SnapshotID != "" {
		t.Fatalf("backup during an upgrade: %v (%+v)", rep.Err, rep.Run)
	}
	if st := envState(t, e, "app"); st.State != runtime.Running {
		t.Fatalf("app after the refused backup: %+v", st)
	}
	// The upgrade's own restore point.
	e.M.Upgrading = []string{"app"}
	if rep := e.M.Backup(ctx, "data"); rep.Err != nil || len(rep.Services) != 1 || !rep.Services[0].Stopped || !rep.Services[0].Restarted {
		t.Fatalf("restore point of the upgrade: %v %+v", rep.Err, rep.Services)
	}
	e.M.Upgrading = nil
	held.Release()
	// No upgrade: the backup takes the lock while the app is down, and
	// gives it back.
	e.MustBackup(t, "data")
	l, err := lock.Acquire(ctx, e.Lab.StateDir, saga.LockName("app"), false)
	if err != nil {
		t.Fatalf("upgrade lock after the backup: %v", err)
	}
	l.Release()
}

// logLines is a slog.Handler target that hands each log line to a
// channel (dropping lines nobody waits for).
type logLines chan string

func (c logLines) Write(p []byte) (int, error) {
	select {
	case c <- string(p):
	default:
	}
	return len(p), nil
}

// TestBackupWaitsForAnUpgrade: a waiting backup (the daemon's, `backup
// run --wait`) whose stop list has a service being upgraded waits for
// the upgrade to finish, holding no lock meanwhile (the upgrade takes its
// restore points while holding its own), and then runs; at its deadline
// it fails naming the upgrade. A Manager of an upgrade never waits for
// another upgrade.
func TestBackupWaitsForAnUpgrade(t *testing.T) {
	e := runningAppEnv(t)
	lines := make(logLines, 100)
	e.M.Log = slog.New(slog.NewTextHandler(lines, nil))
	e.M.Wait = true
	ctx := context.Background()
	upgrade, err := lock.Acquire(ctx, e.Lab.StateDir, saga.LockName("app"), false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan backup.RunReport, 1)
	go func() { done <- e.M.Backup(ctx, "data") }()
	timeout := time.After(time.Minute)
	for waiting := false; !waiting; {
		select {
		case line := <-lines:
			waiting = strings.Contains(line, "waiting for an upgrade to finish") && strings.Contains(line, "service=app")
		case rep := <-done:
			t.Fatalf("the backup did not wait for the upgrade: %v", rep.Err)
		case <-timeout:
			t.Fatal("the backup did not log that it waits for the upgrade")
		}
	}
	// While it waits: no lock of the backup is held, the app runs, and
	// nothing is recorded yet.
	if held, holder, err := lock.Held(e.Lab.StateDir, "data"); err != nil || held {
		t.Fatalf("the target's lock is held while waiting for the upgrade (%s, %v)", holder, err)
	}
	if st := envState(t, e, "app"); st.State != runtime.Running {
		t.Fatalf("app while the backup waits: %+v", st)
	}
	if runs, err := e.Store.Runs(ctx, catalog.RunFilter{Target: "data"}); err != nil || len(runs) != 0 {
		t.Fatalf("runs while waiting: %v %+v", err, runs)
	}
	select {
	case rep := <-done:
		t.Fatalf("the backup did not wait for the upgrade: %v", rep.Err)
	default:
	}
	upgrade.Release()
	rep := <-done
	if rep.Err != nil || rep.Run.SnapshotID == "" || len(rep.Services) != 1 || !rep.Services[0].Stopped || !rep.Services[0].Restarted {
		t.Fatalf("backup after the upgrade: %v %+v", rep.Err, rep.Services)
	}

	// At the deadline it fails, naming the upgrade, and stops nothing.
	upgrade, err = lock.Acquire(ctx, e.Lab.StateDir, saga.LockName("app"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer upgrade.Release()
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rep = e.M.Backup(dctx, "data")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "stop app: it is being upgraded (pid ") ||
		!strings.Contains(rep.Err.Error(), "the backup waited for the upgrade to finish: context deadline exceeded") || len(rep.Services) != 0 {
		t.Fatalf("backup at its deadline: %v %+v", rep.Err, rep.Services)
	}
	// The restore point of an upgrade of another service fails at once
	// instead of waiting: two upgrades must not wait for each other.
	e.M.Upgrading = []string{"db"}
	start := time.Now()
	rep = e.M.Backup(ctx, "data")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "stop app: it is being upgraded, so the backup does not stop it") {
		t.Fatalf("an upgrade's backup stopping a service being upgraded: %v", rep.Err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("it took %s", d)
	}
	if st := envState(t, e, "app"); st.State != runtime.Running {
		t.Fatalf("app after the refused backups: %+v", st)
	}
}
