package catalog_test

import (
	"fmt"
	"math"
	"path/filepath"
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
