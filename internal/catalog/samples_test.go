package catalog_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// TestSamples: samples are kept per series, oldest first; CompactSamples
// deletes those older than SampleMaxAge and thins those older than
// SampleFullAge to the first and last of each series and hour.
func TestSamples(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var ss []catalog.Sample
	// Every 10 minutes for 40 days, two series.
	for m := 0; m <= 40*24*60; m += 10 {
		at := now.Add(-time.Duration(m) * time.Minute)
		ss = append(ss, catalog.Sample{Series: "fs:/srv", Time: at, Value: float64(m)},
			catalog.Sample{Series: "cpu", Time: at, Value: 0.5})
	}
	if err := s.AddSamples(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSamples(ctx, []catalog.Sample{{Time: now}}); err == nil {
		t.Error("a sample without a series was recorded")
	}
	if err := s.CompactSamples(ctx, now); err != nil {
		t.Fatal(err)
	}
	names, err := s.SeriesNames(ctx)
	if err != nil || fmt.Sprint(names) != "[cpu fs:/srv]" {
		t.Fatalf("series %v, %v", names, err)
	}
	got, err := s.SamplesOf(ctx, "fs:/srv", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Kept: every sample of the last 48 h (289 of them, now included),
	// and the first and last of each hour from 35 days ago up to 48 h
	// ago (2*33*24).
	if want := 289 + 2*33*24; len(got) != want {
		t.Errorf("%d samples kept, want %d", len(got), want)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].Time.After(got[i-1].Time) {
			t.Fatalf("not oldest first at %d: %v then %v", i, got[i-1].Time, got[i].Time)
		}
	}
	if oldest := got[0].Time; oldest.Before(now.Add(-catalog.SampleMaxAge)) {
		t.Errorf("oldest sample %s is older than %s", oldest, catalog.SampleMaxAge)
	}
	if last := got[len(got)-1]; !last.Time.Equal(now) || last.Value != 0 || last.Series != "fs:/srv" {
		t.Errorf("newest sample %+v", last)
	}
	recent, err := s.SamplesOf(ctx, "cpu", now.Add(-time.Hour))
	if err != nil || len(recent) != 7 {
		t.Errorf("cpu samples of the last hour: %d, %v; want 7", len(recent), err)
	}
}

// TestCompactKeepsGaps: thinning keeps the last sample of each series and
// hour as well as the first, so a time the daemon was down (the energy
// meter's count flat across it) stays a gap: the energy figures of
// thinned samples measure the time the meter ran, not the downtime.
func TestCompactKeepsGaps(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	ctx := t.Context()
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var ss []catalog.Sample
	// 1 W (60 J a minute) from 10:00 to 10:59, down until 14:30 (the
	// restart's baseline keeps the count), 1 W again until 15:59.
	joules := 0.0
	for m := 0; m <= 59; m++ {
		ss = append(ss, catalog.Sample{Series: status.EnergySeries, Time: start.Add(time.Duration(m) * time.Minute), Value: joules})
		joules += 60
	}
	joules -= 60
	for m := 270; m <= 359; m++ {
		ss = append(ss, catalog.Sample{Series: status.EnergySeries, Time: start.Add(time.Duration(m) * time.Minute), Value: joules})
		joules += 60
	}
	if err := s.AddSamples(ctx, ss); err != nil {
		t.Fatal(err)
	}
	now := start.Add(5 * 24 * time.Hour)
	if err := s.CompactSamples(ctx, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.SamplesOf(ctx, status.EnergySeries, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) >= len(ss) {
		t.Fatalf("%d of %d samples kept: not thinned", len(got), len(ss))
	}
	e := status.EnergyOf(got, &lab.Energy{RAPL: true, PricePerKWh: 0.3, Currency: "EUR"}, now)
	if e.Span != 148*time.Minute || math.Abs(e.AvgWatts-1) > 1e-9 {
		t.Errorf("thinned samples measure %s at %g W; want 2h28m at 1 W", e.Span, e.AvgWatts)
	}
}

// TestSampleWriteKeepsCache: samples go to their own file, so a write of
// samples, by the cache's own handle (the daemon's sampler) or another
// one, leaves the catalog's Version and what a Cache over it holds: the
// summaries are read once, while the samples read back include the new
// one.
func TestSampleWriteKeepsCache(t *testing.T) {
	cs, c, other, now := withOther(t)
	before := readAll(t, c)
	v0, err := c.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []catalog.Samples{cs.SQLite, other} {
		at := now.Add(time.Duration(i+1) * time.Minute)
		if err := w.AddSamples(t.Context(), []catalog.Sample{{Series: "fs:/srv", Time: at, Value: float64(100 + i)}}); err != nil {
			t.Fatal(err)
		}
		if err := w.CompactSamples(t.Context(), at); err != nil {
			t.Fatal(err)
		}
		if v, err := c.Version(t.Context()); err != nil || v != v0 {
			t.Errorf("catalog version %d after sample write %d, want %d (%v)", v, i+1, v0, err)
		}
		if got := readAll(t, c); !reflect.DeepEqual(got, before) {
			t.Errorf("after sample write %d: cached %+v, want %+v", i+1, got, before)
		}
		got, err := cs.SamplesOf(t.Context(), "fs:/srv", at)
		if err != nil || len(got) != 1 || got[0].Value != float64(100+i) {
			t.Errorf("samples at %s after write %d: %+v, %v", at, i+1, got, err)
		}
	}
	if n := cs.summaries.Load(); n != 1 {
		t.Errorf("summaries read %d times, want once: sample writes invalidated the cache", n)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cs.Path()), "samples.db")); err != nil || cs.SamplesPath() != filepath.Join(filepath.Dir(cs.Path()), "samples.db") {
		t.Errorf("samples file %s: %v", cs.SamplesPath(), err)
	}
}

// TestMoveSamples: opening a catalog of schema version 7, whose samples
// are in its samples table, moves them to the samples file (ids and all)
// and drops the table, so that the schema is a new catalog's; after a
// crash between the copy and the drop (the file holding the copy, the
// catalog still at 7) the next Open copies nothing twice. A new catalog
// makes no samples file.
func TestMoveSamples(t *testing.T) {
	dir := t.TempDir()
	want := schema(t, filepath.Join(dir, "new.db"))
	if _, err := os.Stat(filepath.Join(dir, "samples.db")); err == nil {
		t.Error("a new catalog made a samples file")
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var ss []catalog.Sample
	for m := range 30 {
		ss = append(ss, catalog.Sample{Series: "fs:/srv", Time: at.Add(time.Duration(m) * time.Minute), Value: float64(m)},
			catalog.Sample{Series: "energy", Time: at.Add(time.Duration(m) * time.Minute), Value: 0.5 * float64(m)})
	}
	for _, copied := range []bool{false, true} {
		t.Run(fmt.Sprintf("copied before a crash %t", copied), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			s := open(t, path)
			if copied {
				if err := s.AddSamples(t.Context(), ss); err != nil {
					t.Fatal(err)
				}
			}
			version7(t, s, ss)
			s.Close()

			s = open(t, path)
			defer s.Close()
			checkVersions(t, path)
			if got := schema(t, path); !slices.Equal(got, want) {
				t.Errorf("schema after migration:\n%s\nwant (a new catalog's):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if names, err := s.SeriesNames(t.Context()); err != nil || fmt.Sprint(names) != "[energy fs:/srv]" {
				t.Errorf("series %v, %v; want energy and fs:/srv", names, err)
			}
			for _, series := range []string{"fs:/srv", "energy"} {
				var want []catalog.Sample
				for _, x := range ss {
					if x.Series == series {
						want = append(want, x)
					}
				}
				got, err := s.SamplesOf(t.Context(), series, time.Time{})
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%s after the move: %+v, %v; want %+v", series, got, err, want)
				}
			}
			// A new sample follows the moved ones.
			if err := s.AddSamples(t.Context(), []catalog.Sample{{Series: "energy", Time: at.Add(time.Hour), Value: 99}}); err != nil {
				t.Fatal(err)
			}
			if got, err := s.SamplesOf(t.Context(), "energy", at.Add(time.Hour)); err != nil || len(got) != 1 || got[0].Value != 99 {
				t.Errorf("new sample: %+v, %v", got, err)
			}
		})
	}
}

// version7 takes s back to schema version 7 (migration 00007's samples
// table in the catalog, the later migrations undone) with ss in the
// table, as a homelab before migration 00008 left it.
func version7(t *testing.T, s *catalog.SQLite, ss []catalog.Sample) {
	t.Helper()
	m7, err := os.ReadFile("migrations/sqlite/00007_samples.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := catalog.DB(s)
	if _, err := db.Exec(string(m7)); err != nil {
		t.Fatal(err)
	}
	// Undo the migrations after 8 (8 moved the samples table away).
	if _, err := db.Exec(`DROP INDEX runs_backup_type`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id > 7`); err != nil {
		t.Fatal(err)
	}
	for _, x := range ss {
		if _, err := db.Exec(`INSERT INTO samples (series, time, value) VALUES (?, ?, ?)`, x.Series, x.Time.Unix(), x.Value); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentSamplesFile: handles on one catalog (processes, as the
// daemon and `homelab status`) that first use its samples file at the
// same time all make it or find it made, and each one's samples are kept.
func TestConcurrentSamplesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	const n = 8
	handles := make([]*catalog.SQLite, n)
	for i := range handles {
		handles[i] = open(t, path)
		defer handles[i].Close()
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range handles {
		wg.Go(func() {
			errs[i] = s.AddSamples(t.Context(), []catalog.Sample{{Series: "cpu", Time: at.Add(time.Duration(i) * time.Minute), Value: float64(i)}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got, err := handles[0].SamplesOf(t.Context(), "cpu", time.Time{}); err != nil || len(got) != n {
		t.Errorf("%d samples, %v; want %d", len(got), err, n)
	}
}
