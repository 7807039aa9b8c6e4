// Package serve runs `homelab serve` end to end against the real restic
// and PostgreSQL, with schedules every few seconds: the daemon's jobs,
// notifications, reloads, metrics, shutdown and catch-up; and (TestServeS3)
// scheduled backups and repository checks of a restic repository on a
// real S3 server (versitygw). It has tests only.
package serve
