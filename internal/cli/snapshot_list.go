package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// SnapshotListOptions are the options of homelab snapshot list.
type SnapshotListOptions struct {
	IO   *IOStreams
	F    *Factory
	JSON bool
}

// NewCmdSnapshotList returns `homelab snapshot list`.
func NewCmdSnapshotList(f *Factory, runF func(*SnapshotListOptions) error) *cobra.Command {
	opts := &SnapshotListOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Lab snapshots, newest first, with their members checked against the repositories",
		Long: `List the lab snapshots, newest first: name, time, state, note, members and
whether every member is still in its repository (each repository is
listed, not assumed) and passed a restore drill. With --json: one
"snapshot" line each, members included.

` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runSnapshotList(cmd.Context(), opts)
		},
	}
	return cmd
}

func runSnapshotList(ctx context.Context, opts *SnapshotListOptions) error {
	m, _, closeFn, err := labSnapshots(ctx, opts.F, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	all, err := m.List(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		for _, c := range all {
			if err := writeJSON(opts.IO.Out, "snapshot", c); err != nil {
				return err
			}
		}
		return nil
	}
	if len(all) == 0 {
		fmt.Fprintln(opts.IO.Out, "no lab snapshots (take one: homelab snapshot create NAME)")
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "%-32s %-19s %-10s %-7s %-8s %s\n", "NAME", "CREATED", "STATE", "MEMBERS", "DRILLED", "NOTE")
	for _, c := range all {
		members := fmt.Sprintf("%d", len(c.Members))
		if !c.Intact {
			members += " (" + fmt.Sprint(len(c.Missing())) + " MISSING)"
		}
		drilled := "no"
		if c.Drilled {
			drilled = "yes"
		}
		fmt.Fprintf(opts.IO.Out, "%-32s %-19s %-10s %-7s %-8s %s\n", c.Name, c.Created.Local().Format(time.DateTime), c.State, members, drilled, c.Note)
	}
	return nil
}
