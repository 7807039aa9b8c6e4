package execx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildDiesWithHomelab: a command Run started does not outlive a
// homelab killed with SIGKILL (it is in its own process group, so before
// Pdeathsig a restic kept running and holding its lock).
func TestChildDiesWithHomelab(t *testing.T) {
	if dir := os.Getenv("EXECX_TEST_PARENT_DIR"); dir != "" {
		// The "homelab" side: run a child that writes its pid, and wait.
		err := Run(context.Background(), Cmd{Name: "/bin/sh", Args: []string{"-c", `echo $$ > "$0/child.pid"; exec sleep 1000`, dir}})
		t.Fatalf("child ended: %v", err)
	}
	dir := t.TempDir()
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithHomelab$", "-test.count=1")
	parent.Env = append(os.Environ(), "EXECX_TEST_PARENT_DIR="+dir)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	pid := waitPID(t, filepath.Join(dir, "child.pid"))
	defer syscall.Kill(pid, syscall.SIGKILL) // when the test fails
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	// Await the child's end (the kernel signals it as the parent exits);
	// the limit only stops a failing test.
	for deadline := time.Now().Add(time.Minute); alive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still runs a minute after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitPID(t *testing.T, file string) int {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		b, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s after a minute", file)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
