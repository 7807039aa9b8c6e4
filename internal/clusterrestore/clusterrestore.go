package clusterrestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/saga"
	"homelab/internal/upgrade"
)

// Kind is the saga kind of an in-place restore; it reads as the command
// that resumes it: homelab backup restore --resume ID.
const Kind = "backup restore"

// DefaultHealthyWithin bounds the health gate of a service without an
// upgrade section (whose healthy_within is used otherwise).
const DefaultHealthyWithin = 2 * time.Minute

// markEnv marks the pgbackrest restore of a saga (HOMELAB_SAGA=<ID>), so
// that a compensation after a crash finds and ends one left running.
const markEnv = upgrade.SagaEnv

// endGrace is how long a leftover restore gets between SIGTERM and
// SIGKILL.
const endGrace = 10 * time.Second

// Plan is what an in-place restore does; it is journalled as the saga's
// params, so that Resume builds the same steps.
type Plan struct {
	SagaID   string          `json:"saga_id"`
	Target   string          `json:"target"`
	Snapshot backup.Snapshot `json:"snapshot"`
	// Recovery is the point-in-time target; zero: the end of the archived
	// WAL.
	Recovery backup.Recovery `json:"recovery,omitzero"`
	// Service runs the cluster; Dependents use it (stop order).
	Service    string   `json:"service"`
	Dependents []string `json:"dependents,omitempty"`
	// DataDir is the cluster's data directory: cluster.data_dir with
	// symbolic links resolved (what is moved aside and restored into).
	DataDir string `json:"data_dir"`
	// Aside is where the old data directory is moved:
	// DATA_DIR.homelab-old-<saga ID>.
	Aside string `json:"aside"`
	// KeepOld leaves Aside in place once the restore is done.
	KeepOld bool `json:"keep_old,omitempty"`
	// FreeBytes is the space available on the data directory's
	// filesystem; the restore needs about Snapshot.Bytes of it.
	FreeBytes int64 `json:"free_bytes"`
	// Leftovers are old data directories that earlier in-place restores
	// kept (KeepOld) or could not remove.
	Leftovers []string `json:"leftovers,omitempty"`
}

// Failed is where the compensation moves what a failed restore left in
// the data directory before it puts the old one back.
func (p Plan) Failed() string { return p.DataDir + ".homelab-failed-" + p.SagaID }

// Restorer plans, runs and resumes in-place restores of the lab's
// pgbackrest targets.
type Restorer struct {
	Lab *lab.Lab
	// Backups resolves targets and snapshots; its Providers must hold the
	// *pgbackrest.Provider.
	Backups *backup.Manager
	// Upgrader gives the services' runtimes and is the health gate.
	Upgrader *upgrade.Upgrader
	// Journal is where the sagas are journalled (the catalog).
	Journal catalog.Journal
	Now     func() time.Time
	Log     *slog.Logger
	// Progress gets every journal row's change of state; Note one-line
	// notes of what a step does. Either may be nil.
	Progress func(id string, st saga.StepRecord)
	Note     func(msg string)
	// HealthyWithin bounds the health gate of a service whose upgrade
	// section sets no healthy_within; 0 means DefaultHealthyWithin.
	HealthyWithin time.Duration
}

func (r *Restorer) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Restorer) note(format string, args ...any) {
	if r.Note != nil {
		r.Note(fmt.Sprintf(format, args...))
	}
}

// target resolves the pgbackrest target name and its provider.
func (r *Restorer) target(ctx context.Context, name string) (backup.Target, *pgbackrest.Provider, error) {
	t, p, err := r.Backups.Target(ctx, name)
	if err != nil {
		return t, nil, err
	}
	prov, ok := p.(*pgbackrest.Provider)
	if !ok {
		return t, nil, fmt.Errorf("target %s: not a pgbackrest target", name)
	}
	return t, prov, nil
}

// Plan works out the in-place restore of target's snapshot ref (a label,
// a label prefix, or latest) to rec, without changing anything. It
// refuses a target that is not pgbackrest's or names no
// cluster.service, a data directory that is missing or has tablespaces,
// too little free space beside it for a second cluster, and (as a
// *saga.UnfinishedError) an unfinished saga on its service or
// dependents.
func (r *Restorer) Plan(ctx context.Context, target, ref string, rec backup.Recovery, keepOld bool) (Plan, error) {
	spec, err := r.Lab.Backup(target)
	if err != nil {
		return Plan{}, err
	}
	if spec.Provider != lab.ProviderPgBackRest {
		return Plan{}, fmt.Errorf("target %s is a %s target: this in-place restore is pgbackrest's", target, spec.Provider)
	}
	c := spec.PgBackRest.Cluster
	if c.Service == "" {
		return Plan{}, fmt.Errorf("target %s: an in-place restore stops and starts the cluster through the service that runs it: set pgbackrest.cluster.service in %s", target, r.Lab.Path)
	}
	t, p, err := r.Backups.Target(ctx, target)
	if err != nil {
		return Plan{}, err
	}
	snap, err := r.Backups.Resolve(ctx, t, p, ref)
	if err != nil {
		return Plan{}, err
	}
	// The directory itself is moved aside and restored into: a data_dir
	// that is a symbolic link (or has one on its path, or a trailing
	// slash) is resolved, else the link would be renamed, the restore
	// would make a new directory in its place (on the link's filesystem),
	// and the old cluster would be left behind the renamed link.
	dataDir, err := filepath.EvalSymlinks(c.DataDir)
	if err != nil {
		return Plan{}, fmt.Errorf("target %s: data directory %s: %w: restore into a new one with --to DIR", target, c.DataDir, err)
	}
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		return Plan{}, fmt.Errorf("target %s: data directory %s: not a directory (%v): restore into a new one with --to DIR", target, c.DataDir, err)
	}
	if ts, _ := os.ReadDir(filepath.Join(dataDir, "pg_tblspc")); len(ts) > 0 {
		return Plan{}, fmt.Errorf("target %s: the cluster has tablespaces (%s): they live outside the data directory, which is all an in-place restore moves aside; restore with --to DIR", target, filepath.Join(dataDir, "pg_tblspc"))
	}
	id := saga.NewID(r.now())
	pl := Plan{SagaID: id, Target: target, Snapshot: snap, Recovery: rec, Service: c.Service, Dependents: slices.Clone(c.Dependents),
		DataDir: dataDir, Aside: dataDir + ".homelab-old-" + id, KeepOld: keepOld}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(dataDir), &st); err != nil {
		return Plan{}, fmt.Errorf("target %s: free space beside %s: %w", target, dataDir, err)
	}
	pl.FreeBytes = int64(st.Bavail) * int64(st.Bsize)
	if pl.FreeBytes < snap.Bytes {
		return Plan{}, fmt.Errorf("target %s: the restored cluster needs about %d bytes beside the old one, which is kept until it is healthy, but %s has %d free", target, snap.Bytes, filepath.Dir(dataDir), pl.FreeBytes)
	}
	pl.Leftovers, _ = filepath.Glob(dataDir + ".homelab-old-*")
	// Refused here too, so that --dry-run and the confirmation do not
	// offer what Run refuses.
	if err := r.refuseUnfinished(ctx, pl); err != nil {
		return Plan{}, err
	}
	return pl, nil
}

// refuseUnfinished returns a *saga.UnfinishedError when a saga on p's
// service or one of its dependents (or covering them) is unfinished.
func (r *Restorer) refuseUnfinished(ctx context.Context, p Plan) error {
	open, err := saga.Unfinished(ctx, r.Journal)
	if err != nil {
		return err
	}
	for _, o := range open {
		if o.Subject == p.Service || slices.Contains(saga.Covered(o), p.Service) || slices.Contains(p.Dependents, o.Subject) ||
			slices.ContainsFunc(p.Dependents, func(d string) bool { return slices.Contains(saga.Covered(o), d) }) {
			return &saga.UnfinishedError{Record: o}
		}
	}
	return nil
}

func (r *Restorer) runner() *saga.Runner {
	return &saga.Runner{Journal: r.Journal, StateDir: r.Lab.StateDir, Now: r.Now, Log: r.Log, Progress: r.Progress}
}

// hold takes, without waiting, the target's lock (no backup, drill or
// other restore of it meanwhile) and the dependents' saga locks (no
// upgrade or deploy of them); the saga's own lock is the service's.
func (r *Restorer) hold(ctx context.Context, p Plan) (func(), error) {
	names := []string{p.Target}
	for _, d := range p.Dependents {
		names = append(names, saga.LockName(d))
	}
	release, err := lock.AcquireAll(ctx, r.Lab.StateDir, names, false)
	if err != nil {
		return nil, fmt.Errorf("target %s or a service depending on its cluster is busy: %w", p.Target, err)
	}
	return func() { release() }, nil
}

// Run runs the in-place restore of p as a saga (see the package
// documentation), recorded in the catalog as a restore run of the target
// (a killed one is found interrupted by the next command, as any run). It
// returns the journalled record; a failure returns a
// *saga.Error whose State says whether the cluster serves its old data
// again (compensated), was never touched (failed) or needs attention.
// Once done, the old data directory is removed unless p.KeepOld; a
// failure to remove it is returned as a *LeftError (the restore is
// done).
func (r *Restorer) Run(ctx context.Context, p Plan) (saga.Record, error) {
	release, err := r.hold(ctx, p)
	if err != nil {
		return saga.Record{}, err
	}
	defer release()
	// Refused before a run is recorded (saga.Runner.Run refuses too, under
	// the lock).
	if err := r.refuseUnfinished(ctx, p); err != nil {
		return saga.Record{}, err
	}
	run, err := r.Backups.Catalog.StartRun(ctx, catalog.Run{RunID: backup.NewRunID(r.now()), Kind: catalog.KindRestore, Target: p.Target,
		Provider: lab.ProviderPgBackRest, SnapshotID: p.Snapshot.ID, Bytes: p.Snapshot.Bytes, Start: r.now()})
	if err != nil {
		return saga.Record{}, fmt.Errorf("record run: %w", err)
	}
	rec, err := r.runner().Run(ctx, saga.Saga{ID: p.SagaID, Kind: Kind, Subject: p.Service, Covers: p.Dependents, Params: p, Steps: r.steps(p)})
	rec, err = r.finish(ctx, p, rec, err)
	run.End, run.Result = r.now(), catalog.ResultOK
	if err != nil {
		run.Result, run.Error = catalog.ResultFailed, err.Error()
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			run.Result = catalog.ResultInterrupted
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saga.JournalTimeout)
	defer cancel()
	if ferr := r.Backups.Catalog.FinishRun(rctx, run); ferr != nil {
		err = errors.Join(err, fmt.Errorf("record run: %w", ferr))
	}
	return rec, err
}

// finish removes the old data directory of a done saga (unless KeepOld)
// and records an event for one that did not end done.
func (r *Restorer) finish(ctx context.Context, p Plan, rec saga.Record, err error) (saga.Record, error) {
	if rec.State == saga.Done && err == nil {
		if !p.KeepOld {
			r.note("removing the old data directory %s", p.Aside)
			if rerr := os.RemoveAll(p.Aside); rerr != nil {
				return rec, &LeftError{Path: p.Aside, Err: rerr}
			}
		}
		r.event(ctx, "info", p, "restore_in_place_done", fmt.Sprintf("restored %s in place from %s%s (saga %s)", p.Target, p.Snapshot.ID, to(p.Recovery), rec.ID))
		return rec, nil
	}
	if rec.ID != "" && err != nil {
		r.event(ctx, "error", p, "restore_failed", err.Error())
	}
	return rec, err
}

func (r *Restorer) event(ctx context.Context, level string, p Plan, kind, msg string) {
	ev := catalog.Event{Time: r.now(), Level: level, Target: p.Target, Kind: kind, Message: msg}
	if err := r.Backups.Catalog.AddEvent(context.WithoutCancel(ctx), ev); err != nil && r.Log != nil {
		r.Log.Warn("record event", "err", err)
	}
}

// to is " to <recovery target>", or "" for the end of the archive.
func to(rec backup.Recovery) string {
	if rec == (backup.Recovery{}) {
		return ""
	}
	return " to " + rec.String()
}

// LeftError is a done restore whose old data directory could not be
// removed.
type LeftError struct {
	Path string
	Err  error
}

func (e *LeftError) Error() string {
	return fmt.Sprintf("restored, but the old data directory %s could not be removed (%v): remove it by hand", e.Path, e.Err)
}

func (e *LeftError) Unwrap() error { return e.Err }

// PlanOf decodes the plan journalled with an in-place restore saga.
func PlanOf(rec saga.Record) (Plan, error) {
	var p Plan
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return p, fmt.Errorf("saga %s: read its plan: %w", rec.ID, err)
	}
	return p, nil
}

// Restored reports whether the saga rec got the restored cluster through
// its health gate: a Resume then goes forward (only the dependents are
// left to start) instead of putting the old data back.
func Restored(rec saga.Record, p Plan) bool {
	for _, st := range rec.Steps {
		if st.Name == gateStep(p) && st.Phase == catalog.PhaseForward && st.State == catalog.StepDone {
			return true
		}
	}
	return false
}

// Resume finishes the unfinished in-place restore id (see the package
// documentation): forward when the restored cluster passed its health
// gate and no compensation began, else by compensating. A saga already
// over is returned as it is.
func (r *Restorer) Resume(ctx context.Context, id string) (saga.Record, error) {
	rec, err := r.Journal.Saga(ctx, id)
	if err != nil {
		return saga.Record{}, err
	}
	if rec.Kind != Kind {
		return rec, fmt.Errorf("saga %s is a %s, not an in-place restore", id, rec.Kind)
	}
	p, err := PlanOf(rec)
	if err != nil {
		return rec, err
	}
	if rec.State.Final() {
		return rec, nil
	}
	release, err := r.hold(ctx, p)
	if err != nil {
		return rec, err
	}
	defer release()
	mode := saga.Compensate
	if rec.State == saga.Running && Restored(rec, p) {
		mode = saga.Forward
	}
	rec, err = r.runner().Resume(ctx, id, r.steps(p), mode)
	return r.finish(ctx, p, rec, err)
}

// within bounds the health gate of a service whose upgrade section sets
// no healthy_within.
func (r *Restorer) within() time.Duration {
	if r.HealthyWithin > 0 {
		return r.HealthyWithin
	}
	return DefaultHealthyWithin
}

// exists reports whether path exists (a broken link counts).
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
