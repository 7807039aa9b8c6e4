package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/execx"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/restic"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

// ErrDrillFailed is returned (wrapped) when a drill's checks failed.
var ErrDrillFailed = errors.New("restore drill failed")

// ErrNoSnapshot means a target has no snapshot to restore or drill.
var ErrNoSnapshot = errors.New("no snapshot")

// Manager runs backups, restores, drills, prunes and checks for the
// targets of one lab, recording each in the catalog.
type Manager struct {
	Lab       *lab.Lab
	Catalog   catalog.Store
	Providers map[string]Provider
	// Repo returns the restic client of a repository of the lab.
	Repo func(ctx context.Context, name string) (*restic.Client, error)
	// Wait makes a busy target wait for its lock instead of failing, and
	// a backup whose stop list has a service being upgraded wait (before
	// it takes any lock) for that upgrade to finish; except in a Manager
	// of an upgrade (Upgrading set), which fails at once instead, so that
	// two upgrades never wait for each other.
	Wait bool
	Now  func() time.Time
	Log  *slog.Logger
	// Progress, when set, gets restic status lines of backups and
	// restores, with the target's name.
	Progress func(target string, s restic.Status)
	// Runtime returns the runtime of a service a backup stops (its stop
	// list); default runtime.New with the tools in PATH.
	Runtime func(*lab.Service) (runtime.Runtime, error)
	// Upgrading names the services whose upgrade lock (saga.LockName)
	// this process holds: an upgrade taking its restore points. A backup
	// stopping any other service takes that lock for the time the service
	// is down, and fails if an upgrade holds it.
	Upgrading []string
	// BackupType is the type a backup run asks for (pgbackrest: full,
	// diff, incr; Target.Type); empty: the provider decides.
	BackupType string
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}

// NewRunID returns a run identifier: UTC time to the second plus 4 random
// bytes, e.g. 20261123T101500Z-1a2b3c4d. It is also the restic tag run:<id>.
func NewRunID(now time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// TypedRunID is the ID of a run asking for backup type typ (pgbackrest:
// full, diff, incr): id (NewRunID), "-" and typ, e.g.
// 20261206T104100Z-1a2b3c4d-full. It is how the catalog keeps the type
// of a run that made no backup (a failed one); RunIDType reads it back.
func TypedRunID(id, typ string) string { return id + "-" + typ }

// RunIDType is the backup type in a run ID made by TypedRunID; "" for
// another run ID.
func RunIDType(id string) string {
	i := strings.LastIndexByte(id, '-')
	if i < 0 || strings.Count(id, "-") < 2 {
		return ""
	}
	return id[i+1:]
}

// Target resolves a target of the lab by name.
func (m *Manager) Target(ctx context.Context, name string) (Target, Provider, error) {
	spec, err := m.Lab.Backup(name)
	if err != nil {
		return Target{}, nil, err
	}
	p, ok := m.Providers[spec.Provider]
	if !ok {
		return Target{}, nil, fmt.Errorf("target %s: provider %q is not available", name, spec.Provider)
	}
	if spec.Provider == lab.ProviderPgBackRest { // its repository is its own
		return Target{Spec: spec, Type: m.BackupType}, p, nil
	}
	if spec.Repository == "" { // s3-mirror: its snapshots are in its destination
		return Target{Spec: spec}, p, nil
	}
	repo, err := m.Repo(ctx, spec.Repository)
	if err != nil {
		return Target{}, nil, fmt.Errorf("target %s: repository %s: %w", name, spec.Repository, err)
	}
	return Target{Spec: spec, Repo: repo}, p, nil
}

// CheckLockName is the name of the lock a repository check holds while it
// runs: "check@<repository>" (no target name has an @).
func CheckLockName(repo string) string { return "check@" + repo }

// runLockName is the lock a run holds while it runs: its target's, or for
// a check its repository's check lock.
func runLockName(r catalog.Run) string {
	if r.Kind == catalog.KindCheck {
		return CheckLockName(r.Repository)
	}
	return r.Target
}

// RunEnv is the environment variable that marks every command a run
// starts, and their children (execx.WithMark): HOMELAB_RUN=<run ID>.
// Reconcile ends what a killed homelab's run left running by it.
const RunEnv = "HOMELAB_RUN"

// leftoverGrace is how long a dead run's leftover processes get between
// SIGTERM and SIGKILL.
const leftoverGrace = 10 * time.Second

// endLeftovers ends the processes a dead run left (restic's
// --stdin-from-command pg_dump, a pg_restore fed by a dead pipe: children
// of homelab's children, which Pdeathsig does not reach), logging each,
// and then removes the restic locks of repo whose holders are gone from
// this host (a restic that died with its run leaves its lock; a backup
// is not blocked by it, so nothing else would remove it).
func (m *Manager) endLeftovers(ctx context.Context, runID, repo string) {
	procs, err := execx.EndMarked(RunEnv+"="+runID, leftoverGrace)
	if err != nil {
		m.log().Warn("look for processes of an abandoned run", "run", runID, "err", err)
	}
	for _, p := range procs {
		m.log().Warn("ended a process an abandoned run left running", "run", runID, "pid", p.PID, "cmd", p.Cmd)
	}
	if repo == "" || m.Repo == nil {
		return
	}
	c, err := m.Repo(ctx, repo)
	if err != nil {
		return
	}
	if _, err := c.RemoveStaleLocks(ctx, restic.StaleRule{}); err != nil && !errors.Is(err, restic.ErrNoRepository) {
		m.log().Warn("remove the stale locks of an abandoned run", "run", runID, "repository", repo, "err", err)
	}
}

// AbandonedRunError is the error recorded for a run that Reconcile found
// running in the catalog with no process at work on it.
const AbandonedRunError = "interrupted: the homelab process running it is gone"

// Reconcile records as interrupted, in the catalog, every run that the
// catalog has as running but whose lock no process holds: the homelab
// running it was killed (SIGKILL, power loss) and it will never finish.
// Every run holds its lock from before it is recorded until after it is
// finished, so Reconcile takes the lock itself (never waiting: a busy lock
// is a run at work) and, holding it, reads the run again: one that
// finished meanwhile is left alone. It returns the runs it closed; homelab
// calls it at start, so that the catalog, the API, the metrics and status
// agree.
func (m *Manager) Reconcile(ctx context.Context) ([]catalog.Run, error) {
	running, err := m.Catalog.Runs(ctx, catalog.RunFilter{Result: catalog.ResultRunning})
	if err != nil {
		return nil, fmt.Errorf("reconcile runs: %w", err)
	}
	var closed []catalog.Run
	for _, r := range running {
		done, ok, err := m.reconcileRun(ctx, r)
		if err != nil {
			return closed, err
		}
		if ok {
			closed = append(closed, done)
		}
	}
	drills, err := m.Catalog.Drills(ctx, catalog.DrillFilter{Result: catalog.ResultRunning})
	if err != nil {
		return closed, fmt.Errorf("reconcile drills: %w", err)
	}
	for _, d := range drills {
		ok, err := m.reconcileDrill(ctx, d)
		if err != nil {
			return closed, err
		}
		if ok {
			closed = append(closed, catalog.Run{RunID: d.RunID, Kind: KindDrill, Target: d.Target, SnapshotID: d.SnapshotID,
				Start: d.Start, End: m.now().UTC(), Result: catalog.ResultInterrupted, Error: AbandonedRunError})
		}
	}
	return closed, nil
}

// KindDrill names drills among the runs Reconcile returns (drills are
// their own catalog records, not runs).
const KindDrill catalog.Kind = "drill"

// reconcileDrill records d as interrupted if no process runs it (its
// target's lock is free), as reconcileRun does for runs.
func (m *Manager) reconcileDrill(ctx context.Context, d catalog.Drill) (bool, error) {
	release, ok, err := m.takeAbandoned(ctx, d.Target, func() (bool, error) {
		still, err := m.Catalog.Drills(ctx, catalog.DrillFilter{Target: d.Target, Result: catalog.ResultRunning})
		return slices.ContainsFunc(still, func(s catalog.Drill) bool { return s.ID == d.ID }), err
	})
	if err != nil {
		return false, fmt.Errorf("reconcile drill %s: %w", d.RunID, err)
	}
	if !ok {
		return false, nil
	}
	defer release()
	repo := ""
	if b, ok := m.Lab.Backups[d.Target]; ok {
		repo = b.Repository
	}
	m.endLeftovers(ctx, d.RunID, repo)
	d.Result, d.Error, d.End = catalog.ResultInterrupted, AbandonedRunError, m.now().UTC()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.Catalog.FinishDrill(rctx, d); err != nil {
		return false, fmt.Errorf("reconcile drill %s: %w", d.RunID, err)
	}
	m.log().Warn("recorded an abandoned drill as interrupted", "drill", d.RunID, "target", d.Target, "started", d.Start)
	m.event(ctx, "warn", d.Target, "drill_interrupted", fmt.Sprintf("drill %s started %s: %s", d.RunID, d.Start.Format(time.RFC3339), AbandonedRunError))
	return true, nil
}

// takeAbandoned takes the lock called name when no process holds it and,
// holding it, asks stillRunning whether the catalog still has the run as
// running: ok with the lock's release when both hold. It looks before it
// takes (lock.Held), since a lock taken even for an instant could make a
// real run's Acquire fail as busy; a lock it cannot take is a run at work.
func (m *Manager) takeAbandoned(ctx context.Context, name string, stillRunning func() (bool, error)) (release func(), ok bool, err error) {
	if held, _, err := lock.Held(m.Lab.StateDir, name); err != nil || held {
		return nil, false, nil
	}
	l, err := lock.Acquire(ctx, m.Lab.StateDir, name, false)
	if err != nil {
		return nil, false, nil
	}
	running, err := stillRunning()
	if err != nil || !running { // finished meanwhile, or unknown
		l.Release()
		return nil, false, err
	}
	return func() { l.Release() }, true, nil
}

// reconcileRun records r as interrupted if no process runs it, and
// returns it so recorded and true if it did.
func (m *Manager) reconcileRun(ctx context.Context, r catalog.Run) (catalog.Run, bool, error) {
	release, ok, err := m.takeAbandoned(ctx, runLockName(r), func() (bool, error) {
		still, err := m.Catalog.Runs(ctx, catalog.RunFilter{Target: r.Target, Kind: r.Kind, Result: catalog.ResultRunning})
		return slices.ContainsFunc(still, func(s catalog.Run) bool { return s.ID == r.ID }), err
	})
	if err != nil {
		return r, false, fmt.Errorf("reconcile run %s: %w", r.RunID, err)
	}
	if !ok {
		return r, false, nil
	}
	defer release()
	m.endLeftovers(ctx, r.RunID, r.Repository)
	r.Result, r.Error = catalog.ResultInterrupted, AbandonedRunError
	if r.End.IsZero() {
		r.End = m.now().UTC()
	}
	if err := m.record(ctx, r); err != nil {
		return r, false, fmt.Errorf("reconcile run %s: %w", r.RunID, err)
	}
	m.log().Warn("recorded an abandoned run as interrupted", "run", r.RunID, "kind", r.Kind, "target", r.Target, "started", r.Start)
	m.event(ctx, "warn", r.Target, string(r.Kind)+"_interrupted", fmt.Sprintf("%s %s started %s: %s", r.Kind, r.RunID, r.Start.Format(time.RFC3339), AbandonedRunError))
	return r, true, nil
}

func (m *Manager) lockTarget(ctx context.Context, name string) (func() error, error) {
	l, err := lock.Acquire(ctx, m.Lab.StateDir, name, m.Wait)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// event records an event with a context that outlives a cancelled run
// (as record does), so an interrupted run's backup_interrupted event is
// not lost to "context canceled".
func (m *Manager) event(ctx context.Context, level, target, kind, msg string) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.Catalog.AddEvent(ectx, catalog.Event{Time: m.now().UTC(), Level: level, Target: target, Kind: kind, Message: msg}); err != nil {
		m.log().Warn("record event", "err", err)
	}
}

// resultOf maps an error to a catalog result. A run stopped by its
// deadline (a job timeout) failed; one stopped by cancellation (a signal,
// the daemon shutting down) was interrupted.
func resultOf(ctx context.Context, err error) catalog.Result {
	switch {
	case err == nil:
		return catalog.ResultOK
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return catalog.ResultFailed
	case ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, restic.ErrInterrupted):
		return catalog.ResultInterrupted
	case errors.Is(err, restic.ErrPartial):
		return catalog.ResultPartial
	}
	return catalog.ResultFailed
}

// record finishes a catalog run with a context that outlives a cancelled
// run, so an interrupted run is still recorded as such.
func (m *Manager) record(ctx context.Context, r catalog.Run) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return m.Catalog.FinishRun(rctx, r)
}

// RunReport is the outcome of one backup run.
type RunReport struct {
	Run   catalog.Run  `json:"run"`
	Hooks []HookResult `json:"hooks,omitempty"`
	// Services is what was done to the target's stop list.
	Services []ServiceStop `json:"services,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	Err      error         `json:"-"`
}

// Backup backs up one target: lock; stop the services of its stop list
// that are running (a failure aborts); before hooks (a failure aborts);
// the provider's backup; start again the services it stopped, in reverse
// order, whatever happened (a failure fails the run: a service is down);
// after hooks (always run; a failure is a warning); and a catalog record
// of the run whatever happened.
func (m *Manager) Backup(ctx context.Context, name string) RunReport {
	return m.BackupOfType(ctx, name, m.BackupType)
}

// BackupOfType is Backup asking for backup type typ (pgbackrest: full,
// diff, incr; "": the provider decides) whatever m.BackupType says: the
// daemon runs each type of a target on its own schedule with one
// Manager.
func (m *Manager) BackupOfType(ctx context.Context, name, typ string) RunReport {
	rep := RunReport{Run: catalog.Run{Kind: catalog.KindBackup, Target: name, Start: m.now().UTC()}}
	t, p, err := m.Target(ctx, name)
	if t.Spec != nil && t.Spec.Provider == lab.ProviderPgBackRest {
		t.Type = typ
	}
	if err != nil {
		rep.Err = err
		rep.Run.Result, rep.Run.Error = catalog.ResultFailed, err.Error()
		return rep
	}
	if err := m.waitUpgrades(ctx, name, t.Spec.Stop); err != nil {
		rep.Err = err
		rep.Run.Result, rep.Run.Error = catalog.ResultFailed, err.Error()
		return rep
	}
	release, err := m.lockTarget(ctx, name)
	if err != nil {
		rep.Err = err
		rep.Run.Result, rep.Run.Error = catalog.ResultFailed, err.Error()
		return rep
	}
	defer release()

	runID := NewRunID(m.now())
	if t.Type != "" && t.Spec.Provider == lab.ProviderPgBackRest {
		runID = TypedRunID(runID, t.Type)
	}
	ctx = execx.WithMark(ctx, RunEnv+"="+runID)
	run := catalog.Run{RunID: runID, Kind: catalog.KindBackup, Target: name, Provider: t.Spec.Provider, Repository: t.Spec.Repository, Start: m.now().UTC()}
	if run, err = m.Catalog.StartRun(ctx, run); err != nil {
		rep.Err = fmt.Errorf("record run: %w", err)
		return rep
	}
	env := hookEnv{Target: name, RunID: run.RunID}
	var snap Snapshot
	down, err := m.stopServices(ctx, name, t.Spec.Stop)
	if err == nil {
		var hooks []HookResult
		hooks, err = m.runHooks(ctx, "before", t.Spec.Hooks.Before, t.Spec.Hooks.Timeout, env)
		rep.Hooks = append(rep.Hooks, hooks...)
	}
	if err == nil {
		snap, err = p.Backup(ctx, t, run.RunID, m.progressFor(name))
	}
	run.Result = resultOf(ctx, err)
	if rerr := down.restart(ctx, name); rerr != nil {
		m.event(ctx, "error", name, "service_restart_failed", rerr.Error())
		if err == nil || run.Result == catalog.ResultPartial {
			err, run.Result = restartError(snap.ID, rerr), catalog.ResultFailed
		} else {
			err = errors.Join(err, rerr)
		}
	}
	rep.Services = down.report()
	env.Result, env.SnapshotID = string(run.Result), snap.ID
	after, herr := m.runHooks(context.WithoutCancel(ctx), "after", t.Spec.Hooks.After, t.Spec.Hooks.Timeout, env)
	rep.Hooks = append(rep.Hooks, after...)
	if herr != nil {
		rep.Warnings = append(rep.Warnings, herr.Error())
		m.event(ctx, "warn", name, "hook_failed", herr.Error())
	}

	run.End = m.now().UTC()
	run.SnapshotID, run.Bytes, run.BytesAdded, run.Files = snap.ID, snap.Bytes, snap.Added, snap.Files
	if snap.ID != "" {
		run.SnapshotTime = snap.Time.UTC()
	}
	if err != nil {
		run.Error = err.Error()
		if run.Result == catalog.ResultPartial {
			rep.Warnings = append(rep.Warnings, err.Error())
		}
		m.event(ctx, "error", name, "backup_"+string(run.Result), err.Error())
	}
	if rerr := m.record(ctx, run); rerr != nil {
		err = errors.Join(err, fmt.Errorf("record run: %w", rerr))
	}
	rep.Run, rep.Err = run, err
	if len(rep.Warnings) > 0 && (err == nil || run.Result == catalog.ResultPartial) {
		rep.Err = &WarningError{Warnings: rep.Warnings, Err: err}
	}
	return rep
}

// Whole returns the ID of the run's snapshot when it can be restored as a
// whole (an upgrade's restore point, a lab snapshot's member): the run
// made one and it is not partial (restic exit 3: files unreadable); a
// failed after hook, a warning, does not matter. Otherwise the error says
// why: the run's error wrapped, except a partial snapshot's, which is
// only quoted, so that the caller's failure does not read as "done with
// warnings".
func (r RunReport) Whole() (string, error) {
	var warn *WarningError
	switch {
	case r.Err == nil, errors.As(r.Err, &warn) && warn.Err == nil:
	case errors.As(r.Err, &warn):
		return "", errors.New(r.Err.Error())
	default:
		return "", r.Err
	}
	if r.Run.SnapshotID == "" {
		return "", errors.New("the backup made no snapshot")
	}
	return r.Run.SnapshotID, nil
}

// WarningError is a job that completed but with warnings (exit code 3):
// a partial snapshot or a failed after hook.
type WarningError struct {
	Warnings []string
	Err      error // the partial snapshot's error, if any
}

func (w *WarningError) Error() string { return "done with warnings: " + strings.Join(w.Warnings, "; ") }

func (w *WarningError) Unwrap() error { return w.Err }

func (m *Manager) progressFor(target string) ProgressFunc {
	if m.Progress == nil {
		return nil
	}
	return func(s restic.Status) { m.Progress(target, s) }
}

// SnapshotRow is a snapshot with its restore-drill state.
type SnapshotRow struct {
	Snapshot
	Drill *catalog.Drill `json:"drill,omitempty"` // the newest drill of it
}

// List returns the target's snapshots, oldest first, each with its newest
// drill from the catalog.
func (m *Manager) List(ctx context.Context, name string) ([]SnapshotRow, error) {
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return nil, err
	}
	snaps, err := p.List(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", name, err)
	}
	drills, err := m.Catalog.Drills(ctx, catalog.DrillFilter{Target: name})
	if err != nil {
		return nil, err
	}
	newest := map[string]*catalog.Drill{}
	for i := range drills { // newest first
		if _, ok := newest[drills[i].SnapshotID]; !ok {
			newest[drills[i].SnapshotID] = &drills[i]
		}
	}
	rows := make([]SnapshotRow, 0, len(snaps))
	for _, s := range snaps {
		rows = append(rows, SnapshotRow{Snapshot: s, Drill: newest[s.ID]})
	}
	return rows, nil
}

// Resolve finds a snapshot of the target by ID or ID prefix, or "latest".
func (m *Manager) Resolve(ctx context.Context, t Target, p Provider, ref string) (Snapshot, error) {
	snaps, err := p.List(ctx, t)
	if err != nil {
		return Snapshot{}, fmt.Errorf("list %s: %w", t.Name(), err)
	}
	if len(snaps) == 0 {
		return Snapshot{}, fmt.Errorf("target %s: %w yet (run: homelab backup run %s)", t.Name(), ErrNoSnapshot, t.Name())
	}
	if ref == "" || ref == "latest" {
		return snaps[len(snaps)-1], nil
	}
	var found []Snapshot
	for _, s := range snaps {
		if strings.HasPrefix(s.ID, ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return Snapshot{}, fmt.Errorf("target %s: %w %q", t.Name(), ErrNoSnapshot, ref)
	case 1:
		return found[0], nil
	}
	return Snapshot{}, fmt.Errorf("target %s: snapshot prefix %q is ambiguous (%d matches)", t.Name(), ref, len(found))
}

// FindTarget returns the target whose snapshots include ref (an ID or
// prefix), searching every repository of the lab, then the destinations
// of its s3-mirror targets.
func (m *Manager) FindTarget(ctx context.Context, ref string) (string, error) {
	if ref == "" || ref == "latest" {
		return "", errors.New(`"latest" needs --target`)
	}
	var names []string
	for name := range m.Lab.Repositories {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c, err := m.Repo(ctx, name)
		if err != nil {
			return "", err
		}
		snaps, err := c.Snapshots(ctx, TagHomelab)
		if err != nil {
			return "", fmt.Errorf("repository %s: %w", name, err)
		}
		for _, s := range snaps {
			if strings.HasPrefix(s.ID, ref) {
				if t := s.TagValue("target"); t != "" {
					return t, nil
				}
			}
		}
	}
	// s3-mirror targets: their snapshots are in their destinations.
	for _, name := range slices.Sorted(maps.Keys(m.Lab.Backups)) {
		b := m.Lab.Backups[name]
		if b.Repository != "" {
			continue
		}
		t, p, err := m.Target(ctx, name)
		if err != nil {
			return "", err
		}
		snaps, err := p.List(ctx, t)
		if err != nil {
			return "", fmt.Errorf("target %s: %w", name, err)
		}
		for _, s := range snaps {
			if strings.HasPrefix(s.ID, ref) {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("%w %q in any repository or s3-mirror destination of the lab", ErrNoSnapshot, ref)
}

// RestorePlan is what a restore will do; the CLI shows it before asking.
type RestorePlan struct {
	Target   string      `json:"target"`
	Provider string      `json:"provider"`
	Snapshot Snapshot    `json:"snapshot"`
	Dest     Destination `json:"destination"`
	// Replaces is what an in-place restore (Dest.InPlace) replaces: the
	// target's source paths (files), or its source database (postgres).
	Replaces []string `json:"replaces,omitempty"`
	// fromCatalog: Snapshot is "latest" as the catalog knows it
	// (latestFromCatalog), not as listed from the repository; Restore
	// lists and retries once if the repository no longer has it.
	fromCatalog bool
}

// PlanRestore resolves the snapshot and destination without changing
// anything, and checks the privileges the restore needs (Preflighter):
// findings are returned as a *PreflightError. A file target needs dest.Path, a postgres target
// dest.Database, unless dest.InPlace, which needs both empty and restores
// to the target's source (listed in the plan's Replaces). Replace is for
// postgres targets only. ref is an ID, an ID prefix or "latest" (or
// empty: latest); latest is taken from the catalog when it can say
// (latestFromCatalog: no repository listing), else, like an ID, from the
// repository's list (Resolve). Errors: the target's or destination's,
// ErrNoSnapshot, and the listing's.
func (m *Manager) PlanRestore(ctx context.Context, name, ref string, dest Destination) (RestorePlan, error) {
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return RestorePlan{}, err
	}
	replaces, err := checkDestination(t.Spec, dest)
	if err != nil {
		return RestorePlan{}, err
	}
	fs, err := preflight(ctx, t, p, Need{Restore: &dest})
	if err != nil {
		return RestorePlan{}, err
	}
	if err := refuse(fs); err != nil {
		return RestorePlan{}, err
	}
	plan := RestorePlan{Target: name, Provider: t.Spec.Provider, Dest: dest, Replaces: replaces}
	if ref == "" || ref == "latest" {
		if plan.Snapshot, plan.fromCatalog, err = m.latestFromCatalog(ctx, t); err != nil {
			return RestorePlan{}, err
		}
	}
	if !plan.fromCatalog {
		if plan.Snapshot, err = m.Resolve(ctx, t, p, ref); err != nil {
			return RestorePlan{}, err
		}
	}
	return plan, nil
}

// latestFromCatalog returns the target's newest snapshot as the catalog
// records it, without opening the repository: the snapshot of the
// target's newest finished backup run (whatever its result: a run that
// failed only to restart a service made one), with its time, bytes and
// files. Its Paths and Tags are left empty (the catalog does not keep
// them). ok is false, and the caller lists the repository, when the
// catalog cannot say: it has no Lookup, no finished backup run of the
// target, or the newest made no snapshot (a failed backup, or one killed
// before it was recorded, which may still have left one), was recorded
// before the catalog kept snapshot times, or went to another repository
// or provider than the target's now.
//
// It is the repository's latest because every snapshot of a target is
// made by a recorded backup run, one at a time under the target's lock,
// and retention never forgets a target's newest snapshot (restic's keep
// rules all keep the newest). A snapshot forgotten by hand is the one
// case it misses: Restore then lists and retries.
func (m *Manager) latestFromCatalog(ctx context.Context, t Target) (Snapshot, bool, error) {
	lk, ok := m.Catalog.(catalog.Lookup)
	if !ok {
		return Snapshot{}, false, nil
	}
	r, found, err := lk.LastRun(ctx, t.Name(), catalog.KindBackup,
		catalog.ResultOK, catalog.ResultPartial, catalog.ResultFailed, catalog.ResultInterrupted)
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("target %s: newest backup: %w", t.Name(), err)
	}
	if !found || r.SnapshotID == "" || r.SnapshotTime.IsZero() ||
		r.Repository != t.Spec.Repository || r.Provider != t.Spec.Provider {
		return Snapshot{}, false, nil
	}
	snap := Snapshot{ID: r.SnapshotID, ShortID: r.SnapshotID, Time: r.SnapshotTime, Target: t.Name(),
		RunID: r.RunID, Bytes: r.Bytes, Files: r.Files}
	if len(snap.ShortID) > 8 {
		snap.ShortID = snap.ShortID[:8]
	}
	return snap, true, nil
}

// checkDestination checks dest against the target's kind; for an in-place
// restore it returns what would be replaced.
func checkDestination(spec *lab.Backup, dest Destination) ([]string, error) {
	name := spec.Name
	if dest.InPlace {
		if dest.Path != "" || dest.Database != "" || dest.Bucket != "" {
			return nil, fmt.Errorf("target %s: an in-place restore goes back to the target's source: --to, --database and --to-bucket are not for it", name)
		}
	}
	if spec.Provider != lab.ProviderS3Mirror && (dest.Bucket != "" || dest.Delete) {
		return nil, fmt.Errorf("target %s: --to-bucket and --delete are for s3-mirror targets", name)
	}
	if spec.Provider != lab.ProviderPgBackRest && (dest.Recovery != (Recovery{}) || dest.Port != 0) {
		return nil, fmt.Errorf("target %s: --time, --lsn, --xid, --name, --immediate and --port are for pgbackrest targets", name)
	}
	switch spec.Provider {
	case lab.ProviderS3Mirror:
		if dest.Path != "" || dest.Database != "" || dest.Replace {
			return nil, fmt.Errorf("target %s is a bucket: restore needs --to-bucket BUCKET (--to, --database and --replace are for other targets)", name)
		}
		src := spec.Source.S3Location
		if dest.InPlace || dest.Bucket == src.Bucket {
			// Over the source: the caller confirms.
			return []string{fmt.Sprintf("bucket %s on %s (prefix %q)", src.Bucket, src.Endpoint, src.Prefix)}, nil
		}
		if dest.Bucket == "" {
			return nil, fmt.Errorf("target %s is a bucket: restore needs --to-bucket BUCKET", name)
		}
	case lab.ProviderPgBackRest:
		if dest.InPlace || dest.Database != "" || dest.Replace || dest.Path == "" {
			return nil, fmt.Errorf("target %s is a PostgreSQL cluster: restore it into a new data directory with --to DIR (--in-place, --database and --replace are not for it)", name)
		}
	case lab.ProviderPostgres:
		if dest.InPlace {
			if spec.Source.Database == "" {
				return nil, fmt.Errorf("target %s has no source database to restore in place", name)
			}
			return []string{spec.Source.Database}, nil
		}
		if dest.Database == "" {
			return nil, fmt.Errorf("target %s is a database: restore needs --database NAME", name)
		}
		if dest.Path != "" {
			return nil, fmt.Errorf("target %s is a database: --to is for file targets", name)
		}
	default:
		if dest.Database != "" || dest.Replace {
			return nil, fmt.Errorf("target %s holds files: --database and --replace are for database targets", name)
		}
		if dest.InPlace {
			if len(spec.Source.Paths) == 0 {
				return nil, fmt.Errorf("target %s has no source paths to restore in place", name)
			}
			for _, p := range spec.Source.Paths {
				if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
					return nil, fmt.Errorf("target %s: source path %q cannot be restored in place: it must be absolute and not /", name, p)
				}
			}
			return slices.Clone(spec.Source.Paths), nil
		}
		if dest.Path == "" {
			return nil, fmt.Errorf("target %s holds files: restore needs --to PATH", name)
		}
	}
	return nil, nil
}

// Restore carries out a restore plan and records it. The returned run's
// SnapshotID is the snapshot restored: the plan's, except when the plan
// took "latest" from the catalog and the repository no longer has it
// (restic.ErrSnapshotNotFound): then the latest the repository lists is
// restored instead (once; a warning event says so).
func (m *Manager) Restore(ctx context.Context, plan RestorePlan) (catalog.Run, error) {
	t, p, err := m.Target(ctx, plan.Target)
	if err != nil {
		return catalog.Run{}, err
	}
	release, err := m.lockTarget(ctx, plan.Target)
	if err != nil {
		return catalog.Run{}, err
	}
	defer release()
	runID := NewRunID(m.now())
	ctx = execx.WithMark(ctx, RunEnv+"="+runID)
	run := catalog.Run{RunID: runID, Kind: catalog.KindRestore, Target: plan.Target, Provider: t.Spec.Provider, Repository: t.Spec.Repository, SnapshotID: plan.Snapshot.ID, Start: m.now().UTC()}
	if run, err = m.Catalog.StartRun(ctx, run); err != nil {
		return run, fmt.Errorf("record run: %w", err)
	}
	snap := plan.Snapshot
	err = p.Restore(ctx, t, snap, plan.Dest, m.progressFor(plan.Target))
	if err != nil && plan.fromCatalog && errors.Is(err, restic.ErrSnapshotNotFound) && ctx.Err() == nil {
		// The catalog's latest is gone from the repository (forgotten by
		// hand, or the repository was replaced): restore the latest the
		// repository lists, once.
		m.log().Warn("the catalog's latest snapshot is not in the repository: restoring the latest it lists",
			"target", plan.Target, "snapshot", snap.ShortID, "err", err)
		if latest, lerr := m.Resolve(ctx, t, p, "latest"); lerr != nil {
			err = errors.Join(err, lerr)
		} else if latest.ID != snap.ID {
			m.event(ctx, "warn", plan.Target, "restore_snapshot_gone", fmt.Sprintf(
				"latest snapshot %s (from the catalog) is not in repository %s: restored %s, the latest there", snap.ShortID, t.Spec.Repository, latest.ShortID))
			snap = latest
			run.SnapshotID = snap.ID
			err = p.Restore(ctx, t, snap, plan.Dest, m.progressFor(plan.Target))
		}
	}
	run.End, run.Result = m.now().UTC(), resultOf(ctx, err)
	run.Bytes, run.Files = snap.Bytes, snap.Files
	if err != nil {
		run.Error = err.Error()
		m.event(ctx, "error", plan.Target, "restore_failed", err.Error())
	}
	if rerr := m.record(ctx, run); rerr != nil {
		err = errors.Join(err, fmt.Errorf("record run: %w", rerr))
	}
	return run, err
}

// DrillOutcome is one restore drill.
type DrillOutcome struct {
	Drill  catalog.Drill `json:"drill"`
	Report DrillReport   `json:"report"`
	Err    error         `json:"-"`
}

// Verify runs the restore drill of a target on its newest snapshot and
// records it: result, measured RTO and check output. A drill that failed
// returns an error matching ErrDrillFailed (checks failed) or the restore
// error. The privileges the drill needs are checked first
// (Preflighter): a drill refused for them is recorded as failed with the
// *PreflightError, and nothing is restored.
func (m *Manager) Verify(ctx context.Context, name string) DrillOutcome {
	out := DrillOutcome{Drill: catalog.Drill{Target: name, Start: m.now().UTC(), Result: catalog.ResultFailed}}
	t, p, err := m.Target(ctx, name)
	if err != nil {
		out.Err, out.Drill.Error = err, err.Error()
		return out
	}
	release, err := m.lockTarget(ctx, name)
	if err != nil {
		out.Err, out.Drill.Error = err, err.Error()
		return out
	}
	defer release()
	d := catalog.Drill{RunID: NewRunID(m.now()), Target: name, Start: m.now().UTC()}
	ctx = execx.WithMark(ctx, RunEnv+"="+d.RunID)
	snap, err := m.Resolve(ctx, t, p, "latest")
	if err == nil {
		d.SnapshotID = snap.ID
		var fs []Finding
		if fs, err = preflight(ctx, t, p, Need{Drill: true}); err == nil {
			err = refuse(fs)
		}
	}
	if err == nil {
		// Recorded as running from the start, so a drill killed with its
		// homelab is found (Reconcile) and recorded as interrupted.
		started := d
		started.Result = catalog.ResultRunning
		if rec, rerr := m.Catalog.RecordDrill(ctx, started); rerr == nil {
			d.ID = rec.ID
		}
		dctx, cancel := context.WithTimeout(ctx, t.Spec.Drill.Timeout)
		out.Report, err = p.Drill(dctx, t, snap, d.RunID)
		cancel()
		if err == nil {
			if failed := out.Report.Failed(); len(failed) > 0 {
				err = fmt.Errorf("%w: %s: check %q: %s", ErrDrillFailed, name, failed[0].Check, failed[0].Detail)
			}
		} else {
			err = fmt.Errorf("%w: %s: %w", ErrDrillFailed, name, err)
		}
	}
	for _, left := range out.Report.Leftovers {
		m.event(ctx, "error", name, "drill_leftover", "left by a killed drill and could not be removed: "+left)
	}
	d.End, d.RTO, d.Output = m.now().UTC(), out.Report.RTO, out.Report.Output()
	d.Result = resultOf(ctx, err)
	if err != nil {
		d.Error = err.Error()
		m.event(ctx, "error", name, "drill_failed", err.Error())
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rec, rerr := d, error(nil)
	if d.ID != 0 {
		rerr = m.Catalog.FinishDrill(rctx, d)
		rec.Start, rec.End = d.Start.UTC(), d.End.UTC()
	} else {
		rec, rerr = m.Catalog.RecordDrill(rctx, d)
	}
	if rerr != nil {
		err = errors.Join(err, fmt.Errorf("record drill: %w", rerr))
		rec = d
	}
	out.Drill, out.Err = rec, err
	return out
}

// PlanPrune computes the target's retention plan, protecting the newest
// snapshot that passed a restore drill, the snapshots that unfinished
// sagas need (an upgrade's restore points: saga.PinnedSnapshots) and the
// members of lab snapshots that are complete or being created
// (catalog.HeldMembers; the plan's HeldBy names them).
func (m *Manager) PlanPrune(ctx context.Context, name string) (PrunePlan, error) {
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return PrunePlan{}, err
	}
	return m.planPrune(ctx, t, p)
}

func (m *Manager) planPrune(ctx context.Context, t Target, p Provider) (PrunePlan, error) {
	drilled, err := m.Catalog.Drills(ctx, catalog.DrillFilter{Target: t.Name(), Result: catalog.ResultOK})
	if err != nil {
		return PrunePlan{}, err
	}
	var protect []string
	if len(drilled) > 0 {
		// The newest snapshot that passed a drill (by snapshot time, not
		// drill time), among those still in the repository.
		snaps, err := p.List(ctx, t)
		if err != nil {
			return PrunePlan{}, err
		}
		ok := map[string]bool{}
		for _, d := range drilled {
			ok[d.SnapshotID] = true
		}
		for i := len(snaps) - 1; i >= 0; i-- {
			if ok[snaps[i].ID] {
				protect = []string{snaps[i].ID}
				break
			}
		}
	}
	// The restore points of unfinished upgrades: a rollback or a restore
	// by hand needs them.
	if j, ok := m.Catalog.(catalog.Journal); ok {
		open, err := saga.Unfinished(ctx, j)
		if err != nil {
			return PrunePlan{}, err
		}
		for _, id := range saga.PinnedSnapshots(open, t.Name()) {
			if !slices.Contains(protect, id) {
				protect = append(protect, id)
			}
		}
	}
	// The members of lab snapshots that hold theirs (complete, or being
	// created): a snapshot restore needs every one.
	var held map[string][]string
	if ls, ok := m.Catalog.(catalog.LabSnapshots); ok {
		all, err := ls.LabSnapshotList(ctx, 0)
		if err != nil {
			return PrunePlan{}, err
		}
		held = catalog.HeldMembers(all, t.Name())
		for id := range held {
			if !slices.Contains(protect, id) {
				protect = append(protect, id)
			}
		}
	}
	plan, err := p.PlanPrune(ctx, t, protect)
	if err != nil || len(held) == 0 {
		return plan, err
	}
	for _, s := range slices.Concat(plan.Keep, plan.Protected) {
		if names, ok := held[s.ID]; ok {
			if plan.HeldBy == nil {
				plan.HeldBy = map[string][]string{}
			}
			plan.HeldBy[s.ID] = names
		}
	}
	return plan, nil
}

// Prune applies the target's retention (or only plans it when dryRun) and
// records the run.
func (m *Manager) Prune(ctx context.Context, name string, dryRun bool) (PrunePlan, error) {
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return PrunePlan{}, err
	}
	release, err := m.lockTarget(ctx, name)
	if err != nil {
		return PrunePlan{}, err
	}
	defer release()
	plan, err := m.planPrune(ctx, t, p)
	if err != nil || dryRun {
		return plan, err
	}
	runID := NewRunID(m.now())
	ctx = execx.WithMark(ctx, RunEnv+"="+runID)
	run := catalog.Run{RunID: runID, Kind: catalog.KindPrune, Target: name, Provider: t.Spec.Provider, Repository: t.Spec.Repository, Start: m.now().UTC()}
	if run, err = m.Catalog.StartRun(ctx, run); err != nil {
		return plan, fmt.Errorf("record run: %w", err)
	}
	err = p.Prune(ctx, t, plan)
	run.End, run.Result, run.Files = m.now().UTC(), resultOf(ctx, err), int64(len(plan.Remove))
	if err != nil {
		run.Error = err.Error()
		m.event(ctx, "error", name, "prune_failed", err.Error())
	} else if len(plan.Remove) > 0 {
		m.event(ctx, "info", name, "pruned", fmt.Sprintf("removed %d snapshots, kept %d", len(plan.Remove), len(plan.Keep)+len(plan.Protected)))
	}
	if rerr := m.record(ctx, run); rerr != nil {
		err = errors.Join(err, fmt.Errorf("record run: %w", rerr))
	}
	return plan, err
}

// CheckReport is the outcome of a repository check.
type CheckReport struct {
	Repository string              `json:"repository"`
	Run        catalog.Run         `json:"run"`
	Summary    restic.CheckSummary `json:"summary"`
	Err        error               `json:"-"`
}

// Check verifies a repository's integrity (restic check, reading
// readDataSubset of the pack data) and records the run.
func (m *Manager) Check(ctx context.Context, repoName, readDataSubset string) CheckReport {
	rep := CheckReport{Repository: repoName}
	runID := NewRunID(m.now())
	ctx = execx.WithMark(ctx, RunEnv+"="+runID)
	run := catalog.Run{RunID: runID, Kind: catalog.KindCheck, Target: repoName, Repository: repoName, Start: m.now().UTC()}
	c, err := m.Repo(ctx, repoName)
	if err != nil {
		rep.Err = err
		return rep
	}
	rep.Run, rep.Err = m.recordCheck(ctx, run, func(ctx context.Context) (err error) {
		rep.Summary, err = c.Check(ctx, readDataSubset)
		return err
	})
	return rep
}

// recordCheck runs check as run under the repository's check lock and
// records it (a failure also as a check_failed event).
func (m *Manager) recordCheck(ctx context.Context, run catalog.Run, check func(context.Context) error) (catalog.Run, error) {
	// The lock marks the run as alive for Reconcile (restic's own
	// exclusive lock already keeps two checks of a repository apart).
	release, err := m.lockTarget(ctx, CheckLockName(run.Repository))
	if err != nil {
		return run, err
	}
	defer release()
	if run, err = m.Catalog.StartRun(ctx, run); err != nil {
		return run, fmt.Errorf("record run: %w", err)
	}
	err = check(ctx)
	run.End, run.Result = m.now().UTC(), resultOf(ctx, err)
	if err != nil {
		run.Error = err.Error()
		m.event(ctx, "error", run.Repository, "check_failed", err.Error())
	}
	if rerr := m.record(ctx, run); rerr != nil {
		err = errors.Join(err, fmt.Errorf("record run: %w", rerr))
	}
	return run, err
}
