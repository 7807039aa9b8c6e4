package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/lab"
)

// NewCmdBackup returns `homelab backup`.
func NewCmdBackup(f *Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Back up, list, restore, drill, prune and check"}
	cmd.AddCommand(NewCmdBackupRun(f, nil), NewCmdBackupList(f, nil), NewCmdBackupRestore(f, nil),
		NewCmdBackupVerify(f, nil), NewCmdBackupPrune(f, nil), NewCmdBackupCheck(f, nil))
	return cmd
}

// targetsOf returns the named targets, or all with --all.
func targetsOf(f *Factory, args []string, all bool) ([]string, error) {
	l, err := f.Lab()
	if err != nil {
		return nil, err
	}
	if all {
		if len(args) > 0 {
			return nil, usageErr("name targets or pass --all, not both")
		}
		return l.BackupNames(), nil
	}
	if len(args) == 0 {
		return nil, usageErr(fmt.Sprintf("name a target or pass --all (targets: %v)", l.BackupNames()))
	}
	for _, a := range args {
		if _, err := l.Backup(a); err != nil {
			return nil, usageErr(err.Error())
		}
	}
	return args, nil
}

// tally combines per-target outcomes into the command's error: any failure
// gives exit 1, otherwise any warning gives exit 3.
type tally struct{ failed, warned []string }

func (t *tally) add(name string, err error) {
	var we *backup.WarningError
	switch {
	case err == nil:
	case errors.As(err, &we):
		t.warned = append(t.warned, name)
	default:
		t.failed = append(t.failed, name)
	}
}

func (t *tally) err(what string, ctx context.Context) error {
	switch {
	case ctx.Err() != nil:
		return &silentError{err: ctx.Err(), code: ExitInterrupted}
	case len(t.failed) > 0:
		return &silentError{err: fmt.Errorf("%s failed: %v", what, t.failed), code: ExitFailed}
	case len(t.warned) > 0:
		return &silentError{err: fmt.Errorf("%s done with warnings: %v", what, t.warned), code: ExitWarnings}
	}
	return nil
}

// BackupRunOptions are the options of homelab backup run.
type BackupRunOptions struct {
	IO      *IOStreams
	F       *Factory
	Targets []string
	All     bool
	Wait    bool
	JSON    bool
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
			return backupRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every target of the lab")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target or locked repository instead of failing")
	return cmd
}

func backupRun(ctx context.Context, opts *BackupRunOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
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
			fmt.Fprintf(opts.IO.Out, "%s %s: backup %s: %v\n", mark(opts.IO.StderrTTY, false), name, r.Result, rep.Err)
			writeServiceStops(opts.IO.Out, rep.Services)
			continue
		}
		m := mark(opts.IO.StderrTTY, rep.Err == nil)
		if rep.Err != nil {
			m = "WARNING"
			if opts.IO.StderrTTY {
				m = "!"
			}
		}
		fmt.Fprintf(opts.IO.Out, "%s %s: snapshot %s, %d files, %s (added %s) in %s\n", m, name,
			short(r.SnapshotID), r.Files, size(r.Bytes), size(r.BytesAdded), seconds(r.End.Sub(r.Start)))
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
			fmt.Fprintf(w, "  service %s stopped for the copy, running again after %s\n", s.Service, seconds(s.Down))
		case s.Error != "":
			fmt.Fprintf(w, "  service %s stopped for the copy and NOT started again: %s\n", s.Service, s.Error)
		default:
			fmt.Fprintf(w, "  service %s stopped for the copy and NOT started again\n", s.Service)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

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
			return backupList(cmd.Context(), opts)
		},
	}
}

func backupList(ctx context.Context, opts *BackupListOptions) error {
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
				drill = fmt.Sprintf("%s %s (RTO %s)", r.Drill.Result, r.Drill.End.Local().Format("2006-01-02 15:04"), seconds(r.Drill.RTO))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", name, r.ShortID, r.Time.Local().Format("2006-01-02 15:04:05"), r.Files, size(r.Bytes), drill)
		}
	}
	tw.Flush()
	return failed
}

// BackupRestoreOptions are the options of homelab backup restore.
type BackupRestoreOptions struct {
	IO       *IOStreams
	F        *Factory
	Snapshot string
	Target   string
	Dest     backup.Destination
	Yes      bool
	DryRun   bool
	Wait     bool
	JSON     bool
}

// NewCmdBackupRestore returns `homelab backup restore`.
func NewCmdBackupRestore(f *Factory, runF func(*BackupRestoreOptions) error) *cobra.Command {
	opts := &BackupRestoreOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "restore <snapshot|latest> [--target T] [--to PATH | --database DB [--replace] | --in-place]",
		Short: "Restore a snapshot: files to a path, a dump into a database, or back in place",
		Long: `Restore a snapshot. Files go under --to PATH (a file backed up as /srv/x is
written to PATH/srv/x, and verified). A database dump goes into --database DB:
a new database is created; an existing one is replaced only with --replace,
by restoring into a staging database first and swapping it in when the
restore succeeded.

--in-place puts the target's data back where it was backed up from,
replacing what is there (to roll back). Files: each source path is restored
and verified beside itself, then all are swapped in, so that they hold
exactly the snapshot: files added since are gone, files deleted since are
back, and files the target's exclude patterns kept out of the backup are
gone too. A path missing from the snapshot or a failed restore changes
nothing. A database: restored into a staging database and swapped in for the
source database, ending its sessions (created if missing).

Asks for confirmation on a terminal; needs --yes otherwise.

` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Snapshot, opts.JSON = args[0], f.JSON
			switch {
			case opts.Dest.InPlace && (opts.Dest.Path != "" || opts.Dest.Database != ""):
				return usageErr("--in-place restores to the target's source: not with --to or --database")
			case opts.Dest.InPlace:
			case opts.Dest.Path == "" && opts.Dest.Database == "":
				return usageErr("say where to restore: --to PATH, --database DB or --in-place")
			case opts.Dest.Path != "" && opts.Dest.Database != "":
				return usageErr("--to and --database exclude each other")
			}
			if runF != nil {
				return runF(opts)
			}
			return backupRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Target, "target", "", "the snapshot's target (found from the snapshot when omitted)")
	cmd.Flags().StringVar(&opts.Dest.Path, "to", "", "directory to restore files under")
	cmd.Flags().StringVar(&opts.Dest.Database, "database", "", "database to restore a dump into")
	cmd.Flags().BoolVar(&opts.Dest.Replace, "replace", false, "replace an existing database (after a successful restore)")
	cmd.Flags().BoolVar(&opts.Dest.InPlace, "in-place", false, "restore the target's data where it was backed up from, replacing it (after a successful restore)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and stop")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target")
	return cmd
}

func backupRestore(ctx context.Context, opts *BackupRestoreOptions) error {
	m, closeFn, err := opts.F.Manager(ctx, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
	target := opts.Target
	if target == "" {
		if target, err = m.FindTarget(ctx, opts.Snapshot); err != nil {
			return usageErr(err.Error())
		}
	} else if _, err := m.Lab.Backup(target); err != nil {
		return usageErr(err.Error())
	}
	plan, err := m.PlanRestore(ctx, target, opts.Snapshot, opts.Dest)
	if err != nil {
		if errors.Is(err, backup.ErrNoSnapshot) {
			return err
		}
		return usageErr(err.Error())
	}
	where := "directory " + plan.Dest.Path
	switch {
	case plan.Dest.InPlace && plan.Provider == lab.ProviderPostgres:
		where = "database " + strings.Join(plan.Replaces, ", ") + " in place (replacing it after a successful restore)"
	case plan.Dest.InPlace:
		where = strings.Join(plan.Replaces, ", ") + " in place (replacing them after a verified restore)"
	case plan.Dest.Database != "":
		where = "database " + plan.Dest.Database
		if plan.Dest.Replace {
			where += " (replacing it if it exists)"
		}
	}
	desc := fmt.Sprintf("restore %s snapshot %s (%s, %s) into %s", target, short(plan.Snapshot.ID), plan.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), size(plan.Snapshot.Bytes), where)
	if opts.JSON {
		writeJSON(opts.IO.Out, "restore_plan", plan)
	} else {
		fmt.Fprintln(opts.IO.Out, "plan: "+desc)
	}
	if opts.DryRun {
		return nil
	}
	if err := confirm(opts.IO, opts.Yes, desc+"?"); err != nil {
		return err
	}
	pr := newProgress(opts.IO.ErrOut, opts.IO.StderrTTY)
	m.Progress = pr.Update
	run, err := m.Restore(ctx, plan)
	pr.Done()
	if opts.JSON {
		writeJSON(opts.IO.Out, "restore", map[string]any{"run": run, "error": errString(err)})
	} else if err == nil {
		fmt.Fprintf(opts.IO.Out, "%s restored %s into %s in %s\n", mark(opts.IO.StderrTTY, true), short(plan.Snapshot.ID), where, seconds(run.End.Sub(run.Start)))
	}
	return err
}

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
			return backupVerify(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every target of the lab")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target")
	return cmd
}

func backupVerify(ctx context.Context, opts *BackupVerifyOptions) error {
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
		fmt.Fprintf(opts.IO.Out, "%s %s: drill of snapshot %s %s, RTO %s\n", mark(opts.IO.StderrTTY, out.Err == nil), name, short(d.SnapshotID), d.Result, seconds(d.RTO))
		for _, c := range out.Report.Checks {
			fmt.Fprintf(opts.IO.Out, "    %s %s", mark(opts.IO.StderrTTY, c.OK), c.Check)
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
restore drill, then forgets exactly the rest and runs restic prune.
--dry-run shows what would go.

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
			return backupPrune(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every target of the lab (the default)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would be removed and stop")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target or locked repository")
	return cmd
}

func backupPrune(ctx context.Context, opts *BackupPruneOptions) error {
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
			fmt.Fprintf(opts.IO.Out, "%s %s: prune: %v\n", mark(opts.IO.StderrTTY, false), name, err)
			continue
		}
		verb := "removed"
		if opts.DryRun {
			verb = "would remove"
		}
		fmt.Fprintf(opts.IO.Out, "%s %s: keep %d, %s %d", mark(opts.IO.StderrTTY, true), name, len(plan.Keep)+len(plan.Protected), verb, len(plan.Remove))
		if len(plan.Protected) > 0 {
			fmt.Fprintf(opts.IO.Out, " (kept %s: newest snapshot that passed a restore drill)", short(plan.Protected[0].ID))
		}
		fmt.Fprintln(opts.IO.Out)
		for _, s := range plan.Remove {
			fmt.Fprintf(opts.IO.Out, "    %s %s %s\n", verb, s.ShortID, s.Time.Local().Format(time.DateTime))
		}
	}
	return t.err("prune", ctx)
}

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
			return backupCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ReadDataSubset, "read-data-subset", "5%", `part of the pack data to read and verify ("5%", "1/10", "500M"; "" reads none)`)
	return cmd
}

func backupCheck(ctx context.Context, opts *BackupCheckOptions) error {
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
			fmt.Fprintf(opts.IO.Out, "%s repository %s: check failed: %v\n", mark(opts.IO.StderrTTY, false), r, rep.Err)
			continue
		}
		fmt.Fprintf(opts.IO.Out, "%s repository %s: no errors (read %s of the data) in %s\n", mark(opts.IO.StderrTTY, true), r, opts.ReadDataSubset, seconds(rep.Run.End.Sub(rep.Run.Start)))
	}
	return t.err("check", ctx)
}
