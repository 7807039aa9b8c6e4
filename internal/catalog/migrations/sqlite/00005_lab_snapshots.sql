-- Lab snapshots (package labsnapshot): a named, consistent set of backups
-- of the lab's targets with the services' versions, a copy of the lab file
-- and the certificates' fingerprints. members, versions and certs are JSON
-- (an array of {target, repository, snapshot_id, time, bytes, files}, and
-- objects service -> version and certificate -> SHA-256); members are
-- restic snapshot IDs. state is creating, complete or incomplete; only
-- complete ones are restored, and the members of creating and complete
-- ones are kept from retention.
--
-- Portable SQL.

-- +goose Up
CREATE TABLE lab_snapshots (
	name        TEXT PRIMARY KEY,
	note        TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	saga_id     TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	finished_at TEXT,
	lab_file    TEXT NOT NULL DEFAULT '',
	members     TEXT NOT NULL DEFAULT '[]',
	versions    TEXT NOT NULL DEFAULT '{}',
	certs       TEXT NOT NULL DEFAULT '{}',
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX lab_snapshots_created ON lab_snapshots (created_at);
