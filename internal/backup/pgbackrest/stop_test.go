package pgbackrest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"homelab/internal/lab"
)

// TestStopPidFileBeingWritten: stop of a server whose pid file exists but
// does not hold its pid yet (the postmaster creates it, then writes it)
// awaits pg_ctl start and then signals the pid written, instead of
// handing pg_ctl stop an empty pid file ("invalid data in PID file") and
// leaving the server running.
func TestStopPidFileBeingWritten(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "postmaster.pid")
	if err := os.WriteFile(pidFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	server := exec.Command("sleep", "600") // SIGQUIT ends it
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { server.Wait(); os.Remove(pidFile); close(exited) }()
	t.Cleanup(func() { server.Process.Kill(); <-exited })
	done := make(chan error) // unbuffered: the test sees stop await pg_ctl start
	c := &cluster{r: &runner{b: &lab.Backup{PgBackRest: &lab.PgBackRest{}}}, dir: dir, pgctlDone: done}
	go func() {
		done <- nil // pg_ctl start has returned: stop takes it ...
		os.WriteFile(pidFile, []byte(strconv.Itoa(server.Process.Pid)+"\n"+dir+"\n"), 0o600)
		<-done // ... and puts it back
		for {  // later waits
			done <- nil
			<-done
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("the server was not signalled")
	}
}
