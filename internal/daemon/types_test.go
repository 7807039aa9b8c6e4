package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
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

// newTypedFixture is a fixture over typesLab whose managers back up its
// pgbackrest target with the provider that provider makes, on a clock
// set by the test (Europe/Berlin, starting at the given wall time).
func newTypedFixture(t *testing.T, year int, month time.Month, day, hour, minute int, provider func(now func() time.Time) backup.Provider) (*fixture, *clock, *time.Location) {
	t.Helper()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(year, month, day, hour, minute, 0, 0, berlin)}
	p := provider(clk.Now)
	f := newFixtureLab(t, typesLab, func(c *Config) {
		c.Now = clk.Now
		store := c.Catalog
		c.NewManager = func(l *lab.Lab) *backup.Manager {
			return &backup.Manager{Lab: l, Catalog: store, Now: clk.Now, Providers: map[string]backup.Provider{lab.ProviderPgBackRest: p}}
		}
	})
	return f, clk, berlin
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
	var rec *typeRecorder
	f, clk, berlin := newTypedFixture(t, 2026, 11, 21, 22, 0, func(now func() time.Time) backup.Provider { // a Saturday
		rec = &typeRecorder{now: now, started: make(chan string), release: make(chan struct{})}
		return rec
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

// typeOutcome is a pgbackrest provider whose backups of the types in
// fail fail, and the others succeed with a set labelled as pgBackRest
// does.
type typeOutcome struct {
	backup.Provider
	now  func() time.Time
	fail map[string]bool
}

func (p *typeOutcome) Backup(_ context.Context, t backup.Target, _ string, _ backup.ProgressFunc) (backup.Snapshot, error) {
	if p.fail[t.Type] {
		return backup.Snapshot{}, fmt.Errorf("target %s: %s backup: exit 82", t.Name(), t.Type)
	}
	stamp := p.now().UTC().Format("20060102-150405")
	label := map[string]string{"full": stamp + "F", "diff": "20261101-000000F_" + stamp + "D", "incr": "20261101-000000F_" + stamp + "I"}[t.Type]
	return backup.Snapshot{ID: label, Time: p.now()}, nil
}

// TestTypedNotifications: the failure and recovery notifications of a
// target's typed backups follow status's per-type rule: a failed full is
// not recovered by the incr backups that succeed after it, only by a
// good full, which also recovers a failed incr.
func TestTypedNotifications(t *testing.T) {
	ctx := context.Background()
	prov := &typeOutcome{fail: map[string]bool{}}
	f, clk, _ := newTypedFixture(t, 2026, 11, 22, 0, 0, func(now func() time.Time) backup.Provider { prov.now = now; return prov })
	st := f.d.state.Load()
	var seen int
	// run runs a typed backup job an hour after the last, failing or
	// not, and returns the notifications it sent, as kind:detail.
	run := func(typ string, fail bool) []string {
		t.Helper()
		clk.set(clk.Now().Add(time.Hour))
		prov.fail[typ] = fail
		f.d.runBackup(ctx, st, "db", typ)
		f.notes.mu.Lock()
		defer f.notes.mu.Unlock()
		var out []string
		for _, e := range f.notes.events[seen:] {
			out = append(out, e.Kind+":"+e.Detail)
		}
		seen = len(f.notes.events)
		return out
	}
	for i, c := range []struct {
		typ  string
		fail bool
		want []string
	}{
		{"full", false, nil},
		{"full", true, []string{notify.BackupFailed + ":full backup"}},
		{"incr", false, nil}, // the full still fails
		{"incr", false, nil},
		{"incr", true, []string{notify.BackupFailed + ":incr backup"}},
		{"diff", false, []string{notify.Recovered + ":incr backup succeeded again: snapshot "}}, // holds an incr, not a full
		{"full", false, []string{notify.Recovered + ":full backup succeeded again: snapshot "}},
		{"incr", true, []string{notify.BackupFailed + ":incr backup"}},
		{"incr", false, []string{notify.Recovered + ":incr backup succeeded again: snapshot "}},
	} {
		got := run(c.typ, c.fail)
		for j := range got { // the snapshot label is the clock's
			if k := strings.Index(got[j], "snapshot "); k >= 0 {
				got[j] = got[j][:k+len("snapshot ")]
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("step %d, %s (fail %v): sent %q, want %q", i, c.typ, c.fail, got, c.want)
		}
	}
}

// TestTypedOverdue: a target whose incr and diff backups are recent but
// whose last full is two weeks old is overdue, for its full; the incr
// backups after that do not send a recovery, the next good full does.
func TestTypedOverdue(t *testing.T) {
	ctx := context.Background()
	prov := &typeOutcome{fail: map[string]bool{}}
	f, clk, berlin := newTypedFixture(t, 2026, 11, 23, 11, 0, func(now func() time.Time) backup.Provider { prov.now = now; return prov }) // a Monday
	old := time.Date(2026, 11, 8, 0, 0, 0, 0, berlin)
	if _, err := f.store.StartRun(ctx, catalog.Run{RunID: backup.TypedRunID("old", "full"), Kind: catalog.KindBackup, Target: "db",
		Provider: lab.ProviderPgBackRest, SnapshotID: "20261107-230000F", Start: old, End: old.Add(5 * time.Minute), Result: catalog.ResultOK}); err != nil {
		t.Fatal(err)
	}
	st := f.d.state.Load()
	step := func(at time.Time, typ string) {
		t.Helper()
		clk.set(at)
		if typ != "" {
			f.d.runBackup(ctx, st, "db", typ)
		}
		f.d.watchOverdue(ctx)
	}
	step(time.Date(2026, 11, 23, 11, 0, 0, 0, berlin), "diff")
	step(time.Date(2026, 11, 23, 11, 30, 0, 0, berlin), "incr")
	if got := f.notes.kinds(); !slices.Equal(got, []string{"overdue:db"}) {
		t.Fatalf("after a diff and an incr: %v, want one overdue alert", got)
	}
	if d := f.notes.events[0].Detail; !strings.HasPrefix(d, "full overdue, due by 2026-11-15T") {
		t.Errorf("overdue detail %q, want the full's", d)
	}
	step(time.Date(2026, 11, 23, 12, 30, 0, 0, berlin), "incr")
	if got := f.notes.kinds(); !slices.Equal(got, []string{"overdue:db"}) {
		t.Fatalf("after another incr: %v, want still only the overdue alert", got)
	}
	step(time.Date(2026, 11, 23, 13, 0, 0, 0, berlin), "full")
	if got := f.notes.kinds(); !slices.Equal(got, []string{"overdue:db", "recovered:db"}) {
		t.Fatalf("after a full: %v, want the recovery", got)
	}
}

// TestTypedLongHistory: the catch-up and the recovered notifications
// read a target's fulls however many backups came after them: a good
// full, a failed one, then more than a thousand good incr backups (the
// status's and the notifications' old bound); the catch-up still finds
// the good full, and the next good full sends the full's recovery.
func TestTypedLongHistory(t *testing.T) {
	ctx := t.Context()
	prov := &typeOutcome{fail: map[string]bool{}}
	f, clk, _ := newTypedFixture(t, 2026, 11, 22, 0, 0, func(now func() time.Time) backup.Provider { prov.now = now; return prov })
	full := clk.Now().Add(-2000 * time.Hour)
	label := full.UTC().Format("20060102-150405") + "F"
	add := func(typ, snap string, start time.Time, res catalog.Result) {
		t.Helper()
		if _, err := f.store.StartRun(ctx, catalog.Run{RunID: backup.TypedRunID(start.UTC().Format("20060102-150405"), typ),
			Kind: catalog.KindBackup, Target: "db", Provider: lab.ProviderPgBackRest,
			SnapshotID: snap, Start: start, End: start.Add(time.Minute), Result: res}); err != nil {
			t.Fatal(err)
		}
	}
	add("full", label, full, catalog.ResultOK)
	add("full", "", full.Add(time.Hour), catalog.ResultFailed)
	var last time.Time
	for i := range 1500 {
		last = full.Add(time.Duration(i+2) * time.Hour)
		add("incr", label+"_"+last.UTC().Format("20060102-150405")+"I", last, catalog.ResultOK)
	}
	for typ, want := range map[string]time.Time{"full": full, "diff": full, "incr": last} {
		if got, ok, err := f.d.lastOfType(ctx, "db", typ); err != nil || !ok || !got.Equal(want) {
			t.Errorf("last %s: %s, %v, %v; want %s", typ, got, ok, err, want)
		}
	}
	f.d.runBackup(ctx, f.d.state.Load(), "db", "full")
	f.notes.mu.Lock()
	defer f.notes.mu.Unlock()
	var sent []string
	for _, e := range f.notes.events {
		sent = append(sent, e.Kind+":"+e.Detail)
	}
	if want := notify.Recovered + ":full backup succeeded again: snapshot "; len(sent) != 1 || !strings.HasPrefix(sent[0], want) {
		t.Errorf("after a good full: sent %q, want %q", sent, want)
	}
}
