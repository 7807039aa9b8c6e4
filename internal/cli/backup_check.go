package cli

import (
	"context"
	"fmt"
	"homelab/internal/status"

	"github.com/spf13/cobra"
)

// BackupCheckOptions are the options of homelab backup check.
type BackupCheckOptions struct {
	IO             *IOStreams
	F              *Factory
	Repositories   []string
	ReadDataSubset string
	JSON           bool
}

// NewCmdBackupCheck returns `homelab backup check`.
func NewCmdBackupCheck(f *Factory, runF func(*BackupCheckOptions) error) *cobra.Command {
	opts := &BackupCheckOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "check [repository...]",
		Short: "Check repository integrity (restic check --read-data-subset)",
		Long:  "Check the integrity of the named repositories (default: all): restic check, reading --read-data-subset of the pack data.\n\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			l, err := f.Lab()
			if err != nil {
				return err
			}
			opts.Repositories = args
			if len(args) == 0 {
				opts.Repositories = repoNames(l)
			}
			for _, r := range opts.Repositories {
				if _, ok := l.Repositories[r]; !ok {
					return usageErr(fmt.Sprintf("unknown repository %q (known: %v)", r, repoNames(l)))
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return runBackupCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ReadDataSubset, "read-data-subset", "5%", `part of the pack data to read and verify ("5%", "1/10", "500M"; "" reads none)`)
	return cmd
}

func runBackupCheck(ctx context.Context, opts *BackupCheckOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, false)
	if err != nil {
		return err
	}
	defer closeFn()
	var t tally
	for _, r := range opts.Repositories {
		rep := m.Check(ctx, r, opts.ReadDataSubset)
		t.add(r, rep.Err)
		if opts.JSON {
			writeJSON(opts.IO.Out, "check", map[string]any{"repository": r, "run": rep.Run, "summary": rep.Summary, "error": errString(rep.Err)})
			continue
		}
		if rep.Err != nil {
			fmt.Fprintf(opts.IO.Out, "%s repository %s: check failed: %v\n", mark(opts.IO.StdoutTTY, false), r, rep.Err)
			continue
		}
		fmt.Fprintf(opts.IO.Out, "%s repository %s: no errors (read %s of the data) in %s\n", mark(opts.IO.StdoutTTY, true), r, opts.ReadDataSubset, status.Seconds(rep.Run.End.Sub(rep.Run.Start)))
	}
	return t.err("check", ctx)
}
