// Package backup holds the provider contract (from DESIGN.md: Backup,
// Restore, List, Prune, Drill) and the orchestration around it: target
// locks, before/after hooks, catalog records of every run and restore
// drill, and retention with homelab's one floor (the newest snapshot that
// passed a drill is never pruned). Providers live in sub-packages (files,
// postgres, pgbackrest, s3mirror); this package never imports them. Every
// provider runs the conformance suite in providertest.
//
// Domain code never prints: results are returned, progress goes through a
// callback, and notes through an injected *slog.Logger.
package backup
