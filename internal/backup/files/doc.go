// Package files is the "restic" backup provider: paths and directories
// backed up with restic backup (excludes from the lab file), restored with
// restic restore, and drilled by a restore with --verify into a temporary
// directory plus the target's path and sha256 checks.
package files
