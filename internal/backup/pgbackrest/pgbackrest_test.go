package pgbackrest

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// env is a target on a real cluster archiving into a real repository.
type env struct {
	p     *Provider
	t     backup.Target
	pg    *testenv.PG
	state string
}

// newEnv starts a cluster with archive_command set to archive (empty: the
// target's own pgbackrest archive-push) and returns the target, set up
// (stanza-create and check) when setup is true.
func newEnv(t *testing.T, archive string, setup bool) *env {
	t.Helper()
	testenv.PgBackRest(t)
	state := testenv.SearchableDir(t)
	spec := &lab.Backup{Name: "db", Provider: lab.ProviderPgBackRest, Retention: lab.Retention{KeepLast: 1},
		PgBackRest: &lab.PgBackRest{Stanza: "main", ProcessMax: 2, Database: "postgres",
			Repo: lab.PgBackRestRepo{Path: filepath.Join(testenv.OwnedDir(t), "repo")}}}
	if archive == "" {
		archive = ArchiveCommand(state, spec)
	}
	pg := testenv.PostgresArchiving(t, archive)
	spec.PgBackRest.Cluster = lab.PgBackRestCluster{DataDir: filepath.Join(pg.Dir, "data"), Port: pg.Port,
		SocketDir: pg.Dir, OSUser: "postgres", User: pg.User}
	if os.Geteuid() != 0 {
		spec.PgBackRest.Cluster.OSUser = "root" // run as ourselves
	}
	e := &env{p: &Provider{StateDir: state}, t: backup.Target{Spec: spec}, pg: pg, state: state}
	if setup {
		if err := e.p.Setup(context.Background(), e.t); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) backup(t *testing.T, typ string) backup.Snapshot {
	t.Helper()
	tg := e.t
	tg.Type = typ
	s, err := e.p.Backup(context.Background(), tg, "run-"+typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Tags, "type:"+typ) {
		t.Fatalf("backup %s: tags %v, want type:%s", s.ID, s.Tags, typ)
	}
	return s
}

// restored is a cluster Restore started on a port: connect with the
// source's superuser and password (the restored pg_hba.conf is the
// source's), stopped on cleanup.
func (e *env) restore(t *testing.T, snap backup.Snapshot, rec backup.Recovery) *testenv.PG {
	t.Helper()
	dir := filepath.Join(testenv.OwnedDir(t), "restored")
	port := testenv.FreePort(t)
	if err := e.p.Restore(context.Background(), e.t, snap, backup.Destination{Path: dir, Port: port, Recovery: rec}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := e.p.runner(e.t.Spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cluster(dir, port).stop(context.Background()) })
	out := *e.pg
	out.Port, out.Dir = port, dir
	return &out
}

// tableState is each public table's row count and the md5 of its rows in
// order (an ordered dump).
func tableState(t *testing.T, pg *testenv.PG) map[string]string {
	t.Helper()
	out := pg.PSQL(t, "postgres", `select string_agg(tablename, ' ' order by tablename) from pg_tables where schemaname = 'public'`)
	state := map[string]string{}
	for _, tbl := range strings.Fields(out) {
		state[tbl] = pg.PSQL(t, "postgres", "select count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\\n' order by x::text)), '') from "+tbl+" x")
	}
	return state
}

func pgbench(t *testing.T, pg *testenv.PG, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		testenv.Missing(t, "pgbench not found")
	}
	cmd := exec.Command(bin, append(args, "postgres")...)
	cmd.Env = append(os.Environ(), pg.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
}

// TestPITR is the test: pgbench data, a full backup, marker rows,
// the time T, DROP TABLE; a restore to T has the table back with the
// markers and nothing written after T. Then an incr backup, whose restore
// (latest, to the end of the archive) equals the live cluster table by
// table (row counts and an ordered-dump md5).
func TestPITR(t *testing.T) {
	e := newEnv(t, "", true)
	ctx := context.Background()
	pgbench(t, e.pg, "-i", "-s", "2", "-q")
	full := e.backup(t, TypeFull)

	e.pg.PSQL(t, "postgres", "create table markers (n int, note text)")
	e.pg.PSQL(t, "postgres", "insert into markers select g, 'before T' from generate_series(1, 3) g")
	T := e.pg.PSQL(t, "postgres", "select clock_timestamp()::text")
	// Commits after T: wait until the server's clock has passed T.
	for e.pg.PSQL(t, "postgres", "select clock_timestamp() > '"+T+"'::timestamptz") != "t" {
	}
	e.pg.PSQL(t, "postgres", "insert into markers values (4, 'after T')")
	e.pg.PSQL(t, "postgres", "drop table pgbench_accounts")
	// check switches the WAL segment and waits until it is archived.
	if err := e.p.Setup(ctx, e.t); err != nil {
		t.Fatal(err)
	}

	at := e.restore(t, full, backup.Recovery{Time: T})
	if got := at.PSQL(t, "postgres", "select string_agg(n::text, ',' order by n) from markers"); got != "1,2,3" {
		t.Errorf("markers restored to T: %q, want 1,2,3", got)
	}
	if got := at.PSQL(t, "postgres", "select count(*) from pgbench_accounts"); got != "200000" {
		t.Errorf("pgbench_accounts restored to T: %s rows, want 200000", got)
	}

	e.pg.PSQL(t, "postgres", "insert into markers select g, 'later' from generate_series(5, 5000) g")
	e.pg.PSQL(t, "postgres", "update pgbench_tellers set tbalance = tbalance + tid")
	incr := e.backup(t, TypeIncr)
	if !strings.HasPrefix(incr.ID, full.ID+"_") {
		t.Errorf("incr %s does not depend on full %s", incr.ID, full.ID)
	}
	latest := e.restore(t, incr, backup.Recovery{})
	want, got := tableState(t, e.pg), tableState(t, latest)
	if len(want) < 4 {
		t.Fatalf("live tables: %v", want)
	}
	for tbl, w := range want {
		if got[tbl] != w {
			t.Errorf("table %s: restored %q, live %q", tbl, got[tbl], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("restored tables %v, live %v", got, want)
	}
}

// TestImmediate: a full backup, then committed writes that are archived;
// a restore of the full with Immediate has exactly the data taken right
// before the backup (promoted), one to the end of the archive has the
// later writes too, and a restore without a port is left configured to
// stop at consistency and promote.
func TestImmediate(t *testing.T) {
	e := newEnv(t, "", true)
	ctx := context.Background()
	pgbench(t, e.pg, "-i", "-s", "1", "-q")
	e.pg.PSQL(t, "postgres", "create table markers (n int, note text)")
	e.pg.PSQL(t, "postgres", "insert into markers select g, 'before the backup' from generate_series(1, 3) g")
	before := tableState(t, e.pg)
	full := e.backup(t, TypeFull)

	e.pg.PSQL(t, "postgres", "insert into markers select g, 'after the backup' from generate_series(4, 500) g")
	e.pg.PSQL(t, "postgres", "update pgbench_tellers set tbalance = tbalance + tid")
	e.pg.PSQL(t, "postgres", "create table later (n int)")
	e.pg.PSQL(t, "postgres", "insert into later values (1)")
	// check switches the WAL segment and waits until it is archived.
	if err := e.p.Setup(ctx, e.t); err != nil {
		t.Fatal(err)
	}
	after := tableState(t, e.pg)
	if maps.Equal(before, after) {
		t.Fatalf("the writes after the backup changed nothing: %v", after)
	}

	for _, tc := range []struct {
		name string
		rec  backup.Recovery
		want map[string]string
	}{
		{"immediate", backup.Recovery{Immediate: true}, before},
		{"end of the archive", backup.Recovery{}, after},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg := e.restore(t, full, tc.rec)
			if got := pg.PSQL(t, "postgres", "select pg_is_in_recovery()"); got != "f" {
				t.Errorf("pg_is_in_recovery() = %s, want f (promoted)", got)
			}
			if got := tableState(t, pg); !maps.Equal(got, tc.want) {
				t.Errorf("restored tables:\n%v\nwant:\n%v", got, tc.want)
			}
		})
	}

	dir := filepath.Join(testenv.OwnedDir(t), "stopped")
	if err := e.p.Restore(ctx, e.t, full, backup.Destination{Path: dir, Recovery: backup.Recovery{Immediate: true}}, nil); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"recovery_target = 'immediate'", "recovery_target_action = 'promote'"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("postgresql.auto.conf of a restore without a port lacks %q:\n%s", want, conf)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a restore without a port left a server running (postmaster.pid: %v)", err)
	}
}

// TestDrill: the throwaway-instance drill passes on a good repository and
// its instance is gone afterwards; with a backup file in the repository
// damaged it fails, and the instance is gone too.
func TestDrill(t *testing.T) {
	e := newEnv(t, "", true)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a hang's limit
	defer cancel()
	pgbench(t, e.pg, "-i", "-s", "1", "-q")
	e.t.Spec.Drill.Checks = []lab.Check{{SQL: "select count(*) = 100000 from pgbench_accounts"}}
	snap := e.backup(t, TypeFull)

	rep, err := e.p.Drill(ctx, e.t, snap, "20261206T000000Z-good")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failed()) > 0 || len(rep.Checks) != 2 {
		t.Fatalf("drill checks: %s", rep.Output())
	}
	if !strings.Contains(rep.Checks[0].Detail, "recovered to") {
		t.Errorf("recovery check: %q", rep.Checks[0].Detail)
	}
	if rep.RTO <= 0 {
		t.Errorf("RTO %v", rep.RTO)
	}
	assertGone(t, rep.Place)

	// Damage the relation files of pgbench_accounts in the backup.
	rel := e.pg.PSQL(t, "postgres", "select pg_relation_filepath('pgbench_accounts')")
	testenv.DamageBackupFiles(t, filepath.Join(e.t.Spec.PgBackRest.Repo.Path, "backup", "main", snap.ID, "pg_data", rel+"*"))
	rep, err = e.p.Drill(ctx, e.t, snap, "20261206T000001Z-bad")
	if err == nil && len(rep.Failed()) == 0 {
		t.Fatalf("drill of a damaged backup passed: %s", rep.Output())
	}
	t.Logf("damaged: %v %s", err, rep.Output())
	assertGone(t, rep.Place)
}

func assertGone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drill directory %s is still there (%v)", dir, err)
	}
}

// TestPrune: keep_last 1 full; the older full goes with its incr, unless
// a protected set (the newest drilled) belongs to its group.
func TestPrune(t *testing.T) {
	e := newEnv(t, "", true)
	ctx := context.Background()
	f1 := e.backup(t, TypeFull)
	i1 := e.backup(t, TypeIncr)
	f2 := e.backup(t, TypeFull)

	plan, err := e.p.PlanPrune(ctx, e.t, []string{i1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Remove) != 0 || ids(plan.Protected) != f1.ID+" "+i1.ID || ids(plan.Keep) != f2.ID {
		t.Fatalf("plan with %s protected: keep %s, protected %s, remove %s", i1.ID, ids(plan.Keep), ids(plan.Protected), ids(plan.Remove))
	}
	plan, err = e.p.PlanPrune(ctx, e.t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids(plan.Remove) != f1.ID+" "+i1.ID {
		t.Fatalf("plan: remove %s", ids(plan.Remove))
	}
	if err := e.p.Prune(ctx, e.t, plan); err != nil {
		t.Fatal(err)
	}
	left, err := e.p.List(ctx, e.t)
	if err != nil {
		t.Fatal(err)
	}
	if ids(left) != f2.ID {
		t.Fatalf("after prune: %s, want %s", ids(left), f2.ID)
	}
	w, err := e.p.Window(ctx, e.t)
	if err != nil {
		t.Fatal(err)
	}
	if !w.From.Equal(f2.Time) || w.WALTo == "" || w.WALTo < w.WALFrom {
		t.Errorf("window %+v, want from %s", w, f2.Time)
	}
}

func ids(s []backup.Snapshot) string {
	var out []string
	for _, x := range s {
		out = append(out, x.ID)
	}
	return strings.Join(out, " ")
}

// TestBrokenArchiving: archive_command not pgbackrest's, or pushing to
// another stanza: setup's check, the repository check (backup check) and
// a backup fail with one line naming the postgresql.conf lines. A backup
// of a stanza never created names backup setup.
func TestBrokenArchiving(t *testing.T) {
	for name, archive := range map[string]string{
		"failing command": "false",
		// pgBackRest waits archive_timeout (5s here) for the segment
		// in each of setup, check and backup.
		"wrong stanza": "pgbackrest --stanza=other archive-push %p",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, archive, false)
			e.t.Spec.PgBackRest.ArchiveTimeout = 5 * time.Second
			ctx := context.Background()
			oneLine := func(what string, err error) {
				t.Helper()
				var ae *ArchiveError
				if !errors.As(err, &ae) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "archive_command = '"+ArchiveCommand(e.state, e.t.Spec)+"'") {
					t.Errorf("%s: %v, want one line naming the fix", what, err)
				}
				t.Logf("%s: %v", what, err)
			}
			tg := e.t
			tg.Type = TypeFull
			_, err := e.p.Backup(ctx, tg, "r", nil)
			if !errors.Is(err, ErrNoStanza) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "run homelab backup setup db") {
				t.Errorf("backup before setup: %v, want one line naming backup setup", err)
			}
			oneLine("setup", e.p.Setup(ctx, e.t))
			oneLine("check", e.p.VerifyRepository(ctx, e.t))
			_, err = e.p.Backup(ctx, tg, "r", nil)
			oneLine("backup", err)
		})
	}
}

// TestDueType: full without a full; full or diff when their schedule had a
// slot since the newest of that type; incr otherwise.
func TestDueType(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	set := func(typ, start string) Set {
		var s Set
		s.Type, s.Timestamp.Start = typ, at(start).Unix()
		return s
	}
	b := &lab.Backup{Name: "db", PgBackRest: &lab.PgBackRest{Schedules: lab.PgBackRestSchedules{Full: "0 1 * * 0", Diff: "0 1 * * *"}}}
	now := at("2026-12-08T12:00:00Z") // a Tuesday
	for _, c := range []struct {
		sets []Set
		want string
	}{
		{nil, TypeFull},
		{[]Set{set("full", "2026-12-01T01:00:00Z")}, TypeFull},                                      // Sunday 6th's slot missed
		{[]Set{set("full", "2026-12-06T01:00:00Z")}, TypeDiff},                                      // Tuesday 01:00 missed
		{[]Set{set("full", "2026-12-06T01:00:00Z"), set("diff", "2026-12-08T01:00:00Z")}, TypeIncr}, // all done
		{[]Set{set("full", "2026-12-06T01:00:00Z"), set("incr", "2026-12-08T01:00:00Z")}, TypeDiff}, // an incr is no diff
	} {
		got, err := DueType(b, c.sets, now)
		if err != nil || got != c.want {
			t.Errorf("DueType(%v) = %q, %v; want %s", c.sets, got, err, c.want)
		}
	}
}

// TestVerifyRepositoryClusterDown: with the cluster stopped, pgbackrest
// check fails, and pgbackrest verify, which reads the repository only,
// still runs: the error names both the check's failure and the damage
// verify found.
func TestVerifyRepositoryClusterDown(t *testing.T) {
	e := newEnv(t, "", true)
	ctx := context.Background()
	snap := e.backup(t, TypeFull)
	testenv.DamageBackupFiles(t, filepath.Join(e.t.Spec.PgBackRest.Repo.Path, "backup", "main", snap.ID, "pg_data", "base", "*", "*"))
	r, err := e.p.runner(e.t.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cluster(e.t.Spec.PgBackRest.Cluster.DataDir, 0).stop(ctx); err != nil {
		t.Fatal(err)
	}
	err = e.p.VerifyRepository(ctx, e.t)
	if err == nil || !strings.Contains(err.Error(), "target db: check: ") || !strings.Contains(err.Error(), "pgbackrest verify found damage: backup: "+snap.ID) {
		t.Errorf("check and verify of a damaged repository, cluster down: %v; want the check's failure and the damage", err)
	}
}
