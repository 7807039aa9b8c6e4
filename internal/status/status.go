package status

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/saga"
)

// Target states (TargetStatus.State).
const (
	// StateOK: backed up within the schedule's allowance (or, for a manual
	// target, backed up at least once), and the last run did not fail.
	StateOK = "ok"
	// StateOverdue: the last good backup is older than the schedule allows.
	StateOverdue = "overdue"
	// StateNever: scheduled, but never backed up successfully. Overdue.
	StateNever = "never"
	// StateManual: no schedule and never backed up (nor tried).
	StateManual = "manual"
	// StateFailing: the last run failed, but the last good backup is still
	// within the schedule's allowance (or the target has no schedule).
	StateFailing = "failing"
)

const (
	// MinGrace is the least time allowed for a scheduled run to finish
	// before its target counts as overdue.
	MinGrace = 10 * time.Minute
	// MaxFailures is how many recent failures a report lists.
	MaxFailures = 10
	// MaxLabSnapshots is how many of the newest lab snapshots a report
	// lists.
	MaxLabSnapshots = 5
	// eventWindow is how many of the newest events are searched for
	// failures.
	eventWindow = 500
)

// Report is the status of a lab at one instant.
type Report struct {
	Lab       string
	Generated time.Time
	Targets   []TargetStatus // sorted by name
	// Failures are the newest error-level events among the catalog's
	// newest 500 events, newest first, at most MaxFailures.
	Failures []catalog.Event
	// Overdue counts the targets with Overdue set.
	Overdue int
	// Services are the lab's services with their health, sorted by name;
	// empty until AddServices.
	Services []ServiceStatus
	// Certs are the lab's TLS certificates, the CA first and then the
	// leaves by name; nil until AddCerts, and nil after it when the lab
	// uses no certificates.
	Certs []CertStatus
	// Unfinished are the unfinished sagas (upgrades, deploys, lab
	// snapshot creates and restores); nil until
	// AddUnfinished.
	Unfinished []Unfinished
	// Deploys are the blue/green services (deploy.go); nil until
	// AddDeploys, and when the lab has none.
	Deploys []DeployStatus
	// KeptClusters are old PostgreSQL clusters that major upgrades kept
	// (pgclusters.go); nil until AddKeptClusters. Shown; they change
	// nothing of Healthy.
	KeptClusters []KeptCluster
	// LabSnapshots are the newest lab snapshots (homelab snapshot), newest
	// first, at most MaxLabSnapshots; Build reads them when the store
	// keeps them. They are shown, and change nothing of Healthy.
	LabSnapshots []catalog.LabSnapshot
	// Host is the host homelab runs on (hosts.go); nil until AddHost.
	Host *HostStatus
	// Alerts are the lab's Alertmanager's (alerts.go); nil until
	// AddAlerts, and when the lab names none. They change nothing of
	// Healthy.
	Alerts *AlertsStatus
	// Healthy is true when no target is overdue, no target's last backup
	// run failed, no target's last drill failed, (after AddServices) no
	// service's health probe failed and (after AddCerts) every
	// certificate is CertOK: none missing, expired, with an issue, or
	// expiring (inside its rotation window), (after AddUnfinished)
	// no saga is unfinished, and (after AddHost) no filesystem is
	// forecast to fill within its warning, and (after AddWindows) no
	// pgbackrest target's archiving is stuck (Window.Stuck).
	Healthy bool
}

// TargetStatus is the status of one backup target.
type TargetStatus struct {
	Name, Provider, Repository, Schedule string
	// LastRun is the newest backup run of any result (including one still
	// running); nil if there is none.
	LastRun *catalog.Run
	// LastGood is the newest backup run whose result is ok or partial.
	LastGood *catalog.Run
	// LastDrill is the newest restore drill.
	LastDrill *catalog.Drill
	// State is one of StateOK, StateOverdue, StateNever, StateManual and
	// StateFailing.
	State   string
	Overdue bool
	// DueBy is when the recovery point objective is missed: the first
	// schedule slot after LastGood ended, plus the grace (for per-type
	// schedules: the soonest of the types' DueBy). Nil for targets
	// without a schedule or without a good backup.
	DueBy *time.Time
	// Window is a pgbackrest target's recoverable window (pitr.go); nil
	// until AddWindows, and for other providers.
	Window *Window
	// Types are the backup types of a pgbackrest target with per-type
	// schedules (lab.PgBackRest.TypeSchedules), full first, each judged
	// against its own schedule; nil for other targets. The target is
	// overdue when one of them is, and failing when one of them is.
	Types []TypeStatus
}

// TypeStatus is one backup type of a target with per-type schedules.
type TypeStatus struct {
	// Type is full, diff or incr; Schedule its cron expression.
	Type, Schedule string
	// LastGood is the newest good backup run that holds at least Type (a
	// full one for a diff or incr; pgbackrest.TypeState); nil if the
	// target has none.
	LastGood *catalog.Run
	// Failed is the newest failed run of Type with no such good run
	// after it; nil if none.
	Failed *catalog.Run
	// State is StateOK, StateOverdue, StateNever or StateFailing.
	State   string
	Overdue bool
	// DueBy is the first slot of Schedule after LastGood ended, plus
	// the grace; nil without LastGood.
	DueBy *time.Time
}

// Failed reports whether the target's last backup run failed, or (per-type
// schedules) one of its types is failing: its newest run failed and no
// good backup holding that type came after.
func (t TargetStatus) Failed() bool {
	if t.LastRun != nil && t.LastRun.Result == catalog.ResultFailed {
		return true
	}
	for _, ty := range t.Types {
		if ty.Failed != nil {
			return true
		}
	}
	return false
}

// ProblemDue is when the target's problem (State overdue or failing) is
// or was due: DueBy, or for per-type schedules the DueBy of the first
// type that is not ok; nil when there is none.
func (t TargetStatus) ProblemDue() *time.Time {
	for _, ty := range t.Types {
		if ty.State != StateOK {
			return ty.DueBy
		}
	}
	return t.DueBy
}

// StateWord is the target's state in capitals for tables and pages:
// "OK", "OVERDUE", "FAILING", "NEVER BACKED UP", or for per-type
// schedules the types' problems ("FULL OVERDUE, INCR FAILING").
func (t TargetStatus) StateWord() string {
	if p := t.TypeProblems(); p != nil && t.State != StateNever {
		return strings.ToUpper(strings.Join(p, ", "))
	}
	switch t.State {
	case StateNever:
		return "NEVER BACKED UP"
	case StateManual:
		return StateManual
	}
	return strings.ToUpper(t.State)
}

// TypeProblems names the types that are not ok, full first, as "full
// overdue", "diff failing", "incr never backed up"; nil when all are (and
// for targets without per-type schedules).
func (t TargetStatus) TypeProblems() []string {
	var out []string
	for _, ty := range t.Types {
		switch ty.State {
		case StateOverdue, StateFailing:
			out = append(out, ty.Type+" "+ty.State)
		case StateNever:
			out = append(out, ty.Type+" never backed up")
		}
	}
	return out
}

// DrillFailed reports whether the target's last drill failed.
func (t TargetStatus) DrillFailed() bool {
	return t.LastDrill != nil && t.LastDrill.Result == catalog.ResultFailed
}

// Build reads the status of every backup target of l from store as of now:
// the targets' summaries (catalog.Summaries, a few queries whatever the
// number of targets) and the newest events; and, when store keeps a saga
// journal (catalog.Journal), the unfinished sagas (AddUnfinished); and,
// when it keeps lab snapshots, the newest of them.
func Build(ctx context.Context, l *lab.Lab, store catalog.Store, now time.Time) (Report, error) {
	sums, err := catalog.Summaries(ctx, store)
	if err != nil {
		return Report{}, fmt.Errorf("status: %w", err)
	}
	events, err := store.Events(ctx, eventWindow)
	if err != nil {
		return Report{}, fmt.Errorf("status: %w", err)
	}
	r, err := FromSummaries(l, sums, events, now)
	if err != nil {
		return r, err
	}
	r.markAbandoned(l.StateDir)
	if j, ok := store.(catalog.Journal); ok {
		recs, err := saga.Unfinished(ctx, j)
		if err != nil {
			return Report{}, fmt.Errorf("status: %w", err)
		}
		r.AddUnfinished(recs, l.StateDir)
	}
	if ls, ok := store.(catalog.LabSnapshots); ok {
		if r.LabSnapshots, err = ls.LabSnapshotList(ctx, MaxLabSnapshots); err != nil {
			return Report{}, fmt.Errorf("status: %w", err)
		}
	}
	return r, nil
}

// markAbandoned shows a backup run that the catalog has as running, but
// whose target lock (lock.Held on the target's name, which a backup holds
// while it runs) no process holds, as interrupted: the homelab running it
// was killed, and it will never finish. Only the report changes; the
// catalog keeps the row as it is.
func (r *Report) markAbandoned(stateDir string) {
	for i := range r.Targets {
		run := r.Targets[i].LastRun
		if run == nil || run.Result != catalog.ResultRunning {
			continue
		}
		if held, _, err := lock.Held(stateDir, r.Targets[i].Name); err != nil || held {
			continue
		}
		c := *run
		c.Result, c.Error = catalog.ResultInterrupted, "the homelab process running it is gone"
		r.Targets[i].LastRun = &c
	}
}

// FromSummaries is the status of every backup target of l as of now, from
// the catalog's summaries and its newest events (newest first; the report's
// Failures are the error-level ones among them). A target without a
// summary has no runs or drills. It fails only for a target whose schedule
// does not parse.
func FromSummaries(l *lab.Lab, sums map[string]catalog.Summary, events []catalog.Event, now time.Time) (Report, error) {
	r := Report{Lab: l.Name, Generated: now, Healthy: true}
	if len(l.Backups) > 0 {
		r.Targets = make([]TargetStatus, 0, len(l.Backups))
	}
	for _, name := range l.BackupNames() {
		ts, err := target(l.Backups[name], name, sums[name], now)
		if err != nil {
			return Report{}, fmt.Errorf("status of %s: %w", name, err)
		}
		if ts.Overdue {
			r.Overdue++
		}
		if ts.Overdue || ts.Failed() || ts.DrillFailed() {
			r.Healthy = false
		}
		r.Targets = append(r.Targets, ts)
	}
	for _, e := range events {
		if e.Level == "error" && len(r.Failures) < MaxFailures {
			r.Failures = append(r.Failures, e)
		}
	}
	return r, nil
}

// target classifies the status of backup b from its summary.
func target(b *lab.Backup, name string, sum catalog.Summary, now time.Time) (TargetStatus, error) {
	scheds := b.BackupSchedules()
	ts := TargetStatus{
		Name: name, Provider: b.Provider, Repository: b.Repository, Schedule: strings.Join(scheds, ", "),
		LastRun: sum.LastBackup, LastGood: sum.LastGoodBackup, LastDrill: sum.LastDrill,
	}
	if len(scheds) == 0 {
		switch {
		case ts.Failed():
			ts.State = StateFailing
		case ts.LastGood == nil:
			ts.State = StateManual
		default:
			ts.State = StateOK
		}
		return ts, nil
	}
	if b.Provider == lab.ProviderPgBackRest && b.PgBackRest != nil {
		if typed := b.PgBackRest.TypeSchedules(b.Schedule); typed != nil {
			return typedTarget(ts, typed, sum.TypedRuns, now)
		}
	}
	if ts.LastGood == nil {
		ts.State, ts.Overdue = StateNever, true
		return ts, nil
	}
	due, ok, err := dues.get(scheds[0], finished(*ts.LastGood).In(now.Location()))
	if err != nil {
		return ts, fmt.Errorf("schedule %q: %w", scheds[0], err)
	}
	if ok {
		ts.DueBy, ts.Overdue = &due, due.Before(now)
	}
	ts.State = stateOf(false, ts.Overdue, ts.Failed())
	return ts, nil
}

// stateOf is the state of a scheduled target or type: StateNever,
// StateOverdue, StateFailing or StateOK, the first that holds.
func stateOf(never, overdue, failing bool) string {
	switch {
	case never:
		return StateNever
	case overdue:
		return StateOverdue
	case failing:
		return StateFailing
	}
	return StateOK
}

// typedTarget classifies a target with per-type schedules from the
// backup runs that tell its types' states (catalog.Summary.TypedRuns,
// newest first): each type against
// its own schedule (see TypeStatus), and the target by the worst of them:
// never when no type was ever backed up, overdue when a type is, failing
// when a type is or the last run failed. DueBy is the soonest due.
func typedTarget(ts TargetStatus, typed []lab.TypeSchedule, runs []catalog.Run, now time.Time) (TargetStatus, error) {
	ts.Types = make([]TypeStatus, 0, len(typed))
	never := true
	for _, sc := range typed {
		t := TypeStatus{Type: sc.Type, Schedule: sc.Expr}
		t.LastGood, t.Failed = pgbackrest.TypeState(runs, sc.Type)
		if t.LastGood != nil {
			never = false
			due, ok, err := dues.get(sc.Expr, finished(*t.LastGood).In(now.Location()))
			if err != nil {
				return ts, fmt.Errorf("%s schedule %q: %w", sc.Type, sc.Expr, err)
			}
			if ok {
				t.DueBy, t.Overdue = &due, due.Before(now)
				if ts.DueBy == nil || due.Before(*ts.DueBy) {
					ts.DueBy = t.DueBy
				}
			}
		} else {
			t.Overdue = true
		}
		t.State = stateOf(t.LastGood == nil, t.Overdue, t.Failed != nil)
		ts.Overdue = ts.Overdue || t.Overdue
		ts.Types = append(ts.Types, t)
	}
	ts.State = stateOf(never, ts.Overdue, ts.Failed())
	return ts, nil
}

// dueKey is what dueBy's result depends on: the schedule, the end of
// the last good backup and the location the schedule is read in (for a
// schedule without a zone).
type dueKey struct {
	spec string
	last int64 // UnixNano
	loc  *time.Location
}

type dueResult struct {
	due time.Time
	ok  bool
}

// dueCache remembers dueBy's results, a pure function of dueKey: the
// status page and the metrics classify every target at every request,
// while a target's last good backup changes once a day, and parsing the
// schedule and finding its next slots is most of the cost of a report
// once the catalog's summaries are cached. It holds at most dueCacheMax
// results (it starts over when full). Safe for concurrent use.
type dueCache struct {
	mu sync.Mutex
	m  map[dueKey]dueResult
}

const dueCacheMax = 4096

var dues dueCache

// get is dueBy of spec (lab.ParseSchedule) after last; a spec that does
// not parse gives its error (not remembered).
func (c *dueCache) get(spec string, last time.Time) (time.Time, bool, error) {
	k := dueKey{spec, last.UnixNano(), last.Location()}
	c.mu.Lock()
	r, hit := c.m[k]
	c.mu.Unlock()
	if hit {
		return r.due, r.ok, nil
	}
	sched, err := lab.ParseSchedule(spec)
	if err != nil {
		return time.Time{}, false, err
	}
	r.due, r.ok = dueBy(sched, last)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= dueCacheMax {
		c.m = map[dueKey]dueResult{}
	}
	c.m[k] = r
	c.mu.Unlock()
	return r.due, r.ok, nil
}

// DueAfter is when something on schedule spec (lab.ParseSchedule) last
// done at last is due again: the first slot after last plus the grace
// (10% of the interval to the slot after, at least MinGrace); false
// when the schedule never fires again; an error when spec does not
// parse. What status calls overdue for backups, for any schedule (the
// drills' too).
func DueAfter(spec string, last time.Time) (time.Time, bool, error) { return dues.get(spec, last) }

// finished is when r ended, or when it started if it has no end.
func finished(r catalog.Run) time.Time {
	if r.End.IsZero() {
		return r.Start
	}
	return r.End
}

// schedule is what a cron.Schedule from lab.ParseSchedule provides.
type schedule interface{ Next(time.Time) time.Time }

// dueBy returns when a target whose last good backup ended at last misses
// its schedule: the first slot after last, plus the grace for that slot.
// A schedule that never fires again gives false. Schedules without a time
// zone are read in last's location.
func dueBy(sched schedule, last time.Time) (time.Time, bool) {
	slot := sched.Next(last)
	if slot.IsZero() {
		return time.Time{}, false
	}
	return slot.Add(grace(sched, slot)), true
}

// grace is the time allowed for the run at slot to finish: 10% of the
// interval to the following slot, at least MinGrace.
func grace(sched schedule, slot time.Time) time.Duration {
	next := sched.Next(slot)
	if next.IsZero() {
		return MinGrace
	}
	return max(MinGrace, next.Sub(slot)/10)
}
