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

	"homelab/internal/catalog"
	"homelab/internal/clusterrestore/clusterrestoretest"
	"homelab/internal/testenv"
)

// pgbrShim wraps pgbackrest (run as the server's OS user: its crash files
// are in the 0777 crash directory): when crash/crash-at is "pgbackrest
// restore" its first restore makes crash/at and hangs before restoring;
// with "pgbackrest restore-done" it restores, then hangs. Every other call
// runs the real pgbackrest.
const pgbrShim = `#!/bin/sh
dir=%[1]s
sub=""
for a in "$@"; do
	case "$a" in -*) ;; *) sub=$a; break ;; esac
done
at=$(cat "$dir/crash/crash-at" 2>/dev/null)
if [ "$sub" = restore ] && [ "$at" = "pgbackrest restore" ] && mkdir "$dir/crash/fired" 2>/dev/null; then
	: > "$dir/crash/at"
	exec "$dir/sleeper" 600
fi
if [ "$sub" = restore ] && [ "$at" = "pgbackrest restore-done" ] && mkdir "$dir/crash/fired" 2>/dev/null; then
	%[2]s "$@" || exit $?
	: > "$dir/crash/at"
	exec "$dir/sleeper" 600
fi
exec %[2]s "$@"
`

// inPlaceLab is a fixture driven through the homelab binary.
type inPlaceLab struct {
	t   *testing.T
	f   *clusterrestoretest.Fixture
	env []string
}

func newInPlaceLab(t *testing.T) *inPlaceLab {
	t.Helper()
	f := clusterrestoretest.New(t)
	real, err := exec.LookPath("pgbackrest")
	must(t, err)
	bin := filepath.Join(f.Dir, "bin")
	must(t, os.Mkdir(bin, 0o755))
	must(t, os.WriteFile(filepath.Join(bin, "pgbackrest"), []byte(fmt.Sprintf(pgbrShim, f.Dir, real)), 0o755))
	l := &inPlaceLab{t: t, f: f, env: append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))}
	t.Cleanup(l.endSleepers)
	return l
}

func (l *inPlaceLab) command(args ...string) *exec.Cmd {
	cmd := exec.Command("homelab", append([]string{"--lab", l.f.Lab}, args...)...)
	cmd.Dir, cmd.Env = l.f.Dir, l.env
	return cmd
}

// run runs homelab, wants exit status code, and returns its output.
func (l *inPlaceLab) run(code int, args ...string) string {
	l.t.Helper()
	out, err := l.command(args...).CombinedOutput()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		l.t.Fatal(err)
	}
	if got != code {
		l.t.Fatalf("homelab %s: exit %d, want %d:\n%s", strings.Join(args, " "), got, code, out)
	}
	return string(out)
}

func (l *inPlaceLab) psql(sql string) string {
	l.t.Helper()
	return l.f.PG.PSQL(l.t, "postgres", sql)
}

// crash runs homelab with args until the crash point at is reached, and
// kills it there with SIGKILL.
func (l *inPlaceLab) crash(at string, args ...string) {
	l.t.Helper()
	crashDir := filepath.Join(l.f.Dir, "crash")
	must(l.t, os.WriteFile(filepath.Join(crashDir, "crash-at"), []byte(at), 0o644))
	defer os.Remove(filepath.Join(crashDir, "crash-at"))
	killAt(l.t, l.command(args...), filepath.Join(crashDir, "at"), at)
}

// sleepers are the hung crash points still running: ./sleeper processes
// in the lab directory, or its sleeper by path.
func (l *inPlaceLab) sleepers() []int {
	return procsWhere(func(pid int, argv0 string) bool {
		cwd, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
		return argv0 == filepath.Join(l.f.Dir, "sleeper") || (argv0 == "./sleeper" && cwd == l.f.Dir)
	})
}

// endSleepers ends the hung service commands of the killed homelab (they
// have no parent to end them), by their pids.
func (l *inPlaceLab) endSleepers() {
	for _, pid := range l.sleepers() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestCrashInPlaceRestore kills `homelab backup restore --in-place` with
// SIGKILL at each step of its saga, then resumes it: the cluster ends
// restored to T (when the restored cluster had passed its health gate) or
// exactly as before, never missing; the cluster's service and its
// dependent run; nothing is left beside the data directory; the
// restore's pgbackrest left hanging is ended by the resume.
func TestCrashInPlaceRestore(t *testing.T) {
	cases := []struct {
		at       string
		restored bool // else as before
		// damage makes the restore fail (a backup file damaged in the
		// repository): the crash point is then in the compensation.
		damage bool
		// resumeAt, if set, is where the first --resume is killed too (a
		// second crash, during the compensation the resume runs).
		resumeAt string
	}{
		{"app stop", false, false, ""},                // stop dependents
		{"pg stop", false, false, ""},                 // stop pg
		{"pgbackrest restore", false, false, ""},      // moved aside, the restore not begun
		{"pgbackrest restore-done", false, false, ""}, // restored, the step not journalled done
		{"pg start", false, false, ""},                // the restored cluster started
		{"pg probe", false, false, ""},                // in its health gate
		{"app start", true, false, ""},                // start dependents, after the gate
		{"pg start", false, true, ""},                 // putting the old data back: starting it
		// restored, then the resume killed after putting the old data back
		{"pgbackrest restore-done", false, false, "pg start"},
	}
	for i, tc := range cases {
		name := tc.at
		if tc.damage {
			name = "undo/" + name
		}
		if tc.resumeAt != "" {
			name += "/resume-killed/" + tc.resumeAt
		}
		t.Run(name, func(t *testing.T) {
			l := newInPlaceLab(t)
			l.run(0, "backup", "setup", "db")
			l.psql("create table accounts as select g as id, md5(g::text) as v from generate_series(1, 1000) g")
			l.run(0, "backup", "run", "db", "--type", "full")
			l.psql("create table markers (n int)")
			l.psql("insert into markers values (1), (2), (3)")
			T := l.psql("select clock_timestamp()::text")
			for l.psql("select clock_timestamp() > '"+T+"'::timestamptz") != "t" {
			}
			l.psql("insert into markers values (4)")
			l.psql("drop table accounts")
			l.run(0, "backup", "setup", "db") // check: the WAL is archived
			before := l.f.Tables(t)
			if tc.damage {
				l.damage()
			}
			args := []string{"backup", "restore", "latest", "--target", "db", "--in-place", "--time", T}
			if i == 0 {
				out := l.run(0, append(args, "--dry-run")...)
				for _, want := range []string{"plan: restore db in place from ", " to " + T, "1. stop dependents: app", "2. stop pg",
					"3. move aside " + l.f.Data + " to " + l.f.Data + ".homelab-old-", "6. health gate pg", "7. start dependents: app",
					"on any failure: the old data directory goes back"} {
					if !strings.Contains(out, want) {
						t.Errorf("--dry-run does not say %q:\n%s", want, out)
					}
				}
				if out := l.run(2, args...); !strings.Contains(out, "pass --yes") {
					t.Errorf("without --yes off a terminal:\n%s", out)
				}
				if !l.f.Running("pg") || len(l.f.Asides()) > 0 {
					t.Fatal("--dry-run or the refusal changed something")
				}
			}
			l.crash(tc.at, append(args, "--yes")...)

			// The next command says what is unfinished; a new restore is
			// refused, and so is its --dry-run (no plan that would be).
			for _, more := range []string{"--yes", "--dry-run"} {
				out := l.run(1, append(args, more)...)
				if !strings.Contains(out, "unfinished backup restore pg") || !strings.Contains(out, "homelab backup restore --resume") || strings.Contains(out, "plan:") {
					t.Errorf("the next restore (%s) does not point to --resume:\n%s", more, out)
				}
			}
			l.endHungServiceCommands()
			l.killedRunInterrupted()
			if tc.resumeAt != "" {
				for _, f := range []string{"at", "fired"} {
					must(t, os.Remove(filepath.Join(l.f.Dir, "crash", f)))
				}
				l.crash(tc.resumeAt, "backup", "restore", "--resume", "--yes")
				l.endHungServiceCommands()
			}
			out := l.run(0, "backup", "restore", "--resume", "--yes")
			t.Logf("resume:\n%s", out)
			l.run(0, "backup", "restore", "--resume", "--yes") // a second resume: nothing unfinished

			if left := l.sleepers(); len(left) > 0 {
				t.Errorf("the killed restore's pgbackrest still runs: %v", left)
			}
			if !tc.restored {
				l.f.AsBefore(t, before)
				return
			}
			l.f.Settled(t)
			tables := keys(l.f.Tables(t))
			if got := l.psql("select string_agg(n::text, ',' order by n) from markers"); got != "1,2,3" || !slices.Contains(tables, "accounts") {
				t.Errorf("after the resume: markers %q, tables %v; want restored to T (1,2,3 and accounts)", got, tables)
			}
		})
	}
}

// endHungServiceCommands ends the hung service commands of a killed
// homelab (as a stop command that hung would be ended by its timeout);
// a hung pgbackrest (marked HOMELAB_SAGA) is left for the resume to end.
func (l *inPlaceLab) endHungServiceCommands() {
	for _, pid := range l.sleepers() {
		if env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); !bytes.Contains(env, []byte("HOMELAB_SAGA=")) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killedRunInterrupted asserts that the catalog has one restore run of
// db, the killed one, recorded as interrupted (by the next command's
// start), and no refused restore recorded as a run.
func (l *inPlaceLab) killedRunInterrupted() {
	l.t.Helper()
	ctx := context.Background()
	store, err := catalog.Open(ctx, filepath.Join(l.f.Dir, "state", "catalog.db"))
	must(l.t, err)
	defer store.Close()
	runs, err := store.Runs(ctx, catalog.RunFilter{Target: "db", Kind: catalog.KindRestore})
	must(l.t, err)
	if len(runs) != 1 || runs[0].Result != catalog.ResultInterrupted {
		var got []catalog.Result
		for _, r := range runs {
			got = append(got, r.Result)
		}
		l.t.Errorf("restore runs of db: %v; want the killed one, interrupted", got)
	}
}

// damage overwrites the files of every backup in the repository: a
// restore of any fails.
func (l *inPlaceLab) damage() {
	l.t.Helper()
	testenv.DamageBackupFiles(l.t, filepath.Join(l.f.Repo, "backup", "main", "*", "pg_data", "global", "pg_control*"))
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
