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
// also implements catalog.Lookup, that is checked too; catalog.Summaries,
// which uses the store's own Summaries if it is a Lookup, is checked for
// every store.
package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
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
		{"FinishDrill", testFinishDrill},
		{"Events", testEvents},
		{"Lookup", testLookup},
		{"Summaries", testSummaries},
		{"SummariesFilled", testSummariesFilled},
		{"SummariesTyped", testSummariesTyped},
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
	fin.SnapshotTime = at(1).Add(456 * time.Microsecond)
	fin.Bytes, fin.BytesAdded, fin.Files = 1<<40, 12345, 678
	fin.Result, fin.Error = catalog.ResultPartial, "some files unreadable"
	if err := s.FinishRun(ctx, fin); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	want.End, want.SnapshotID, want.SnapshotTime = fin.End.UTC(), fin.SnapshotID, fin.SnapshotTime.UTC()
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

// testFinishDrill: a drill recorded as running at its start is finished
// in place (its ID stays); a result that is not final and an unknown ID
// are refused.
func testFinishDrill(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	d, err := s.RecordDrill(ctx, catalog.Drill{RunID: "d-1", Target: "db", SnapshotID: "s1", Start: at(0), Result: catalog.ResultRunning})
	if err != nil {
		t.Fatalf("RecordDrill: %v", err)
	}
	if got, _ := s.Drills(ctx, catalog.DrillFilter{Result: catalog.ResultRunning}); len(got) != 1 || got[0].ID != d.ID {
		t.Fatalf("running drills: %+v", got)
	}
	if err := s.FinishDrill(ctx, catalog.Drill{ID: d.ID, Result: catalog.ResultRunning}); err == nil {
		t.Errorf("FinishDrill with result running: no error")
	}
	d.End, d.RTO, d.Result, d.Output, d.Error = at(3), 90*time.Second, catalog.ResultFailed, "FAIL sql select 1: returned false\n", "check failed"
	if err := s.FinishDrill(ctx, d); err != nil {
		t.Fatalf("FinishDrill: %v", err)
	}
	got, err := s.Drills(ctx, catalog.DrillFilter{Target: "db"})
	want := d
	want.End = d.End.UTC()
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("after FinishDrill: %+v, %v; want %+v", got, err, want)
	}
	if err := s.FinishDrill(ctx, catalog.Drill{ID: d.ID + 100, Result: catalog.ResultOK}); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("FinishDrill of an unknown drill = %v, want ErrNotFound", err)
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

// summaries returns catalog.Summaries of s, and checks that it is what
// catalog.Summarize makes of all of s's runs and drills.
func summaries(t *testing.T, s catalog.Store) map[string]catalog.Summary {
	t.Helper()
	got, err := catalog.Summaries(t.Context(), s)
	if err != nil {
		t.Fatalf("Summaries: %v", err)
	}
	runs, err := s.Runs(t.Context(), catalog.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	drills, err := s.Drills(t.Context(), catalog.DrillFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := catalog.Summarize(runs, drills); !reflect.DeepEqual(got, want) {
		t.Errorf("Summaries differ from Summarize of all runs and drills:\n%s", diffSummaries(got, want))
	}
	return got
}

// diffSummaries describes the targets whose summaries differ.
func diffSummaries(got, want map[string]catalog.Summary) string {
	targets := slices.Collect(maps.Keys(got))
	for target := range want {
		if _, ok := got[target]; !ok {
			targets = append(targets, target)
		}
	}
	slices.Sort(targets)
	var b strings.Builder
	for _, target := range targets {
		g, gok := got[target]
		w, wok := want[target]
		if gok != wok || !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "%s:\n got  (present %v) %s\n want (present %v) %s\n", target, gok, fmtSummary(g), wok, fmtSummary(w))
		}
	}
	return b.String()
}

func fmtSummary(s catalog.Summary) string {
	str := func(p any) string {
		v := reflect.ValueOf(p)
		if v.IsNil() {
			return "nil"
		}
		return fmt.Sprintf("%+v", v.Elem().Interface())
	}
	return fmt.Sprintf("{LastBackup:%s LastGoodBackup:%s LastDrill:%s LastGoodDrill:%s Failed:%v DrillsFailed:%d}",
		str(s.LastBackup), str(s.LastGoodBackup), str(s.LastDrill), str(s.LastGoodDrill), s.Failed, s.DrillsFailed)
}

func testSummaries(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	if got := summaries(t, s); len(got) != 0 {
		t.Errorf("Summaries of an empty store: %d, want none", len(got))
	}
	ok, partial, failed, running := catalog.ResultOK, catalog.ResultPartial, catalog.ResultFailed, catalog.ResultRunning
	backup, prune, check := catalog.KindBackup, catalog.KindPrune, catalog.KindCheck
	rs := seedRuns(t, s, []catalog.Run{
		// db: the newest is still running, the newest good one partial.
		0: {Target: "db", Kind: backup, Start: at(0), Result: ok},
		1: {Target: "db", Kind: backup, Start: at(1), Result: partial},
		2: {Target: "db", Kind: backup, Start: at(2), Result: failed},
		3: {Target: "db", Kind: backup, Start: at(3)}, // running
		4: {Target: "db", Kind: prune, Start: at(4), Result: failed},
		5: {Target: "db", Kind: prune, Start: at(5), Result: ok},
		// files: ties on start, broken by ID; an interrupted run is not good.
		6:  {Target: "files", Kind: backup, Start: at(10), Result: ok},
		7:  {Target: "files", Kind: backup, Start: at(10), Result: ok},
		8:  {Target: "files", Kind: backup, Start: at(11), Result: partial},
		9:  {Target: "files", Kind: backup, Start: at(11), Result: failed},
		10: {Target: "files", Kind: backup, Start: at(9), Result: failed},
		11: {Target: "files", Kind: backup, Start: at(8), Result: catalog.ResultInterrupted},
		// web: newest by start, not by ID: the newer run was recorded first.
		12: {Target: "web", Kind: backup, Start: at(30), Result: ok},
		13: {Target: "web", Kind: backup, Start: at(20), Result: failed},
		14: {Target: "web", Kind: backup, Start: at(25), Result: running},
		// broken: never a good backup (see also 23: interrupted is not good).
		15: {Target: "broken", Kind: backup, Start: at(0), Result: failed},
		16: {Target: "broken", Kind: backup, Start: at(1), Result: failed},
		// A repository's checks, and a target with only prunes: no backup
		// run, so only failures show.
		17: {Target: "local", Kind: check, Start: at(0), Result: failed},
		18: {Target: "local", Kind: check, Start: at(1), Result: ok},
		19: {Target: "pruned", Kind: prune, Start: at(0), Result: ok},
		20: {Target: "quiet", Kind: prune, Start: at(0), Result: ok},
		21: {Target: "pruned", Kind: prune, Start: at(1), Result: failed},
		// one: a single good run is both the newest and the newest good.
		22: {Target: "one", Kind: backup, Start: at(0), Result: ok},
		23: {Target: "broken", Kind: backup, Start: at(2), Result: catalog.ResultInterrupted},
		// flaky: the newest good run is older than an interrupted one.
		24: {Target: "flaky", Kind: backup, Start: at(0), Result: ok},
		25: {Target: "flaky", Kind: backup, Start: at(1), Result: catalog.ResultInterrupted},
		26: {Target: "flaky", Kind: backup, Start: at(2), Result: failed},
	})
	var ds []catalog.Drill
	for _, d := range []catalog.Drill{
		0: {Target: "db", SnapshotID: "s1", Start: at(0), End: at(1), RTO: time.Minute, Result: ok},
		1: {Target: "db", SnapshotID: "s2", Start: at(5), End: at(6), Result: failed, Error: "check failed"},
		2: {Target: "db", SnapshotID: "s3", Start: at(7), End: at(8), RTO: time.Second, Result: ok, Output: "check 1: ok"},
		3: {Target: "db", SnapshotID: "s4", Start: at(7), End: at(9), Result: failed},
		4: {Target: "files", SnapshotID: "f1", Start: at(3), End: at(4), RTO: 2 * time.Second, Result: ok},
		5: {Target: "files", SnapshotID: "f2", Start: at(3), End: at(4), RTO: 3 * time.Second, Result: ok},
		6: {Target: "files", SnapshotID: "f0", Start: at(1), End: at(2), Result: ok},
		7: {Target: "archive", SnapshotID: "a1", Start: at(0), End: at(1), Result: failed},
		8: {Target: "archive", SnapshotID: "a1", Start: at(2), End: at(3), Result: catalog.ResultInterrupted},
		9: {Target: "archive", SnapshotID: "a0", Start: at(-1), End: at(0), RTO: time.Minute, Result: ok},
	} {
		got, err := s.RecordDrill(ctx, d)
		if err != nil {
			t.Fatalf("RecordDrill: %v", err)
		}
		got.Start, got.End = got.Start.UTC(), got.End.UTC()
		ds = append(ds, got)
	}
	want := map[string]catalog.Summary{
		"db": {LastBackup: &rs[3], LastGoodBackup: &rs[1], LastDrill: &ds[3], LastGoodDrill: &ds[2],
			Failed: map[catalog.Kind]int{backup: 1, prune: 1}, DrillsFailed: 2},
		"files": {LastBackup: &rs[9], LastGoodBackup: &rs[8], LastDrill: &ds[5], LastGoodDrill: &ds[5],
			Failed: map[catalog.Kind]int{backup: 2}},
		"web":     {LastBackup: &rs[12], LastGoodBackup: &rs[12], Failed: map[catalog.Kind]int{backup: 1}},
		"broken":  {LastBackup: &rs[23], Failed: map[catalog.Kind]int{backup: 2}},
		"local":   {Failed: map[catalog.Kind]int{check: 1}},
		"pruned":  {Failed: map[catalog.Kind]int{prune: 1}},
		"one":     {LastBackup: &rs[22], LastGoodBackup: &rs[22]},
		"flaky":   {LastBackup: &rs[26], LastGoodBackup: &rs[24], Failed: map[catalog.Kind]int{backup: 1}},
		"archive": {LastDrill: &ds[8], LastGoodDrill: &ds[9], DrillsFailed: 1},
	}
	got := summaries(t, s)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summaries:\n%s", diffSummaries(got, want))
	}
	for _, target := range []string{"quiet", "nope"} {
		if _, ok := got[target]; ok {
			t.Errorf("Summaries has %s, which has no backup run, drill or failure", target)
		}
	}
	// The summaries are copies: changing one run changes no other.
	if one := got["one"]; one.LastBackup == one.LastGoodBackup {
		t.Errorf("LastBackup and LastGoodBackup of one share a pointer")
	}
	if f := got["files"]; f.LastDrill == f.LastGoodDrill {
		t.Errorf("LastDrill and LastGoodDrill of files share a pointer")
	}
	// With the running run finished, it is the newest good backup.
	fin := rs[3]
	fin.End, fin.Result = at(4).UTC(), ok
	if err := s.FinishRun(ctx, fin); err != nil {
		t.Fatal(err)
	}
	if db := summaries(t, s)["db"]; db.LastBackup == nil || db.LastGoodBackup == nil ||
		!reflect.DeepEqual(*db.LastBackup, fin) || !reflect.DeepEqual(*db.LastGoodBackup, fin) {
		t.Errorf("db after FinishRun: %s; want run %d as last and last good", fmtSummary(db), fin.ID)
	}
}

// testSummariesFilled checks Summaries against Summarize of all runs and
// drills on a larger catalog.
func testSummariesFilled(t *testing.T, s catalog.Store) {
	names, err := Fill(t.Context(), s, 15, 60, epoch)
	if err != nil {
		t.Fatal(err)
	}
	got := summaries(t, s)
	if len(got) != len(names)+1 { // and the repository, for its failed checks
		t.Errorf("Summaries: %d targets, want %d", len(got), len(names)+1)
	}
	for i, name := range names {
		sum := got[name]
		if sum.LastBackup == nil || sum.LastGoodBackup == nil || sum.LastDrill == nil || sum.LastGoodDrill == nil {
			t.Fatalf("%s: %s; want every newest run and drill", name, fmtSummary(sum))
		}
		if running := i%7 == 0; (sum.LastBackup.Result == catalog.ResultRunning) != running {
			t.Errorf("%s: last backup %s, running want %v", name, sum.LastBackup.Result, running)
		}
		if want := fmt.Sprintf("%s-58", name); sum.LastGoodBackup.RunID != want {
			t.Errorf("%s: last good backup %s, want %s", name, sum.LastGoodBackup.RunID, want)
		}
	}
}

// testSummariesTyped checks Summary.TypedRuns, and Lookup.TypedRuns: of
// a target whose newest backup run is of TypedProvider, the newest run
// of each backup type (its label's, else its run ID's) and result ok,
// partial or failed, newest first, however far back (here a full before
// 1500 incr runs); none for runs of no type, for other targets, nor for
// a target whose newest run is of another provider.
func testSummariesTyped(t *testing.T, s catalog.Store) {
	ctx := t.Context()
	i := 0
	add := func(target, provider, runID, snap string, res catalog.Result) catalog.Run {
		t.Helper()
		r := catalog.Run{RunID: runID, Kind: catalog.KindBackup, Target: target,
			Provider: provider, SnapshotID: snap, Start: at(i), Result: res}
		if res != catalog.ResultRunning {
			r.End = at(i).Add(time.Minute)
		}
		r, err := s.StartRun(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		i++
		return r
	}
	// pgBackRest's labels, and the homelab run IDs of typed runs.
	full := func() string { return fmt.Sprintf("20261123-%06dF", i) }
	label := func(typ string) string { return "20261123-000000F_" + full()[:15] + typ }
	id := func(typ string) string { return fmt.Sprintf("20261123-%06d-%s", i, typ) }
	pg := func(runID, snap string, res catalog.Result) catalog.Run {
		t.Helper()
		return add("pg", catalog.TypedProvider, runID, snap, res)
	}
	pg(id("full"), full(), catalog.ResultOK)
	i-- // the same start: the one with the higher ID is the newer
	fullOK := pg(id("full"), full(), catalog.ResultOK)
	diffPartial := pg(id("diff"), label("D"), catalog.ResultPartial)
	fullFailed := pg(id("full"), "", catalog.ResultFailed)
	diffFailed := pg(id("diff"), "", catalog.ResultFailed)
	pg("20261123-000004", "4e5f6a7b", catalog.ResultOK)              // no type
	pg("20261123-000005", "", catalog.ResultFailed)                  // no type
	diffOK := pg(id("diff"), "20261123-000006F_x", catalog.ResultOK) // no label: its run ID's type
	results := []catalog.Result{catalog.ResultOK, catalog.ResultFailed, catalog.ResultPartial, catalog.ResultOK, catalog.ResultInterrupted}
	incr := map[catalog.Result]catalog.Run{}
	for j := range 1500 {
		res := results[j%len(results)]
		snap := label("I")
		if res == catalog.ResultFailed || res == catalog.ResultInterrupted {
			snap = ""
		}
		incr[res] = pg(id("incr"), snap, res)
	}
	pg(id("incr"), "", catalog.ResultRunning)
	for range 3 {
		add("moved", catalog.TypedProvider, id("full"), full(), catalog.ResultOK)
		add("files", "restic", "20261123-000000-full", full(), catalog.ResultOK)
		add("untyped", catalog.TypedProvider, "r-1", "", catalog.ResultFailed)
	}
	add("moved", "restic", "r-2", "", catalog.ResultOK)
	want := []catalog.Run{incr[catalog.ResultOK], incr[catalog.ResultPartial], incr[catalog.ResultFailed],
		diffOK, diffFailed, fullFailed, diffPartial, fullOK}
	got := summaries(t, s)
	if g := got["pg"].TypedRuns; !reflect.DeepEqual(g, want) {
		t.Errorf("pg: typed runs %s, want %s", runIDs(g), runIDs(want))
	}
	for _, target := range []string{"moved", "files", "untyped"} {
		if g := got[target].TypedRuns; g != nil {
			t.Errorf("%s: typed runs %s, want none", target, runIDs(g))
		}
	}
	l, ok := s.(catalog.Lookup)
	if !ok {
		return
	}
	for target, want := range map[string][]catalog.Run{"pg": want, "untyped": nil, "nope": nil} {
		if g, err := l.TypedRuns(ctx, target); err != nil || !reflect.DeepEqual(g, want) {
			t.Errorf("TypedRuns(%s) = %s, %v; want %s", target, runIDs(g), err, runIDs(want))
		}
	}
}

// runIDs lists the runs' IDs and run IDs.
func runIDs(runs []catalog.Run) string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, fmt.Sprintf("%d:%s", r.ID, r.RunID))
	}
	return "[" + strings.Join(ids, " ") + "]"
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

// Fill writes a catalog as a lab of targets backup targets ("t00",
// "t01"...) would after runs days: per target, runs daily backup runs (the
// tenth of every ten failed, the fifth partial, the newest of every seventh
// target still running), a prune after every tenth backup (every third
// prune failed), and a restore drill every tenth day (every fifth failed);
// plus a daily check of repository "repo" (every fourth failed). Times run
// up to now. It returns the target names. Benchmarks use it to load a
// store; the suite uses it to compare Summaries with Runs and Drills.
func Fill(ctx context.Context, s catalog.Store, targets, runs int, now time.Time) ([]string, error) {
	var names []string
	day := func(j int) time.Time { return now.Add(-time.Duration(runs-j) * 24 * time.Hour) }
	for i := range targets {
		name := fmt.Sprintf("t%02d", i)
		names = append(names, name)
		for j := range runs {
			end := day(j).Add(time.Duration(i) * time.Minute)
			res := catalog.ResultOK
			switch j % 10 {
			case 9:
				res = catalog.ResultFailed
			case 4:
				res = catalog.ResultPartial
			}
			r := catalog.Run{
				RunID: fmt.Sprintf("%s-%d", name, j), Kind: catalog.KindBackup, Target: name, Provider: "restic",
				Repository: "repo", SnapshotID: fmt.Sprintf("%s-%08x", name, j), Start: end.Add(-5 * time.Minute), End: end,
				Bytes: 1 << 30, BytesAdded: int64(j) << 20, Files: 1000, Result: res,
			}
			if res == catalog.ResultFailed {
				r.SnapshotID, r.Error = "", "restic: exit 1"
			}
			if j == runs-1 && i%7 == 0 {
				r.End, r.Result = time.Time{}, catalog.ResultRunning
			}
			if _, err := s.StartRun(ctx, r); err != nil {
				return nil, err
			}
			if j%10 == 9 {
				p := catalog.Run{
					RunID: fmt.Sprintf("%s-prune-%d", name, j), Kind: catalog.KindPrune, Target: name,
					Repository: "repo", Start: end.Add(time.Minute), End: end.Add(2 * time.Minute), Result: catalog.ResultOK,
				}
				if j%30 == 29 {
					p.Result, p.Error = catalog.ResultFailed, "repository is locked"
				}
				if _, err := s.StartRun(ctx, p); err != nil {
					return nil, err
				}
			}
			if j%10 == 5 {
				d := catalog.Drill{
					RunID: fmt.Sprintf("%s-drill-%d", name, j), Target: name, SnapshotID: r.SnapshotID,
					Start: end.Add(time.Hour), End: end.Add(time.Hour + time.Minute), RTO: 50 * time.Second, Result: catalog.ResultOK,
				}
				if j%50 == 45 {
					d.Result, d.Error = catalog.ResultFailed, "check a.txt: missing"
				}
				if _, err := s.RecordDrill(ctx, d); err != nil {
					return nil, err
				}
			}
		}
	}
	for j := range runs {
		c := catalog.Run{
			RunID: fmt.Sprintf("check-%d", j), Kind: catalog.KindCheck, Target: "repo", Repository: "repo",
			Start: day(j).Add(2 * time.Hour), End: day(j).Add(2*time.Hour + time.Minute), Result: catalog.ResultOK,
		}
		if j%4 == 3 {
			c.Result, c.Error = catalog.ResultFailed, "check: errors were found"
		}
		if _, err := s.StartRun(ctx, c); err != nil {
			return nil, err
		}
	}
	return names, nil
}
