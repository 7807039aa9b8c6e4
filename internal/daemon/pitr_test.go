package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/lab"
	"homelab/internal/schedule"
	"homelab/internal/status"
	"homelab/internal/testenv"
)

// TestPgBackRestTargetNotifies: the daemon treats a pgbackrest target
// like the others. With real pgBackRest and a stanza never created, its
// scheduled backup fails and sends backup_failed, its drill (of a backup
// the catalog has) fails and sends drill_failed; each job asks for a new
// reading of the recoverable windows, whose error (the stanza missing)
// the daemon then keeps beside the last good values.
func TestPgBackRestTargetNotifies(t *testing.T) {
	testenv.PgBackRest(t)
	ctx := context.Background()
	state := testenv.SearchableDir(t)
	text := fmt.Sprintf(`name: unit
state_dir: %s
backups:
  db:
    provider: pgbackrest
    pgbackrest:
      stanza: main
      cluster: {data_dir: %s, os_user: %s}
      repo: {path: %s}
    schedule: "0 2 * * *"
    drill: {schedule: "30 5 * * 0"}
`, state, filepath.Join(state, "data"), testenv.ClusterOSUser(t), filepath.Join(state, "repo"))
	f := newFixtureLab(t, text, func(c *Config) {
		store := c.Catalog
		c.NewManager = func(l *lab.Lab) *backup.Manager {
			return &backup.Manager{Lab: l, Catalog: store, Providers: map[string]backup.Provider{
				lab.ProviderPgBackRest: &pgbackrest.Provider{StateDir: l.StateDir}}}
		}
		c.ReadWindows = app.ReadWindows
	})
	good := status.Window{From: time.Unix(1796500000, 0).UTC(), To: time.Unix(1796540000, 0).UTC(), WAL: "000000010000000000000007", Backups: 1}
	f.d.windows.Store(&map[string]status.Window{"db": good})

	f.d.runJob(ctx, schedule.Fire{Key: schedule.Key{Kind: schedule.KindBackup, Name: "db"}}, "pgbackrest:db")
	f.backupAt(t, "db", f.now.Add(-time.Hour)) // a good backup for the drill to take
	f.d.runJob(ctx, schedule.Fire{Key: schedule.Key{Kind: schedule.KindDrill, Name: "db"}}, "pgbackrest:db")
	if got := f.notes.kinds(); !slices.Contains(got, "backup_failed:db") || !slices.Contains(got, "drill_failed:db") {
		t.Fatalf("notifications %v, want backup_failed:db and drill_failed:db", got)
	}
	f.notes.mu.Lock()
	for _, e := range f.notes.events {
		t.Logf("%s: %s", e.Kind, e.Error)
		if e.Kind == "backup_failed" && !strings.Contains(e.Error, "stanza") {
			t.Errorf("backup_failed error %q does not name the missing stanza", e.Error)
		}
	}
	f.notes.mu.Unlock()
	select {
	case <-f.d.windowCh:
	default:
		t.Fatal("the jobs of a pgbackrest target asked for no new reading of its window")
	}
	f.d.RefreshWindows(ctx)
	w := f.d.Windows()["db"]
	t.Logf("window error: %s", w.Error)
	if w.From != good.From || w.To != good.To || w.WAL != good.WAL || !strings.Contains(w.Error, "stanza") {
		t.Errorf("window after a failed reading %+v, want the last good values with the stanza's error", w)
	}
}

// TestArchivingStuckNotifiedOnce: readings that find a target's archiving
// stuck send one archiving_stuck (and record one warning event) until a
// reading finds it moving again; stuck once more, it is sent again. (The
// readings are given: the reading itself is TestRecoverableWindow's, in
// internal/server, against real pgBackRest.)
func TestArchivingStuckNotifiedOnce(t *testing.T) {
	ctx := context.Background()
	read := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
	moving := status.Window{From: read.Add(-10 * time.Hour), To: read.Add(-time.Minute), WAL: "000000010000000000000009", Backups: 2, Read: read, ArchiveTimeout: time.Minute}
	stuck := moving
	stuck.Waiting, stuck.Oldest, stuck.WaitingSince = 3, "00000001000000000000000A", read.Add(-5*time.Minute)
	var next status.Window
	f := newFixtureLab(t, testLab, func(c *Config) {
		c.ReadWindows = func(context.Context, *lab.Lab, func() time.Time) map[string]status.Window {
			return map[string]status.Window{"db": next}
		}
	})
	for i, w := range []status.Window{stuck, stuck, moving, stuck} {
		next = w
		f.d.RefreshWindows(ctx)
		if got := f.d.Windows()["db"]; got.Stuck() != w.Stuck() {
			t.Fatalf("reading %d: window %+v", i, got)
		}
	}
	var sent int
	for _, k := range f.notes.kinds() {
		if k == "archiving_stuck:db" {
			sent++
		}
	}
	if sent != 2 {
		t.Errorf("notifications %v, want archiving_stuck:db twice (stuck, moving, stuck again)", f.notes.kinds())
	}
	evs, err := f.store.Events(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var warned int
	for _, e := range evs {
		if e.Kind == "archiving_stuck" && e.Level == "warn" && e.Target == "db" && strings.Contains(e.Message, "00000001000000000000000A") {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("%d archiving_stuck events naming the waiting segment, want 2: %+v", warned, evs)
	}
}
