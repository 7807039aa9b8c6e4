package doctor_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/doctor"
	"homelab/internal/repokey"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// TestMigrations runs a test service's migrations status commands for
// real: a migrate script that compares a directory of migrations with a
// file of applied ones and exits 1 when some are pending (the default
// pending_exit), one that lists them and exits 0 (pending_match), one
// up to date, and one that fails (unchecked).
func TestMigrations(t *testing.T) {
	l := loadLab(t, `
services:
  app:
    migrations: {status: "./migrate.sh --status"}
  rails:
    migrations: {status: "printf '   up     001_init\n  down    002_users\n  down    003_posts\n'", pending_match: '^\s*down\s'}
  uptodate:
    migrations: {status: "printf '   up     001_init\n'", pending_match: '^\s*down\s'}
  broken:
    migrations: {status: "echo 'cannot reach the database' >&2; exit 7"}
`)
	dir := filepath.Dir(l.Path)
	os.MkdirAll(filepath.Join(dir, "migrations"), 0o755)
	for _, m := range []string{"001_init.sql", "002_users.sql", "003_posts.sql"} {
		os.WriteFile(filepath.Join(dir, "migrations", m), []byte("select 1;\n"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "applied"), []byte("001_init.sql\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "migrate.sh"), []byte(`#!/bin/sh
# --status: print the pending migrations, exit 1 when there are any.
pending=0
for f in $(ls migrations); do
  if ! grep -qx "$f" applied; then echo "pending $f"; pending=1; fi
done
[ "$HOMELAB_SERVICE" = app ] || { echo "HOMELAB_SERVICE not set" >&2; exit 9; }
exit $pending
`), 0o755)
	ctx := context.Background()
	d := &doctor.Doctor{Lab: l}
	r := d.Run(ctx)
	got := map[string]string{}
	for _, f := range r.Findings {
		got[f.Check+" "+f.Subject] = f.Problem
		if f.Auto {
			t.Errorf("%s %s is auto: doctor never applies migrations", f.Check, f.Subject)
		}
	}
	want := map[string]string{
		"pending_migrations service app":   "2 migrations pending: pending 002_users.sql, pending 003_posts.sql",
		"pending_migrations service rails": "2 migrations pending: down    002_users, down    003_posts",
		"unchecked service broken":         "could not check: migrations status: /bin/sh -c echo 'cannot reach the database' >&2; exit 7: exit status 7: cannot reach the database",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: problem %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	// Applied: the finding is gone.
	os.WriteFile(filepath.Join(dir, "applied"), []byte("001_init.sql\n002_users.sql\n003_posts.sql\n"), 0o644)
	for _, f := range d.Run(ctx).Findings {
		if f.Subject == "service app" {
			t.Errorf("after applying: %s %s: %s", f.Check, f.Subject, f.Problem)
		}
	}
}

// TestRepository: a new repository has one key (single_key, not auto);
// after repokey.Add it has two and the finding is gone. A restic killed
// while holding a lock leaves a stale lock: found, fixed by doctor
// (restic unlock), gone the second time.
func TestRepository(t *testing.T) {
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	l := loadLab(t, `
repositories:
  local: {url: `+repo+`, password_file: `+pass+`}
`)
	c, err := restic.New(context.Background(), restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
	if err != nil {
		t.Fatal(err)
	}
	d := &doctor.Doctor{Lab: l, Repo: func(context.Context, string) (*restic.Client, error) { return c, nil }}
	ctx := context.Background()
	r := d.Run(ctx)
	if fs := of(r, doctor.CheckSingleKey); len(fs) != 1 || fs[0].Subject != "repository local" || fs[0].Auto ||
		fs[0].Fix != "homelab repo key add local --out FILE (then store FILE offline)" {
		t.Fatalf("single_key findings = %+v, want one for repository local naming repo key add", fs)
	}
	if _, err := repokey.Add(ctx, c, filepath.Join(t.TempDir(), "recovery.key")); err != nil {
		t.Fatal(err)
	}
	killHoldingLock(t, bin, repo, pass)
	r = d.Run(ctx)
	if fs := of(r, doctor.CheckSingleKey); len(fs) != 0 {
		t.Fatalf("single_key after repo key add: %+v", fs)
	}
	fs := of(r, doctor.CheckStaleLock)
	if len(fs) != 1 || !fs[0].Auto || !strings.Contains(fs[0].Problem, "1 stale lock") {
		t.Fatalf("stale_lock findings = %+v, want one auto", fs)
	}
	if err := d.Fix(ctx, fs[0]); err != nil {
		t.Fatal(err)
	}
	if r := d.Run(ctx); len(r.Findings) != 0 {
		t.Fatalf("after the fix: %+v", r.Findings)
	}
	if err := d.Fix(ctx, doctor.Finding{Check: doctor.CheckSingleKey}); err == nil {
		t.Fatal("Fix of a finding that is not auto did not fail")
	}
}

// killHoldingLock leaves a restic lock in repo whose holder is gone from
// this host: a restic backup holding its lock, SIGKILLed with its child.
func killHoldingLock(t *testing.T, bin, repo, pass string) {
	t.Helper()
	holdLock(t, bin, repo, pass)()
}

// holdLock starts a restic backup that holds its lock in repo until the
// returned func kills it (with its child), or until the test ends; it
// returns once the lock is there.
func holdLock(t *testing.T, bin, repo, pass string) (kill func()) {
	t.Helper()
	cmd := exec.Command(bin, "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "600")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() { once.Do(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }) }
	t.Cleanup(kill)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command(bin, "-r", repo, "--password-file", pass, "list", "locks", "--no-lock").Output()
		if len(strings.TrimSpace(string(out))) > 0 {
			return kill
		}
		if time.Now().After(deadline) {
			kill()
			t.Fatal("restic took no lock within two minutes")
		}
	}
}

// TestLiveLock: a lock whose holder runs is no stale_lock, whatever
// serve.stale_lock_age says (the fix, restic unlock, would keep it); one
// that doctor's clock calls stale while restic's does not (clocks apart)
// is reported, and its fix fails instead of saying "fixed".
func TestLiveLock(t *testing.T) {
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	l := loadLab(t, `
serve: {stale_lock_age: 1s}
repositories:
  local: {url: `+repo+`, password_file: `+pass+`}
`)
	c, err := restic.New(context.Background(), restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
	if err != nil {
		t.Fatal(err)
	}
	holdLock(t, bin, repo, pass)
	ctx := context.Background()
	repoOf := func(context.Context, string) (*restic.Client, error) { return c, nil }
	later := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	if fs := of((&doctor.Doctor{Lab: l, Repo: repoOf, Now: later(time.Minute)}).Run(ctx), doctor.CheckStaleLock); len(fs) != 0 {
		t.Errorf("a running backup's lock a minute old: %+v, want no stale_lock", fs)
	}
	d := &doctor.Doctor{Lab: l, Repo: repoOf, Now: later(time.Hour)}
	fs := of(d.Run(ctx), doctor.CheckStaleLock)
	if len(fs) != 1 {
		t.Fatalf("a lock an hour old by doctor's clock: %+v, want one stale_lock", fs)
	}
	err = d.Fix(ctx, fs[0])
	if err == nil || !strings.Contains(err.Error(), "restic unlock kept 1 lock") {
		t.Fatalf("fix of a lock restic keeps: %v, want an error naming it", err)
	}
	if locks, _ := c.Locks(ctx); len(locks) != 1 {
		t.Fatalf("locks after the failed fix: %+v, want the running backup's", locks)
	}
}

// TestCatalog: an upgrade saga left running by a dead process is
// unfinished_saga with its --resume command; a target whose last passed
// drill is older than its hourly drill schedule allows, and one whose
// drill never passed, are drill_overdue; one drilled in time is not.
func TestCatalog(t *testing.T) {
	l := loadLab(t, `
state_dir: ./state
repositories:
  local: {url: ./repo, password_file: ./restic.pass}
backups:
  late:  {provider: restic, repository: local, source: {paths: [./data]}, drill: {schedule: "0 * * * *"}}
  never: {provider: restic, repository: local, source: {paths: [./data]}, drill: {schedule: "0 * * * *"}}
  fresh: {provider: restic, repository: local, source: {paths: [./data]}, drill: {schedule: "0 * * * *"}}
  manual: {provider: restic, repository: local, source: {paths: [./data]}}
`)
	ctx := context.Background()
	store, err := catalog.Open(ctx, filepath.Join(l.StateDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	drill := func(target string, end time.Time, result catalog.Result) {
		if _, err := store.RecordDrill(ctx, catalog.Drill{RunID: target + "-" + end.Format("150405"), Target: target, SnapshotID: "abc",
			Start: end.Add(-time.Minute), End: end, Result: result}); err != nil {
			t.Fatal(err)
		}
	}
	drill("late", now.Add(-3*time.Hour), catalog.ResultOK)
	drill("late", now.Add(-10*time.Minute), catalog.ResultFailed) // a failed drill is no drill
	drill("fresh", now.Add(-20*time.Minute), catalog.ResultOK)
	drill("manual", now.Add(-100*24*time.Hour), catalog.ResultOK)
	if err := store.CreateSaga(ctx, catalog.Saga{ID: "01TESTSAGA", Kind: "upgrade", Subject: "web", State: catalog.SagaRunning,
		Plan: []string{"stop"}, Start: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r := (&doctor.Doctor{Lab: l, Catalog: store, Now: func() time.Time { return now }}).Run(ctx)
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Check+" "+f.Subject+" -> "+f.Fix)
	}
	want := []string{
		"unfinished_saga saga 01TESTSAGA -> homelab upgrade --resume 01TESTSAGA",
		"drill_overdue target late -> homelab backup verify late",
		"drill_overdue target never -> homelab backup verify never",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := of(r, doctor.CheckDrill)[0].Problem; !strings.Contains(p, "2026-03-01 09:30 UTC") || !strings.Contains(p, "by 2026-03-01 10:") {
		t.Errorf("late's problem %q does not name the last drill and when the next was due", p)
	}
}

// TestCerts: a lab with leaves and no CA yet: the CA and the leaf are
// missing, with cert init and cert issue as their fixes.
func TestCerts(t *testing.T) {
	l := loadLab(t, `
certs:
  dir: ./pki
  leaves:
    web: {sans: [web.lab]}
`)
	r := (&doctor.Doctor{Lab: l}).Run(context.Background())
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Check+" "+f.Subject+" -> "+f.Fix)
	}
	want := []string{"certificate certificate ca -> homelab cert init", "certificate certificate web -> homelab cert issue web"}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
}

// TestLeftState: the pgBackRest configuration homelab wrote for a target
// that is gone from the lab (or is no longer a pgbackrest target), with
// its repository's secrets, is a finding naming the directory and the
// configuration an archive_command may still name; a pgbackrest target's
// own is not.
func TestLeftState(t *testing.T) {
	l := loadLab(t, `
state_dir: ./state
repositories:
  local: {url: ./repo, password_file: restic.pass}
backups:
  db:
    provider: pgbackrest
    retention: {keep_last: 1}
    pgbackrest: {stanza: main, cluster: {data_dir: /srv/pg/data}, repo: {path: /srv/pgbackrest}}
  files: {provider: restic, repository: local, source: {paths: [./data]}}
`)
	// (The pgbackrest target's cluster is not there: that is an
	// unchecked finding of the PostgreSQL checks, left out here.)
	left := func(r doctor.Report) []doctor.Finding {
		var out []doctor.Finding
		for _, f := range r.Findings {
			if f.Check == doctor.CheckLeftState {
				out = append(out, f)
			}
		}
		return out
	}
	if found := left((&doctor.Doctor{Lab: l}).Run(context.Background())); len(found) != 0 {
		t.Fatalf("findings without any pgbackrest state: %+v", found)
	}
	for _, name := range []string{"db", "old", "files"} {
		if err := os.MkdirAll(filepath.Join(pgbackrest.Dir(l.StateDir, name), "conf.d"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pgbackrest.ConfigPath(l.StateDir, name), []byte("[global]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(pgbackrest.Dir(l.StateDir, "old"), "conf.d", "secrets.conf"), []byte("[global]\nrepo1-cipher-pass=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := (&doctor.Doctor{Lab: l}).Run(context.Background())
	var got []string
	for _, f := range left(r) {
		got = append(got, f.Check+" "+f.Subject)
		if !strings.Contains(f.Fix, "rm -r "+pgbackrest.Dir(l.StateDir, strings.TrimPrefix(f.Subject, "target "))) ||
			!strings.Contains(f.Fix, pgbackrest.ConfigPath(l.StateDir, strings.TrimPrefix(f.Subject, "target "))) {
			t.Errorf("fix of %s: %q", f.Subject, f.Fix)
		}
		if secrets := strings.Contains(f.Problem, "secrets.conf"); secrets != (f.Subject == "target old") {
			t.Errorf("problem of %s: %q", f.Subject, f.Problem)
		}
	}
	if want := []string{"left_pgbackrest target files", "left_pgbackrest target old"}; !slices.Equal(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if !slices.Contains(r.Checked, "pgbackrest configurations") {
		t.Errorf("checked %q", r.Checked)
	}
}

// TestLeftStateQuoted: the Fix's rm names a state_dir with a space (or a
// quote) as one argument to sh, not as two paths.
func TestLeftStateQuoted(t *testing.T) {
	l := loadLab(t, "state_dir: \"./my lab's state\"\n")
	dir := pgbackrest.Dir(l.StateDir, "old")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var fixes []string
	for _, f := range (&doctor.Doctor{Lab: l}).Run(context.Background()).Findings {
		if f.Check == doctor.CheckLeftState {
			fixes = append(fixes, f.Fix)
		}
	}
	quoted := "'" + strings.ReplaceAll(dir, "'", `'\''`) + "'"
	if len(fixes) != 1 || !strings.HasSuffix(fixes[0], ": rm -r "+quoted) {
		t.Fatalf("fixes %q, want one ending in rm -r %s", fixes, quoted)
	}
}
