package lock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"homelab/internal/lock"
)

func acquire(t *testing.T, dir, name string) *lock.Lock {
	t.Helper()
	l, err := lock.Acquire(t.Context(), dir, name, false)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestBusyInProcess(t *testing.T) {
	dir := t.TempDir()
	l := acquire(t, dir, "db")

	_, err := lock.Acquire(t.Context(), dir, "db", false)
	if !errors.Is(err, lock.ErrBusy) {
		t.Fatalf("second Acquire: %v; want ErrBusy", err)
	}
	var be *lock.BusyError
	if !errors.As(err, &be) || be.Name != "db" {
		t.Fatalf("second Acquire: %#v; want *BusyError for db", err)
	}
	want := fmt.Sprintf(`target "db" is busy: another homelab process (pid %d, started `, os.Getpid())
	if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "; retry later or pass --wait") {
		t.Errorf("message %q, want prefix %q", msg, want)
	}

	// Another name is free.
	acquire(t, dir, "files").Release()

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	acquire(t, dir, "db").Release()
}

func TestLockFile(t *testing.T) {
	dir := t.TempDir()
	l := acquire(t, dir, "db")
	b, err := os.ReadFile(lock.Path(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, os.Getpid())) {
		t.Errorf("lock file %q does not name this process", b)
	}
	fi, err := os.Stat(lock.Path(dir, "db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	l.Release()
	if b, _ := os.ReadFile(lock.Path(dir, "db")); len(b) != 0 {
		t.Errorf("lock file after release: %q; want empty", b)
	}
}

func TestInvalidName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, "../x"} {
		if _, err := lock.Acquire(t.Context(), t.TempDir(), name, false); err == nil || errors.Is(err, lock.ErrBusy) {
			t.Errorf("Acquire(%q): %v; want invalid name", name, err)
		}
	}
}

func TestWaitCancel(t *testing.T) {
	dir := t.TempDir()
	defer acquire(t, dir, "db").Release()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := lock.Acquire(ctx, dir, "db", true)
	if d := time.Since(start); d > 300*time.Millisecond+2*lock.PollInterval {
		t.Errorf("Acquire returned after %v", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, lock.ErrBusy) {
		t.Fatalf("Acquire: %v; want DeadlineExceeded and ErrBusy", err)
	}
	if !strings.Contains(err.Error(), "gave up waiting") {
		t.Errorf("message %q does not say it gave up waiting", err)
	}

	// Cancelled rather than timed out: returns promptly too.
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, err := lock.Acquire(ctx, dir, "db", true); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire: %v; want Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Acquire returned %v after cancel", d)
	}
}

func TestAcquireAll(t *testing.T) {
	dir := t.TempDir()
	release, err := lock.AcquireAll(t.Context(), dir, []string{"web", "db", "db", "files"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"db", "files", "web"} {
		if _, err := lock.Acquire(t.Context(), dir, name, false); !errors.Is(err, lock.ErrBusy) {
			t.Errorf("%s while held: %v; want ErrBusy", name, err)
		}
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}

	// One busy name: the others are released again.
	files := acquire(t, dir, "files")
	_, err = lock.AcquireAll(t.Context(), dir, []string{"web", "db", "files"}, false)
	var be *lock.BusyError
	if !errors.As(err, &be) || be.Name != "files" {
		t.Fatalf("AcquireAll with files busy: %v; want BusyError for files", err)
	}
	for _, name := range []string{"db", "web"} {
		acquire(t, dir, name).Release()
	}
	files.Release()
}

const (
	helperDirEnv  = "HOMELAB_LOCK_HELPER_DIR"
	helperNameEnv = "HOMELAB_LOCK_HELPER_NAME"
)

// TestHelperProcess is not a test: TestOtherProcess runs the test binary
// again with helperDirEnv set, and then this holds the lock named by
// helperNameEnv, prints "locked", and releases it when stdin closes.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return // only a helper when re-executed by the test that needs it
	}
	l, err := lock.Acquire(context.Background(), dir, os.Getenv(helperNameEnv), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	if err := l.Release(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperNameEnv+"=db")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("helper: %q, %v; want locked", line, err)
	}

	_, err = lock.Acquire(t.Context(), dir, "db", false)
	if !errors.Is(err, lock.ErrBusy) {
		t.Fatalf("Acquire while helper holds it: %v; want ErrBusy", err)
	}
	if want := fmt.Sprintf("(pid %d, started ", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not name the holder: want %q", err, want)
	}
	if !strings.Contains(err.Error(), "TestHelperProcess") {
		t.Errorf("message %q does not show the holder's command line", err)
	}
	t.Log(err)

	// Waiting: the helper releases when its stdin closes.
	got := make(chan error, 1)
	go func() {
		l, err := lock.Acquire(t.Context(), dir, "db", true)
		if err == nil {
			err = l.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Acquire with wait returned while held: %v", err)
	case <-time.After(3 * lock.PollInterval / 2):
	}
	stdin.Close()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Acquire with wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire with wait did not return after the holder released")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
}
