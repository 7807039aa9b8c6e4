// Package files is the "restic" backup provider: paths and directories
// backed up with restic backup (excludes from the lab file), restored with
// restic restore, and drilled by a restore with --verify into a temporary
// directory plus the target's path and sha256 checks.
//
// An in-place restore (backup.Destination.InPlace, for rolling back an
// upgrade) restores each source path into a staging directory beside it,
// verifies it and only then swaps all of them in by renaming, so that the
// paths become the snapshot exactly. RestoreCommands writes the plain
// restic commands for doing it by hand.
package files
