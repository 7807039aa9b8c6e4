package lock

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHeld: Held sees a lock held by this process and by another one,
// without taking it, and not once it is released.
func TestHeld(t *testing.T) {
	dir := t.TempDir()
	if held, _, err := Held(dir, "saga-web"); err != nil || held {
		t.Fatalf("no lock file: held %v, %v", held, err)
	}
	l, err := Acquire(t.Context(), dir, "saga-web", false)
	if err != nil {
		t.Fatal(err)
	}
	held, holder, err := Held(dir, "saga-web")
	if err != nil || !held || !strings.Contains(holder, "pid ") {
		t.Fatalf("held by this process: %v %q %v", held, holder, err)
	}
	// Held did not take it: it is still ours, and another Acquire fails.
	if _, err := Acquire(t.Context(), dir, "saga-web", false); err == nil {
		t.Fatal("a second Acquire got the lock")
	}
	if held, _, _ := Held(dir, "saga-other"); held {
		t.Error("another name is held")
	}
	l.Release()
	if held, _, err := Held(dir, "saga-web"); err != nil || held {
		t.Fatalf("released: held %v, %v", held, err)
	}
	// Held by another process (flock(1)), then that process gone.
	path := Path(dir, "saga-web")
	// flock(1) is util-linux, essential on Debian. Its command inherits
	// the locked file: kill the whole group.
	cmd := exec.Command("flock", "--exclusive", path, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("flock(1): %v", err)
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	defer kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if held, _, _ := Held(dir, "saga-web"); held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock held by flock(1) is not seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	kill()
	cmd.Wait()
	// The killed sleep closes the file as it dies, a moment later.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		held, _, err := Held(dir, "saga-web")
		if err != nil {
			t.Fatal(err)
		}
		if !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock is still seen held after its holder was killed")
		}
	}
}

// TestWaitReleased: it waits while the lock is held, without taking it,
// returns once it is released, and gives ctx's error when ctx ends first.
func TestWaitReleased(t *testing.T) {
	dir := t.TempDir()
	if err := WaitReleased(t.Context(), dir, "free"); err != nil {
		t.Fatalf("a lock nobody holds: %v", err)
	}
	l, err := Acquire(t.Context(), dir, "db", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*PollInterval)
	defer cancel()
	if err := WaitReleased(ctx, dir, "db"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held: %v, want the deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- WaitReleased(t.Context(), dir, "db") }()
	select {
	case err := <-done:
		t.Fatalf("returned while held: %v", err)
	case <-time.After(3 * PollInterval):
	}
	l.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
