package app_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/status"
)

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// energyLab parses a lab file of text in dir and opens a catalog there.
func energyLab(t *testing.T, dir, text string) (*lab.Lab, *catalog.SQLite) {
	t.Helper()
	l, err := lab.Parse(filepath.Join(dir, "lab.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalog.Open(t.Context(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return l, store
}

// meterRound runs one round of s at now and records its samples as the
// daemon does.
func meterRound(t *testing.T, s *app.HostSampler, l *lab.Lab, store *catalog.SQLite, now time.Time) status.HostStatus {
	t.Helper()
	h, ss := s.Sample(t.Context(), l, store, now)
	if err := store.AddSamples(t.Context(), ss); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEnergyRAPL meters a fake powercap tree whose package-0 counter
// wraps: 30 J in 600 s, which is 30/3.6e6 kWh, 0.05 W, and over 30 days
// 4320 times that: 0.036 kWh and 0.0072 EUR at 0.20 EUR/kWh. A new meter
// (a restarted daemon) continues the count from the catalog.
func TestEnergyRAPL(t *testing.T) {
	dir := t.TempDir()
	powercap := filepath.Join(dir, "powercap")
	const max = 262143328850
	setRAPL := func(pkg0, pkg1 uint64) {
		for zone, uj := range map[string]uint64{"intel-rapl:0": pkg0, "intel-rapl:1": pkg1} {
			writeFile(t, filepath.Join(powercap, zone, "energy_uj"), strconv.FormatUint(uj, 10)+"\n")
			writeFile(t, filepath.Join(powercap, zone, "max_energy_range_uj"), strconv.FormatUint(max, 10)+"\n")
			writeFile(t, filepath.Join(powercap, zone, "name"), "package\n")
		}
	}
	l, store := energyLab(t, dir, "energy: {price_per_kwh: 0.20, currency: EUR, rapl: true, powercap: powercap}\n")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &app.HostSampler{}
	setRAPL(max-1_000_000, 10_000_000)
	if h := meterRound(t, s, l, store, t0); h.Energy == nil || h.Energy.Measured() || h.Energy.Error != "" {
		t.Fatalf("baseline: %+v", h.Energy)
	}
	setRAPL(4_000_000, 35_000_000) // package-0 wrapped: 1 J + 4 J; package-1: 25 J
	h := meterRound(t, s, l, store, t0.Add(10*time.Minute))
	e := h.Energy
	if e.Span != 10*time.Minute || !near(e.KWh, 30/3.6e6) || !near(e.AvgWatts, 0.05) || !near(e.KWh30, 0.036) || !near(e.Cost30, 0.0072) || e.TotalJoules != 30 || e.Currency != "EUR" {
		t.Errorf("energy %+v", e)
	}
	var b bytes.Buffer
	r := status.Report{Lab: "l", Generated: t0, Healthy: true}
	r.AddHost(&h)
	status.RenderText(&b, r, t0)
	if !strings.Contains(b.String(), "energy ≈ 0.0 kWh, 0.01 EUR for 30 days (estimated from 10m of rapl samples, avg 0 W)\n") {
		t.Errorf("text:\n%s", b.String())
	}
	b.Reset()
	status.RenderJSON(&b, r)
	if !strings.Contains(b.String(), `"energy":{"source":"rapl","estimated":true,"span_seconds":600,`) {
		t.Errorf("json: %s", b.String())
	}

	// Restarted: a baseline, then 60 J more on top of the 30 counted; the
	// 50 minutes between are not measured time.
	s = &app.HostSampler{}
	setRAPL(4_000_000, 35_000_000)
	meterRound(t, s, l, store, t0.Add(time.Hour))
	setRAPL(64_000_000, 35_000_000)
	e = meterRound(t, s, l, store, t0.Add(time.Hour+10*time.Minute)).Energy
	if e.TotalJoules != 90 || e.Span != 20*time.Minute || !near(e.KWh, 90/3.6e6) {
		t.Errorf("after a restart: %+v", e)
	}

	// RAPL unreadable: said, with the figures of the samples there are.
	os.RemoveAll(powercap)
	e = meterRound(t, s, l, store, t0.Add(2*time.Hour)).Energy
	if !strings.Contains(e.Error, "rapl:") || e.TotalJoules != 90 {
		t.Errorf("without rapl: %+v", e)
	}
}

// TestEnergyWattsModel meters a fake /proc/stat under an 18-45 W model:
// 600 s at a busy share of 0.375 (16875 J) and 600 s at 0.5 (18900 J):
// 35775 J in 1200 s, 0.0099375 kWh, 29.8125 W on average, and over 30
// days 2160 times that: 21.465 kWh, 4.293 EUR at 0.20 EUR/kWh. A gap of
// more than three intervals (the daemon was stopped) is not counted.
func TestEnergyWattsModel(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	setStat := func(busy, idle int) {
		writeFile(t, filepath.Join(proc, "stat"), "cpu  "+strconv.Itoa(busy)+" 0 0 "+strconv.Itoa(idle)+" 0 0 0 0 0 0\n")
	}
	l, store := energyLab(t, dir, "energy: {price_per_kwh: 0.20, currency: EUR, watts: {idle: 18, busy: 45}}\n")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &app.HostSampler{Proc: proc}
	setStat(1000, 9000)
	meterRound(t, s, l, store, t0)
	setStat(1300, 9500) // 300 of 800 ticks busy: 0.375
	meterRound(t, s, l, store, t0.Add(10*time.Minute))
	setStat(1700, 9900) // 400 of 800: 0.5
	e := meterRound(t, s, l, store, t0.Add(20*time.Minute)).Energy
	if e.Source != "watts model 18-45 W" || e.TotalJoules != 35775 || e.Span != 20*time.Minute || !near(e.KWh, 0.0099375) ||
		!near(e.AvgWatts, 29.8125) || !near(e.KWh30, 21.465) || !near(e.Cost30, 4.293) {
		t.Errorf("energy %+v", e)
	}
	cpu, err := store.SamplesOf(t.Context(), status.CPUSeries, time.Time{})
	if err != nil || len(cpu) != 2 || cpu[0].Value != 0.375 || cpu[1].Value != 0.5 {
		t.Errorf("cpu samples %+v, %v", cpu, err)
	}
	// Two hours later (more than 3 intervals of 10m): not counted.
	setStat(2700, 10900)
	if e := meterRound(t, s, l, store, t0.Add(140*time.Minute)).Energy; e.TotalJoules != 35775 {
		t.Errorf("a gap was counted: %+v", e)
	}
}
