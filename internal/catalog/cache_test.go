package catalog_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
)

// The suites check every cached read against what was written before it:
// a cache that missed one of its own writes fails them.
func TestCacheStore(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		return catalog.NewCache(open(t, filepath.Join(t.TempDir(), "catalog.db")))
	})
}

func TestCacheJournal(t *testing.T) {
	catalogtest.RunJournal(t, func(t *testing.T) catalog.Journal {
		c := catalog.NewCache(open(t, filepath.Join(t.TempDir(), "catalog.db")))
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return c
	})
}

// counting counts the reads of the store that Cache keeps.
type counting struct {
	*catalog.SQLite
	summaries, events, sagas, versions atomic.Int64
}

func (c *counting) Version(ctx context.Context) (uint64, error) {
	c.versions.Add(1)
	return c.SQLite.Version(ctx)
}

func (c *counting) Summaries(ctx context.Context) (map[string]catalog.Summary, error) {
	c.summaries.Add(1)
	return c.SQLite.Summaries(ctx)
}

func (c *counting) Events(ctx context.Context, limit int) ([]catalog.Event, error) {
	c.events.Add(1)
	return c.SQLite.Events(ctx, limit)
}

func (c *counting) Sagas(ctx context.Context, f catalog.SagaFilter) ([]catalog.Saga, error) {
	c.sagas.Add(1)
	return c.SQLite.Sagas(ctx, f)
}

// reads is one round of the cached reads, as a status page makes them.
type reads struct {
	sums   map[string]catalog.Summary
	events []catalog.Event
	sagas  []catalog.Saga
	labs   []catalog.LabSnapshot
}

func readAll(t *testing.T, s catalog.Versioned) reads {
	t.Helper()
	var r reads
	var err error
	if r.sums, err = s.Summaries(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.events, err = s.Events(t.Context(), 500); err != nil {
		t.Fatal(err)
	}
	if r.sagas, err = s.Sagas(t.Context(), catalog.SagaFilter{States: catalog.UnfinishedSagaStates}); err != nil {
		t.Fatal(err)
	}
	if r.labs, err = s.LabSnapshotList(t.Context(), 20); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCacheReuse: while nothing is written, the store is read once, and
// every call returns what the store itself returns.
func TestCacheReuse(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	cs := &counting{SQLite: s}
	c := catalog.NewCache(cs)
	t.Cleanup(func() { c.Close() })
	now := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	if _, err := catalogtest.Fill(t.Context(), s, 5, 20, now); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(t.Context(), catalog.Event{Time: now, Level: "error", Target: "t01", Kind: "backup_failed", Message: "boom"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRun(t.Context(), catalog.Run{RunID: "20261123-101000-full", Kind: catalog.KindBackup, Target: "pg",
		Provider: catalog.TypedProvider, SnapshotID: "20261123-101000F", Start: now, End: now, Result: catalog.ResultOK}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSaga(t.Context(), catalog.Saga{ID: "s1", Kind: "upgrade", Subject: "app", Plan: []string{"a"},
		State: catalog.SagaNeedsAttention, Start: now}); err != nil {
		t.Fatal(err)
	}
	fresh := readAll(t, s)
	for i := range 3 {
		got := readAll(t, c)
		if !reflect.DeepEqual(got, fresh) {
			t.Fatalf("read %d: cached %+v, want %+v", i, got, fresh)
		}
		// A caller changing its copy changes no other.
		got.sums["t01"].LastBackup.Result = "mangled"
		got.sums["pg"].TypedRuns[0].Result = "mangled"
		got.events[0].Message = "mangled"
		got.sagas[0].Plan[0] = "mangled"
	}
	if n, e, g := cs.summaries.Load(), cs.events.Load(), cs.sagas.Load(); n != 1 || e != 1 || g != 1 {
		t.Errorf("store read %d, %d, %d times (summaries, events, sagas), want once each", n, e, g)
	}
}

// withOther is a Cache over a counting catalog and another handle on its
// file (as a CLI command has while the daemon runs) that filled it with
// catalogtest.Fill ending at now.
func withOther(t *testing.T) (cs *counting, c *catalog.Cache, other *catalog.SQLite, now time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	cs = &counting{SQLite: open(t, path)}
	c = catalog.NewCache(cs)
	t.Cleanup(func() { c.Close() })
	other = open(t, path)
	t.Cleanup(func() { other.Close() })
	now = time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	if _, err := catalogtest.Fill(t.Context(), other, 3, 10, now); err != nil {
		t.Fatal(err)
	}
	return cs, c, other, now
}

// TestCacheOtherWriter: a write by another handle on the file (as a CLI
// command makes while the daemon runs) is seen at the next read.
func TestCacheOtherWriter(t *testing.T) {
	cs, c, other, now := withOther(t)
	before := readAll(t, c)
	readAll(t, c)

	writes := []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"start run", func(ctx context.Context) error {
			_, err := other.StartRun(ctx, catalog.Run{RunID: "new", Kind: catalog.KindBackup, Target: "t01", Start: now.Add(time.Minute)})
			return err
		}},
		{"finish run", func(ctx context.Context) error {
			r, ok, err := other.LastRun(ctx, "t01", catalog.KindBackup)
			if err != nil || !ok {
				t.Fatalf("last run: %v %v", ok, err)
			}
			r.End, r.Result = now.Add(2*time.Minute), catalog.ResultFailed
			return other.FinishRun(ctx, r)
		}},
		{"drill", func(ctx context.Context) error {
			_, err := other.RecordDrill(ctx, catalog.Drill{Target: "t02", SnapshotID: "x", Start: now.Add(time.Minute), Result: catalog.ResultFailed})
			return err
		}},
		{"event", func(ctx context.Context) error {
			return other.AddEvent(ctx, catalog.Event{Time: now.Add(time.Minute), Level: "error", Kind: "backup_failed", Message: "new"})
		}},
		{"saga", func(ctx context.Context) error {
			return other.CreateSaga(ctx, catalog.Saga{ID: "s2", Kind: "upgrade", Subject: "app", Plan: []string{"a"},
				State: catalog.SagaRunning, Start: now})
		}},
		{"saga state", func(ctx context.Context) error {
			return other.SetSagaState(ctx, "s2", catalog.SagaNeedsAttention, now, "boom")
		}},
	}
	prev := before
	for _, w := range writes {
		if err := w.write(t.Context()); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		got, fresh := readAll(t, c), readAll(t, other)
		if !reflect.DeepEqual(got, fresh) {
			t.Errorf("after %s: cached %+v, want %+v", w.name, got, fresh)
		}
		if reflect.DeepEqual(got, prev) {
			t.Errorf("after %s: nothing changed", w.name)
		}
		prev = got
	}
	if n := cs.summaries.Load(); n != int64(1+len(writes)) {
		t.Errorf("summaries read %d times, want %d (once, then once per write)", n, 1+len(writes))
	}
}

// TestCachePin: a pinned view asks the store's version once, at Pin, for
// all its reads; a new Pin sees a write made since, and an old view whose
// version the cache no longer holds reads at the current one.
func TestCachePin(t *testing.T) {
	cs, c, other, now := withOther(t)
	pinner, ok := c.Shared().(catalog.Pinner)
	if !ok {
		t.Fatal("the shared view is no Pinner")
	}
	pin := func() catalog.Versioned {
		t.Helper()
		p, err := pinner.Pin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := pin()
	before := readAll(t, other)
	for range 2 {
		if got := readAll(t, first); !reflect.DeepEqual(got, before) {
			t.Fatalf("pinned %+v, want %+v", got, before)
		}
	}
	pinned, err := first.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.versions.Load(); n != 1 {
		t.Errorf("Version asked %d times for a pin, two rounds of reads and the view's Version, want 1", n)
	}
	if v, err := cs.SQLite.Version(t.Context()); err != nil || v != pinned {
		t.Errorf("the pinned view's Version = %d, the store's %d (%v)", pinned, v, err)
	}

	if err := other.AddEvent(t.Context(), catalog.Event{Time: now.Add(time.Minute), Level: "error", Kind: "backup_failed", Message: "new"}); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, other)
	second := pin()
	if got := readAll(t, second); !reflect.DeepEqual(got, after) {
		t.Errorf("pinned after a write %+v, want %+v", got, after)
	}
	// The cache holds the new version now: the first view reads at it.
	if got := readAll(t, first); !reflect.DeepEqual(got, after) {
		t.Errorf("old pin after a write %+v, want %+v", got, after)
	}
	if n := cs.summaries.Load(); n != 2 {
		t.Errorf("summaries read %d times, want 2 (once per version)", n)
	}
}

// TestVersion: Version changes with each commit, by the handle itself or
// another one on the file, and not otherwise.
func TestVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, other := open(t, path), open(t, path)
	t.Cleanup(func() { s.Close(); other.Close() })
	version := func() uint64 {
		t.Helper()
		v, err := s.Version(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	if _, err := s.Runs(t.Context(), catalog.RunFilter{}); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0 {
		t.Errorf("version %d after a read, want %d", v, v0)
	}
	ev := catalog.Event{Time: time.Now(), Kind: "x"}
	if err := s.AddEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	v1 := version()
	if v1 == v0 {
		t.Errorf("version %d after a write of its own, unchanged", v1)
	}
	if err := other.AddEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if v := version(); v == v1 {
		t.Errorf("version %d after another handle's write, unchanged", v)
	}
	s.Close()
	if _, err := s.Version(t.Context()); err == nil {
		t.Error("Version of a closed catalog: no error")
	}
}
