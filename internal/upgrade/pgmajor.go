package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"homelab/internal/lab"
	"homelab/internal/pgupgrade"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/status"
)

// PGPlan is the PostgreSQL part of a plan that changes a postgres
// server's major (lab.PostgresServer): pg_upgrade from Old to New.
type PGPlan struct {
	Old pgupgrade.Cluster `json:"old"`
	New pgupgrade.Cluster `json:"new"`
	// Mode is pg_upgrade's: clone, copy or link (lab mode auto resolved
	// by whether New's file system clones files).
	Mode string `json:"mode"`
	// Space is the bytes the new cluster needs on its file system (copy:
	// the old cluster's size; clone and link: its catalogs, about
	// pgNewCatalogs), Free what that file system has (at planning).
	Space int64 `json:"space_bytes"`
	Free  int64 `json:"free_bytes"`
	// Dependents are the services stopped around pg_upgrade.
	Dependents []string `json:"dependents,omitempty"`
	User       string   `json:"user"`
	Port       int      `json:"port"`
	RunAs      string   `json:"run_as,omitempty"`
	// WorkDir is pg_upgrade's working directory (its logs and
	// update_extensions.sql), next to New's data directory.
	WorkDir string `json:"work_dir"`
}

// pgNewCatalogs is what a new cluster takes in clone and link mode: its
// own catalogs and WAL, the data files being shared.
const pgNewCatalogs = 128 << 20

// Step names of a major upgrade to PostgreSQL M.
func pgPreflightStep(m string) string       { return "preflight for PostgreSQL " + m }
func pgStopDependentsStep() string          { return "stop dependents" }
func pgStopOldStep(m string) string         { return "stop PostgreSQL " + m }
func pgUpgradeStep(m string) string         { return "pg_upgrade to " + m }
func pgSwitchStep(m string) string          { return "start PostgreSQL " + m }
func pgAnalyzeStep(m string) string         { return "analyze " + m }
func pgStartDependentsStep(m string) string { return "start dependents on " + m }

// Journal keys of a major upgrade.
const (
	pgNewMadeKey  = "new_cluster_made"
	pgStoppedKey  = "stopped"
	pgBeganKey    = "pg_upgrade_began"
	pgStartedKey  = "new_started"
	pgAnalyzeKey  = "analyze_seconds"
	pgExtUpdated  = "update_extensions"
	pgSettingsKey = "initdb"
)

// majorOf is the major of a PostgreSQL version as the version command
// prints it ("15", "15.8", "17.2 (Debian ...)"), or "".
func majorOf(v string) string {
	m, _, _ := strings.Cut(strings.TrimSpace(v), ".")
	if _, err := strconv.Atoi(m); err != nil {
		return ""
	}
	return m
}

// planPG fills in p.Postgres when service s is a PostgreSQL server and
// the plan changes its major: the clusters, the mode, the space. The
// path is the target alone (pg_upgrade goes straight to any newer
// major). Errors are *PlanError.
func (u *Upgrader) planPG(s *lab.Service, p *Plan) error {
	pg := s.Postgres
	from, to := majorOf(p.From), majorOf(p.To)
	if pg == nil || from == "" || from == to {
		return nil
	}
	if p.Downgrade {
		return &PlanError{fmt.Errorf("PostgreSQL cannot go down a major (%s to %s): restore a backup of %s instead", from, to, to)}
	}
	plan := &PGPlan{Dependents: pg.Dependents, User: pg.User, Port: pg.UpgradePort, RunAs: pg.RunAs}
	for _, c := range []struct {
		major string
		cl    *pgupgrade.Cluster
	}{{from, &plan.Old}, {to, &plan.New}} {
		bin, ok := pg.BinDirs[c.major]
		if !ok {
			return &PlanError{fmt.Errorf("service %s: postgres.bin_dirs has no entry for PostgreSQL %s in %s", s.Name, c.major, u.Lab.Path)}
		}
		data, err := pg.DataDirOf(c.major)
		if err != nil {
			return &PlanError{fmt.Errorf("service %s: postgres.data_dir: %w", s.Name, err)}
		}
		*c.cl = pgupgrade.Cluster{Major: c.major, Bin: bin, Data: data}
	}
	if m, err := pgupgrade.Major(plan.Old.Data); err != nil || m != from {
		return &PlanError{fmt.Errorf("service %s runs PostgreSQL %s, but %s holds no cluster of %s (PG_VERSION: %q, %v)", s.Name, from, plan.Old.Data, from, m, err)}
	}
	if entries, err := os.ReadDir(plan.New.Data); err == nil && len(entries) > 0 {
		return &PlanError{fmt.Errorf("%s (the data directory of PostgreSQL %s) is not empty: an earlier upgrade's cluster? remove it, or finalize that upgrade", plan.New.Data, to)}
	}
	plan.WorkDir = filepath.Join(filepath.Dir(plan.New.Data), "pg_upgrade-"+from+"-"+to)
	where := existingParent(plan.New.Data)
	plan.Mode = pg.Mode
	if plan.Mode == lab.PGModeAuto {
		plan.Mode = pgupgrade.ModeCopy
		if ok, err := pgupgrade.CanClone(where); err == nil && ok {
			plan.Mode = pgupgrade.ModeClone
		}
	}
	plan.Space = pgNewCatalogs
	if plan.Mode == pgupgrade.ModeCopy {
		n, err := pgupgrade.DirSize(plan.Old.Data)
		if err != nil {
			return fmt.Errorf("size of %s: %w", plan.Old.Data, err)
		}
		plan.Space = n
	}
	free, err := u.freeSpace(where)
	if err != nil {
		return fmt.Errorf("free space of %s: %w", where, err)
	}
	plan.Free = free
	p.Path = []string{p.To}
	p.Postgres = plan
	if plan.Mode == pgupgrade.ModeLink {
		p.Warnings = append(p.Warnings, "link mode: once PostgreSQL "+to+" has started, the old cluster's files are its files: a rollback after that rebuilds the old cluster from the restore point (what it holds, no more)")
	}
	return nil
}

// pgTools are the tools of plan, run as its RunAs (default: as the old
// data directory's owner when homelab is root).
func (u *Upgrader) pgTools(plan *PGPlan) (*pgupgrade.Tools, error) {
	t := &pgupgrade.Tools{User: plan.User, Note: u.Note}
	if os.Geteuid() != 0 {
		return t, nil
	}
	// The old data directory, or where a link-mode rollback moved it.
	owner, err := pgupgrade.Owner(plan.Old.Data)
	if aside, _ := filepath.Glob(plan.Old.Data + ".link-*"); err != nil && len(aside) > 0 {
		owner, err = pgupgrade.Owner(aside[0])
	}
	if err != nil {
		return nil, err
	}
	t.Owner = owner
	switch plan.RunAs {
	case "root":
	case "":
		t.Cred = owner
	default:
		cred, err := lookupUser(plan.RunAs)
		if err != nil {
			return nil, fmt.Errorf("postgres.run_as: %w", err)
		}
		t.Cred = cred
	}
	return t, nil
}

func (plan *PGPlan) upgrade() pgupgrade.Upgrade {
	return pgupgrade.Upgrade{Old: plan.Old, New: plan.New, Mode: plan.Mode, Port: plan.Port, WorkDir: plan.WorkDir}
}

// pgSteps builds the saga of a major upgrade (package pgupgrade for the
// tools): preflight, restore point (in copy and clone mode while the
// dependents still serve: a rollback starts the untouched old cluster, so
// what they write after it is not lost; in link mode after they are
// stopped: a rollback after the new major started is this restore
// point, which must hold all they wrote), stop the dependents, stop
// PostgreSQL, pg_upgrade, carry the configuration over and start the new
// major, start the dependents (each health-gated), then analyze: vacuumdb
// --analyze-in-stages is made to run while the applications serve (its
// first stage gives minimal statistics in seconds), so it is not in the
// downtime.
func (u *Upgrader) pgSteps(p Plan, s *lab.Service, rt runtime.Runtime, ver runtime.Versioner) ([]saga.Step, error) {
	plan := p.Postgres
	tools, err := u.pgTools(plan)
	if err != nil {
		return nil, err
	}
	deps := make([]runtime.Runtime, len(plan.Dependents))
	for i, name := range plan.Dependents {
		svc := u.Lab.Services[name]
		if svc == nil {
			return nil, fmt.Errorf("dependent %s of %s is no longer in %s", name, s.Name, u.Lab.Path)
		}
		if deps[i], err = u.ServiceRuntime(svc); err != nil {
			return nil, err
		}
	}
	to, from := plan.New.Major, plan.Old.Major
	point := restorePointStep(p.To)
	steps := []saga.Step{
		{Name: pgPreflightStep(to),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return u.pgPreflight(ctx, sc, tools, p)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				if err := removeGlobals(plan, sc.SagaID()); err != nil {
					return err
				}
				if _, ok := sc.Get(pgPreflightStep(to), pgNewMadeKey); !ok {
					return nil
				}
				return u.pgRemoveNew(ctx, tools, plan)
			}},
		{Name: point, Do: func(ctx context.Context, sc *saga.StepContext) error {
			if err := u.pgRestorePoint(ctx, sc, p); err != nil || plan.Mode != pgupgrade.ModeLink {
				return err
			}
			// The dumps of the restore point hold no roles: a rebuild
			// (pgRebuildOld) makes them again from this file first.
			u.note("pg_dumpall --globals-only: the roles, for a rollback after PostgreSQL %s started", to)
			return tools.DumpGlobals(ctx, plan.Old, globalsFile(plan, sc.SagaID()))
		}},
		{Name: pgStopDependentsStep(),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return u.pgStopDependents(ctx, sc, plan, deps)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return u.pgStartDependents(ctx, sc, plan, deps, p.HealthyWithin)
			}},
		{Name: pgStopOldStep(from),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				if err := sc.Set(pgStoppedKey, "true"); err != nil {
					return err
				}
				u.note("stopping %s (PostgreSQL %s)", s.Name, from)
				return rt.Stop(ctx)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				if _, ok := sc.Get(pgStopOldStep(from), pgStoppedKey); !ok {
					return nil
				}
				if err := u.pgStopLeftover(ctx, tools, plan, plan.Old); err != nil {
					return err
				}
				u.note("starting %s on PostgreSQL %s again", s.Name, from)
				if err := rt.Start(ctx); err != nil {
					return err
				}
				return u.WaitHealthy(ctx, s, rt, p.HealthyWithin)
			}},
		{Name: pgUpgradeStep(to),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				if err := sc.Set(pgBeganKey, "true"); err != nil {
					return err
				}
				u.note("pg_upgrade --%s from %s to %s", plan.Mode, plan.Old.Data, plan.New.Data)
				return tools.Run(marked(ctx, sc), plan.upgrade())
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				if _, ok := sc.Get(pgUpgradeStep(to), pgBeganKey); !ok {
					return nil
				}
				return u.pgUndoUpgrade(ctx, sc, tools, s, rt, p)
			}},
		{Name: pgSwitchStep(to),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return u.pgSwitch(ctx, sc, tools, s, rt, ver, p)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				if _, ok := sc.Get(pgSwitchStep(to), previousKey); !ok {
					return nil
				}
				u.note("stopping %s on PostgreSQL %s", s.Name, to)
				if err := rt.Stop(ctx); err != nil {
					return err
				}
				u.note("setting %s back to PostgreSQL %s", s.Name, from)
				return ver.SetVersion(marked(ctx, sc), p.From)
			}},
		{Name: pgStartDependentsStep(to),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return u.pgStartDependents(ctx, sc, plan, deps, p.HealthyWithin)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return u.pgStopDependentsAgain(ctx, sc, plan, deps)
			}},
		{Name: pgAnalyzeStep(to), Retryable: true, Do: func(ctx context.Context, sc *saga.StepContext) error {
			if err := u.pgAnalyze(ctx, sc, tools, plan); err != nil {
				return err
			}
			return removeGlobals(plan, sc.SagaID())
		}},
	}
	if plan.Mode == pgupgrade.ModeLink {
		// A link-mode rollback after the new major started is the restore
		// point: it is taken once the dependents are stopped, so that it
		// holds everything they wrote.
		steps[1], steps[2] = steps[2], steps[1]
	}
	for i := range steps {
		steps[i].Do = flat(steps[i].Do)
		if steps[i].Undo != nil {
			steps[i].Undo = flat(steps[i].Undo)
		}
	}
	return steps, nil
}

// pgPreflight checks, while the old cluster serves: that it runs, that
// the new cluster's file system has the space the mode needs, makes the
// new cluster with the old one's encoding, locale, locale provider and
// checksums (initdb), checks that every extension of the old cluster is
// available in the new major, and runs `pg_upgrade --check`.
func (u *Upgrader) pgPreflight(ctx context.Context, sc *saga.StepContext, tools *pgupgrade.Tools, p Plan) error {
	plan := p.Postgres
	if _, ok, err := pgupgrade.Running(plan.Old.Data); err != nil || !ok {
		return errors.Join(fmt.Errorf("PostgreSQL %s is not running in %s: start %s first (pg_upgrade --check reads the running cluster)", plan.Old.Major, plan.Old.Data, p.Service), err)
	}
	free, err := u.freeSpace(existingParent(plan.New.Data))
	if err != nil {
		return err
	}
	if free < plan.Space {
		return fmt.Errorf("%s has %s free, less than the %s pg_upgrade --%s needs: free space first, or use mode clone or link",
			existingParent(plan.New.Data), status.IEC(free), status.IEC(plan.Space), plan.Mode)
	}
	settings, err := tools.ReadSettings(ctx, plan.Old)
	if err != nil {
		return err
	}
	exts, err := tools.Extensions(ctx, plan.Old)
	if err != nil {
		return err
	}
	if err := sc.Set(pgNewMadeKey, "true"); err != nil {
		return err
	}
	u.note("initdb PostgreSQL %s in %s (encoding %s, collate %s, ctype %s, provider %s, checksums %t)",
		plan.New.Major, plan.New.Data, settings.Encoding, settings.Collate, settings.Ctype, settings.Provider, settings.Checksums)
	js, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	if err := sc.Set(pgSettingsKey, string(js)); err != nil {
		return err
	}
	if err := tools.Initdb(ctx, plan.New, settings); err != nil {
		return err
	}
	avail, err := tools.Available(ctx, plan.New)
	if err != nil {
		return err
	}
	var missing []string
	for _, e := range exts {
		if !slices.Contains(avail, e.Name) {
			missing = append(missing, fmt.Sprintf("%s %s (database %s)", e.Name, e.Version, e.Database))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("extensions missing in PostgreSQL %s: %s: install them for %s, or drop them, then upgrade again",
			plan.New.Major, strings.Join(missing, ", "), plan.New.Major)
	}
	if err := tools.MkdirOwned(plan.WorkDir); err != nil {
		return err
	}
	u.note("pg_upgrade --check --%s", plan.Mode)
	return tools.Check(ctx, plan.upgrade())
}

// pgRemoveNew removes the new cluster and pg_upgrade's working directory
// (stopping a server of it that pg_upgrade left running).
func (u *Upgrader) pgRemoveNew(ctx context.Context, tools *pgupgrade.Tools, plan *PGPlan) error {
	if err := tools.StopServer(ctx, plan.New); err != nil {
		return err
	}
	u.note("removing the new cluster %s", plan.New.Data)
	return errors.Join(os.RemoveAll(plan.New.Data), os.RemoveAll(plan.WorkDir))
}

// dependentsKey is journalled by "stop dependents": the dependents that
// were running, which the upgrade starts again.
const dependentsKey = "dependents_running"

func (u *Upgrader) pgStopDependents(ctx context.Context, sc *saga.StepContext, plan *PGPlan, deps []runtime.Runtime) error {
	var running []string
	for i, name := range plan.Dependents {
		st, err := deps[i].Status(ctx)
		if err != nil {
			return fmt.Errorf("dependent %s: %w", name, err)
		}
		if st.State != runtime.Stopped {
			running = append(running, name)
		}
	}
	if err := sc.Set(dependentsKey, strings.Join(running, ",")); err != nil {
		return err
	}
	for i := len(plan.Dependents) - 1; i >= 0; i-- {
		if !slices.Contains(running, plan.Dependents[i]) {
			continue
		}
		u.note("stopping %s (it uses %s)", plan.Dependents[i], plan.Old.Data)
		if err := deps[i].Stop(ctx); err != nil {
			return fmt.Errorf("stop %s: %w", plan.Dependents[i], err)
		}
	}
	return nil
}

// pgStartDependents starts the dependents journalled as running by "stop
// dependents" and waits for each to be healthy.
func (u *Upgrader) pgStartDependents(ctx context.Context, sc *saga.StepContext, plan *PGPlan, deps []runtime.Runtime, within time.Duration) error {
	list, _ := sc.Get(pgStopDependentsStep(), dependentsKey)
	var errs []error
	for i, name := range plan.Dependents {
		if !slices.Contains(strings.Split(list, ","), name) {
			continue
		}
		u.note("starting %s", name)
		if err := deps[i].Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", name, err))
			continue
		}
		if err := u.WaitHealthy(ctx, u.Lab.Services[name], deps[i], within); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (u *Upgrader) pgStopDependentsAgain(ctx context.Context, sc *saga.StepContext, plan *PGPlan, deps []runtime.Runtime) error {
	list, _ := sc.Get(pgStopDependentsStep(), dependentsKey)
	for i := len(plan.Dependents) - 1; i >= 0; i-- {
		if !slices.Contains(strings.Split(list, ","), plan.Dependents[i]) {
			continue
		}
		u.note("stopping %s for the rollback", plan.Dependents[i])
		if err := deps[i].Stop(ctx); err != nil {
			return fmt.Errorf("stop %s: %w", plan.Dependents[i], err)
		}
	}
	return nil
}

// pgRestorePoint backs up every backup_before target while PostgreSQL
// runs (pg_dump needs it), fail closed: the repositories' space and the rollback's privileges are
// checked first, as for any upgrade.
func (u *Upgrader) pgRestorePoint(ctx context.Context, sc *saga.StepContext, p Plan) error {
	for _, name := range p.BackupBefore {
		warning, err := u.checkSpace(ctx, name)
		if err != nil {
			return err
		}
		if warning != "" {
			u.note("warning: %s", warning)
		}
	}
	fs, err := u.preflight(ctx, p)
	if err != nil {
		return err
	}
	if len(fs) > 0 {
		return &PreflightError{Service: p.Service, Findings: fs}
	}
	if err := u.backUp(ctx, sc, p.BackupBefore); err != nil {
		return err
	}
	// What the restore point wrote (a local repository's packs, the page
	// cache of the dump) is flushed now, while the dependents still
	// serve, rather than by pg_upgrade's sync of the new cluster inside
	// the downtime.
	return pgupgrade.SyncFS(existingParent(p.Postgres.New.Data))
}

// pgStopLeftover stops the server of cluster c that pg_upgrade started
// and, killed midway, left running: one on the upgrade port (a server the
// runtime started listens on the service's own).
func (u *Upgrader) pgStopLeftover(ctx context.Context, tools *pgupgrade.Tools, plan *PGPlan, c pgupgrade.Cluster) error {
	pm, ok, err := pgupgrade.Running(c.Data)
	if err != nil || !ok || pm.Port != plan.Port {
		return err
	}
	u.note("stopping the server pg_upgrade left running on %s", c.Data)
	return tools.StopServer(ctx, c)
}

// pgUndoUpgrade undoes pg_upgrade: stops the servers it may have left
// running. In copy and clone mode the old cluster is untouched. In link
// mode the old cluster is usable again only if the new one never
// started: pg_upgrade renamed its global/pg_control to pg_control.old,
// which is renamed back (pg_upgrade's documentation). After a start of
// the new cluster the data files are the new cluster's: the old cluster
// is rebuilt from the restore point (pgRebuildOld).
func (u *Upgrader) pgUndoUpgrade(ctx context.Context, sc *saga.StepContext, tools *pgupgrade.Tools, s *lab.Service, rt runtime.Runtime, p Plan) error {
	plan := p.Postgres
	if err := errors.Join(tools.StopServer(ctx, plan.New), u.pgStopLeftover(ctx, tools, plan, plan.Old)); err != nil {
		return err
	}
	if plan.Mode != pgupgrade.ModeLink {
		return nil
	}
	if _, started := sc.Get(pgSwitchStep(plan.New.Major), pgStartedKey); started {
		return u.pgRebuildOld(ctx, sc, tools, s, rt, p)
	}
	ctl := filepath.Join(plan.Old.Data, "global", "pg_control")
	if _, err := os.Stat(ctl + ".old"); err == nil {
		u.note("link mode: renaming %s.old back", ctl)
		if err := os.Rename(ctl+".old", ctl); err != nil {
			return err
		}
	}
	return u.pgRemoveNew(ctx, tools, plan)
}

// pgRebuildOld is a link-mode rollback after the new major ran on the old
// cluster's files: the old data directory is moved aside (kept, as
// DATA.link-SAGA, for an operator), the new cluster removed, a fresh old
// cluster made by initdb with the journalled settings and the old
// configuration, started, the roles made again (DumpGlobals of the
// restore point step), every backup_before target restored into it in
// place from the restore point, and the health gate passed. Databases
// that no restore point holds are not there: the note says so.
func (u *Upgrader) pgRebuildOld(ctx context.Context, sc *saga.StepContext, tools *pgupgrade.Tools, s *lab.Service, rt runtime.Runtime, p Plan) error {
	plan := p.Postgres
	var settings pgupgrade.Settings
	js, _ := sc.Get(pgPreflightStep(plan.New.Major), pgSettingsKey)
	if err := json.Unmarshal([]byte(js), &settings); err != nil {
		return fmt.Errorf("link mode: the old cluster's settings were not journalled: %w", err)
	}
	aside := pgupgrade.Cluster{Major: plan.Old.Major, Bin: plan.Old.Bin, Data: plan.Old.Data + ".link-" + sc.SagaID()}
	if _, err := os.Stat(aside.Data); errors.Is(err, os.ErrNotExist) {
		u.note("link mode: PostgreSQL %s ran on the old cluster's files; moving %s aside to %s and rebuilding it from the restore point", plan.New.Major, plan.Old.Data, aside.Data)
		if err := os.Rename(plan.Old.Data, aside.Data); err != nil {
			return err
		}
	}
	if err := u.pgRemoveNew(ctx, tools, plan); err != nil {
		return err
	}
	if err := os.RemoveAll(plan.Old.Data); err != nil { // a rebuild cut short
		return err
	}
	if err := tools.Initdb(ctx, plan.Old, settings); err != nil {
		return err
	}
	if _, err := tools.CarryConfig(ctx, aside, plan.Old); err != nil {
		return err
	}
	// The health probe may need what the restore brings (a database):
	// the gate comes after it.
	if err := rt.Start(ctx); err != nil {
		return err
	}
	// The roles first: the dumps' owners and the backups' own role.
	if err := tools.RestoreGlobals(ctx, plan.Old, globalsFile(plan, sc.SagaID())); err != nil {
		return fmt.Errorf("link mode: make the roles of PostgreSQL %s again: %w", plan.Old.Major, err)
	}
	if err := u.restoreInPlace(ctx, sc, restorePointStep(p.To), p.BackupBefore); err != nil {
		return err
	}
	u.note("the rebuilt PostgreSQL %s holds what the restore points hold (%s); the old files are in %s", plan.Old.Major, strings.Join(p.BackupBefore, ", "), aside.Data)
	return u.WaitHealthy(ctx, s, rt, p.HealthyWithin)
}

// globalsFile is where a link-mode upgrade keeps the old cluster's roles
// (pgupgrade.DumpGlobals) until it ends: next to the old data directory,
// 0600.
func globalsFile(plan *PGPlan, sagaID string) string {
	return filepath.Join(filepath.Dir(plan.Old.Data), ".homelab-globals-"+sagaID+".sql")
}

// removeGlobals removes the globalsFile, if any.
func removeGlobals(plan *PGPlan, sagaID string) error {
	if err := os.Remove(globalsFile(plan, sagaID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// pgSwitch carries the old cluster's configuration over, selects the new
// major (set_version), starts it and waits until it is healthy.
func (u *Upgrader) pgSwitch(ctx context.Context, sc *saga.StepContext, tools *pgupgrade.Tools, s *lab.Service, rt runtime.Runtime, ver runtime.Versioner, p Plan) error {
	plan := p.Postgres
	carried, err := tools.CarryConfig(ctx, plan.Old, plan.New)
	if err != nil {
		return fmt.Errorf("carry over the configuration: %w", err)
	}
	u.note("carried over %s and %d settings of postgresql.conf", strings.Join(carried.Files, ", "), len(carried.Settings))
	for _, sk := range carried.Skipped {
		u.note("not carried over: %s", sk)
	}
	if err := sc.Set(previousKey, p.From); err != nil {
		return err
	}
	// Journalled before set_version: a set_version command may start the
	// new major itself (apt-get install starts the packaged cluster), and
	// in link mode the old cluster is then unusable.
	if err := sc.Set(pgStartedKey, "true"); err != nil {
		return err
	}
	u.note("setting %s to PostgreSQL %s", s.Name, plan.New.Major)
	if err := ver.SetVersion(marked(ctx, sc), p.To); err != nil {
		return err
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	return u.WaitHealthy(ctx, s, rt, p.HealthyWithin)
}

// pgAnalyze runs vacuumdb --all --analyze-in-stages and pg_upgrade's
// update_extensions.sql, journalling the analyze's seconds.
func (u *Upgrader) pgAnalyze(ctx context.Context, sc *saga.StepContext, tools *pgupgrade.Tools, plan *PGPlan) error {
	u.note("vacuumdb --all --analyze-in-stages")
	start := time.Now()
	if err := tools.Analyze(ctx, plan.New); err != nil {
		return err
	}
	if err := sc.Set(pgAnalyzeKey, strconv.FormatFloat(time.Since(start).Seconds(), 'f', 3, 64)); err != nil {
		return err
	}
	ran, err := tools.UpdateExtensions(ctx, plan.New, plan.WorkDir)
	if ran {
		u.note("ran pg_upgrade's %s", pgupgrade.UpdateExtensionsFile)
		if serr := sc.Set(pgExtUpdated, "true"); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// AnalyzeSeconds is how long the analyze of a major upgrade took, from
// its journal; ok is false for other upgrades.
func AnalyzeSeconds(rec saga.Record) (float64, bool) {
	for _, st := range rec.Steps {
		if v, ok := st.Data[pgAnalyzeKey]; ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// OldCluster is a cluster a major upgrade kept: the previous major's data
// directory, removed by Finalize.
type OldCluster struct {
	Service string `json:"service"`
	Major   string `json:"major"`
	Data    string `json:"data_dir"`
	Bytes   int64  `json:"bytes"`
}

// OldClusters lists, for each PostgreSQL server of the lab, the clusters
// of majors (of its bin_dirs) other than the one it runs that are still
// on disk. The running major is read from PG_VERSION of the data
// directories, so no runtime command runs; errors reading one are
// skipped.
func (u *Upgrader) OldClusters(ctx context.Context, service string) ([]OldCluster, error) {
	var out []OldCluster
	for _, name := range slices.Sorted(maps.Keys(u.Lab.Services)) {
		s := u.Lab.Services[name]
		if s.Postgres == nil || (service != "" && name != service) {
			continue
		}
		_, ver, err := u.runtimeOf(s)
		if err != nil {
			return nil, err
		}
		cur, err := currentVersion(ctx, ver)
		if err != nil {
			return nil, fmt.Errorf("service %s: read the current version: %w", name, err)
		}
		running := majorOf(cur.String())
		for _, m := range s.Postgres.Majors() {
			if m == running {
				continue
			}
			data, err := s.Postgres.DataDirOf(m)
			if err != nil {
				continue
			}
			if got, err := pgupgrade.Major(data); err != nil || got != m {
				continue
			}
			n, _ := pgupgrade.DirSize(data)
			out = append(out, OldCluster{Service: name, Major: m, Data: data, Bytes: n})
		}
	}
	return out, nil
}

// Finalize removes the clusters that major upgrades of service kept
// (OldClusters), and pg_upgrade's working directories next to the
// running one. It refuses while an upgrade of service is unfinished, and
// unless the service serves from its running major's cluster, healthy
// (pgServing).
func (u *Upgrader) Finalize(ctx context.Context, service string) ([]OldCluster, error) {
	s := u.Lab.Services[service]
	if s == nil || s.Postgres == nil {
		return nil, &PlanError{fmt.Errorf("service %s is not a PostgreSQL server (no postgres section in %s)", service, u.Lab.Path)}
	}
	open, err := saga.Unfinished(ctx, u.Journal)
	if err != nil {
		return nil, err
	}
	for _, r := range open {
		if r.Subject == service {
			return nil, fmt.Errorf("the upgrade %s of %s is unfinished: resume it first (homelab upgrade --resume %s)", r.ID, service, r.ID)
		}
	}
	old, err := u.OldClusters(ctx, service)
	if err != nil {
		return nil, err
	}
	if len(old) > 0 {
		if err := u.pgServing(ctx, s); err != nil {
			return nil, fmt.Errorf("not deleting the old cluster of %s: %w", service, err)
		}
	}
	for _, c := range old {
		u.note("removing PostgreSQL %s's cluster %s (%s)", c.Major, c.Data, status.IEC(c.Bytes))
		if err := os.RemoveAll(c.Data); err != nil {
			return nil, err
		}
	}
	for _, m := range s.Postgres.Majors() {
		data, err := s.Postgres.DataDirOf(m)
		if err != nil {
			continue
		}
		dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(data), "pg_upgrade-*-"+m))
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				return old, err
			}
		}
	}
	return old, nil
}

// pgServing checks that PostgreSQL server s serves from the cluster of
// the major its version command reports: that cluster's data directory
// holds that major (PG_VERSION), its postmaster is alive (postmaster.pid)
// and the service passes one look of its health gate. Finalize deletes
// the other clusters only then.
func (u *Upgrader) pgServing(ctx context.Context, s *lab.Service) error {
	rt, ver, err := u.runtimeOf(s)
	if err != nil {
		return err
	}
	cur, err := currentVersion(ctx, ver)
	if err != nil {
		return fmt.Errorf("read the current version: %w", err)
	}
	m := majorOf(cur.String())
	data, err := s.Postgres.DataDirOf(m)
	if err != nil {
		return err
	}
	if got, err := pgupgrade.Major(data); err != nil || got != m {
		return fmt.Errorf("%s runs PostgreSQL %s, but %s holds no cluster of it (PG_VERSION %q, %v)", s.Name, m, data, got, err)
	}
	if _, ok, err := pgupgrade.Running(data); err != nil || !ok {
		return errors.Join(fmt.Errorf("PostgreSQL %s is not running in %s: start %s and check it first", m, data, s.Name), err)
	}
	if ok, detail := u.healthy(ctx, s, rt); !ok {
		return fmt.Errorf("%s is not healthy on PostgreSQL %s: %s", s.Name, m, detail)
	}
	return nil
}

// lookupUser is the credential of an OS user name.
func lookupUser(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
