// Package repokey adds recovery keys to restic repositories: a second
// key, with a password generated here, written to a new file (mode 0600)
// for offline storage, so the repository can still be opened when the
// password the lab uses is lost with the machine (the "offline recovery
// key" of a disaster-recovery plan).
//
// The password never appears in argv, logs or errors: restic reads it
// from the file (restic key add --new-password-file), and the repository's
// own password reaches restic through its environment as for every other
// command (internal/restic).
package repokey
