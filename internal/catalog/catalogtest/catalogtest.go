// Package catalogtest is the conformance suite for catalog.Store
// implementations. Each implementation's tests call Run:
//
//	func TestStore(t *testing.T) {
//		catalogtest.Run(t, func(t *testing.T) catalog.Store { ... })
//	}
//
// The suite pins what callers may rely on: times come back as the same
// instant in UTC (the suite uses microsecond precision, what PostgreSQL's
// timestamptz keeps), lists are newest first (by start or time, then ID),
// Limit 0 means no limit, FinishRun of an unknown run wraps
// catalog.ErrNotFound, and concurrent writers lose nothing. If the store
// also implements catalog.Lookup, that is checked too.
package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"homelab/internal/catalog"
)

// epoch is the suite's fixed clock, in a non-UTC zone on purpose.
var epoch = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.FixedZone("CET", 3600))

// at returns epoch plus d minutes.
func at(d int) time.Time { return epoch.Add(time.Duration(d) * time.Minute) }

// Run runs the suite. open must return a new, empty store; Run closes it
// when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s catalog.Store)
	}{
		{"Empty", testEmpty},
		{"RunRoundTrip", testRunRoundTrip},
		{"RunInvalid", testRunInvalid},
		{"RunFilters", testRunFilters},
		{"RunOrder", testRunOrder},
		{"Drills", testDrills},
		{"Events", testEvents},
		{"Lookup", testLookup},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

func testEmpty(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	if runs, err := s.Runs(ctx, catalog.RunFilter{}); err != nil || len(runs) != 0 {
		t.Errorf("Runs = %v, %v; want none", runs, err)
	}
	if ds, err := s.Drills(ctx, catalog.DrillFilter{}); err != nil || len(ds) != 0 {
		t.Errorf("Drills = %v, %v; want none", ds, err)
	}
	if es, err := s.Events(ctx, 0); err != nil || len(es) != 0 {
		t.Errorf("Events = %v, %v; want none", es, err)
	}
}

func testRunRoundTrip(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	in := catalog.Run{
		RunID: "r-1", Kind: catalog.KindBackup, Target: "db", Provider: "postgres",
		Repository: "local", Start: at(0),
	}
	started, err := s.StartRun(ctx, in)
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if started.ID == 0 {
		t.Fatalf("StartRun: ID not set")
	}
	want := in
	want.ID, want.Start, want.Result = started.ID, at(0).UTC(), catalog.ResultRunning
	checkRuns(t, s, catalog.RunFilter{}, want)

	fin := started
	fin.End, fin.SnapshotID = at(3).Add(789*time.Microsecond), "abc123"
	fin.Bytes, fin.BytesAdded, fin.Files = 1<<40, 12345, 678
	fin.Result, fin.Error = catalog.ResultPartial, "some files unreadable"
	if err := s.FinishRun(ctx, fin); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	want.End, want.SnapshotID = fin.End.UTC(), fin.SnapshotID
	want.Bytes, want.BytesAdded, want.Files = fin.Bytes, fin.BytesAdded, fin.Files
	want.Result, want.Error = fin.Result, fin.Error
	checkRuns(t, s, catalog.RunFilter{}, want)

	err = s.FinishRun(ctx, catalog.Run{ID: started.ID + 1000, Result: catalog.ResultOK, End: at(4)})
	if !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("FinishRun of unknown run: %v; want ErrNotFound", err)
	}
}

func testRunInvalid(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	for _, r := range []catalog.Run{
		{Kind: catalog.KindBackup, Start: at(0)},
		{Target: "db", Start: at(0)},
		{Target: "db", Kind: catalog.KindBackup},
	} {
		if _, err := s.StartRun(ctx, r); err == nil {
			t.Errorf("StartRun(%+v): no error", r)
		}
	}
	r, err := s.StartRun(ctx, catalog.Run{Target: "db", Kind: catalog.KindBackup, Start: at(0)})
	if err != nil {
		t.Fatal(err)
	}
	r.Result = catalog.ResultRunning
	if err := s.FinishRun(ctx, r); err == nil {
		t.Errorf("FinishRun with result running: no error")
	}
}

// seedRuns writes one run per spec and returns them as stored, in order.
func seedRuns(t *testing.T, s catalog.Store, specs []catalog.Run) []catalog.Run {
	t.Helper()
	var out []catalog.Run
	for _, r := range specs {
		got, err := s.StartRun(t.Context(), r)
		if err != nil {
			t.Fatalf("StartRun: %v", err)
		}
		if r.Result != "" && r.Result != catalog.ResultRunning {
			got.End = got.Start.Add(time.Minute)
			if err := s.FinishRun(t.Context(), got); err != nil {
				t.Fatalf("FinishRun: %v", err)
			}
		}
		got.Start, got.End = got.Start.UTC(), got.End.UTC()
		out = append(out, got)
	}
	return out
}

func testRunFilters(t *testing.T, s catalog.Store) {
	rs := seedRuns(t, s, []catalog.Run{
		{Target: "db", Kind: catalog.KindBackup, Start: at(0), Result: catalog.ResultOK},
		{Target: "db", Kind: catalog.KindBackup, Start: at(1), Result: catalog.ResultFailed},
		{Target: "files", Kind: catalog.KindBackup, Start: at(2), Result: catalog.ResultOK},
		{Target: "db", Kind: catalog.KindPrune, Start: at(3), Result: catalog.ResultOK},
		{Target: "db", Kind: catalog.KindBackup, Start: at(4)}, // still running
	})
	tests := []struct {
		f    catalog.RunFilter
		want []catalog.Run
	}{
		{catalog.RunFilter{}, []catalog.Run{rs[4], rs[3], rs[2], rs[1], rs[0]}},
		{catalog.RunFilter{Limit: 2}, []catalog.Run{rs[4], rs[3]}},
		{catalog.RunFilter{Target: "db"}, []catalog.Run{rs[4], rs[3], rs[1], rs[0]}},
		{catalog.RunFilter{Target: "db", Kind: catalog.KindBackup}, []catalog.Run{rs[4], rs[1], rs[0]}},
		{catalog.RunFilter{Target: "db", Kind: catalog.KindBackup, Result: catalog.ResultOK}, []catalog.Run{rs[0]}},
		{catalog.RunFilter{Kind: catalog.KindBackup, Result: catalog.ResultOK}, []catalog.Run{rs[2], rs[0]}},
		{catalog.RunFilter{Result: catalog.ResultRunning}, []catalog.Run{rs[4]}},
		{catalog.RunFilter{Target: "db", Limit: 1}, []catalog.Run{rs[4]}},
		{catalog.RunFilter{Target: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.f), func(t *testing.T) { checkRuns(t, s, tt.f, tt.want...) })
	}
}

func testRunOrder(t *testing.T, s catalog.Store) {
	// Inserted out of time order, with a tie on start broken by ID.
	rs := seedRuns(t, s, []catalog.Run{
		{Target: "db", Kind: catalog.KindBackup, Start: at(10)},
		{Target: "db", Kind: catalog.KindBackup, Start: at(-5)},
		{Target: "db", Kind: catalog.KindBackup, Start: at(10)},
		{Target: "db", Kind: catalog.KindBackup, Start: at(10).Add(time.Microsecond)},
		{Target: "db", Kind: catalog.KindBackup, Start: at(2 * 24 * 60)},
	})
	checkRuns(t, s, catalog.RunFilter{}, rs[4], rs[3], rs[2], rs[0], rs[1])
}

func checkRuns(t *testing.T, s catalog.Store, f catalog.RunFilter, want ...catalog.Run) {
	t.Helper()
	got, err := s.Runs(t.Context(), f)
	if err != nil {
		t.Fatalf("Runs(%+v): %v", f, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Runs(%+v): got %d runs, want %d:\ngot  %+v\nwant %+v", f, len(got), len(want), got, want)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("Runs(%+v)[%d]:\ngot  %+v\nwant %+v", f, i, got[i], want[i])
		}
	}
}

func testDrills(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	specs := []catalog.Drill{
		{RunID: "d-1", Target: "db", SnapshotID: "s1", Start: at(0), End: at(2), RTO: 90*time.Second + 1, Result: catalog.ResultOK, Output: "check 1: ok\ncheck 2: ok"},
		{RunID: "d-2", Target: "db", SnapshotID: "s2", Start: at(5), End: at(6), RTO: time.Minute, Result: catalog.ResultFailed, Error: "check 2 failed"},
		{RunID: "d-3", Target: "files", SnapshotID: "f1", Start: at(7), End: at(8), RTO: time.Second, Result: catalog.ResultOK},
		{RunID: "d-4", Target: "db", SnapshotID: "s1", Start: at(9), End: at(10), RTO: time.Second, Result: catalog.ResultOK},
	}
	var ds []catalog.Drill
	for _, d := range specs {
		got, err := s.RecordDrill(ctx, d)
		if err != nil {
			t.Fatalf("RecordDrill: %v", err)
		}
		if got.ID == 0 {
			t.Fatalf("RecordDrill: ID not set")
		}
		want := d
		want.ID, want.Start, want.End = got.ID, d.Start.UTC(), d.End.UTC()
		ds = append(ds, want)
	}
	if _, err := s.RecordDrill(ctx, catalog.Drill{Target: "db", Start: at(0), Result: catalog.ResultOK}); err == nil {
		t.Errorf("RecordDrill without snapshot ID: no error")
	}
	tests := []struct {
		f    catalog.DrillFilter
		want []catalog.Drill
	}{
		{catalog.DrillFilter{}, []catalog.Drill{ds[3], ds[2], ds[1], ds[0]}},
		{catalog.DrillFilter{Limit: 3}, []catalog.Drill{ds[3], ds[2], ds[1]}},
		{catalog.DrillFilter{Target: "db"}, []catalog.Drill{ds[3], ds[1], ds[0]}},
		{catalog.DrillFilter{SnapshotID: "s1"}, []catalog.Drill{ds[3], ds[0]}},
		{catalog.DrillFilter{Target: "db", Result: catalog.ResultFailed}, []catalog.Drill{ds[1]}},
		{catalog.DrillFilter{Result: catalog.ResultOK, Limit: 1}, []catalog.Drill{ds[3]}},
		{catalog.DrillFilter{Target: "nope"}, nil},
	}
	for _, tt := range tests {
		got, err := s.Drills(ctx, tt.f)
		if err != nil {
			t.Fatalf("Drills(%+v): %v", tt.f, err)
		}
		if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("Drills(%+v):\ngot  %+v\nwant %+v", tt.f, got, tt.want)
		}
	}
}

func testEvents(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	in := []catalog.Event{
		{Time: at(0), Level: "info", Kind: "repository_init", Message: "initialised local"},
		{Time: at(2), Level: "error", Target: "db", Kind: "backup_failed", Message: "pg_dump: connection refused"},
		{Time: at(1), Level: "warn", Target: "files", Kind: "backup_partial", Message: "2 files unreadable"},
	}
	for _, e := range in {
		if err := s.AddEvent(ctx, e); err != nil {
			t.Fatalf("AddEvent: %v", err)
		}
	}
	all, err := s.Events(ctx, 0)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(all) != len(in) {
		t.Fatalf("Events(0): got %d, want %d", len(all), len(in))
	}
	for i, j := range []int{1, 2, 0} {
		want := in[j]
		want.ID, want.Time = all[i].ID, want.Time.UTC()
		if want.ID == 0 || !reflect.DeepEqual(all[i], want) {
			t.Errorf("Events(0)[%d]:\ngot  %+v\nwant %+v", i, all[i], want)
		}
	}
	two, err := s.Events(ctx, 2)
	if err != nil || !reflect.DeepEqual(two, all[:2]) {
		t.Errorf("Events(2) = %+v, %v; want %+v", two, err, all[:2])
	}
}

func testLookup(t *testing.T, s catalog.Store) {
	l, ok := s.(catalog.Lookup)
	if !ok {
		t.Skipf("%T does not implement catalog.Lookup", s)
	}
	ctx := t.Context()
	if _, found, err := l.LastRun(ctx, "db", catalog.KindBackup); err != nil || found {
		t.Errorf("LastRun on empty store: found=%v, %v", found, err)
	}
	if _, found, err := l.LastDrill(ctx, "db"); err != nil || found {
		t.Errorf("LastDrill on empty store: found=%v, %v", found, err)
	}
	rs := seedRuns(t, s, []catalog.Run{
		{Target: "db", Kind: catalog.KindBackup, Start: at(0), Result: catalog.ResultOK},
		{Target: "db", Kind: catalog.KindBackup, Start: at(1), Result: catalog.ResultPartial},
		{Target: "db", Kind: catalog.KindBackup, Start: at(2), Result: catalog.ResultFailed},
		{Target: "db", Kind: catalog.KindPrune, Start: at(3), Result: catalog.ResultOK},
		{Target: "files", Kind: catalog.KindBackup, Start: at(4), Result: catalog.ResultOK},
	})
	lastRuns := []struct {
		results []catalog.Result
		want    catalog.Run
	}{
		{nil, rs[2]},
		{[]catalog.Result{catalog.ResultOK}, rs[0]},
		{[]catalog.Result{catalog.ResultOK, catalog.ResultPartial}, rs[1]},
	}
	for _, tt := range lastRuns {
		got, found, err := l.LastRun(ctx, "db", catalog.KindBackup, tt.results...)
		if err != nil || !found || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LastRun(db, backup, %v) = %+v, %v, %v; want %+v", tt.results, got, found, err, tt.want)
		}
	}
	if _, found, err := l.LastRun(ctx, "db", catalog.KindBackup, catalog.ResultInterrupted); err != nil || found {
		t.Errorf("LastRun(interrupted): found=%v, %v; want none", found, err)
	}

	for _, d := range []catalog.Drill{
		{Target: "db", SnapshotID: "s1", Start: at(0), Result: catalog.ResultOK},
		{Target: "db", SnapshotID: "s2", Start: at(1), Result: catalog.ResultOK},
		{Target: "db", SnapshotID: "s3", Start: at(2), Result: catalog.ResultFailed},
		{Target: "db", SnapshotID: "s1", Start: at(3), Result: catalog.ResultOK},
		{Target: "files", SnapshotID: "f1", Start: at(4), Result: catalog.ResultOK},
		{Target: "db", SnapshotID: "s4", Start: at(5), Result: catalog.ResultFailed},
	} {
		if _, err := s.RecordDrill(ctx, d); err != nil {
			t.Fatalf("RecordDrill: %v", err)
		}
	}
	last, found, err := l.LastDrill(ctx, "db")
	if err != nil || !found || last.SnapshotID != "s4" || !last.Start.Equal(at(5)) {
		t.Errorf("LastDrill(db) = %+v, %v, %v; want the s4 drill", last, found, err)
	}
	ids, err := l.DrilledOK(ctx, "db")
	if err != nil || !reflect.DeepEqual(ids, []string{"s1", "s2"}) {
		t.Errorf("DrilledOK(db) = %q, %v; want [s1 s2]", ids, err)
	}
	if ids, err := l.DrilledOK(ctx, "nope"); err != nil || len(ids) != 0 {
		t.Errorf("DrilledOK(nope) = %q, %v; want none", ids, err)
	}
}

func testConcurrent(t *testing.T, s catalog.Store) {
	const writers, each = 8, 25
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			if err := WriteRuns(ctx, s, "conc", fmt.Sprintf("w%d", w), each); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	runs, err := s.Runs(ctx, catalog.RunFilter{Target: "conc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != writers*each {
		t.Fatalf("got %d runs, want %d", len(runs), writers*each)
	}
	seen := map[string]bool{}
	for _, r := range runs {
		if r.Result != catalog.ResultOK || r.End.IsZero() {
			t.Errorf("run %s not finished: %+v", r.RunID, r)
		}
		seen[r.RunID] = true
	}
	if len(seen) != writers*each {
		t.Errorf("got %d distinct runs, want %d", len(seen), writers*each)
	}
	if es, err := s.Events(ctx, 0); err != nil || len(es) != writers*each {
		t.Errorf("got %d events (%v), want %d", len(es), err, writers*each)
	}
}

// WriteRuns starts and finishes n ok backup runs of target with run IDs
// "<prefix>-<i>", adding an event for each. Implementation tests use it to
// load one store from several handles or processes at once.
func WriteRuns(ctx context.Context, s catalog.Store, target, prefix string, n int) error {
	for i := range n {
		r, err := s.StartRun(ctx, catalog.Run{
			RunID: fmt.Sprintf("%s-%d", prefix, i), Kind: catalog.KindBackup, Target: target, Start: at(i),
		})
		if err != nil {
			return err
		}
		r.End, r.Result, r.SnapshotID = at(i+1), catalog.ResultOK, fmt.Sprintf("snap-%s-%d", prefix, i)
		if err := s.FinishRun(ctx, r); err != nil {
			return err
		}
		if err := s.AddEvent(ctx, catalog.Event{Time: at(i), Level: "info", Target: target, Kind: "backup_ok", Message: r.RunID}); err != nil {
			return err
		}
	}
	return nil
}
