// Package certs is homelab's small PKI: a local CA (ECDSA P-256) and the
// leaf certificates of the lab file's certs section, their status (expiry,
// rotation window, key match) and their rotation.
//
// Rotation is planned with pure code (PlanRotate, PlanRotateCA: what
// `--dry-run` prints) and applied by a Manager: for each leaf a new pair is
// issued and checked before anything is touched, the old pair is kept as
// <file>.prev, the files are swapped by rename, the consumer is reloaded
// (a signal to a pid, docker kill, a command, or a rewritten Traefik
// dynamic file) and a TLS handshake checks that the new certificate is
// served. When the reload or the check fails, the old pair is put back and
// reloaded, and the error says whether it is served again.
//
// Files that matter are written atomically (WriteFile): a temporary file
// in the same directory, fsynced, renamed. Private keys are 0600.
//
// Nothing here prints: results are returned, notes go to a *slog.Logger.
package certs
