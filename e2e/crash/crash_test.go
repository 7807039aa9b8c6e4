// Package crash is the crash matrix: homelab killed with SIGKILL at each
// step of a backup, a prune, a replacing restore, a drill and a lab
// snapshot's create and restore (labsnapshot_test.go), against the
// real restic and PostgreSQL. After each kill the test asserts that the
// next command of the same kind succeeds, that nothing is left behind (no
// restic lock, no process, no drill or staging database, no drill
// directory) and that the catalog records the killed run as interrupted.
package crash

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/internal/catalog"
	"homelab/internal/cli"
	"homelab/internal/testenv"
)

func TestMain(m *testing.M) {
	// Puts a "homelab" that runs cli.Main on PATH for the tests.
	testscript.Main(m, map[string]func(){"homelab": func() { os.Exit(cli.Main()) }})
}

// shim is a wrapper for a tool (restic, pg_dump, pg_restore) in a lab
// directory (homelab gives its children an explicit environment, so the
// crash point is a file): when DIR/crash-at names the tool, or the tool
// and its subcommand ("restic prune"), its first call marks DIR/at and
// hangs as DIR/sleeper (so the test can find it), the step homelab is then
// killed in; every other call runs the real tool.
const shim = `#!/bin/sh
dir=%[1]s
tool=%[2]s
sub=""
skip=0
for a in "$@"; do
	if [ $skip = 1 ]; then skip=0; continue; fi
	case "$a" in --retry-lock) skip=1 ;; -*) ;; *) sub=$a; break ;; esac
done
at=$(cat "$dir/crash-at" 2>/dev/null)
if [ -n "$at" ] && { [ "$at" = "$tool" ] || [ "$at" = "$tool $sub" ]; }; then
	if mkdir "$dir/fired" 2>/dev/null; then
		: > "$dir/at"
		exec "$dir/sleeper" 600
	fi
fi
exec %[3]s "$@"
`

const labFile = `name: crash
state_dir: ./state
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  files:
    provider: restic
    repository: local
    source: {paths: [./data]}
    retention: {keep_last: 1}
    hooks: {before: ["if [ \"$(cat crash-at 2>/dev/null)\" = hook ] && mkdir fired 2>/dev/null; then : > at; exec %[1]s/sleeper 600; fi"]}
    drill: {checks: [{path: %[1]s/data/a.txt}]}
  shop:
    provider: postgres
    repository: local
    source: {host: 127.0.0.1, port: %[2]d, database: %[3]s, user: %[4]s, password_env: PGPASSWORD}
    retention: {keep_last: 1}
    drill: {checks: [{sql: "select count(*) = 300 from items"}]}
`

// lab is one case's lab directory, with its own database.
type lab struct {
	t   *testing.T
	dir string
	db  string
	pg  *testenv.PG
	env []string
}

var pgCluster *testenv.PG

func newLab(t *testing.T, pg *testenv.PG, n int) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{t: t, dir: dir, db: "shop" + strconv.Itoa(n), pg: pg}
	must(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("alpha\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "restic.pass"), []byte("crash matrix\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(fmt.Sprintf(labFile, dir, pg.Port, l.db, pg.User)), 0o644))
	sleep, err := exec.LookPath("sleep")
	must(t, err)
	must(t, os.Symlink(sleep, filepath.Join(dir, "sleeper")))
	tools := map[string]string{"restic": testenv.Restic(t)}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			testenv.Missing(t, "%s not found", tool)
		}
		tools[tool] = p
	}
	for tool, real := range tools {
		must(t, os.WriteFile(filepath.Join(dir, "bin", tool), []byte(fmt.Sprintf(shim, dir, tool, real)), 0o755))
	}
	l.env = append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOMELAB_RESTIC="+filepath.Join(dir, "bin", "restic"), "TMPDIR="+filepath.Join(dir, "tmp"),
		"PGPASSWORD="+pg.Password, "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"))
	l.psql("postgres", "create database "+l.db)
	l.psql(l.db, "create table items (id int primary key, name text); insert into items select g, 'item ' || g from generate_series(1, 300) g")
	l.homelab("repo", "init", "local")
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// psql runs sql in db as the superuser and returns its output.
func (l *lab) psql(db, sql string) string {
	l.t.Helper()
	cmd := exec.Command("psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", l.pg.Host, "-p", strconv.Itoa(l.pg.Port), "-U", l.pg.User, "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+l.pg.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (l *lab) command(extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command("homelab", append([]string{"--lab", filepath.Join(l.dir, "lab.yaml")}, args...)...)
	cmd.Dir = l.dir
	cmd.Env = append(slices.Clone(l.env), extraEnv...)
	return cmd
}

// homelab runs homelab to its end and fails the test if it fails.
func (l *lab) homelab(args ...string) string {
	l.t.Helper()
	out, err := l.command(nil, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("homelab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// crash starts homelab with args and the crash point at, awaits the
// crash point, and kills homelab with SIGKILL (its children are left to
// what the kernel and homelab arranged: they are not killed here). The
// crash point is then disarmed.
func (l *lab) crash(at string, args ...string) {
	l.t.Helper()
	os.RemoveAll(filepath.Join(l.dir, "fired"))
	os.Remove(filepath.Join(l.dir, "at"))
	must(l.t, os.WriteFile(filepath.Join(l.dir, "crash-at"), []byte(at), 0o644))
	defer os.Remove(filepath.Join(l.dir, "crash-at"))
	killAt(l.t, l.command(nil, args...), filepath.Join(l.dir, "at"), at)
}

// killAt starts cmd, awaits the file atFile, which its crash point at
// makes, and kills cmd there with SIGKILL (its children are left to what
// the kernel and homelab arranged).
func killAt(t *testing.T, cmd *exec.Cmd, atFile, at string) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// The limit only stops a test whose crash point is never reached.
	limit := time.After(5 * time.Minute)
	for {
		if _, err := os.Stat(atFile); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("%s ended (%v) before the crash point %q:\n%s", strings.Join(cmd.Args, " "), err, at, out.String())
		case <-limit:
			cmd.Process.Kill()
			t.Fatalf("%s never reached the crash point %q:\n%s", strings.Join(cmd.Args, " "), at, out.String())
		case <-tick.C:
		}
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	<-exited
}

// nothingLeft asserts that nothing of a killed run remains, awaiting the
// processes' ends (the kernel signals children as homelab dies).
func (l *lab) nothingLeft() {
	l.t.Helper()
	sleeper := filepath.Join(l.dir, "sleeper")
	var procs []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		procs = l.processes(sleeper)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("processes of the killed run still running a minute later: %v", procs)
		}
	}
	out, err := exec.Command(testenv.Restic(l.t), "-r", filepath.Join(l.dir, "repo"), "--password-file", filepath.Join(l.dir, "restic.pass"), "list", "locks", "--no-lock").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		var detail []byte
		for _, id := range strings.Fields(string(out)) {
			b, _ := exec.Command(testenv.Restic(l.t), "-r", filepath.Join(l.dir, "repo"), "--password-file", filepath.Join(l.dir, "restic.pass"), "cat", "lock", "--no-lock", id).CombinedOutput()
			detail = append(detail, b...)
		}
		ps, _ := exec.Command("ps", "-eo", "pid,ppid,stat,lstart,cmd").CombinedOutput()
		l.t.Errorf("restic locks left: %v %s\n%s\nprocesses:\n%s", err, out, detail, ps)
	}
	if left := l.psql("postgres", "select string_agg(datname, ',') from pg_database where datname like 'homelab_drill_%' or datname like '"+l.db+"_homelab_%'"); left != "" {
		l.t.Errorf("databases left: %s", left)
	}
	if drills, _ := filepath.Glob(filepath.Join(l.dir, "tmp", "homelab-drill-*")); len(drills) > 0 {
		l.t.Errorf("drill directories left: %v", drills)
	}
}

// processes lists the running processes whose argv[0] is path.
func (l *lab) processes(path string) []string {
	var out []string
	for _, pid := range procsWhere(func(_ int, argv0 string) bool { return argv0 == path }) {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		out = append(out, strconv.Itoa(pid)+" "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// procsWhere lists the running processes (a zombie waits for its parent
// and holds nothing: left out) for which match, given the pid and argv[0],
// is true.
func procsWhere(match func(pid int, argv0 string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if argv0, _, _ := bytes.Cut(b, []byte{0}); !match(pid, string(argv0)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// interrupted asserts that the catalog has the killed run (the newest of
// kind for target) as interrupted; kind "drill" looks at drills.
func (l *lab) interrupted(kind catalog.Kind, target string) {
	l.t.Helper()
	ctx := context.Background()
	store, err := catalog.Open(ctx, filepath.Join(l.dir, "state", "catalog.db"))
	must(l.t, err)
	defer store.Close()
	var results []catalog.Result
	if kind == "drill" {
		ds, err := store.Drills(ctx, catalog.DrillFilter{Target: target})
		must(l.t, err)
		for _, d := range ds {
			results = append(results, d.Result)
		}
	} else {
		rs, err := store.Runs(ctx, catalog.RunFilter{Target: target, Kind: kind})
		must(l.t, err)
		for _, r := range rs {
			results = append(results, r.Result)
		}
	}
	// Newest first: the next command's run, then the killed one.
	if len(results) < 2 || results[1] != catalog.ResultInterrupted || slices.Contains(results, catalog.ResultRunning) {
		l.t.Errorf("catalog %s runs of %s, newest first: %v; want the killed one interrupted and none running", kind, target, results)
	}
}

// TestCrashMatrix kills homelab at each step and checks what the next run
// finds.
func TestCrashMatrix(t *testing.T) {
	pg := testenv.Postgres(t)
	cases := []struct {
		name    string
		at      string
		args    []string // the killed command, also run again after
		kind    catalog.Kind
		target  string
		prepare [][]string // homelab commands before the crash
		check   func(l *lab)
	}{
		{name: "backup/before hook", at: "hook", args: []string{"backup", "run", "files"}, kind: catalog.KindBackup, target: "files"},
		{name: "backup/pg_dump under restic", at: "pg_dump", args: []string{"backup", "run", "shop"}, kind: catalog.KindBackup, target: "shop"},
		{name: "prune/between forget and prune", at: "restic prune", args: []string{"backup", "prune", "files"}, kind: catalog.KindPrune, target: "files",
			prepare: [][]string{{"backup", "run", "files"}, {"backup", "run", "files"}}},
		{name: "drill/files restore", at: "restic restore", args: []string{"backup", "verify", "files"}, kind: "drill", target: "files",
			prepare: [][]string{{"backup", "run", "files"}}},
		{name: "drill/pg_restore", at: "pg_restore", args: []string{"backup", "verify", "shop"}, kind: "drill", target: "shop",
			prepare: [][]string{{"backup", "run", "shop"}}},
		{name: "restore --replace/pg_restore into staging", at: "pg_restore", kind: catalog.KindRestore, target: "shop",
			args:    []string{"backup", "restore", "latest", "--target", "shop", "--in-place", "--yes"},
			prepare: [][]string{{"backup", "run", "shop"}},
			check: func(l *lab) {
				if n := l.psql(l.db, "select count(*) from items"); n != "300" {
					t.Errorf("the restored database has %s rows, want 300", n)
				}
			}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, pg, i)
			for _, p := range tc.prepare {
				l.homelab(p...)
			}
			l.crash(tc.at, tc.args...)
			// The next command of the same kind succeeds...
			l.homelab(tc.args...)
			// ...and nothing of the killed one is left.
			l.nothingLeft()
			l.interrupted(tc.kind, tc.target)
			if tc.check != nil {
				tc.check(l)
			}
		})
	}
}
