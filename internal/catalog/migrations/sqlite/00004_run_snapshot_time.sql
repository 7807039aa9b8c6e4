-- The time of a backup run's snapshot (restic's snapshot time, which is
-- when restic started reading the source, a little after the run's start):
-- with the snapshot ID, bytes and files, what `backup restore latest`
-- needs to plan a restore without listing the repository. NULL for runs
-- recorded before this version and for runs that made no snapshot.
-- Portable SQL.

-- +goose Up
ALTER TABLE runs ADD COLUMN snapshot_time TEXT;
