// Package execx runs external commands (restic, pg_dump, pg_restore, hook
// commands) with an explicit environment, context cancellation that sends
// SIGINT first (restic releases its repository lock on SIGINT), bounded
// stderr capture, and typed errors that never contain secrets.
//
// Secrets travel only in the child's environment (RESTIC_PASSWORD,
// PGPASSWORD, ...), never in argv; every value listed in Cmd.Secrets is
// redacted from the text of errors.
package execx
