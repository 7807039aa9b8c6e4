// Package clusterrestoretest builds the lab the in-place restore tests
// run against: a real PostgreSQL cluster archiving into a real pgBackRest
// repository, run by an exec-runtime service ("pg", through pg_ctl), with
// a dependent exec service ("app", a process with a pid file, its probe a
// query on the cluster: app-probe.sql in the lab directory, else select
// 1), and crash points in the services' commands.
package clusterrestoretest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// Fixture is one lab directory: lab.yaml, svc.sh (the services'
// commands), state/ (0711, so the server's OS user reads the pgbackrest
// configuration), crash/ (0777: crash points, which commands run as the
// server's OS user mark too) and the cluster.
type Fixture struct {
	Dir  string // the lab directory
	Lab  string // its lab.yaml
	PG   *testenv.PG
	Data string // the cluster's data directory
	Repo string // the pgBackRest repository
}

// svcScript runs the action of a service (or a probe), then, when the
// file crash/crash-at holds "SERVICE ACTION", makes the file crash/at
// (once) and hangs as ./sleeper: the crash point a test kills homelab at.
const svcScript = `#!/bin/sh
cd %[1]s
svc=$1 act=$2
case "$svc $act" in
"pg start") %[2]s%[3]s/pg_ctl -D %[4]s -l %[5]s/service.log -w -t 300 -o "-c listen_addresses=127.0.0.1 -c port=%[6]d -c unix_socket_directories=%[5]s -c fsync=off -c synchronous_commit=off" start >/dev/null || exit 1 ;;
"pg stop") %[2]s%[3]s/pg_ctl -D %[4]s -m fast -w -t 300 stop >/dev/null || exit 1 ;;
"pg status") %[2]s%[3]s/pg_ctl -D %[4]s status >/dev/null; exit $? ;;
"pg probe") %[2]s%[3]s/psql -XAtq -h %[5]s -p %[6]d -U postgres -d postgres -c "select 1" >/dev/null || exit 1 ;;
"app probe") %[2]s%[3]s/psql -XAtq -h %[5]s -p %[6]d -U postgres -d postgres -c "$(cat app-probe.sql 2>/dev/null || echo 'select 1')" >/dev/null || exit 1 ;;
"app start") setsid ./appd 100000 </dev/null >/dev/null 2>&1 & echo $! > app.pid ;;
"app stop") kill "$(cat app.pid)"; rm -f app.pid ;;
esac
if [ "$(cat crash/crash-at 2>/dev/null)" = "$svc $act" ] && mkdir crash/fired 2>/dev/null; then
	: > crash/at
	exec ./sleeper 600
fi
`

const labFile = `name: inplace
state_dir: ./state
services:
  pg:
    runtime: {exec: {start: "sh svc.sh pg start", stop: "sh svc.sh pg stop", status: "sh svc.sh pg status", timeout: 5m}}
    health: {command: {run: "sh svc.sh pg probe"}}
  app:
    runtime: {exec: {start: "sh svc.sh app start", stop: "sh svc.sh app stop", pid_file: app.pid}}
    health: {command: {run: "sh svc.sh app probe"}}   # app-probe.sql, if there, is its query
backups:
  db:
    provider: pgbackrest
    retention: {keep_last: 2}
    pgbackrest:
      stanza: main
      process_max: 2
      cluster: {data_dir: %[1]s, port: %[2]d, socket_dir: %[3]s, os_user: %[4]s, user: postgres, bin_dir: %[5]s, service: pg, dependents: [app]}
      repo: {path: %[6]s}
`

// New starts the cluster, writes the lab and starts the app.
func New(t *testing.T) *Fixture {
	t.Helper()
	testenv.PgBackRest(t)
	dir := testenv.SearchableDir(t)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "crash"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "crash"), 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	spec := &lab.Backup{Name: "db", PgBackRest: &lab.PgBackRest{Stanza: "main"}}
	pg := testenv.PostgresArchiving(t, pgbackrest.ArchiveCommand(state, spec))
	f := &Fixture{Dir: dir, Lab: filepath.Join(dir, "lab.yaml"), PG: pg, Data: filepath.Join(pg.Dir, "data"), Repo: filepath.Join(testenv.OwnedDir(t), "repo")}
	runAs, osUser := "", "root"
	if os.Geteuid() == 0 {
		runAs, osUser = "runuser -u postgres -- ", "postgres"
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sleeper", "appd"} {
		if err := os.Symlink(sleep, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// PGBinDir may be a directory of links to the server's pg_ctl: psql
	// is beside what they point to.
	bin := pg.BinDir
	if real, err := filepath.EvalSymlinks(filepath.Join(bin, "pg_ctl")); err == nil {
		bin = filepath.Dir(real)
	}
	write("svc.sh", fmt.Sprintf(svcScript, dir, runAs, bin, f.Data, pg.Dir, pg.Port))
	write("lab.yaml", fmt.Sprintf(labFile, f.Data, pg.Port, pg.Dir, osUser, pg.BinDir, f.Repo))
	f.Service(t, "app", "start")
	t.Cleanup(func() {
		if f.Running("app") {
			f.Service(t, "app", "stop")
		}
	})
	return f
}

// Service runs svc.sh's action of a service, failing the test if it
// fails.
func (f *Fixture) Service(t testing.TB, svc, act string) {
	t.Helper()
	if out, err := exec.Command("sh", filepath.Join(f.Dir, "svc.sh"), svc, act).CombinedOutput(); err != nil {
		t.Fatalf("svc.sh %s %s: %v\n%s", svc, act, err, out)
	}
}

// AppPID is the app's process ID ("" when it has none).
func (f *Fixture) AppPID() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "app.pid"))
	return strings.TrimSpace(string(b))
}

// Running reports whether the service runs: the cluster's server (its
// postmaster.pid) or the app's process.
func (f *Fixture) Running(svc string) bool {
	if svc == "pg" {
		_, ok := pgbackrest.ServerPID(f.Data)
		return ok
	}
	b, err := os.ReadFile(filepath.Join(f.Dir, "app.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err == nil && !strings.Contains(string(st), ") Z ")
}

// Asides lists the old and failed data directories in-place restores
// left beside the data directory.
func (f *Fixture) Asides() []string {
	out, _ := filepath.Glob(f.Data + ".homelab-*")
	return out
}

// Tables is each public table's row count and the md5 of its rows in
// order (an ordered dump), from the live cluster.
func (f *Fixture) Tables(t *testing.T) map[string]string {
	t.Helper()
	out := f.PG.PSQL(t, "postgres", `select string_agg(tablename, ' ' order by tablename) from pg_tables where schemaname = 'public'`)
	state := map[string]string{}
	for _, tbl := range strings.Fields(out) {
		state[tbl] = f.PG.PSQL(t, "postgres", "select count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\\n' order by x::text)), '') from "+tbl+" x")
	}
	return state
}

// AsBefore fails t unless the cluster serves exactly the tables before
// (Tables, taken before a restore that was undone), pg and app run, and
// nothing is left beside the data directory.
func (f *Fixture) AsBefore(t *testing.T, before map[string]string) {
	t.Helper()
	after := f.Tables(t)
	for tbl, w := range before {
		if after[tbl] != w {
			t.Errorf("table %s: %q, before the restore %q", tbl, after[tbl], w)
		}
	}
	if len(after) != len(before) {
		t.Errorf("tables %v, before the restore %v", after, before)
	}
	f.Settled(t)
	f.NoNewTimeline(t)
}

// NoNewTimeline fails t if the repository's archive has a timeline
// history file: a restored cluster that was given up archived its new
// timeline, which every later recovery to the end of the WAL would
// follow instead of the live cluster's (timeline 1, from initdb).
func (f *Fixture) NoNewTimeline(t *testing.T) {
	t.Helper()
	if h, _ := filepath.Glob(filepath.Join(f.Repo, "archive", "*", "*", "*.history*")); len(h) > 0 {
		t.Errorf("the repository's archive has %v: a given-up restored cluster archived its timeline", h)
	}
}

// Settled fails t unless pg and app run and nothing is left beside the
// data directory.
func (f *Fixture) Settled(t *testing.T) {
	t.Helper()
	if !f.Running("pg") || !f.Running("app") {
		t.Errorf("pg running %v, app running %v; want both", f.Running("pg"), f.Running("app"))
	}
	if left := f.Asides(); len(left) > 0 {
		t.Errorf("left beside the data directory: %v", left)
	}
}
