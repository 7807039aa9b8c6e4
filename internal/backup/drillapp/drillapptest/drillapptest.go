// Package drillapptest gives the providers' tests a drill application:
// the testapp (internal/testenv/testapp) serving /healthz from the
// drill's database (-check-table), probed over HTTP.
package drillapptest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/testenv"
)

// App is a drill.app running the testapp, healthy only while table of
// the drill's database has rows.
type App struct {
	*lab.DrillApp
	pidFile string
}

// New builds the testapp and returns a drill.app that starts it in the
// foreground on a free port (its pid in a file of its directory), probes
// /healthz for 200 within a minute, and is stopped by homelab's signals.
func New(t *testing.T, table string) *App {
	t.Helper()
	bin := testenv.TestApp(t, "1.0.0")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	a := &lab.DrillApp{
		Start:  fmt.Sprintf("echo $$ > app.pid; exec %s serve -addr %s -check-table %s", bin, addr, table),
		Dir:    dir,
		Within: time.Minute,
		Health: &lab.Health{HTTP: &lab.HTTPProbe{URL: "http://" + addr + "/healthz", Expect: 200, Timeout: 5 * time.Second}},
	}
	return &App{DrillApp: a, pidFile: filepath.Join(dir, "app.pid")}
}

// Gone fails the test unless the testapp of the last drill ran and is
// gone; it removes the pid file for the next.
func (a *App) Gone(t *testing.T) {
	t.Helper()
	Gone(t, a.pidFile)
	os.Remove(a.pidFile)
}

// Gone fails the test unless pidFile holds the ID of a process that is
// gone (a zombie counts as gone).
func Gone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the application wrote no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z ") {
			t.Errorf("the application (pid %d) still runs", pid)
		}
	}
}
