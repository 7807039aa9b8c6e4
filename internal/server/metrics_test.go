package server

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
	"homelab/internal/lab"
)

// scrape fetches /metrics over HTTP and parses it with Prometheus's text
// parser.
func scrape(t *testing.T, url string, header ...string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := get(t, url+"/metrics", header...)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d: %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// series returns the values of a family by their label values joined
// with "/", in label name order.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	if f.GetType() != typ {
		t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
	}
	if f.GetHelp() == "" {
		t.Errorf("%s has no help", name)
	}
	for _, m := range f.Metric {
		var labels []string
		for _, lp := range m.Label {
			labels = append(labels, lp.GetValue())
		}
		v := m.GetGauge().GetValue()
		if typ == dto.MetricType_COUNTER {
			v = m.GetCounter().GetValue()
		}
		out[strings.Join(labels, "/")] = v
	}
	return out
}

// expected computes, from the catalog's own records, what each metric
// must say.
func expected(t *testing.T, s catalog.Store, targets []string) map[string]map[string]float64 {
	t.Helper()
	ctx := t.Context()
	want := map[string]map[string]float64{
		"homelab_backup_last_success_timestamp_seconds": {},
		"homelab_backup_duration_seconds":               {},
		"homelab_backup_size_bytes":                     {},
		"homelab_drill_last_success_timestamp_seconds":  {},
		"homelab_drill_restore_seconds":                 {},
		"homelab_job_failures_total":                    {},
	}
	for _, target := range targets {
		runs, err := s.Runs(ctx, catalog.RunFilter{Target: target, Kind: catalog.KindBackup})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs { // newest first
			if r.Result == catalog.ResultOK || r.Result == catalog.ResultPartial {
				want["homelab_backup_last_success_timestamp_seconds"][target] = float64(r.End.Unix())
				want["homelab_backup_duration_seconds"][target] = r.End.Sub(r.Start).Seconds()
				want["homelab_backup_size_bytes"][target] = float64(r.Bytes)
				break
			}
		}
		drills, err := s.Drills(ctx, catalog.DrillFilter{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range drills {
			if d.Result == catalog.ResultOK {
				want["homelab_drill_last_success_timestamp_seconds"][target] = float64(d.End.Unix())
				want["homelab_drill_restore_seconds"][target] = d.RTO.Seconds()
				break
			}
		}
	}
	runs, err := s.Runs(ctx, catalog.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	fails := want["homelab_job_failures_total"]
	for _, r := range runs {
		if r.Result == catalog.ResultFailed {
			fails[string(r.Kind)+"/"+r.Target]++
		}
	}
	drills, err := s.Drills(ctx, catalog.DrillFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drills {
		if d.Result == catalog.ResultFailed {
			fails["drill/"+d.Target]++
		}
	}
	return want
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, "", nil)
	fams := scrape(t, f.url)
	want := expected(t, f.store, f.lab.BackupNames())

	gauges := []string{
		"homelab_backup_last_success_timestamp_seconds", "homelab_backup_duration_seconds",
		"homelab_backup_size_bytes", "homelab_drill_last_success_timestamp_seconds", "homelab_drill_restore_seconds",
	}
	for _, name := range gauges {
		got := series(t, fams, name, dto.MetricType_GAUGE)
		if !equalMaps(got, want[name]) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, want[name])
		}
		if _, ok := got["scratch"]; ok {
			t.Errorf("%s has a series for scratch, which never ran", name)
		}
	}
	// The same numbers, spelled out.
	spelled := map[string]map[string]float64{
		"homelab_backup_last_success_timestamp_seconds": {
			"files":     float64(at(0, -15).Add(150 * time.Second).Unix()),
			"gitlab-db": float64(time.Date(2026, 11, 21, 2, 7, 12, 0, time.UTC).Unix()),
			"photos":    float64(time.Date(2026, 11, 23, 2, 12, 0, 0, time.UTC).Unix()),
		},
		"homelab_backup_duration_seconds": {"files": 150, "gitlab-db": 432, "photos": 42 * 60},
		"homelab_backup_size_bytes":       {"files": 99_723_674, "gitlab-db": 310 * MiB, "photos": 412 << 30},
		"homelab_drill_last_success_timestamp_seconds": {
			"files": float64(at(-1, 0).Unix() + 5), "gitlab-db": float64(at(-120, 2).Unix()), "photos": float64(at(-72, 11).Unix()),
		},
		"homelab_drill_restore_seconds": {"files": 4.2, "gitlab-db": 72, "photos": 600},
	}
	for name, w := range spelled {
		if got := series(t, fams, name, dto.MetricType_GAUGE); !equalMaps(got, w) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, w)
		}
	}

	// Failures: what the catalog holds, and a zero for every other kind
	// each target (and the repository, for checks) can fail at.
	failures := series(t, fams, "homelab_job_failures_total", dto.MetricType_COUNTER)
	for k, v := range want["homelab_job_failures_total"] {
		if failures[k] != v {
			t.Errorf("failures %s = %v, want %v", k, failures[k], v)
		}
	}
	wantFailures := map[string]float64{
		"backup/files": 1, "prune/files": 1, "drill/files": 1,
		"backup/gitlab-db": 0, "prune/gitlab-db": 0, "drill/gitlab-db": 0,
		"backup/photos": 0, "prune/photos": 0, "drill/photos": 1,
		"backup/scratch": 0, "prune/scratch": 0, "drill/scratch": 0,
		"check/local": 1,
	}
	if !equalMaps(failures, wantFailures) {
		t.Errorf("failures:\n got %v\nwant %v", sorted(failures), sorted(wantFailures))
	}

	overdue := series(t, fams, "homelab_target_overdue", dto.MetricType_GAUGE)
	if w := map[string]float64{"files": 0, "gitlab-db": 1, "photos": 0, "scratch": 0}; !equalMaps(overdue, w) {
		t.Errorf("overdue %v, want %v", overdue, w)
	}

	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestMetricsAtScrapeTime records runs after the server started, as the
// CLI would, and expects the next scrape to show them.
func TestMetricsAtScrapeTime(t *testing.T) {
	f := newFixture(t, "s3cret", nil)
	auth := []string{"Authorization", "Bearer s3cret"}
	before := scrape(t, f.url, auth...)
	if got := series(t, before, "homelab_target_overdue", dto.MetricType_GAUGE)["gitlab-db"]; got != 1 {
		t.Fatalf("gitlab-db overdue %v, want 1", got)
	}

	start := at(0, -8)
	addRun(t, f.store, catalog.Run{Kind: catalog.KindBackup, Target: "gitlab-db", Start: start, End: start.Add(3 * time.Minute),
		Bytes: 311 * MiB, Result: catalog.ResultOK})
	addRun(t, f.store, catalog.Run{Kind: catalog.KindBackup, Target: "scratch", Start: at(0, -5), End: at(0, -4),
		Result: catalog.ResultFailed, Error: "boom"})
	addDrill(t, f.store, catalog.Drill{Target: "gitlab-db", Start: at(0, -3), End: at(0, -2), RTO: 55 * time.Second, Result: catalog.ResultOK})
	if _, ok := series(t, before, "homelab_upgrade_unfinished", dto.MetricType_GAUGE)["gitlab"]; ok {
		t.Error("an unfinished upgrade of gitlab before any")
	}
	if got := series(t, before, "homelab_unfinished_changes", dto.MetricType_GAUGE); !equalMaps(got, map[string]float64{"upgrade": 0, "deploy": 0, "snapshot create": 0, "snapshot restore": 0}) {
		t.Errorf("unfinished changes before any: %v", got)
	}
	if err := f.store.CreateSaga(t.Context(), catalog.Saga{ID: "20261123T100000Z-00000001", Kind: "upgrade", Subject: "gitlab",
		Plan: []string{"set version 17.0.0-ce.0"}, State: catalog.SagaNeedsAttention, Start: at(0, -1)}); err != nil {
		t.Fatal(err)
	}
	// A deploy killed mid-way: no process holds its lock.
	if err := f.store.CreateSaga(t.Context(), catalog.Saga{ID: "20261123T100000Z-00000002", Kind: "deploy", Subject: "web",
		Plan: []string{"flip haproxy to green"}, State: catalog.SagaRunning, Start: at(0, -1)}); err != nil {
		t.Fatal(err)
	}

	if got := series(t, before, "homelab_lab_snapshots", dto.MetricType_GAUGE); !equalMaps(got, map[string]float64{"complete": 0, "creating": 0, "incomplete": 0}) {
		t.Errorf("lab snapshots before any: %v", got)
	}
	if _, ok := before["homelab_lab_snapshot_newest_timestamp_seconds"]; ok {
		t.Error("a newest lab snapshot before any")
	}
	for _, ls := range []catalog.LabSnapshot{
		{Name: "old", State: catalog.LabSnapshotComplete, Created: at(0, -30)},
		{Name: "before", State: catalog.LabSnapshotComplete, Created: at(0, -7)},
		{Name: "failed", State: catalog.LabSnapshotIncomplete, Created: at(0, -6)},
	} {
		if err := f.store.CreateLabSnapshot(t.Context(), ls); err != nil {
			t.Fatal(err)
		}
	}

	after := scrape(t, f.url, auth...)
	if got := series(t, after, "homelab_lab_snapshots", dto.MetricType_GAUGE); !equalMaps(got, map[string]float64{"complete": 2, "creating": 0, "incomplete": 1}) {
		t.Errorf("lab snapshots: %v, want 2 complete and 1 incomplete", got)
	}
	if got := series(t, after, "homelab_unfinished_changes", dto.MetricType_GAUGE); !equalMaps(got, map[string]float64{"upgrade": 1, "deploy": 1, "snapshot create": 0, "snapshot restore": 0}) {
		t.Errorf("unfinished changes: %v, want 1 upgrade and 1 deploy", got)
	}
	checks := []struct {
		name, labels string
		typ          dto.MetricType
		want         float64
	}{
		{"homelab_target_overdue", "gitlab-db", dto.MetricType_GAUGE, 0},
		{"homelab_backup_last_success_timestamp_seconds", "gitlab-db", dto.MetricType_GAUGE, float64(start.Add(3 * time.Minute).Unix())},
		{"homelab_backup_duration_seconds", "gitlab-db", dto.MetricType_GAUGE, 180},
		{"homelab_backup_size_bytes", "gitlab-db", dto.MetricType_GAUGE, 311 * MiB},
		{"homelab_drill_last_success_timestamp_seconds", "gitlab-db", dto.MetricType_GAUGE, float64(at(0, -2).Unix())},
		{"homelab_drill_restore_seconds", "gitlab-db", dto.MetricType_GAUGE, 55},
		{"homelab_job_failures_total", "backup/scratch", dto.MetricType_COUNTER, 1},
		{"homelab_upgrade_unfinished", "gitlab", dto.MetricType_GAUGE, 1},
		{"homelab_lab_snapshot_newest_timestamp_seconds", "", dto.MetricType_GAUGE, float64(at(0, -7).Unix())},
	}
	for _, c := range checks {
		got, ok := series(t, after, c.name, c.typ)[c.labels]
		if !ok || got != c.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// A failed run alone is no good backup: still no series for scratch.
	if _, ok := series(t, after, "homelab_backup_last_success_timestamp_seconds", dto.MetricType_GAUGE)["scratch"]; ok {
		t.Error("scratch has a last success")
	}
}

func sorted(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v ", k, m[k])
	}
	return b.String()
}

// BenchmarkCollect is one scrape's catalog reads and metrics (without
// HTTP) over a lab of 50 targets with 100 backup runs and 10 drills each
// (catalogtest.Fill).
func BenchmarkCollect(b *testing.B) {
	s, err := catalog.Open(b.Context(), filepath.Join(b.TempDir(), "c.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	names, err := catalogtest.Fill(b.Context(), s, 50, 100, epoch)
	if err != nil {
		b.Fatal(err)
	}
	l := &lab.Lab{Name: "bench", Backups: map[string]*lab.Backup{},
		Repositories: map[string]*lab.Repository{"repo": {Name: "repo"}}}
	for _, name := range names {
		l.Backups[name] = &lab.Backup{Name: name, Provider: lab.ProviderRestic, Repository: "repo", Schedule: "0 3 * * *"}
	}
	c := NewCollector(func() *lab.Lab { return l }, s, func() time.Time { return epoch })
	ch := make(chan prometheus.Metric, 1024)
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			if m := <-ch; m.Desc() == descTargetOverdue {
				var d dto.Metric
				if err := m.Write(&d); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
