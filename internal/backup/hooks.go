package backup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"homelab/internal/execx"
)

// HookResult is one hook command's outcome.
type HookResult struct {
	Phase    string        `json:"phase"` // before, after
	Command  string        `json:"command"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

type hookEnv struct {
	Target, RunID, Result, SnapshotID string
}

// runHooks runs commands in order with /bin/sh -c in the lab file's
// directory, each bounded by timeout.
// The environment carries HOMELAB_TARGET, HOMELAB_RUN_ID and, for after
// hooks, HOMELAB_RESULT and HOMELAB_SNAPSHOT_ID. It stops at the first
// failure and returns it.
func (m *Manager) runHooks(ctx context.Context, phase string, cmds []string, timeout time.Duration, env hookEnv) ([]HookResult, error) {
	var out []HookResult
	for _, c := range cmds {
		hctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		err := execx.Run(hctx, execx.Cmd{
			Name: "/bin/sh",
			Dir:  filepath.Dir(m.Lab.Path),
			Args: []string{"-c", c},
			Env: []string{"HOMELAB_TARGET=" + env.Target, "HOMELAB_RUN_ID=" + env.RunID,
				"HOMELAB_RESULT=" + env.Result, "HOMELAB_SNAPSHOT_ID=" + env.SnapshotID, "HOMELAB_HOOK=" + phase},
			OnStderr: func(line string) { m.log().Info("hook", "phase", phase, "target", env.Target, "stderr", line) },
		})
		cancel()
		r := HookResult{Phase: phase, Command: c, Duration: time.Since(start)}
		if err != nil {
			if errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil { // its own timeout, not the run's
				err = fmt.Errorf("timed out after %s: %w", timeout, err)
			}
			r.Error = err.Error()
			out = append(out, r)
			return out, fmt.Errorf("%s hook %q: %w", phase, c, err)
		}
		out = append(out, r)
	}
	return out, nil
}
