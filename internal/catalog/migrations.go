package catalog

// migrations are the schema changes, in order: migrations[i] takes the
// schema from version i to version i+1. Append only; never edit a released
// entry. Each entry may hold several statements.
//
// Times are TEXT in the fixed-width UTC layout timeLayout, so they read well
// in the sqlite3 shell and sort as text in time order. Durations are
// INTEGER nanoseconds.
var migrations = [...]string{
	// 1: runs, drills, events.
	`
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
`,
	// 2: failures by target, counted from the index alone (Summaries).
	`
CREATE INDEX runs_result_target_kind ON runs (result, target, kind);
CREATE INDEX drills_result_target ON drills (result, target);
`,
	// 3: saga journals (package saga): one row per saga, one per step and
	// phase. plan is the JSON array of the saga's step names in order,
	// params and data are JSON objects. Step rows go when their saga does.
	`
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
`,
}

// SchemaVersion is the newest schema version this binary knows.
const SchemaVersion = len(migrations)
