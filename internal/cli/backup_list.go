package cli

import (
	"context"
	"errors"
	"fmt"
	"homelab/internal/status"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// BackupListOptions are the options of homelab backup list.
type BackupListOptions struct {
	IO      *IOStreams
	F       *Factory
	Targets []string
	JSON    bool
}

// NewCmdBackupList returns `homelab backup list`.
func NewCmdBackupList(f *Factory, runF func(*BackupListOptions) error) *cobra.Command {
	opts := &BackupListOptions{IO: f.IO, F: f}
	return &cobra.Command{
		Use:   "list [target...]",
		Short: "List snapshots with time, size and restore-drill state",
		Long:  "List the snapshots of the named targets (default: all) with time, size and restore-drill state.\n\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			names, err := targetsOf(f, args, len(args) == 0)
			if err != nil {
				return err
			}
			opts.Targets = names
			if runF != nil {
				return runF(opts)
			}
			return runBackupList(cmd.Context(), opts)
		},
	}
}

func runBackupList(ctx context.Context, opts *BackupListOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, false)
	if err != nil {
		return err
	}
	defer closeFn()
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	if !opts.JSON {
		fmt.Fprintln(tw, "TARGET\tSNAPSHOT\tTIME\tFILES\tSIZE\tDRILL")
	}
	var failed error
	for _, name := range opts.Targets {
		rows, err := m.List(ctx, name)
		if err != nil {
			failed = errors.Join(failed, err)
			continue
		}
		for _, r := range rows {
			if opts.JSON {
				writeJSON(opts.IO.Out, "snapshot", r)
				continue
			}
			drill := "never"
			if r.Drill != nil {
				drill = fmt.Sprintf("%s %s (RTO %s)", r.Drill.Result, r.Drill.End.Local().Format("2006-01-02 15:04"), status.Seconds(r.Drill.RTO))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", name, r.ShortID, r.Time.Local().Format("2006-01-02 15:04:05"), r.Files, size(r.Bytes), drill)
		}
	}
	tw.Flush()
	return failed
}
