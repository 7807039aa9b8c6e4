package catalog

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Versioned is a store that says when it changed: Version returns a
// number that differs from the one an earlier call returned whenever
// anything was committed in between, by this store or by any other
// connection or process. SQLite implements it with PRAGMA data_version.
type Versioned interface {
	Store
	Lookup
	Journal
	LabSnapshots
	Version(ctx context.Context) (uint64, error)
}

// Cache is a Store, a Lookup and a Journal over a Versioned store that
// answers Summaries, Events, Sagas and LabSnapshotList from memory for as long as the
// store's Version stays the same, and passes every other call (writes
// included) to the store. Each cached call costs one Version (a PRAGMA
// on SQLite) instead of its queries; the first call after a change, by
// this process or another (a CLI `homelab backup run`), reads the store
// again. It is what the daemon's status page, API and metrics read, which
// ask for the same summaries every few seconds while the catalog changes
// a few times a day.
//
// Results are what the store returned when it was last read, so they
// equal fresh ones (the store is read after Version, so a cached result
// is never older than the version it is kept under). Every call returns
// its own copy of the maps, slices and pointed-to runs and drills; the
// sagas' Params are shared and must not be changed. Cache is safe for
// concurrent use; Close closes the store.
type Cache struct {
	Versioned

	mu      sync.Mutex
	valid   bool   // version is the store's version of the values below
	version uint64 // their version
	sums    map[string]Summary
	events  map[int][]Event
	sagas   map[string][]Saga // by sagaKey of the filter
	labs    map[int][]LabSnapshot
}

var (
	_ Store     = (*Cache)(nil)
	_ Lookup    = (*Cache)(nil)
	_ Journal   = (*Cache)(nil)
	_ Versioned = (*Cache)(nil)
)

// NewCache returns a Cache over s, empty: its first calls read s.
func NewCache(s Versioned) *Cache { return &Cache{Versioned: s} }

// current returns the store's version, first forgetting every cached
// value if it is not theirs. The caller holds no lock.
func (c *Cache) current(ctx context.Context) (uint64, error) {
	v, err := c.Versioned.Version(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.version != v {
		c.valid, c.version = true, v
		c.sums, c.events, c.sagas, c.labs = nil, map[int][]Event{}, map[string][]Saga{}, map[int][]LabSnapshot{}
	}
	return v, nil
}

// at returns the version to read at: pin, when it is given and the cache
// still holds values of it (no Version asked), else the store's current
// version (see current).
func (c *Cache) at(ctx context.Context, pin *uint64) (uint64, error) {
	if pin != nil {
		c.mu.Lock()
		held := c.valid && c.version == *pin
		c.mu.Unlock()
		if held {
			return *pin, nil
		}
	}
	return c.current(ctx)
}

// keep runs put under the lock if the cache still holds version v, so
// that a value read before a newer version was seen is not kept under it.
func (c *Cache) keep(v uint64, put func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && c.version == v {
		put()
	}
}

// Summaries returns the store's Summaries, cached while its version stays.
func (c *Cache) Summaries(ctx context.Context) (map[string]Summary, error) {
	sums, err := c.summaries(ctx, nil)
	if err != nil {
		return nil, err
	}
	return cloneSummaries(sums), nil
}

// summaries is Summaries without the copy: the cached map itself, read
// at version pin if given (see at).
func (c *Cache) summaries(ctx context.Context, pin *uint64) (map[string]Summary, error) {
	v, err := c.at(ctx, pin)
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	c.mu.Lock()
	sums := c.sums
	c.mu.Unlock()
	if sums == nil {
		if sums, err = c.Versioned.Summaries(ctx); err != nil {
			return nil, err
		}
		c.keep(v, func() { c.sums = sums })
	}
	return sums, nil
}

// Events returns the store's Events(limit), cached by limit while its
// version stays.
func (c *Cache) Events(ctx context.Context, limit int) ([]Event, error) {
	events, err := c.eventsOf(ctx, limit, nil)
	if err != nil {
		return nil, err
	}
	return slices.Clone(events), nil
}

// eventsOf is Events without the copy: the cached slice itself, read at
// version pin if given (see at).
func (c *Cache) eventsOf(ctx context.Context, limit int, pin *uint64) ([]Event, error) {
	v, err := c.at(ctx, pin)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	c.mu.Lock()
	events, ok := c.events[limit]
	c.mu.Unlock()
	if !ok {
		if events, err = c.Versioned.Events(ctx, limit); err != nil {
			return nil, err
		}
		c.keep(v, func() { c.events[limit] = events })
	}
	return events, nil
}

// Sagas returns the store's Sagas(f), cached by filter while its version
// stays.
func (c *Cache) Sagas(ctx context.Context, f SagaFilter) ([]Saga, error) {
	return c.sagasAt(ctx, f, nil)
}

// sagasAt is Sagas read at version pin if given (see at).
func (c *Cache) sagasAt(ctx context.Context, f SagaFilter, pin *uint64) ([]Saga, error) {
	v, err := c.at(ctx, pin)
	if err != nil {
		return nil, fmt.Errorf("list sagas: %w", err)
	}
	key := sagaKey(f)
	c.mu.Lock()
	sagas, ok := c.sagas[key]
	c.mu.Unlock()
	if !ok {
		if sagas, err = c.Versioned.Sagas(ctx, f); err != nil {
			return nil, err
		}
		c.keep(v, func() { c.sagas[key] = sagas })
	}
	out := slices.Clone(sagas)
	for i := range out {
		out[i].Plan = slices.Clone(out[i].Plan)
		out[i].Steps = slices.Clone(out[i].Steps)
	}
	return out, nil
}

// LabSnapshotList returns the store's LabSnapshotList(limit), cached by
// limit while its version stays; each call gets its own copy of the slice
// and of the members (the maps are shared and must not be changed).
func (c *Cache) LabSnapshotList(ctx context.Context, limit int) ([]LabSnapshot, error) {
	return c.labSnapshotsAt(ctx, limit, nil)
}

// labSnapshotsAt is LabSnapshotList read at version pin if given (see at).
func (c *Cache) labSnapshotsAt(ctx context.Context, limit int, pin *uint64) ([]LabSnapshot, error) {
	v, err := c.at(ctx, pin)
	if err != nil {
		return nil, fmt.Errorf("list lab snapshots: %w", err)
	}
	c.mu.Lock()
	ls, ok := c.labs[limit]
	c.mu.Unlock()
	if !ok {
		if ls, err = c.Versioned.LabSnapshotList(ctx, limit); err != nil {
			return nil, err
		}
		c.keep(v, func() { c.labs[limit] = ls })
	}
	out := slices.Clone(ls)
	for i := range out {
		out[i].Members = slices.Clone(out[i].Members)
	}
	return out, nil
}

// Shared returns a view of c whose Summaries and Events return the
// cached values themselves rather than copies: the maps, slices and
// pointed-to runs and drills are shared with every other caller of the
// view and must not be changed. It is for readers that only read them
// (the daemon's status page and metrics, which ask for them at every
// scrape): a copy of a month of summaries for 50 targets is some 100 KB.
// Every other call is c's. The view is a Pinner.
func (c *Cache) Shared() Versioned { return sharedCache{c} }

type sharedCache struct{ *Cache }

// Summaries is the Cache's Summaries, not copied: see Shared.
func (s sharedCache) Summaries(ctx context.Context) (map[string]Summary, error) {
	return s.summaries(ctx, nil)
}

// Events is the Cache's Events, not copied: see Shared.
func (s sharedCache) Events(ctx context.Context, limit int) ([]Event, error) {
	return s.eventsOf(ctx, limit, nil)
}

// Pinner is a store whose readers can fix the version they read at
// (Cache.Shared's view).
type Pinner interface {
	// Pin returns a view that reads the store's version once, now, and
	// answers Summaries, Events, Sagas and LabSnapshotList from the cache
	// while it holds values of that version, and Version with that
	// version, without asking the store's version again:
	// what one request (a status page) reads in several calls costs one
	// Version instead of one per call, and its reads agree with each
	// other. A call made after the cache moved to another version reads
	// at the store's current one. A view is for one request: it never
	// sees a change made after Pin while the cache keeps the old values.
	Pin(ctx context.Context) (Versioned, error)
}

// Pin implements Pinner: a shared view pinned at the store's current version.
func (s sharedCache) Pin(ctx context.Context) (Versioned, error) {
	v, err := s.current(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog version: %w", err)
	}
	return pinnedCache{s, v}, nil
}

// pinnedCache is a shared view read at version v (see Pinner).
type pinnedCache struct {
	sharedCache
	v uint64
}

// Summaries is the shared Summaries at the pinned version.
func (p pinnedCache) Summaries(ctx context.Context) (map[string]Summary, error) {
	return p.summaries(ctx, &p.v)
}

// Events is the shared Events at the pinned version.
func (p pinnedCache) Events(ctx context.Context, limit int) ([]Event, error) {
	return p.eventsOf(ctx, limit, &p.v)
}

// Sagas is the Cache's Sagas at the pinned version.
func (p pinnedCache) Sagas(ctx context.Context, f SagaFilter) ([]Saga, error) {
	return p.sagasAt(ctx, f, &p.v)
}

// LabSnapshotList is the Cache's LabSnapshotList at the pinned version.
func (p pinnedCache) LabSnapshotList(ctx context.Context, limit int) ([]LabSnapshot, error) {
	return p.labSnapshotsAt(ctx, limit, &p.v)
}

// Version is the version the view was pinned at, asked of no store: what
// a reader keeps a value read through the view under (a change made
// since is seen by the next Pin).
func (p pinnedCache) Version(context.Context) (uint64, error) { return p.v, nil }

// sagaKey identifies a SagaFilter (which holds a slice, so is no map key).
func sagaKey(f SagaFilter) string {
	return fmt.Sprintf("%q %q %q %d", f.Kind, f.Subject, f.States, f.Limit)
}

// cloneSummaries copies m with its Failed maps and its pointed-to runs
// and drills, so that no two summaries share a value (as Summarize's).
func cloneSummaries(m map[string]Summary) map[string]Summary {
	out := make(map[string]Summary, len(m))
	for target, s := range m {
		s.LastBackup = clonePtr(s.LastBackup)
		s.LastGoodBackup = clonePtr(s.LastGoodBackup)
		s.LastDrill = clonePtr(s.LastDrill)
		s.LastGoodDrill = clonePtr(s.LastGoodDrill)
		s.Failed = maps.Clone(s.Failed)
		s.TypedRuns = slices.Clone(s.TypedRuns) // a few runs
		out[target] = s
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
