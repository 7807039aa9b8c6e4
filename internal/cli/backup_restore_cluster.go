package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/clusterrestore"
	"homelab/internal/saga"
)

// runClusterRestore is `backup restore --in-place` of a pgbackrest
// target: plan, show, confirm, run the saga, show how it ended.
func runClusterRestore(ctx context.Context, opts *BackupRestoreOptions, target string) error {
	r, _, closeFn, err := clusterRestorer(ctx, opts)
	if err != nil {
		return err
	}
	defer closeFn()
	plan, err := r.Plan(ctx, target, opts.Snapshot, opts.Dest.Recovery, opts.KeepOld)
	if err != nil {
		var open *saga.UnfinishedError
		if errors.Is(err, backup.ErrNoSnapshot) || errors.As(err, &open) {
			return err
		}
		return usageErr(err.Error())
	}
	if opts.JSON {
		if err := writeJSON(opts.IO.Out, "restore_plan", plan); err != nil {
			return err
		}
	} else {
		renderClusterPlan(opts.IO.Out, plan)
	}
	if opts.DryRun {
		return nil
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Replace the cluster of %s (%s, run by %s) with %s%s?", target, plan.DataDir, plan.Service, plan.Snapshot.ID, recoveryWords(plan.Recovery))); err != nil {
		return err
	}
	keepGoingOnHangup()
	rec, err := r.Run(ctx, plan)
	return clusterRestoreEnded(opts, plan, rec, err)
}

// runClusterRestoreResume is `backup restore --resume [SAGA]`.
func runClusterRestoreResume(ctx context.Context, opts *BackupRestoreOptions) error {
	r, a, closeFn, err := clusterRestorer(ctx, opts)
	if err != nil {
		return err
	}
	defer closeFn()
	id := opts.ResumeID
	if id == "" {
		if id, err = resumable(ctx, opts.IO, a, r.Journal, clusterrestore.Kind); err != nil || id == "" {
			return err
		}
	}
	rec, err := r.Journal.Saga(ctx, id)
	if err != nil {
		return err
	}
	if rec.Kind != clusterrestore.Kind {
		return usageErr(fmt.Sprintf("saga %s is a %s, not a %s", id, rec.Kind, clusterrestore.Kind))
	}
	plan, err := clusterrestore.PlanOf(rec)
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.ErrOut, saga.Describe(rec))
	what := "Undo the interrupted in-place restore (the old data directory goes back and " + plan.Service + " starts on it)"
	if rec.State == saga.Running && clusterrestore.Restored(rec, plan) {
		what = "Finish the interrupted in-place restore (the restored cluster passed its health gate: start the dependents)"
	}
	if err := confirm(opts.IO, opts.Yes, what+"?"); err != nil {
		return err
	}
	keepGoingOnHangup()
	rec, err = r.Resume(ctx, id)
	return clusterRestoreEnded(opts, plan, rec, err)
}

// clusterRestorer returns the lab's in-place restorer (app.ClusterRestorer)
// with its progress going to stderr; the func closes the catalog.
func clusterRestorer(ctx context.Context, opts *BackupRestoreOptions) (*clusterrestore.Restorer, *app.App, func(), error) {
	a, err := opts.F.App()
	if err != nil {
		return nil, nil, nil, err
	}
	r, closeFn, err := a.ClusterRestorer(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	pr := newUpgradeProgress(opts.IO)
	r.Progress, r.Note, r.Upgrader.Note = pr.step, pr.note, pr.note
	return r, a, closeFn, nil
}

func renderClusterPlan(w io.Writer, p clusterrestore.Plan) {
	fmt.Fprintf(w, "plan: restore %s in place from %s (%s, %s)%s (saga %s)\n", p.Target, p.Snapshot.ID,
		p.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), size(p.Snapshot.Bytes), recoveryWords(p.Recovery), p.SagaID)
	deps := "none"
	if len(p.Dependents) > 0 {
		deps = strings.Join(p.Dependents, ", ") + " (those running)"
	}
	for i, step := range clusterrestore.StepNames(p) {
		detail := ""
		switch i {
		case 0:
			detail = ": " + deps
		case 2:
			detail = " to " + p.Aside + " (kept until the restored cluster is healthy)"
		case 3:
			detail = " into the emptied " + p.DataDir + " (pgbackrest restore)"
		case 5:
			detail = ": accepting connections, recovery finished (promoted), its health probe"
		case 6:
			detail = ": " + deps + ", each gated on its health probe"
		case 7:
			detail = ": the restored cluster's WAL, held until now, goes to the repository"
		}
		fmt.Fprintf(w, "  %d. %s%s\n", i+1, step, detail)
	}
	if p.KeepOld {
		fmt.Fprintf(w, "  then: keep the old data directory %s (--keep-old)\n", p.Aside)
	} else {
		fmt.Fprintf(w, "  then: remove the old data directory %s\n", p.Aside)
	}
	fmt.Fprintf(w, "  on any failure: the old data directory goes back and %s starts on it again\n", p.Service)
	fmt.Fprintf(w, "  free space beside %s: %s (the restored cluster needs about %s)\n", p.DataDir, size(p.FreeBytes), size(p.Snapshot.Bytes))
	for _, l := range p.Leftovers {
		fmt.Fprintf(w, "  note: %s is left from an earlier in-place restore: remove it when you no longer need it\n", l)
	}
}

// recoveryWords is " to <target>" or " to the end of the archived WAL".
func recoveryWords(r backup.Recovery) string {
	if r == (backup.Recovery{}) {
		return " to the end of the archived WAL"
	}
	return " to " + r.String()
}

// clusterRestoreEnded shows how an in-place restore or its resume ended.
func clusterRestoreEnded(opts *BackupRestoreOptions, p clusterrestore.Plan, rec saga.Record, err error) error {
	verdict := clusterVerdict(p, rec, err)
	if opts.JSON {
		if jerr := writeJSON(opts.IO.Out, "restore", map[string]any{"saga": rec, "outcome": verdict, "error": errString(err)}); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else if rec.ID != "" {
		fmt.Fprintln(opts.IO.Out, verdict)
	}
	return err
}

// clusterVerdict is the one-line outcome of an in-place restore saga.
func clusterVerdict(p clusterrestore.Plan, rec saga.Record, err error) string {
	switch rec.State {
	case saga.Done:
		old := "the old data directory was removed"
		var left *clusterrestore.LeftError
		switch {
		case errors.As(err, &left):
			old = "the old data directory " + p.Aside + " could not be removed: remove it by hand"
		case p.KeepOld:
			old = "the old data directory is kept in " + p.Aside
		}
		return fmt.Sprintf("restored %s in place from %s%s: %s serves the restored cluster; %s (saga %s)", p.Target, p.Snapshot.ID, recoveryWords(p.Recovery), p.Service, old, rec.ID)
	case saga.Compensated:
		return fmt.Sprintf("in-place restore of %s failed and was undone: %s serves its old data again (saga %s)", p.Target, p.Service, rec.ID)
	case saga.Failed:
		return fmt.Sprintf("in-place restore of %s failed before it changed anything (saga %s)", p.Target, rec.ID)
	case saga.NeedsAttention:
		return fmt.Sprintf("in-place restore of %s failed and putting the old data back FAILED: fix the cause above, then run homelab backup restore --resume %s (the old data directory is %s until it is put back)", p.Target, rec.ID, p.Aside)
	}
	return saga.Describe(rec)
}
