package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/template"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/execx"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/logs"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/status"
	"homelab/internal/version"
)

// Step names, per version V on the path.
func restorePointStep(v string) string { return "restore point before " + v }
func setVersionStep(v string) string   { return "set version " + v }
func waitHealthyStep(v string) string  { return "wait healthy at " + v }
func postStepStep(v string) string     { return "post-step at " + v }

// snapshotKey is the journal key of a target's restore point: prune
// keeps it while the upgrade is unfinished (saga.PinnedSnapshots).
func snapshotKey(target string) string { return saga.SnapshotKey(target) }

// Run runs the plan as a saga on the service (package doc). It returns
// the journalled record; a failed upgrade returns a *saga.Error whose
// State says whether the service is back on plan.From (compensated),
// unchanged (failed: the first restore point failed) or needs attention.
// An unfinished upgrade of the same service, or an unfinished saga that
// covers it (a lab snapshot create or restore, saga.Saga.Covers), refuses
// with saga.ErrUnfinished naming it and its --resume; a plan with Preflight findings is refused with a
// *PreflightError before a saga begins.
func (u *Upgrader) Run(ctx context.Context, p Plan) (saga.Record, error) {
	if len(p.Preflight) > 0 {
		return saga.Record{}, &PreflightError{Service: p.Service, Findings: p.Preflight}
	}
	steps, err := u.steps(p)
	if err != nil {
		return saga.Record{}, err
	}
	defer u.upgrading(p.Service)()
	rec, err := u.runner().Run(ctx, saga.Saga{Kind: Kind, Subject: p.Service, Params: p, Steps: steps})
	u.record(ctx, rec, err)
	return rec, err
}

// VersionChanged reports whether an upgrade saga began to change the
// service's version (a "set version" step journalled the previous one):
// if not, a failed upgrade left the version and the data as they were.
func VersionChanged(rec saga.Record) bool {
	for _, st := range rec.Steps {
		if st.Phase == catalog.PhaseForward && (strings.HasPrefix(st.Name, setVersionStep("")) || strings.HasPrefix(st.Name, pgSwitchStep(""))) {
			if _, ok := st.Data[previousKey]; ok {
				return true
			}
		}
	}
	return false
}

// upgrading tells the backup manager that this process holds service's
// upgrade lock (the saga's), so that the restore points' backups may stop
// it; the returned func undoes that.
func (u *Upgrader) upgrading(service string) func() {
	before := u.Backups.Upgrading
	u.Backups.Upgrading = append(slices.Clone(before), service)
	return func() { u.Backups.Upgrading = before }
}

// record adds a catalog event for an upgrade that did not end done, for
// the status page's recent failures and notifications.
func (u *Upgrader) record(ctx context.Context, rec saga.Record, err error) {
	var se *saga.Error
	if err == nil || !errors.As(err, &se) {
		return
	}
	level := "error"
	if rec.State != saga.NeedsAttention && !VersionChanged(rec) {
		level = "warn" // the version and the data are as they were
	}
	msg := err.Error()
	if p, perr := PlanOf(rec); perr == nil && rec.Error != "" {
		msg = fmt.Sprintf("%s to %s: %s", p.From, p.To, rec.Error)
	}
	u.event(ctx, level, rec, msg)
}

// event records an event upgrade_<state> about rec's service in the
// catalog, also after ctx was cancelled; a failure is only logged.
func (u *Upgrader) event(ctx context.Context, level string, rec saga.Record, msg string) {
	ev := catalog.Event{Time: u.now().UTC(), Level: level, Target: rec.Subject, Kind: "upgrade_" + string(rec.State), Message: msg}
	if aerr := u.Backups.Catalog.AddEvent(context.WithoutCancel(ctx), ev); aerr != nil && u.Log != nil {
		u.Log.Warn("record event", "err", aerr)
	}
}

// oneLine is an error whose text is on one line (a tool's multi-line
// output joined with " | "), for the journal, events and warnings.
type oneLine struct{ err error }

func (e oneLine) Error() string {
	lines := strings.Split(strings.TrimSpace(e.err.Error()), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), " | ")
}

func (e oneLine) Unwrap() error { return e.err }

// flat makes f's errors one line.
func flat(f func(context.Context, *saga.StepContext) error) func(context.Context, *saga.StepContext) error {
	return func(ctx context.Context, sc *saga.StepContext) error {
		if err := f(ctx, sc); err != nil {
			return oneLine{err}
		}
		return nil
	}
}

// SagaEnv is the environment variable, set to the saga's ID, that the
// commands that change a version get (set_version, forward and in a
// rollback, and post_step), and their children with it. Start commands
// do not: the service they leave running is meant to outlive homelab.
const SagaEnv = "HOMELAB_SAGA"

// marked is ctx with SagaEnv set for the commands run under it.
func marked(ctx context.Context, sc *saga.StepContext) context.Context {
	return execx.WithMark(ctx, SagaEnv+"="+sc.SagaID())
}

// lingering fails when processes started by saga id's steps still run:
// when homelab is killed, the command it was running (a set_version's
// apt-get, a post-step's migration) goes on in its own process group,
// and resuming under it (restoring the data, setting the version back)
// would race it. The error names them; wait for them to end, or stop
// them, then resume.
func lingering(id string) error {
	procs, err := execx.Marked(SagaEnv + "=" + id)
	if err != nil || len(procs) == 0 {
		return err
	}
	var list []string
	for _, p := range procs {
		list = append(list, fmt.Sprintf("pid %d (%s)", p.PID, p.Cmd))
	}
	return fmt.Errorf("commands of the interrupted upgrade (saga %s) still run: %s; wait for them to end, or stop them, then resume", id, strings.Join(list, ", "))
}

// Resume finishes the unfinished upgrade with saga ID id (see
// saga.Runner.Resume): with saga.Compensate (the default) the service is
// brought back to the version it ran before, with its data; with
// saga.Forward the remaining steps run, where the journal shows that is
// safe.
func (u *Upgrader) Resume(ctx context.Context, id string, mode saga.Mode) (saga.Record, error) {
	rec, err := u.Journal.Saga(ctx, id)
	if err != nil {
		return saga.Record{}, err
	}
	if rec.Kind != Kind {
		return rec, fmt.Errorf("saga %s is a %s, not an upgrade", id, rec.Kind)
	}
	p, err := PlanOf(rec)
	if err != nil {
		return rec, err
	}
	steps, err := u.steps(p)
	if err != nil {
		return rec, err
	}
	if live, _ := saga.InProgress(u.Lab.StateDir, rec); !live && !rec.State.Final() {
		if err := lingering(id); err != nil {
			return rec, err
		}
	}
	defer u.upgrading(p.Service)()
	rec, err = u.runner().Resume(ctx, id, steps, mode)
	u.record(ctx, rec, err)
	return rec, err
}

// Resolve closes the unfinished upgrade saga id that the operator has put
// right by hand (saga.Runner.Resolve): nothing is run, restored or set.
// An event upgrade_resolved records it.
func (u *Upgrader) Resolve(ctx context.Context, id string) (saga.Record, error) {
	rec, err := u.Journal.Saga(ctx, id)
	if err != nil {
		return saga.Record{}, err
	}
	if rec.Kind != Kind {
		return rec, fmt.Errorf("saga %s is a %s, not an upgrade", id, rec.Kind)
	}
	if rec.State.Final() {
		return rec, nil
	}
	rec, err = u.runner().Resolve(ctx, id)
	if err != nil {
		return rec, err
	}
	u.event(ctx, "info", rec, rec.Error)
	return rec, nil
}

// PlanOf decodes the plan journalled with an upgrade saga.
func PlanOf(rec saga.Record) (Plan, error) {
	var p Plan
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return p, fmt.Errorf("saga %s: read its plan: %w", rec.ID, err)
	}
	return p, nil
}

func (u *Upgrader) runner() *saga.Runner {
	return &saga.Runner{
		Journal: u.Journal, StateDir: u.Lab.StateDir, Wait: u.Wait, UndoTimeout: u.UndoTimeout,
		Now: u.Now, Log: u.Log, Progress: u.Progress,
	}
}

// steps builds the saga of p: per version on the path, a restore point,
// the version change, the health gate and the post-step.
func (u *Upgrader) steps(p Plan) ([]saga.Step, error) {
	s := u.Lab.Services[p.Service]
	if s == nil {
		return nil, fmt.Errorf("service %s is no longer in %s", p.Service, u.Lab.Path)
	}
	rt, ver, err := u.runtimeOf(s)
	if err != nil {
		return nil, err
	}
	if len(p.Path) == 0 {
		return nil, errors.New("empty upgrade path")
	}
	if p.Postgres != nil {
		return u.pgSteps(p, s, rt, ver)
	}
	var steps []saga.Step
	for i, v := range p.Path {
		prev := p.From
		if i > 0 {
			prev = p.Path[i-1]
		}
		point := restorePointStep(v)
		steps = append(steps,
			saga.Step{Name: point,
				Do: func(ctx context.Context, sc *saga.StepContext) error {
					return u.restorePoint(ctx, sc, s, rt, ver, p, v)
				},
				Undo: func(ctx context.Context, sc *saga.StepContext) error {
					return u.restartAfterRestorePoint(ctx, sc, s, rt, p, point, v)
				}},
			saga.Step{Name: setVersionStep(v),
				Do: func(ctx context.Context, sc *saga.StepContext) error {
					return u.setVersion(ctx, sc, s, rt, ver, prev, v)
				},
				Undo: func(ctx context.Context, sc *saga.StepContext) error {
					return u.rollBack(ctx, sc, s, rt, ver, p, point, prev, v)
				}},
			saga.Step{Name: waitHealthyStep(v), Retryable: true, Do: func(ctx context.Context, sc *saga.StepContext) error {
				return u.WaitHealthy(ctx, s, rt, p.HealthyWithin)
			}},
		)
		if p.PostStep != "" {
			steps = append(steps, saga.Step{Name: postStepStep(v), Do: func(ctx context.Context, sc *saga.StepContext) error {
				return u.postStep(marked(ctx, sc), p, prev, v)
			}})
		}
	}
	for i := range steps {
		steps[i].Do = flat(steps[i].Do)
		if steps[i].Undo != nil {
			steps[i].Undo = flat(steps[i].Undo)
		}
	}
	return steps, nil
}

// stoppedKey is journalled by "restore point before V" before it stops
// the service: its Undo starts it again.
const stoppedKey = "stopped"

// othersKey is journalled by "restore point before V": the other services
// of the backup_before targets' stop lists that were running, which a
// rollback stops while it restores their data and starts again after.
const othersKey = "others_running"

// runningOthers returns the services other than s named by the stop
// lists of p's BackupBefore targets that are running now, in stop-list
// order.
func (u *Upgrader) runningOthers(ctx context.Context, s *lab.Service, p Plan) ([]string, error) {
	var out []string
	for _, t := range p.BackupBefore {
		spec := u.Lab.Backups[t]
		if spec == nil {
			continue
		}
		for _, name := range spec.Stop {
			svc := u.Lab.Services[name]
			if name == s.Name || svc == nil || slices.Contains(out, name) {
				continue
			}
			rt, err := u.ServiceRuntime(svc)
			if err != nil {
				return nil, err
			}
			st, err := rt.Status(ctx)
			if err != nil {
				return nil, fmt.Errorf("service %s (in the stop list of %s): %w", name, t, err)
			}
			if st.State != runtime.Stopped {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

// others returns the names and runtimes of the services journalled under
// othersKey by the restore point step point, holding their upgrade locks
// (holdOthers) until release is called.
func (u *Upgrader) others(ctx context.Context, sc *saga.StepContext, point string) (names []string, rts []runtime.Runtime, release func(), err error) {
	list, _ := sc.Get(point, othersKey)
	if list == "" {
		return nil, nil, func() {}, nil
	}
	names = strings.Split(list, ",")
	for _, name := range names {
		svc := u.Lab.Services[name]
		if svc == nil {
			return nil, nil, nil, fmt.Errorf("service %s (stopped for the rollback) is no longer in %s", name, u.Lab.Path)
		}
		rt, err := u.ServiceRuntime(svc)
		if err != nil {
			return nil, nil, nil, err
		}
		rts = append(rts, rt)
	}
	if release, err = u.holdOthers(ctx, names); err != nil {
		return nil, nil, nil, err
	}
	return names, rts, release, nil
}

// restorePoint makes version v ready where the runtime can (a compose
// image pulled: runtime.Preparer) and checks the repositories' free space
// and the privileges the rollback's restores need while the service still
// runs; then stops the service, so that the
// restore point holds its last write and nothing is written after it, and
// backs up every BackupBefore target, journalling each snapshot ID. The
// service stays stopped for "set version V".
func (u *Upgrader) restorePoint(ctx context.Context, sc *saga.StepContext, s *lab.Service, rt runtime.Runtime, ver runtime.Versioner, p Plan, v string) error {
	if pr, ok := ver.(runtime.Preparer); ok {
		u.note("making %s ready (the image pulled, if it is not here)", v)
		if err := pr.Prepare(ctx, v); err != nil {
			return err
		}
	}
	for _, name := range p.BackupBefore {
		warning, err := u.checkSpace(ctx, name)
		if err != nil {
			return err
		}
		if warning != "" {
			// Said, and kept in the journal (upgrade history), not passed
			// over in silence.
			u.note("warning: %s", warning)
			if err := sc.Set(spaceKey(name), "not measured (remote repository)"); err != nil {
				return err
			}
		}
	}
	// Checked again while the service still runs: the roles may have
	// changed since the plan, and a later stop restores the same way.
	fs, err := u.preflight(ctx, p)
	if err != nil {
		return err
	}
	if len(fs) > 0 {
		return &PreflightError{Service: p.Service, Findings: fs}
	}
	others, err := u.runningOthers(ctx, s, p)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		if err := sc.Set(othersKey, strings.Join(others, ",")); err != nil {
			return err
		}
	}
	st, err := rt.Status(ctx)
	if err != nil {
		return err
	}
	if st.State != runtime.Stopped {
		if err := sc.Set(stoppedKey, "true"); err != nil {
			return err
		}
		u.note("stopping %s: the restore point is taken with nothing writing", s.Name)
		if err := rt.Stop(ctx); err != nil {
			return err
		}
	}
	return u.backUp(ctx, sc, p.BackupBefore)
}

// backUp backs up each target, journalling its snapshot ID
// (snapshotKey): the restore point.
func (u *Upgrader) backUp(ctx context.Context, sc *saga.StepContext, targets []string) error {
	for _, name := range targets {
		u.note("backing up %s", name)
		id, err := u.Backups.Backup(ctx, name).Whole()
		if err != nil {
			return fmt.Errorf("restore point %s: %w", name, err)
		}
		if err := sc.Set(snapshotKey(name), id); err != nil {
			return err
		}
		u.note("restore point %s: snapshot %s", name, short(id))
	}
	return nil
}

// restartAfterRestorePoint is the compensation of "restore point before
// V": the service it stopped runs again, healthy, and so do the other
// services of the stop lists that were running before it (othersKey: a
// backup killed with homelab leaves the ones it stopped down), unless
// "set version V" began, whose own compensation leaves the services as
// they should be.
func (u *Upgrader) restartAfterRestorePoint(ctx context.Context, sc *saga.StepContext, s *lab.Service, rt runtime.Runtime, p Plan, point, v string) error {
	if _, changed := sc.Get(setVersionStep(v), previousKey); changed {
		return nil
	}
	if stopped, _ := sc.Get(point, stoppedKey); stopped == "true" {
		u.note("starting %s again", s.Name)
		if err := rt.Start(ctx); err != nil {
			return err
		}
		if err := u.WaitHealthy(ctx, s, rt, p.HealthyWithin); err != nil {
			return err
		}
	}
	names, others, release, err := u.others(ctx, sc, point)
	if err != nil {
		return err
	}
	defer release()
	return u.startOthers(ctx, names, others)
}

// startOthers starts the other services of the stop lists again, in
// reverse stop order (Start of a running service does nothing).
func (u *Upgrader) startOthers(ctx context.Context, names []string, others []runtime.Runtime) error {
	var errs []error
	for i := len(others) - 1; i >= 0; i-- {
		u.note("starting %s again", names[i])
		if err := others[i].Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("start %s again: %w", names[i], err))
		}
	}
	return errors.Join(errs...)
}

// holdOthers takes the upgrade locks (saga.LockName) of the other
// services names (lock.AcquireAll, never waiting), for the time a
// rollback stops and starts them: as a backup does, a rollback must not
// stop or start a service under another upgrade's health gate or
// rollback. The error names the service being upgraded; the returned
// func releases them all.
func (u *Upgrader) holdOthers(ctx context.Context, names []string) (func(), error) {
	locks := make([]string, len(names))
	service := make(map[string]string, len(names))
	for i, name := range names {
		locks[i] = saga.LockName(name)
		service[locks[i]] = name
	}
	release, err := lock.AcquireAll(ctx, u.Lab.StateDir, locks, false)
	if err != nil {
		who := strings.Join(names, ", ")
		if be := (*lock.BusyError)(nil); errors.As(err, &be) {
			who = service[be.Name]
		}
		return nil, fmt.Errorf("%s (in the stop list) is being upgraded, so this rollback does not stop or start it; resume this one after that upgrade ends: %w", who, err)
	}
	return func() { release() }, nil
}

// spaceKey is the journal key of "restore point before V" saying that a
// target's repository is remote and its free space was not measured.
func spaceKey(target string) string { return "free_space:" + target }

// checkSpace fails when the target's repository is a local directory with
// less free space than the target's last successful backup added to it.
// A remote repository (s3:, sftp:, rest:, ...) cannot be measured: it
// passes with a warning that says so (remoteSpaceWarning).
func (u *Upgrader) checkSpace(ctx context.Context, target string) (warning string, err error) {
	t := u.Lab.Backups[target]
	if t == nil {
		return "", fmt.Errorf("unknown backup target %q", target)
	}
	if t.Provider == lab.ProviderS3Mirror {
		d := t.Destination
		return fmt.Sprintf("restore point %s: its destination bucket %s on %s is remote: its free space cannot be measured; make sure it has room for a copy of bucket %s",
			target, d.Bucket, d.Endpoint, t.Source.Bucket), nil
	}
	repo := u.Lab.Repositories[t.Repository]
	if repo == nil {
		return "", fmt.Errorf("backup target %s: unknown repository %q", target, t.Repository)
	}
	runs, err := u.Backups.Catalog.Runs(ctx, catalog.RunFilter{Target: target, Kind: catalog.KindBackup, Result: catalog.ResultOK, Limit: 1})
	if err != nil {
		return "", err
	}
	var need int64 = -1
	if len(runs) > 0 {
		need = runs[0].BytesAdded
	}
	dir, local := localPath(repo.URL)
	if !local {
		return remoteSpaceWarning(target, repo, need), nil
	}
	if need < 0 {
		return "", nil
	}
	free, err := u.freeSpace(existingParent(dir))
	if err != nil {
		return "", fmt.Errorf("restore point %s: free space of %s: %w", target, dir, err)
	}
	if free < need {
		return "", fmt.Errorf("restore point %s: repository %s (%s) has %s free, less than the %s its last backup added: free space first",
			target, t.Repository, dir, status.IEC(free), status.IEC(need))
	}
	return "", nil
}

// remoteSpaceWarning says that the free space of target's remote
// repository cannot be measured, and what to make sure of instead; need
// is what its last backup added (-1: none yet).
func remoteSpaceWarning(target string, repo *lab.Repository, need int64) string {
	room := "room for the restore point"
	if need >= 0 {
		room = fmt.Sprintf("room for the restore point (the last backup of %s added %s)", target, status.IEC(need))
	}
	return fmt.Sprintf("restore point %s: repository %s (%s) is remote: its free space cannot be measured; make sure it has %s",
		target, repo.Name, repo.URL, room)
}

// spaceWarnings are the warnings of checkSpace for p's restore points,
// for the plan (what --dry-run shows); the ones whose repository is local
// are measured when the restore point is taken.
func (u *Upgrader) spaceWarnings(ctx context.Context, p Plan) ([]string, error) {
	var out []string
	for _, t := range p.BackupBefore {
		b := u.Lab.Backups[t]
		if b == nil {
			continue
		}
		if repo := u.Lab.Repositories[b.Repository]; repo != nil {
			if _, local := localPath(repo.URL); local {
				continue
			}
		}
		w, err := u.checkSpace(ctx, t)
		if err != nil {
			return nil, err
		}
		if w != "" {
			out = append(out, w)
		}
	}
	return out, nil
}

func (u *Upgrader) freeSpace(path string) (int64, error) {
	if u.FreeSpace != nil {
		return u.FreeSpace(path)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// localPath returns the directory of a local restic repository URL (a
// path, or local:PATH).
func localPath(url string) (string, bool) {
	switch {
	case strings.HasPrefix(url, "local:"):
		return strings.TrimPrefix(url, "local:"), true
	case filepath.IsAbs(url):
		return url, true
	}
	return "", false
}

// existingParent returns path or its nearest existing parent.
func existingParent(path string) string {
	for {
		if _, err := os.Stat(path); err == nil || filepath.Dir(path) == path {
			return path
		}
		path = filepath.Dir(path)
	}
}

// stopTimeout bounds the stop of a service whose rollback failed.
const stopTimeout = 5 * time.Minute

// previousKey is journalled by "set version V" before it changes
// anything: its Undo has nothing to do without it.
const previousKey = "previous"

// setVersion checks that the service runs prev, then journals prev, stops
// the service, sets v and starts it.
func (u *Upgrader) setVersion(ctx context.Context, sc *saga.StepContext, s *lab.Service, rt runtime.Runtime, ver runtime.Versioner, prev, v string) error {
	cur, err := currentVersion(ctx, ver)
	if err != nil {
		return fmt.Errorf("read the current version: %w", err)
	}
	// A compose tag is compared as written (1.25-alpine is not
	// 1.25-bookworm); a version command's output by its version.
	if (rt.Kind() == lab.RuntimeCompose && cur.String() != prev) || version.Compare(cur, version.MustParse(prev)) != 0 {
		return fmt.Errorf("service %s runs %s, not %s as planned: someone changed it; plan again", s.Name, cur, prev)
	}
	if err := sc.Set(previousKey, prev); err != nil {
		return err
	}
	u.note("stopping %s", s.Name)
	if err := rt.Stop(ctx); err != nil {
		return err
	}
	u.note("setting %s to %s", s.Name, v)
	if err := ver.SetVersion(marked(ctx, sc), v); err != nil {
		return err
	}
	return rt.Start(ctx)
}

// rollBack is the compensation of "set version v": stop, restore the
// stop's restore points in place, set prev, and start and wait healthy (or
// leave stopped, with after_rollback: stopped). On failure the service is
// stopped (a half-restored service must not serve) and the error says so.
func (u *Upgrader) rollBack(ctx context.Context, sc *saga.StepContext, s *lab.Service, rt runtime.Runtime, ver runtime.Versioner, p Plan, point, prev, v string) error {
	if _, changed := sc.Get(setVersionStep(v), previousKey); !changed {
		return nil // the step failed before it changed anything
	}
	err := u.rollBackSteps(ctx, sc, s, rt, ver, p, point, prev)
	if err == nil {
		return nil
	}
	// The undo's own context may be what ran out (UndoTimeout).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if serr := rt.Stop(sctx); serr != nil {
		return fmt.Errorf("%w; stopping %s afterwards failed too: %v", err, s.Name, serr)
	}
	return fmt.Errorf("%w; %s is left stopped", err, s.Name)
}

func (u *Upgrader) rollBackSteps(ctx context.Context, sc *saga.StepContext, s *lab.Service, rt runtime.Runtime, ver runtime.Versioner, p Plan, point, prev string) error {
	u.note("rolling back %s to %s: stopping it", s.Name, prev)
	if err := rt.Stop(ctx); err != nil {
		return err
	}
	// The other services of the stop lists must not write while their
	// data is restored under them; they run again after (Start of a
	// running service does nothing, so a rollback run again after a crash
	// starts them too).
	names, others, release, err := u.others(ctx, sc, point)
	if err != nil {
		return err
	}
	defer release()
	for i, o := range others {
		u.note("stopping %s while its data is restored", names[i])
		if err := o.Stop(ctx); err != nil {
			return err
		}
	}
	if err := u.restoreInPlace(ctx, sc, point, p.BackupBefore); err != nil {
		return err
	}
	u.note("setting %s back to %s", s.Name, prev)
	setPrev := ver.SetVersion
	if sv, ok := ver.(runtime.StoppedVersioner); ok && p.AfterRollback == lab.AfterRollbackStopped {
		setPrev = sv.SetVersionStopped // do not start the old version at all
	}
	if err := setPrev(marked(ctx, sc), prev); err != nil {
		return err
	}
	if p.AfterRollback == lab.AfterRollbackStopped {
		u.note("leaving %s stopped (after_rollback: stopped)", s.Name)
		if len(names) > 0 {
			u.note("leaving %s stopped too: start them after %s", strings.Join(names, ", "), s.Name)
		}
		return rt.Stop(ctx)
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	if err := u.WaitHealthy(ctx, s, rt, p.HealthyWithin); err != nil {
		return err
	}
	return u.startOthers(ctx, names, others)
}

// restoreInPlace restores each target in place from the restore point
// journalled by step point.
func (u *Upgrader) restoreInPlace(ctx context.Context, sc *saga.StepContext, point string, targets []string) error {
	for _, name := range targets {
		id, ok := sc.Get(point, snapshotKey(name))
		if !ok {
			return fmt.Errorf("no restore point of %s was journalled before this step", name)
		}
		u.note("restoring %s from snapshot %s in place", name, short(id))
		plan, err := u.Backups.PlanRestore(ctx, name, id, backup.Destination{InPlace: true})
		if err == nil {
			_, err = u.Backups.Restore(ctx, plan)
		}
		if err != nil {
			return fmt.Errorf("restore %s from snapshot %s: %w", name, short(id), err)
		}
	}
	return nil
}

// gateLogLines is how many of a service's last log lines a health gate
// that saw it stop puts in its error.
const gateLogLines = 10

// gateStoppedLooks is how many looks in a row must find the service
// stopped before the gate fails at once: a supervisor between two
// restarts (supervisord's BACKOFF, runit's "down") or a daemon rewriting
// its pid file can report stopped for a moment.
const gateStoppedLooks = 3

// WaitHealthy, the health gate (also of a lab snapshot restore), polls until the service is healthy (see healthy) or within
// is over. When the runtime reports the service stopped (its process
// exited: a crash at start) on gateStoppedLooks looks in a row, the gate
// fails then, without waiting out within, with the runtime's words and
// the service's last log lines (*StoppedError).
func (u *Upgrader) WaitHealthy(ctx context.Context, s *lab.Service, rt runtime.Runtime, within time.Duration) error {
	u.note("waiting up to %s for %s to be healthy", within, s.Name)
	poll := u.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	deadline := time.Now().Add(within)
	stopped := 0
	for {
		ok, detail := u.healthy(ctx, s, rt)
		if ok {
			u.note("%s is healthy: %s", s.Name, detail)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if st, ok := detail.(stoppedDetail); ok {
			if stopped++; stopped >= gateStoppedLooks {
				return u.stoppedError(ctx, s, st)
			}
		} else {
			stopped = 0
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%s not healthy within %s: %s", s.Name, within, detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(poll, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// healthy is one look at the service: the runtime reports it running,
// not unhealthy or starting by its own health check (Docker's
// HEALTHCHECK), and its health probe, if it has one, passes. The detail
// says why not; it is a stoppedDetail when the runtime reports the
// service stopped.
func (u *Upgrader) healthy(ctx context.Context, s *lab.Service, rt runtime.Runtime) (bool, fmt.Stringer) {
	st, err := rt.Status(ctx)
	if err != nil {
		return false, textDetail(err.Error())
	}
	switch st.State {
	case runtime.Running:
	case runtime.Stopped:
		return false, stoppedDetail(st)
	default:
		return false, textDetail(stateWords(st))
	}
	if st.Health != "" && st.Health != runtime.HealthHealthy {
		return false, textDetail("Docker health check: " + st.Health)
	}
	if s.Health.Kind() == "" {
		return true, textDetail(st.Detail)
	}
	r := health.Probe(ctx, s, u.Health)
	return r.Healthy, textDetail(r.Detail)
}

// textDetail is a health gate's detail in words.
type textDetail string

func (d textDetail) String() string { return string(d) }

// stoppedDetail is the status of a service its runtime reports stopped.
type stoppedDetail runtime.Status

func (d stoppedDetail) String() string { return stateWords(runtime.Status(d)) }

// stateWords is "stopped: failed (Result: exit-code)", or only the state
// when the runtime gave no detail ("stopped", never "stopped: ").
func stateWords(st runtime.Status) string {
	if st.Detail == "" {
		return string(st.State)
	}
	return string(st.State) + ": " + st.Detail
}

// StoppedError is a health gate that saw the service stop: its process
// exited (a crash at start) before it became healthy.
type StoppedError struct {
	Service string
	// Status is the runtime's last report.
	Status runtime.Status
	// Logs are the service's last log lines (at most 10), or LogsErr says
	// why they could not be read.
	Logs    []string
	LogsErr error
}

func (e *StoppedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s stopped before it became healthy: %s", e.Service, stateWords(e.Status))
	switch {
	case e.LogsErr != nil:
		fmt.Fprintf(&b, " (its logs: %v)", e.LogsErr)
	case len(e.Logs) == 0:
		b.WriteString(" (its log is empty)")
	default:
		fmt.Fprintf(&b, "; its last %d log lines:", len(e.Logs))
		for _, l := range e.Logs {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// stoppedError builds the StoppedError of s, reading its last log lines
// (bounded by 10 seconds, so a hung log reader does not hold the
// rollback).
func (u *Upgrader) stoppedError(ctx context.Context, s *lab.Service, st stoppedDetail) error {
	e := &StoppedError{Service: s.Name, Status: runtime.Status(st)}
	src, err := logs.For(s, logs.Config{LabPath: u.Lab.Path, LookupEnv: u.Health.LookupEnv, Log: u.Log})
	if err != nil {
		e.LogsErr = err
		return e
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e.LogsErr = src.Stream(lctx, logs.Options{Tail: gateLogLines}, func(l logs.Line) error {
		e.Logs = append(e.Logs, l.Text)
		return nil
	})
	return e
}

// postStep runs the post_step template with /bin/sh -c in the lab file's
// directory through execx.Run, as backup hooks run: homelab's base
// environment (PATH, HOME, ...: no secrets) plus HOMELAB_SERVICE,
// HOMELAB_VERSION and HOMELAB_PREVIOUS, in its own process group, bounded
// by post_step_timeout; on timeout or interruption the whole group gets
// SIGINT, then SIGKILL 5s later, so no migration goes on writing under
// the rollback.
func (u *Upgrader) postStep(ctx context.Context, p Plan, prev, v string) error {
	t, err := template.New("post_step").Option("missingkey=error").Parse(p.PostStep)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Service, Version, Previous string }{p.Service, v, prev}); err != nil {
		return err
	}
	timeout := p.PostStepTimeout
	if timeout <= 0 {
		timeout = lab.DefaultPostStepTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u.note("post-step: %s", b.String())
	err = execx.Run(pctx, execx.Cmd{
		Name: "/bin/sh", Args: []string{"-c", b.String()}, Dir: filepath.Dir(u.Lab.Path),
		Env:         []string{"HOMELAB_SERVICE=" + p.Service, "HOMELAB_VERSION=" + v, "HOMELAB_PREVIOUS=" + prev},
		GracePeriod: 5 * time.Second,
	})
	if err != nil {
		if errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil { // its own timeout
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return fmt.Errorf("post-step %q: %w", b.String(), err)
	}
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// RestorePoint is one journalled restore point of an upgrade.
type RestorePoint struct {
	Before   string `json:"before"` // the version it was taken before
	Target   string `json:"target"`
	Snapshot string `json:"snapshot"`
	// Commands restore it by hand with plain restic / pg_restore.
	Commands []string `json:"commands,omitempty"`
}

// RestorePoints returns the restore points journalled by an upgrade saga,
// oldest first, each with the commands that restore it by hand
// (backup.Manager.RestoreCommands); the first restore point holds the
// data as it was before the upgrade.
func (u *Upgrader) RestorePoints(rec saga.Record) ([]RestorePoint, error) {
	p, err := PlanOf(rec)
	if err != nil {
		return nil, err
	}
	var out []RestorePoint
	var errs []error
	for _, v := range p.Path {
		for _, st := range rec.Steps {
			if st.Phase != catalog.PhaseForward || st.Name != restorePointStep(v) {
				continue
			}
			for _, t := range p.BackupBefore {
				id, ok := st.Data[snapshotKey(t)]
				if !ok {
					continue
				}
				rp := RestorePoint{Before: v, Target: t, Snapshot: id}
				rp.Commands, err = u.Backups.RestoreCommands(t, id)
				errs = append(errs, err)
				out = append(out, rp)
			}
		}
	}
	return out, errors.Join(errs...)
}
