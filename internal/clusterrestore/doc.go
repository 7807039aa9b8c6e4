// Package clusterrestore replaces the live PostgreSQL cluster of a
// pgbackrest target by one restored from its repository, to a point in
// time or to the end of the archived WAL: `homelab backup restore
// <label|latest> --target T --in-place [--time|--lsn|--xid|--name]`.
//
// The cluster is tied to the lab's service that runs it by the target's
// pgbackrest.cluster.service; the services that use it are
// pgbackrest.cluster.dependents. The restore is a saga (package saga,
// kind "backup restore", subject the cluster's service, covering the
// dependents, so no upgrade, deploy or lab snapshot restore of any of
// them runs while it is unfinished), each step journalled:
//
//  1. stop dependents: those that run, in order (journalled first);
//     undone by starting them again, each gated on its health.
//  2. stop SERVICE: through its runtime; then no server may run in the
//     data directory (postmaster.pid with a live pid), else the step
//     fails: cluster.service does not run this cluster. Undone by
//     starting it again (if it ran) and waiting until it is healthy.
//  3. move aside DATA_DIR: rename(2) to DATA_DIR.homelab-old-<saga ID>
//     beside it (one atomic rename on the same filesystem; the old
//     files are never read, written or removed while the saga is
//     unfinished). Undone by moving what the restore left at DATA_DIR to
//     DATA_DIR.homelab-failed-<saga ID> and renaming the old directory
//     back, then removing the failed one; every part of that is
//     idempotent, so a compensation killed midway finishes on resume. A
//     pgbackrest restore a killed homelab left running (marked
//     HOMELAB_SAGA=<saga ID>, execx.Marked) is ended first: it writes
//     into DATA_DIR by path, and would write into the old data put back.
//  4. restore LABEL: pgbackrest restore into the new, empty DATA_DIR
//     (pgbackrest.Provider.RestoreLive), promoting at the recovery
//     target; archive_mode is kept but archive_command is held empty
//     (the WAL stays in pg_wal) until step 8. The set is journalled under
//     saga.SnapshotKey, so prune keeps it while the saga is unfinished.
//  5. start SERVICE; undone by stopping it.
//  6. health gate SERVICE: PostgreSQL accepts connections and has
//     promoted (pgbackrest.Provider.AwaitPromoted), then the service's
//     runtime and health probe (upgrade.Upgrader.WaitHealthy, within its
//     upgrade.healthy_within, default 2m).
//  7. start dependents: in reverse stop order, each gated on its health;
//     undone by stopping them.
//  8. resume archiving: the held archive_command is removed and the
//     server reloads (pgbackrest.Provider.ResumeArchiving); its WAL, the
//     new timeline's history file first, goes to the repository. Last,
//     because a restored cluster that is given up must leave no
//     timeline there: every later recovery to the end of the WAL (a
//     drill, a restore of latest) would follow it instead of the old
//     cluster's.
//
// Any failure compensates in reverse: dependents stopped, the restored
// cluster stopped, the old data directory put back, the service started
// and gated, the dependents started: the cluster serves what it served
// before. Once the saga is done the old directory is removed (the
// restored cluster passed its gate and so did every dependent); with
// KeepOld it is left for the operator (its path is in the result).
//
// The restore is recorded in the catalog as a restore run of the target
// (with events restore_in_place_done or restore_failed); a killed one is
// found interrupted by the next command (backup.Manager.Reconcile: the
// restore holds the target's lock), like any run.
//
// # Why no --delta
//
// pgbackrest's --delta restores over an existing data directory,
// rewriting in place only the files whose checksums differ. That is
// fast, but it changes the only copy of the old cluster while it runs:
// a failed or killed restore leaves a data directory that is neither the
// old cluster nor the new, with nothing to go back to. Keeping a copy to
// go back to costs a full copy of the cluster, about what a full restore
// from the repository costs. So the old directory is renamed aside
// (instant, and untouched until the end) and the restore fills an empty
// directory; the price is free space for a second cluster on the data
// directory's filesystem, which Plan checks. A data directory that is a
// mount point cannot be renamed (EBUSY, EXDEV): the step fails before
// anything changed, and is undone. A cluster with tablespaces
// (pg_tblspc entries) is refused: they live outside the data directory
// and would not be moved aside.
//
// # Resume
//
// After a crash, Resume finishes the saga from the journal: forward when
// the health gate of the restored cluster is journalled done (only the
// dependents are left to start and archiving to resume), else by compensating (the old data
// directory back and running). Either way the cluster ends restored or
// exactly as before, never missing.
package clusterrestore
