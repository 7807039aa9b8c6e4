package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/lab"
	"homelab/internal/status"
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
	var windows []string
	for _, name := range opts.Targets {
		if w, ok, err := recoverableWindow(ctx, m, name); err != nil {
			failed = errors.Join(failed, err)
		} else if ok && opts.JSON {
			writeJSON(opts.IO.Out, "window", map[string]any{"target": name, "window": w})
		} else if ok && w.Backups > 0 {
			windows = append(windows, fmt.Sprintf("%s: recoverable window: from %s (oldest backup's start) to WAL segment %s (newest archived)",
				name, w.From.Local().Format("2006-01-02 15:04:05"), w.WALTo))
		}
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
	for _, w := range windows {
		fmt.Fprintln(opts.IO.Out, w)
	}
	return failed
}

// recoverableWindow is the window of a pgbackrest target (ok false for
// other targets).
func recoverableWindow(ctx context.Context, m *backup.Manager, name string) (pgbackrest.Window, bool, error) {
	if b, err := m.Lab.Backup(name); err != nil || b.Provider != lab.ProviderPgBackRest {
		return pgbackrest.Window{}, false, nil
	}
	t, p, err := m.Target(ctx, name)
	if err != nil {
		return pgbackrest.Window{}, false, err
	}
	pp, ok := p.(*pgbackrest.Provider)
	if !ok {
		return pgbackrest.Window{}, false, nil
	}
	w, err := pp.Window(ctx, t)
	return w, err == nil, err
}
