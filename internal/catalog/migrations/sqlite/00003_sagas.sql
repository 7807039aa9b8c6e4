-- Saga journals (package saga): one row per saga, one per step and phase.
-- plan is the JSON array of the saga's step names in order, params and
-- data are JSON objects. Step rows go when their saga does (the foreign
-- key cascades; SQLite enforces it only with PRAGMA foreign_keys on, which
-- every catalog connection sets).
--
-- SQLite-specific: "WITHOUT ROWID" (PostgreSQL: leave it out). The rest is
-- portable SQL.

-- +goose Up
CREATE TABLE sagas (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL,
	subject     TEXT NOT NULL,
	params      TEXT,
	plan        TEXT NOT NULL DEFAULT '[]',
	state       TEXT NOT NULL,
	started_at  TEXT NOT NULL,
	finished_at TEXT,
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sagas_subject_kind_start ON sagas (subject, kind, started_at);
CREATE INDEX sagas_state_start ON sagas (state, started_at);
CREATE INDEX sagas_start ON sagas (started_at);

CREATE TABLE saga_steps (
	saga_id     TEXT    NOT NULL REFERENCES sagas (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	phase       TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	started_at  TEXT    NOT NULL,
	finished_at TEXT,
	data        TEXT    NOT NULL DEFAULT '{}',
	error       TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (saga_id, seq, phase)
) WITHOUT ROWID;
