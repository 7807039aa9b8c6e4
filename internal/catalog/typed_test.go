package catalog_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
)

// TestTypeRank: the catalog's rank of a run's backup type (its index's
// SQL and Summarize's Go) is pgbackrest.Rank of pgbackrest.RunType, the
// rule status and the daemon judge by.
func TestTypeRank(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	q, err := catalog.DB(s).Prepare(`SELECT ` + catalog.TypeRankSQL + ` FROM (SELECT ? AS snapshot_id, ? AS run_id)`)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	labels := []string{"", "20261123-010000F", "F", "f", "20261123-010000F_20261123-020000D",
		"20261123-010000F_20261123-020000I", "20261123-010000F_x", "20261123-010000F_20261123-020000F",
		"d", "i", "D", "I", "4e5f6a7b", "_F", "F_"}
	ids := []string{"", "20261123-010000-full", "20261123-010000-diff", "20261123-010000-incr",
		"x-full", "-full", "--full", "a-b-Full", "a-b-full-x", "a-b-fulll", "a-b-", "20261123-010000", "full"}
	for _, label := range labels {
		for _, id := range ids {
			r := catalog.Run{SnapshotID: label, RunID: id}
			want := pgbackrest.Rank(pgbackrest.RunType(r))
			if got := catalog.TypeRank(r); got != want {
				t.Errorf("label %q, run ID %q: rank %d, pgbackrest's %d", label, id, got, want)
			}
			var got int
			if err := q.QueryRow(label, id).Scan(&got); err != nil || got != want {
				t.Errorf("label %q, run ID %q: SQL rank %d (%v), pgbackrest's %d", label, id, got, err, want)
			}
		}
	}
}

// TestTypedRunsTypeState: for random histories of a pgbackrest target,
// pgbackrest.TypeState of each backup type gives the same runs from
// TypedRuns (SQLite's and Summaries') as from all the target's runs.
func TestTypedRunsTypeState(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	results := []catalog.Result{catalog.ResultOK, catalog.ResultOK, catalog.ResultPartial, catalog.ResultFailed,
		catalog.ResultFailed, catalog.ResultInterrupted, catalog.ResultRunning}
	types := []string{"full", "diff", "incr", ""}
	suffix := map[string]string{"full": "F", "diff": "D", "incr": "I"}
	var targets []string
	for n := range 40 {
		target := fmt.Sprintf("pg%02d", n)
		targets = append(targets, target)
		minute := 0
		for i := range 1 + rng.IntN(60) {
			if rng.IntN(4) > 0 { // else the same start as the run before
				minute += 1 + rng.IntN(3)
			}
			typ, res := types[rng.IntN(len(types))], results[rng.IntN(len(results))]
			r := catalog.Run{Kind: catalog.KindBackup, Target: target, Provider: catalog.TypedProvider,
				RunID: fmt.Sprintf("20261123-%06d", i), Start: epochAt(minute), Result: res}
			if typ != "" && rng.IntN(5) > 0 { // else a run of pgBackRest's choosing
				r.RunID += "-" + typ
			}
			if typ != "" && (res == catalog.ResultOK || res == catalog.ResultPartial) && rng.IntN(5) > 0 {
				r.SnapshotID = fmt.Sprintf("20261123-%06dF", i)
				if typ != "full" {
					r.SnapshotID += fmt.Sprintf("_20261123-%06d%s", i, suffix[typ])
				}
			}
			if _, err := s.StartRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	sums, err := s.Summaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range targets {
		all, err := s.Runs(ctx, catalog.RunFilter{Target: target, Kind: catalog.KindBackup})
		if err != nil {
			t.Fatal(err)
		}
		typed, err := s.TypedRuns(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range types[:3] {
			good, failed := pgbackrest.TypeState(all, typ)
			for name, runs := range map[string][]catalog.Run{"TypedRuns": typed, "Summaries": sums[target].TypedRuns} {
				g, f := pgbackrest.TypeState(runs, typ)
				if id(g) != id(good) || id(f) != id(failed) {
					t.Errorf("%s %s from %s: good %d, failed %d; from all %d runs: %d, %d", target, typ, name, id(g), id(f), len(all), id(good), id(failed))
				}
			}
		}
	}
}

// epochAt is a fixed time plus m minutes.
func epochAt(m int) time.Time {
	return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).Add(time.Duration(m) * time.Minute)
}

// id is r's ID; 0 for nil.
func id(r *catalog.Run) int64 {
	if r == nil {
		return 0
	}
	return r.ID
}
