// Package serve runs `homelab serve` end to end against the real restic
// and PostgreSQL, with schedules every few seconds: the daemon's jobs,
// notifications, reloads, metrics, shutdown and catch-up. It has tests
// only.
package serve
