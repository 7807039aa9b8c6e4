package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/backup/pgbackrest"
)

// BackupSetupOptions are the options of homelab backup setup.
type BackupSetupOptions struct {
	IO      *IOStreams
	F       *Factory
	Targets []string
	All     bool
	JSON    bool
}

// NewCmdBackupSetup returns `homelab backup setup`.
func NewCmdBackupSetup(f *Factory, runF func(*BackupSetupOptions) error) *cobra.Command {
	opts := &BackupSetupOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "setup [target...] | --all",
		Short: "Set up targets that keep their own repository (pgbackrest: stanza-create and check)",
		Long: `Set up pgbackrest targets: write homelab's pgBackRest configuration
(state_dir/pgbackrest/<target>/pgbackrest.conf, 0600), create the stanza
(pgbackrest stanza-create, idempotent) and run pgbackrest check, which proves
that a WAL segment reaches the repository. When WAL archiving is not
configured it prints the postgresql.conf lines to add and fails. With --all,
every pgbackrest target.

` + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if opts.All {
				l, err := f.Lab()
				if err != nil {
					return err
				}
				if len(args) > 0 {
					return usageErr("name targets or pass --all, not both")
				}
				args = pgbackrestTargets(l.Backups)
			} else if _, err := targetsOf(f, args, false); err != nil {
				return err
			}
			opts.Targets = args
			if runF != nil {
				return runF(opts)
			}
			return runBackupSetup(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every pgbackrest target of the lab")
	return cmd
}

func runBackupSetup(ctx context.Context, opts *BackupSetupOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, false)
	if err != nil {
		return err
	}
	defer closeFn()
	var t tally
	for _, name := range opts.Targets {
		err := m.Setup(ctx, name)
		t.add(name, err)
		var ae *pgbackrest.ArchiveError
		lines := ""
		if errors.As(err, &ae) {
			lines = ae.Lines
		}
		if opts.JSON {
			writeJSON(opts.IO.Out, "setup", map[string]any{"target": name, "error": errString(err), "postgresql_conf": lines})
			continue
		}
		if err != nil {
			fmt.Fprintf(opts.IO.Out, "%s %s: setup failed: %v\n", mark(opts.IO.StdoutTTY, false), name, err)
			if lines != "" {
				fmt.Fprintf(opts.IO.Out, "add to postgresql.conf (then restart PostgreSQL):\n%s", lines)
			}
			continue
		}
		fmt.Fprintf(opts.IO.Out, "%s %s: stanza ready, WAL reaches the repository\n", mark(opts.IO.StdoutTTY, true), name)
	}
	return t.err("setup", ctx)
}
