package crash

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/catalog"
	"homelab/internal/testenv"
)

// labSnapshot reads the lab snapshot name from the lab's catalog.
func (l *lab) labSnapshot(name string) catalog.LabSnapshot {
	l.t.Helper()
	ctx := context.Background()
	store, err := catalog.Open(ctx, filepath.Join(l.dir, "state", "catalog.db"))
	must(l.t, err)
	defer store.Close()
	ls, err := store.LabSnapshot(ctx, name)
	must(l.t, err)
	return ls
}

// fails runs homelab, wants it to fail, and returns its output.
func (l *lab) fails(args ...string) string {
	l.t.Helper()
	out, err := l.command(nil, args...).CombinedOutput()
	if err == nil {
		l.t.Fatalf("homelab %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// keptAfterPrune backs every target up twice more (retention keeps the
// last one), prunes, and asserts that the lab snapshot name still has
// every member in its repository.
func (l *lab) keptAfterPrune(name string) {
	l.t.Helper()
	for range 2 {
		l.homelab("backup", "run", "--all")
	}
	out := l.homelab("backup", "prune", "--dry-run")
	if !strings.Contains(out, "held by lab snapshot "+name) {
		l.t.Errorf("prune --dry-run does not say that %s holds members:\n%s", name, out)
	}
	l.homelab("backup", "prune")
	if out := l.homelab("snapshot", "show", name); strings.Contains(out, "MISSING") {
		l.t.Errorf("a member of %s was pruned:\n%s", name, out)
	}
}

// TestCrashLabSnapshot kills homelab with SIGKILL during a lab snapshot's
// create (in a member's restic backup) and during its restore (in the
// pg_restore of a member, after the files member was restored): the next
// command reports the unfinished saga and refuses a new one, --resume
// leaves a consistent state (the create incomplete, the restore undone),
// nothing of the killed run is left, and no member of a complete lab
// snapshot is pruned.
func TestCrashLabSnapshot(t *testing.T) {
	pg := testenv.Postgres(t)
	t.Run("create/restic backup", func(t *testing.T) {
		l := newLab(t, pg, 100)
		l.homelab("snapshot", "create", "a")
		l.crash("restic backup", "snapshot", "create", "b")
		out := l.fails("snapshot", "create", "c")
		for _, want := range []string{"unfinished snapshot create lab-snapshots", "homelab snapshot create --resume"} {
			if !strings.Contains(out, want) {
				t.Errorf("the next create does not say %q:\n%s", want, out)
			}
		}
		l.homelab("snapshot", "create", "--resume", "--yes")
		l.nothingLeft()
		// The killed member's backup run is recorded as interrupted.
		l.homelab("backup", "run", "files")
		l.interrupted(catalog.KindBackup, "files")
		if b := l.labSnapshot("b"); b.State != catalog.LabSnapshotIncomplete {
			t.Errorf("lab snapshot b is %s after --resume, want incomplete", b.State)
		}
		if out := l.fails("snapshot", "restore", "b", "--yes"); !strings.Contains(out, "lab snapshot b is incomplete") {
			t.Errorf("restore of the incomplete b:\n%s", out)
		}
		l.keptAfterPrune("a")
		l.homelab("snapshot", "create", "c")
	})
	t.Run("restore/pg_restore", func(t *testing.T) {
		l := newLab(t, pg, 101)
		l.homelab("snapshot", "create", "a")
		l.psql(l.db, "delete from items where id > 200")
		must(t, os.WriteFile(filepath.Join(l.dir, "data", "a.txt"), []byte("changed\n"), 0o644))
		l.crash("pg_restore", "snapshot", "restore", "a", "--yes")
		out := l.fails("snapshot", "restore", "a", "--yes")
		if !strings.Contains(out, "homelab snapshot restore --resume") {
			t.Errorf("the next restore does not point to --resume:\n%s", out)
		}
		out = l.fails("status")
		for _, want := range []string{"NEEDS ATTENTION: 1 unfinished snapshot restore", "finish it with: homelab snapshot restore --resume "} {
			if !strings.Contains(out, want) {
				t.Errorf("status does not say %q:\n%s", want, out)
			}
		}
		l.homelab("snapshot", "restore", "--resume", "--yes")
		l.nothingLeft()
		if n := l.psql(l.db, "select count(*) from items"); n != "200" {
			t.Errorf("after the resumed restore the database has %s rows, want the 200 it had before it", n)
		}
		if b, _ := os.ReadFile(filepath.Join(l.dir, "data", "a.txt")); string(b) != "changed\n" {
			t.Errorf("after the resumed restore a.txt holds %q, want %q as before it", b, "changed\n")
		}
		// The restore runs to its end now.
		l.homelab("snapshot", "restore", "a", "--yes")
		if n := l.psql(l.db, "select count(*) from items"); n != "300" {
			t.Errorf("the restored database has %s rows, want 300", n)
		}
		if b, _ := os.ReadFile(filepath.Join(l.dir, "data", "a.txt")); string(b) != "alpha\n" {
			t.Errorf("restored a.txt holds %q, want %q", b, "alpha\n")
		}
		l.keptAfterPrune("a")
	})
}
