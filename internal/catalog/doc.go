// Package catalog is homelab's record of what happened: backup, restore,
// prune and check runs, restore drills, and notable events.
//
// [Store] is the contract; [SQLite] implements it over an embedded SQLite
// file (modernc.org/sqlite, no cgo) in WAL mode, so several homelab
// processes (the daemon, a cron job, an operator at a terminal) can read and
// write one catalog at the same time. The schema is versioned: [Open]
// applies pending migrations (SQL files run by github.com/pressly/goose),
// each in its own write-locked transaction, and refuses a catalog written
// by a newer homelab ([ErrSchemaTooNew]).
//
// [Summaries] gives what status and metrics show of every target (newest
// backup and drill, newest good ones, failure counts) in three queries
// that only seek in indexes, whatever the number of targets and runs.
//
// The host samples of the daemon ([Samples]) live in a SQLite file of
// their own beside the catalog ([SQLite.SamplesPath]), so that writing
// them, every few minutes, leaves [SQLite.Version] and the caches keyed
// by it ([Cache]) alone.
//
// Times are stored in UTC and come back in UTC; the shared conformance suite
// in package catalogtest pins the contract for every implementation.
package catalog
