package daemon

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/schedule"
)

// typesLab has a pgbackrest target whose full, diff and incr backups run
// on schedules of their own: full on Sunday at 00:00, diff on the other
// days at 00:00, incr every four hours (so at 00:00 two fire at once).
const typesLab = `name: types
state_dir: ./state
backups:
  db:
    provider: pgbackrest
    pgbackrest:
      stanza: main
      cluster: {data_dir: /var/lib/postgresql/15/main}
      repo: {path: /srv/pgbackrest}
      schedules: {full: "0 0 * * 0", diff: "0 0 * * 1-6", incr: "0 */4 * * *"}
`

// typeRecorder is a pgbackrest provider for the daemon's orchestration:
// each Backup sends the type it was asked for on started, waits for
// release, and returns a set labelled as pgBackRest does. It tracks how
// many backups run at once.
type typeRecorder struct {
	backup.Provider
	now     func() time.Time
	started chan string
	release chan struct{}

	mu            sync.Mutex
	running, most int
	full          string
}

func (r *typeRecorder) Backup(ctx context.Context, t backup.Target, runID string, _ backup.ProgressFunc) (backup.Snapshot, error) {
	r.mu.Lock()
	r.running++
	r.most = max(r.most, r.running)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
	}()
	r.started <- t.Type
	<-r.release
	stamp := r.now().UTC().Format("20060102-150405")
	label := stamp + "F"
	r.mu.Lock()
	defer r.mu.Unlock()
	switch t.Type {
	case pgbackrest.TypeFull:
		r.full = label
	case pgbackrest.TypeDiff:
		label = r.full + "_" + stamp + "D"
	default:
		label = r.full + "_" + stamp + "I"
	}
	return backup.Snapshot{ID: label, Time: r.now()}, nil
}

// clock is the fixture's time, set by the test while jobs read it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestTypedSchedules: a pgbackrest target's full, diff and incr backups
// run each on its own schedule, with the type asked of the provider;
// when two fire at once the larger type runs alone (a full wins); a type
// firing while another backup of the target runs waits for it (never
// two at once, though the queue would run four jobs). A daemon started
// after a missed slot catches up by type: an incr since the full's slot
// does not stand in for the full.
func TestTypedSchedules(t *testing.T) {
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 11, 21, 22, 0, 0, 0, berlin)} // a Saturday
	rec := &typeRecorder{now: clk.Now, started: make(chan string), release: make(chan struct{})}
	f := newFixtureLab(t, typesLab, func(c *Config) {
		c.Now = clk.Now
		store := c.Catalog
		c.NewManager = func(l *lab.Lab) *backup.Manager {
			return &backup.Manager{Lab: l, Catalog: store, Now: clk.Now, Providers: map[string]backup.Provider{lab.ProviderPgBackRest: rec}}
		}
	})
	specs, keys := specKeys(t, f.d.Lab())
	if want := []string{"backup:db:full 0 0 * * 0", "backup:db:diff 0 0 * * 1-6", "backup:db:incr 0 */4 * * *"}; !slices.Equal(keys, want) {
		t.Fatalf("specs = %q, want %q", keys, want)
	}
	f.d.queue = newQueue(ctx, 4)
	f.d.sched = schedule.New(specs, clk.Now(), f.d.lastSuccess(ctx))

	// step sets the clock, dispatches what is due, and awaits the backup
	// types started (releasing each one at once unless hold is set).
	var held int
	step := func(at time.Time, hold bool, want ...string) {
		t.Helper()
		clk.set(at)
		f.d.dispatch()
		for _, w := range want {
			select {
			case got := <-rec.started:
				if got != w {
					t.Fatalf("at %s: a %s backup started, want %s", at.Format(time.RFC3339), got, w)
				}
			case <-time.After(time.Minute): // a hang's limit, not a timing
				t.Fatalf("at %s: no %s backup started", at.Format(time.RFC3339), w)
			}
			if hold {
				held++
				continue
			}
			rec.release <- struct{}{}
		}
	}
	// idle waits until no backup of db is queued or running.
	idle := func() {
		t.Helper()
		await(t, "the backups of db finished", func() bool { return !f.d.backupBusy("db") })
	}

	// Never backed up: the three catch-ups fold into one full.
	step(clk.Now(), false, "full")
	idle()
	step(time.Date(2026, 11, 22, 0, 0, 0, 0, berlin), false, "full") // Sunday: full and incr
	idle()
	step(time.Date(2026, 11, 22, 4, 0, 0, 0, berlin), true, "incr") // held: still running at midnight
	// Monday 00:00: diff and incr fire; the diff waits for the incr.
	step(time.Date(2026, 11, 23, 0, 0, 0, 0, berlin), false)
	if got := f.d.queue.states(); got["backup:db:diff"] != stateQueued || len(got) != 2 {
		t.Fatalf("queue at Monday 00:00: %v, want the incr running and the diff queued", got)
	}
	rec.release <- struct{}{} // the incr ends
	held--
	select {
	case got := <-rec.started:
		if got != "diff" {
			t.Fatalf("after the incr: a %s backup started, want diff", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the queued diff did not start")
	}
	rec.release <- struct{}{}
	idle()
	rec.mu.Lock()
	most := rec.most
	rec.mu.Unlock()
	if most != 1 {
		t.Errorf("%d backups of db ran at once, want 1", most)
	}
	runs, err := f.store.Runs(ctx, catalog.RunFilter{Target: "db", Result: catalog.ResultOK})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range slices.Backward(runs) {
		types = append(types, pgbackrest.LabelType(r.SnapshotID))
	}
	if want := []string{"full", "full", "incr", "diff"}; !slices.Equal(types, want) {
		t.Errorf("recorded backups %v, want %v", types, want)
	}

	// A daemon started on Sunday the 29th at 05:00 after a week off, an
	// incr having run at 04:00 by hand: the full of 00:00 is caught up
	// (the incr is no full); diff and incr fold into it.
	manual, err := f.store.StartRun(ctx, catalog.Run{RunID: "manual", Kind: catalog.KindBackup, Target: "db", Start: time.Date(2026, 11, 29, 4, 0, 0, 0, berlin)})
	if err != nil {
		t.Fatal(err)
	}
	manual.End, manual.Result, manual.SnapshotID = time.Date(2026, 11, 29, 4, 1, 0, 0, berlin), catalog.ResultOK, rec.full+"_20261129-030000I"
	if err := f.store.FinishRun(ctx, manual); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Date(2026, 11, 29, 5, 0, 0, 0, berlin))
	f.d.sched = schedule.New(specs, clk.Now(), f.d.lastSuccess(ctx))
	var pending []string
	for _, e := range f.d.sched.Entries() {
		if e.Pending {
			pending = append(pending, e.Key.String())
		}
	}
	if want := []string{"backup:db:diff", "backup:db:full"}; !slices.Equal(pending, want) {
		t.Errorf("pending after a week off with an incr at 04:00: %v, want %v", pending, want)
	}
	step(clk.Now(), false, "full")
	idle()
	if held != 0 {
		t.Fatalf("%d backups still held", held)
	}
}

// TestFoldTypes: of one target's typed backups firing together the
// largest type is kept; other targets and kinds are untouched.
func TestFoldTypes(t *testing.T) {
	fire := func(kind schedule.Kind, name, typ string) schedule.Fire {
		return schedule.Fire{Key: schedule.Key{Kind: kind, Name: name, Type: typ}}
	}
	fires := []schedule.Fire{
		fire(schedule.KindBackup, "db", "diff"), fire(schedule.KindBackup, "db", "full"), fire(schedule.KindBackup, "db", "incr"),
		fire(schedule.KindBackup, "files", ""), fire(schedule.KindDrill, "db", ""),
		fire(schedule.KindBackup, "other", "incr"), fire(schedule.KindBackup, "other", "diff"),
	}
	kept, folded := FoldTypes(fires)
	show := func(fs []schedule.Fire) string { return fmt.Sprint(keysOf(fs)) }
	if got := show(kept); got != "[backup:db:full backup:files drill:db backup:other:diff]" {
		t.Errorf("kept %s", got)
	}
	if got := show(folded); got != "[backup:db:diff backup:db:incr backup:other:incr]" {
		t.Errorf("folded %s", got)
	}
}

func keysOf(fs []schedule.Fire) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Key.String())
	}
	return out
}
