package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/notify"
	"homelab/internal/restic"
	"homelab/internal/schedule"
	"homelab/internal/status"
)

// runJob runs one fired job with the lab generation current when it
// starts. A target or repository removed by a reload meanwhile is
// skipped.
func (d *Daemon) runJob(ctx context.Context, f schedule.Fire, repo string) {
	st := d.state.Load()
	log := d.log.With("job", f.Key.String(), "repository", repo)
	if ctx.Err() != nil {
		return
	}
	start := d.cfg.Now()
	log.Info("job started", "slot", f.Slot, "catch_up", f.CatchUp)
	d.sweepLocks(ctx, st, repo)
	var result catalog.Result
	switch f.Key.Kind {
	case schedule.KindBackup:
		result = d.runBackup(ctx, st, f.Key.Name, f.Key.Type)
		select { // its target's overdue state may have changed either way
		case d.watchCh <- struct{}{}:
		default:
		}
	case schedule.KindDrill:
		result = d.runDrill(ctx, st, f.Key.Name)
	case schedule.KindCheck:
		result = d.runCheck(ctx, st, f.Key.Name)
	}
	log.Info("job finished", "result", result, "duration", d.cfg.Now().Sub(start).Round(time.Millisecond))
	if f.Key.Kind != schedule.KindCheck {
		d.windowsChanged(st, f.Key.Name) // a backup, its prune or a drill changes the window, or tells of archiving
	}
}

// previous returns the result of the newest run of target and kind before
// this one (empty if none), to recognise a recovery.
func (d *Daemon) previous(ctx context.Context, target string, kind catalog.Kind) catalog.Result {
	r, ok, err := d.cfg.Catalog.LastRun(ctx, target, kind)
	if err != nil || !ok {
		return ""
	}
	return r.Result
}

// runBackup backs up target name, of backup type typ ("": the provider
// decides).
func (d *Daemon) runBackup(ctx context.Context, st *labState, name, typ string) catalog.Result {
	b := st.lab.Backups[name]
	if b == nil {
		return ""
	}
	prev := d.previous(ctx, name, catalog.KindBackup)
	var before []catalog.Run // a typed job's target's typed runs before it: which types fail
	if typ != "" {
		var err error
		if before, err = d.cfg.Catalog.TypedRuns(ctx, name); err != nil {
			d.log.Error("read backup runs from the catalog", "target", name, "err", err)
		}
	}
	bctx, cancel := context.WithTimeout(ctx, b.Timeout)
	rep := st.manager.BackupOfType(bctx, name, typ)
	timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
	cancel()
	res := rep.Run.Result
	if res == "" { // failed before a run was recorded (lab, repository or lock)
		res = catalog.ResultFailed
		if ctx.Err() != nil {
			res = catalog.ResultInterrupted
		}
	}
	ev := notify.Event{Lab: st.lab.Name, Target: name, Job: "backup", Time: d.cfg.Now(), RunID: rep.Run.RunID, SnapshotID: rep.Run.SnapshotID}
	switch res {
	case catalog.ResultOK, catalog.ResultPartial:
		if url := d.heartbeatURL(b); url != "" {
			st.notifier.Ping(url, ev)
		}
		switch {
		case typ != "":
			// Per type (status.TypeStatus): the types this backup holds
			// that were failing recover; a failed full only by a full.
			// The overdue watch sends the recovery from overdue, when no
			// type is overdue any more.
			if rec := recoveredTypes(before, rep.Run, typ); rec != nil {
				ev.Kind, ev.Detail = notify.Recovered, strings.Join(rec, ", ")+" backup succeeded again: snapshot "+rep.Run.SnapshotID
				st.notifier.Notify(ev)
			}
		case prev == catalog.ResultFailed || d.clearOverdue(name):
			ev.Kind, ev.Detail = notify.Recovered, "backup succeeded again: snapshot "+rep.Run.SnapshotID
			st.notifier.Notify(ev)
		}
		d.runPrune(ctx, st, name)
	case catalog.ResultInterrupted:
		d.log.Warn("backup interrupted", "target", name)
	default:
		ev.Kind, ev.Error = notify.BackupFailed, jobError(rep.Err, timedOut, b.Timeout)
		if typ != "" {
			ev.Detail = typ + " backup"
		}
		if rep.Run.ID == 0 {
			d.event(ctx, "error", name, "backup_failed", ev.Error)
		}
		st.notifier.Notify(ev)
		d.log.Error("backup failed", "target", name, "err", ev.Error)
	}
	return res
}

// recoveredTypes are the backup types, full first, that were failing in
// before (a target's backup runs, newest first, or those of them that
// catalog.Summary.TypedRuns keeps; pgbackrest.TypeState) and
// that good, a good run asked for type typ, holds: a full holds every
// type, an incr only incr. Nil when none.
func recoveredTypes(before []catalog.Run, good catalog.Run, typ string) []string {
	holds := pgbackrest.Rank(pgbackrest.RunType(good))
	if holds == 0 {
		holds = pgbackrest.Rank(typ)
	}
	var out []string
	for _, t := range []string{pgbackrest.TypeFull, pgbackrest.TypeDiff, pgbackrest.TypeIncr} {
		if pgbackrest.Rank(t) > holds {
			continue
		}
		if _, failed := pgbackrest.TypeState(before, t); failed != nil {
			out = append(out, t)
		}
	}
	return out
}

// runPrune applies the target's retention after a good backup (nothing
// when it has no keep rule).
func (d *Daemon) runPrune(ctx context.Context, st *labState, name string) {
	b := st.lab.Backups[name]
	if b.Retention.Empty() || ctx.Err() != nil {
		return
	}
	prev := d.previous(ctx, name, catalog.KindPrune)
	pctx, cancel := context.WithTimeout(ctx, st.lab.Serve.PruneTimeout)
	plan, err := st.manager.Prune(pctx, name, false)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	ev := notify.Event{Lab: st.lab.Name, Target: name, Job: "prune", Time: d.cfg.Now()}
	switch {
	case err == nil:
		d.log.Info("pruned", "target", name, "removed", len(plan.Remove), "kept", len(plan.Keep)+len(plan.Protected))
		if prev == catalog.ResultFailed {
			ev.Kind, ev.Detail = notify.Recovered, fmt.Sprintf("prune succeeded again: removed %d snapshots", len(plan.Remove))
			st.notifier.Notify(ev)
		}
	case ctx.Err() != nil:
		d.log.Warn("prune interrupted", "target", name)
	default:
		ev.Kind, ev.Error = notify.PruneFailed, jobError(err, timedOut, st.lab.Serve.PruneTimeout)
		st.notifier.Notify(ev)
		d.log.Error("prune failed", "target", name, "err", ev.Error)
	}
}

func (d *Daemon) runDrill(ctx context.Context, st *labState, name string) catalog.Result {
	b := st.lab.Backups[name]
	if b == nil {
		return ""
	}
	if _, ok, err := d.cfg.Catalog.LastRun(ctx, name, catalog.KindBackup, catalog.ResultOK, catalog.ResultPartial); err == nil && !ok {
		d.log.Info("drill skipped: the target has no good backup yet", "target", name)
		return ""
	}
	var prev catalog.Result
	if last, ok, err := d.cfg.Catalog.LastDrill(ctx, name); err == nil && ok {
		prev = last.Result
	}
	out := st.manager.Verify(ctx, name)
	res := out.Drill.Result
	ev := notify.Event{Lab: st.lab.Name, Target: name, Job: "drill", Time: d.cfg.Now(), RunID: out.Drill.RunID, SnapshotID: out.Drill.SnapshotID}
	switch {
	case out.Err == nil:
		if prev == catalog.ResultFailed {
			ev.Kind, ev.Detail = notify.Recovered, fmt.Sprintf("restore drill passed again: snapshot %s restored in %s", out.Drill.SnapshotID, out.Drill.RTO.Round(time.Millisecond))
			st.notifier.Notify(ev)
		}
	case ctx.Err() != nil:
		d.log.Warn("drill interrupted", "target", name)
		return catalog.ResultInterrupted
	default:
		ev.Kind, ev.Error = notify.DrillFailed, oneLine(out.Err.Error())
		st.notifier.Notify(ev)
		d.log.Error("drill failed", "target", name, "err", ev.Error)
	}
	return res
}

func (d *Daemon) runCheck(ctx context.Context, st *labState, repo string) catalog.Result {
	r := st.lab.Repositories[repo]
	if r == nil {
		return ""
	}
	prev := d.previous(ctx, repo, catalog.KindCheck)
	cctx, cancel := context.WithTimeout(ctx, r.Check.Timeout)
	rep := st.manager.Check(cctx, repo, r.Check.ReadDataSubset)
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded)
	cancel()
	res := rep.Run.Result
	ev := notify.Event{Lab: st.lab.Name, Target: repo, Job: "check", Time: d.cfg.Now(), RunID: rep.Run.RunID}
	switch {
	case rep.Err == nil:
		if prev == catalog.ResultFailed {
			ev.Kind, ev.Detail = notify.Recovered, "repository check passed again"
			st.notifier.Notify(ev)
		}
	case ctx.Err() != nil:
		d.log.Warn("check interrupted", "repository", repo)
		return catalog.ResultInterrupted
	default:
		if res == "" {
			res = catalog.ResultFailed
			d.event(ctx, "error", repo, "check_failed", rep.Err.Error())
		}
		ev.Kind, ev.Error = notify.CheckFailed, jobError(rep.Err, timedOut, r.Check.Timeout)
		st.notifier.Notify(ev)
		d.log.Error("check failed", "repository", repo, "err", ev.Error)
	}
	return res
}

// jobError is the one-line reason a job failed.
func jobError(err error, timedOut bool, timeout time.Duration) string {
	if timedOut {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	if err == nil {
		return "failed"
	}
	return oneLine(err.Error())
}

// heartbeatURL is the target's heartbeat ping URL ("" if none). A
// url_env that is unset or empty is logged (naming the variable) and no
// ping is sent: the dead-man's switch then reports the missing pings.
func (d *Daemon) heartbeatURL(b *lab.Backup) string {
	s := b.Heartbeat.URLSecret()
	if !s.IsSet() {
		return b.Heartbeat.URL
	}
	url, err := s.Resolve()
	if err != nil {
		d.log.Warn("heartbeat not sent", "target", b.Name, "err", err)
	}
	return url
}

// sweepLocks removes the repository's restic locks when all of them are
// stale, logging each; a live lock is left for restic --retry-lock to
// wait on. Errors are logged: the job then meets the lock itself.
func (d *Daemon) sweepLocks(ctx context.Context, st *labState, repo string) {
	if st.manager.Repo == nil || ctx.Err() != nil || st.lab.Repositories[repo] == nil { // s3-mirror: no restic locks
		return
	}
	c, err := st.manager.Repo(ctx, repo)
	if err != nil {
		return // the job reports it
	}
	now := d.cfg.Now()
	stale, live, err := c.Partition(ctx, restic.StaleRule{MaxAge: st.lab.Serve.StaleLockAge, Hostname: d.cfg.Hostname,
		Alive: restic.ProcessAlive, Now: func() time.Time { return now }})
	if err != nil {
		if !errors.Is(err, restic.ErrNoRepository) {
			d.log.Warn("list repository locks", "repository", repo, "err", err)
		}
		return
	}
	for _, l := range live {
		d.log.Info("repository locked; waiting for it", "repository", repo, "lock", l.ShortID(),
			"host", l.Hostname, "pid", l.PID, "exclusive", l.Exclusive, "age", now.Sub(l.Time).Round(time.Second))
	}
	if len(stale) == 0 || len(live) > 0 {
		return
	}
	for _, l := range stale {
		msg := fmt.Sprintf("removing stale restic lock %s of pid %d on %s (%s old, holder gone)",
			l.ShortID(), l.PID, l.Hostname, now.Sub(l.Time).Round(time.Second))
		d.log.Warn(msg, "repository", repo)
		d.event(ctx, "warn", repo, "stale_lock_removed", msg)
	}
	if err := c.Unlock(ctx); err != nil {
		d.log.Error("remove stale locks", "repository", repo, "err", err)
	}
}

// watchOverdue alerts once for each target that goes overdue, unless its
// backup is queued or running (the catch-up after a start is on its way).
// It returns when to look next: when the first target that is not overdue
// yet would become so, and at the latest after WatchInterval.
func (d *Daemon) watchOverdue(ctx context.Context) time.Time {
	st := d.state.Load()
	now := d.cfg.Now()
	next := now.Add(d.cfg.WatchInterval)
	rep, err := status.Build(ctx, st.lab, d.cfg.Catalog, now)
	if err != nil {
		d.log.Error("overdue check", "err", err)
		return next
	}
	for _, t := range rep.Targets {
		if !t.Overdue && t.DueBy != nil && t.DueBy.After(now) && t.DueBy.Before(next) {
			next = t.DueBy.Add(time.Second)
		}
		d.omu.Lock()
		sent := d.overdue[t.Name]
		switch {
		case t.Overdue && !sent && !d.backupBusy(t.Name):
			d.overdue[t.Name] = true
			d.omu.Unlock()
			ev := notify.Event{Kind: notify.Overdue, Lab: st.lab.Name, Target: t.Name, Job: "backup", Time: d.cfg.Now(), Detail: overdueDetail(t)}
			st.notifier.Notify(ev)
			d.log.Warn("target overdue", "target", t.Name, "detail", ev.Detail)
			continue
		case !t.Overdue && sent:
			delete(d.overdue, t.Name)
			if t.Types != nil { // runBackup leaves typed targets to this
				d.omu.Unlock()
				st.notifier.Notify(notify.Event{Kind: notify.Recovered, Lab: st.lab.Name, Target: t.Name, Job: "backup", Time: d.cfg.Now(),
					Detail: "no backup type overdue any more"})
				continue
			}
		}
		d.omu.Unlock()
	}
	d.keepAlerts(st, rep)
	return next
}

// backupBusy reports whether a backup of target, of any type, is queued
// or running.
func (d *Daemon) backupBusy(target string) bool {
	for _, typ := range []string{"", pgbackrest.TypeFull, pgbackrest.TypeDiff, pgbackrest.TypeIncr} {
		if d.queue.busy(schedule.Key{Kind: schedule.KindBackup, Name: target, Type: typ}.String()) {
			return true
		}
	}
	return false
}

// keepAlerts tells the notifier of st, when it is an AlertKeeper, which
// alerts fire by rep (the report watchOverdue built): at its first look,
// the failed last backups and drills; each time, the targets whose
// overdue alert was sent and the filesystems of the newest host sample
// that are filling.
func (d *Daemon) keepAlerts(st *labState, rep status.Report) {
	k, ok := st.notifier.(AlertKeeper)
	if !ok {
		return
	}
	now := d.cfg.Now()
	if !st.restored {
		st.restored = true
		var failed []notify.Event
		for _, t := range rep.Targets {
			if t.Failed() {
				failed = append(failed, notify.Event{Kind: notify.BackupFailed, Lab: st.lab.Name, Target: t.Name, Job: "backup", Time: t.LastRun.End, RunID: t.LastRun.RunID, Error: t.LastRun.Error})
			}
			if t.DrillFailed() {
				failed = append(failed, notify.Event{Kind: notify.DrillFailed, Lab: st.lab.Name, Target: t.Name, Job: "drill", Time: t.LastDrill.End, Error: t.LastDrill.Error})
			}
		}
		k.Restore(failed)
	}
	var overdue []notify.Event
	d.omu.Lock()
	for _, t := range rep.Targets {
		if d.overdue[t.Name] {
			overdue = append(overdue, notify.Event{Kind: notify.Overdue, Lab: st.lab.Name, Target: t.Name, Job: "backup", Time: now, Detail: overdueDetail(t)})
		}
	}
	d.omu.Unlock()
	k.Keep(notify.Overdue, overdue)
	if h := d.host.Load(); h != nil {
		k.Keep(notify.DiskFilling, fillingEvents(st, h, now))
	}
}

// clearOverdue forgets an overdue alert of target; true if one was sent.
func (d *Daemon) clearOverdue(target string) bool {
	d.omu.Lock()
	defer d.omu.Unlock()
	sent := d.overdue[target]
	delete(d.overdue, target)
	return sent
}

func overdueDetail(t status.TargetStatus) string {
	if p := t.TypeProblems(); p != nil {
		s := strings.Join(p, ", ")
		if due := t.ProblemDue(); due != nil {
			s += ", due by " + due.UTC().Format(time.RFC3339)
		}
		return s
	}
	if t.LastGood == nil {
		return "never backed up successfully (schedule " + t.Schedule + ")"
	}
	s := "last good backup " + t.LastGood.End.UTC().Format(time.RFC3339)
	if t.DueBy != nil {
		s += ", due by " + t.DueBy.UTC().Format(time.RFC3339)
	}
	return s
}
