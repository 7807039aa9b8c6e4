package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// BackupPruneOptions are the options of homelab backup prune.
type BackupPruneOptions struct {
	IO      *IOStreams
	F       *Factory
	Targets []string
	All     bool
	DryRun  bool
	Wait    bool
	JSON    bool
}

// NewCmdBackupPrune returns `homelab backup prune`.
func NewCmdBackupPrune(f *Factory, runF func(*BackupPruneOptions) error) *cobra.Command {
	opts := &BackupPruneOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "prune [target...] | --all",
		Short: "Apply retention (restic forget + prune); the newest drilled snapshot is always kept",
		Long: `Apply each target's retention: restic forget --dry-run scoped by the target's
tags decides, homelab keeps in addition the newest snapshot that passed a
restore drill, the restore points of unfinished upgrades and lab
snapshots, and every member of a lab snapshot (homelab snapshot) that is
complete or being created, then forgets exactly the rest and runs restic
prune. --dry-run shows what would go; both say which lab snapshot holds
each kept member.

` + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			names, err := targetsOf(f, args, opts.All || len(args) == 0)
			if err != nil {
				return err
			}
			opts.Targets = names
			if runF != nil {
				return runF(opts)
			}
			return runBackupPrune(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every target of the lab (the default)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would be removed and stop")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target or locked repository")
	return cmd
}

func runBackupPrune(ctx context.Context, opts *BackupPruneOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
	var t tally
	for _, name := range opts.Targets {
		if ctx.Err() != nil {
			break
		}
		plan, err := m.Prune(ctx, name, opts.DryRun)
		t.add(name, err)
		if opts.JSON {
			writeJSON(opts.IO.Out, "prune", map[string]any{"plan": plan, "dry_run": opts.DryRun, "error": errString(err)})
			continue
		}
		if err != nil {
			fmt.Fprintf(opts.IO.Out, "%s %s: prune: %v\n", mark(opts.IO.StdoutTTY, false), name, err)
			continue
		}
		verb := "removed"
		if opts.DryRun {
			verb = "would remove"
		}
		fmt.Fprintf(opts.IO.Out, "%s %s: keep %d, %s %d", mark(opts.IO.StdoutTTY, true), name, len(plan.Keep)+len(plan.Protected), verb, len(plan.Remove))
		if len(plan.Protected) > 0 && plan.HeldBy[plan.Protected[0].ID] == nil {
			fmt.Fprintf(opts.IO.Out, " (kept %s: newest snapshot that passed a restore drill)", short(plan.Protected[0].ID))
		}
		fmt.Fprintln(opts.IO.Out)
		for _, s := range slices.Concat(plan.Keep, plan.Protected) {
			if names := plan.HeldBy[s.ID]; names != nil {
				fmt.Fprintf(opts.IO.Out, "    kept %s %s: held by lab snapshot %s\n", s.ShortID, s.Time.Local().Format(time.DateTime), strings.Join(names, ", "))
			}
		}
		for _, s := range plan.Remove {
			fmt.Fprintf(opts.IO.Out, "    %s %s %s\n", verb, s.ShortID, s.Time.Local().Format(time.DateTime))
		}
	}
	return t.err("prune", ctx)
}
