package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// SnapshotDeleteOptions are the options of homelab snapshot delete.
type SnapshotDeleteOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
	Name string
	Yes  bool
}

// NewCmdSnapshotDelete returns `homelab snapshot delete`.
func NewCmdSnapshotDelete(f *Factory, runF func(*SnapshotDeleteOptions) error) *cobra.Command {
	opts := &SnapshotDeleteOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Forget a lab snapshot; its members are left to retention from then on",
		Long: `Delete the lab snapshot NAME from the catalog. Its members (restic
snapshots) stay in their repositories; backup prune no longer keeps them
for NAME, so retention removes them in its time. A lab snapshot being
created is refused (finish it: homelab snapshot create --resume). Asks on a
terminal, needs --yes otherwise. With --json: one "snapshot_deleted" line.

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON, opts.Name = f.JSON, args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSnapshotDelete(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func runSnapshotDelete(ctx context.Context, opts *SnapshotDeleteOptions) error {
	m, _, closeFn, err := labSnapshots(ctx, opts.F, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("Delete lab snapshot %s (its members are left to retention)?", opts.Name)); err != nil {
		return err
	}
	ls, err := m.Delete(ctx, opts.Name)
	if err != nil {
		return noLabSnapshot(opts.Name, err)
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, "snapshot_deleted", map[string]any{"name": ls.Name, "members": ls.Members})
	}
	fmt.Fprintf(opts.IO.Out, "deleted lab snapshot %s: its %d members are left to retention\n", ls.Name, len(ls.Members))
	return nil
}
