// Package lab loads the lab file, lab.yaml: the one description of a
// self-hosted stack (its restic repositories, services and backup
// targets) that every homelab verb works from.
//
// Load reads, validates and defaults the file as a whole. Validation
// reports every problem at once, each with file, line, column and a
// dotted field path (backups.db.drill.checks[1].sql), as a *Errors. After
// Load returns, the Lab is used read-only: relative paths are already
// absolute, names are filled in from their map keys, and timeouts and
// ports have their defaults.
//
// Secrets are never written in the lab file: passwords are referenced by
// file (*_file) or environment variable (*_env, env_from), and inline
// ones are rejected.
package lab
