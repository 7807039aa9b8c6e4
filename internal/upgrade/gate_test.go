package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"homelab/internal/lab"
	"homelab/internal/runtime"
)

// scriptedRuntime reports the statuses of states in turn, then the last
// one forever.
type scriptedRuntime struct {
	states []runtime.Status
	looks  atomic.Int32
}

func (r *scriptedRuntime) Kind() string                    { return lab.RuntimeExec }
func (r *scriptedRuntime) Start(ctx context.Context) error { return nil }
func (r *scriptedRuntime) Stop(ctx context.Context) error  { return nil }
func (r *scriptedRuntime) Status(ctx context.Context) (runtime.Status, error) {
	i := int(r.looks.Add(1)) - 1
	return r.states[min(i, len(r.states)-1)], nil
}

// TestHealthGateFailsAtOnceWhenStopped: a service whose process exits
// during the health gate fails the gate at the next look, with the
// runtime's words and its last log lines, instead of after the whole
// healthy_within (10m by default: ten minutes of downtime before the
// rollback began).
func TestHealthGateFailsAtOnceWhenStopped(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "app.log")
	var lines []string
	for i := 1; i <= 15; i++ {
		lines = append(lines, "line "+string(rune('a'+i-1)))
	}
	lines = append(lines, "panic: cannot open database")
	if err := os.WriteFile(logFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &lab.Lab{Path: filepath.Join(dir, "lab.yaml")}
	for _, tc := range []struct {
		name     string
		svc      *lab.Service
		detail   string
		wantText []string
	}{
		{"with a log file", &lab.Service{Name: "app", Logs: &lab.Logs{File: logFile}}, "exited (1)",
			[]string{"app stopped before it became healthy: stopped: exited (1); its last 10 log lines:", "\n    line g\n", "\n    panic: cannot open database"}},
		// The exec runtime's status command said nothing: no "stopped: "
		// with nothing after the colon.
		{"no detail, no log source", &lab.Service{Name: "app"}, "",
			[]string{"app stopped before it became healthy: stopped (its logs: service app: no log source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A moment stopped between restarts is waited through; stopped
			// on three looks in a row fails the gate.
			rt := &scriptedRuntime{states: []runtime.Status{
				{State: runtime.Restarting},
				{State: runtime.Stopped, Detail: "between restarts"},
				{State: runtime.Restarting},
				{State: runtime.Stopped, Detail: tc.detail},
			}}
			u := &Upgrader{Lab: l, Poll: time.Millisecond}
			// A gate that waited out healthy_within would end with this
			// context's deadline instead of a StoppedError.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := u.WaitHealthy(ctx, tc.svc, rt, time.Hour)
			var se *StoppedError
			if !errors.As(err, &se) {
				t.Fatalf("WaitHealthy = %v, want a *StoppedError", err)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "line f") {
				t.Errorf("error holds more than the last 10 log lines:\n%s", err)
			}
			if strings.Contains(err.Error(), "stopped: ;") || strings.HasSuffix(err.Error(), ": ") {
				t.Errorf("error %q ends a colon with nothing", err)
			}
			if n := rt.looks.Load(); n != 6 {
				t.Errorf("the runtime was read %d times, want 6 (fail at the third stopped look in a row)", n)
			}
		})
	}
}

// TestHealthGateWaitsThroughRestarting: a service that is restarting (a
// container's restart policy, systemd's auto-restart) is waited for, and
// passes once it runs.
func TestHealthGateWaitsThroughRestarting(t *testing.T) {
	rt := &scriptedRuntime{states: []runtime.Status{
		{State: runtime.Restarting}, {State: runtime.Restarting}, {State: runtime.Running, Detail: "pid 42"},
	}}
	u := &Upgrader{Lab: &lab.Lab{Path: "lab.yaml"}, Poll: time.Millisecond}
	if err := u.WaitHealthy(context.Background(), &lab.Service{Name: "app"}, rt, time.Hour); err != nil {
		t.Fatalf("WaitHealthy = %v, want healthy", err)
	}
}
