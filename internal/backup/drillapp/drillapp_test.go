package drillapp

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup/drillapp/drillapptest"
	"homelab/internal/lab"
)

var inst = Instance{Host: "127.0.0.1", Port: 5999, Database: "shop", User: "postgres", Password: "s3cret-drill-pw"}

// app is a drill.app whose commands run in a new directory, probed by a
// command (with the drill's environment, as the start command has it).
func app(t *testing.T, start, stop, probe string, within time.Duration) *lab.DrillApp {
	t.Helper()
	dir := t.TempDir()
	return &lab.DrillApp{Start: start, Stop: stop, Dir: dir, Within: within,
		Health: &lab.Health{Command: &lab.CommandProbe{Run: probe, Dir: dir, Timeout: 5 * time.Second}}}
}

func gone(t *testing.T, a *lab.DrillApp, name string) {
	t.Helper()
	drillapptest.Gone(t, filepath.Join(a.Dir, name))
}

// TestForeground: a start command that stays in the foreground, healthy
// once it has written its file, with the instance in its environment and
// in the probe's; it passes and is stopped.
func TestForeground(t *testing.T) {
	a := app(t, `echo $$ > pid; env | grep ^HOMELAB_DRILL_ | sort > env; exec sleep 600`, "",
		`test -f env && test "$HOMELAB_DRILL_PGPORT" = 5999`, time.Minute)
	res := Check(context.Background(), a, inst)
	if !res.OK || res.Check != CheckName || !strings.Contains(res.Detail, "command probe passed") {
		t.Fatalf("check: %+v", res)
	}
	gone(t, a, "pid")
	env, _ := os.ReadFile(filepath.Join(a.Dir, "env"))
	want := "HOMELAB_DRILL_PGDATABASE=shop\nHOMELAB_DRILL_PGHOST=127.0.0.1\nHOMELAB_DRILL_PGPASSWORD=s3cret-drill-pw\nHOMELAB_DRILL_PGPORT=5999\nHOMELAB_DRILL_PGUSER=postgres\n"
	if string(env) != want {
		t.Errorf("the start command's environment:\n%s\nwant:\n%s", env, want)
	}
}

// TestStartFails: a start command that fails ends the check at once; the
// detail says so and ends with the output's last lines, the password
// redacted.
func TestStartFails(t *testing.T) {
	a := app(t, `for i in 1 2 3 4 5 6 7; do echo line $i; done; echo "cannot connect with $HOMELAB_DRILL_PGPASSWORD" >&2; exit 3`, "", "false", time.Hour)
	res := Check(context.Background(), a, inst)
	if res.OK {
		t.Fatalf("check passed: %+v", res)
	}
	for _, want := range []string{"the start command failed (exit status 3)", "app output: line 4 | line 5 | line 6 | line 7 | cannot connect with ***"} {
		if !strings.Contains(res.Detail, want) {
			t.Errorf("detail %q lacks %q", res.Detail, want)
		}
	}
	if strings.Contains(res.Detail, inst.Password) || strings.Contains(res.Detail, "line 2") {
		t.Errorf("detail: %q", res.Detail)
	}
}

// TestNeverHealthy: an application whose probe never passes fails the
// check after within, and is stopped.
func TestNeverHealthy(t *testing.T) {
	a := app(t, `echo $$ > pid; echo starting; while :; do echo waiting for the database; sleep 0.1; done`, "", `echo "HTTP 503" >&2; false`, time.Second)
	res := Check(context.Background(), a, inst)
	if res.OK || !strings.Contains(res.Detail, "the command probe did not pass within 1s: HTTP 503 (exit status 1)") || !regexp.MustCompile(`app output: starting \| waiting for the database \(×[0-9]+\)$`).MatchString(res.Detail) {
		t.Fatalf("check: %+v", res)
	}
	gone(t, a, "pid")
}

// TestBackgroundWithStop: a start command that leaves the application in
// the background, out of its process group (setsid: only the stop
// command reaches it), and returns; the stop command, with the drill's
// environment, ends it, and what the start command left in its process
// group goes too.
func TestBackgroundWithStop(t *testing.T) {
	a := app(t, `setsid sleep 600 & echo $! > pid; sleep 600 & echo $! > pid2; touch ready`,
		`test "$HOMELAB_DRILL_PGPORT" = 5999 && kill $(cat pid)`, "test -f ready", time.Minute)
	res := Check(context.Background(), a, inst)
	if !res.OK {
		t.Fatalf("check: %+v", res)
	}
	gone(t, a, "pid")
	gone(t, a, "pid2")
}

// TestStopFails: a stop command that fails fails a check whose probe
// passed; the detail ends with the stop command's output, the password
// redacted, and the start command's process group is ended all the same.
func TestStopFails(t *testing.T) {
	a := app(t, `echo $$ > pid; touch ready; exec sleep 600`,
		`echo "no shutdown for $HOMELAB_DRILL_PGPASSWORD"; exit 4`, "test -f ready", time.Minute)
	res := Check(context.Background(), a, inst)
	if res.OK || !strings.Contains(res.Detail, "the application did not stop: stop command: ") || !strings.HasSuffix(res.Detail, "app output: no shutdown for ***") {
		t.Fatalf("check: %+v", res)
	}
	gone(t, a, "pid")
}

// TestInterrupted: a cancelled drill stops the application too.
func TestInterrupted(t *testing.T) {
	a := app(t, `echo $$ > pid; exec sleep 600`, "", "test -f never", time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(a.Dir, "pid")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	res := Check(ctx, a, inst)
	if res.OK || !strings.HasPrefix(res.Detail, "interrupted before the command probe passed") {
		t.Fatalf("check: %+v", res)
	}
	gone(t, a, "pid")
}

// TestLongOutputLine: an application that writes a line longer than the
// output reader's buffer (a progress bar redrawn with \r, a dump without
// newlines) is not blocked on a full pipe: its output keeps being read,
// so it gets on to being healthy.
func TestLongOutputLine(t *testing.T) {
	a := app(t, `echo $$ > pid; head -c 3000000 /dev/zero | tr '\0' x; echo; echo "pw $HOMELAB_DRILL_PGPASSWORD"; touch ready; exec sleep 600`, "",
		"test -f ready", 30*time.Second)
	res := Check(context.Background(), a, inst)
	if !res.OK {
		t.Fatalf("check: %+v", res)
	}
	gone(t, a, "pid")
}
