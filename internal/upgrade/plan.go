package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/version"
)

// Kind is the saga kind of upgrades in the journal.
const Kind = "upgrade"

// Upgrader plans, runs and resumes the upgrades of one lab's services.
type Upgrader struct {
	Lab *lab.Lab
	// Backups takes and restores the restore points; its Catalog gives
	// the past backup durations of the estimate.
	Backups *backup.Manager
	// Journal is where the sagas are journalled (the catalog).
	Journal catalog.Journal
	// Runtime returns a service's runtime; default runtime.New with the
	// tools in PATH.
	Runtime func(*lab.Service) (runtime.Runtime, error)
	// Health are the options of the health probes.
	Health health.Options
	// Poll is how often the health gate probes; default 2s.
	Poll time.Duration
	// FreeSpace returns the bytes available to an unprivileged user on
	// the filesystem holding path; default statfs(2).
	FreeSpace func(path string) (int64, error)
	// Wait makes a run wait for a service's upgrade lock (and for busy
	// backup targets) instead of failing.
	Wait bool
	// UndoTimeout bounds each compensation (restore + previous version +
	// health gate); 0 means saga.DefaultUndoTimeout.
	UndoTimeout time.Duration
	Now         func() time.Time
	Log         *slog.Logger
	// Progress gets every journal row's change of state, to show.
	Progress func(id string, st saga.StepRecord)
	// Note gets one-line notes of what a step is doing ("stopping web",
	// "restoring app-files 1a2b3c4d in place"), to show; may be nil.
	Note func(msg string)
}

func (u *Upgrader) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Upgrader) note(format string, args ...any) {
	if u.Note != nil {
		u.Note(fmt.Sprintf(format, args...))
	}
}

// ServiceRuntime returns a service's runtime: Runtime's, or runtime.New
// with the tools in PATH.
func (u *Upgrader) ServiceRuntime(s *lab.Service) (runtime.Runtime, error) {
	if u.Runtime != nil {
		return u.Runtime(s)
	}
	return runtime.New(s, runtime.Options{})
}

func (u *Upgrader) runtimeOf(s *lab.Service) (runtime.Runtime, runtime.Versioner, error) {
	rt, err := u.ServiceRuntime(s)
	if err != nil {
		return nil, nil, err
	}
	v, err := runtime.AsVersioner(rt)
	if err != nil {
		return nil, nil, fmt.Errorf("service %s: %w", s.Name, err)
	}
	return rt, v, nil
}

// Plan is what an upgrade does. It is journalled as the saga's params, so
// that --resume builds the same steps.
type Plan struct {
	Service string `json:"service"`
	Runtime string `json:"runtime"`
	// From is the version the service runs; To the target.
	From string `json:"from"`
	To   string `json:"to"`
	// Path is the versions set in order: the required stops between From
	// and To, then To.
	Path []string `json:"path"`
	// BackupBefore are the targets backed up before each version.
	BackupBefore  []string      `json:"backup_before"`
	HealthyWithin time.Duration `json:"healthy_within_ns"`
	PostStep      string        `json:"post_step,omitempty"`
	// PostStepTimeout bounds PostStep.
	PostStepTimeout time.Duration `json:"post_step_timeout_ns,omitempty"`
	AfterRollback   string        `json:"after_rollback"`
	Downgrade       bool          `json:"downgrade,omitempty"`
	// Postgres is set when the service is a PostgreSQL server
	// (lab.PostgresServer) and the plan changes its major: the upgrade is
	// then pg_upgrade's walk (pgmajor.go), not a version set in place.
	Postgres *PGPlan `json:"postgres,omitempty"`
	// Estimate is not journalled.
	Estimate Estimate `json:"-"`
	// Preflight are the privileges the rollback's in-place restores of
	// BackupBefore lack (backup.Manager.Preflight), found when planning:
	// Run refuses a plan that has any. Not journalled.
	Preflight []backup.Finding `json:"-"`
	// Warnings are what the plan cannot check but the operator should
	// (a remote repository's free space). Not journalled.
	Warnings []string `json:"-"`
}

// PreflightError is an upgrade refused before it began: a restore point
// could not be restored (its findings name the role and what it lacks).
type PreflightError struct {
	Service  string
	Findings []backup.Finding
}

func (e *PreflightError) Error() string {
	return fmt.Sprintf("upgrade of %s refused before anything changed: a rollback could not restore its data: %v", e.Service, &backup.PreflightError{Findings: e.Findings})
}

// preflight checks that the in-place restore of every BackupBefore
// target of p would be allowed (backup.Manager.Preflight).
func (u *Upgrader) preflight(ctx context.Context, p Plan) ([]backup.Finding, error) {
	var out []backup.Finding
	for _, t := range p.BackupBefore {
		fs, err := u.Backups.Preflight(ctx, t, backup.Need{Restore: &backup.Destination{InPlace: true}})
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	return out, nil
}

// Estimate is how long a plan should take, from the catalog.
type Estimate struct {
	// Backups is the mean duration of the last successful backups of the
	// BackupBefore targets that have any, summed, per version on the
	// path.
	Backups time.Duration
	// Unknown are targets without a successful backup in the catalog.
	Unknown []string
	// Total is Backups times the versions on the path; the health gate
	// and post-step come on top (up to HealthyWithin each).
	Total time.Duration
}

// PlanOptions changes what Plan accepts.
type PlanOptions struct {
	AllowDowngrade bool
}

// PlanError is a plan that cannot be made from what was asked and what
// the lab file says (an unknown service, no upgrade section, a bad target
// version, a refused path: version.ErrDowngrade, ErrEditionMismatch,
// *UnpinnedStopError, ...), as opposed to a failure to read the service's
// version. It unwraps to the cause.
type PlanError struct{ Err error }

func (e *PlanError) Error() string { return e.Err.Error() }
func (e *PlanError) Unwrap() error { return e.Err }

// estimateRuns is how many past backups of a target the estimate averages.
const estimateRuns = 5

// Plan resolves the upgrade of service to version to: it reads the version
// the runtime runs (Versioner.Version; for exec and systemd the first
// token of the version command's first line that parses as a version),
// resolves the path through the lab's required stops and preset
// (version.Path, version.Preset.StopsFor), and estimates the time from the
// catalog, and checks the privileges the rollback's restores need
// (Plan.Preflight). It changes nothing. Errors: an unknown service, no upgrade
// section, a runtime that cannot change versions, an unreadable current
// version, and those of version.Path (ErrAlreadyAt, *DowngradeError,
// *EditionError) and StopsFor (*UnpinnedStopError, *PresetRangeError).
// Every error but a failure to reach the runtime is a *PlanError.
func (u *Upgrader) Plan(ctx context.Context, service, to string, o PlanOptions) (Plan, error) {
	s := u.Lab.Services[service]
	if s == nil {
		return Plan{}, &PlanError{fmt.Errorf("unknown service %q (known: %s)", service, strings.Join(slices.Sorted(maps.Keys(u.Lab.Services)), ", "))}
	}
	if s.Upgrade == nil {
		return Plan{}, &PlanError{fmt.Errorf("service %s has no upgrade section in %s: add one (backup_before, required_stops, healthy_within)", service, u.Lab.Path)}
	}
	target, err := version.Parse(to)
	if err != nil {
		return Plan{}, &PlanError{fmt.Errorf("--to: %w", err)}
	}
	_, ver, err := u.runtimeOf(s)
	if err != nil {
		return Plan{}, err
	}
	current, err := currentVersion(ctx, ver)
	if err != nil {
		return Plan{}, fmt.Errorf("service %s: read the current version: %w", service, err)
	}
	stops := s.Upgrade.Stops()
	if s.Upgrade.Preset != "" {
		p, _ := version.LookupPreset(s.Upgrade.Preset)
		more, err := p.StopsFor(current, target, stops)
		if err != nil {
			return Plan{}, &PlanError{err}
		}
		stops = append(stops, more...)
	}
	path, err := version.Path(current, target, stops, version.PathOptions{AllowDowngrade: o.AllowDowngrade})
	if err != nil {
		return Plan{}, &PlanError{err}
	}
	p := Plan{
		Service: service, Runtime: s.RuntimeKind(), From: current.String(), To: target.String(),
		BackupBefore: s.Upgrade.BackupBefore, HealthyWithin: s.Upgrade.HealthyWithin,
		PostStep: s.Upgrade.PostStep, PostStepTimeout: s.Upgrade.PostStepTimeout, AfterRollback: s.Upgrade.AfterRollback,
		Downgrade: version.Compare(target, current) < 0,
	}
	for _, v := range path {
		p.Path = append(p.Path, v.String())
	}
	if err := u.planPG(s, &p); err != nil {
		return p, err
	}
	if p.Estimate, err = u.estimate(ctx, p); err != nil {
		return p, err
	}
	if p.Warnings, err = u.spaceWarnings(ctx, p); err != nil {
		return p, err
	}
	p.Preflight, err = u.preflight(ctx, p)
	return p, err
}

// estimate averages the last successful backups of the plan's targets.
func (u *Upgrader) estimate(ctx context.Context, p Plan) (Estimate, error) {
	var e Estimate
	for _, t := range p.BackupBefore {
		runs, err := u.Backups.Catalog.Runs(ctx, catalog.RunFilter{Target: t, Kind: catalog.KindBackup, Result: catalog.ResultOK, Limit: estimateRuns})
		if err != nil {
			return e, fmt.Errorf("estimate: %w", err)
		}
		if len(runs) == 0 {
			e.Unknown = append(e.Unknown, t)
			continue
		}
		var sum time.Duration
		for _, r := range runs {
			sum += r.End.Sub(r.Start)
		}
		e.Backups += sum / time.Duration(len(runs))
	}
	e.Total = e.Backups * time.Duration(len(p.Path))
	return e, nil
}

// currentVersion reads the runtime's version and picks the version out
// of it: the whole text if it parses, else its first whitespace-separated
// field that does ("app 1.2.3 (build 7)" gives 1.2.3).
func currentVersion(ctx context.Context, v runtime.Versioner) (version.Version, error) {
	text, err := v.Version(ctx)
	if err != nil {
		return version.Version{}, err
	}
	return pickVersion(text)
}

func pickVersion(text string) (version.Version, error) {
	text = strings.TrimSpace(text)
	if v, err := version.Parse(text); err == nil {
		return v, nil
	}
	for _, f := range strings.Fields(text) {
		if !strings.ContainsAny(f, "0123456789") {
			continue
		}
		if v, err := version.Parse(strings.Trim(f, ",;()")); err == nil {
			return v, nil
		}
	}
	if text == "" {
		return version.Version{}, errors.New("the version command printed nothing")
	}
	return version.Version{}, fmt.Errorf("no version in %q", text)
}

// VersionOf returns the version service s runs, as an upgrade writes it
// and SetVersion takes it: a compose service's image tag as written, else
// the version picked out of the version command's output (currentVersion).
// ok is false, with no error, when s's runtime cannot report or change a
// version (runtime.ErrNoVersion, or no runtime): a lab snapshot records
// no version for it.
func (u *Upgrader) VersionOf(ctx context.Context, s *lab.Service) (v string, ok bool, err error) {
	rt, err := u.ServiceRuntime(s)
	if errors.Is(err, runtime.ErrNoRuntime) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	ver, err := runtime.AsVersioner(rt)
	if errors.Is(err, runtime.ErrNoVersion) {
		return "", false, nil
	}
	if rt.Kind() == lab.RuntimeCompose {
		text, err := ver.Version(ctx)
		return text, err == nil, err
	}
	cur, err := currentVersion(ctx, ver)
	if err != nil {
		return "", false, fmt.Errorf("service %s: read the current version: %w", s.Name, err)
	}
	return cur.String(), true, nil
}
