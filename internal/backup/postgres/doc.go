// Package postgres is the "postgres" backup provider: `pg_dump -Fc`
// streamed into restic with `restic backup --stdin-from-command` (a
// failing pg_dump fails the snapshot and leaves none), restored by
// streaming `restic dump` into `pg_restore`, and drilled into a throwaway
// database homelab_drill_* that is always dropped afterwards. An in-place
// restore (backup.Destination.InPlace) goes into the source database by
// way of a staging database swapped in by renaming; RestoreCommands writes
// the restic dump | pg_restore command for doing it by hand.
//
// Credentials reach pg_dump and pg_restore only through their environment
// (PGPASSWORD, or libpq's own PGPASSFILE/~/.pgpass); SQL (create, drop,
// rename, drill checks) goes through pgx.
package postgres
