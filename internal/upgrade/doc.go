// Package upgrade upgrades a service of the lab as a saga (package saga):
// `homelab upgrade <service> --to <version>`.
//
// [Upgrader.Plan] reads the version the service's runtime runs, resolves
// the path to the target through the required stops (the lab file's
// upgrade.required_stops and its preset; package upgrade), and estimates
// the time from the catalog's past backup durations; it also checks that
// the rollback could restore every backup_before target in place
// (backup.Preflighter: for postgres, the source role's CREATEDB, its
// privileges over the database's owner and the dump's object owners),
// and [Upgrader.Run] refuses a plan with findings (*PreflightError)
// before anything changes. [Upgrader.Run] then runs, for each version on
// the path (each stop, then the target):
//
//  1. "restore point before V": V is made ready where the runtime can
//     (runtime.Preparer: a compose image pulled) while the service still
//     runs; then the service is stopped (nothing written after the
//     restore point can be lost by a rollback) and every backup_before
//     target is backed up (fail closed: an image that cannot be had, a
//     failed backup, a local repository with less free space than the
//     target's last backup added, or a restore point the rollback could
//     not restore (checked again here), fails the step, whose undo starts
//     the service again). The snapshot IDs are journalled, and the other
//     services of the targets' stop lists that run.
//  2. "set version V": the runtime stops the service, sets the version
//     (compose: the image tag in the compose file, then up -d; exec and
//     systemd: the set_version command) and starts it. It first checks
//     that the service still runs the version the plan started from.
//  3. "wait healthy at V": the health probe (else: the runtime reports the
//     service running, and for compose Docker's HEALTHCHECK healthy)
//     passes within upgrade.healthy_within.
//  4. "post-step at V" (when the lab gives one): the post_step command.
//
// Compensation (a step failed, the run was interrupted, or `homelab
// upgrade --resume` after a crash) undoes "set version V" for every stop
// that began, newest first: stop the service and the other services of
// the stop lists journalled at the restore point, restore that stop's
// restore points in place (files swapped in whole; a database replaced
// through a staged copy: package backup), set the previous version,
// start it, wait healthy and start the others, so the service ends on the
// version it ran before the upgrade, with its data. With
// upgrade.after_rollback: stopped they are all left stopped instead (the
// package-upgrade flow, where an operator checks before starting the old
// version again). If an undo fails, it stops the service and the saga
// needs attention: [Upgrader.RestorePoints] gives the plain restic and
// pg_restore commands of the journalled restore points for a restore by
// hand. While an upgrade is unfinished, backup prune keeps its restore
// points, and backups do not stop its service.
package upgrade
