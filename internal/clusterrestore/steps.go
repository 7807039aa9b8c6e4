package clusterrestore

import (
	"context"
	"fmt"
	"os"
	"strings"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/execx"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

// Step names.
const (
	stopDependentsStep  = "stop dependents"
	startDependentsStep = "start dependents"
	archivingStep       = "resume archiving"
)

func stopServiceStep(p Plan) string  { return "stop " + p.Service }
func moveAsideStep(p Plan) string    { return "move aside " + p.DataDir }
func restoreStep(p Plan) string      { return "restore " + p.Snapshot.ID + to(p.Recovery) }
func startServiceStep(p Plan) string { return "start " + p.Service }
func gateStep(p Plan) string         { return "health gate " + p.Service }

// Journal keys.
const (
	stoppedKey = "stopped" // stop dependents: those that ran, in stop order
	wasKey     = "was"     // stop SERVICE: its state before
)

// StepNames are the saga's steps of p, in order (what --dry-run shows).
func StepNames(p Plan) []string {
	return []string{stopDependentsStep, stopServiceStep(p), moveAsideStep(p), restoreStep(p), startServiceStep(p), gateStep(p), startDependentsStep, archivingStep}
}

func (r *Restorer) steps(p Plan) []saga.Step {
	steps := []saga.Step{
		{Name: stopDependentsStep,
			Do: func(ctx context.Context, sc *saga.StepContext) error { return r.stopDependents(ctx, sc, p) },
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return r.startAll(ctx, stoppedDependents(sc))
			}},
		{Name: stopServiceStep(p),
			Do: func(ctx context.Context, sc *saga.StepContext) error { return r.stopService(ctx, sc, p) },
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				if was, _ := sc.Get(stopServiceStep(p), wasKey); was == string(runtime.Stopped) {
					return nil
				}
				return r.startAll(ctx, []string{p.Service})
			}},
		{Name: moveAsideStep(p),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				if pid, ok := pgbackrest.ServerPID(p.DataDir); ok {
					return fmt.Errorf("a server (pid %d) runs in %s: not moving it aside", pid, p.DataDir)
				}
				r.note("moving %s aside to %s", p.DataDir, p.Aside)
				if err := os.Rename(p.DataDir, p.Aside); err != nil {
					return fmt.Errorf("move the data directory aside (it must not be a mount point: the old one is renamed beside it): %w", err)
				}
				return nil
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error { return r.putBack(ctx, p) }},
		{Name: restoreStep(p),
			// Undone with the step before: putBack moves what it left away.
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				if err := sc.Set(saga.SnapshotKey(p.Target), p.Snapshot.ID); err != nil {
					return err
				}
				t, prov, err := r.target(ctx, p.Target)
				if err != nil {
					return err
				}
				r.note("restoring %s%s into %s", p.Snapshot.ID, to(p.Recovery), p.DataDir)
				return prov.RestoreLive(execx.WithMark(ctx, markEnv+"="+sc.SagaID()), t, p.Snapshot, p.Recovery, p.DataDir)
			}},
		{Name: startServiceStep(p),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return r.Upgrader.StartAll(ctx, []string{p.Service})
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error { return r.stopServer(ctx, p) }},
		{Name: gateStep(p), Retryable: true,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				t, prov, err := r.target(ctx, p.Target)
				if err != nil {
					return err
				}
				r.note("waiting for the restored cluster to finish recovery")
				if err := prov.AwaitPromoted(ctx, t); err != nil {
					return err
				}
				return r.Upgrader.GateAll(ctx, []string{p.Service}, r.within())
			}},
		{Name: startDependentsStep, Retryable: true,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return r.startAll(ctx, stoppedDependents(sc))
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return r.Upgrader.StopAll(ctx, stoppedDependents(sc))
			}},
		// Last: once the restored cluster's WAL (its new timeline's
		// history file first) is in the repository, the old cluster's
		// must not be put back (later recoveries to the end of the WAL
		// would follow the restored one's timeline).
		{Name: archivingStep, Retryable: true,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				t, prov, err := r.target(ctx, p.Target)
				if err != nil {
					return err
				}
				r.note("resuming archiving on the restored cluster")
				return prov.ResumeArchiving(ctx, t, p.DataDir)
			}},
	}
	for i := range steps {
		steps[i].Do, steps[i].Undo = flat(steps[i].Do), flat(steps[i].Undo)
	}
	return steps
}

// flat makes f's errors one line (a tool's multi-line stderr joined with
// " | "), for the journal, the events and the verdict.
func flat(f func(context.Context, *saga.StepContext) error) func(context.Context, *saga.StepContext) error {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, sc *saga.StepContext) error {
		if err := f(ctx, sc); err != nil {
			return oneLine{err}
		}
		return nil
	}
}

// oneLine is an error whose text is on one line.
type oneLine struct{ err error }

func (e oneLine) Error() string {
	var lines []string
	for _, l := range strings.Split(e.err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}

func (e oneLine) Unwrap() error { return e.err }

// stopDependents stops those of p's dependents that run, in order,
// journalling them first.
func (r *Restorer) stopDependents(ctx context.Context, sc *saga.StepContext, p Plan) error {
	running, err := r.Upgrader.Running(ctx, p.Dependents)
	if err != nil {
		return err
	}
	if err := sc.Set(stoppedKey, strings.Join(running, ",")); err != nil {
		return err
	}
	return r.Upgrader.StopAll(ctx, running)
}

// stoppedDependents are the dependents "stop dependents" journalled as
// stopped.
func stoppedDependents(sc *saga.StepContext) []string {
	v, _ := sc.Get(stopDependentsStep, stoppedKey)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// stopService stops the cluster's service (journalling its state first)
// and checks that no server runs in the data directory any more.
func (r *Restorer) stopService(ctx context.Context, sc *saga.StepContext, p Plan) error {
	_, rt, err := r.Upgrader.Service(p.Service)
	if err != nil {
		return err
	}
	st, err := rt.Status(ctx)
	if err != nil {
		return fmt.Errorf("service %s: state unknown: %w", p.Service, err)
	}
	if err := sc.Set(wasKey, string(st.State)); err != nil {
		return err
	}
	r.note("stopping %s", p.Service)
	if err := rt.Stop(ctx); err != nil {
		return err
	}
	if pid, ok := pgbackrest.ServerPID(p.DataDir); ok {
		return fmt.Errorf("service %s is stopped, but a server (pid %d) still runs in %s: pgbackrest.cluster.service must name the service that runs this cluster", p.Service, pid, p.DataDir)
	}
	return nil
}

// stopServer stops the service on the restored data (a compensation) and
// checks that no server runs in the data directory any more.
func (r *Restorer) stopServer(ctx context.Context, p Plan) error {
	if ok, err := exists(p.DataDir); err != nil || !ok {
		return err // nothing restored: nothing can run
	}
	if err := r.Upgrader.StopAll(ctx, []string{p.Service}); err != nil {
		return err
	}
	if pid, ok := pgbackrest.ServerPID(p.DataDir); ok {
		return fmt.Errorf("service %s is stopped, but a server (pid %d) still runs in %s: stop it, then resume", p.Service, pid, p.DataDir)
	}
	return nil
}

// putBack puts the old data directory back (moving aside what a restore
// left there first) and ends a restore a killed homelab left running.
// Idempotent: a put back killed midway finishes when run again.
func (r *Restorer) putBack(ctx context.Context, p Plan) error {
	if procs, err := execx.EndMarked(markEnv+"="+p.SagaID, endGrace); err != nil {
		return fmt.Errorf("end the restore of saga %s: %w", p.SagaID, err)
	} else if len(procs) > 0 {
		r.note("ended %d process(es) of the interrupted restore", len(procs))
	}
	aside, err := exists(p.Aside)
	if err != nil {
		return err
	}
	if !aside {
		// Never moved, or already put back: the data directory must be
		// there.
		if ok, err := exists(p.DataDir); err != nil || !ok {
			return fmt.Errorf("neither the data directory %s nor the old one moved aside to %s exists (%v): the cluster's data is missing", p.DataDir, p.Aside, err)
		}
		return os.RemoveAll(p.Failed())
	}
	if pid, ok := pgbackrest.ServerPID(p.DataDir); ok {
		return fmt.Errorf("a server (pid %d) runs on the restored data in %s: stop it, then resume", pid, p.DataDir)
	}
	if ok, err := exists(p.DataDir); err != nil {
		return err
	} else if ok {
		if err := os.RemoveAll(p.Failed()); err != nil {
			return err
		}
		if err := os.Rename(p.DataDir, p.Failed()); err != nil {
			return fmt.Errorf("move the restored data directory away: %w", err)
		}
	}
	r.note("putting the old data directory back in %s", p.DataDir)
	if err := os.Rename(p.Aside, p.DataDir); err != nil {
		return fmt.Errorf("put the old data directory back: %w", err)
	}
	return os.RemoveAll(p.Failed())
}

// startAll starts names in reverse order, then waits until each is
// healthy.
func (r *Restorer) startAll(ctx context.Context, names []string) error {
	if err := r.Upgrader.StartAll(ctx, names); err != nil {
		return err
	}
	return r.Upgrader.GateAll(ctx, names, r.within())
}
