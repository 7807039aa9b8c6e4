package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// resticLog makes e's manager run restic through a wrapper that appends
// each call's arguments to a log, and returns a function that reads the
// restic subcommands called since the last read (and empties the log).
func resticLog(t *testing.T, e *env) func() []string {
	t.Helper()
	bin := testenv.Restic(t)
	log := filepath.Join(t.TempDir(), "argv.log")
	wrapper := filepath.Join(t.TempDir(), "restic")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> '%s'\nexec '%s' \"$@\"\n", log, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.M.Repo = func(ctx context.Context, name string) (*restic.Client, error) {
		r := e.Lab.Repositories[name]
		return restic.New(ctx, restic.Config{Binary: wrapper, Repository: r.URL, PasswordFile: r.PasswordFile})
	}
	return func() []string {
		t.Helper()
		b, err := os.ReadFile(log)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		os.Remove(log)
		var cmds []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			for _, f := range strings.Fields(line) {
				if !strings.HasPrefix(f, "-") {
					cmds = append(cmds, f) // the subcommand: the first non-flag
					break
				}
			}
		}
		return cmds
	}
}

// listedLatest returns the target's newest snapshot as the repository
// lists it.
func listedLatest(t *testing.T, e *env, name string) backup.Snapshot {
	t.Helper()
	rows, err := e.M.List(context.Background(), name)
	if err != nil || len(rows) == 0 {
		t.Fatalf("list %s: %d snapshots, %v", name, len(rows), err)
	}
	return rows[len(rows)-1].Snapshot
}

// samePlanSnapshot fails unless got (resolved from the catalog) shows
// what want (listed from the repository) shows in a restore plan.
func samePlanSnapshot(t *testing.T, got, want backup.Snapshot) {
	t.Helper()
	if got.ID != want.ID || got.ShortID != want.ShortID || !got.Time.Equal(want.Time) ||
		got.Bytes != want.Bytes || got.Files != want.Files || got.Target != want.Target || got.RunID != want.RunID {
		t.Errorf("plan's snapshot %+v\nwant (as listed) %+v", got, want)
	}
}

func readRestored(t *testing.T, dst, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dst, src, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestoreLatestFromCatalog: "latest" is planned and restored from the
// catalog's newest backup run, without listing the repository (no restic
// snapshots), also after a prune, and the plan shows what a listing would.
func TestRestoreLatestFromCatalog(t *testing.T) {
	src := t.TempDir()
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n    retention: {keep_last: 2}\n", src))
	ctx := context.Background()
	calls := resticLog(t, e)
	for _, v := range []string{"one", "two", "three"} {
		writeTree(t, src, map[string]string{"f": v})
		e.MustBackup(t, "files")
	}
	plan, err := e.M.Prune(ctx, "files", false)
	if err != nil || len(plan.Remove) != 1 {
		t.Fatalf("prune: %+v, %v; want one snapshot removed", plan, err)
	}
	want := listedLatest(t, e, "files")
	calls()

	dst := t.TempDir()
	rp, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{Path: dst})
	if err != nil {
		t.Fatal(err)
	}
	samePlanSnapshot(t, rp.Snapshot, want)
	run, err := e.M.Restore(ctx, rp)
	if err != nil {
		t.Fatal(err)
	}
	if run.SnapshotID != want.ID || run.Bytes != want.Bytes || run.Files != want.Files {
		t.Errorf("restore run %+v; want snapshot %s", run, want.ID)
	}
	if got := readRestored(t, dst, src, "f"); got != "three" {
		t.Errorf("restored f = %q, want three", got)
	}
	if got := calls(); !slices.Equal(got, []string{"restore"}) {
		t.Errorf("restic calls %v; want only restore (latest from the catalog)", got)
	}

	// An ID prefix is still resolved by listing.
	if rp, err = e.M.PlanRestore(ctx, "files", want.ShortID, backup.Destination{Path: t.TempDir()}); err != nil || rp.Snapshot.ID != want.ID {
		t.Errorf("plan of %s: %+v, %v", want.ShortID, rp.Snapshot, err)
	}
	if got := calls(); !slices.Contains(got, "snapshots") {
		t.Errorf("restic calls %v for an ID prefix; want snapshots", got)
	}
}

// TestRestoreLatestForgottenByHand: a latest snapshot forgotten with plain
// restic (the catalog still has it) makes the restore list the repository
// and restore the latest there, once, with a warning event; none left is
// ErrNoSnapshot.
func TestRestoreLatestForgottenByHand(t *testing.T) {
	src := t.TempDir()
	e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n", src))
	ctx := context.Background()
	calls := resticLog(t, e)
	for _, v := range []string{"one", "two"} {
		writeTree(t, src, map[string]string{"f": v})
		e.MustBackup(t, "files")
	}
	runs := e.Runs(t, "files")
	older, newest := runs[1].SnapshotID, runs[0].SnapshotID
	tgt, _, err := e.M.Target(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Repo.Forget(ctx, []string{newest}); err != nil {
		t.Fatal(err)
	}
	calls()

	dst := t.TempDir()
	rp, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{Path: dst})
	if err != nil || rp.Snapshot.ID != newest {
		t.Fatalf("plan: %+v, %v; want the catalog's %s", rp.Snapshot, err, newest)
	}
	run, err := e.M.Restore(ctx, rp)
	if err != nil {
		t.Fatal(err)
	}
	if run.SnapshotID != older || run.Result != catalog.ResultOK {
		t.Errorf("restore run %+v; want ok, snapshot %s (the latest left)", run, older)
	}
	if got := readRestored(t, dst, src, "f"); got != "one" {
		t.Errorf("restored f = %q, want one", got)
	}
	if got := calls(); !slices.Equal(got, []string{"restore", "snapshots", "restore"}) {
		t.Errorf("restic calls %v; want restore (fails), snapshots, restore", got)
	}
	events, err := e.Store.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(ev catalog.Event) bool { return ev.Kind == "restore_snapshot_gone" }) {
		t.Errorf("events %+v; want restore_snapshot_gone", events)
	}

	// Nothing left: the restore fails with ErrNoSnapshot, recorded.
	if err := tgt.Repo.Forget(ctx, []string{older}); err != nil {
		t.Fatal(err)
	}
	rp, err = e.M.PlanRestore(ctx, "files", "latest", backup.Destination{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	run, err = e.M.Restore(ctx, rp)
	if !errors.Is(err, backup.ErrNoSnapshot) || !errors.Is(err, restic.ErrSnapshotNotFound) || run.Result != catalog.ResultFailed {
		t.Errorf("restore with no snapshot left: %+v, %v; want failed, ErrNoSnapshot", run, err)
	}
}

// TestRestoreLatestListsWhenCatalogCannotSay: when the newest backup run
// of the target made no snapshot the catalog knows the time of (a failed
// backup, one killed before it was recorded, a run from before the
// catalog kept snapshot times) or went to another repository, "latest"
// is what the repository lists.
func TestRestoreLatestListsWhenCatalogCannotSay(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(r catalog.Run) catalog.Run // the newest run, from a copy of the real one
	}{
		{"failed without snapshot", func(r catalog.Run) catalog.Run {
			r.Result, r.SnapshotID, r.SnapshotTime, r.Error = catalog.ResultFailed, "", time.Time{}, "restic backup: exit status 1"
			return r
		}},
		{"interrupted without snapshot", func(r catalog.Run) catalog.Run {
			r.Result, r.SnapshotID, r.SnapshotTime, r.Error = catalog.ResultInterrupted, "", time.Time{}, backup.AbandonedRunError
			return r
		}},
		{"no snapshot time", func(r catalog.Run) catalog.Run {
			r.SnapshotID, r.SnapshotTime = strings.Repeat("0", 64), time.Time{}
			return r
		}},
		{"another repository", func(r catalog.Run) catalog.Run {
			r.Repository, r.SnapshotID = "elsewhere", strings.Repeat("0", 64)
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string]string{"f": "x"})
			e := newEnv(t, fmt.Sprintf("  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n", src))
			ctx := context.Background()
			e.MustBackup(t, "files")
			want := listedLatest(t, e, "files")
			calls := resticLog(t, e)

			r := tc.run(e.Runs(t, "files")[0])
			r.ID, r.RunID, r.Start, r.End = 0, "newer", r.Start.Add(time.Minute), r.End.Add(time.Minute)
			started, err := e.Store.StartRun(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			r.ID = started.ID
			if err := e.Store.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			calls()
			rp, err := e.M.PlanRestore(ctx, "files", "latest", backup.Destination{Path: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if rp.Snapshot.ID != want.ID || !slices.Equal(rp.Snapshot.Paths, want.Paths) {
				t.Errorf("plan's snapshot %+v; want the listed %+v", rp.Snapshot, want)
			}
			if got := calls(); !slices.Contains(got, "snapshots") {
				t.Errorf("restic calls %v; want snapshots (listed)", got)
			}
		})
	}
}

// TestRecoveryCheck: a recovery stops at one target; two are refused,
// naming them.
func TestRecoveryCheck(t *testing.T) {
	for _, ok := range []backup.Recovery{{}, {Time: "2026-12-06 10:41:00+00"}, {LSN: "0/3000060"}, {XID: "42"}, {Name: "before"}, {Immediate: true}} {
		if err := ok.Check(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []backup.Recovery{{Time: "2026-12-06 10:41:00+00", Immediate: true}, {LSN: "0/3000060", XID: "42"}, {Name: "a", Time: "b"}} {
		if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "exclude each other") {
			t.Errorf("%+v: %v, want an error", bad, err)
		}
	}
}
