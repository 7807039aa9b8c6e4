-- The backup runs of each target by backup type rank, result and start
-- (SQLite.TypedRuns and Summaries' typedBackups): the newest good and
-- failed run of each type of a pgbackrest target is one seek, however
-- long its history. The rank is typeRank's: 3 for a full backup (a
-- snapshot ID, pgBackRest's label, ending in F with no "_"), 2 for a diff
-- (ending in D), 1 for an incr (ending in I); for a run without such a
-- label, the type its run ID ends with (backup.TypedRunID, "-full",
-- "-diff", "-incr" after at least one other "-"); else 0. The queries
-- repeat the expression exactly (catalog.typeRankSQL), or SQLite does not
-- use the index. The rank comes first so that no other query, which
-- names no rank, takes the index for one on target: a newest run by
-- target, kind and result is a backward walk in runs_target_kind_start
-- that stops at the first match, whereas here it would sort the
-- target's runs.
--
-- SQLite-specific: GLOB, which is case-sensitive and takes "_" and "-"
-- literally (PostgreSQL: LIKE '%F' AND strpos(snapshot_id, '_') = 0 for
-- the full, and run_id ~ '-.*-full$' for the run IDs). The partial index
-- (WHERE) and the expression index are PostgreSQL's too.

-- +goose Up
CREATE INDEX runs_backup_type ON runs ((CASE
	WHEN snapshot_id GLOB '*F' AND snapshot_id NOT GLOB '*_*' THEN 3
	WHEN snapshot_id GLOB '*D' THEN 2
	WHEN snapshot_id GLOB '*I' THEN 1
	WHEN run_id GLOB '*-*-full' THEN 3
	WHEN run_id GLOB '*-*-diff' THEN 2
	WHEN run_id GLOB '*-*-incr' THEN 1
	ELSE 0 END), target, result, start_time) WHERE kind = 'backup';
