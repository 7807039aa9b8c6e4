package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/status"
)

// scrapeLab is a lab of the targets names (daily backups, monthly drills)
// and repository "repo", with its state in dir.
func scrapeLab(t testing.TB, dir string, names []string) *lab.Lab {
	t.Helper()
	yaml := "name: scraped\nstate_dir: " + dir + "\nrepositories:\n  repo: {url: /srv/repo, password_file: /etc/pass}\nbackups:\n"
	for _, n := range names {
		yaml += fmt.Sprintf("  %s:\n    provider: restic\n    repository: repo\n    source: {paths: [/srv/%s]}\n    schedule: \"0 3 * * *\"\n"+
			"    drill: {schedule: \"0 4 1 * *\", checks: [{path: /srv/%s/a.txt}]}\n", n, n, n)
	}
	l, err := lab.Parse(filepath.Join(dir, "lab.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// scrapeServer serves a lab of 50 targets whose catalog (at the path it
// returns) holds 30 days of catalogtest.Fill and an event per run.
func scrapeServer(t testing.TB, now func() time.Time) (*Server, *catalog.SQLite, *lab.Lab) {
	t.Helper()
	s, l := scrapeCatalog(t)
	return scrapeServerOf(t, s, l, now), s, l
}

// scrapeServerOf serves l with store s.
func scrapeServerOf(t testing.TB, s catalog.Store, l *lab.Lab, now func() time.Time) *Server {
	t.Helper()
	srv, err := New(Options{
		Addr: "127.0.0.1:0", Lab: func() *lab.Lab { return l }, Catalog: s, Now: now,
		Jobs:   func() []JobInfo { return []JobInfo{} },
		Health: func(context.Context, *lab.Lab) []health.Result { return nil },
		States: func(context.Context, *lab.Lab) []runtime.Result { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// scrapeCatalog is a lab of 50 targets and its catalog, with 30 days of
// catalogtest.Fill ending at epoch and an event per run.
func scrapeCatalog(t testing.TB) (*catalog.SQLite, *lab.Lab) {
	t.Helper()
	dir := t.TempDir()
	s, err := catalog.Open(t.Context(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	names, err := catalogtest.Fill(t.Context(), s, 50, 30, epoch)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(t.Context(), catalog.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		level := "info"
		if r.Result == catalog.ResultFailed {
			level = "error"
		}
		if err := s.AddEvent(t.Context(), catalog.Event{Time: r.Start, Level: level, Target: r.Target, Kind: string(r.Kind), Message: r.RunID}); err != nil {
			t.Fatal(err)
		}
	}
	return s, scrapeLab(t, dir, names)
}

// serve is the status code and body of GET path from h.
func serve(h http.Handler, path string) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Code, w.Body.String()
}

// BenchmarkScrape is one scrape of a daemon as bench/serve-scraped.sh
// measures it, without the network: GET /metrics and GET / over a lab of
// 50 targets with 30 days of history, the clock 15 s later at each (so
// the page is rendered again once in four scrapes, when the minute it
// shows changes). Its parts: "metrics" is GET /metrics alone and "page"
// GET / alone, at the same pace.
func BenchmarkScrape(b *testing.B) {
	for _, bench := range []struct {
		name  string
		paths []string
	}{
		{"scrape", []string{"/metrics", "/"}},
		{"metrics", []string{"/metrics"}},
		{"page", []string{"/"}},
	} {
		b.Run(bench.name, func(b *testing.B) {
			now := epoch
			srv, _, _ := scrapeServer(b, func() time.Time { return now })
			h := srv.Handler()
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(15 * time.Second)
				for _, p := range bench.paths {
					if code, body := serve(h, p); code != http.StatusOK {
						b.Fatalf("GET %s: %d %s", p, code, body)
					}
				}
			}
		})
	}
}

// uncached is a store that is no catalog.Versioned: a server over it
// reads the catalog for every request, as before the cache.
type uncached struct {
	catalog.Store
	catalog.Lookup
	catalog.Journal
	catalog.LabSnapshots
}

// homelabMetrics are the lines of a /metrics body about homelab's own
// metrics (not the Go runtime's or the process's, which change between
// scrapes).
func homelabMetrics(body string) string {
	var b strings.Builder
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "homelab_") || strings.Contains(line, " homelab_") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestCachedEqualsFresh scrapes a server over the cached catalog at
// several times, with writes by another handle on the catalog file (as
// the CLI makes them while the daemon runs) in between, and expects each
// page and each /metrics to be what a server reading the catalog afresh
// shows at that time. The times move a target from ok to overdue with no
// write in between: the cache keeps no time-dependent value.
func TestCachedEqualsFresh(t *testing.T) {
	s, l := scrapeCatalog(t)
	now := epoch
	clock := func() time.Time { return now }
	h := scrapeServerOf(t, s, l, clock).Handler()
	other, err := catalog.Open(t.Context(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })

	var prevPage, prevMetrics string
	check := func(step string, pageChange, metricsChange bool, want ...string) {
		t.Helper()
		fresh := scrapeServerOf(t, uncached{s, s, s, s}, l, clock).Handler()
		for i := range 2 { // the second from the cache
			code, page := serve(h, "/")
			mcode, metrics := serve(h, "/metrics")
			if code != http.StatusOK || mcode != http.StatusOK {
				t.Fatalf("%s: GET / %d, GET /metrics %d: %s %s", step, code, mcode, page, metrics)
			}
			_, freshPage := serve(fresh, "/")
			_, freshMetrics := serve(fresh, "/metrics")
			if page != freshPage {
				t.Errorf("%s, page %d: cached page differs from a fresh one:\n%s\nfresh:\n%s", step, i, page, freshPage)
			}
			if got, want := homelabMetrics(metrics), homelabMetrics(freshMetrics); got != want {
				t.Errorf("%s, scrape %d: cached metrics differ from fresh ones:\n%s\nfresh:\n%s", step, i, got, want)
			}
			for _, w := range want {
				if !strings.Contains(page+metrics, w) {
					t.Errorf("%s: no %q on the page or in the metrics", step, w)
				}
			}
			if pageChange && page == prevPage {
				t.Errorf("%s: page unchanged", step)
			}
			if metricsChange && homelabMetrics(metrics) == prevMetrics {
				t.Errorf("%s: metrics unchanged", step)
			}
			prevPage, prevMetrics = page, homelabMetrics(metrics)
			pageChange, metricsChange = false, false
		}
	}
	check("start", false, false, `homelab_target_overdue{target="t01"} 1`)

	// A good backup of t01 recorded by the other handle: t01 is no longer
	// overdue at the next scrape.
	r, err := other.StartRun(t.Context(), catalog.Run{RunID: "t01-new", Kind: catalog.KindBackup, Target: "t01", Provider: "restic",
		Repository: "repo", Start: epoch.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r.End, r.SnapshotID, r.Bytes, r.Result = epoch.Add(-50*time.Minute), "new", 12345, catalog.ResultOK
	if err := other.FinishRun(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	check("after a backup by another handle", true, true,
		`homelab_target_overdue{target="t01"} 0`, `homelab_backup_size_bytes{target="t01"} 12345`)

	// A failed drill and an error event by the other handle.
	if _, err := other.RecordDrill(t.Context(), catalog.Drill{RunID: "t02-drill-new", Target: "t02", SnapshotID: "x",
		Start: epoch.Add(-10 * time.Minute), End: epoch.Add(-9 * time.Minute), Result: catalog.ResultFailed, Error: "check a.txt: gone"}); err != nil {
		t.Fatal(err)
	}
	if err := other.AddEvent(t.Context(), catalog.Event{Time: epoch.Add(-9 * time.Minute), Level: "error", Target: "t02",
		Kind: "drill_failed", Message: "drill of t02 failed: check a.txt: gone"}); err != nil {
		t.Fatal(err)
	}
	check("after a drill and an event by another handle", true, true, "check a.txt: gone", "drill of t02 failed")

	// A lab snapshot taken by another handle: listed on the page, counted
	// and dated in the metrics.
	if err := other.CreateLabSnapshot(t.Context(), catalog.LabSnapshot{Name: "before-upgrade", Note: "risky", State: catalog.LabSnapshotComplete,
		Created: epoch.Add(-30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	check("after a lab snapshot by another handle", true, true, "before-upgrade", `homelab_lab_snapshots{state="complete"} 1`,
		fmt.Sprintf("homelab_lab_snapshot_newest_timestamp_seconds %v", float64(epoch.Add(-30*time.Minute).Unix())))

	// Time passes, nothing is written: the ages move, and t01's backup
	// falls due (the slot at 03:00 plus its grace) and then overdue.
	now = epoch.Add(time.Minute)
	check("a minute later", true, false)
	now = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	check("the next morning", true, true, `homelab_target_overdue{target="t01"} 1`)
}

// versionCounter is the SQLite catalog, counting its Version calls.
type versionCounter struct {
	*catalog.SQLite
	n atomic.Int64
}

func (v *versionCounter) Version(ctx context.Context) (uint64, error) {
	v.n.Add(1)
	return v.SQLite.Version(ctx)
}

// TestPageOneVersion: a status page asks the catalog's version once (its
// pin), for the report, the lab snapshots and the charts alike.
func TestPageOneVersion(t *testing.T) {
	s, l := scrapeCatalog(t)
	vc := &versionCounter{SQLite: s}
	h := scrapeServerOf(t, vc, l, func() time.Time { return epoch }).Handler()
	for i := range 2 {
		before := vc.n.Load()
		if code, body := serve(h, "/"); code != http.StatusOK {
			t.Fatalf("GET /: %d %s", code, body)
		}
		if n := vc.n.Load() - before; n != 1 {
			t.Errorf("page %d asked the catalog's version %d times, want 1", i+1, n)
		}
	}
}

// summaryCounter is the SQLite catalog, counting its Summaries calls.
type summaryCounter struct {
	*catalog.SQLite
	n atomic.Int64
}

func (s *summaryCounter) Summaries(ctx context.Context) (map[string]catalog.Summary, error) {
	s.n.Add(1)
	return s.SQLite.Summaries(ctx)
}

// TestSampleRoundKeepsCatalogCache: a sampling round as the daemon makes
// it (its samples recorded in the catalog's samples file, its host status
// replaced) shows on the page's host card and in /metrics at the next
// scrape, and reads the catalog's summaries no more: they stay cached.
func TestSampleRoundKeepsCatalogCache(t *testing.T) {
	s, l := scrapeCatalog(t)
	sc := &summaryCounter{SQLite: s}
	var host atomic.Pointer[status.HostStatus]
	srv, err := New(Options{
		Addr: "127.0.0.1:0", Lab: func() *lab.Lab { return l }, Catalog: sc, Now: func() time.Time { return epoch },
		Jobs:   func() []JobInfo { return []JobInfo{} },
		Health: func(context.Context, *lab.Lab) []health.Result { return nil },
		States: func(context.Context, *lab.Lab) []runtime.Result { return nil },
		Host:   host.Load,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	const total = 100 << 30
	for i, avail := range []uint64{40 << 30, 30 << 30} {
		at := epoch.Add(time.Duration(i) * 10 * time.Minute)
		if err := s.AddSamples(t.Context(), []catalog.Sample{{Series: status.Series("/srv"), Time: at, Value: float64(avail)}}); err != nil {
			t.Fatal(err)
		}
		host.Store(&status.HostStatus{Sampled: at, Filesystems: []status.FilesystemStatus{{Mount: "/srv", Total: total, Used: total - avail, Avail: avail}}})
		if code, body := serve(h, "/"); code != http.StatusOK || !strings.Contains(body, status.IEC(int64(avail))+" free") {
			t.Errorf("round %d: GET / %d, want %s free in the host card", i+1, code, status.IEC(int64(avail)))
		}
		want := fmt.Sprintf(`homelab_filesystem_avail_bytes{mount="/srv"} %g`, float64(avail))
		if code, body := serve(h, "/metrics"); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("round %d: GET /metrics %d, want %s", i+1, code, want)
		}
	}
	if n := sc.n.Load(); n != 1 {
		t.Errorf("summaries read %d times over two sampling rounds, want once", n)
	}
}
