package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// testappService is an exec service running the real testapp binary in
// the background, with its pid file and data directory in dir.
func testappService(t *testing.T, dir string) *lab.Service {
	t.Helper()
	bin := testenv.TestApp(t, "1.0.0")
	addr := testenv.FreeAddr(t)
	pid := filepath.Join(dir, "app.pid")
	svc := &lab.Service{Name: "app", Runtime: &lab.Runtime{Exec: &lab.ExecRuntime{
		// setsid: the daemon leaves the command's process group; its
		// output goes to a file, as a start command's must.
		Start:   fmt.Sprintf("setsid %s serve -addr %s -data data -pidfile %s >app.log 2>&1 < /dev/null &", bin, addr, pid),
		Stop:    fmt.Sprintf("kill $(cat %s)", pid),
		Status:  fmt.Sprintf("test -s %[1]s && kill -0 $(cat %[1]s) 2>/dev/null || exit 3", pid),
		PIDFile: pid, Dir: dir, Timeout: 10 * time.Second,
	}}}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pid); err == nil {
			shell(t, "kill "+strings.TrimSpace(string(b)))
		}
	})
	return svc
}

func shell(t *testing.T, cmd string) {
	r := &execRuntime{name: "cleanup", cfg: &lab.ExecRuntime{Dir: t.TempDir(), Timeout: 5 * time.Second}}
	r.run(context.Background(), "cleanup", cmd)
}

func TestExecRuntime(t *testing.T) {
	dir := t.TempDir()
	svc := testappService(t, dir)
	rt, err := New(svc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	want := func(state State) Status {
		t.Helper()
		st, err := rt.Status(ctx)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if st.State != state {
			t.Fatalf("state %s (%s), want %s", st.State, st.Detail, state)
		}
		return st
	}
	want(Stopped)
	if err := rt.Stop(ctx); err != nil { // stopping a stopped service is fine
		t.Fatalf("Stop of a stopped service: %v", err)
	}
	before := time.Now()
	// The start command leaves a daemon holding nothing of ours: Start
	// returns at once, not after a pipe's wait delay.
	if err := rt.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if d := time.Since(before); d > 4*time.Second {
		t.Errorf("Start took %s: the backgrounded daemon held it", d)
	}
	st := want(Running)
	if st.Since.Before(before.Add(-time.Second)) || st.Since.After(time.Now()) {
		t.Errorf("Since %s, want the process's start (after %s)", st.Since, before)
	}
	if up := st.Uptime(time.Now()); up <= 0 || up > time.Minute {
		t.Errorf("Uptime %s", up)
	}
	if err := rt.Start(ctx); err != nil { // starting a running one is fine
		t.Fatalf("Start of a running service: %v", err)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	want(Stopped)
	events, _ := os.ReadFile(filepath.Join(dir, "data", "events.log"))
	if got := string(events); got != "start 1.0.0\nstop 1.0.0 (terminated)\n" {
		t.Errorf("events.log = %q: want one start and one clean stop", got)
	}
}

func TestExecRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	mk := func(e lab.ExecRuntime) Runtime {
		e.Dir = dir
		if e.Timeout == 0 {
			e.Timeout = 5 * time.Second
		}
		rt, err := New(&lab.Service{Name: "svc", Runtime: &lab.Runtime{Exec: &e}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	ctx := t.Context()
	t.Run("status exit 4 is unknown", func(t *testing.T) {
		_, err := mk(lab.ExecRuntime{Status: "echo confused; exit 4"}).Status(ctx)
		if err == nil || !strings.Contains(err.Error(), "exit status 4") || !strings.Contains(err.Error(), "confused") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("status exit 3 is stopped", func(t *testing.T) {
		st, err := mk(lab.ExecRuntime{Status: "echo not running; exit 3"}).Status(ctx)
		if err != nil || st.State != Stopped || st.Detail != "not running" {
			t.Fatalf("status = %+v, %v", st, err)
		}
	})
	t.Run("failing start names the command and its output", func(t *testing.T) {
		err := mk(lab.ExecRuntime{Status: "exit 3", Start: "echo no such binary >&2; exit 1"}).Start(ctx)
		if err == nil || !strings.Contains(err.Error(), `start command "echo no such binary >&2; exit 1": exit status 1: no such binary`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("start that does not start", func(t *testing.T) {
		err := mk(lab.ExecRuntime{Status: "exit 3", Start: "true", Timeout: time.Second}).Start(ctx)
		if err == nil || !strings.Contains(err.Error(), "still stopped 1s after its start command") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("hanging stop times out", func(t *testing.T) {
		start := time.Now()
		err := mk(lab.ExecRuntime{Status: "exit 0", Stop: "sleep 30", Timeout: 500 * time.Millisecond}).Stop(ctx)
		if err == nil || !strings.Contains(err.Error(), "timed out after 500ms") {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("bad pid file", func(t *testing.T) {
		pf := filepath.Join(dir, "bad.pid")
		os.WriteFile(pf, []byte("twelve\n"), 0o644)
		_, err := mk(lab.ExecRuntime{PIDFile: pf}).Status(ctx)
		if err == nil || !strings.Contains(err.Error(), `expected a process id, got "twelve"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("stale pid file is stopped", func(t *testing.T) {
		pf := filepath.Join(dir, "stale.pid")
		os.WriteFile(pf, []byte("999999999\n"), 0o644)
		st, err := mk(lab.ExecRuntime{PIDFile: pf}).Status(ctx)
		if err != nil || st.State != Stopped {
			t.Fatalf("status = %+v, %v", st, err)
		}
	})
	t.Run("no runtime", func(t *testing.T) {
		if _, err := New(&lab.Service{Name: "bare"}, Options{}); err == nil || !strings.Contains(err.Error(), "service bare: no runtime") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestExecRuntimeEnv: every command of an exec runtime (status, start,
// stop, version, set_version) gets env and env_from in its environment,
// beside HOMELAB_SERVICE and HOMELAB_ACTION; the env_from value, read
// from homelab's environment, is in no argv and is redacted from the
// output an error or a status detail carries; an unset env_from variable
// fails the command before it runs, naming the service, the field and
// the variable.
func TestExecRuntimeEnv(t *testing.T) {
	const secret = "s3cret-f0r-exec"
	const mode = `it's "prod" $HOME`
	t.Setenv("HOMELAB_TEST_EXEC_TOKEN", secret)
	// Each command records what it saw, and its shell's argv, in seen.<action>.
	record := `printf '%s|%s|%s|%s\n' "$APP_MODE" "$APP_TOKEN" "$HOMELAB_SERVICE" "$HOMELAB_ACTION" > seen.$HOMELAB_ACTION; tr '\0' ' ' < /proc/$$/cmdline > argv.$HOMELAB_ACTION; `
	cfg := func(dir string) *lab.ExecRuntime {
		return &lab.ExecRuntime{
			Status:          record + "test -f running || exit 3",
			Start:           record + "touch running",
			Stop:            record + "rm running",
			Dir:             dir,
			Timeout:         5 * time.Second,
			Env:             map[string]string{"APP_MODE": mode},
			EnvFrom:         map[string]string{"APP_TOKEN": "HOMELAB_TEST_EXEC_TOKEN"},
			VersionCommands: lab.VersionCommands{Version: record + "cat installed", SetVersion: record + "echo 'app {{.Version}}' > installed"},
		}
	}
	dir := t.TempDir()
	rt, err := New(&lab.Service{Name: "app", Runtime: &lab.Runtime{Exec: cfg(dir)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := rt.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	v, err := AsVersioner(rt)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetVersion(ctx, "1.2.3"); err != nil {
		t.Fatalf("SetVersion: %v", err)
	}
	if got, err := v.Version(ctx); err != nil || got != "app 1.2.3" {
		t.Fatalf("Version = %q, %v", got, err)
	}
	for _, action := range []string{"status", "start", "stop", "version", "set_version"} {
		b, err := os.ReadFile(filepath.Join(dir, "seen."+action))
		if err != nil {
			t.Errorf("%s did not run: %v", action, err)
			continue
		}
		if got, want := string(b), mode+"|"+secret+"|app|"+action+"\n"; got != want {
			t.Errorf("%s saw %q, want %q", action, got, want)
		}
		argv, err := os.ReadFile(filepath.Join(dir, "argv."+action))
		if err != nil || !strings.Contains(string(argv), "/bin/sh -c ") {
			t.Errorf("%s argv %q, %v", action, argv, err)
		}
		if strings.Contains(string(argv), secret) {
			t.Errorf("%s has the secret in its argv: %q", action, argv)
		}
	}

	t.Run("failing command redacts the secret", func(t *testing.T) {
		c := cfg(t.TempDir())
		c.Start = `echo "login with $APP_TOKEN failed in mode $APP_MODE" >&2; exit 1`
		err := newExec("app", c).Start(ctx)
		if err == nil {
			t.Fatal("Start of a failing command: no error")
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error holds the secret: %v", err)
		}
		if want := "login with *** failed in mode " + mode; !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want the command's output, redacted: %q", err, want)
		}
		c.Status = `echo "token $APP_TOKEN"; exit 3`
		st, err := newExec("app", c).Status(ctx)
		if err != nil || st.Detail != "token ***" {
			t.Errorf("Status = %+v, %v; want the detail redacted", st, err)
		}
	})
	t.Run("unset env_from", func(t *testing.T) {
		dir := t.TempDir()
		c := cfg(dir)
		c.EnvFrom = map[string]string{"APP_TOKEN": "HOMELAB_TEST_EXEC_UNSET"}
		for name, run := range map[string]func() error{
			"status":      func() error { _, err := newExec("app", c).Status(ctx); return err },
			"start":       func() error { return newExec("app", c).Start(ctx) },
			"version":     func() error { _, err := newExec("app", c).Version(ctx); return err },
			"set_version": func() error { return newExec("app", c).SetVersion(ctx, "1.2.4") },
		} {
			err := run()
			if err == nil || !errors.Is(err, lab.ErrSecretUnset) ||
				!strings.HasPrefix(err.Error(), "service app: ") || !strings.HasSuffix(err.Error(), ": env_from.APP_TOKEN HOMELAB_TEST_EXEC_UNSET is not set") {
				t.Errorf("%s: err = %v, want service app: ...: env_from.APP_TOKEN HOMELAB_TEST_EXEC_UNSET is not set", name, err)
			}
		}
		if seen, _ := filepath.Glob(filepath.Join(dir, "seen.*")); len(seen) > 0 {
			t.Errorf("commands ran without their env_from: %v", seen)
		}
	})
}

// TestVersionCommands: the exec and systemd runtimes read and set the
// version with the lab's commands (systemd's run beside systemctl, which
// is not needed for them).
func TestVersionCommands(t *testing.T) {
	cmds := lab.VersionCommands{Version: "cat installed", SetVersion: "echo \"$HOMELAB_SERVICE {{.Version}}\" > installed"}
	for kind, r := range map[string]*lab.Runtime{
		"exec":    {Exec: &lab.ExecRuntime{Status: "exit 0", Start: "true", Stop: "true", Timeout: 5 * time.Second, VersionCommands: cmds}},
		"systemd": {Systemd: &lab.SystemdRuntime{Unit: "app.service", Timeout: 5 * time.Second, VersionCommands: cmds}},
	} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			if r.Exec != nil {
				r.Exec.Dir = dir
			} else {
				r.Systemd.Dir = dir
			}
			os.WriteFile(filepath.Join(dir, "installed"), []byte("app 1.0.0\n"), 0o644)
			rt, _ := New(&lab.Service{Name: "app", Runtime: r}, Options{Systemctl: "no-systemctl-needed"})
			v, err := AsVersioner(rt)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if got, err := v.Version(ctx); err != nil || got != "app 1.0.0" {
				t.Fatalf("Version = %q, %v", got, err)
			}
			if err := v.SetVersion(ctx, "1.1.0"); err != nil {
				t.Fatal(err)
			}
			if got, err := v.Version(ctx); err != nil || got != "app 1.1.0" {
				t.Fatalf("Version = %q, %v", got, err)
			}
		})
	}
	dir := t.TempDir()
	for _, r := range []*lab.Runtime{
		{Exec: &lab.ExecRuntime{Status: "exit 0", Start: "true", Stop: "true", Dir: dir, Timeout: time.Second}},
		{Systemd: &lab.SystemdRuntime{Unit: "app.service", Dir: dir, Timeout: time.Second}},
	} {
		rt, _ := New(&lab.Service{Name: "app", Runtime: r}, Options{})
		if _, err := AsVersioner(rt); err != ErrNoVersion {
			t.Errorf("AsVersioner of %s without set_version: %v", rt.Kind(), err)
		}
	}
}

func TestStatusAll(t *testing.T) {
	dir := t.TempDir()
	mk := func(status string) *lab.Service {
		return &lab.Service{Runtime: &lab.Runtime{Exec: &lab.ExecRuntime{Status: status, Start: "true", Stop: "true", Dir: dir, Timeout: time.Minute}}}
	}
	services := map[string]*lab.Service{"up": mk("exit 0"), "down": mk("exit 3"), "bare": {}}
	for i := range 10 {
		services[fmt.Sprintf("hang%d", i)] = mk("sleep 30")
	}
	start := time.Now()
	res := StatusAll(t.Context(), services, Options{}, 500*time.Millisecond)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("StatusAll took %s for 10 hanging services with a 500ms timeout", d)
	}
	got := map[string]Result{}
	for _, r := range res {
		got[r.Service] = r
	}
	if len(got) != 12 || got["up"].Status.State != Running || got["down"].Status.State != Stopped {
		t.Fatalf("results: %+v", got)
	}
	if _, ok := got["bare"]; ok {
		t.Error("a service without a runtime was read")
	}
	if err := got["hang3"].Err; err == nil || !strings.Contains(err.Error(), "500ms") {
		t.Errorf("hanging status: %v", err)
	}
}
