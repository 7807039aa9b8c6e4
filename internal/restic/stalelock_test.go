package restic_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// holdLock starts a restic backup that holds a non-exclusive lock of repo
// until it is killed, and returns once the lock reads back whole.
func holdLock(t *testing.T, c *restic.Client, repo, pass string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.Restic(t), "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "600")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		locks, err := c.Locks(context.Background())
		if err == nil && len(locks) == 1 && locks[0].PID == cmd.Process.Pid {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("restic backup took no lock within a minute (%v, %v)", locks, err)
		}
	}
}

// TestRemoveStaleLocks: a lock left by a restic killed on this host no
// longer blocks a command that needs an exclusive lock when
// RemoveStaleLocks is set (before, every later prune and check failed
// with restic's "repository is already locked"); a live lock is never
// removed.
func TestRemoveStaleLocks(t *testing.T) {
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	ctx := context.Background()
	var removed []restic.LockInfo
	newClient := func(remove bool) *restic.Client {
		c, err := restic.New(ctx, restic.Config{Binary: bin, Repository: repo, PasswordFile: pass, RemoveStaleLocks: remove,
			OnStaleLock: func(l restic.LockInfo) { removed = append(removed, l) }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	plain, sweeping := newClient(false), newClient(true)

	// A live lock: both fail, and the lock stays.
	live := holdLock(t, plain, repo, pass)
	if err := sweeping.Prune(ctx); !errors.Is(err, restic.ErrLocked) {
		t.Fatalf("prune beside a live lock = %v, want ErrLocked", err)
	}
	if locks, _ := plain.Locks(ctx); len(locks) != 1 || len(removed) != 0 {
		t.Fatalf("a live lock was touched: locks %+v, removed %+v", locks, removed)
	}

	// Its holder killed: the lock stays behind.
	syscall.Kill(-live.Process.Pid, syscall.SIGKILL)
	live.Wait()
	if err := plain.Prune(ctx); !errors.Is(err, restic.ErrLocked) {
		t.Fatalf("prune after the holder died, without RemoveStaleLocks = %v, want ErrLocked", err)
	}
	if err := sweeping.Prune(ctx); err != nil {
		t.Fatalf("prune with RemoveStaleLocks = %v, want the stale lock removed and the prune done", err)
	}
	if len(removed) != 1 || removed[0].PID != live.Process.Pid {
		t.Errorf("removed = %+v, want the lock of pid %d", removed, live.Process.Pid)
	}

	// A waiting client (--retry-lock, as upgrades and --wait use) looks
	// before it waits: it does not wait out RetryLock on a dead lock.
	dead := holdLock(t, plain, repo, pass)
	syscall.Kill(-dead.Process.Pid, syscall.SIGKILL)
	dead.Wait()
	waiting, err := restic.New(ctx, restic.Config{Binary: bin, Repository: repo, PasswordFile: pass, RemoveStaleLocks: true, RetryLock: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The limit only stops a client that waits on the dead lock.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := waiting.Prune(wctx); err != nil {
		t.Fatalf("prune of a waiting client after the holder died = %v, want the stale lock removed first", err)
	}
	if locks, _ := plain.Locks(ctx); len(locks) != 0 {
		t.Errorf("locks after the prune: %+v", locks)
	}
}

// TestPartitionLocks: a lock of another host is live unless older than
// MaxAge; MaxAge 0 judges by the host rule alone.
func TestPartitionLocks(t *testing.T) {
	c, repo := client(t)
	ctx := context.Background()
	holdLock(t, c, repo, filepath.Join(filepath.Dir(repo), "repo.pass"))
	gone := func(int) bool { return false }
	for _, tc := range []struct {
		name      string
		rule      restic.StaleRule
		wantStale int
	}{
		{"this host, alive", restic.StaleRule{}, 0},
		{"this host, gone", restic.StaleRule{Alive: gone}, 1},
		{"other host, fresh", restic.StaleRule{Hostname: "elsewhere", Alive: gone}, 0},
		{"other host, no age rule, much later", restic.StaleRule{Hostname: "elsewhere", Now: func() time.Time { return time.Now().Add(time.Hour) }}, 0},
		{"other host, older than MaxAge", restic.StaleRule{Hostname: "elsewhere", MaxAge: 30 * time.Minute, Now: func() time.Time { return time.Now().Add(time.Hour) }}, 1},
	} {
		stale, live, err := c.Partition(ctx, tc.rule)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) != tc.wantStale || len(stale)+len(live) != 1 {
			t.Errorf("%s: stale %d, live %d; want %d stale of 1", tc.name, len(stale), len(live), tc.wantStale)
		}
	}
}
