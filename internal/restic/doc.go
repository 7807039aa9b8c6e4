// Package restic is the adapter for the restic backup program
// (https://restic.net). It requires restic >= 0.17 (for
// `backup --stdin-from-command` and the exit codes 10, 11, 12), runs it
// through execx with the repository password in the environment only
// (RESTIC_PASSWORD_FILE or RESTIC_PASSWORD), parses its --json output
// leniently, maps its documented exit codes to typed errors, and turns its
// status lines into progress events.
//
// Exit codes (restic manual, "Scripting"): 0 success, 1 fatal error,
// 3 backup could not read some source data (snapshot created, partial),
// 10 repository does not exist, 11 failed to lock the repository,
// 12 wrong password, 130 interrupted.
package restic
