package labsnapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/saga"
)

// CreateParams are what a create saga journals: enough to build its steps
// again for Resume.
type CreateParams struct {
	Name    string   `json:"name"`
	Note    string   `json:"note,omitempty"`
	Targets []string `json:"targets"`
	// Services are the services of the targets' stop lists, in stop order.
	Services []string `json:"services"`
	// Warnings are the Conflicts of the targets, which make the create
	// fail (Conflict.Warning).
	Warnings []string `json:"warnings,omitempty"`
}

// PlanCreate checks name (CheckName, not taken) and targets (empty: every
// target of the lab), refuses while the serving color of a blue/green
// service cannot be read (the catalog and HAProxy disagree), and returns
// the create's params, with a warning for each of the targets' Conflicts.
func (m *Manager) PlanCreate(ctx context.Context, name, note string, targets []string) (CreateParams, error) {
	if err := CheckName(name); err != nil {
		return CreateParams{}, err
	}
	st, err := m.store()
	if err != nil {
		return CreateParams{}, err
	}
	if _, err := st.LabSnapshot(ctx, name); err == nil {
		return CreateParams{}, fmt.Errorf("lab snapshot %s: %w (delete it first, or choose another name)", name, catalog.ErrExists)
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return CreateParams{}, err
	}
	var left []string // every target asked for, but some cannot be restored in place
	if len(targets) == 0 {
		for _, t := range m.Lab.BackupNames() {
			if notInPlace(m.Lab, t) {
				left = append(left, fmt.Sprintf("target %s (%s) is left out: homelab cannot restore it in place, so a lab snapshot could not put it back", t, m.Lab.Backups[t].Provider))
				continue
			}
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return CreateParams{}, errors.New("the lab has no backup targets a lab snapshot can restore: it would hold nothing")
	}
	for _, t := range targets {
		if _, err := m.Lab.Backup(t); err != nil {
			return CreateParams{}, err
		}
		if notInPlace(m.Lab, t) {
			return CreateParams{}, fmt.Errorf("target %s (%s): homelab cannot restore it in place, so a lab snapshot could not put it back; leave it out", t, m.Lab.Backups[t].Provider)
		}
	}
	if _, err := m.servingColors(ctx); err != nil {
		return CreateParams{}, fmt.Errorf("%w; a lab snapshot records it: put it right first", err)
	}
	return CreateParams{Name: name, Note: note, Targets: targets, Services: StopOrder(m.Lab, targets), Warnings: append(left, warnings(m.Lab, targets)...)}, nil
}

// notInPlace reports whether target's provider has no in-place restore
// (pgbackrest's is not built: backup restore refuses --in-place), which a
// lab snapshot's restore needs for every member.
func notInPlace(l *lab.Lab, target string) bool {
	b := l.Backups[target]
	return b != nil && b.Provider == lab.ProviderPgBackRest
}

// Create runs the create saga of p (see the package documentation) and
// returns the lab snapshot as recorded. A failure returns a *saga.Error;
// the lab snapshot, if recorded, is then incomplete.
func (m *Manager) Create(ctx context.Context, p CreateParams) (catalog.LabSnapshot, saga.Record, error) {
	r, err := m.runner()
	if err != nil {
		return catalog.LabSnapshot{}, saga.Record{}, err
	}
	release, err := m.holdServices(ctx, p.Services)
	if err != nil {
		return catalog.LabSnapshot{}, saga.Record{}, err
	}
	defer release()
	rec, err := r.Run(ctx, saga.Saga{Kind: KindCreate, Subject: Subject, Params: p, Covers: p.Services, Steps: m.createSteps(p)})
	st, serr := m.store()
	if serr != nil {
		return catalog.LabSnapshot{}, rec, errors.Join(err, serr)
	}
	ls, lerr := st.LabSnapshot(context.WithoutCancel(ctx), p.Name)
	if lerr != nil && !errors.Is(lerr, catalog.ErrNotFound) {
		err = errors.Join(err, lerr)
	}
	return ls, rec, err
}

func backupStep(target string) string { return "back up " + target }

// createSteps are the steps of a create saga.
func (m *Manager) createSteps(p CreateParams) []saga.Step {
	steps := []saga.Step{
		{Name: "record " + p.Name,
			Do: func(ctx context.Context, sc *saga.StepContext) error { return m.record(ctx, sc, p.Name, p.Note) },
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return m.markIncomplete(ctx, sc, p.Name, "the create did not finish")
			}},
		{Name: stopStep,
			Do: func(ctx context.Context, sc *saga.StepContext) error { return m.stopServices(ctx, sc, p.Services) },
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return m.startServices(ctx, stopped(sc), false)
			}},
	}
	for _, t := range p.Targets {
		steps = append(steps, saga.Step{Name: backupStep(t), Do: func(ctx context.Context, sc *saga.StepContext) error {
			return m.backupMember(ctx, sc, p.Name, t)
		}})
	}
	return append(steps,
		saga.Step{Name: "start services", Retryable: true, Do: func(ctx context.Context, sc *saga.StepContext) error {
			return m.startServices(ctx, stopped(sc), false)
		}},
		saga.Step{Name: "complete " + p.Name, Do: func(ctx context.Context, sc *saga.StepContext) error {
			return m.complete(ctx, p.Name)
		}},
	)
}

// paramsOf decodes the params journalled with a lab-snapshot saga.
func paramsOf[T any](rec saga.Record) (T, error) {
	var p T
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return p, fmt.Errorf("saga %s: read its params: %w", rec.ID, err)
	}
	return p, nil
}
