package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/schedule"
)

// fakeNotifier records what the daemon would send.
type fakeNotifier struct {
	mu     sync.Mutex
	events []notify.Event
	pings  []string
}

func (f *fakeNotifier) Notify(e notify.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakeNotifier) Ping(url string, e notify.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings = append(f.pings, url)
}

func (f *fakeNotifier) Close(context.Context) error { return nil }

func (f *fakeNotifier) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Kind+":"+e.Target)
	}
	return out
}

const testLab = `name: unit
repositories:
  local: {url: repo, password_file: pass, check: {schedule: "0 4 * * 0"}}
backups:
  db:
    provider: restic
    repository: local
    source: {paths: [data]}
    schedule: "0 2 * * *"
    drill: {schedule: "30 5 * * 0"}
  manual:
    provider: restic
    repository: local
    source: {paths: [data]}
`

// fixture is a daemon over a real catalog, with a fake notifier and a
// fixed clock (Europe/Berlin, 2026-11-23 12:00).
type fixture struct {
	d     *Daemon
	store *catalog.SQLite
	notes *fakeNotifier
	now   time.Time
	path  string
}

func newFixture(t *testing.T) *fixture { return newFixtureLab(t, testLab, nil) }

// newFixtureLab is newFixture over the lab file text, with cfg (if not
// nil) changing the daemon's configuration before New.
func newFixtureLab(t *testing.T, text string, cfg func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, notes: &fakeNotifier{}, now: time.Date(2026, 11, 23, 12, 0, 0, 0, berlin), path: path}
	c := Config{
		Lab:         l,
		Catalog:     store,
		NewManager:  func(l *lab.Lab) *backup.Manager { return &backup.Manager{Lab: l, Catalog: store} },
		NewNotifier: func(*lab.Lab, *slog.Logger) (Notifier, error) { return f.notes, nil },
		Now:         func() time.Time { return f.now },
	}
	if cfg != nil {
		cfg(&c)
	}
	f.d, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	f.d.queue = newQueue(ctx, 1)
	f.d.sched = schedule.New(nil, f.now, nil)
	return f
}

// backupAt records a good backup of target that ended at end.
func (f *fixture) backupAt(t *testing.T, target string, end time.Time) {
	t.Helper()
	ctx := context.Background()
	r, err := f.store.StartRun(ctx, catalog.Run{RunID: fmt.Sprint(end.Unix()), Kind: catalog.KindBackup, Target: target, Start: end.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r.End, r.Result = end, catalog.ResultOK
	if err := f.store.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
}

func TestOverdueIsAlertedOnceAndRearmsAfterABackup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.backupAt(t, "db", f.now.Add(-72*time.Hour)) // three days old: overdue

	f.d.watchOverdue(ctx)
	f.d.watchOverdue(ctx)
	if got := f.notes.kinds(); !slices.Equal(got, []string{"overdue:db"}) {
		t.Fatalf("after two checks: %v, want one overdue alert for db (manual targets are never overdue)", got)
	}
	if e := f.notes.events[0]; !strings.Contains(e.Detail, "last good backup") || !strings.Contains(e.Detail, "due by") || e.Lab != "unit" {
		t.Errorf("overdue event = %+v", e)
	}

	// A good backup clears it without a second message (a backup job's own
	// success sends the recovery); a later lapse alerts again.
	f.backupAt(t, "db", f.now.Add(-time.Hour))
	if next := f.d.watchOverdue(ctx); !next.Equal(f.now.Add(15 * time.Minute)) {
		t.Errorf("next look at %s, want WatchInterval (15m) from now", next)
	}
	f.d.cfg.WatchInterval = 48 * time.Hour
	next := f.d.watchOverdue(ctx)
	if f.d.overdue["db"] {
		t.Error("db still marked as alerted after a good backup")
	}
	// The next look is when db's RPO runs out: its next slot (02:00
	// tomorrow, Berlin) plus its grace (10% of the interval), not every minute.
	if want := time.Date(2026, 11, 24, 2, 0, 0, 0, f.now.Location()).Add(24*time.Hour/10 + time.Second); !next.Equal(want) {
		t.Errorf("next look at %s, want %s", next, want)
	}
	f.now = f.now.Add(72 * time.Hour)
	f.d.watchOverdue(ctx)
	if got := f.notes.kinds(); !slices.Equal(got, []string{"overdue:db", "overdue:db"}) {
		t.Errorf("after a second lapse: %v", got)
	}
}

func TestOverdueWaitsForAQueuedCatchUp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	defer close(release)
	f.d.queue.add(task{key: "backup:db", repo: "local", run: func(context.Context) { <-release }})
	f.d.watchOverdue(ctx) // db never backed up, but its backup is running
	if got := f.notes.kinds(); len(got) != 0 {
		t.Errorf("alerted %v while the catch-up backup runs", got)
	}
}

// specKeys returns the specs of l and each one's "key expr".
func specKeys(t *testing.T, l *lab.Lab) ([]schedule.Spec, []string) {
	t.Helper()
	specs, err := Specs(l)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range specs {
		keys = append(keys, s.Key.String()+" "+s.Expr)
	}
	return specs, keys
}

func TestSpecs(t *testing.T) {
	f := newFixture(t)
	_, keys := specKeys(t, f.d.Lab())
	want := []string{"backup:db 0 2 * * *", "drill:db 30 5 * * 0", "check:local 0 4 * * 0"}
	if !slices.Equal(keys, want) {
		t.Errorf("specs = %q, want %q", keys, want)
	}
}

func TestReloadKeepsTheOldFileWhenTheNewOneIsBad(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.d.Lab()
	for _, c := range []struct{ name, body string }{
		{"invalid", testLab + "bogus: 1\n"},
		{"state_dir", testLab + "state_dir: elsewhere\n"},
	} {
		name, body := c.name, c.body
		if err := os.WriteFile(f.path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		f.d.reload(ctx)
		if f.d.Lab() != old {
			t.Errorf("%s: the lab was replaced", name)
		}
	}
	events, _ := f.store.Events(ctx, 0)
	if len(events) != 2 || events[0].Kind != "reload_failed" || !strings.Contains(events[0].Message, "state_dir changed") ||
		!strings.Contains(events[1].Message, "bogus") {
		t.Errorf("events = %+v, want two reload_failed naming the causes", events)
	}

	// A good file replaces the lab and the schedule.
	if err := os.WriteFile(f.path, []byte(strings.Replace(testLab, `"0 2 * * *"`, `"0 3 * * *"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	f.d.reload(ctx)
	if f.d.Lab() == old || f.d.Lab().Backups["db"].Schedule != "0 3 * * *" {
		t.Fatalf("the good file was not loaded")
	}
	var exprs []string
	for _, j := range f.d.Jobs() {
		exprs = append(exprs, j.Key.String()+" "+j.Expr)
	}
	if !slices.Contains(exprs, "backup:db 0 3 * * *") {
		t.Errorf("jobs after reload: %q", exprs)
	}
}

// TestReloadSurvivesTheLoader reloads files that crashed the lab loader
// (issue 12: a schedule with a time zone and no fields panicked
// robfig/cron, a mapping merging itself overflowed the stack), then a
// loader and a manager factory that panic: each reload fails, is
// recorded, and the running lab stays.
func TestReloadSurvivesTheLoader(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := f.d.Lab()
	reload := func(name string) {
		t.Helper()
		f.d.reload(ctx)
		if f.d.Lab() != old {
			t.Fatalf("%s: the lab was replaced", name)
		}
	}
	for _, c := range []struct{ name, body, want string }{
		{"zone without fields", strings.Replace(testLab, `"0 2 * * *"`, `"CRON_TZ=Europe/Paris"`, 1), f.path + `:9:15: backups.db.schedule: bad cron expression "CRON_TZ=Europe/Paris": no schedule after the time zone`},
		{"merge cycle", testLab + "services:\n  web: &w {logs: {file: x}, <<: *w}\n", f.path + `:16:33: services.web: merge: anchor "w" includes the mapping that merges it (a cycle)`},
	} {
		if err := os.WriteFile(f.path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		reload(c.name)
		events, _ := f.store.Events(ctx, 0)
		if len(events) == 0 || events[0].Kind != "reload_failed" || !strings.Contains(events[0].Message, c.want) {
			t.Errorf("%s: events = %+v, want reload_failed with %q", c.name, events, c.want)
		}
	}

	if err := os.WriteFile(f.path, []byte(testLab), 0o644); err != nil {
		t.Fatal(err)
	}
	f.d.cfg.Load = func(string) (*lab.Lab, error) { panic("loader bug") }
	reload("panicking loader")
	f.d.cfg.Load = lab.Load
	f.d.cfg.NewManager = func(*lab.Lab) *backup.Manager { return nil } // build sets its Wait
	reload("nil manager")
	events, _ := f.store.Events(ctx, 0)
	var got []string
	for _, e := range events[:2] {
		got = append(got, e.Kind+": "+e.Message)
	}
	want := []string{
		"reload_failed: reload of " + f.path + " failed: internal error (please report it): runtime error: invalid memory address or nil pointer dereference",
		"reload_failed: reload of " + f.path + " failed: internal error (please report it): loader bug",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}
