package cli

import (
	"context"
	"fmt"
	"homelab/internal/status"

	"github.com/spf13/cobra"
)

// BackupVerifyOptions are the options of homelab backup verify.
type BackupVerifyOptions struct {
	IO      *IOStreams
	F       *Factory
	Targets []string
	All     bool
	Wait    bool
	JSON    bool
}

// NewCmdBackupVerify returns `homelab backup verify`.
func NewCmdBackupVerify(f *Factory, runF func(*BackupVerifyOptions) error) *cobra.Command {
	opts := &BackupVerifyOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "verify [target...] | --all",
		Short: "Restore drill: restore the newest snapshot into a throwaway place and run its checks",
		Long: `Run the restore drill of targets: restore the newest snapshot into a
throwaway place (a temporary directory; a database homelab_drill_* that is
always dropped), run the target's checks, and record the result and the
measured time to restore (RTO) in the catalog.

` + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			names, err := targetsOf(f, args, opts.All)
			if err != nil {
				return err
			}
			opts.Targets = names
			if runF != nil {
				return runF(opts)
			}
			return runBackupVerify(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every target of the lab")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target")
	return cmd
}

func runBackupVerify(ctx context.Context, opts *BackupVerifyOptions) error {
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
		out := m.Verify(ctx, name)
		t.add(name, out.Err)
		if opts.JSON {
			writeJSON(opts.IO.Out, "drill", map[string]any{"drill": out.Drill, "checks": out.Report.Checks, "rto_seconds": out.Drill.RTO.Seconds(), "error": errString(out.Err)})
			continue
		}
		d := out.Drill
		fmt.Fprintf(opts.IO.Out, "%s %s: drill of snapshot %s %s, RTO %s\n", mark(opts.IO.StdoutTTY, out.Err == nil), name, short(d.SnapshotID), d.Result, status.Seconds(d.RTO))
		for _, c := range out.Report.Checks {
			fmt.Fprintf(opts.IO.Out, "    %s %s", mark(opts.IO.StdoutTTY, c.OK), c.Check)
			if c.Detail != "" {
				fmt.Fprintf(opts.IO.Out, ": %s", c.Detail)
			}
			fmt.Fprintln(opts.IO.Out)
		}
		if out.Err != nil {
			fmt.Fprintf(opts.IO.Out, "    error: %v\n", out.Err)
		}
	}
	return t.err("restore drill", ctx)
}
