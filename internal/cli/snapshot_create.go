package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/labsnapshot"
)

// SnapshotCreateOptions are the options of homelab snapshot create.
type SnapshotCreateOptions struct {
	IO      *IOStreams
	F       *Factory
	JSON    bool
	Name    string
	Note    string
	Targets []string
	// Resume compensates the unfinished create ResumeID (empty: the only
	// one): its services run again and the lab snapshot is incomplete.
	Resume   bool
	ResumeID string
	Yes      bool
}

// NewCmdSnapshotCreate returns `homelab snapshot create`.
func NewCmdSnapshotCreate(f *Factory, runF func(*SnapshotCreateOptions) error) *cobra.Command {
	opts := &SnapshotCreateOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "create NAME [--note TEXT] [--target T]... | create --resume [SAGA]",
		Short: "Back up every target and record every version under NAME, as one journalled saga",
		Long: `Take a lab snapshot: as one journalled saga, record NAME as creating with
every service's version (from its runtime), a copy of the lab file and the
certificates' fingerprints; stop the services of the targets' stop lists
that run (each once, in stop-list order); back up every target (--target:
only those); start the services again (in reverse); mark NAME complete.
Its members (one restic snapshot per target) are kept by backup prune
while NAME exists.

A target that fails fails the whole: the services run again and NAME is
marked incomplete (never restored; its members are left to retention).
A create that was killed is reported by every command; --resume finishes
it the same way.

With --json: one "snapshot" line.

Exits 0 when NAME is complete, 1 when the create failed, 2 for bad usage
(a name taken or not allowed, an unknown target).

` + exitCodesHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if opts.Resume {
				if opts.Note != "" || len(opts.Targets) > 0 {
					return usageErr("--resume takes no --note or --target")
				}
				if len(args) == 1 {
					opts.ResumeID = args[0]
				}
			} else if len(args) != 1 {
				return usageErr("usage: homelab snapshot create NAME")
			} else {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runSnapshotCreate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Note, "note", "", "a note kept with the lab snapshot")
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "back up only this target (repeatable; default: every target)")
	cmd.Flags().BoolVar(&opts.Resume, "resume", false, "finish an interrupted create: start its services again and mark it incomplete")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "with --resume: do not ask for confirmation")
	return cmd
}

func runSnapshotCreate(ctx context.Context, opts *SnapshotCreateOptions) error {
	if opts.Resume {
		return resumeLabSnapshotSaga(ctx, opts.F, labsnapshot.KindCreate, opts.ResumeID, opts.Yes,
			"Finish the interrupted lab snapshot create (its services start again, it is marked incomplete)")
	}
	m, _, closeFn, err := labSnapshots(ctx, opts.F, newUpgradeProgress(opts.IO))
	if err != nil {
		return err
	}
	defer closeFn()
	p, err := m.PlanCreate(ctx, opts.Name, opts.Note, opts.Targets)
	if err != nil {
		return usageErr(err.Error())
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(opts.IO.ErrOut, "WARNING: %s\n", w)
	}
	keepGoingOnHangup()
	ls, rec, err := m.Create(ctx, p)
	if opts.JSON {
		writeJSON(opts.IO.Out, "snapshot", map[string]any{"snapshot": ls, "saga": rec.ID, "error": errString(err)})
		return err
	}
	if err != nil {
		if ls.Name != "" {
			fmt.Fprintf(opts.IO.Out, "%s lab snapshot %s: %s, %s\n", mark(opts.IO.StdoutTTY, false), p.Name, ls.State, sagaOutcome(rec))
		}
		return err
	}
	fmt.Fprintf(opts.IO.Out, "%s lab snapshot %s: complete, %d members, %d versions (saga %s)\n",
		mark(opts.IO.StdoutTTY, true), ls.Name, len(ls.Members), len(ls.Versions), rec.ID)
	for _, mem := range ls.Members {
		fmt.Fprintf(opts.IO.Out, "  %-16s %s  %9s  %6d files\n", mem.Target, short(mem.SnapshotID), size(mem.Bytes), mem.Files)
	}
	return nil
}
