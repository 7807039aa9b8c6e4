package cli

import (
	"context"
	"fmt"
	"slices"

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
	// Targets are pgbackrest targets whose own repository is checked
	// (pgbackrest verify).
	Targets []string
}

// NewCmdBackupCheck returns `homelab backup check`.
func NewCmdBackupCheck(f *Factory, runF func(*BackupCheckOptions) error) *cobra.Command {
	opts := &BackupCheckOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "check [repository|pgbackrest-target...]",
		Short: "Check repository integrity (restic check --read-data-subset)",
		Long:  "Check the integrity of the named repositories (default: all): restic check, reading --read-data-subset of the pack data; and the repositories of pgbackrest targets (named, or all by default): pgbackrest check proves that WAL archiving reaches the repository (it names the postgresql.conf lines when it does not), then pgbackrest verify reads every backup file and archived WAL segment and compares its checksum.\n\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			l, err := f.Lab()
			if err != nil {
				return err
			}
			opts.Repositories = args
			if len(args) == 0 {
				opts.Repositories = repoNames(l)
				opts.Targets = pgbackrestTargets(l.Backups)
			}
			pgbr := pgbackrestTargets(l.Backups)
			for _, r := range args {
				if slices.Contains(pgbr, r) {
					opts.Targets = append(opts.Targets, r)
					opts.Repositories = slices.DeleteFunc(opts.Repositories, func(s string) bool { return s == r })
				} else if _, ok := l.Repositories[r]; !ok {
					return usageErr(fmt.Sprintf("unknown repository %q (known: %v; pgbackrest targets: %v)", r, repoNames(l), pgbr))
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
	for _, name := range opts.Targets {
		rep := m.CheckTarget(ctx, name)
		t.add(rep.Repository, rep.Err)
		if opts.JSON {
			writeJSON(opts.IO.Out, "check", map[string]any{"repository": rep.Repository, "run": rep.Run, "error": errString(rep.Err)})
			continue
		}
		if rep.Err != nil {
			fmt.Fprintf(opts.IO.Out, "%s %s: check failed: %v\n", mark(opts.IO.StdoutTTY, false), rep.Repository, rep.Err)
			continue
		}
		fmt.Fprintf(opts.IO.Out, "%s %s: pgbackrest check and verify: no errors in %s\n", mark(opts.IO.StdoutTTY, true), rep.Repository, status.Seconds(rep.Run.End.Sub(rep.Run.Start)))
	}
	return t.err("check", ctx)
}
