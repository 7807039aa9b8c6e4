package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/files"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/restic"
	"homelab/internal/schedule"
	"homelab/internal/testenv"
)

// resticDaemon is a daemon over a real restic repository with one files
// target, "files".
func resticDaemon(t *testing.T, extra ...string) (*Daemon, *catalog.SQLite, string, string) {
	t.Helper()
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "data")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("alpha"), 0o644)
	doc := fmt.Sprintf("name: locks\nrepositories:\n  local: {url: %s, password_file: %s}\nbackups:\n  files:\n    provider: restic\n    repository: local\n    source: {paths: [%s]}\n%s", repo, pass, src, strings.Join(extra, ""))
	path := filepath.Join(dir, "lab.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalog.Open(context.Background(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	notes := &fakeNotifier{}
	d, err := New(Config{
		Lab: l, Catalog: store,
		NewManager: func(l *lab.Lab) *backup.Manager {
			return &backup.Manager{Lab: l, Catalog: store, Providers: map[string]backup.Provider{"restic": &files.Provider{}},
				Repo: func(ctx context.Context, name string) (*restic.Client, error) {
					r := l.Repositories[name]
					return restic.New(ctx, restic.Config{Binary: bin, Repository: r.URL, PasswordFile: r.PasswordFile, RetryLock: time.Minute})
				}}
		},
		NewNotifier: func(*lab.Lab, *slog.Logger) (Notifier, error) { return notes, nil },
		Log:         slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	d.queue = newQueue(context.Background(), 1)
	return d, store, repo, pass
}

// holdLock starts a restic backup that waits on its stdin command, so it
// holds a repository lock; it returns once the lock can be read.
func holdLock(t *testing.T, repo, pass string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.Restic(t), "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "60")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	// Wait until the lock reads back whole: restic creates the file
	// before it has written it, and a lock killed half written is
	// unreadable, not stale (seen under load).
	c, err := restic.New(context.Background(), restic.Config{Binary: testenv.Restic(t), Repository: repo, PasswordFile: pass})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if locks, err := c.Locks(context.Background()); err == nil && len(locks) > 0 {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("restic took no lock within 20s")
		}
	}
}

func lockFiles(repo string) int {
	l, _ := filepath.Glob(filepath.Join(repo, "locks", "*"))
	return len(l)
}

// TestStaleLockIsRemovedBeforeAJob leaves a lock the way a crash does
// (SIGKILL of a running restic): the next job logs it, removes it, and
// runs; restic alone would refuse a prune against it.
func TestStaleLockIsRemovedBeforeAJob(t *testing.T) {
	d, store, repo, pass := resticDaemon(t)
	ctx := context.Background()
	cmd := holdLock(t, repo, pass)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if lockFiles(repo) != 1 {
		t.Fatalf("SIGKILL left %d locks, want 1", lockFiles(repo))
	}

	d.runJob(ctx, schedule.Fire{Key: schedule.Key{Kind: schedule.KindBackup, Name: "files"}}, "local")
	if n := lockFiles(repo); n != 0 {
		t.Errorf("%d locks after the job, want the stale one removed", n)
	}
	events, _ := store.Events(ctx, 0)
	found := false
	for _, e := range events {
		found = found || e.Kind == "stale_lock_removed" && strings.Contains(e.Message, fmt.Sprintf("pid %d", cmd.Process.Pid))
	}
	if !found {
		t.Errorf("no stale_lock_removed event naming pid %d: %+v", cmd.Process.Pid, events)
	}
	if runs, _ := store.Runs(ctx, catalog.RunFilter{Target: "files", Result: catalog.ResultOK}); len(runs) != 1 {
		t.Errorf("good backups after the sweep: %d, want 1", len(runs))
	}
}

// TestLiveLockIsLeftAlone: a lock whose holder runs is never removed.
func TestLiveLockIsLeftAlone(t *testing.T) {
	d, store, repo, pass := resticDaemon(t)
	ctx := context.Background()
	holdLock(t, repo, pass)
	d.sweepLocks(ctx, d.state.Load(), "local")
	if n := lockFiles(repo); n != 1 {
		t.Errorf("%d locks after a sweep, want the live one kept", n)
	}
	if events, _ := store.Events(ctx, 0); len(events) != 0 {
		t.Errorf("events: %+v", events)
	}
}

// TestJobTimeoutFails: a backup that outlives its timeout is recorded as
// failed (not interrupted), and that is notified with the reason.
func TestJobTimeoutFails(t *testing.T) {
	d, store, _, _ := resticDaemon(t, "    timeout: 2s\n    hooks: {before: [\"sleep 30\"]}\n")
	ctx := context.Background()
	start := time.Now()
	d.runJob(ctx, schedule.Fire{Key: schedule.Key{Kind: schedule.KindBackup, Name: "files"}}, "local")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the job took %s with a 2s timeout", took)
	}
	runs, _ := store.Runs(ctx, catalog.RunFilter{Target: "files"})
	if len(runs) != 1 || runs[0].Result != catalog.ResultFailed {
		t.Fatalf("runs = %+v, want one failed run", runs)
	}
	notes := d.state.Load().notifier.(*fakeNotifier)
	if len(notes.events) != 1 || notes.events[0].Kind != notify.BackupFailed || notes.events[0].Error != "timed out after 2s" {
		t.Errorf("notifications = %+v, want backup_failed: timed out after 2s", notes.events)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
