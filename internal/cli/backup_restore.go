package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"homelab/internal/backup"
	"homelab/internal/lab"
	"homelab/internal/status"
)

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
	// KeepOld (pgbackrest --in-place) keeps the old data directory once
	// the restored cluster is healthy.
	KeepOld bool
	// Resume finishes the interrupted in-place restore of a pgbackrest
	// cluster ResumeID (empty: the only one).
	Resume   bool
	ResumeID string
}

// NewCmdBackupRestore returns `homelab backup restore`.
func NewCmdBackupRestore(f *Factory, runF func(*BackupRestoreOptions) error) *cobra.Command {
	opts := &BackupRestoreOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "restore <snapshot|latest> [--target T] [--to PATH | --database DB [--replace] | --to-bucket B [--delete] | --in-place] | restore --resume [SAGA]",
		Short: "Restore a snapshot: files to a path, a dump into a database, a bucket into a bucket, or back in place",
		Long: `Restore a snapshot. Files go under --to PATH (a file backed up as /srv/x is
written to PATH/srv/x) and are verified: restic restore --verify reads every
restored file back and compares it with the snapshot, which costs about as
much again as the restore; --no-verify skips that. A database dump goes into --database DB:
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

An s3-mirror snapshot goes into --to-bucket B on the source's endpoint
(created if missing), every object under its source key with its content
type and user metadata, each copy checked against the manifest's size and
MD5. B may be the source bucket itself (as --in-place does): that asks for
confirmation. Objects of B that are not in the snapshot are left alone
unless --delete is given (as restic restore --delete).

A pgbackrest target restores into a new data directory --to DIR, to the end
of the archived WAL or to a point in time (--time, --lsn, --xid or --name;
latest with --time takes the newest backup that ended before it), or with
--immediate only to the end of the backup set itself (the data exactly as
backed up, none of the WAL archived after it replayed), and with
--port starts it there on 127.0.0.1, promoted, for you to look at (stop it
with pg_ctl -D DIR stop). Its archive_mode is off.

A pgbackrest target restores --in-place (to the same recovery targets) when
its pgbackrest.cluster.service names the service that runs the cluster, as
one journalled saga: stop the services of cluster.dependents that run, stop
the service, move the data directory aside (DATA.homelab-old-<saga>), restore
into the emptied path (no --delta: the old files are never written), start
the service, wait until PostgreSQL accepts connections and has promoted and
the service's health probe passes, start the dependents (each gated on its
probe), resume archiving (held until then, so that a restored cluster given
up leaves no timeline in the repository). Then the old directory is removed (--keep-old keeps it). Any failure
puts the old data directory back and starts the service and its dependents
again. A killed restore is reported by every command; --resume finishes it:
the cluster ends restored (when the restored cluster passed its health gate)
or exactly as before.

Asks for confirmation on a terminal (needs --yes otherwise) when the restore
replaces or merges into something that exists: --in-place, --replace, or a
--to directory that is not empty. A restore into a new or empty directory,
or into a new database, overwrites nothing and just runs.

` + exitCodesHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.JSON = f.JSON
			if opts.Resume {
				if opts.DryRun || opts.Dest != (backup.Destination{}) || opts.Target != "" || opts.KeepOld {
					return usageErr("--resume [SAGA] takes only --yes")
				}
				if len(args) == 1 {
					opts.ResumeID = args[0]
				}
				if runF != nil {
					return runF(opts)
				}
				return runClusterRestoreResume(cmd.Context(), opts)
			}
			if len(args) != 1 {
				return usageErr("usage: homelab backup restore <snapshot|latest> [flags], or --resume [SAGA]")
			}
			opts.Snapshot = args[0]
			switch {
			case opts.Dest.InPlace && (opts.Dest.Path != "" || opts.Dest.Database != "" || opts.Dest.Bucket != ""):
				return usageErr("--in-place restores to the target's source: not with --to, --database or --to-bucket")
			case opts.Dest.InPlace:
			case opts.Dest.Path == "" && opts.Dest.Database == "" && opts.Dest.Bucket == "":
				return usageErr("say where to restore: --to PATH, --database DB, --to-bucket BUCKET or --in-place")
			case countSet(opts.Dest.Path, opts.Dest.Database, opts.Dest.Bucket) > 1:
				return usageErr("--to, --database and --to-bucket exclude each other")
			}
			if opts.Dest.Delete && opts.Dest.Bucket == "" && !opts.Dest.InPlace {
				return usageErr("--delete is for a bucket restore (--to-bucket or --in-place of an s3-mirror target)")
			}
			r := opts.Dest.Recovery
			n := countSet(r.Time, r.LSN, r.XID, r.Name)
			if r.Immediate {
				n++
			}
			if n > 1 {
				return usageErr("--time, --lsn, --xid, --name and --immediate exclude each other")
			} else if n > 0 && opts.Dest.Path == "" && !opts.Dest.InPlace {
				return usageErr("--time, --lsn, --xid, --name and --immediate are for a pgbackrest restore --to DIR or --in-place")
			} else if opts.Dest.Port != 0 && opts.Dest.Path == "" {
				return usageErr("--port is for a pgbackrest restore --to DIR")
			}
			if opts.KeepOld && !opts.Dest.InPlace {
				return usageErr("--keep-old is for a pgbackrest restore --in-place")
			}
			if opts.Dest.NoVerify && opts.Dest.Path == "" {
				return usageErr("--no-verify is for a files restore --to PATH (in-place restores always verify)")
			}
			if runF != nil {
				return runF(opts)
			}
			return runBackupRestore(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Target, "target", "", "the snapshot's target (found from the snapshot when omitted)")
	cmd.Flags().StringVar(&opts.Dest.Path, "to", "", "directory to restore files under")
	cmd.Flags().StringVar(&opts.Dest.Database, "database", "", "database to restore a dump into")
	cmd.Flags().StringVar(&opts.Dest.Bucket, "to-bucket", "", "s3-mirror: bucket to restore the objects into (on the source's endpoint)")
	cmd.Flags().BoolVar(&opts.Dest.Delete, "delete", false, "s3-mirror: remove objects of the bucket that are not in the snapshot")
	cmd.Flags().BoolVar(&opts.Dest.Replace, "replace", false, "replace an existing database (after a successful restore)")
	cmd.Flags().BoolVar(&opts.Dest.InPlace, "in-place", false, "restore the target's data where it was backed up from, replacing it (after a successful restore)")
	cmd.Flags().BoolVar(&opts.Dest.NoVerify, "no-verify", false, "files: do not read the restored files back to verify them (restic restore --verify)")
	cmd.Flags().StringVar(&opts.Dest.Recovery.Time, "time", "", `pgbackrest: recover to this time ("2026-12-06 10:41:00+00")`)
	cmd.Flags().StringVar(&opts.Dest.Recovery.LSN, "lsn", "", "pgbackrest: recover to this WAL location (0/3000060)")
	cmd.Flags().StringVar(&opts.Dest.Recovery.XID, "xid", "", "pgbackrest: recover to this transaction ID")
	cmd.Flags().StringVar(&opts.Dest.Recovery.Name, "name", "", "pgbackrest: recover to this restore point (pg_create_restore_point)")
	cmd.Flags().BoolVar(&opts.Dest.Recovery.Immediate, "immediate", false, "pgbackrest: recover only to the end of the backup set (the data as backed up), not to the end of the archived WAL")
	cmd.Flags().IntVar(&opts.Dest.Port, "port", 0, "pgbackrest: start the restored cluster on 127.0.0.1:PORT, promoted")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and stop")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait for a busy target")
	cmd.Flags().BoolVar(&opts.KeepOld, "keep-old", false, "pgbackrest --in-place: keep the old data directory (DATA.homelab-old-<saga>) once the restored cluster is healthy")
	cmd.Flags().BoolVar(&opts.Resume, "resume", false, "finish an interrupted in-place restore of a pgbackrest cluster")
	return cmd
}

func runBackupRestore(ctx context.Context, opts *BackupRestoreOptions) error {
	target, pgInPlace, err := restoreTarget(ctx, opts)
	if err != nil {
		return err
	}
	if pgInPlace {
		return runClusterRestore(ctx, opts, target)
	}
	m, closeFn, err := opts.F.Manager(ctx, opts.Wait)
	if err != nil {
		return err
	}
	defer closeFn()
	plan, err := m.PlanRestore(ctx, target, opts.Snapshot, opts.Dest)
	if err != nil {
		if errors.Is(err, backup.ErrNoSnapshot) {
			return err
		}
		return usageErr(err.Error())
	}
	where := "directory " + plan.Dest.Path
	switch {
	case plan.Provider == lab.ProviderS3Mirror && len(plan.Replaces) > 0:
		where = strings.Join(plan.Replaces, ", ") + " (the source itself)"
		if plan.Dest.Delete {
			where += ", removing the objects that are not in the snapshot"
		}
	case plan.Provider == lab.ProviderS3Mirror:
		where = "bucket " + plan.Dest.Bucket
		if plan.Dest.Delete {
			where += ", removing the objects that are not in the snapshot"
		}
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
	if r := plan.Dest.Recovery; r != (backup.Recovery{}) {
		where += " to " + r.String()
	}
	if plan.Dest.Port != 0 {
		where += fmt.Sprintf(", started on 127.0.0.1:%d", plan.Dest.Port)
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
	if len(plan.Replaces) > 0 || replacesSomething(plan.Dest) {
		if err := confirm(opts.IO, opts.Yes, desc+"?"); err != nil {
			return err
		}
	}
	pr := newProgress(opts.IO.ErrOut, opts.IO.StderrTTY)
	m.Progress = pr.Update
	run, err := m.Restore(ctx, plan)
	pr.Done()
	if opts.JSON {
		writeJSON(opts.IO.Out, "restore", map[string]any{"run": run, "error": errString(err)})
	} else if err == nil {
		fmt.Fprintf(opts.IO.Out, "%s restored %s into %s in %s\n", mark(opts.IO.StdoutTTY, true), short(run.SnapshotID), where, status.Seconds(run.End.Sub(run.Start)))
	}
	return err
}

// restoreTarget returns the restore's target (--target, or the one whose
// snapshots hold the ID) and whether it is the in-place restore of a
// pgbackrest cluster.
func restoreTarget(ctx context.Context, opts *BackupRestoreOptions) (string, bool, error) {
	m, closeFn, err := opts.F.Manager(ctx, opts.Wait)
	if err != nil {
		return "", false, err
	}
	defer closeFn()
	target := opts.Target
	if target == "" {
		if target, err = m.FindTarget(ctx, opts.Snapshot); err != nil {
			return "", false, usageErr(err.Error())
		}
	}
	spec, err := m.Lab.Backup(target)
	if err != nil {
		return "", false, usageErr(err.Error())
	}
	return target, opts.Dest.InPlace && spec.Provider == lab.ProviderPgBackRest, nil
}

// replacesSomething reports whether a restore to dest replaces or merges
// into something that exists, and so needs confirmation: an in-place
// restore, a replacing one, or a directory that holds anything. A new
// database cannot replace one (without Replace the restore refuses an
// existing database).
func replacesSomething(dest backup.Destination) bool {
	if dest.InPlace || dest.Replace {
		return true
	}
	if dest.Path == "" {
		return false
	}
	entries, err := os.ReadDir(dest.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return err != nil || len(entries) > 0
}

// countSet counts the non-empty strings.
func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}
