package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"homelab/internal/catalog"
	"homelab/internal/labsnapshot"
	"homelab/internal/saga"
)

// SnapshotRestoreOptions are the options of homelab snapshot restore.
type SnapshotRestoreOptions struct {
	IO     *IOStreams
	F      *Factory
	JSON   bool
	Name   string
	DryRun bool
	Yes    bool
	// Resume compensates the unfinished restore ResumeID (empty: the
	// only one): the lab goes back to its pre-restore state.
	Resume   bool
	ResumeID string
}

// NewCmdSnapshotRestore returns `homelab snapshot restore`.
func NewCmdSnapshotRestore(f *Factory, runF func(*SnapshotRestoreOptions) error) *cobra.Command {
	opts := &SnapshotRestoreOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "restore NAME [--dry-run] | restore --resume [SAGA]",
		Short: "Put the whole lab back as the lab snapshot NAME has it: data, files and versions",
		Long: `Restore the lab snapshot NAME. The plan comes first: every target and its
member, every version change, what stops; it is refused before anything
stops when NAME is not complete or a member is gone from its repository
(each repository is listed), and while another change of the lab (an
upgrade, a deploy, a lab snapshot create or restore) is unfinished:
finish that first (its --resume). --dry-run stops after the plan; otherwise it
asks on a terminal, needs --yes off one.

Then, as one journalled saga: stop the services (the targets' stop lists
and the services whose version changes), take a restore point of the
current state (a lab snapshot named pre-restore-NAME-TIME), restore every
member in place, set each service back to its recorded version, start the
services (reverse stop order) and wait until each is healthy (its
upgrade.healthy_within, default 2m). If anything fails, the restore point
is restored the same way, so the lab ends as it was before the restore.
A restore that was killed is reported by every command; --resume puts the
lab back the same way.

With --json: one "snapshot_restore_plan" line, then one
"snapshot_restore_result" line.

Exits 0 when restored, 1 when refused or failed (the lab put back as it
was, or needing attention), 2 for bad usage or an unknown NAME.

` + exitCodesHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if opts.Resume {
				if opts.DryRun {
					return usageErr("--resume takes no --dry-run")
				}
				if len(args) == 1 {
					opts.ResumeID = args[0]
				}
			} else if len(args) != 1 {
				return usageErr("usage: homelab snapshot restore NAME")
			} else {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runSnapshotRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.Resume, "resume", false, "finish an interrupted restore: put the lab back as it was before it")
	return cmd
}

func runSnapshotRestore(ctx context.Context, opts *SnapshotRestoreOptions) error {
	if opts.Resume {
		return resumeLabSnapshotSaga(ctx, opts.F, labsnapshot.KindRestore, opts.ResumeID, opts.Yes,
			"Undo the interrupted lab snapshot restore (the lab goes back to its restore point)")
	}
	m, _, closeFn, err := labSnapshots(ctx, opts.F, newUpgradeProgress(opts.IO))
	if err != nil {
		return err
	}
	defer closeFn()
	plan, err := m.PlanRestore(ctx, opts.Name)
	if err != nil {
		return noLabSnapshot(opts.Name, err)
	}
	if opts.JSON {
		if err := writeJSON(opts.IO.Out, "snapshot_restore_plan", plan); err != nil {
			return err
		}
	} else {
		renderRestorePlan(opts.IO.Out, plan)
	}
	if opts.DryRun {
		return nil
	}
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Restore the lab to lab snapshot %s?", plan.Name)); err != nil {
		return err
	}
	keepGoingOnHangup()
	rec, colors, err := m.Restore(ctx, plan)
	verdict := restoreVerdict(plan, rec)
	if opts.JSON {
		if jerr := writeJSON(opts.IO.Out, "snapshot_restore_result", map[string]any{"saga": rec, "outcome": verdict, "colors": colors}); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else if rec.ID != "" {
		fmt.Fprintln(opts.IO.Out, verdict)
		if rec.State == saga.Done {
			for _, c := range colors {
				fmt.Fprintln(opts.IO.Out, colorLine(c, true))
			}
		}
	}
	return err
}

func renderRestorePlan(w io.Writer, p labsnapshot.RestorePlan) {
	fmt.Fprintf(w, "Restore lab snapshot %s\n", p.Name)
	fmt.Fprintf(w, "  restore point first: lab snapshot %s\n", p.PreRestore)
	for _, mem := range p.Members {
		fmt.Fprintf(w, "  restore %-16s from restic snapshot %s in place\n", mem.Target, short(mem.SnapshotID))
	}
	for _, v := range p.Versions {
		fmt.Fprintf(w, "  set %s from %s to %s\n", v.Service, v.From, v.To)
	}
	if len(p.Versions) == 0 {
		fmt.Fprintln(w, "  versions: as recorded already")
	}
	stops := "nothing"
	if len(p.Services) > 0 {
		stops = strings.Join(p.Services, ", ") + " (those running; started again in reverse, then health gates)"
	}
	fmt.Fprintf(w, "  stops: %s\n", stops)
	if p.LabFileChanged {
		fmt.Fprintf(w, "  note: the lab file changed since %s; the restore runs with it as it is now (see homelab snapshot show %s --lab-file)\n", p.Name, p.Name)
	}
	for _, c := range p.Colors {
		fmt.Fprintln(w, colorLine(c, false))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "  WARNING: %s\n", warn)
	}
	if len(p.CertsChanged) > 0 {
		fmt.Fprintf(w, "  note: certificates changed since %s: %s; a restore does not put certificates back\n", p.Name, strings.Join(p.CertsChanged, ", "))
	}
}

// colorLine says which color serves a blue/green service after a restore:
// as planned (done false) or as it turned out.
func colorLine(c labsnapshot.ColorPlan, done bool) string {
	side := func(s catalog.ServingColor) string {
		if s.Color == "" {
			return "none"
		}
		return s.Color + " (" + s.Version + ")"
	}
	switch {
	case c.Flip && done:
		return fmt.Sprintf("  %s: flipped back to %s, as recorded (a fast rollback)", c.Service, side(c.Recorded))
	case c.Flip:
		return fmt.Sprintf("  %s: serves %s, as recorded: flipped back from %s after the restore (a fast rollback)", c.Service, side(c.Recorded), side(c.Serving))
	case c.Why == "":
		return fmt.Sprintf("  %s: serves %s, as recorded", c.Service, side(c.Serving))
	}
	return fmt.Sprintf("  %s: %s keeps serving, not the recorded %s: %s", c.Service, side(c.Serving), side(c.Recorded), c.Why)
}

// restoreVerdict is the one-line outcome of a restore saga.
func restoreVerdict(p labsnapshot.RestorePlan, rec saga.Record) string {
	switch rec.State {
	case saga.Done:
		return fmt.Sprintf("restored lab snapshot %s (saga %s); the state before it is lab snapshot %s", p.Name, rec.ID, p.PreRestore)
	case saga.Compensated:
		if !p.Changed(rec) {
			return fmt.Sprintf("restore of lab snapshot %s failed before it changed anything; what it stopped runs again (saga %s)", p.Name, rec.ID)
		}
		return fmt.Sprintf("restore of lab snapshot %s failed and was undone: the lab is as it was before it (restored from %s) (saga %s)", p.Name, p.PreRestore, rec.ID)
	case saga.Failed:
		return fmt.Sprintf("restore of lab snapshot %s failed before it changed anything (saga %s)", p.Name, rec.ID)
	case saga.NeedsAttention:
		return fmt.Sprintf("restore of lab snapshot %s failed and putting the lab back FAILED: fix the cause above, then run homelab snapshot restore --resume %s (lab snapshot %s holds the state before it)", p.Name, rec.ID, p.PreRestore)
	}
	return saga.Describe(rec)
}
