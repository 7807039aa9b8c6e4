package labsnapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/deploy"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

// VersionChange is a service whose version a restore sets back.
type VersionChange struct {
	Service string `json:"service"`
	// From is the version it runs now, To the lab snapshot's.
	From string `json:"from"`
	To   string `json:"to"`
}

// RestorePlan is what a restore does; it is journalled as the restore
// saga's params, so that Resume builds the same steps.
type RestorePlan struct {
	Name string `json:"name"`
	// PreRestore names the restore point the saga takes first, itself a
	// lab snapshot: pre-restore-NAME-TIME.
	PreRestore string `json:"pre_restore"`
	// Members are restored in place, in order (by target).
	Members []catalog.LabSnapshotMember `json:"members"`
	// Services are stopped in this order (the members' stop lists, then
	// the services whose version changes) and started in reverse.
	Services []string        `json:"services"`
	Versions []VersionChange `json:"versions,omitempty"`
	// LabFileChanged: the lab file differs from the lab snapshot's copy
	// (homelab snapshot show NAME --lab-file); the restore runs with the
	// file as it is now. CertsChanged names the certificates whose
	// fingerprints differ (or that came or went). A restore puts back
	// neither; the plan says so.
	LabFileChanged bool     `json:"lab_file_changed,omitempty"`
	CertsChanged   []string `json:"certs_changed,omitempty"`
	// Warnings are the Conflicts of the members' targets, which make the
	// restore fail at its restore point, before it changes anything
	// (Conflict.Warning).
	Warnings []string `json:"warnings,omitempty"`
	// Colors says, per blue/green service (lab.Deploy), which color
	// serves after the restore: the recorded one, flipped back to when it
	// is the color kept for a fast rollback on the recorded version, or
	// the one that serves now, and why.
	Colors []ColorPlan `json:"colors,omitempty"`
}

// ColorPlan is what a restore does with the serving color of a
// blue/green service. In Restore's result it is what was done.
type ColorPlan struct {
	Service string `json:"service"`
	// Recorded is the color the lab snapshot records serving, and its
	// version; zero when it records none.
	Recorded catalog.ServingColor `json:"recorded"`
	// Serving is the color that serves now; zero when none does or it
	// cannot be read (Why says).
	Serving catalog.ServingColor `json:"serving"`
	// Flip: once the lab is restored, HAProxy is flipped back to Recorded
	// by a fast rollback (deploy.Deployer.PlanRollback and Run, reason
	// "homelab snapshot restore NAME"): Recorded is the color kept for
	// it, running the recorded version. In Restore's result: it was.
	Flip bool `json:"flip"`
	// Why says why Serving keeps serving though it is not Recorded;
	// empty when it is, or when Flip.
	Why string `json:"why,omitempty"`
}

// Serves is the color that serves after the restore (as planned).
func (c ColorPlan) Serves() catalog.ServingColor {
	if c.Flip {
		return c.Recorded
	}
	return c.Serving
}

// BlueGreen returns the names of l's blue/green services, sorted: those
// whose serving color a lab snapshot records (they have no runtime of
// their own, so no version).
func BlueGreen(l *lab.Lab) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(l.Services)) {
		if l.Services[name].Deploy != nil {
			out = append(out, name)
		}
	}
	return out
}

// rollbackReason is the reason recorded with the fast rollback a restore
// of name runs.
func rollbackReason(name string) string { return "homelab snapshot restore " + name }

// planColor works out what a restore of the lab snapshot name, which
// records rec (ok: it records one) for service, does with its serving
// color, and with Flip the fast rollback's plan. It changes nothing:
// deploy.Deployer.PlanRollback is a plan.
func (m *Manager) planColor(ctx context.Context, name, service string, rec catalog.ServingColor, ok bool) (ColorPlan, deploy.Plan) {
	cp := ColorPlan{Service: service, Recorded: rec}
	var rb deploy.Plan
	if m.Deployer == nil {
		cp.Why = "no deployer reads its serving color"
		return cp, rb
	}
	st, err := m.Deployer.State(ctx, service)
	if err != nil {
		cp.Why = fmt.Sprintf("its serving color cannot be read (%v); the restore leaves HAProxy as it is", err)
		return cp, rb
	}
	cp.Serving = catalog.ServingColor{Color: st.Active.Color, Version: st.Active.Version}
	want := deploy.Side{Color: rec.Color, Version: rec.Version}
	switch {
	case !ok:
		if cp.Serving.Color != "" {
			cp.Why = "the lab snapshot records no color of it (it was taken before colors were recorded, or nothing served then)"
		}
	case st.Active == want:
	case st.Kept != want:
		kept := "none is"
		if st.Kept.Color != "" {
			kept = "the kept one is " + st.Kept.String()
		}
		cp.Why = fmt.Sprintf("the recorded %s is not kept for a fast rollback (%s); a restore does not deploy: homelab deploy %s --to %s puts it back", want, kept, service, rec.Version)
	default:
		p, err := m.Deployer.PlanRollback(ctx, service, deploy.RollbackOptions{Reason: rollbackReason(name)})
		switch {
		case err != nil:
			cp.Why = fmt.Sprintf("a fast rollback to the recorded %s is refused: %v", want, err)
		case p.To != want:
			cp.Why = fmt.Sprintf("a fast rollback would go to %s, not the recorded %s", p.To, want)
		default:
			cp.Flip, rb = true, p
		}
	}
	return cp, rb
}

// serveColors flips each blue/green service of cs planned to Flip back to
// its recorded color, by a fast rollback planned again now (the restore
// took a while), and returns what was done: Flip false and Why when it
// was refused or failed (its saga compensated: the color that served
// still does). A rollback left needing attention is also an error.
func (m *Manager) serveColors(ctx context.Context, name string, cs []ColorPlan) ([]ColorPlan, error) {
	out := slices.Clone(cs)
	var errs []error
	for i, cp := range out {
		if !cp.Flip {
			continue
		}
		again, p := m.planColor(ctx, name, cp.Service, cp.Recorded, true)
		if !again.Flip {
			out[i] = again
			continue
		}
		m.note("flipping %s back to %s", cp.Service, p.To)
		rec, err := m.Deployer.Run(ctx, p)
		if err != nil && rec.State == saga.NeedsAttention {
			errs = append(errs, fmt.Errorf("service %s: the flip back to %s: %w", cp.Service, p.To, err))
		}
		if err != nil {
			out[i].Flip, out[i].Why = false, fmt.Sprintf("the flip back to %s failed (%v); %s still serves", deploy.Side{Color: cp.Recorded.Color, Version: cp.Recorded.Version}, err, deploy.Side{Color: cp.Serving.Color, Version: cp.Serving.Version})
		}
	}
	return out, errors.Join(errs...)
}

// Targets returns the targets of the plan's members, in order.
func (p RestorePlan) Targets() []string {
	out := make([]string, len(p.Members))
	for i, m := range p.Members {
		out[i] = m.Target
	}
	return out
}

// MissingError is a restore refused because members are not in their
// repositories (forgotten by hand, or the repository replaced) or could
// not be checked; nothing was stopped or changed.
type MissingError struct {
	Name    string
	Missing []MemberState
}

func (e *MissingError) Error() string {
	var parts []string
	for _, m := range e.Missing {
		why := "missing from repository " + m.Repository
		if m.Error != "" {
			why = m.Error
		}
		parts = append(parts, fmt.Sprintf("%s (restic snapshot %s): %s", m.Target, short(m.SnapshotID), why))
	}
	return fmt.Sprintf("lab snapshot %s cannot be restored, nothing was changed: %s", e.Name, strings.Join(parts, "; "))
}

// PlanRestore works out the restore of the lab snapshot name without
// changing anything. It refuses (wrapped ErrNotComplete) a lab snapshot
// that is not complete, with a *MissingError one whose members are not
// all in their repositories (each listed, not assumed), and with the
// in-place restore's own refusals (backup.Manager.PlanRestore: the
// privileges a postgres restore needs), and while the serving color of a
// blue/green service cannot be read (the catalog and HAProxy disagree).
func (m *Manager) PlanRestore(ctx context.Context, name string) (RestorePlan, error) {
	if err := m.noUnfinished(ctx); err != nil {
		return RestorePlan{}, err
	}
	c, err := m.Show(ctx, name)
	if err != nil {
		return RestorePlan{}, err
	}
	if c.State != catalog.LabSnapshotComplete {
		return RestorePlan{}, fmt.Errorf("lab snapshot %s is %s: %w", name, c.State, ErrNotComplete)
	}
	if missing := c.Missing(); len(missing) > 0 {
		return RestorePlan{}, &MissingError{Name: name, Missing: missing}
	}
	p := RestorePlan{Name: name, PreRestore: "pre-restore-" + name + "-" + m.now().Format("20060102T150405Z"), Members: c.LabSnapshot.Members}
	for _, mem := range p.Members {
		if _, err := m.Backups.PlanRestore(ctx, mem.Target, mem.SnapshotID, backup.Destination{InPlace: true}); err != nil {
			return RestorePlan{}, err
		}
	}
	p.Services = StopOrder(m.Lab, p.Targets())
	p.Warnings = warnings(m.Lab, p.Targets())
	fps, labFile, err := m.labState()
	if err != nil {
		return RestorePlan{}, err
	}
	p.LabFileChanged = labFile != c.LabFile
	names := slices.Concat(slices.Collect(maps.Keys(fps)), slices.Collect(maps.Keys(c.Certs)))
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		if fps[n] != c.Certs[n] {
			p.CertsChanged = append(p.CertsChanged, n)
		}
	}
	// The restore point records the serving colors: one that cannot be
	// read refuses now, not in the middle of the saga.
	if _, err := m.servingColors(ctx); err != nil {
		return RestorePlan{}, fmt.Errorf("%w; the restore point records it: put it right first, nothing was changed", err)
	}
	for _, svc := range BlueGreen(m.Lab) {
		rec, ok := c.Colors[svc]
		cp, _ := m.planColor(ctx, name, svc, rec, ok)
		p.Colors = append(p.Colors, cp)
	}
	for _, svc := range slices.Sorted(maps.Keys(c.Versions)) {
		want := c.Versions[svc]
		s := m.Lab.Services[svc]
		if s == nil {
			continue // no longer in the lab: nothing to set
		}
		cur, ok, err := m.Upgrader.VersionOf(ctx, s)
		if err != nil {
			return RestorePlan{}, err
		}
		if !ok || cur == want {
			continue
		}
		p.Versions = append(p.Versions, VersionChange{Service: svc, From: cur, To: want})
		if !slices.Contains(p.Services, svc) {
			p.Services = append(p.Services, svc)
		}
	}
	return p, nil
}

// Restore runs the restore saga of p (see the package documentation) and
// then, once it is done, flips each blue/green service that p.Colors
// flips back to its recorded color (a fast rollback, a deploy saga of its
// own); it returns p.Colors as they turned out. A failure of the restore
// returns a *saga.Error whose State says whether the lab is back in its
// pre-restore state (compensated), unchanged (failed) or needs attention;
// a flip that fails leaves the color that served (said in its Why), and
// one left needing attention is an error too.
func (m *Manager) Restore(ctx context.Context, p RestorePlan) (saga.Record, []ColorPlan, error) {
	rec, err := m.restore(ctx, p)
	if err != nil {
		return rec, p.Colors, err
	}
	colors, err := m.serveColors(ctx, p.Name, p.Colors)
	return rec, colors, err
}

func (m *Manager) restore(ctx context.Context, p RestorePlan) (saga.Record, error) {
	r, err := m.runner()
	if err != nil {
		return saga.Record{}, err
	}
	release, err := m.holdServices(ctx, p.Services)
	if err != nil {
		return saga.Record{}, err
	}
	defer release()
	if err := m.noUnfinished(ctx); err != nil {
		return saga.Record{}, err
	}
	// It covers every service: a --resume after an upgrade or deploy of
	// any of them would put back data, versions and colors under it.
	covers := slices.Sorted(maps.Keys(m.Lab.Services))
	return r.Run(ctx, saga.Saga{Kind: KindRestore, Subject: Subject, Params: p, Covers: covers, Steps: m.restoreSteps(p)})
}

func restoreStep(target string) string { return "restore " + target }

// Changed reports whether the restore saga rec of p began changing the
// lab: restoring a member or setting a version (a forward row of such a
// step exists). A restore that failed before (stopping the services, or
// taking its restore point) only restarted what it stopped when undone.
func (p RestorePlan) Changed(rec saga.Record) bool {
	for _, st := range rec.Steps {
		if st.Phase != catalog.PhaseForward {
			continue
		}
		if st.Name == setVersionsStep || slices.ContainsFunc(p.Members, func(m catalog.LabSnapshotMember) bool { return st.Name == restoreStep(m.Target) }) {
			return true
		}
	}
	return false
}

const setVersionsStep = "set versions"

func previousKey(service string) string { return "previous:" + service }

// restoreSteps are the steps of a restore saga.
func (m *Manager) restoreSteps(p RestorePlan) []saga.Step {
	steps := []saga.Step{
		{Name: stopStep,
			Do: func(ctx context.Context, sc *saga.StepContext) error { return m.stopServices(ctx, sc, p.Services) },
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return m.startServices(ctx, stopped(sc), true)
			}},
		{Name: "restore point " + p.PreRestore,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				note := "taken by homelab snapshot restore " + p.Name
				if err := m.record(ctx, sc, p.PreRestore, note); err != nil {
					return err
				}
				for _, t := range p.Targets() {
					if err := m.backupMember(ctx, sc, p.PreRestore, t); err != nil {
						return err
					}
				}
				return m.complete(ctx, p.PreRestore)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return m.markIncomplete(ctx, sc, p.PreRestore, "the restore point of a restore did not finish")
			}},
	}
	for _, mem := range p.Members {
		steps = append(steps, saga.Step{Name: restoreStep(mem.Target),
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return m.restoreMember(ctx, mem.Target, mem.SnapshotID)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				id, ok := sc.Get("restore point "+p.PreRestore, saga.SnapshotKey(mem.Target))
				if !ok {
					return fmt.Errorf("no restore point of %s was journalled", mem.Target)
				}
				m.note("restoring %s from the restore point %s", mem.Target, p.PreRestore)
				return m.restoreMember(ctx, mem.Target, id)
			}})
	}
	return append(steps,
		saga.Step{Name: setVersionsStep,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				for _, v := range p.Versions {
					// What runs now, not the plan's From: the service may
					// have been upgraded while the operator confirmed, and
					// the restore point holds the data that version wrote.
					prev := v.From
					if cur, ok, err := m.Upgrader.VersionOf(ctx, m.Lab.Services[v.Service]); err != nil {
						return fmt.Errorf("service %s: read the version it runs: %w", v.Service, err)
					} else if ok {
						prev = cur
					}
					if err := sc.Set(previousKey(v.Service), prev); err != nil {
						return err
					}
					if err := m.setVersion(ctx, v.Service, v.To); err != nil {
						return err
					}
				}
				return nil
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				for _, v := range p.Versions {
					if prev, ok := sc.Get(setVersionsStep, previousKey(v.Service)); ok {
						if err := m.setVersion(ctx, v.Service, prev); err != nil {
							return err
						}
					}
				}
				return nil
			}},
		saga.Step{Name: "start services", Retryable: true,
			Do: func(ctx context.Context, sc *saga.StepContext) error {
				return m.startServices(ctx, stopped(sc), false)
			},
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return m.stopAll(ctx, stopped(sc))
			}},
		saga.Step{Name: "health gate", Retryable: true, Do: func(ctx context.Context, sc *saga.StepContext) error {
			return m.gate(ctx, stopped(sc))
		}},
	)
}

// noUnfinished refuses a restore while any saga of the lab is unfinished
// (saga.Unfinished: an upgrade or deploy of any service, a lab snapshot
// create or restore), naming it and how to finish it. A restore puts the
// whole lab back; the compensation of an upgrade left needing attention
// would later restore that upgrade's restore point and version over it,
// and a restore under a running saga would change what that saga
// checks. Nothing has changed when it refuses.
func (m *Manager) noUnfinished(ctx context.Context) error {
	j, err := m.journal()
	if err != nil {
		return err
	}
	recs, err := saga.Unfinished(ctx, j)
	if err != nil {
		return err
	}
	var parts []string
	for _, r := range recs {
		if held, holder := saga.InProgress(m.Lab.StateDir, r); held {
			parts = append(parts, fmt.Sprintf("%s, in progress (%s): wait until it ends", saga.Describe(r), holder))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: finish it first with homelab %s --resume %s", saga.Describe(r), r.Kind, r.ID))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("a lab snapshot restore puts the whole lab back, so it does not run while a change is unfinished, nothing was changed: unfinished %s", strings.Join(parts, "; unfinished "))
}

// restoreMember restores target's restic snapshot id in place.
func (m *Manager) restoreMember(ctx context.Context, target, id string) error {
	m.note("restoring %s from restic snapshot %s in place", target, short(id))
	plan, err := m.Backups.PlanRestore(ctx, target, id, backup.Destination{InPlace: true})
	if err == nil {
		_, err = m.Backups.Restore(ctx, plan)
	}
	if err != nil {
		return fmt.Errorf("restore %s from restic snapshot %s: %w", target, short(id), err)
	}
	return nil
}

// setVersion sets service to version and leaves it stopped: the start
// step starts what ran, in order.
func (m *Manager) setVersion(ctx context.Context, service, version string) error {
	_, rt, err := m.runtimeOf(service)
	if err != nil {
		return err
	}
	ver, err := runtime.AsVersioner(rt)
	if err != nil {
		return fmt.Errorf("service %s: %w", service, err)
	}
	m.note("setting %s to %s", service, version)
	if err := rt.Stop(ctx); err != nil {
		return err
	}
	if sv, ok := ver.(runtime.StoppedVersioner); ok {
		return sv.SetVersionStopped(ctx, version)
	}
	if err := ver.SetVersion(ctx, version); err != nil {
		return err
	}
	return rt.Stop(ctx)
}
