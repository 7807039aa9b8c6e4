// Package daemon is `homelab serve`: it runs each target's scheduled
// backups (each followed by a prune), restore drills and repository
// checks unattended, and tells someone when they fail.
//
// Jobs fire from internal/schedule (cron slots, jitter, one catch-up after
// downtime judged from the catalog's last successful run). Jobs that
// touch one repository run one at a time, in a queue per repository, so
// homelab never races itself for restic's lock; repositories run in
// parallel up to serve.concurrency. Before each job the repository's
// locks are inspected: when every lock is stale (not refreshed for
// serve.stale_lock_age, or its holder process on this host is gone) they
// are logged and removed with `restic unlock`; a live lock is waited for
// (restic --retry-lock).
//
// Every job has a timeout (a timed-out job fails). Cancelling Run's
// context stops new work, interrupts running jobs (restic gets SIGINT,
// releases its lock, and the run is recorded as interrupted) and returns
// within serve.shutdown_timeout. Reload swaps in a new lab file; an
// invalid one is logged and the old one keeps running.
//
// Notifications go through internal/notify: backup, drill, check and
// prune failures, targets going overdue, and recoveries (the first
// success after a failure or after an overdue alert), plus a heartbeat
// ping per target after each successful backup; a pgbackrest target's
// WAL archiving stuck (pitr.go).
package daemon
