-- Runs, drills, events.
--
-- SQLite-specific: "INTEGER PRIMARY KEY" is SQLite's rowid alias, numbered
-- on insert (PostgreSQL: BIGINT GENERATED ALWAYS AS IDENTITY), and INTEGER
-- is 64 bits here (PostgreSQL: BIGINT for bytes, files and rto_ns). The
-- rest is portable SQL.

-- +goose Up
CREATE TABLE runs (
	id          INTEGER PRIMARY KEY,
	run_id      TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	provider    TEXT    NOT NULL DEFAULT '',
	repository  TEXT    NOT NULL DEFAULT '',
	snapshot_id TEXT    NOT NULL DEFAULT '',
	start_time  TEXT    NOT NULL,
	end_time    TEXT,
	bytes       INTEGER NOT NULL DEFAULT 0,
	bytes_added INTEGER NOT NULL DEFAULT 0,
	files       INTEGER NOT NULL DEFAULT 0,
	result      TEXT    NOT NULL,
	error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX runs_target_kind_start ON runs (target, kind, start_time);
CREATE INDEX runs_target_start ON runs (target, start_time);
CREATE INDEX runs_start ON runs (start_time);

CREATE TABLE drills (
	id          INTEGER PRIMARY KEY,
	run_id      TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	snapshot_id TEXT    NOT NULL,
	start_time  TEXT    NOT NULL,
	end_time    TEXT,
	rto_ns      INTEGER NOT NULL DEFAULT 0,
	result      TEXT    NOT NULL,
	output      TEXT    NOT NULL DEFAULT '',
	error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX drills_target_start ON drills (target, start_time);
CREATE INDEX drills_snapshot ON drills (snapshot_id);
CREATE INDEX drills_start ON drills (start_time);

CREATE TABLE events (
	id      INTEGER PRIMARY KEY,
	time    TEXT NOT NULL,
	level   TEXT NOT NULL,
	target  TEXT NOT NULL DEFAULT '',
	kind    TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX events_time ON events (time);
