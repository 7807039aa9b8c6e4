package execx

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMarked: a command run under WithMark carries the mark, and so do
// the children it leaves behind; Marked finds them by it, and not a
// process with another mark.
func TestMarked(t *testing.T) {
	ctx := WithMark(context.Background(), "HOMELAB_TEST_MARK=a1")
	// The shell leaves a sleep behind, in the background, and exits.
	if err := Run(ctx, Cmd{Name: "sh", Args: []string{"-c", "sleep 30 >/dev/null 2>&1 </dev/null & echo $! >&2"}}); err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "30")
	other.Env = []string{"HOMELAB_TEST_MARK=a10"}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()

	procs, err := Marked("HOMELAB_TEST_MARK=a1")
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].Cmd != "sleep 30" || procs[0].PID == other.Process.Pid {
		t.Fatalf("Marked = %+v, want the one sleep left by the marked command", procs)
	}
	if err := syscall.Kill(procs[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := MarkEnv(context.Background()); got != nil {
		t.Errorf("MarkEnv of an unmarked context = %q", got)
	}
}

// TestEndMarked: the marks of nested contexts add up, and EndMarked ends
// what carries one of them (a child that ignores SIGTERM is killed after
// the grace), leaving other processes alone.
func TestEndMarked(t *testing.T) {
	ctx := WithMark(WithMark(context.Background(), "HOMELAB_TEST_SAGA=s1"), "HOMELAB_TEST_RUN=r1")
	if got := MarkEnv(ctx); len(got) != 2 || got[0] != "HOMELAB_TEST_SAGA=s1" || got[1] != "HOMELAB_TEST_RUN=r1" {
		t.Fatalf("MarkEnv = %q, want both marks", got)
	}
	if err := Run(ctx, Cmd{Name: "sh", Args: []string{"-c", "sleep 60 >/dev/null 2>&1 </dev/null & (trap '' TERM; exec sleep 61) >/dev/null 2>&1 </dev/null &"}}); err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "62")
	other.Env = []string{"HOMELAB_TEST_RUN=r10"}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	ended, err := EndMarked("HOMELAB_TEST_RUN=r1", time.Second)
	if err != nil || len(ended) != 2 {
		t.Fatalf("EndMarked = %+v, %v; want the two sleeps", ended, err)
	}
	if left, _ := Marked("HOMELAB_TEST_RUN=r1"); len(left) != 0 {
		t.Errorf("still running: %+v", left)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process with another mark was ended: %v", err)
	}
}
