package clusterrestore_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/clusterrestore"
	"homelab/internal/clusterrestore/clusterrestoretest"
	"homelab/internal/lab"
	"homelab/internal/saga"
	"homelab/internal/testenv"
)

// env is the fixture's lab with its restorer and the target set up
// (stanza-create and check).
type env struct {
	f    *clusterrestoretest.Fixture
	r    *clusterrestore.Restorer
	prov *pgbackrest.Provider
	t    backup.Target
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with change run on the fixture before its lab is
// loaded.
func newEnvWith(t *testing.T, change func(f *clusterrestoretest.Fixture)) *env {
	t.Helper()
	f := clusterrestoretest.New(t)
	if change != nil {
		change(f)
	}
	l, err := lab.Load(f.Lab)
	if err != nil {
		t.Fatal(err)
	}
	r, closeFn, err := (&app.App{Lab: l}).ClusterRestorer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	r.Upgrader.Poll = 100 * time.Millisecond // the gate probes this often
	r.HealthyWithin = 20 * time.Second       // the gate that fails waits this long
	e := &env{f: f, r: r, prov: r.Backups.Providers[lab.ProviderPgBackRest].(*pgbackrest.Provider)}
	if e.t, _, err = r.Backups.Target(context.Background(), "db"); err != nil {
		t.Fatal(err)
	}
	e.archive(t)
	return e
}

// archive runs pgbackrest check: it switches the WAL segment and waits
// until it is in the repository.
func (e *env) archive(t *testing.T) {
	t.Helper()
	if err := e.prov.Setup(context.Background(), e.t); err != nil {
		t.Fatal(err)
	}
}

func (e *env) full(t *testing.T) backup.Snapshot {
	t.Helper()
	tg := e.t
	tg.Type = pgbackrest.TypeFull
	s, err := e.prov.Backup(context.Background(), tg, "run-full", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) psql(t *testing.T, sql string) string {
	t.Helper()
	return e.f.PG.PSQL(t, "postgres", sql)
}

// TestPITRInPlace: data, a full backup, marker rows, the time T, a marker
// after T and DROP TABLE. An in-place restore to T has the table back with
// the markers before T and nothing after; the app was stopped and runs
// again (a new process), the old data directory is gone, and the restored
// cluster archives into the repository (check passes on it).
func TestPITRInPlace(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang's limit
	defer cancel()
	e.psql(t, "create table accounts as select g as id, md5(g::text) as v from generate_series(1, 50000) g")
	e.full(t)
	e.psql(t, "create table markers (n int, note text)")
	e.psql(t, "insert into markers select g, 'before T' from generate_series(1, 3) g")
	T := e.psql(t, "select clock_timestamp()::text")
	for e.psql(t, "select clock_timestamp() > '"+T+"'::timestamptz") != "t" {
	}
	e.psql(t, "insert into markers values (4, 'after T')")
	e.psql(t, "drop table accounts")
	e.archive(t)
	appBefore := e.f.AppPID()

	plan, err := e.r.Plan(ctx, "db", "latest", backup.Recovery{Time: T}, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Aside != e.f.Data+".homelab-old-"+plan.SagaID || plan.Service != "pg" || strings.Join(plan.Dependents, ",") != "app" {
		t.Fatalf("plan: %+v", plan)
	}
	rec, err := e.r.Run(ctx, plan)
	if err != nil || rec.State != saga.Done {
		log, _ := os.ReadFile(filepath.Join(e.f.PG.Dir, "service.log"))
		t.Fatalf("in-place restore: %s, %v\nserver log:\n%s", rec.State, err, log)
	}
	if got := e.psql(t, "select string_agg(n::text, ',' order by n) from markers"); got != "1,2,3" {
		t.Errorf("markers after the restore to T: %q, want 1,2,3", got)
	}
	if got := e.psql(t, "select count(*) from accounts"); got != "50000" {
		t.Errorf("accounts after the restore to T: %s rows, want 50000", got)
	}
	if e.psql(t, "select pg_is_in_recovery()") != "f" {
		t.Error("the restored cluster is still in recovery")
	}
	if pid := e.f.AppPID(); !e.f.Running("app") || pid == appBefore {
		t.Errorf("app: running %v, pid %s (before %s): want it stopped and started again", e.f.Running("app"), pid, appBefore)
	}
	if left := e.f.Asides(); len(left) > 0 {
		t.Errorf("left beside the data directory: %v", left)
	}
	runs, err := e.r.Backups.Catalog.Runs(ctx, catalog.RunFilter{Target: "db", Kind: catalog.KindRestore})
	if err != nil || len(runs) != 1 || runs[0].Result != catalog.ResultOK || runs[0].SnapshotID != plan.Snapshot.ID {
		t.Errorf("restore runs recorded: %+v, %v; want one, ok, of %s", runs, err, plan.Snapshot.ID)
	}
	// The restored cluster is the live one: it archives (a new timeline),
	// its held archive_command given back.
	if got := e.psql(t, "show archive_command"); got == "" {
		t.Error("archive_command is still held empty after the restore")
	}
	e.archive(t)
	if tl := e.psql(t, "select timeline_id from pg_control_checkpoint()"); tl == "1" {
		t.Errorf("timeline %s after a point-in-time recovery, want a new one", tl)
	}
}

// TestImmediateInPlace: a full backup, then writes that are archived; an
// in-place restore of the full with Immediate serves exactly the tables
// taken right before the backup, promoted on a new timeline, and names
// its target in the restore step.
func TestImmediateInPlace(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang's limit
	defer cancel()
	e.psql(t, "create table accounts as select g as id, md5(g::text) as v from generate_series(1, 1000) g")
	before := e.f.Tables(t)
	snap := e.full(t)
	e.psql(t, "insert into accounts select g, 'after the backup' from generate_series(1001, 1100) g")
	e.psql(t, "create table later (x int); insert into later values (1)")
	e.archive(t)

	plan, err := e.r.Plan(ctx, "db", snap.ID, backup.Recovery{Immediate: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "restore " + snap.ID + " to immediate (the backup's end)"; !slices.Contains(clusterrestore.StepNames(plan), want) {
		t.Errorf("steps %q, want %q among them", clusterrestore.StepNames(plan), want)
	}
	rec, err := e.r.Run(ctx, plan)
	if err != nil || rec.State != saga.Done {
		log, _ := os.ReadFile(filepath.Join(e.f.PG.Dir, "service.log"))
		t.Fatalf("in-place restore: %s, %v\nserver log:\n%s", rec.State, err, log)
	}
	if got := e.f.Tables(t); !maps.Equal(got, before) {
		t.Errorf("tables after the immediate restore:\n%v\nwant (before the backup):\n%v", got, before)
	}
	if e.psql(t, "select pg_is_in_recovery()") != "f" {
		t.Error("the restored cluster is still in recovery")
	}
	e.archive(t)
	if tl := e.psql(t, "select timeline_id from pg_control_checkpoint()"); tl == "1" {
		t.Errorf("timeline %s after an immediate recovery, want a new one", tl)
	}
}

// TestFailedRestorePutsOldDataBack: a backup file damaged in the
// repository fails the restore; the old data directory is back, the
// cluster serves exactly what it served before, the app runs again, and
// nothing is left beside the data directory.
func TestFailedRestorePutsOldDataBack(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang's limit
	defer cancel()
	e.psql(t, "create table accounts as select g as id, md5(g::text) as v from generate_series(1, 50000) g")
	snap := e.full(t)
	e.psql(t, "insert into accounts select g, 'after the backup' from generate_series(50001, 50100) g")
	e.psql(t, "create table later (x int); insert into later values (1), (2)")
	e.archive(t)
	before := e.f.Tables(t)

	rel := e.psql(t, "select pg_relation_filepath('accounts')")
	testenv.DamageBackupFiles(t, filepath.Join(e.t.Spec.PgBackRest.Repo.Path, "backup", "main", snap.ID, "pg_data", rel+"*"))
	plan, err := e.r.Plan(ctx, "db", snap.ID, backup.Recovery{}, false)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.r.Run(ctx, plan)
	if err == nil || rec.State != saga.Compensated {
		t.Fatalf("restore of a damaged backup: %s, %v; want compensated", rec.State, err)
	}
	t.Logf("failed as wanted: %v", err)
	e.f.AsBefore(t, before)
}

// TestFailedGatePutsOldDataBack: the dependent's probe needs a table made
// after the recovery target (a restore point), so the app fails its
// health gate on the restored cluster; the restore is undone and the
// cluster serves its old data, the app passing its probe again.
func TestFailedGatePutsOldDataBack(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang's limit
	defer cancel()
	e.psql(t, "create table accounts as select g as id from generate_series(1, 1000) g")
	snap := e.full(t)
	e.psql(t, "select pg_create_restore_point('before-app-table')")
	e.psql(t, "create table needed_by_app (x int); insert into needed_by_app values (1)")
	e.archive(t)
	if err := os.WriteFile(filepath.Join(e.f.Dir, "app-probe.sql"), []byte("select x from needed_by_app"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := e.f.Tables(t)
	plan, err := e.r.Plan(ctx, "db", snap.ID, backup.Recovery{Name: "before-app-table"}, false)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.r.Run(ctx, plan)
	if err == nil || rec.State != saga.Compensated || !strings.Contains(err.Error(), `step "start dependents" failed`) {
		t.Fatalf("restore whose app fails its gate: %s, %v; want compensated after start dependents", rec.State, err)
	}
	e.f.AsBefore(t, before)
}

// TestSymlinkedDataDir: data_dir is a symbolic link to the cluster's real
// directory, given as it is and with a trailing slash. The restored cluster goes into
// the real directory (the link still points to it, on the same
// filesystem), and the old cluster is removed, not orphaned behind a
// renamed link.
func TestSymlinkedDataDir(t *testing.T) {
	for _, slash := range []string{"", "/"} {
		t.Run("data_dir"+slash, func(t *testing.T) { symlinkedDataDir(t, slash) })
	}
}

func symlinkedDataDir(t *testing.T, slash string) {
	var real string
	e := newEnvWith(t, func(f *clusterrestoretest.Fixture) {
		real = f.Data + "-real"
		f.Service(t, "pg", "stop")
		if err := os.Rename(f.Data, real); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, f.Data); err != nil {
			t.Fatal(err)
		}
		f.Service(t, "pg", "start")
		b, err := os.ReadFile(f.Lab)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), "data_dir: "+f.Data+",", "data_dir: "+f.Data+slash+",", 1))
		if err := os.WriteFile(f.Lab, b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang's limit
	defer cancel()
	e.psql(t, "create table accounts as select g as id from generate_series(1, 1000) g")
	e.full(t)
	e.psql(t, "create table later (x int)")
	e.archive(t)
	plan, err := e.r.Plan(ctx, "db", "latest", backup.Recovery{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.DataDir != real || plan.Aside != real+".homelab-old-"+plan.SagaID {
		t.Errorf("plan: data dir %s, aside %s; want the link's target %s and beside it", plan.DataDir, plan.Aside, real)
	}
	rec, err := e.r.Run(ctx, plan)
	if err != nil || rec.State != saga.Done {
		t.Fatalf("in-place restore: %s, %v", rec.State, err)
	}
	if got, err := os.Readlink(e.f.Data); err != nil || got != real {
		t.Errorf("data_dir %s after the restore: link to %q (%v); want it still a link to %s", e.f.Data, got, err, real)
	}
	if got := e.psql(t, "select count(*) from accounts"); got != "1000" {
		t.Errorf("accounts: %s rows, want 1000", got)
	}
	if e.psql(t, "select setting from pg_settings where name = 'data_directory'") != e.f.Data {
		t.Error("the server does not run in data_dir")
	}
	left, _ := filepath.Glob(real + ".homelab-*")
	if len(left) > 0 || len(e.f.Asides()) > 0 {
		t.Errorf("left beside the data directory: %v %v", left, e.f.Asides())
	}
	if _, err := os.Stat(filepath.Join(real, "PG_VERSION")); err != nil {
		t.Errorf("the link's target holds no cluster: %v", err)
	}
}
