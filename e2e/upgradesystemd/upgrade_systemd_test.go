package upgradesystemd

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"homelab/e2e/e2etest"
	"homelab/internal/testenv"
)

// upgradeSystemdVersions are the testapp versions installed side by side
// in the container, /opt/app/<version>/testapp, each built with its
// version (-X main.version): 1.0.0, 1.0.5 and 1.1.0 migrate the data
// forward and are healthy, 2.0.0 migrates it and never becomes healthy,
// and 3.0.0, which has no data schema, exits 1 at start without touching
// the data.
var upgradeSystemdVersions = []string{"1.0.0", "1.0.5", "1.1.0", "2.0.0", "3.0.0"}

// upgradeSystemdUnit runs whichever version /opt/app/current points at:
// the symlink is resolved when systemd starts the unit. It restarts on
// failure, as packaged units do, so a version that exits at start
// crash-loops until it hits its start limit (5 starts within 60s), and
// systemd then refuses further starts within that minute.
const upgradeSystemdUnit = `[Unit]
Description=homelab upgrade test app (the testapp at /opt/app/current)
StartLimitIntervalSec=60
StartLimitBurst=5
[Service]
Type=simple
ExecStart=/opt/app/current/testapp serve -addr 127.0.0.1:8080 -data /srv/app/data
Restart=on-failure
RestartSec=100ms
TimeoutStopSec=10
`

// upgradeSystemdSetVersion is the set_version command's script, run by
// relative path so that it only works in the lab file's directory: the
// packaged-upgrade flow, "install" VERSION by pointing /opt/app/current
// at it (atomically), and log VERSION with the unit's state at that
// moment to set-version.log, next to the lab file.
const upgradeSystemdSetVersion = `set -eu
test -x "/opt/app/$1/testapp" || { echo "version $1 is not installed" >&2; exit 1; }
state=$(systemctl is-active app.service || true)
ln -sfn "$1" /opt/app/current.new
mv -T /opt/app/current.new /opt/app/current
echo "$1 $state" >> set-version.log
`

const upgradeSystemdLab = `name: sdupgrade
repositories:
  local: {url: /srv/backups/app, password_file: ./restic.pass}
services:
  app:
    runtime:
      systemd:
        unit: app.service
        timeout: 30s
        version: "/opt/app/current/testapp version"
        set_version: "sh ./set-version.sh {{.Version}}"
    health: {http: {url: "http://127.0.0.1:8080/healthz", timeout: 2s}}
    upgrade:
      required_stops: [1.0.5]
      backup_before: [app-data]
      healthy_within: 10s
backups:
  app-data:
    provider: restic
    repository: local
    source: {paths: [/srv/app/data]}
    stop: [app]
`

// TestUpgradeSystemd runs `homelab upgrade` end to end for the systemd
// runtime, inside a container with a real systemd as PID 1
// (testenv.Systemd): the static homelab, restic and testapp binaries are
// copied in, app.service runs the testapp version that the symlink
// /opt/app/current points at, and the lab file's version and set_version
// commands read and flip that symlink. homelab runs in the container with
// /tmp as its working directory, so the commands work only if they run in
// the lab file's directory (/srv/lab).
//
// 1.0.0 -> 1.1.0 passes the required stop 1.0.5, with a restore point
// before each stop taken while the unit is stopped. Then 1.1.0 -> 2.0.0
// fails its health gate (2.0.0 runs, unhealthy) and is rolled back: the
// data restored in place byte for byte, the symlink back on 1.1.0 and the
// unit running 1.1.0, healthy. Then 1.1.0 -> 3.0.0, which exits at start,
// crash-loops into the unit's start limit and is rolled back the same
// way: the rollback's start of 1.1.0 must not be refused by that limit.
func TestUpgradeSystemd(t *testing.T) {
	resticBin := testenv.Restic(t)
	h := testenv.Systemd(t)
	start := time.Now()

	homelab := filepath.Join(t.TempDir(), "homelab")
	testenv.StaticBinary(t, "homelab/cmd/homelab", homelab, "")
	h.CopyIn(t, homelab, "/usr/local/bin/homelab")
	h.CopyIn(t, resticBin, "/usr/local/bin/restic")
	if out, err := h.Command(context.Background(), nil, "restic", "version").CombinedOutput(); err != nil {
		t.Fatalf("%s does not run in the systemd container (a static build is needed there): %v\n%s", resticBin, err, out)
	}
	for _, v := range upgradeSystemdVersions {
		h.Exec(t, "mkdir", "-p", "/opt/app/"+v)
		h.CopyIn(t, testenv.TestApp(t, v), "/opt/app/"+v+"/testapp")
	}
	t.Logf("binaries built and copied in %s", time.Since(start).Round(time.Millisecond))

	h.Exec(t, "ln", "-s", "1.0.0", "/opt/app/current")
	h.Exec(t, "mkdir", "-p", "/srv/app/data", "/srv/backups")
	h.WriteFile(t, "/srv/lab/lab.yaml", []byte(upgradeSystemdLab), 0o644)
	h.WriteFile(t, "/srv/lab/set-version.sh", []byte(upgradeSystemdSetVersion), 0o644)
	h.WriteFile(t, "/srv/lab/restic.pass", []byte("correct horse battery staple\n"), 0o600)
	h.InstallUnit(t, "app.service", upgradeSystemdUnit)
	h.Exec(t, "systemctl", "start", "app.service")
	waitAppHealthy(t, h)

	homelabRun := func(t *testing.T, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := h.Command(ctx, nil, append([]string{"sh", "-c", `cd /tmp && exec homelab --lab /srv/lab/lab.yaml "$@"`, "sh"}, args...)...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatalf("homelab %s: %v", strings.Join(args, " "), err)
		}
		t.Logf("homelab %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
		return out.String(), errOut.String(), code
	}
	mustRun := func(t *testing.T, args ...string) (stdout, stderr string) {
		t.Helper()
		stdout, stderr, code := homelabRun(t, args...)
		if code != 0 {
			t.Fatalf("homelab %s: exit %d, want 0", strings.Join(args, " "), code)
		}
		return stdout, stderr
	}
	cat := func(t *testing.T, name string) string {
		t.Helper()
		return h.Exec(t, "cat", name)
	}

	mustRun(t, "repo", "init", "--all")

	// The plan reads the installed version through the version command.
	plan, _ := mustRun(t, "upgrade", "app", "--to", "1.1.0", "--dry-run")
	e2etest.MatchLines(t, "plan", plan,
		`^Upgrade app from 1\.0\.0 to 1\.1\.0 \(systemd runtime\)$`,
		`^  1\. 1\.0\.5 \(required stop\)$`,
		`^     restore point: app-data$`,
		`^  2\. 1\.1\.0 \(target\)$`)
	if err := h.Command(context.Background(), nil, "test", "-e", "/srv/lab/set-version.log").Run(); err == nil {
		t.Fatalf("the dry run ran set_version: /srv/lab/set-version.log exists")
	}

	t.Run("upgrade through the required stop", func(t *testing.T) {
		stdout, stderr := mustRun(t, "upgrade", "app", "--to", "1.1.0", "--yes")
		e2etest.MatchLines(t, "stdout", stdout, `^app upgraded from 1\.0\.0 to 1\.1\.0 in .* \(saga [^)]+\)$`)
		// Every step, in order.
		e2etest.MatchLines(t, "stderr", stderr,
			`^ok +restore point before 1\.0\.5 `,
			`^ok +set version 1\.0\.5 `,
			`^ok +wait healthy at 1\.0\.5 `,
			`^ok +restore point before 1\.1\.0 `,
			`^ok +set version 1\.1\.0 `,
			`^ok +wait healthy at 1\.1\.0 `)
		// set_version ran in the lab file's directory, once per stop, with
		// the unit stopped.
		if got, want := cat(t, "/srv/lab/set-version.log"), "1.0.5 inactive\n1.1.0 inactive\n"; got != want {
			t.Errorf("set-version.log:\n%s\nwant:\n%s", got, want)
		}
		checkAppOn(t, h, "1.1.0")
		// Each version migrated the data forward on its start.
		if got, want := cat(t, "/srv/app/data/data.txt"),
			"migrated to schema 1 by 1.0.0\nmigrated to schema 2 by 1.0.5\nmigrated to schema 3 by 1.1.0\n"; got != want {
			t.Errorf("data.txt:\n%s\nwant:\n%s", got, want)
		}
		// Each restore point was taken after a clean stop of the version
		// before it (the stop line is in the data the restore point holds,
		// which the next start found).
		if got, want := cat(t, "/srv/app/data/events.log"),
			"start 1.0.0\nstop 1.0.0 (terminated)\nstart 1.0.5\nstop 1.0.5 (terminated)\nstart 1.1.0\n"; got != want {
			t.Errorf("events.log:\n%s\nwant:\n%s", got, want)
		}

		history, _ := mustRun(t, "upgrade", "history", "app")
		e2etest.MatchLines(t, "history", history,
			` app  1\.0\.0 → 1\.1\.0  DONE$`,
			`^  done +restore point before 1\.0\.5 \(.*\) snapshot:app-data=[0-9a-f]{64} stopped=true$`,
			`^  done +set version 1\.0\.5 \(.*\) previous=1\.0\.0$`,
			`^  done +wait healthy at 1\.0\.5`,
			`^  done +restore point before 1\.1\.0 \(.*\) snapshot:app-data=[0-9a-f]{64} stopped=true$`,
			`^  done +set version 1\.1\.0 \(.*\) previous=1\.0\.5$`,
			`^  done +wait healthy at 1\.1\.0`)
		list, _ := mustRun(t, "backup", "list", "app-data")
		if n := len(regexp.MustCompile(`(?m)^app-data +[0-9a-f]{8} `).FindAllString(list, -1)); n != 2 {
			t.Errorf("backup list app-data: %d snapshots, want 2 (one restore point per stop)", n)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// failedUpgrade reads the data's checksums, events.log and
	// set-version.log, then runs an upgrade of app (on 1.1.0) to that
	// must fail and be rolled back, and returns what it read, and the
	// upgrade's stderr.
	failedUpgrade := func(t *testing.T, to string) (sums, events, setLog, stderr string) {
		t.Helper()
		sums = h.Exec(t, "sha256sum", "/srv/app/data/data.txt", "/srv/app/data/schema")
		events, setLog = cat(t, "/srv/app/data/events.log"), cat(t, "/srv/lab/set-version.log")
		stdout, stderr, code := homelabRun(t, "upgrade", "app", "--to", to, "--yes")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		e2etest.MatchLines(t, "stdout", stdout,
			`^upgrade of app to `+regexp.QuoteMeta(to)+` failed and was rolled back: app runs 1\.1\.0 again, with its data, healthy \(saga [^)]+\)$`)
		return sums, events, setLog, stderr
	}

	t.Run("failed health gate rolls back", func(t *testing.T) {
		dataFiles := "cd /srv/app/data && find . | sort"
		wantFiles := h.Exec(t, "sh", "-c", dataFiles)
		wantSums, events, setLog, stderr := failedUpgrade(t, "2.0.0")
		e2etest.MatchLines(t, "stderr", stderr,
			`^ok +restore point before 2\.0\.0 `,
			`^ok +set version 2\.0\.0 `,
			`^FAILED wait healthy at 2\.0\.0: app not healthy within 10s: .*HTTP 503`,
			`restoring app-data from snapshot [0-9a-f]{8} in place`,
			`^ok +undo set version 2\.0\.0 `,
			`^homelab: upgrade app \(saga .*\): step "wait healthy at 2\.0\.0" failed: .*; compensated: every change was undone$`)
		// 2.0.0 did run under systemd (and migrated the data, which the
		// restore undid).
		if j := h.Exec(t, "journalctl", "--unit", "app.service", "--no-pager", "--output", "cat"); !strings.Contains(j, "testapp 2.0.0 serving on 127.0.0.1:8080") {
			t.Errorf("the journal of app.service does not show 2.0.0 serving:\n%s", j)
		}
		// set_version: 2.0.0, then 1.1.0 again by the rollback, each with
		// the unit stopped.
		if got, want := cat(t, "/srv/lab/set-version.log"), setLog+"2.0.0 inactive\n1.1.0 inactive\n"; got != want {
			t.Errorf("set-version.log:\n%s\nwant:\n%s", got, want)
		}
		checkAppOn(t, h, "1.1.0")
		if got := h.Exec(t, "sha256sum", "/srv/app/data/data.txt", "/srv/app/data/schema"); got != wantSums {
			t.Errorf("data after the rollback:\n%s\nwant (before the upgrade):\n%s\ndata.txt:\n%s", got, wantSums, cat(t, "/srv/app/data/data.txt"))
		}
		if got := h.Exec(t, "sh", "-c", dataFiles); got != wantFiles {
			t.Errorf("files in the data after the rollback:\n%s\nwant:\n%s", got, wantFiles)
		}
		// The data is the restore point's, taken after a clean stop of
		// 1.1.0, which 1.1.0 then started on.
		if got, want := cat(t, "/srv/app/data/events.log"), events+"stop 1.1.0 (terminated)\nstart 1.1.0\n"; got != want {
			t.Errorf("events.log:\n%s\nwant:\n%s", got, want)
		}
		// Nothing of the in-place restore is left beside the data.
		if got := h.Exec(t, "ls", "-A", "/srv/app"); got != "data\n" {
			t.Errorf("/srv/app after the rollback holds:\n%s\nwant only data", got)
		}

		history, _ := mustRun(t, "upgrade", "history", "app", "--limit", "1")
		e2etest.MatchLines(t, "history", history,
			` app  1\.1\.0 → 2\.0\.0  COMPENSATED$`,
			`^  reason: .*app not healthy within 10s`,
			`^  done +undo set version 2\.0\.0`)
	})
	if t.Failed() {
		t.FailNow()
	}

	// A version that cannot start crash-loops under Restart=on-failure
	// until systemd's start limit stops it; the rollback's start of the
	// previous version comes within the limit's interval, and must still
	// start it.
	t.Run("crash loop rolls back", func(t *testing.T) {
		wantSums, events, setLog, stderr := failedUpgrade(t, "3.0.0")
		e2etest.MatchLines(t, "stderr", stderr,
			`^ok +set version 3\.0\.0 `,
			// The gate fails as soon as systemd gives up on the unit,
			// not after healthy_within, with its last log lines.
			`^FAILED wait healthy at 3\.0\.0: app stopped before it became healthy: stopped: failed \(Result: exit-code\), exit status 1; its last [0-9]+ log lines: .*version 3\.0\.0 has no data schema`,
			`restoring app-data from snapshot [0-9a-f]{8} in place`,
			`^ok +undo set version 3\.0\.0 `)
		// 3.0.0 was started, and restarted, until its start limit.
		if j := h.Exec(t, "journalctl", "--unit", "app.service", "--no-pager", "--output", "cat"); !strings.Contains(j, "version 3.0.0 has no data schema") ||
			!strings.Contains(j, "Start request repeated too quickly") {
			t.Errorf("the journal of app.service does not show 3.0.0 crash-looping into its start limit:\n%s", j)
		}
		// set_version: 3.0.0 with the unit stopped, then 1.1.0 by the
		// rollback with the unit not running (failed, after the crash
		// loop).
		if got, want := cat(t, "/srv/lab/set-version.log"), setLog+"3.0.0 inactive\n1.1.0 failed\n"; got != want {
			t.Errorf("set-version.log:\n%s\nwant:\n%s", got, want)
		}
		checkAppOn(t, h, "1.1.0")
		if got := h.Exec(t, "sha256sum", "/srv/app/data/data.txt", "/srv/app/data/schema"); got != wantSums {
			t.Errorf("data after the rollback:\n%s\nwant (before the upgrade):\n%s", got, wantSums)
		}
		if got, want := cat(t, "/srv/app/data/events.log"), events+"stop 1.1.0 (terminated)\nstart 1.1.0\n"; got != want {
			t.Errorf("events.log:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// waitAppHealthy waits until the testapp in h answers its health check
// (at most appHealthyLimit).
func waitAppHealthy(t *testing.T, h *testenv.SystemdHost) {
	t.Helper()
	var err error
	if !e2etest.Poll(appHealthyLimit, func() bool {
		err = h.Command(context.Background(), nil, "/opt/app/current/testapp", "check", "-addr", "127.0.0.1:8080").Run()
		return err == nil
	}) {
		t.Fatalf("app.service not healthy within %s: %v\n%s", appHealthyLimit, err, h.Exec(t, "systemctl", "status", "--no-pager", "app.service"))
	}
}

// appHealthyLimit bounds waitAppHealthy: the testapp answers within a
// second of its start, but a busy machine can take far longer to start it.
const appHealthyLimit = 2 * time.Minute

// checkAppOn checks that app.service is active and healthy on version: the
// symlink points at it, the version command prints it, and the unit's
// main process runs its binary.
func checkAppOn(t *testing.T, h *testenv.SystemdHost, version string) {
	t.Helper()
	if got := strings.TrimSpace(h.Exec(t, "readlink", "/opt/app/current")); got != version {
		t.Errorf("/opt/app/current -> %s, want %s", got, version)
	}
	if got := strings.TrimSpace(h.Exec(t, "/opt/app/current/testapp", "version")); got != version {
		t.Errorf("version command: %q, want %s", got, version)
	}
	if got := strings.TrimSpace(h.Exec(t, "systemctl", "show", "--property=ActiveState,SubState", "app.service")); got != "ActiveState=active\nSubState=running" {
		t.Errorf("app.service: %q, want active (running)", got)
	}
	pid := strings.TrimPrefix(strings.TrimSpace(h.Exec(t, "systemctl", "show", "--property=MainPID", "app.service")), "MainPID=")
	if pid == "0" {
		t.Errorf("app.service has no main process")
		return
	}
	if got := strings.TrimSpace(h.Exec(t, "readlink", "/proc/"+pid+"/exe")); got != "/opt/app/"+version+"/testapp" {
		t.Errorf("app.service's main process (pid %s) runs %s, want /opt/app/%s/testapp", pid, got, version)
	}
	if err := h.Command(context.Background(), nil, "/opt/app/current/testapp", "check", "-addr", "127.0.0.1:8080").Run(); err != nil {
		t.Errorf("app is not healthy on %s: %v", version, err)
	}
}
