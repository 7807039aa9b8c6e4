package pgbackrest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// TestManager runs a pgbackrest target through backup.Manager with a real
// catalog: the due type (full first), the recorded run and drill, the
// floor (the newest drilled backup is kept by prune), and a damaged
// repository failing the drill (recorded, its instance gone) and backup
// check (pgbackrest verify).
func TestManager(t *testing.T) {
	e := newEnv(t, "", true)
	ctx := context.Background()
	pgbench(t, e.pg, "-i", "-s", "1", "-q")
	spec := e.t.Spec
	spec.Drill = lab.Drill{Timeout: 10 * time.Minute, Checks: []lab.Check{{SQL: "select count(*) = 100000 from pgbench_accounts"}}}
	m, store := e.manager(t)

	rep := m.Backup(ctx, "db")
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if r := rep.Run; r.Result != catalog.ResultOK || !strings.HasSuffix(r.SnapshotID, "F") || r.Bytes == 0 || r.Provider != lab.ProviderPgBackRest {
		t.Fatalf("recorded run %+v", r)
	}
	first := rep.Run.SnapshotID
	if out := m.Verify(ctx, "db"); out.Err != nil || out.Drill.Result != catalog.ResultOK || out.Drill.SnapshotID != first {
		t.Fatalf("drill: %v %+v", out.Err, out.Drill)
	}
	m.BackupType = TypeFull
	rep = m.Backup(ctx, "db")
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	second := rep.Run.SnapshotID
	plan, err := m.PlanPrune(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if ids(plan.Protected) != first || len(plan.Remove) != 0 || ids(plan.Keep) != second {
		t.Fatalf("plan: keep %s protected %s remove %s; want %s protected (newest drilled)", ids(plan.Keep), ids(plan.Protected), ids(plan.Remove), first)
	}

	if rep := m.CheckTarget(ctx, "db"); rep.Err != nil || rep.Run.Repository != "pgbackrest:db" {
		t.Fatalf("check of a good repository: %v %+v", rep.Err, rep.Run)
	}
	testenv.DamageBackupFiles(t, filepath.Join(spec.PgBackRest.Repo.Path, "backup", "main", second, "pg_data", "base", "*", "*"))
	out := m.Verify(ctx, "db")
	if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed || out.Drill.SnapshotID != second {
		t.Fatalf("drill of a damaged backup: %v %+v", out.Err, out.Drill)
	}
	assertGone(t, out.Report.Place)
	drills, err := store.Drills(ctx, catalog.DrillFilter{Target: "db"})
	if err != nil || len(drills) != 2 || drills[0].Result != catalog.ResultFailed {
		t.Fatalf("recorded drills %+v %v", drills, err)
	}
	if rep := m.CheckTarget(ctx, "db"); rep.Err == nil || rep.Run.Result != catalog.ResultFailed {
		t.Fatalf("check of a damaged repository: %v %+v", rep.Err, rep.Run)
	}
}

// manager is a backup.Manager over e's target "db" with a real catalog in
// its state directory, closed when the test ends.
func (e *env) manager(t *testing.T) (*backup.Manager, *catalog.SQLite) {
	t.Helper()
	store, err := catalog.Open(context.Background(), filepath.Join(e.state, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &backup.Manager{Lab: &lab.Lab{StateDir: e.state, Backups: map[string]*lab.Backup{"db": e.t.Spec}},
		Catalog: store, Providers: map[string]backup.Provider{lab.ProviderPgBackRest: e.p}}, store
}
