package backup_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/backuptest"
	"homelab/internal/backup/files"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/restic"
	"homelab/internal/saga"
)

// env is a lab on disk with a fresh repository and catalog.
type env = backuptest.Env

// newEnv writes lab.yaml (backups given as YAML under "backups:") next to a
// fresh restic repository and returns a Manager over it.
func newEnv(t *testing.T, backupsYAML string) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir(), "", backupsYAML)
}

// newEnvIn is newEnv with the lab file in dir and a services section.
func newEnvIn(t *testing.T, dir, servicesYAML, backupsYAML string) *env {
	t.Helper()
	return backuptest.New(t, dir, map[string]backup.Provider{"restic": &files.Provider{}}, servicesYAML, backupsYAML)
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHooks(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	marker := filepath.Join(t.TempDir(), "after")
	e := newEnv(t, fmt.Sprintf(`  ok:
    provider: restic
    repository: local
    source: {paths: [%[1]s]}
    hooks:
      before: ["true"]
      after: ["echo \"$HOMELAB_RESULT $HOMELAB_TARGET\" >> %[2]s"]
  before-fails:
    provider: restic
    repository: local
    source: {paths: [%[1]s]}
    hooks:
      before: ["echo nope >&2; exit 4"]
      after: ["echo \"$HOMELAB_RESULT $HOMELAB_TARGET\" >> %[2]s"]
  after-fails:
    provider: restic
    repository: local
    source: {paths: [%[1]s]}
    hooks:
      after: ["exit 5"]
`, src, marker))
	ctx := context.Background()
	e.MustBackup(t, "ok")
	rep := e.M.Backup(ctx, "before-fails")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "before hook") || rep.Run.SnapshotID != "" {
		t.Fatalf("failing before hook: %+v", rep)
	}
	got, _ := os.ReadFile(marker)
	if string(got) != "ok ok\nfailed before-fails\n" {
		t.Errorf("after hooks ran as %q", got)
	}
	rep = e.M.Backup(ctx, "after-fails")
	var we *backup.WarningError
	if !errors.As(rep.Err, &we) || rep.Run.Result != catalog.ResultOK || rep.Run.SnapshotID == "" {
		t.Fatalf("failing after hook should warn, not fail: %+v", rep)
	}
}

func TestBusyTarget(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n", src))
	held, err := lock.Acquire(context.Background(), e.Lab.StateDir, "files", false)
	if err != nil {
		t.Fatal(err)
	}
	rep := e.M.Backup(context.Background(), "files")
	if !errors.Is(rep.Err, lock.ErrBusy) {
		t.Fatalf("err = %v, want target busy", rep.Err)
	}
	e.M.Wait = true
	go func() { time.Sleep(500 * time.Millisecond); held.Release() }()
	if rep := e.M.Backup(context.Background(), "files"); rep.Err != nil {
		t.Fatalf("with wait: %v", rep.Err)
	}
}

// TestRetention checks restic's answer for a table of snapshot dates and
// the floor: the newest drilled snapshot survives a prune.
func TestRetention(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n    retention: {keep_last: 2, keep_weekly: 2}\n", src))
	ctx := context.Background()
	tgt, _, err := e.M.Target(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	dates := []string{"2026-01-01", "2026-01-02", "2026-01-05", "2026-01-06", "2026-01-12", "2026-01-13", "2026-01-14"}
	ids := map[string]string{}
	for _, d := range dates {
		tm, _ := time.ParseInLocation("2006-01-02 15:04", d+" 12:00", time.Local)
		sum, err := tgt.Repo.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Tags: tgt.RunTags("r" + d), Time: tm}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[d] = sum.SnapshotID
	}
	// keep_last 2 keeps 01-14 and 01-13; keep_weekly 2 keeps the newest of
	// each of the two newest ISO weeks: 01-14 (week 3, counted already) and
	// 01-06 (week 2).
	wantKeep := []string{"2026-01-06", "2026-01-13", "2026-01-14"}
	plan, err := e.M.PlanPrune(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	assertDates(t, "keep", plan.Keep, ids, wantKeep)
	if len(plan.Remove) != 4 || len(plan.Protected) != 0 {
		t.Fatalf("plan removes %d, protects %d", len(plan.Remove), len(plan.Protected))
	}
	// More rules over the same dates, each answer worked out from restic's
	// documented forget semantics (buckets: day, ISO week, month).
	for _, tc := range []struct {
		name string
		r    lab.Retention
		keep []string
	}{
		{"keep_last 1", lab.Retention{KeepLast: 1}, []string{"2026-01-14"}},
		{"keep_daily 3", lab.Retention{KeepDaily: 3}, []string{"2026-01-12", "2026-01-13", "2026-01-14"}},
		{"keep_weekly 3", lab.Retention{KeepWeekly: 3}, []string{"2026-01-02", "2026-01-06", "2026-01-14"}},
		// Fewer buckets than asked for: restic (>= 0.17) also keeps the
		// oldest snapshot, so a young repository keeps its history.
		{"keep_monthly 5", lab.Retention{KeepMonthly: 5}, []string{"2026-01-01", "2026-01-14"}},
		{"keep_last 1 + keep_weekly 10", lab.Retention{KeepLast: 1, KeepWeekly: 10}, []string{"2026-01-01", "2026-01-02", "2026-01-06", "2026-01-14"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := e.Lab.Backups["files"].Retention
			e.Lab.Backups["files"].Retention = tc.r
			defer func() { e.Lab.Backups["files"].Retention = saved }()
			plan, err := e.M.PlanPrune(ctx, "files")
			if err != nil {
				t.Fatal(err)
			}
			assertDates(t, "keep", plan.Keep, ids, tc.keep)
			if len(plan.Keep)+len(plan.Remove) != len(dates) {
				t.Errorf("keep %d + remove %d != %d snapshots", len(plan.Keep), len(plan.Remove), len(dates))
			}
		})
	}
	// 01-05 passed a drill: it is the newest drilled snapshot and is kept.
	if _, err := e.Store.RecordDrill(ctx, catalog.Drill{Target: "files", SnapshotID: ids["2026-01-02"], Start: time.Now(), End: time.Now(), Result: catalog.ResultOK}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.RecordDrill(ctx, catalog.Drill{Target: "files", SnapshotID: ids["2026-01-05"], Start: time.Now(), End: time.Now(), Result: catalog.ResultOK}); err != nil {
		t.Fatal(err)
	}
	// 01-01 is the restore point of an unfinished upgrade: kept. 01-12 is
	// that of a finished one: retention decides.
	for i, sg := range []struct {
		state catalog.SagaState
		date  string
	}{{catalog.SagaNeedsAttention, "2026-01-01"}, {catalog.SagaCompensated, "2026-01-12"}} {
		id := fmt.Sprintf("20260115T000000Z-0000000%d", i)
		if err := e.Store.CreateSaga(ctx, catalog.Saga{ID: id, Kind: "upgrade", Subject: "app", Plan: []string{"restore point before 2.0.0"}, State: sg.state, Start: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := e.Store.PutStep(ctx, id, catalog.SagaStep{Seq: 1, Name: "restore point before 2.0.0", Phase: catalog.PhaseForward, State: catalog.StepDone,
			Start: time.Now(), Data: map[string]string{saga.SnapshotKey("files"): ids[sg.date], saga.SnapshotKey("other"): "0123abcd"}}); err != nil {
			t.Fatal(err)
		}
	}
	plan, err = e.M.Prune(ctx, "files", false)
	if err != nil {
		t.Fatal(err)
	}
	assertDates(t, "protected", plan.Protected, ids, []string{"2026-01-01", "2026-01-05"})
	snaps, err := tgt.Repo.Snapshots(ctx, tgt.ScopeTags()...)
	if err != nil {
		t.Fatal(err)
	}
	var left []backup.Snapshot
	for _, s := range snaps {
		left = append(left, backup.FromRestic(s))
	}
	assertDates(t, "left after prune", left, ids, []string{"2026-01-01", "2026-01-05", "2026-01-06", "2026-01-13", "2026-01-14"})
}

func assertDates(t *testing.T, what string, snaps []backup.Snapshot, ids map[string]string, want []string) {
	t.Helper()
	got := map[string]bool{}
	for _, s := range snaps {
		got[s.ID] = true
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d snapshots, want %d (%v)", what, len(got), len(want), want)
	}
	for _, d := range want {
		if !got[ids[d]] {
			t.Errorf("%s: snapshot of %s missing", what, d)
		}
	}
}

func TestDamagedRepositoryFailsCheckAndDrill(t *testing.T) {
	src := t.TempDir()
	noise := make([]byte, 1<<20)
	rand.Read(noise) // incompressible, so the data lands in a pack of its own
	writeTree(t, src, map[string]string{"f": string(noise)})
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n", src))
	ctx := context.Background()
	e.MustBackup(t, "files")
	if rep := e.M.Check(ctx, "local", "100%"); rep.Err != nil {
		t.Fatalf("healthy repository: %v", rep.Err)
	}
	packs, _ := filepath.Glob(filepath.Join(e.Lab.Repositories["local"].URL, "data", "*", "*"))
	for _, p := range packs {
		if err := os.Truncate(p, 100); err != nil {
			t.Fatal(err)
		}
	}
	rep := e.M.Check(ctx, "local", "100%")
	if rep.Err == nil || rep.Run.Result != catalog.ResultFailed {
		t.Fatalf("check of a damaged repository: %+v", rep)
	}
	out := e.M.Verify(ctx, "files")
	if out.Err == nil || out.Drill.Result != catalog.ResultFailed {
		t.Fatalf("drill of a damaged repository: %+v", out)
	}
}

// TestInterruptedBackupIsRecorded cancels a backup while its before hook
// runs (it sleeps): the run is recorded as interrupted, with an end, also
// in the catalog. The provider suite (providertest) cancels backups while
// restic itself runs.
func TestInterruptedBackupIsRecorded(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n    hooks: {before: [\"sleep 30\"]}\n", src))
	ctx, cancel := context.WithCancel(context.Background()) // as a signal does
	defer cancel()
	time.AfterFunc(time.Second, cancel)
	rep := e.M.Backup(ctx, "files")
	if rep.Err == nil || rep.Run.Result != catalog.ResultInterrupted || strings.Contains(rep.Err.Error(), "timed out") {
		t.Fatalf("rep = %+v", rep)
	}
	runs := e.Runs(t, "files")
	if len(runs) != 1 || runs[0].Result != catalog.ResultInterrupted || runs[0].End.IsZero() {
		t.Fatalf("catalog runs = %+v", runs)
	}
}

// TestPartialSnapshotIsAWarning backs up a file that opens but cannot be
// read (/proc/self/mem, EIO even for root): restic exit 3, the snapshot
// exists, the run is recorded partial and reported as a warning.
func TestPartialSnapshotIsAWarning(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s, /proc/self/mem]}\n", src))
	rep := e.M.Backup(context.Background(), "files")
	var we *backup.WarningError
	if !errors.As(rep.Err, &we) || !errors.Is(rep.Err, restic.ErrPartial) {
		t.Fatalf("err = %v, want a warning wrapping restic.ErrPartial", rep.Err)
	}
	if rep.Run.Result != catalog.ResultPartial || rep.Run.SnapshotID == "" {
		t.Fatalf("run = %+v", rep.Run)
	}
	if runs := e.Runs(t, "files"); len(runs) != 1 || runs[0].Result != catalog.ResultPartial {
		t.Fatalf("catalog = %+v", runs)
	}
}
