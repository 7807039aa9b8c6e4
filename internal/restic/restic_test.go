package restic_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/internal/restic"
	"homelab/internal/testenv"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want restic.Version
		old  bool
	}{
		{"restic 0.18.1 compiled with go1.26.8 on linux/amd64", restic.Version{0, 18, 1}, false},
		{"restic 0.14.0 compiled with go1.19.8 on linux/amd64", restic.Version{0, 14, 0}, true},
		{"restic 0.17.0 (v0.17.0-dirty)", restic.Version{0, 17, 0}, false},
	} {
		got, err := restic.ParseVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseVersion(%q) = %v, %v", tc.in, got, err)
		}
		if got.Less(restic.MinVersion) != tc.old {
			t.Errorf("%v older than min = %v, want %v", got, !tc.old, tc.old)
		}
	}
	if _, err := restic.ParseVersion("nonsense"); err == nil {
		t.Error("want error for nonsense")
	}
}

// TestTooOldIsRefused runs a shim that reports restic 0.14 (what Debian
// bookworm ships) and expects the refusal to say how to get a newer one.
func TestTooOldIsRefused(t *testing.T) {
	dir := t.TempDir()
	shim := filepath.Join(dir, "restic")
	os.WriteFile(shim, []byte("#!/bin/sh\necho 'restic 0.14.0 compiled with go1.19.8 on linux/amd64'\n"), 0o755)
	_, err := restic.New(context.Background(), restic.Config{Binary: shim, Repository: dir, Password: "x"})
	if !errors.Is(err, restic.ErrTooOld) || !strings.Contains(err.Error(), "install-restic.sh") {
		t.Fatalf("err = %v, want ErrTooOld naming the fix", err)
	}
}

func client(t *testing.T) (*restic.Client, string) {
	t.Helper()
	bin := testenv.Restic(t)
	repo, pass := testenv.ResticRepo(t)
	c, err := restic.New(context.Background(), restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
	if err != nil {
		t.Fatal(err)
	}
	return c, repo
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	c, _ := client(t)
	ctx := context.Background()
	src := t.TempDir()
	for i, body := range []string{"alpha", "beta", strings.Repeat("gamma", 100000)} {
		os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), []byte(body), 0o644)
	}
	var statuses int
	sum, err := c.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Tags: []string{"homelab", "target:t1"}}, func(restic.Status) { statuses++ })
	if err != nil {
		t.Fatal(err)
	}
	if sum.SnapshotID == "" || sum.TotalFilesProcessed != 3 {
		t.Fatalf("summary = %+v", sum)
	}
	snaps, err := c.Snapshots(ctx, "homelab", "target:t1")
	if err != nil || len(snaps) != 1 || snaps[0].ID != sum.SnapshotID || snaps[0].TagValue("target") != "t1" {
		t.Fatalf("snapshots = %+v, %v", snaps, err)
	}
	if other, _ := c.Snapshots(ctx, "target:other"); len(other) != 0 {
		t.Fatalf("tag filter leaked: %+v", other)
	}
	dst := t.TempDir()
	rs, err := c.Restore(ctx, sum.SnapshotID, dst, restic.RestoreOptions{Verify: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rs.FilesRestored < 3 { // files plus the directories leading to them
		t.Errorf("restored %d files, want at least 3", rs.FilesRestored)
	}
	got, _ := os.ReadFile(filepath.Join(dst, src, "fc"))
	if len(got) != 500000 {
		t.Errorf("restored file has %d bytes", len(got))
	}
}

func TestStdinFromCommand(t *testing.T) {
	c, _ := client(t)
	ctx := context.Background()
	sum, err := c.Backup(ctx, restic.BackupOptions{
		StdinCommand: []string{"sh", "-c", `printf 'dump of %s' "$SECRET_FOR_CHILD"`}, StdinFilename: "db.dump",
		CommandEnv: []string{"SECRET_FOR_CHILD=xyz"}, Tags: []string{"homelab"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Dump(ctx, sum.SnapshotID, "/db.dump", &buf, false); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "dump of xyz" {
		t.Errorf("dump = %q", buf.String())
	}
	// A snapshot that is not in the repository (a full ID, as homelab's
	// catalog has them, or a prefix) is ErrSnapshotNotFound; a missing
	// file in a snapshot that is there is not.
	gone := strings.Repeat("0", 64)
	for _, id := range []string{gone, gone[:8]} {
		err := c.Dump(ctx, id, "/db.dump", io.Discard, false)
		if !errors.Is(err, restic.ErrSnapshotNotFound) || !errors.Is(err, restic.ErrFatal) {
			t.Errorf("dump of missing snapshot %s: %v; want ErrSnapshotNotFound", id[:8], err)
		}
	}
	if err := c.Dump(ctx, sum.SnapshotID, "/no-such.dump", io.Discard, false); err == nil || errors.Is(err, restic.ErrSnapshotNotFound) {
		t.Errorf("dump of a missing file: %v; want an error other than ErrSnapshotNotFound", err)
	}
	// A failing command fails the backup and leaves no snapshot behind.
	_, err = c.Backup(ctx, restic.BackupOptions{StdinCommand: []string{"sh", "-c", "echo partial; exit 3"}, StdinFilename: "db.dump", Tags: []string{"homelab"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "command failed") {
		t.Fatalf("err = %v, want the command failure", err)
	}
	if snaps, _ := c.Snapshots(ctx); len(snaps) != 1 {
		t.Errorf("%d snapshots after a failed dump, want 1", len(snaps))
	}
}

func TestExitCodes(t *testing.T) {
	bin := testenv.Restic(t)
	ctx := context.Background()
	repo, pass := testenv.ResticRepo(t)

	t.Run("no repository", func(t *testing.T) {
		c, _ := restic.New(ctx, restic.Config{Binary: bin, Repository: filepath.Join(t.TempDir(), "none"), PasswordFile: pass})
		_, err := c.Snapshots(ctx)
		if !errors.Is(err, restic.ErrNoRepository) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c, _ := restic.New(ctx, restic.Config{Binary: bin, Repository: repo, Password: "not-the-password-42"})
		_, err := c.Snapshots(ctx)
		if !errors.Is(err, restic.ErrWrongPassword) {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "not-the-password-42") {
			t.Fatalf("password leaked into error: %v", err)
		}
	})
	t.Run("partial", func(t *testing.T) {
		c, _ := restic.New(ctx, restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
		src := t.TempDir()
		os.WriteFile(filepath.Join(src, "ok"), []byte("ok"), 0o644)
		// /proc/self/mem opens but fails to read (EIO), even for root.
		sum, err := c.Backup(ctx, restic.BackupOptions{Paths: []string{src, "/proc/self/mem"}}, nil)
		if !errors.Is(err, restic.ErrPartial) {
			t.Fatalf("err = %v, want ErrPartial", err)
		}
		if sum.SnapshotID == "" {
			t.Error("partial backup should still report its snapshot")
		}
	})
	t.Run("locked", func(t *testing.T) {
		// A running backup holds a lock; prune needs an exclusive one.
		cmd := exec.Command(bin, "backup", "--repo", repo, "--password-file", pass, "--stdin-filename", "x", "--stdin-from-command", "--", "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		c, _ := restic.New(ctx, restic.Config{Binary: bin, Repository: repo, PasswordFile: pass})
		// Wait for the backup's lock first: a prune started earlier would
		// take the exclusive lock and make the backup fail instead.
		deadline := time.Now().Add(25 * time.Second)
		for locks, _ := c.Locks(ctx); len(locks) == 0; locks, _ = c.Locks(ctx) {
			if time.Now().After(deadline) {
				t.Fatal("the backup took no lock within 25s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		var err error
		for time.Now().Before(deadline) {
			if err = c.Prune(ctx); errors.Is(err, restic.ErrLocked) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("err = %v, want ErrLocked", err)
	})
}

func TestForgetPlanAndCheck(t *testing.T) {
	c, repo := client(t)
	ctx := context.Background()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	for _, d := range []string{"2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z", "2024-01-09T10:00:00Z"} {
		tm, _ := time.Parse(time.RFC3339, d)
		if _, err := c.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Tags: []string{"homelab", "target:x"}, Time: tm}, nil); err != nil {
			t.Fatal(err)
		}
	}
	groups, err := c.ForgetPlan(ctx, []string{"homelab", "target:x"}, restic.Policy{Last: 1, Weekly: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || len(groups[0].Keep) != 2 || len(groups[0].Remove) != 1 || !groups[0].Remove[0].Time.Equal(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("plan = %+v", groups)
	}
	if _, err := c.Check(ctx, "100%"); err != nil {
		t.Fatalf("check of a healthy repository: %v", err)
	}
	packs, _ := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no pack files")
	}
	for _, p := range packs {
		os.Truncate(p, 10)
	}
	if _, err := c.Check(ctx, "100%"); err == nil {
		t.Fatal("check of a damaged repository succeeded")
	}
}

// TestInterruptReleasesLock cancels a running backup: restic gets SIGINT,
// removes its lock and writes no snapshot.
func TestInterruptReleasesLock(t *testing.T) {
	c, repo := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.Backup(ctx, restic.BackupOptions{StdinCommand: []string{"sleep", "60"}, StdinFilename: "x"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	locks, _ := filepath.Glob(filepath.Join(repo, "locks", "*"))
	if len(locks) != 0 {
		t.Errorf("restic left %d locks", len(locks))
	}
	if snaps, _ := c.Snapshots(context.Background()); len(snaps) != 0 {
		t.Errorf("%d snapshots after an interrupted backup", len(snaps))
	}
}

// TestStaleLock leaves a lock behind the way a crash does (SIGKILL of a
// running backup) and sees it listed, judged live then stale, and removed.
func TestStaleLock(t *testing.T) {
	c, repo := client(t)
	ctx := context.Background()
	host, _ := os.Hostname()
	pass := filepath.Join(filepath.Dir(repo), "repo.pass")
	cmd := exec.Command(testenv.Restic(t), "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "60")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })

	var locks []restic.LockInfo
	for deadline := time.Now().Add(20 * time.Second); len(locks) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("restic backup took no lock within 20s")
		}
		time.Sleep(100 * time.Millisecond)
		var err error
		if locks, err = c.Locks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l := locks[0]
	if len(locks) != 1 || l.PID != cmd.Process.Pid || l.Hostname != host || l.Exclusive || l.ID == "" {
		t.Fatalf("locks = %+v, want one non-exclusive lock of pid %d on %s", locks, cmd.Process.Pid, host)
	}
	now := time.Now()
	if l.Stale(now, 30*time.Minute, host, restic.ProcessAlive) {
		t.Error("the lock of a running backup is judged stale")
	}
	if !l.Stale(now.Add(31*time.Minute), 30*time.Minute, "other-host", restic.ProcessAlive) {
		t.Error("a lock not refreshed for 31m is not judged stale")
	}

	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if locks, _ = c.Locks(ctx); len(locks) != 1 {
		t.Fatalf("after SIGKILL: %d locks, want the one left behind", len(locks))
	}
	if !locks[0].Stale(time.Now(), 30*time.Minute, host, restic.ProcessAlive) {
		t.Error("a lock whose process is gone is not judged stale")
	}
	if locks[0].Stale(time.Now(), 30*time.Minute, "other-host", restic.ProcessAlive) {
		t.Error("a fresh lock of another host is judged stale (its pid means nothing here)")
	}
	if err := c.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if locks, _ = c.Locks(ctx); len(locks) != 0 {
		t.Errorf("after unlock: %+v", locks)
	}
}
