package pgmajor

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/e2e/e2etest"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// labFile is the lab: db, a PostgreSQL server (exec runtime: pg.sh starts
// the cluster of the major in ./major), with a pg_dump restore point, and
// app, a dependent whose health check queries the database.
const labFile = `name: pgmajor
state_dir: ./state
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  db-dump:
    provider: postgres
    repository: local
    source: {host: %[1]s/sock, port: %[2]d, database: shop, user: postgres}
services:
  db:
    runtime:
      exec: {start: sh pg.sh start, stop: sh pg.sh stop, status: sh pg.sh status, version: cat major, set_version: "echo {{.Version}} > major", timeout: 5m}
    health:
      command: {run: sh pg.sh ready, timeout: 30s}
    postgres:
      data_dir: "pg/{{.Major}}"
      bin_dirs: {"15": %[3]s, "17": %[1]s/bin17}
      dependents: [app]
      upgrade_port: %[4]d
      run_as: root
    upgrade: {backup_before: [db-dump], healthy_within: 45s}
  app:
    runtime:
      exec: {start: sh app.sh start, stop: sh app.sh stop, status: sh app.sh status}
    health:
      command: {run: sh app.sh check, timeout: 30s}
`

// pgScript drives the cluster of the major in ./major with that major's
// wrappers (pg_ctl status: 0 running, 3 stopped, 4 no data directory).
const pgScript = `set -u
m=$(cat major)
case $m in 15) bin=%[3]s ;; 17) bin=%[1]s/bin17 ;; *) echo "unknown major $m" >&2; exit 1 ;; esac
data=%[1]s/pg/$m
case $1 in
start) exec $bin/pg_ctl -D $data -o "-c listen_addresses='' -c port=%[2]d -c unix_socket_directories=%[1]s/sock" -l %[1]s/pg/$m.log -w -t 120 start ;;
stop) [ -f $data/postmaster.pid ] || exit 0; exec $bin/pg_ctl -D $data -m fast -w -t 120 stop ;;
status) $bin/pg_ctl -D $data status >/dev/null; rc=$?; [ $rc -eq 4 ] && exit 3; exit $rc ;;
ready) exec $bin/psql -XAtq -h %[1]s/sock -p %[2]d -U postgres -d shop -c 'select 1' ;;
esac
`

// appScript is the dependent: running while app.running exists; healthy
// when it can count the words; with ./strict, only on PostgreSQL 15 (a
// dependent that fails its health gate on the new major).
const appScript = `case $1 in
start) : > app.running ;;
stop) rm -f app.running ;;
status) [ -f app.running ] || exit 3 ;;
check)
	[ -f app.running ] || { echo "app is not running"; exit 1; }
	v=$(%[3]s/psql -XAtq -h %[1]s/sock -p %[2]d -U postgres -d shop -c 'select current_setting($$server_version_num$$)::int / 10000') || exit 1
	if [ -f strict ] && [ "$v" != 15 ]; then echo "app supports PostgreSQL 15 only, not $v" >&2; exit 1; fi ;;
esac
`

// pgUpgradeShim is bin17's pg_upgrade: it records whether app ran when
// pg_upgrade (not --check) started (app-at-pg_upgrade); with ./crash-at it runs the real
// pg_upgrade in the background, marks ./at for the test to kill homelab,
// and waits for it.
const pgUpgradeShim = `#!/bin/sh
case " $* " in *" --check "*) exec %[2]s/pg_upgrade "$@" ;; esac
{ [ -f %[1]s/app.running ] && echo running || echo stopped; } >> %[1]s/app-at-pg_upgrade
if [ -f %[1]s/crash-at ]; then
	( %[2]s/pg_upgrade "$@"; echo $? > %[1]s/pg_upgrade.exit ) &
	while [ ! -d %[1]s/pg/17/pg_upgrade_output.d ] && [ ! -f %[1]s/pg_upgrade.exit ]; do sleep 0.05; done
	: > %[1]s/at
	wait
	exit
fi
exec %[2]s/pg_upgrade "$@"
`

type lab struct {
	t    *testing.T
	dir  string
	bins testenv.PGMajorsBins
	port int
	env  []string
}

func newLab(t *testing.T) *lab {
	bins := testenv.PGMajors(t)
	restic := testenv.Restic(t)
	dir := testenv.SearchableDir(t)
	l := &lab{t: t, dir: dir, bins: bins, port: testenv.FreePort(t)}
	l.env = append(os.Environ(), "PATH="+filepath.Dir(restic)+":"+os.Getenv("PATH"))
	owner := testenv.OwnedDir(t) // for its owner only
	fi, _ := os.Stat(owner)
	st := fi.Sys().(*syscall.Stat_t)
	for _, d := range []string{"pg", "sock"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
		must(t, os.Chown(filepath.Join(dir, d), int(st.Uid), int(st.Gid)))
	}
	// bin17: PostgreSQL 17's wrappers, with the pg_upgrade shim.
	must(t, os.Mkdir(filepath.Join(dir, "bin17"), 0o755))
	ents, err := os.ReadDir(bins.New)
	must(t, err)
	for _, e := range ents {
		if e.Name() != "pg_upgrade" {
			must(t, os.Symlink(filepath.Join(bins.New, e.Name()), filepath.Join(dir, "bin17", e.Name())))
		}
	}
	write := func(name, text string, perm os.FileMode) {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(text), perm))
	}
	write("bin17/pg_upgrade", fmt.Sprintf(pgUpgradeShim, dir, bins.New), 0o755)
	write("lab.yaml", fmt.Sprintf(labFile, dir, l.port, bins.Old, testenv.FreePort(t)), 0o644)
	write("pg.sh", fmt.Sprintf(pgScript, dir, l.port, bins.Old), 0o644)
	write("app.sh", fmt.Sprintf(appScript, dir, l.port, bins.Old), 0o644)
	write("restic.pass", "pgmajor-test-repository\n", 0o600)
	write("major", "15\n", 0o644)

	l.pgtool(bins.Old, "initdb", "-D", filepath.Join(dir, "pg", "15"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums", "--no-sync")
	t.Cleanup(func() {
		for _, c := range []struct{ bin, major string }{{bins.Old, "15"}, {bins.New, "17"}} {
			exec.Command(filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(dir, "pg", c.major), "-m", "immediate", "-w", "stop").Run()
		}
	})
	l.homelab("lab", "validate")
	l.homelab("repo", "init", "local")
	l.sh("sh pg.sh start")
	l.psql("postgres", "CREATE DATABASE shop")
	l.pgtool(bins.Old, "pgbench", "-i", "-s", "2", "-q", "-h", filepath.Join(dir, "sock"), "-p", strconv.Itoa(l.port), "-U", "postgres", "shop")
	l.psql("shop", `CREATE EXTENSION citext; CREATE TABLE words (w text COLLATE "de-x-icu", c citext); INSERT INTO words SELECT 'wört ' || i, 'Äpfel ' || i FROM generate_series(1, 2000) i; CREATE INDEX ON words (w)`)
	l.sh("sh app.sh start")
	l.homelab("status")
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (l *lab) pgtool(bin, name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (l *lab) sh(script string) string {
	l.t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = l.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// major is the major the running cluster reports.
func (l *lab) major() string {
	return l.psql("shop", "SELECT current_setting('server_version_num')::int / 10000")
}

// psql runs sql in db with PostgreSQL 17's psql (it talks to 15 too).
func (l *lab) psql(db, sql string) string {
	l.t.Helper()
	return strings.TrimSpace(l.pgtool(l.bins.New, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", filepath.Join(l.dir, "sock"), "-p", strconv.Itoa(l.port), "-U", "postgres", "-d", db, "-c", sql))
}

// fingerprint is every table's row count and the md5 of its rows in
// order (an ordered dump), and the extensions.
func (l *lab) fingerprint() string {
	l.t.Helper()
	var b strings.Builder
	for _, tbl := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "words"} {
		b.WriteString(l.psql("shop", "SELECT '"+tbl+"', count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM "+tbl+" t") + "\n")
	}
	b.WriteString(l.psql("shop", "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension") + "\n")
	// The ICU collation still sorts as German does (ä with a).
	b.WriteString(l.psql("shop", `SELECT string_agg(x, ',' ORDER BY x COLLATE "de-x-icu") FROM (VALUES ('b'), ('ä'), ('a'), ('z')) v(x)`) + "\n")
	return b.String()
}

func (l *lab) command(args ...string) *exec.Cmd {
	cmd := exec.Command("homelab", append([]string{"--lab", filepath.Join(l.dir, "lab.yaml")}, args...)...)
	cmd.Dir = l.dir
	cmd.Env = l.env
	return cmd
}

func (l *lab) homelab(args ...string) string {
	l.t.Helper()
	out, err := l.command(args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("homelab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fails runs homelab, which must exit 1, and returns its output.
func (l *lab) fails(args ...string) string {
	l.t.Helper()
	out, err := l.command(args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		l.t.Fatalf("homelab %s: want exit status 1, got %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// onFifteen asserts the lab is as before the upgrade: PostgreSQL 15 with
// the data of before, app healthy, no new cluster left.
func (l *lab) onFifteen(before string) {
	l.t.Helper()
	if m := l.major(); m != "15" {
		l.t.Fatalf("running PostgreSQL %s, want 15", m)
	}
	if got := l.fingerprint(); got != before {
		l.t.Fatalf("data changed:\nbefore\n%s\nafter\n%s", before, got)
	}
	if b, _ := os.ReadFile(filepath.Join(l.dir, "major")); strings.TrimSpace(string(b)) != "15" {
		l.t.Fatalf("./major says %q", b)
	}
	l.sh("sh app.sh check")
	if exists(filepath.Join(l.dir, "pg", "17")) {
		l.t.Fatal("the new cluster pg/17 was left behind")
	}
	out := l.homelab("status")
	if !strings.Contains(out, "app") {
		l.t.Fatalf("status:\n%s", out)
	}
}

func TestMajorUpgrade(t *testing.T) {
	l := newLab(t)
	before := l.fingerprint()

	plan := l.homelab("upgrade", "db", "--to", "17", "--dry-run")
	for _, want := range []string{"from PostgreSQL 15 to 17 with pg_upgrade --", "needed on " + l.dir + "/pg/17", "stop dependents: app", "restore point: db-dump"} {
		if !strings.Contains(plan, want) {
			t.Fatalf("dry-run plan lacks %q:\n%s", want, plan)
		}
	}
	if exists(filepath.Join(l.dir, "pg", "17")) {
		t.Fatal("--dry-run made the new cluster")
	}

	out := l.homelab("upgrade", "db", "--to", "17", "--yes")
	t.Log(out)
	if m := l.major(); m != "17" {
		t.Fatalf("running PostgreSQL %s after the upgrade, want 17\n%s", m, out)
	}
	if got := l.fingerprint(); got != before {
		t.Fatalf("data changed:\nbefore\n%s\nafter\n%s", before, got)
	}
	// The dependent was stopped while pg_upgrade ran, and is healthy after.
	if b, _ := os.ReadFile(filepath.Join(l.dir, "app-at-pg_upgrade")); strings.TrimSpace(string(b)) != "stopped" {
		t.Fatalf("app at pg_upgrade: %q, want stopped", b)
	}
	l.sh("sh app.sh check")
	// Statistics were made (vacuumdb --analyze-in-stages), timed apart.
	if n := l.psql("shop", "SELECT count(*) FROM pg_stats WHERE tablename = 'pgbench_accounts'"); n == "0" {
		t.Fatal("no planner statistics after the upgrade")
	}
	if !strings.Contains(out, "vacuumdb --all --analyze-in-stages took ") {
		t.Fatalf("no analyze time in the output:\n%s", out)
	}
	// The settings of initdb were the old cluster's.
	if v := l.psql("shop", "SHOW data_checksums"); v != "on" {
		t.Fatalf("data_checksums %s on 17", v)
	}

	// The old cluster stays, shown on status, until --finalize.
	if !exists(filepath.Join(l.dir, "pg", "15", "PG_VERSION")) {
		t.Fatal("the old cluster is gone before --finalize")
	}
	if st := l.homelab("status"); !strings.Contains(st, "--finalize") {
		t.Fatalf("status does not show the kept cluster:\n%s", st)
	}
	l.homelab("upgrade", "db", "--finalize", "--yes")
	if exists(filepath.Join(l.dir, "pg", "15")) {
		t.Fatal("--finalize left the old cluster")
	}
	if got := l.fingerprint(); got != before {
		t.Fatalf("data changed by --finalize:\n%s", got)
	}
}

func TestMajorUpgradeMissingExtension(t *testing.T) {
	l := newLab(t)
	// adminpack was removed from PostgreSQL 17.
	l.psql("shop", "CREATE EXTENSION adminpack")
	before := l.fingerprint()
	out := l.fails("upgrade", "db", "--to", "17", "--yes")
	if !strings.Contains(out, "extensions missing in PostgreSQL 17: adminpack") {
		t.Fatalf("no reason given:\n%s", out)
	}
	l.onFifteen(before)
}

func TestMajorUpgradeDependentFailsGate(t *testing.T) {
	l := newLab(t)
	l.sh(": > strict")
	before := l.fingerprint()
	out := l.fails("upgrade", "db", "--to", "17", "--yes")
	if !strings.Contains(out, "app supports PostgreSQL 15 only, not 17") {
		t.Fatalf("no reason given:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(l.dir, "app-at-pg_upgrade")); strings.TrimSpace(string(b)) != "stopped" {
		t.Fatalf("app at pg_upgrade: %q, want stopped", b)
	}
	l.onFifteen(before)
}

func TestMajorUpgradeKilledDuringPgUpgrade(t *testing.T) {
	l := newLab(t)
	before := l.fingerprint()
	l.sh(": > crash-at")
	cmd := l.command("upgrade", "db", "--to", "17", "--yes")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e2etest.Eventually(t, 10*time.Minute, "pg_upgrade to start", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("homelab ended (%v) before pg_upgrade ran:\n%s", err, out.String())
		default:
		}
		return exists(filepath.Join(l.dir, "at"))
	}, out.String)
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	<-exited
	os.Remove(filepath.Join(l.dir, "crash-at"))

	// pg_upgrade outlives homelab (it runs as another user, so the
	// kernel's parent-death signal is cleared); --resume refuses while a
	// command of the upgrade runs, so it is run once pg_upgrade has ended,
	// and again while it says they still run (the shell around it exits
	// just after).
	e2etest.Eventually(t, 10*time.Minute, "the orphaned pg_upgrade to end", func() bool { return exists(filepath.Join(l.dir, "pg_upgrade.exit")) }, out.String)
	var res []byte
	e2etest.Eventually(t, 5*time.Minute, "homelab upgrade --resume to run", func() bool {
		var err error
		res, err = l.command("upgrade", "--resume", "--yes").CombinedOutput()
		if err != nil && !strings.Contains(string(res), "still run") {
			t.Fatalf("homelab upgrade --resume: %v\n%s", err, res)
		}
		return err == nil
	}, func() string { return string(res) })
	t.Logf("%s", res)
	if !strings.Contains(string(res), "undo pg_upgrade to 17") {
		t.Fatalf("the resume did not roll pg_upgrade back:\n%s", res)
	}
	l.onFifteen(before)
}

// TestMajorUpgradeLinkRollback: in link mode PostgreSQL 17 runs on the old
// cluster's files; when the dependent then fails its gate, the rollback
// rebuilds PostgreSQL 15 from the restore point (the old files kept
// aside), with the data of before and its roles (a table owned by a
// role that only pg_dumpall --globals-only holds).
func TestMajorUpgradeLinkRollback(t *testing.T) {
	l := newLab(t)
	l.sh(`sed -i 's/      run_as: root/      run_as: root\n      mode: link/' lab.yaml && : > strict`)
	l.psql("shop", "CREATE ROLE shop_owner LOGIN; ALTER TABLE words OWNER TO shop_owner")
	before := l.fingerprint()
	plan := l.homelab("upgrade", "db", "--to", "17", "--dry-run")
	if !strings.Contains(plan, "pg_upgrade --link") || !strings.Contains(plan, "rebuilt from the restore point") {
		t.Fatalf("dry-run plan:\n%s", plan)
	}
	out := l.fails("upgrade", "db", "--to", "17", "--yes")
	if !strings.Contains(out, "app supports PostgreSQL 15 only, not 17") || !strings.Contains(out, "moving "+filepath.Join(l.dir, "pg", "15")+" aside") {
		t.Fatalf("output:\n%s", out)
	}
	l.onFifteen(before)
	if aside, _ := filepath.Glob(filepath.Join(l.dir, "pg", "15.link-*")); len(aside) != 1 {
		t.Fatalf("the old files were not kept aside: %v", aside)
	}
	if o := l.psql("shop", "SELECT tableowner FROM pg_tables WHERE tablename = 'words'"); o != "shop_owner" {
		t.Fatalf("words is owned by %q after the rebuild, want shop_owner", o)
	}
	if g, _ := filepath.Glob(filepath.Join(l.dir, "pg", ".homelab-globals-*")); len(g) != 0 {
		t.Fatalf("the roles' dump was left behind: %v", g)
	}
}
