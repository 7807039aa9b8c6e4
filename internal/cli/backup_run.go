package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// BackupRunOptions are the options of homelab backup run.
type BackupRunOptions struct {
	IO      *IOStreams
	F       *Factory
	Targets []string
	All     bool
	Wait    bool
	JSON    bool
	// Type is a pgbackrest backup type (full, diff, incr); empty: due.
	Type string
}

// NewCmdBackupRun returns `homelab backup run`.
func NewCmdBackupRun(f *Factory, runF func(*BackupRunOptions) error) *cobra.Command {
	opts := &BackupRunOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "run [target...] | --all",
		Short: "Back up targets now",
		Long:  "Back up the named targets (or --all) now, each as a restic snapshot tagged homelab, target:<name>, run:<id>.\nA target being backed up by another homelab process is busy: the command fails, or waits with --wait.\n\n" + exitCodesHelp,
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
			return runBackupRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every target of the lab")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target or locked repository instead of failing")
	cmd.Flags().StringVar(&opts.Type, "type", "", "pgbackrest targets: full, diff or incr (default: the type due by the target's schedules)")
	return cmd
}

func runBackupRun(ctx context.Context, opts *BackupRunOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
	if opts.Type != "" {
		if opts.Type != "full" && opts.Type != "diff" && opts.Type != "incr" {
			return usageErr(fmt.Sprintf("--type %q: full, diff or incr", opts.Type))
		}
		for _, name := range opts.Targets {
			if b, err := m.Lab.Backup(name); err == nil && b.Provider != lab.ProviderPgBackRest {
				return usageErr(fmt.Sprintf("--type is for pgbackrest targets; %s is a %s target", name, b.Provider))
			}
		}
	}
	m.BackupType = opts.Type
	pr := newProgress(opts.IO.ErrOut, opts.IO.StderrTTY)
	m.Progress = pr.Update
	var t tally
	for _, name := range opts.Targets {
		if ctx.Err() != nil {
			break
		}
		rep := m.Backup(ctx, name)
		pr.Done()
		t.add(name, rep.Err)
		if opts.JSON {
			writeJSON(opts.IO.Out, "backup", map[string]any{"run": rep.Run, "hooks": rep.Hooks, "services": rep.Services, "warnings": rep.Warnings, "error": errString(rep.Err)})
			continue
		}
		r := rep.Run
		// A failed run may still have saved a snapshot (a service of its
		// stop list did not start again): it is a failure all the same.
		if rep.Err != nil && r.Result != catalog.ResultPartial && (r.SnapshotID == "" || r.Result == catalog.ResultFailed) {
			fmt.Fprintf(opts.IO.Out, "%s %s: backup %s: %v\n", mark(opts.IO.StdoutTTY, false), name, r.Result, rep.Err)
			writeServiceStops(opts.IO.Out, rep.Services)
			continue
		}
		m := mark(opts.IO.StdoutTTY, rep.Err == nil)
		if rep.Err != nil {
			m = "WARNING"
			if opts.IO.StdoutTTY {
				m = "!"
			}
		}
		fmt.Fprintf(opts.IO.Out, "%s %s: snapshot %s, %d files, %s (added %s) in %s\n", m, name,
			short(r.SnapshotID), r.Files, size(r.Bytes), size(r.BytesAdded), status.Seconds(r.End.Sub(r.Start)))
		writeServiceStops(opts.IO.Out, rep.Services)
		for _, w := range rep.Warnings {
			fmt.Fprintf(opts.IO.Out, "  warning: %s\n", w)
		}
	}
	return t.err("backup", ctx)
}

// writeServiceStops says what a backup did to the services of its stop
// list, one line each.
func writeServiceStops(w io.Writer, stops []backup.ServiceStop) {
	for _, s := range stops {
		switch {
		case !s.Stopped:
			fmt.Fprintf(w, "  service %s was %s before the backup: left so\n", s.Service, s.Was)
		case s.Restarted:
			fmt.Fprintf(w, "  service %s stopped for the copy, running again after %s\n", s.Service, status.Seconds(s.Down))
		case s.Error != "":
			fmt.Fprintf(w, "  service %s stopped for the copy and NOT started again: %s\n", s.Service, s.Error)
		default:
			fmt.Fprintf(w, "  service %s stopped for the copy and NOT started again\n", s.Service)
		}
	}
}
