package backup

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/lock"
)

// TestReconcile: runs a killed homelab left running in the catalog are
// recorded there as interrupted (they stayed running forever before, in
// /api/v1/runs and the metrics); a run whose lock a process holds is at
// work and left alone.
func TestReconcile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	now := start.Add(time.Hour)
	l := &lab.Lab{StateDir: dir}
	m := &Manager{Lab: l, Catalog: store, Now: func() time.Time { return now }}
	begin := func(r catalog.Run) catalog.Run {
		r.Start = start
		r, err := store.StartRun(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	abandonedBackup := begin(catalog.Run{RunID: "a", Kind: catalog.KindBackup, Target: "files", Repository: "local"})
	abandonedCheck := begin(catalog.Run{RunID: "b", Kind: catalog.KindCheck, Target: "local", Repository: "local"})
	atWork := begin(catalog.Run{RunID: "c", Kind: catalog.KindPrune, Target: "db", Repository: "local"})
	abandonedDrill, err := store.RecordDrill(ctx, catalog.Drill{RunID: "d", Target: "files", SnapshotID: "s1", Start: start, Result: catalog.ResultRunning})
	if err != nil {
		t.Fatal(err)
	}
	drillAtWork, err := store.RecordDrill(ctx, catalog.Drill{RunID: "e", Target: "db", SnapshotID: "s2", Start: start, Result: catalog.ResultRunning})
	if err != nil {
		t.Fatal(err)
	}
	held, err := lock.Acquire(ctx, dir, "db", false)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	closed, err := m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(closed) != 3 {
		t.Fatalf("closed %+v, want the backup, the check and the files drill", closed)
	}
	for _, want := range []catalog.Run{abandonedBackup, abandonedCheck} {
		runs, err := store.Runs(ctx, catalog.RunFilter{Target: want.Target, Kind: want.Kind})
		if err != nil || len(runs) != 1 {
			t.Fatalf("runs of %s: %+v, %v", want.Target, runs, err)
		}
		if r := runs[0]; r.Result != catalog.ResultInterrupted || r.Error != AbandonedRunError || !r.End.Equal(now) {
			t.Errorf("%s %s after Reconcile: %+v", want.Kind, want.Target, r)
		}
	}
	if runs, _ := store.Runs(ctx, catalog.RunFilter{Target: atWork.Target}); len(runs) != 1 || runs[0].Result != catalog.ResultRunning {
		t.Errorf("the run at work (its lock held) was touched: %+v", runs)
	}
	drills, _ := store.Drills(ctx, catalog.DrillFilter{})
	for _, d := range drills {
		switch d.ID {
		case abandonedDrill.ID:
			if d.Result != catalog.ResultInterrupted || d.Error != AbandonedRunError || !d.End.Equal(now) {
				t.Errorf("abandoned drill after Reconcile: %+v", d)
			}
		case drillAtWork.ID:
			if d.Result != catalog.ResultRunning {
				t.Errorf("the drill at work (its lock held) was touched: %+v", d)
			}
		}
	}
	evs, _ := store.Events(ctx, 0)
	if len(evs) != 3 {
		t.Errorf("events %+v, want one per closed run", evs)
	}
	// Idempotent: nothing more to close.
	if closed, err := m.Reconcile(ctx); err != nil || len(closed) != 0 {
		t.Errorf("second Reconcile closed %+v, %v", closed, err)
	}
}
