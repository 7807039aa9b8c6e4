// Command fillcatalog writes a catalog as a lab of backup targets "t00",
// "t01"... would have after some days, for bench/serve-scraped.sh: the
// runs and drills of catalogtest.Fill, one event per run (level error for
// a failed one, as the daemon records them), and then, so that a daemon
// started on it has no catch-up to run, an ok backup run and an ok drill
// of every target and an ok check of repository "repo" that ended a
// minute ago.
//
// Usage: go run ./bench/fillcatalog -catalog PATH [-targets 50] [-days 30]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
)

func main() {
	path := flag.String("catalog", "", "catalog file to create or add to (required)")
	targets := flag.Int("targets", 50, "number of backup targets")
	days := flag.Int("days", 30, "days of daily runs per target")
	flag.Parse()
	if *path == "" || *targets < 1 || *days < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := fill(context.Background(), *path, *targets, *days, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "fillcatalog:", err)
		os.Exit(1)
	}
}

func fill(ctx context.Context, path string, targets, days int, now time.Time) error {
	s, err := catalog.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	// Fill's newest runs end about a day before its now.
	names, err := catalogtest.Fill(ctx, s, targets, days, now.Add(-time.Hour))
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	runs, err := s.Runs(ctx, catalog.RunFilter{})
	if err != nil {
		return err
	}
	for i := len(runs) - 1; i >= 0; i-- { // oldest first
		r := runs[i]
		at := r.End
		if at.IsZero() {
			continue
		}
		level, msg := "info", fmt.Sprintf("%s %s: %s", r.Kind, r.RunID, r.Result)
		if r.Result == catalog.ResultFailed {
			level, msg = "error", fmt.Sprintf("%s %s failed: %s", r.Kind, r.RunID, r.Error)
		}
		if err := s.AddEvent(ctx, catalog.Event{Time: at, Level: level, Target: r.Target, Kind: string(r.Kind) + "_" + string(r.Result), Message: msg}); err != nil {
			return err
		}
	}
	end := now.Add(-time.Minute)
	for _, name := range names {
		r, err := s.StartRun(ctx, catalog.Run{RunID: name + "-latest", Kind: catalog.KindBackup, Target: name, Provider: "restic",
			Repository: "repo", Start: end.Add(-5 * time.Minute)})
		if err != nil {
			return err
		}
		r.End, r.SnapshotID, r.Bytes, r.Files, r.Result = end, name+"-latest", 1<<30, 1000, catalog.ResultOK
		if err := s.FinishRun(ctx, r); err != nil {
			return err
		}
		if _, err := s.RecordDrill(ctx, catalog.Drill{RunID: name + "-drill-latest", Target: name, SnapshotID: r.SnapshotID,
			Start: end.Add(-2 * time.Minute), End: end, RTO: 50 * time.Second, Result: catalog.ResultOK}); err != nil {
			return err
		}
	}
	_, err = s.StartRun(ctx, catalog.Run{RunID: "check-latest", Kind: catalog.KindCheck, Target: "repo", Repository: "repo",
		Start: end.Add(-time.Minute), End: end, Result: catalog.ResultOK})
	return err
}
